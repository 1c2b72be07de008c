"""`Config`: the one typed configuration of a run, its derived names and paths, and its JSON form.

Everything (pipeline wiring, components, preprocessing_fn, run_fn, evaluator, serving, Kubeflow) reads
its settings from a `Config`; nothing hides a constant of its own. A Config travels through TFX as
JSON (`custom_config={"config": cfg.to_json()}`) and is rebuilt with `Config.from_json`; building one
checks every setting (config/checks.py). Overrides use dotted keys: `cfg.override({"train.gan_steps": 10})`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict

from config import checks
from config.checks import ConfigError
from config.sections import (
    SECTIONS,
    DataConfig,
    EvalConfig,
    ExportConfig,
    KubeflowConfig,
    LossConfig,
    ModelConfig,
    ServingConfig,
    TrainConfig,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DATA = os.path.join(REPO_ROOT, "data", "samples")
# Settings that say how a run is watched or started, not what it trains: not part of its identity.
_NOT_IDENTITY = ("checkpoint_root", "log_every", "image_every", "checkpoint_every", "warm_start", "warm_start_from",
                 "allow_cpu")


@dataclass
class Config:
    name: str = "tiny"  # preset name; also the default pipeline name suffix
    task: str = "sr"  # "sr" | "deblur"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    kubeflow: KubeflowConfig = field(default_factory=KubeflowConfig)
    # Where a local run writes: pipeline root (artifacts), ML Metadata sqlite, TensorBoard logs.
    run_root: str = os.path.join(REPO_ROOT, "runs")
    enable_cache: bool = True
    beam_args: tuple = ("--direct_running_mode=multi_processing", "--direct_num_workers=0")

    # -- derived names ---------------------------------------------------------------------------
    @property
    def pipeline_name(self) -> str:
        return f"gan-restoration-{self.task}-{self.name}"

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.run_root, self.pipeline_name)

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.pipeline_root, "metadata.sqlite")

    @property
    def model_name(self) -> str:
        return self.serving.model_name or ("srgan" if self.task == "sr" else "deblurgan")

    @property
    def serving_dir(self) -> str:
        """<serving base>/<model name>: TF Serving's base path for this model (versions below)."""
        base = self.serving.serving_base or os.path.join(self.run_root, "serving")
        return os.path.join(base, self.model_name)

    @property
    def scale(self) -> int:
        """Output/input size ratio: the SR scale, 1 for deblurring."""
        return self.model.scale if self.task == "sr" else 1

    @property
    def train_patch(self) -> int:
        """Target (HR / sharp) size of the training pairs and of the discriminator's input."""
        p = self.train.patch_size
        return p if 0 < p < self.data.crop_size else self.data.crop_size

    @property
    def checkpoint_root(self) -> str:
        """<train.checkpoint_root or <pipeline root>/checkpoints>/<pipeline name>: one folder per training run
        below (models/trainer.py `training_run`)."""
        root = self.train.checkpoint_root or os.path.join(self.pipeline_root, "checkpoints")
        return os.path.join(root, self.pipeline_name)

    def fingerprint(self) -> str:
        """Hash of the settings that determine a training run (data, model, loss, train); with the input
        data it identifies the run (models/trainer.py)."""
        d = self.to_dict()
        keep = {k: d[k] for k in ("task", "data", "model", "loss", "train")}
        keep["train"] = {k: v for k, v in keep["train"].items() if k not in _NOT_IDENTITY}
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]

    def view(self, *keep: str) -> Config:
        """A copy that keeps only the named sections or dotted keys ("data", "model.scale") and the
        run identity (name, task, run_root); everything else is reset to the dataclass defaults.

        Components get the view of what they read, so TFX's cache key (which covers the config) changes
        only when their own settings do: a new eval threshold re-runs the Evaluator, not ExampleGen.
        A component must not read settings outside its view (they hold defaults, not the run's values).
        """
        d, base = self.to_dict(), Config().to_dict()
        out = {k: d[k] for k in ("name", "task", "run_root")}
        for k, v in base.items():
            out.setdefault(k, v)
        for key in keep:
            section, _, field_name = key.partition(".")
            if field_name:
                out[section] = dict(out[section])
                out[section][field_name] = d[section][field_name]
            else:
                out[section] = d[section]
        return Config.from_dict(out)

    # -- (de)serialisation -------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> Config:
        """Build and check a Config; unknown keys and bad values raise ConfigError naming the key."""
        if not isinstance(d, dict):
            raise ConfigError(f"a configuration is a JSON object, got {type(d).__name__}")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown config key(s) {sorted(unknown)}")
        kwargs = {}
        for name, v in d.items():
            sub = SECTIONS.get(name)
            kwargs[name] = _build_section(name, sub, v) if sub is not None else _tuples(v)
        cfg = cls(**kwargs)
        checks.check_fields("", cfg)
        for name in SECTIONS:
            checks.check_fields(name, getattr(cfg, name))
        checks.check_rules(cfg)
        return cfg

    @classmethod
    def from_json(cls, s: str) -> Config:
        try:
            d = json.loads(s)
        except json.JSONDecodeError as e:
            raise ConfigError(f"not a JSON configuration: {e}") from None
        return cls.from_dict(d)

    @classmethod
    def from_file(cls, path: str) -> Config:
        """A JSON configuration file (as `gan-restore config` prints); a missing file is a ConfigError."""
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            raise ConfigError(f"cannot read the configuration file {path!r}: {e.strerror}") from None
        return cls.from_json(text)

    def override(self, overrides: Dict[str, Any]) -> Config:
        """A copy with dotted-key overrides applied ("train.gan_steps": 10, "task": "deblur")."""
        d = self.to_dict()
        for key, value in overrides.items():
            node = d
            parts = key.split(".")
            for p in parts[:-1]:
                if p not in node or not isinstance(node[p], dict):
                    raise ConfigError(f"unknown config section {p!r} in {key!r}")
                node = node[p]
            if parts[-1] not in node or isinstance(node[parts[-1]], dict):
                raise ConfigError(f"unknown config key {key!r}")
            node[parts[-1]] = _coerce(value, node[parts[-1]], key)
        return Config.from_dict(d)


def _tuples(v):
    return tuple(v) if isinstance(v, list) else v


def _build_section(name: str, cls, d):
    if not isinstance(d, dict):
        raise ConfigError(f"{name} must be an object of settings, got {d!r}")
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(f'{name}.{k}' for k in sorted(unknown))}")
    return cls(**{k: _tuples(v) for k, v in d.items()})


def _coerce(value, old, key):
    """Command-line strings become the type of the value they replace."""
    if not isinstance(value, str) or isinstance(old, str):
        return value
    try:
        if isinstance(old, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(old, int):
            return int(value)
        if isinstance(old, float) or old is None:
            return None if value.lower() == "none" else float(value)
    except ValueError:
        kind = "bool" if isinstance(old, bool) else "int" if isinstance(old, int) else "float"
        raise ConfigError(f"{key} must be {checks.KIND_WORDS[kind]}; got {value!r}") from None
    if isinstance(old, (tuple, list)):
        return tuple(v for v in value.split(",") if v)
    return value
