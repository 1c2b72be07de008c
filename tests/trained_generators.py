"""Small generators trained briefly on the committed samples, for tests whose figures mean something only
with trained weights (the PSNR cost of a reduced precision, tiles against whole images): the untrained
models are bicubic (SR) and the identity (deblur) by construction, where every rewrite is trivially exact.
Training starts from perturbed weights (a zero tail holds back every other layer's gradient for hundreds
of steps), a few hundred steps: the models are far from good (the SR one is below bicubic), but every
output pixel goes through trained layers, which is what a precision or tiling figure needs.

    trained_generator("sr") -> Trained(cfg, generator, pairs)   (cached per process)
    perturbed_generator(cfg) -> a generator with every weight moved off its initialisation (no training)

SR: SRResNet with batch norm and the tanh output (the paper's form, no bicubic skip: the whole image goes
through the network; batch norm is what the export folds),
4 blocks x 32 channels, L1 on 64x64 crops with x4 MATLAB-bicubic LR. Deblur: the tiny DeblurGAN generator
(2 blocks, 16 channels), L1 on 64x64 crops with a seeded camera-shake blur. `pairs` are (input uint8,
target uint8) of held-out sample tiles: 32x32 LR with 128x128 HR, 128x128 blurred with sharp.
"""
from __future__ import annotations

import functools
from typing import List, NamedTuple, Tuple

import numpy as np
import sample_images

from config import Config, preset

STEPS = {"sr": 300, "deblur": 400}  # deblur at 200: one held-out tile within 50.4 dB of its input (oneDNN on)
LR = {"sr": 3e-3, "deblur": 1e-3}
CROP, BATCH = 64, 8
HELD_OUT = 5  # the last five sample tiles (two photographs' worth of spread) are never trained on


class Trained(NamedTuple):
    cfg: Config
    generator: object
    pairs: List[Tuple[np.ndarray, np.ndarray]]


def config(task: str) -> Config:
    if task == "sr":
        return preset("tiny", "sr", {"model.batch_norm": True, "model.residual_bicubic": False})
    return preset("tiny", "deblur")


def perturbed_generator(cfg):
    """The generator with every weight moved away from its initialisation: unit batch norm, zero tails
    and equal PReLU slopes would hide mistakes in a rewrite."""
    import tf_keras as keras

    from models.networks import build_generator

    keras.utils.set_random_seed(0)
    model = build_generator(cfg)
    rng = np.random.default_rng(1)
    for v in model.variables:
        if "moving_variance" in v.name:
            v.assign(rng.uniform(0.5, 2.0, v.shape).astype(np.float32))
        elif "alpha" in v.name:
            v.assign(rng.uniform(0.0, 1.0, v.shape).astype(np.float32))
        else:
            v.assign(v + rng.normal(0.0, 0.02, v.shape).astype(np.float32))
    return model


@functools.cache
def trained_generator(task: str) -> Trained:
    import tensorflow as tf
    import tf_keras as keras

    from models import degrade, images

    cfg = config(task)
    g = perturbed_generator(cfg)
    names = sample_images.NAMES[::2]  # every other tile for training, spread over the photographs
    held_out = [n for n in sample_images.NAMES if n not in names][-HELD_OUT:]
    train = np.stack([images.uint8_to_float(sample_images.rgb(n)) for n in names])
    kernels = tf.constant(np.stack([degrade.motion_blur_kernel(s, 15, exposure=1.0) for s in range(BATCH)]),
                          tf.float32)
    opt = keras.optimizers.Adam(LR[task])
    rng = np.random.default_rng(0)

    @tf.function
    def step(target):
        degraded = degrade.imresize(target, 1 / cfg.scale) if task == "sr" else degrade.tf_blur(target, kernels)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(g(degraded, training=True) - target))
        opt.apply_gradients(zip(tape.gradient(loss, g.trainable_variables), g.trainable_variables, strict=True))
        return loss

    for _ in range(STEPS[task]):
        idx = rng.integers(0, len(train), BATCH)
        y, x = rng.integers(0, train.shape[1] - CROP + 1, 2)
        crops = train[idx, y:y + CROP, x:x + CROP]
        step(tf.constant(np.where(rng.random((BATCH, 1, 1, 1)) < 0.5, crops, crops[:, :, ::-1])))
    pairs = []
    for n in held_out:
        target = sample_images.rgb(n)
        degraded = (degrade.resize_uint8(target, 1 / cfg.scale) if task == "sr"
                    else sample_images.blurred(target, seed=HELD_OUT))
        pairs.append((degraded, target))
    return Trained(cfg, g, pairs)
