"""Degradations that synthesise training inputs: MATLAB-style bicubic resizing and camera-shake blur.

Bicubic (`imresize`): MATLAB's `imresize(x, scale, 'bicubic')`, which made the standard SR benchmark
LR images. Separable resampling with Keys' cubic kernel (a = -0.5); when downscaling the kernel is
widened by 1/scale (antialiasing); pixel centres are aligned (input coordinate u = x/scale +
0.5 (1 - 1/scale), 1-based); edges are extended symmetrically (mirror including the edge pixel);
each output pixel's weights are normalised to sum to 1. The resampling along each axis is one matrix
multiplication with a dense (out x in) weight matrix that already folds in the symmetric padding, so
it is exact (float64 weights), fast, and works eagerly, in tf.function and in the Transform graph, for
one image [H, W, C] or a batch [N, H, W, C], with static or dynamic sizes. `tf.image.resize(...,
'bicubic')` does not low-pass filter when downscaling (antialias=False by default) and must not make
LR images: its x4 LR is 29.5 dB away from the standard Set5 LR, ours 56.7 dB (docs/metrics.md).

Motion blur (`motion_blur_kernel`, `tf_motion_blur`): DeblurGAN's synthetic blur (Kupyn et al. 2018,
Sec. 3.2): a random camera trajectory by the Markov process of Boracchi & Foi (2012), rasterised into
a kernel by sub-pixel (bilinear) splatting of the trajectory samples over an exposure fraction.
Kernels are generated with numpy from an explicit seed; the TF side draws one per example from a
fixed bank (generated once from `bank_seed`, embedded as a constant) by a stateless seed, and applies
it as a convolution with reflect padding.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

# Keys' cubic convolution parameter used by MATLAB's imresize (and OpenCV's INTER_CUBIC is -0.75).
CUBIC_A = -0.5
CUBIC_SUPPORT = 4.0  # kernel width in input pixels at scale 1

# -- bicubic resizing (MATLAB imresize) ---------------------------------------------------------------


def _cubic(x):
    """Keys' cubic kernel with a = -0.5 (float64 tensor in, same out)."""
    ax = tf.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    a = CUBIC_A
    near = ((a + 2.0) * ax3 - (a + 3.0) * ax2 + 1.0) * tf.cast(ax <= 1.0, x.dtype)
    far = (a * ax3 - 5.0 * a * ax2 + 8.0 * a * ax - 4.0 * a) * tf.cast((ax > 1.0) & (ax <= 2.0), x.dtype)
    return near + far


def output_length(in_length, scale: float):
    """MATLAB's output size ceil(in * scale); a tiny tolerance absorbs float error (300 * (1/3))."""
    return tf.cast(tf.math.ceil(tf.cast(in_length, tf.float64) * scale - 1e-9), tf.int32)


def resize_weights(in_length, scale: float, antialias: bool = True, dtype=tf.float32):
    """The (out x in) matrix M with resized = M @ signal along one axis (MATLAB imresize, bicubic).

    `in_length` may be a Python int or a scalar int tensor (dynamic size); `scale` (out/in) must be a
    Python number because it fixes the number of taps.
    """
    scale = float(scale)
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    in_length = tf.convert_to_tensor(in_length, tf.int32)
    out_length = output_length(in_length, scale)
    shrink = scale < 1.0 and antialias
    width = CUBIC_SUPPORT / scale if shrink else CUBIC_SUPPORT
    taps = int(math.ceil(width)) + 2  # as MATLAB: enough for any sub-pixel position

    x = tf.range(1, out_length + 1, dtype=tf.float64)  # 1-based output coordinates
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # their position in the input (1-based)
    left = tf.floor(u - width / 2.0)
    idx = left[:, None] + tf.range(taps, dtype=tf.float64)[None, :]  # [out, taps], 1-based
    dist = u[:, None] - idx
    w = scale * _cubic(dist * scale) if shrink else _cubic(dist)
    w = w / tf.reduce_sum(w, axis=1, keepdims=True)

    # Symmetric extension (MATLAB: aux = [1:n, n:-1:1]) folded into the column index.
    n = tf.cast(in_length, tf.int64)
    m = tf.math.floormod(tf.cast(idx, tf.int64) - 1, 2 * n)
    col = tf.where(m < n, m, 2 * n - 1 - m)
    row = tf.broadcast_to(tf.range(tf.cast(out_length, tf.int64))[:, None], tf.shape(col))
    coords = tf.reshape(tf.stack([row, col], axis=-1), [-1, 2])
    # scatter_nd sums duplicates: taps mirrored onto the same input pixel add up, as in MATLAB.
    dense = tf.scatter_nd(coords, tf.reshape(w, [-1]), tf.stack([tf.cast(out_length, tf.int64), n]))
    return tf.cast(dense, dtype)


