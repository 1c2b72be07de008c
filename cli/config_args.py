"""The configuration options every subcommand shares: --preset, --task, --config FILE, --set KEY=VALUE."""
from __future__ import annotations

import argparse

from config import PRESETS, Config, ConfigError, preset


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("configuration")
    g.add_argument("--preset", default="tiny", choices=PRESETS,
                   help="named preset (default: tiny, the demo/test size)")
    g.add_argument("--task", choices=("sr", "deblur"), default=None,
                   help="sr (4x super-resolution) or deblur (motion deblurring); default: the preset's")
    g.add_argument("--config", metavar="FILE", default=None,
                   help="a JSON configuration (as printed by `gan-restore config`) instead of a preset")
    g.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override a setting by dotted key, e.g. --set train.gan_steps=500 (repeatable)")


def config_from_args(args: argparse.Namespace) -> Config:
    """The run's Config from --preset/--task/--config/--set; raises ConfigError naming a bad setting."""
    cfg = Config.from_file(args.config) if args.config else preset(args.preset, task=args.task)
    overrides = {}
    if args.config and args.task:
        overrides["task"] = args.task
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        overrides[k.strip()] = v.strip()
    return cfg.override(overrides) if overrides else cfg
