"""Named presets: one JSON file each in config/presets/, loaded through `Config.from_dict`.

A preset file is a configuration (only the settings it chooses; the rest keep the schema's defaults),
plus an optional `"tasks"` object of dotted overrides for the other task it also serves (`tiny` trains
SR and deblurring on the same samples). A relative `data.root` is relative to the repository. Why each
preset holds the values it does is written in docs/training.md (and docs/models.md for the papers').
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict

from config.checks import ConfigError
from config.run_config import REPO_ROOT, Config

PRESET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "presets")
PRESETS = tuple(sorted(n[:-5] for n in os.listdir(PRESET_DIR) if n.endswith(".json")))


def preset(name: str, task: str | None = None, overrides: Dict[str, Any] | None = None) -> Config:
    """A named preset, for `task` where the preset serves both, with dotted overrides."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    path = os.path.join(PRESET_DIR, f"{name}.json")
    with open(path) as f:
        d = json.load(f)
    per_task = d.pop("tasks", {})
    root = d.get("data", {}).get("root", "")
    if root and not os.path.isabs(root):
        d["data"]["root"] = os.path.join(REPO_ROOT, root)
    try:
        cfg = Config.from_dict(d)
    except ConfigError as e:
        raise ConfigError(f"preset file {path}: {e}") from None
    if task and task != cfg.task:
        if task not in per_task:
            raise ConfigError(f"preset {name!r} is for task {cfg.task!r}, not {task!r}")
        cfg = cfg.override({"task": task, **per_task[task]})
    return cfg.override(overrides) if overrides else cfg