def imresize(images, scale: float, antialias: bool = True, uint8_intermediate: bool = False):
    """MATLAB `imresize(images, scale, 'bicubic')` on float images [H, W, C] or [N, H, W, C].

    Output size is ceil(size * scale) on each axis. Values are not clipped or rounded (MATLAB on
    double input); quantise with `models.images.tf_to_uint8` where uint8 is wanted. Float64 input is
    resized in float64; integer input is an error, convert it with `images.tf_to_float` first.
    uint8_intermediate: round (and clip) the result of the first (row) pass to 1/255 levels, which
    is what MATLAB does on uint8 input (its per-dimension passes return uint8); use it to reproduce
    LR files made by MATLAB from uint8 images bit for bit (see `resize_uint8`).
    """
    x = tf.convert_to_tensor(images)
    if not x.dtype.is_floating:
        raise TypeError(f"imresize expects float images in [0, 1], got {x.dtype}; use images.tf_to_float")
    if x.shape.rank not in (3, 4):
        raise ValueError(f"imresize expects [H, W, C] or [N, H, W, C], got shape {x.shape}")
    in_dtype = x.dtype
    compute = tf.float64 if in_dtype == tf.float64 else tf.float32
    x = tf.cast(x, compute)
    shape = tf.shape(x)
    h_axis = x.shape.rank - 3
    wh = resize_weights(shape[h_axis], scale, antialias, compute)
    ww = resize_weights(shape[h_axis + 1], scale, antialias, compute)
    # MATLAB resizes the dimension with the smaller scale first; with one scale for both axes the
    # order is rows then columns. In exact arithmetic the order does not matter.
    if x.shape.rank == 3:
        y = _quantize(tf.einsum("oh,hwc->owc", wh, x), uint8_intermediate)
        y = tf.einsum("pw,owc->opc", ww, y)
    else:
        y = _quantize(tf.einsum("oh,nhwc->nowc", wh, x), uint8_intermediate)
        y = tf.einsum("pw,nowc->nopc", ww, y)
    return tf.cast(y, in_dtype)


def _quantize(x, on: bool):
    return tf.clip_by_value(tf.round(x * 255.0), 0.0, 255.0) / 255.0 if on else x


def resize_uint8(rgb8: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    """Host side: uint8 image(s) -> uint8, as MATLAB's imresize on a uint8 array (float64 inside,
    rows then columns, each pass rounded to uint8)."""
    x = np.asarray(rgb8)
    if x.dtype != np.uint8:
        raise TypeError(f"resize_uint8 expects uint8, got {x.dtype}")
    y = imresize(tf.constant(x, tf.float64) / 255.0, scale, antialias, uint8_intermediate=True).numpy()
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)


# -- motion blur (DeblurGAN / Boracchi & Foi) --------------------------------------------------------

# DeblurGAN's trajectory parameters (motion_blur/generate_trajectory.py and blur_image.py): 2000
# samples, impulsive-shake parameter drawn from this list, exposure fractions of the trajectory.
TRAJECTORY_STEPS = 2000
EXPL_CHOICES = (0.01, 0.009, 0.008, 0.007, 0.005, 0.003, 0.002, 0.001)
EXPOSURE_FRACTIONS = (0.01, 0.1, 0.5, 1.0)
# Kernels in the bank that tf_motion_blur draws from; each is also used in its 8 flips/rotations.
BANK_SIZE = 256


