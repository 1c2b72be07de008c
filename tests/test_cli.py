"""The `gan-restore` entry point: every subcommand answers --help, config printing works."""
import json
import os
import subprocess
import sys

import pytest

from cli import main as cli

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


@pytest.mark.parametrize("args, message", [
    (["--set", "train.lr_schedule=foo"], "train.lr_schedule must be one of"),
    (["--set", "train.batch_size=0"], "train.batch_size must be >= 1; got 0"),
    (["--set", "train.log_every=0"], "train.log_every must be >= 1; got 0"),
    (["--preset", "srgan-celeba", "--set", "data.root=data/samples"], "loss.perceptual_net=vgg19: the perceptual loss"),
    (["--preset", "srgan-celeba"], "data.root is empty"),
    (["--set", "data.root=/no/such/folder"], "data.root '/no/such/folder' is not a directory"),
    (["--config", "/no/such/config.json"], "cannot read the configuration file '/no/such/config.json'"),
])
def test_a_bad_run_fails_at_once_with_one_line_naming_the_setting(args, message, tmp_path):
    """Before any component runs (nothing under the run root), within seconds, one line, exit 2."""
    env = dict(os.environ, HOME=str(tmp_path), KERAS_HOME=str(tmp_path / "keras"))  # no VGG weights anywhere
    r = subprocess.run([BIN, "run", "--run-root", str(tmp_path / "runs"), *args], capture_output=True, text=True,
                       timeout=10, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gan-restore run: configuration error: "), r.stderr
    assert message in lines[0]
    assert not (tmp_path / "runs").exists()
