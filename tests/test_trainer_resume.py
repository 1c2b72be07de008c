"""A training job killed mid-way (SIGKILL, after a checkpoint) resumes from its checkpoint when rerun,
finishes and exports an SR model that answers for a PNG of any size (37x53 -> 148x212)."""
import io
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from fixtures_data import fixture_config
from PIL import Image

from models.trainer import training_run
from serving.server_process import LogWatcher

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARMUP, GAN, EVERY = 6, 60, 3


def resumable_job(data, tmp_path, warmup: int, gan: int, every: int):
    """(config, `gan-restore train` command, output dir, the training run's checkpoint dir) of a job that
    checkpoints and logs every `every` steps under tmp_path (also the multi-worker resume test's job)."""
    cfg = fixture_config("sr", **{"train.warmup_steps": warmup, "train.gan_steps": gan,
                                  "train.checkpoint_every": every, "train.log_every": every,
                                  "train.image_every": 30, "train.checkpoint_root": str(tmp_path / "ckpt")})
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(cfg.to_json())
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cli.main", "train", "--config", str(cfg_path),
           "--transform-output", data.transform_graph, "--train-files", data.train_files[0],
           "--eval-files", data.eval_files[0], "--serving-model-dir", str(out / "model"),
           "--model-run-dir", str(out / "logs")]
    return cfg, cmd, out, os.path.join(cfg.checkpoint_root, training_run(cfg, data.train_files, data.eval_files))


def checkpoint_steps(ckpt_dir):
    if not os.path.isdir(ckpt_dir):
        return []
    return sorted(int(m.group(1)) for f in os.listdir(ckpt_dir) if (m := re.fullmatch(r"ckpt-(\d+)\.index", f)))


@pytest.mark.slow
def test_killed_training_resumes_from_checkpoint_and_exports(transformed_sr, tmp_path):
    import tensorflow as tf

    cfg, cmd, out, checkpoint_dir = resumable_job(transformed_sr, tmp_path, WARMUP, GAN, EVERY)

    # First attempt: SIGKILL once the trainer reports a GAN-phase checkpoint saved (the phase must survive
    # the restart). Its "checkpoint <path>" line comes after the checkpoint state file names it.
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    log = LogWatcher(proc.stdout, str(tmp_path / "first.log"))
    gan_steps = "|".join(str(step) for step in range(WARMUP + 1, WARMUP + GAN))
    saved = log.wait_for(rf"models\.trainer: checkpoint \S+ckpt-({gan_steps})$", timeout=600)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = int(tf.train.latest_checkpoint(checkpoint_dir).rsplit("-", 1)[1])
    assert killed_at >= int(saved.group(1))  # a later one may have been saved before the kill
    assert WARMUP < killed_at < WARMUP + GAN, "the first attempt was not stopped mid-way"
    assert not (out / "model" / "saved_model.pb").exists()

    # Second attempt: the same command resumes and finishes.
    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert re.search(rf"resumed from \S+ckpt-{killed_at} at step {killed_at} \(gan phase\)", second.stderr)
    logged = [int(s) for s in re.findall(r"step (\d+)/\d+ \[", second.stderr)]
    assert logged and logged[0] > killed_at and logged[-1] == WARMUP + GAN  # the step count continues
    assert checkpoint_steps(checkpoint_dir)[-1] == WARMUP + GAN

    served = tf.saved_model.load(str(out / "model"))
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(png, "PNG")
    result = served.signatures["serving_default"](image_bytes=tf.constant([png.getvalue()]))
    assert (int(result["height"][0]), int(result["width"][0])) == (148, 212)
    assert np.asarray(Image.open(io.BytesIO(result["image_bytes"][0].numpy()))).shape == (148, 212, 3)
