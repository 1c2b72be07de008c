"""Training input: the Transform output (transformed tf.Examples) as batches of float image pairs.

Reads the transformed TFRecords with tf.data and the transformed feature spec of the
`tft.TFTransformOutput` (so the Trainer needs no `data_accessor` and the CLI can run it outside TFX),
decodes the `degraded` / `target` PNGs to float32 [0, 1], and for training shuffles, cuts random
aligned patches (`train.patch_size`), augments (`train.augment`), batches by the *global* batch size
and prefetches. Everything random is seeded from `train.seed` (stateless ops keyed by the example's
position in the stream), so two runs with the same config see the same batches.
"""
from __future__ import annotations

import glob
import os
from typing import Iterable, List

import tensorflow as tf

from contracts.features import DEGRADED, TARGET
from models import images

# Colour jitter of the classic CelebA SRGAN recipe: small, and identical for input and target so the
# pair stays consistent (the network must not learn to undo a colour shift).
BRIGHTNESS_DELTA = 0.05
CONTRAST_RANGE = (0.9, 1.1)
SATURATION_RANGE = (0.9, 1.1)
HUE_DELTA = 0.02


def expand_files(patterns: Iterable[str]) -> List[str]:
    """File patterns (TFX gives `<uri>/Split-train/*`) or directories to a sorted file list."""
    files = []
    for p in patterns:
        if os.path.isdir(p):
            p = os.path.join(p, "*")
        files.extend(f for f in glob.glob(p) if os.path.isfile(f))
    if not files:
        raise FileNotFoundError(f"no transformed examples match {list(patterns)}")
    return sorted(files)


def feature_spec(transform_output_dir: str | None) -> dict:
    """The transformed feature spec: from the Transform graph when there is one, else the contract."""
    if transform_output_dir:
        import tensorflow_transform as tft

        spec = dict(tft.TFTransformOutput(transform_output_dir).transformed_feature_spec())
    else:
        spec = {DEGRADED: tf.io.FixedLenFeature([], tf.string), TARGET: tf.io.FixedLenFeature([], tf.string)}
    missing = {DEGRADED, TARGET} - set(spec)
    if missing:
        raise ValueError(f"the Transform output has no feature(s) {sorted(missing)}; got {sorted(spec)}")
    # Only the pair is needed for training; parsing less is faster.
    return {k: spec[k] for k in (DEGRADED, TARGET)}


def record_dataset(files: List[str]) -> tf.data.Dataset:
    """TFRecords, gzipped when named `*.gz` (TFX Transform's output) or not (ImageExampleGen's)."""
    compression = "GZIP" if files[0].endswith(".gz") else ""
    return tf.data.TFRecordDataset(files, compression_type=compression)


def _decode(spec):
    def fn(serialized):
        ex = tf.io.parse_single_example(serialized, spec)
        return (images.tf_to_float(images.tf_decode_rgb8(ex[DEGRADED])),
                images.tf_to_float(images.tf_decode_rgb8(ex[TARGET])))
    return fn


def augment_pair(degraded, target, seed, rotate: bool = False):
    """Random left-right flip and small colour jitter, drawn once and applied to both images; with
    `rotate` also a random multiple of 90 degrees (with the flip: all 8 orientations of the square).

    `seed` is a stateless seed (shape [2] int); the same seed gives the same augmentation.
    """
    if rotate:  # a seed of its own: the draws below are those of rotate=False
        turns = tf.random.stateless_uniform([], seed=tf.random.experimental.stateless_split(seed, 2)[1],
                                            minval=0, maxval=4, dtype=tf.int32)
        degraded, target = tf.image.rot90(degraded, turns), tf.image.rot90(target, turns)
    u = tf.random.stateless_uniform([5], seed=seed)
    flip = u[0] < 0.5
    brightness = (2.0 * u[1] - 1.0) * BRIGHTNESS_DELTA
    contrast = CONTRAST_RANGE[0] + u[2] * (CONTRAST_RANGE[1] - CONTRAST_RANGE[0])
    saturation = SATURATION_RANGE[0] + u[3] * (SATURATION_RANGE[1] - SATURATION_RANGE[0])
    hue = (2.0 * u[4] - 1.0) * HUE_DELTA

    def apply(img):
        img = tf.cond(flip, lambda: tf.image.flip_left_right(img), lambda: img)
        img = tf.image.adjust_brightness(img, brightness)
        img = tf.image.adjust_contrast(img, contrast)
        img = tf.image.adjust_saturation(img, saturation)
        img = tf.image.adjust_hue(img, hue)
        return tf.clip_by_value(img, 0.0, 1.0)

    return apply(degraded), apply(target)


def random_patch(degraded, target, size: int, scale: int, seed):
    """The same random square of both images: `size` target pixels, `size // scale` degraded pixels,
    at a position on the degraded (LR) grid, so the pair stays exactly aligned. Stateless `seed` [2]."""
    small = size // scale
    room = tf.shape(degraded)[:2] - small + 1
    u = tf.random.stateless_uniform([2], seed=seed, minval=0, maxval=2**31 - 1, dtype=tf.int32)
    oy, ox = tf.unstack(tf.math.floormod(u, room))
    return (degraded[oy:oy + small, ox:ox + small],
            target[oy * scale:oy * scale + size, ox * scale:ox * scale + size])


def train_dataset(files: List[str], spec: dict, cfg, stream_offset: int = 0) -> tf.data.Dataset:
    """Endless (degraded, target) batches of `train.batch_size` (the global batch), augmented.

    `stream_offset` (the global step a resumed run starts at) reseeds shuffle and augmentation, so a
    resumed run does not replay the batches the first attempt already trained on.
    """
    t = cfg.train
    seed = int(t.seed) * 1_000_003 + int(stream_offset)
    ds = record_dataset(files).repeat()
    ds = ds.shuffle(t.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(_decode(spec), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    patch = cfg.train_patch
    if t.augment or patch < cfg.data.crop_size:
        seeds = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.constant(seed, tf.int64), i]))

        def prepare(pair, s):
            degraded, target = pair
            if patch < cfg.data.crop_size:
                patch_seed = tf.random.experimental.stateless_split(s, 1)[0]  # independent of `s`'s draws
                degraded, target = random_patch(degraded, target, patch, cfg.scale, patch_seed)
            return augment_pair(degraded, target, s, t.augment_rotate) if t.augment else (degraded, target)

        ds = tf.data.Dataset.zip((ds, seeds)).map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(t.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def fixed_batch(files: List[str], spec: dict, size: int):
    """The first `size` examples of a split, unaugmented: a fixed batch for PSNR and image grids."""
    ds = record_dataset(files).map(_decode(spec)).batch(size)
    for degraded, target in ds.take(1):
        return degraded, target
    raise ValueError(f"no examples in {files}")
