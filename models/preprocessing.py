"""The Transform step: decode -> crop -> degrade, as a tf.Transform `preprocessing_fn`.

TFX runs it with `Transform(preprocessing_fn="models.preprocessing.preprocessing_fn",
custom_config={"config": cfg.to_json()})`; every setting comes from that `Config`.

Input (ImageExampleGen, docs/architecture.md): `id`, `image` (encoded HR / sharp frame) and, for
the GOPRO layout only, `blur` (the real blurred frame, same size). Output, one example per input:
    id           bytes     as ingested
    target       bytes     PNG, uint8 `data.crop_size` square: HR (SR) or sharp (deblur)
    degraded     bytes     PNG: SR -> LR `crop_size / scale` by MATLAB-style antialiased bicubic;
                           deblur -> the aligned crop of the real blurred frame, or (a sharp-only
                           example, whose `blur` is absent or empty) the crop blurred by a synthetic
                           camera-trajectory motion blur
    target_mean  float[3]  only with `data.dataset_mean`: per-channel mean in [0, 1] of the *training*
                           split's targets (a full-pass analyzer)

Crops: SR takes the centre (faces are aligned, benchmark protocols crop centrally); deblur takes a
pseudo-random position keyed by the id (GOPRO frames are much larger than the crop, the centre alone
would waste most of the frame). Every random choice is a stateless op seeded by a fingerprint of the
id and `data.blur_seed`, so reruns, workers and retries all produce the same bytes.

The degradation is training-data synthesis only: the served model (models/export.py) takes images
that are already degraded, and the Trainer reads these transformed examples directly, never this
graph at serving time.
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from config import Config
from contracts.features import BLUR, DEGRADED, ID, IMAGE, TARGET, TARGET_MEAN
from models import degrade, images

# Seeds are int64 pairs; the fingerprint of the id is reduced to a non-negative int63 range.
_HASH_BUCKETS = 2**62


def preprocessing_fn(inputs, custom_config):
    """tf.Transform entry point: a batch of ingested examples to a batch of training pairs."""
    cfg = _config(custom_config)
    ids = _scalar_strings(inputs[ID], ID)
    image = _scalar_strings(inputs[IMAGE], IMAGE)
    # Real blur pairs are used when the data has them (GOPRO); SR ignores them.
    blur = _scalar_strings(inputs[BLUR], BLUR) if cfg.task == "deblur" and BLUR in inputs else None

    if blur is None:
        elems = (ids, image)
        fn = lambda e: make_pair(e[0], e[1], None, cfg)
    else:
        elems = (ids, image, blur)
        fn = lambda e: make_pair(e[0], e[1], e[2], cfg)
    crop, small = cfg.data.crop_size, cfg.data.crop_size // cfg.scale
    target, degraded = tf.map_fn(
        fn, elems,
        fn_output_signature=(tf.TensorSpec([crop, crop, 3], tf.uint8), tf.TensorSpec([small, small, 3], tf.uint8)),
        name="make_pairs")

    out = {
        ID: ids,
        TARGET: tf.map_fn(tf.io.encode_png, target, fn_output_signature=tf.string, name="encode_target"),
        DEGRADED: tf.map_fn(tf.io.encode_png, degraded, fn_output_signature=tf.string, name="encode_degraded"),
    }
    if cfg.data.dataset_mean:
        # The analysis pass (an extra read of every train record) runs only the ops the analyzer
        # needs: decode and crop, not the degradation. The transform pass replaces `mean` by its value
        # and, as the output's shape comes from `ids`, prunes the crops' means away.
        crop_means = tf.map_fn(lambda e: _target_mean(e[0], e[1], cfg), (ids, image),
                               fn_output_signature=tf.TensorSpec([3], tf.float32), name="target_means")
        mean = tft.mean(crop_means, reduce_instance_dims=False)  # [3], over the analyzed (train) split
        out[TARGET_MEAN] = tf.broadcast_to(mean, tf.stack([tf.shape(ids)[0], 3]))
    return out


def make_pair(example_id, image_bytes, blur_bytes, cfg: Config):
    """One example: encoded image (and blurred frame) -> (target, degraded) uint8 images.

    Pure TensorFlow, usable eagerly (tests, notebooks) as well as inside the Transform graph.
    """
    crop = cfg.data.crop_size
    image, offset, blur_seed = _decode_and_place(example_id, image_bytes, cfg)
    target = _crop(image, offset, crop)
    if cfg.task == "sr":
        lr = degrade.imresize(images.tf_to_float(target), 1.0 / cfg.model.scale)
        return target, images.tf_to_uint8(lr)

    if blur_bytes is None:
        return target, synthetic_blur(image, offset, crop, blur_seed, cfg)

    def real_blur():
        blurred = images.tf_decode_rgb8(blur_bytes)
        tf.debugging.assert_equal(
            tf.shape(blurred), tf.shape(image),
            message=tf.strings.format("blur and sharp frames differ in size for id {}", example_id))
        return _crop(blurred, offset, crop)

    # A data set may mix real pairs with sharp-only frames (no `blur`: an empty value), blurred here.
    return target, tf.cond(tf.strings.length(blur_bytes) > 0, real_blur,
                           lambda: synthetic_blur(image, offset, crop, blur_seed, cfg))


def _decode_and_place(example_id, image_bytes, cfg: Config):
    """(decoded frame, crop offset, blur seed) of one example."""
    image = images.tf_decode_rgb8(image_bytes)
    _check_size(image, cfg.data.crop_size, example_id)
    crop_seed, blur_seed = example_seeds(example_id, cfg)
    return image, crop_offset(tf.shape(image)[0], tf.shape(image)[1], crop_seed, cfg), blur_seed


def _target_mean(example_id, image_bytes, cfg: Config):
    """Per-channel mean in [0, 1] of the example's target crop."""
    image, offset, _ = _decode_and_place(example_id, image_bytes, cfg)
    return tf.reduce_mean(images.tf_to_float(_crop(image, offset, cfg.data.crop_size)), axis=[0, 1])


