"""Small serialisable tf_keras layers the generators and critics share.

All of them are registered under the package name "gan_restoration", so `model_from_json`,
`load_model` and `clone_model` find them once this module is imported (or pass `custom_objects()`).
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras
from tensorflow.python.autograph.core import config as _autograph_config

PACKAGE = "gan_restoration"


def _skip_autograph_for_tf_keras() -> None:
    """Stop AutoGraph from re-converting tf_keras' own code inside every tf.function.

    TF's rules skip the `keras` package but not `tf_keras` (the Keras 2 of TF >= 2.16), so the first
    trace of a function that calls a model rewrites thousands of tf_keras functions: 15-30 s per
    trace on 2 cores, 0.4 s without (measured on the tiny SRResNet). tf_keras is graph-safe code, as
    `keras` was when the rule was written. Our own layers and the trainer's code are still converted.
    """
    rule = _autograph_config.DoNotConvert("tf_keras")
    if not any(getattr(r, "_prefix", None) == "tf_keras" for r in _autograph_config.CONVERSION_RULES):
        _autograph_config.CONVERSION_RULES = (rule,) + tuple(_autograph_config.CONVERSION_RULES)


_skip_autograph_for_tf_keras()
_register = keras.utils.register_keras_serializable(package=PACKAGE)


@_register
class ICNR(keras.initializers.Initializer):
    """ICNR initialisation of a sub-pixel convolution (Aitken et al. 2017).

    A kernel for `out = C * scale**2` channels is built from a base kernel for C channels, repeated so
    that every output channel of one depth_to_space block gets the same filter: at initialisation the
    sub-pixel layer equals "conv, then nearest-neighbour upsampling", which has no checkerboard.
    TF's depth_to_space reads channel (i * scale + j) * C + c for the pixel (i, j) of a block, hence a
    tile along the channel axis.
    """

    def __init__(self, scale: int = 2, initializer="glorot_uniform"):
        self.scale = int(scale)
        self.initializer = keras.initializers.get(initializer)

    def __call__(self, shape, dtype=None, **kwargs):
        r2 = self.scale ** 2
        if shape[-1] % r2:
            raise ValueError(f"ICNR: {shape[-1]} output channels are not a multiple of scale**2 = {r2}")
        base = self.initializer(tuple(shape[:-1]) + (shape[-1] // r2,), dtype=dtype)
        return tf.tile(base, [1] * (len(shape) - 1) + [r2])

    def get_config(self):
        return {"scale": self.scale, "initializer": keras.initializers.serialize(self.initializer)}


@_register
class DepthToSpace(keras.layers.Layer):
    """tf.nn.depth_to_space as a layer (pixel shuffle)."""

    def __init__(self, block_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, x):
        return tf.nn.depth_to_space(x, self.block_size)

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@_register
class SubPixelConv2D(keras.layers.Layer):
    """Sub-pixel convolution (Shi et al. 2016): conv to filters * scale**2 channels, then depth_to_space.

    `icnr=True` initialises the kernel with ICNR (checkerboard-free at initialisation).
    """

    def __init__(self, filters: int, scale: int = 2, kernel_size: int = 3, icnr: bool = True,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.scale = int(scale)
        self.kernel_size = int(kernel_size)
        self.icnr = bool(icnr)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        out = self.filters * self.scale ** 2
        init = ICNR(self.scale, self.kernel_initializer) if self.icnr else self.kernel_initializer
        self.kernel = self.add_weight(
            "kernel", shape=(self.kernel_size, self.kernel_size, int(input_shape[-1]), out), initializer=init)
        self.bias = self.add_weight("bias", shape=(out,), initializer="zeros")
        super().build(input_shape)

    def call(self, x):
        y = tf.nn.conv2d(x, tf.cast(self.kernel, x.dtype), strides=1, padding="SAME")
        y = tf.nn.bias_add(y, tf.cast(self.bias, x.dtype))
        return tf.nn.depth_to_space(y, self.scale)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        s = self.scale
        return tf.TensorShape([n, None if h is None else h * s, None if w is None else w * s, self.filters])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "scale": self.scale,
                "kernel_size": self.kernel_size, "icnr": self.icnr,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@_register
class InstanceNormalization(keras.layers.Layer):
    """Per-example, per-channel normalisation over H and W (Ulyanov et al. 2016).

    Defaults match the PyTorch `InstanceNorm2d(affine=False)` of the CycleGAN/DeblurGAN code (no learned
    scale/offset, eps 1e-5). Statistics are computed in float32 even under a float16 policy.
    """

    def __init__(self, epsilon: float = 1e-5, center: bool = False, scale: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.gamma = self.add_weight("gamma", shape=(c,), initializer="ones") if self.scale else None
        self.beta = self.add_weight("beta", shape=(c,), initializer="zeros") if self.center else None
        super().build(input_shape)

    def call(self, x):
        x32 = tf.cast(x, tf.float32)
        mean, var = tf.nn.moments(x32, axes=[1, 2], keepdims=True)
        y = (x32 - mean) * tf.math.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            y = y * tf.cast(self.gamma, tf.float32)
        if self.beta is not None:
            y = y + tf.cast(self.beta, tf.float32)
        return tf.cast(y, x.dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale}


@_register
class ReflectionPadding2D(keras.layers.Layer):
    """Reflect padding of H and W by `padding` pixels on each side (needs padding < size)."""

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        p2 = 2 * self.padding
        return tf.TensorShape([n, None if h is None else h + p2, None if w is None else w + p2, c])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@_register
class BicubicUpsample(keras.layers.Layer):
    """Bicubic upscaling by an integer factor, equal to MATLAB `imresize(x, scale, 'bicubic')` (and so
    to models/degrade.py's `imresize`) to float precision, borders included.

    tf.image.resize has MATLAB's kernel (Keys a = -0.5, half-pixel centres; antialiasing only matters
    when shrinking) but replicates edge pixels where MATLAB mirrors them, which changes the outer two
    input pixels. Mirror-padding by two pixels first and cropping afterwards makes the two agree, at
    the cost of resize alone (degrade.imresize's dense weight matrices grow with the image squared).
    Runs in float32 whatever the global policy.
    """

    PAD = 2  # half the support of the bicubic kernel

    def __init__(self, scale: int = 4, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, x):
        hw = tf.shape(x)[1:3]
        pad = tf.minimum(hw, self.PAD)  # SYMMETRIC needs pad <= size; a 1-pixel axis is constant anyway
        x = tf.pad(x, [[0, 0], [pad[0], pad[0]], [pad[1], pad[1]], [0, 0]], mode="SYMMETRIC")
        y = tf.image.resize(x, (hw + 2 * pad) * self.scale, method="bicubic")
        start, size = pad * self.scale, hw * self.scale
        return y[:, start[0]:start[0] + size[0], start[1]:start[1] + size[1], :]

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        s = self.scale
        return tf.TensorShape([n, None if h is None else h * s, None if w is None else w * s, c])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@_register
class Clip(keras.layers.Layer):
    """Clip to [lo, hi]. `straight_through=True` keeps the identity gradient (the forward value is
    clipped, the backward pass is not), so an out-of-range output still learns its way back."""

    def __init__(self, lo: float = 0.0, hi: float = 1.0, straight_through: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.lo, self.hi = float(lo), float(hi)
        self.straight_through = bool(straight_through)

    def call(self, x):
        y = tf.clip_by_value(x, self.lo, self.hi)
        return x + tf.stop_gradient(y - x) if self.straight_through else y

    def get_config(self):
        return {**super().get_config(), "lo": self.lo, "hi": self.hi, "straight_through": self.straight_through}


def custom_objects() -> dict:
    """The custom classes by name, for keras loaders that want them explicitly."""
    return {cls.__name__: cls for cls in (ICNR, DepthToSpace, SubPixelConv2D, InstanceNormalization,
                                          ReflectionPadding2D, BicubicUpsample, Clip)}


def normalization(kind: str, name: str | None = None):
    """A normalisation layer by name: "batch", "instance" or "none" (returns None)."""
    if kind == "batch":
        return keras.layers.BatchNormalization(name=name)
    if kind == "instance":
        return InstanceNormalization(name=name)
    if kind == "none":
        return None
    raise ValueError(f"unknown normalisation {kind!r}; use batch, instance or none")


def critic_norm(cfg) -> str:
    """Normalisation inside a discriminator: batch norm, except with a gradient penalty (WGAN-GP), where
    batch norm would couple the examples whose per-example gradient norms are penalised (Gulrajani et
    al. 2017, sec. 4); there it is instance norm, as in DeblurGAN."""
    return "instance" if cfg.loss.adversarial == "wgan-gp" else "batch"
