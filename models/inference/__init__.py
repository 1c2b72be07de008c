"""The inference graphs the export serves: a trained generator rewritten for speed (weights as graph
constants, exact rewrites), in the precision `export.precision` names.

    fn = inference_fn(generator, cfg, "float32")   # float32 [N, H, W, 3] -> float32 [N, sH, sW, 3]

SRResNet (srresnet.py) and the DeblurGAN generator (deblurgan.py) have rewrites; any other Keras
generator (the serving smoke model, test models) is served as it is, in float32 only.
"""
from __future__ import annotations

from config.checks import ConfigError
from models.inference import deblurgan, srresnet
from models.inference.precision import tf_dtype

# (task, Keras model name of models/networks) -> the module holding its rewrite
REWRITES = {("sr", "srresnet"): srresnet, ("deblur", "deblurgan_generator"): deblurgan}
# The float32 rewrite must reproduce the Keras generator this closely on the export-time check.
CHECK_TOLERANCE = 1e-3


def rewrite_of(generator, cfg):
    return REWRITES.get((cfg.task, generator.name))


def inference_fn(generator, cfg, precision: str = "float32"):
    """float32 images [N, H, W, 3] in [0, 1] -> float32 [N, sH, sW, 3]: the generator's rewrite in
    `precision`, or the generator itself (float32 only)."""
    module = rewrite_of(generator, cfg)
    if module is None:
        if precision != "float32":
            raise ConfigError(f"export.precision={precision} needs a generator with an inference rewrite "
                              f"(SRResNet, DeblurGAN); {generator.name!r} has none: export it in float32")
        return lambda x: generator(x, training=False)
    return module.inference_fn(generator, cfg, tf_dtype(precision))


def check_rewrite(generator, cfg, size: int = 24) -> float:
    """Max abs difference between the float32 rewrite and the Keras generator on a seeded input of
    size x size (a multiple of the generator's size multiple); raises when above CHECK_TOLERANCE, so a
    generator changed without its rewrite cannot be exported as something else."""
    import tensorflow as tf

    if rewrite_of(generator, cfg) is None:
        return 0.0
    x = tf.random.stateless_uniform([1, size, size, 3], seed=[7, 11])
    reference = float32_twin(generator)
    diff = float(tf.reduce_max(tf.abs(inference_fn(generator, cfg)(x) - reference(x, training=False))))
    if not diff <= CHECK_TOLERANCE:
        raise RuntimeError(f"the inference rewrite of {generator.name!r} differs from the Keras generator by "
                           f"{diff:.3g} (> {CHECK_TOLERANCE}): models/inference is out of date with models/networks")
    return diff


def float32_twin(generator):
    """The generator itself when it computes in float32, else a float32 copy with its weights: a generator
    trained under a mixed policy computes in bfloat16/float16, which the float32 rewrite must not be
    compared with (a trained tiny DeblurGAN measured 2.3e-3 apart in mixed_bfloat16)."""
    import tf_keras as keras

    if all(layer.compute_dtype in (None, "float32") for layer in generator.layers):
        return generator
    twin = keras.models.clone_model(
        generator, clone_function=lambda layer: layer.__class__.from_config({**layer.get_config(), "dtype": "float32"}))
    twin.set_weights(generator.get_weights())
    return twin