def camera_trajectory(rng: np.random.Generator, length: float, steps: int = TRAJECTORY_STEPS,
                      expl: float | None = None) -> np.ndarray:
    """A random 2-D camera trajectory (complex positions, path length `length` pixels).

    Boracchi & Foi's Markov process as in DeblurGAN: a particle whose velocity, renormalised to a
    constant speed, receives a Gaussian perturbation, a centripetal pull towards the start, and
    with a small probability an impulsive reversal ("big shake").
    """
    if expl is None:
        expl = float(rng.choice(EXPL_CHOICES))
    centripetal = 0.7 * rng.uniform()
    prob_big_shake = 0.2 * rng.uniform()
    gaussian_shake = 10.0 * rng.uniform()
    angle = 2.0 * np.pi * rng.uniform()
    speed = length / (steps - 1)
    # All random draws up front so the loop below is a plain recurrence.
    big = rng.uniform(size=steps - 1) < prob_big_shake * expl
    big_angle = np.pi + (rng.uniform(size=steps - 1) - 0.5)
    noise = rng.standard_normal(steps - 1) + 1j * rng.standard_normal(steps - 1)

    v = np.exp(1j * angle) * (expl if expl > 0 else speed)
    x = np.zeros(steps, dtype=np.complex128)
    for t in range(steps - 1):
        dv = expl * (gaussian_shake * noise[t] - centripetal * x[t]) * speed
        if big[t]:
            dv += 2.0 * v * np.exp(1j * big_angle[t])
        v = v + dv
        v = v / abs(v) * speed
        x[t + 1] = x[t] + v
    return x


def rasterize_trajectory(x: np.ndarray, size: int) -> np.ndarray:
    """Splat trajectory samples into a size x size kernel (bilinear, sub-pixel), sum 1.

    The samples' mean (the blur's centroid) goes to the kernel centre, so blurring does not shift the
    image; a trajectory too large for the kernel is shrunk about that centre to fit.
    """
    c = (size - 1) / 2.0
    z = x - x.mean()
    reach = max(np.abs(z.real).max(), np.abs(z.imag).max())
    if reach > c - 1e-6:  # keep every bilinear footprint inside [0, size-1]
        z = z * ((c - 1e-6) / reach)
    px, py = z.real + c, z.imag + c
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    fx, fy = px - x0, py - y0
    k = np.zeros((size, size), dtype=np.float64)
    x1, y1 = np.minimum(x0 + 1, size - 1), np.minimum(y0 + 1, size - 1)
    np.add.at(k, (y0, x0), (1 - fx) * (1 - fy))
    np.add.at(k, (y0, x1), fx * (1 - fy))
    np.add.at(k, (y1, x0), (1 - fx) * fy)
    np.add.at(k, (y1, x1), fx * fy)
    return k / k.sum()


def motion_blur_kernel(seed, size: int, length: float | None = None, exposure: float | None = None,
                       expl: float | None = None, min_exposure: float = 0.0) -> np.ndarray:
    """A seeded DeblurGAN-style motion-blur kernel: float32 [size, size], nonnegative, sum 1.

    seed: an int or a sequence of ints (np.random.SeedSequence entropy). length: the full
    trajectory's path length in pixels (default size - 3, as DeblurGAN's 60 in a 64 canvas).
    exposure: the fraction of the trajectory integrated (default: drawn from DeblurGAN's
    1/100, 1/10, 1/2, 1). min_exposure: draw only among those fractions >= this (0: all four, as
    DeblurGAN). The 1/100 draw is not blur: its kernel spans ~0.1 pixel (a 15 px kernel leaves the
    image at ~63 dB PSNR), 1/10 spans ~1 pixel (~43 dB), 1/2 and 1 streaks of 5-6 pixels (~31-34 dB).
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"motion blur kernel size must be odd and >= 3, got {size}")
    rng = np.random.default_rng(seed)
    length = float(size - 3) if length is None else float(length)
    x = camera_trajectory(rng, length, expl=expl)
    if exposure is None:
        exposure = float(rng.choice(exposure_choices(min_exposure)))
    if not 0.0 < exposure <= 1.0:
        raise ValueError(f"exposure must be in (0, 1], got {exposure}")
    n = max(2, int(round(exposure * len(x))))
    return rasterize_trajectory(x[:n], size).astype(np.float32)


def exposure_choices(min_exposure: float = 0.0) -> tuple:
    """DeblurGAN's exposure fractions that are >= `min_exposure` (an error when none is)."""
    choices = tuple(f for f in EXPOSURE_FRACTIONS if f >= min_exposure)
    if not choices:
        raise ValueError(f"min_exposure {min_exposure} excludes every exposure fraction {EXPOSURE_FRACTIONS}")
    return choices


