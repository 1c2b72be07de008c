"""`gan-restore`: the one command-line entry point.

Each subcommand lives in its own module of this package, which defines `HELP` (one line),
`add_arguments(parser)` and `run(args) -> int`.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from config import ConfigError, tf_env
from config.errors import find_user_error

# subcommand -> module
COMMANDS = {
    "run": "cli.run",
    "demo": "cli.demo",
    "train": "cli.train",
    "evaluate": "cli.evaluate",
    "serve": "cli.serve",
    "predict": "cli.predict",
    "compile": "cli.compile",
    "schedule": "cli.schedule",
    "config": "cli.show_config",
}


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
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, formatter_class=_HelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv=None) -> int:
    tf_env.apply()  # before any subcommand imports TensorFlow
    args = build_parser().parse_args(argv)
    if not args.verbose:
        # TensorFlow's C++ INFO/WARNING lines (oneDNN, TensorRT notices) and google-api-core's Python
        # 3.10 FutureWarnings, here and in Beam's worker processes (they inherit the environment).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
        warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(args._module.run(args) or 0)
    except Exception as e:
        # Errors the user must act on (config/errors.py) end the command with their one line, last,
        # wherever they were raised (inside a TFX component run by Beam too); anything else is a bug
        # and keeps its traceback.
        user_error = find_user_error(e)
        if user_error is None or args.verbose:
            raise
        kind = "configuration error: " if isinstance(user_error, ConfigError) else ""
        print(f"gan-restore {args.command}: {kind}{user_error}", file=sys.stderr, flush=True)
        return 2 if isinstance(user_error, ConfigError) else 1


if __name__ == "__main__":
    sys.exit(main())
