"""The local runner: `create_pipeline(cfg)` (or a prefix of it) with TFX's BeamDagRunner.

Beam runs with `cfg.beam_args` (default: the DirectRunner in multi-processing mode, one worker per
core the CPU quota and memory allow, `pipeline/pod_resources.py`; worker processes are started with
this interpreter, so the editable install of this package is what they import). `gan-restore run` and
`gan-restore demo` (cli/) call `run_pipeline`.
"""
from __future__ import annotations

import logging
import os

from config import Config
from config.errors import find_user_error

log = logging.getLogger(__name__)


class _ProgressOnly(logging.Filter):
    """TFX and Beam log every node's full configuration at INFO. Keep what says how the run goes:
    warnings, our own modules' lines (training progress, ingestion summary, the gate's decision) and
    TFX's "node X is running/finished"; `-v` shows everything."""

    OURS = ("models", "components", "pipeline", "serving", "cli", "contracts")
    # Beam worker warnings that every local run prints and that need no action.
    BENIGN = ("semi_persistent_directory", "Discarding unparseable args", "python-snappy",
              "property_predicate is not supported", "No iterator is returned by the process method",
              "`custom_executor_spec` is deprecated")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and find_user_error(record.exc_info[1]):
            return False  # Beam's log of an error the user must act on: gan-restore prints its one line last
        if record.name.split(".")[0] in self.OURS:
            return True
        if record.levelno >= logging.WARNING:
            return not any(b in record.getMessage() for b in self.BENIGN)
        if record.name == "absl":
            msg = record.getMessage()
            return msg.startswith("node ") or " summary: " in msg or "BLESSED" in msg
        return False


def quiet_logging() -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(_ProgressOnly())


def run_pipeline(cfg: Config, until: str | None = None) -> None:
    """Build `create_pipeline(cfg)` (or its prefix up to `until`) and run it with BeamDagRunner."""
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    pipeline = local_pipeline(cfg, until)
    log.info("running %s (%s) in %s; Beam args %s; cache %s", cfg.pipeline_name,
             ", ".join(c.id for c in pipeline.components), cfg.pipeline_root, " ".join(pipeline.beam_pipeline_args),
             "on" if cfg.enable_cache else "off")
    os.makedirs(cfg.pipeline_root, exist_ok=True)
    BeamDagRunner().run(pipeline)


def local_pipeline(cfg: Config, until: str | None = None):
    """The TFX pipeline a local run executes: `create_pipeline(cfg)` or its prefix, with
    `--direct_num_workers=0` resolved to what this machine's (or container's) CPUs and memory afford."""
    from pipeline.pipeline import create_components, create_pipeline
    from pipeline.pod_resources import resolve_beam_args

    components = select_prefix(create_components(cfg), until)
    return create_pipeline(cfg.override({"beam_args": tuple(resolve_beam_args(cfg.beam_args))}), components)


def select_prefix(components: dict, until: str | None) -> list:
    """The components up to and including `until` (matched by short name or node id, any case)."""
    nodes = list(components.items())
    if until is None:
        return [c for _, c in nodes]
    key = until.lower()
    for i, (name, c) in enumerate(nodes):
        if key in (name.lower(), c.id.lower()):
            return [c for _, c in nodes[: i + 1]]
    names = ", ".join(f"{name} ({c.id})" for name, c in nodes)
    raise ValueError(f"--until {until!r} names no component; choose from {names}")
