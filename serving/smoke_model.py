"""A small, real generator for exercising the serving stack without a trained model.

Bilinear upsampling plus a learned-shape residual from three convolutions and a sub-pixel
(depth_to_space) layer, random weights from a seed: cheap enough for 1000x700 inputs on a laptop
CPU, image-like output (so tiling and transport errors show), exported through the real
`models.export.export_generator` path. Tests, the load benchmark and demos use it; real runs serve
what the Pusher pushed.
"""
from __future__ import annotations

import os


def build_smoke_generator(scale: int, seed: int = 0, width: int = 16):
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras

    init = keras.initializers.GlorotUniform(seed=seed)
    x = keras.Input([None, None, 3])
    h = keras.layers.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer=init)(x)
    h = keras.layers.Conv2D(width, 3, padding="same", activation="relu",
                            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1))(h)
    h = keras.layers.Conv2D(3 * scale * scale, 3, padding="same",
                            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2))(h)
    if scale > 1:
        h = keras.layers.Lambda(lambda t: tf.nn.depth_to_space(t, scale))(h)
        base = keras.layers.UpSampling2D(scale, interpolation="bilinear")(x)
    else:
        base = x
    y = keras.layers.Lambda(lambda t: tf.clip_by_value(t[0] + 0.1 * tf.tanh(t[1]), 0.0, 1.0))([base, h])
    return keras.Model(x, y, name=f"smoke_x{scale}")


def export_smoke_model(export_dir: str, cfg, seed: int = 0) -> str:
    """Export the smoke generator for `cfg` (its scale) as a serving SavedModel at export_dir."""
    from models.export import export_generator

    return export_generator(build_smoke_generator(cfg.scale, seed), export_dir, cfg, size_multiple=1)
