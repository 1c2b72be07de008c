"""`gan-restore config`: print the resolved configuration (JSON, the form `--config FILE` reads)."""
from __future__ import annotations

import json

from cli.config_args import add_config_arguments, config_from_args

HELP = "print the resolved configuration as JSON"


def add_arguments(parser) -> None:
    add_config_arguments(parser)


def run(args) -> int:
    print(json.dumps(config_from_args(args).to_dict(), indent=2, sort_keys=True))
    return 0