@functools.lru_cache(maxsize=8)
def _bank(seed: int, size: int, count: int, min_exposure: float) -> np.ndarray:
    return np.stack([motion_blur_kernel((seed, i), size, min_exposure=min_exposure) for i in range(count)])


def motion_blur_bank(seed: int, size: int, count: int = BANK_SIZE, min_exposure: float = 0.0) -> np.ndarray:
    """`count` kernels [count, size, size] float32, kernel i from seed (seed, i), exposures drawn
    among those >= `min_exposure`. Cached."""
    return _bank(int(seed), int(size), int(count), float(min_exposure)).copy()


def tf_blur(images, kernels):
    """Convolve each image with its own kernel: reflect padding, output the size of the input.

    images: float [H, W, C] with kernel [k, k], or [N, H, W, C] with kernels [N, k, k] (odd k,
    smaller than the image). True convolution (the kernel is flipped for TF's correlation).
    """
    x = tf.convert_to_tensor(images)
    k = tf.cast(tf.convert_to_tensor(kernels), x.dtype)
    if x.shape.rank == 3 and k.shape.rank == 2:
        return _blur_one(x, k)
    if x.shape.rank != 4 or k.shape.rank != 3:
        raise ValueError(f"tf_blur expects [H,W,C] with [k,k] or [N,H,W,C] with [N,k,k]; got {x.shape}, {k.shape}")
    return tf.map_fn(lambda e: _blur_one(e[0], e[1]), (x, k), fn_output_signature=x.dtype)


def _blur_one(x, k):
    ksize = k.shape[-1]
    if ksize is None or ksize % 2 == 0 or k.shape[0] != ksize:
        raise ValueError(f"blur kernel must be square with a static odd size, got {k.shape}")
    r = ksize // 2
    x = tf.pad(x, [[r, r], [r, r], [0, 0]], mode="REFLECT")
    # Channels become the batch of a one-channel conv2d. Not depthwise_conv2d: with oneDNN on this
    # TF 2.16 CPU build it returns garbage for large kernels (e.g. 31x31 on a 102x158 input).
    xc = tf.transpose(x, [2, 0, 1])[..., None]  # [C, H+2r, W+2r, 1]
    f = tf.reverse(k, axis=[0, 1])[:, :, None, None]
    y = tf.nn.conv2d(xc, f, strides=1, padding="VALID")
    return tf.transpose(y[..., 0], [1, 2, 0])


def tf_select_kernels(seeds, size: int, bank_seed: int = 0, count: int = BANK_SIZE, min_exposure: float = 0.0):
    """Kernels [N, size, size] (or [size, size] for one seed [2]) drawn by stateless seeds.

    A seed picks one of `count` bank kernels and one of its 8 flips/rotations, so the choice is a
    pure function of (seed, bank_seed): reruns and Beam workers agree.
    """
    bank = tf.constant(motion_blur_bank(bank_seed, size, count, min_exposure))
    seeds = tf.convert_to_tensor(seeds, tf.int64)
    single = seeds.shape.rank == 1
    seeds = seeds[None] if single else seeds

    def pick(seed):
        draw = tf.random.stateless_uniform([2], seed=seed, minval=0, maxval=count * 8, dtype=tf.int32)
        k = tf.gather(bank, draw[0] % count)
        k = tf.cond(draw[1] % 2 == 1, lambda: tf.transpose(k), lambda: k)
        return tf.image.rot90(k[..., None], k=(draw[1] // 2) % 4)[..., 0]

    ks = tf.map_fn(pick, seeds, fn_output_signature=tf.TensorSpec([size, size], tf.float32))
    return ks[0] if single else ks


def tf_motion_blur(images, seeds, kernel_size: int, bank_seed: int = 0, count: int = BANK_SIZE,
                   min_exposure: float = 0.0):
    """Blur float image(s) [H, W, C] / [N, H, W, C] with kernels chosen by stateless seed(s) [2] / [N, 2].

    For the Transform graph: `seeds` derive from the example id (and `data.blur_seed`), `bank_seed`
    fixes the kernel bank, `min_exposure` its exposure fractions (`motion_blur_kernel`). Output float,
    same size, not clipped (a convex combination of the input).
    """
    kernels = tf_select_kernels(seeds, kernel_size, bank_seed, count, min_exposure)
    return tf_blur(images, kernels)
