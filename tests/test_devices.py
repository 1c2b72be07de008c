"""The Trainer's devices: GPUs asked for and none visible stop it at start with one line (unless
train.allow_cpu); TF_CONFIG naming a cluster selects multi-worker training (run in
tests/test_trainer_multiworker.py, which needs processes of its own). This machine has no GPU."""
import json
import logging

import pytest
import tensorflow as tf

from cli import main as cli
from config import ConfigError, preset
from models import cluster
from models.gan_loop import GpuUnavailable, make_strategy

pytestmark = pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="checks a machine without GPUs")


def test_asking_for_a_gpu_without_one_stops_with_one_line():
    with pytest.raises(GpuUnavailable) as e:
        make_strategy(preset("tiny").override({"train.num_gpus": 1}))
    message = str(e.value)
    assert "\n" not in message and isinstance(e.value, ConfigError)
    assert message.startswith("train.num_gpus=1 but TensorFlow sees no GPU") and "train.allow_cpu=true" in message


def test_allow_cpu_trains_on_the_cpu_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="models.gan_loop"):
        strategy = make_strategy(preset("tiny").override({"train.num_gpus": 2, "train.allow_cpu": True}))
    assert strategy is tf.distribute.get_strategy() and strategy.num_replicas_in_sync == 1
    assert "training on the CPU (train.allow_cpu)" in caplog.text
    assert make_strategy(preset("tiny")) is tf.distribute.get_strategy()  # num_gpus 0: whatever is there


def test_allow_cpu_is_a_checked_setting_outside_the_run_identity():
    with pytest.raises(ConfigError, match="train.allow_cpu must be a boolean"):
        preset("tiny").override({"train.allow_cpu": "perhaps"})
    cfg = preset("tiny")
    assert cfg.override({"train.allow_cpu": True}).fingerprint() == cfg.fingerprint()  # resumes the same run


def test_gan_restore_train_stops_before_reading_anything(tmp_path, capsys):
    """The Trainer's first act: the command ends (exit 2) with the one line, before any data is read
    (the files named here do not exist)."""
    code = cli.main(["train", "--preset", "tiny", "--set", "train.num_gpus=1", "--train-files", str(tmp_path / "none"),
                     "--eval-files", str(tmp_path / "none"), "--serving-model-dir", str(tmp_path / "m"),
                     "--model-run-dir", str(tmp_path / "logs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("gan-restore train: configuration error: train.num_gpus=1 but TensorFlow sees no GPU")
    assert not (tmp_path / "m").exists() and not (tmp_path / "logs").exists()


def test_tf_config_names_the_cluster(monkeypatch):
    def resolver(tf_config):
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
        return cluster.cluster_resolver()

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cluster.cluster_resolver() is None
    assert resolver({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}) is None  # one task
    two = resolver({"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}})
    assert two.cluster_spec().as_dict() == {"chief": ["a:1"], "worker": ["b:1"]} and two.task_type == "worker"
    with pytest.raises(ValueError, match="parameter servers"):
        resolver({"cluster": {"worker": ["a:1", "b:1"], "ps": ["c:1"]}, "task": {"type": "worker", "index": 0}})
    with pytest.raises(ValueError, match="not one of the cluster's chief/worker tasks"):
        resolver({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "evaluator", "index": 0}})
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not JSON"):
        cluster.cluster_resolver()


def test_single_worker_files_stay_where_they_are(tmp_path):
    """Outside multi-worker training every process is the chief: it writes in place, removes nothing."""
    strategy = tf.distribute.get_strategy()
    assert cluster.is_chief(strategy) and cluster.write_dir(str(tmp_path), strategy) == str(tmp_path)
    manager = cluster.checkpoint_manager(tf.train.Checkpoint(v=tf.Variable(1)), str(tmp_path), strategy, 2)
    assert isinstance(manager, tf.train.CheckpointManager)
    cluster.barrier(strategy)  # returns at once
