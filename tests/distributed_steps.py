"""One warm-up step and one GAN step (critic + generator) of the GAN loop under a strategy, and the
check that a distributed step equals the single-device step on the same global batch. Shared by the
MirroredStrategy test (2 logical CPUs) and the MultiWorkerMirroredStrategy test (2 processes).

These run in child processes: logical devices and collective ops must be configured before
TensorFlow initialises, which would otherwise leak into (and be impossible in) the test process.
"""
from __future__ import annotations

import numpy as np
import pytest
from fixtures_data import fixture_config


def step_config(task: str):
    """No batch norm anywhere (per-replica statistics differ): the SR generator without BN and, under
    WGAN, an instance-norm critic; gp_weight 0 because the penalty samples random points per replica."""
    return fixture_config(task, **{"train.warmup_steps": 1, "train.gan_steps": 1, "train.disc_steps": 1,
                                   "loss.adversarial": "wgan-gp", "loss.gp_weight": 0.0})


def fixed_global_batch(cfg, data: dict):
    from models import train_data

    spec = train_data.feature_spec(data["transform_graph"])
    return train_data.fixed_batch(train_data.expand_files(data["train_files"]), spec, cfg.train.batch_size)


def one_step_each_phase(cfg, strategy, batch) -> dict:
    """Losses and updated weights (plain lists) after a warm-up step and a GAN step on `batch`."""
    import tensorflow as tf

    from models import cluster
    from models.gan_loop import GanTrainer

    trainer = GanTrainer(cfg, strategy)
    it = iter(cluster.distribute(strategy, tf.data.Dataset.from_tensors(batch).repeat()))
    losses = {**trainer.train_one_step(it), **trainer.train_one_step(it)}  # warm-up, then GAN
    return {"replicas": strategy.num_replicas_in_sync, "losses": losses,
            "weights": {f"{m.name}/{w.name}": np.asarray(w.numpy()).ravel().tolist()
                        for m in (trainer.generator, trainer.discriminator) for w in m.weights}}


def weight_difference(a: dict, b: dict) -> np.ndarray:
    names = sorted(a["weights"])
    assert names == sorted(b["weights"])
    return np.abs(np.concatenate([a["weights"][n] for n in names]) - np.concatenate([b["weights"][n] for n in names]))


def assert_same_step(single: dict, other: dict, cfg) -> np.ndarray:
    """Losses equal to 1e-5 and updated weights to 1e-5; returns the absolute weight differences.

    The GAN-step losses are computed after the warm-up update, so they already compare updated
    weights. Updated weights directly: Adam's first steps move every weight by about +-lr whatever
    the size of its gradient, so a gradient that is zero up to rounding (e.g. a conv bias right
    before instance norm) can move either way on either side; all the others must agree to 1e-5."""
    assert set(single["losses"]) == set(other["losses"]) >= {"pixel", "gen_total", "disc_total"}
    for k, v in single["losses"].items():
        assert other["losses"][k] == pytest.approx(v, rel=1e-5, abs=1e-6), k
    diff = weight_difference(single, other)
    assert np.mean(diff > 1e-5) < 1e-3, f"{np.sum(diff > 1e-5)} of {diff.size} weights differ by more than 1e-5"
    assert diff.max() <= 4 * max(cfg.train.lr_gen, cfg.train.lr_disc)
    return diff
