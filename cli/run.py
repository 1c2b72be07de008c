"""`gan-restore run`: the pipeline on this machine with TFX's BeamDagRunner (pipeline/local_runner.py).

`--until COMPONENT` runs the pipeline up to and including that component (a prefix of
`create_components`), e.g. `--until transform` to inspect the training pairs.
"""
from __future__ import annotations

import os

from cli.config_args import add_config_arguments, config_from_args
from config import Config, ConfigError
from config.checks import check_local_run

HELP = "run the pipeline locally (BeamDagRunner)"


def add_arguments(parser) -> None:
    add_run_arguments(parser)
    parser.add_argument("--until", metavar="COMPONENT", default=None,
                        help="stop after this component (short name or id, e.g. transform, Trainer); "
                             "default: the whole pipeline")


def add_run_arguments(parser) -> None:
    """The options of every subcommand that runs the pipeline here (`run`, `demo`)."""
    add_config_arguments(parser)
    parser.add_argument("--run-root", default=None,
                        help="where runs write (pipeline root, metadata, pushed models); default: ./runs")
    parser.add_argument("--no-cache", action="store_true", help="re-execute every component")


def run_config(args) -> Config:
    """The checked Config of a local run (data root and weights files included); quiets TFX's logging
    unless -v. Every error here comes before any component runs."""
    from pipeline.local_runner import quiet_logging

    cfg = config_from_args(args)
    overrides = {}
    if args.run_root:
        overrides["run_root"] = os.path.abspath(args.run_root)
    if args.no_cache:
        overrides["enable_cache"] = False
    cfg = cfg.override(overrides) if overrides else cfg
    check_local_run(cfg)
    if not args.verbose:
        quiet_logging()
    return cfg


def run(args) -> int:
    from pipeline.local_runner import run_pipeline

    cfg = run_config(args)
    try:
        run_pipeline(cfg, until=args.until)
    except ValueError as e:
        if isinstance(e, ConfigError) or args.verbose:
            raise
        raise SystemExit(f"gan-restore run: {e}") from None
    print(cfg.pipeline_root)
    return 0
