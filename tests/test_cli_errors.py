"""Errors a user must act on (a diverged training run, missing VGG weights, a bad setting) end the
`gan-restore` command with their one line LAST and no traceback; `-v` shows the traceback. The real
command runs in a subprocess: `run` with a learning rate that diverges inside the TFX Trainer under
BeamDagRunner, and `train` on a real Transform output (tests/fixtures_data.py)."""
import json
import logging
import os
import subprocess
import sys

import pytest

from config import SAMPLE_DATA
from config.errors import UserError, find_user_error
from models.gan_loop import TrainingDiverged
from pipeline.local_runner import _ProgressOnly

BIN = os.path.join(os.path.dirname(sys.executable), "gan-restore")
DIVERGE = ["--set", "train.lr_gen=1e9", "--set", "train.warmup_steps=6", "--set", "train.gan_steps=0",
           "--set", "train.log_every=1"]


def gan_restore(*args, tmp_path, timeout=600):
    env = dict(os.environ, HOME=str(tmp_path), KERAS_HOME=str(tmp_path / "keras"))  # no VGG weights anywhere
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env=env)


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def test_the_innermost_user_error_is_found_through_beams_re_raise():
    """Beam re-raises a component's exception with the step name appended while handling it."""
    for wrapper in (TrainingDiverged, RuntimeError):
        try:
            try:
                raise TrainingDiverged("loss pixel=nan at step 3")
            except TrainingDiverged as e:
                raise wrapper(f"{e} [while running 'Run[Trainer]']")  # noqa: B904 (the context is the point)
        except Exception as outer:
            assert str(find_user_error(outer)) == "loss pixel=nan at step 3"
    assert find_user_error(RuntimeError("a bug")) is None
    assert issubclass(TrainingDiverged, UserError)


def test_the_run_log_drops_beams_traceback_of_a_user_error_only():
    def record(exc):
        return logging.LogRecord("apache_beam.runners.common", logging.ERROR, __file__, 1, str(exc), None,
                                 (type(exc), exc, None))

    keep = _ProgressOnly()
    assert not keep.filter(record(TrainingDiverged("loss pixel=nan")))
    assert keep.filter(record(RuntimeError("a bug: its traceback stays")))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_diverged_pipeline_run_ends_with_one_line_and_no_traceback(tmp_path):
    r = gan_restore("run", "--run-root", str(tmp_path / "runs"), "--until", "trainer", "--set",
                    f"data.root={SAMPLE_DATA}",
                    "--set", "data.crop_size=32", "--set", "train.batch_size=2", "--set", "train.patch_size=0",
                    "--set", "beam_args=[]", *DIVERGE, tmp_path=tmp_path)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    line = last_line(r.stderr)
    assert line.startswith("gan-restore run: loss pixel=") and "stopping, nothing exported" in line, r.stderr[-3000:]
    assert "while running" not in line  # the message as the trainer wrote it, not Beam's re-raise


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_train_ends_with_one_line_for_divergence_and_missing_weights_and_v_shows_the_traceback(
        transformed_sr, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(transformed_sr.cfg.to_json())
    base = ["train", "--config", str(config), "--transform-output", transformed_sr.transform_graph,
            "--train-files", transformed_sr.train_files[0], "--eval-files", transformed_sr.eval_files[0],
            "--serving-model-dir", str(tmp_path / "model"), "--model-run-dir", str(tmp_path / "logs")]
    no_weights = ["--set", "loss.perceptual_net=vgg19", "--set", "loss.perceptual_weight=1.0",
                  "--set", f"loss.vgg_weights={tmp_path / 'none.h5'}"]

    diverged = gan_restore(*base, *DIVERGE, tmp_path=tmp_path)
    assert diverged.returncode == 1 and "Traceback" not in diverged.stderr, diverged.stderr[-3000:]
    assert last_line(diverged.stderr).startswith("gan-restore train: loss pixel="), diverged.stderr[-3000:]
    assert not (tmp_path / "model").exists()

    missing = gan_restore(*base, *no_weights, tmp_path=tmp_path)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr, missing.stderr[-3000:]
    assert last_line(missing.stderr).startswith("gan-restore train: the perceptual loss needs the ImageNet VGG19 "
                                                "weights file"), missing.stderr[-3000:]

    verbose = gan_restore("-v", *base, *no_weights, tmp_path=tmp_path)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    assert "MissingFileError" in last_line(verbose.stderr)


def test_a_bad_setting_shows_its_traceback_with_v(tmp_path):
    r = gan_restore("-v", "config", "--set", "train.batch_size=0", tmp_path=tmp_path, timeout=60)
    assert r.returncode == 1 and "Traceback" in r.stderr and "ConfigError" in last_line(r.stderr)
    quiet = gan_restore("config", "--set", "train.batch_size=0", tmp_path=tmp_path, timeout=60)
    assert quiet.returncode == 2 and quiet.stderr.strip().splitlines() == [
        "gan-restore config: configuration error: train.batch_size must be >= 1; got 0"]
    json.loads(gan_restore("config", tmp_path=tmp_path, timeout=60).stdout)  # and a good one still works
