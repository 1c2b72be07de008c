"""The `gan-restore` entry point: every subcommand answers --help, config printing works."""
import json
import os
import subprocess
import sys

import pytest

from pipeline import cli

BIN = os.path.join(os.path.dirname(sys.executable), "gan-restore")


def test_every_subcommand_has_help():
    parser = cli.build_parser()
    names = parser._subparsers._group_actions[0].choices
    assert "config" in names
    for name in names:
        with pytest.raises(SystemExit) as e:
            parser.parse_args([name, "--help"])
        assert e.value.code == 0


def test_console_script_prints_resolved_config():
    out = subprocess.run([BIN, "config", "--task", "deblur", "--set", "train.gan_steps=5"],
                         check=True, capture_output=True, text=True).stdout
    cfg = json.loads(out)
    assert cfg["task"] == "deblur" and cfg["train"]["gan_steps"] == 5


def test_bad_override_is_a_clear_error():
    r = subprocess.run([BIN, "config", "--set", "train.nope=1"], capture_output=True, text=True)
    assert r.returncode != 0 and "unknown config key" in r.stderr
