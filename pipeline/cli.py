"""`gan-restore`: the one command-line entry point.

Each subcommand lives in its own module, which defines `HELP` (one line), `add_arguments(parser)` and
`run(args) -> int`; modules import TensorFlow/TFX inside `run` so that `--help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import warnings

from pipeline.config import PRESETS, Config, preset

# subcommand -> module
COMMANDS = {
    "run": "pipeline.local_runner",
    "demo": "pipeline.demo",
    "predict": "serving.predict_cli",
    "serve": "serving.server_cli",
    "evaluate": "pipeline.evaluate_cli",
    "compile": "pipeline.kubeflow_runner",
    "schedule": "pipeline.schedule",
    "config": "pipeline.cli",
}

HELP = "print the resolved configuration as JSON"


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every subcommand that builds a Config shares."""
    g = parser.add_argument_group("configuration")
    g.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                   help="named preset (default: tiny, the demo/test size)")
    g.add_argument("--task", choices=("sr", "deblur"), default=None,
                   help="sr (4x super-resolution) or deblur (motion deblurring); default: the preset's")
    g.add_argument("--config", metavar="FILE", default=None,
                   help="a JSON configuration (as printed by `gan-restore config`) instead of a preset")
    g.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override a setting by dotted key, e.g. --set train.gan_steps=500 (repeatable)")


def config_from_args(args: argparse.Namespace) -> Config:
    """The run's Config from --preset/--task/--config/--set; a bad setting exits with a one-line error."""
    try:
        return _config_from_args(args)
    except (KeyError, ValueError) as e:
        raise SystemExit(f"gan-restore: configuration error: {e}") from None


def _config_from_args(args: argparse.Namespace) -> Config:
    if args.config:
        with open(args.config) as f:
            cfg = Config.from_json(f.read())
        if args.task:
            cfg = cfg.override({"task": args.task})
    else:
        cfg = preset(args.preset, task=args.task)
    overrides = {}
    for item in args.set:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        overrides[k.strip()] = v.strip()
    return cfg.override(overrides) if overrides else cfg


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(config_from_args(args).to_dict(), indent=2, sort_keys=True))
    return 0


class _HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default when it says something: not when None/False/empty, nor twice."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" not in text and action.default not in (None, False, [], "", argparse.SUPPRESS)
                and action.option_strings):
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gan-restore",
        description="Train, gate and serve GAN image-restoration models (SRGAN 4x super-resolution, "
                    "DeblurGAN motion deblurring) with TFX.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = sys.modules[__name__] if module_name == __name__ else _load(module_name)
        if module is None:
            continue
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           formatter_class=_HelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def _load(module_name):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:  # subcommand not built yet in this checkout
            return None
        raise


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        # TensorFlow's C++ INFO/WARNING lines (oneDNN, TensorRT notices) and google-api-core's Python
        # 3.10 FutureWarnings, here and in Beam's worker processes (they inherit the environment).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
        warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    return int(args._module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
