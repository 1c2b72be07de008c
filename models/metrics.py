"""PSNR and SSIM by the published SR / deblurring protocol (docs/metrics.md).

Protocol (MATLAB evaluation scripts, BasicSR's `calculate_psnr` / `calculate_ssim`):
- Y channel of ITU-R BT.601 as MATLAB's rgb2ycbcr: Y = 16 + 65.481 R + 128.553 G + 24.966 B with
  R, G, B in [0, 1], so Y lies in [16, 235] on a 255 scale; kept in float64 (not rounded, as BasicSR).
- `border` pixels (the SR scale; 0 for deblurring) removed at each edge before anything else.
- PSNR with peak 255; SSIM of Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 = 0.01,
  K2 = 0.03, L = 255, population (1/N) statistics, 'valid' filtering (MATLAB ssim_index's
  filter2(..., 'valid'), BasicSR's [5:-5, 5:-5] crop of the filtered maps), mean of the SSIM map.
- RGB figures (labelled `_rgb`): PSNR over all three channels, SSIM averaged over the channels.

Inputs are uint8 RGB (H, W, 3) or float RGB in [0, 1]; both are compared on the 255 scale. Quantise
network outputs to uint8 first (as every published evaluation does) for comparable numbers.
`tf_psnr` is a small TensorFlow twin of the Y-PSNR for training summaries.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

# BT.601 luma on a 255 scale for RGB in [0, 1] (MATLAB rgb2ycbcr).
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0
PEAK = 255.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03

METRIC_NAMES = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")


# -- conversions ---------------------------------------------------------------------------------------


def to_float255(img) -> np.ndarray:
    """uint8 RGB, or float RGB in [0, 1], as float64 on the 255 scale (H, W, 3)."""
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float64)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"expected uint8 or float [0, 1] images, got {a.dtype}")
    if a.size and (np.nanmax(a) > 1.5 or np.nanmin(a) < -0.5):
        # A float image on the 0..255 scale would give PSNRs off by 48 dB: refuse it.
        raise ValueError(f"float images must be in [0, 1]; got values in [{a.min():.3g}, {a.max():.3g}]")
    return a.astype(np.float64) * PEAK


def rgb_to_y(img) -> np.ndarray:
    """BT.601 Y (MATLAB rgb2ycbcr), float64 (H, W) in [16, 235]."""
    a = to_float255(img) / PEAK
    return Y_OFFSET + a @ np.asarray(Y_WEIGHTS, dtype=np.float64)


def crop_border(a: np.ndarray, border: int) -> np.ndarray:
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if border == 0:
        return a
    if a.shape[0] <= 2 * border or a.shape[1] <= 2 * border:
        raise ValueError(f"image {a.shape[:2]} too small for a border of {border}")
    return a[border:-border, border:-border]


# -- core metrics on float arrays (255 scale) ------------------------------------------------------------


def psnr_arrays(x: np.ndarray, y: np.ndarray) -> float:
    """PSNR (dB, peak 255) of two float arrays of the same shape; inf when identical."""
    mse = np.mean((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(PEAK * PEAK / mse))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian (the 2-D window is its outer product, as fspecial('gaussian'))."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(r * r) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of a 2-D array with the symmetric 1-D window g (numpy only)."""
    win = np.lib.stride_tricks.sliding_window_view
    a = win(a, g.size, axis=0) @ g
    return win(a, g.size, axis=1) @ g


def ssim_arrays(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM of two 2-D float arrays on the 255 scale (Wang et al.; 'valid' window positions)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"ssim_arrays expects two 2-D arrays of one shape, got {x.shape} and {y.shape}")
    if min(x.shape) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the border, got {x.shape}")
    g = gaussian_window()
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    mx, my = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mx * mx
    syy = _filter_valid(y * y, g) - my * my
    sxy = _filter_valid(x * y, g) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(ssim_map.mean())


# -- the protocol on RGB images ----------------------------------------------------------------------------


def _pair(output, target, border: int, y_channel: bool):
    a, b = (rgb_to_y(output), rgb_to_y(target)) if y_channel else (to_float255(output), to_float255(target))
    if a.shape != b.shape:
        raise ValueError(f"output {a.shape[:2]} and target {b.shape[:2]} differ in size")
    return crop_border(a, border), crop_border(b, border)


def psnr_y(output, target, border: int = 0) -> float:
    return psnr_arrays(*_pair(output, target, border, True))


def ssim_y(output, target, border: int = 0) -> float:
    return ssim_arrays(*_pair(output, target, border, True))


def psnr_rgb(output, target, border: int = 0) -> float:
    return psnr_arrays(*_pair(output, target, border, False))


def ssim_rgb(output, target, border: int = 0) -> float:
    a, b = _pair(output, target, border, False)
    return float(np.mean([ssim_arrays(a[..., c], b[..., c]) for c in range(3)]))


def image_metrics(output, target, border: int = 0) -> Dict[str, float]:
    """All four figures for one pair: psnr_y, ssim_y (the protocol) and psnr_rgb, ssim_rgb."""
    ya, yb = _pair(output, target, border, True)
    ra, rb = _pair(output, target, border, False)
    return {
        "psnr_y": psnr_arrays(ya, yb),
        "ssim_y": ssim_arrays(ya, yb),
        "psnr_rgb": psnr_arrays(ra, rb),
        "ssim_rgb": float(np.mean([ssim_arrays(ra[..., c], rb[..., c]) for c in range(3)])),
    }


# -- TensorFlow twin for training summaries -------------------------------------------------------------


def tf_psnr(output, target, border: int = 0, y_channel: bool = True):
    """Per-image PSNR [N] (float32 dB) of float batches [N, H, W, 3] in [0, 1].

    Same protocol as `psnr_y` (or RGB with y_channel=False) but float32 and without quantisation:
    for TensorBoard during training, not for reported figures. Identical images give inf.
    """
    import tensorflow as tf

    a = tf.cast(output, tf.float32) * PEAK
    b = tf.cast(target, tf.float32) * PEAK
    if y_channel:
        w = tf.constant(Y_WEIGHTS, tf.float32) / PEAK
        a = Y_OFFSET + tf.reduce_sum(a * w, axis=-1, keepdims=True)
        b = Y_OFFSET + tf.reduce_sum(b * w, axis=-1, keepdims=True)
    if border:
        a = a[:, border:-border, border:-border, :]
        b = b[:, border:-border, border:-border, :]
    mse = tf.reduce_mean(tf.math.squared_difference(a, b), axis=[1, 2, 3])
    return 10.0 * tf.math.log(PEAK * PEAK / mse) / tf.math.log(10.0)