def synthetic_blur(image, offset, crop, seed, cfg: Config):
    """The crop at `offset`, blurred by a seeded camera-shake kernel (models/degrade.py).

    The kernel sees the image around the crop (a margin of half the kernel), as a real camera
    would; only where the crop touches the frame edge is the margin a reflection.
    """
    r = cfg.data.blur_kernel_size // 2
    padded = tf.pad(image, [[r, r], [r, r], [0, 0]], mode="REFLECT")
    window = images.tf_to_float(_crop(padded, offset, crop + 2 * r))
    blurred = degrade.tf_motion_blur(window, seed, cfg.data.blur_kernel_size, bank_seed=cfg.data.blur_seed,
                                     min_exposure=cfg.data.blur_min_exposure)
    return images.tf_to_uint8(blurred[r:r + crop, r:r + crop])


def example_seeds(example_id, cfg: Config):
    """Two independent stateless-RNG seeds ([2] int64: crop position, blur kernel) from a fingerprint
    of the id and `data.blur_seed`: the same id always gets the same crop and the same blur."""
    h = tf.strings.to_hash_bucket_fast(example_id, _HASH_BUCKETS)
    seed = tf.stack([h, tf.constant(cfg.data.blur_seed, tf.int64)])
    return tf.unstack(tf.random.experimental.stateless_split(seed, 2))


def _config(custom_config) -> Config:
    if not custom_config or "config" not in custom_config:
        raise ValueError("preprocessing_fn needs custom_config={'config': cfg.to_json()} (pipeline/pipeline.py)")
    return Config.from_json(custom_config["config"])


def _scalar_strings(x, name):
    """A batch of one string per example as a [N] tensor, whatever the schema made of the feature.

    With SchemaGen's inferred shapes a feature arrives as [N, 1]; without them (or an optional feature,
    such as `blur` in a data set that mixes pairs and sharp-only frames) as a SparseTensor, where a
    missing value becomes ""; from a hand-written FixedLenFeature([]) as [N].
    """
    if isinstance(x, tf.SparseTensor):
        # [N, 1] even when no example of this batch has a value (the dense shape would be [N, 0]).
        x = tf.sparse.to_dense(tf.sparse.reset_shape(x, tf.stack([x.dense_shape[0], 1])), default_value="")
    if x.shape.rank == 2:
        tf.debugging.assert_equal(tf.shape(x)[1], 1, message=f"feature {name!r} must hold one value per example")
        x = x[:, 0]
    elif x.shape.rank != 1:
        raise ValueError(f"feature {name!r}: expected one string per example, got shape {x.shape}")
    return x


def _check_size(image, crop, example_id):
    # ImageExampleGen rejects images below data.min_size (default: the crop size); this catches a
    # config that lowered min_size below crop_size, with the id in the message.
    tf.debugging.assert_greater_equal(
        tf.reduce_min(tf.shape(image)[:2]), crop,
        message=tf.strings.format("image {} is smaller than data.crop_size=" + str(crop)
                                  + " (raise data.min_size or lower data.crop_size)", example_id))


def crop_offset(height, width, seed, cfg: Config):
    """Top-left corner (y, x) of the crop: the centre for SR, uniform over the frame for deblur."""
    crop = cfg.data.crop_size
    if cfg.task == "sr":
        return (height - crop) // 2, (width - crop) // 2
    # Full-range 64-bit integers reduced modulo the number of positions (bias < 2**-40 for any frame).
    u = tf.random.stateless_uniform([2], seed=seed, minval=None, maxval=None, dtype=tf.int64)
    room = tf.cast(tf.stack([height - crop + 1, width - crop + 1]), tf.int64)
    oy, ox = tf.unstack(tf.cast(tf.math.floormod(u, room), tf.int32))
    return oy, ox


def _crop(image, offset, crop):
    out = tf.image.crop_to_bounding_box(image, offset[0], offset[1], crop, crop)
    out.set_shape([crop, crop, 3])
    return out
