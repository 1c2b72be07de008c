"""MATLAB-style bicubic resizing and DeblurGAN motion blur (models/degrade.py), on real images."""
import glob
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from models import degrade, images, metrics


def _matlab_resize_1d(signal: np.ndarray, scale: float) -> np.ndarray:
    """Independent reference: MATLAB imresize (bicubic, antialiased) along axis 0, written directly
    from imresize.m's contributions(): explicit taps, explicit symmetric index extension."""
    n = signal.shape[0]
    out = math.ceil(n * scale)
    width = 4.0 / scale if scale < 1 else 4.0

    def cubic(x):
        x = abs(x)
        if x <= 1:
            return 1.5 * x**3 - 2.5 * x**2 + 1
        if x <= 2:
            return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
        return 0.0

    aux = list(range(n)) + list(range(n - 1, -1, -1))  # MATLAB's [1:n, n:-1:1], 0-based
    result = np.zeros((out,) + signal.shape[1:])
    for i in range(1, out + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + j for j in range(int(math.ceil(width)) + 2)]
        h = [scale * cubic((u - t) * scale) if scale < 1 else cubic(u - t) for t in taps]
        total = sum(h)
        for t, w in zip(taps, h, strict=True):
            result[i - 1] += w / total * signal[aux[(t - 1) % (2 * n)]]
    return result


@pytest.mark.parametrize("length,scale", [(16, 0.25), (37, 0.25), (10, 0.5), (9, 1 / 3), (5, 4.0), (7, 2.0), (3, 0.25)])
def test_resize_weights_match_a_direct_transcription_of_matlab(length, scale):
    rng = np.random.default_rng(length)
    signal = rng.uniform(size=(length, 2))
    ours = degrade.resize_weights(length, scale, dtype=tf.float64).numpy() @ signal
    np.testing.assert_allclose(ours, _matlab_resize_1d(signal, scale), atol=1e-12)


def test_imresize_batch_graph_and_dynamic_shapes_agree():
    rng = np.random.default_rng(0)
    batch = rng.uniform(size=(2, 24, 20, 3)).astype(np.float32)
    eager = degrade.imresize(batch, 0.25).numpy()
    assert eager.shape == (2, 6, 5, 3)
    np.testing.assert_allclose(degrade.imresize(batch[1], 0.25).numpy(), eager[1], atol=1e-6)

    dynamic = tf.function(lambda x: degrade.imresize(x, 0.25),
                          input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    np.testing.assert_allclose(dynamic(batch).numpy(), eager, atol=1e-6)
    # A constant image stays constant (weights sum to 1, edges are mirrored), up and down.
    flat = np.full((1, 13, 11, 3), 0.3, np.float32)
    for scale in (0.25, 4.0):
        np.testing.assert_allclose(degrade.imresize(flat, scale).numpy(), 0.3, atol=1e-6)


def test_imresize_rejects_integer_images_and_bad_scale():
    with pytest.raises(TypeError, match="float"):
        degrade.imresize(np.zeros((8, 8, 3), np.uint8), 0.5)
    with pytest.raises(ValueError, match="positive"):
        degrade.resize_weights(8, 0.0)


def _lr_reproduction(root, names):
    """PSNR of our LR against the standard LR files: the Transform path (float32, rounded at the end)
    and the MATLAB-uint8 emulation (rows, round, columns, round)."""
    rows = []
    for lr_path in names:
        lr = images.read_rgb8(lr_path)
        hr = images.read_rgb8(os.path.join(root, os.path.basename(lr_path)))
        hr = hr[: lr.shape[0] * 4, : lr.shape[1] * 4]
        transform_path = images.tf_to_uint8(degrade.imresize(images.tf_to_float(hr), 0.25)).numpy()
        emulated = degrade.resize_uint8(hr, 0.25)
        assert transform_path.shape == lr.shape
        rows.append([metrics.psnr_rgb(transform_path, lr), metrics.psnr_y(transform_path, lr),
                     metrics.psnr_rgb(emulated, lr), metrics.psnr_y(emulated, lr)])
    return np.mean(rows, axis=0)


@pytest.mark.shared_data
def test_lr_generation_reproduces_standard_set5_lr(shared_data):
    root = os.path.join(shared_data, "Set5")
    rgb, y, rgb_u8, y_u8 = _lr_reproduction(root, sorted(glob.glob(os.path.join(root, "LRx4", "*.png"))))
    print(f"Set5 x4 LR vs standard: float32 path RGB {rgb:.2f} dB, Y {y:.2f} dB; "
          f"uint8 emulation RGB {rgb_u8:.2f} dB, Y {y_u8:.2f} dB")
    assert min(rgb, y, rgb_u8, y_u8) >= 50.0


@pytest.mark.shared_data
def test_lr_generation_reproduces_standard_b100_lr(shared_data):
    root = os.path.join(shared_data, "B100")
    names = sorted(glob.glob(os.path.join(root, "LRx4", "*.png")))[:6]
    rgb, y, rgb_u8, y_u8 = _lr_reproduction(root, names)
    print(f"B100 (first 6) x4 LR vs standard: float32 path RGB {rgb:.2f} dB, Y {y:.2f} dB; "
          f"uint8 emulation RGB {rgb_u8:.2f} dB, Y {y_u8:.2f} dB")
    assert min(rgb, y, rgb_u8, y_u8) >= 50.0


# -- motion blur ------------------------------------------------------------------------------------------


def test_motion_blur_kernels_are_normalised_deterministic_and_varied():
    kernels = [degrade.motion_blur_kernel(seed, 15) for seed in range(12)]
    for k in kernels:
        assert k.shape == (15, 15) and k.dtype == np.float32
        assert k.min() >= 0.0
        assert abs(float(k.sum()) - 1.0) < 1e-5
    np.testing.assert_array_equal(degrade.motion_blur_kernel(3, 15), kernels[3])
    distinct = {k.tobytes() for k in kernels}
    assert len(distinct) == len(kernels)
    # Full exposure draws a real streak, not a dot: its support spans several pixels.
    streak = degrade.motion_blur_kernel(5, 31, exposure=1.0)
    ys, xs = np.nonzero(streak > 1e-4)
    assert max(ys.ptp(), xs.ptp()) >= 8
    # Centred on the centroid: blurring does not translate the image.
    grid = np.arange(31) - 15
    assert abs(float((streak.sum(0) * grid).sum())) < 0.5 and abs(float((streak.sum(1) * grid).sum())) < 0.5
    with pytest.raises(ValueError, match="odd"):
        degrade.motion_blur_kernel(0, 16)


def test_min_exposure_drops_the_kernels_that_do_not_blur():
    # DeblurGAN's 1/100 exposure leaves a dot (a quarter of its draws): the peak holds most of the mass.
    full = degrade.motion_blur_bank(0, 15, count=64)
    assert (full.max(axis=(1, 2)) > 0.8).sum() >= 8
    # With min_exposure 0.1 every kernel of the bank spreads over more than one pixel.
    blurring = degrade.motion_blur_bank(0, 15, count=64, min_exposure=0.1)
    assert blurring.max(axis=(1, 2)).max() < 0.8
    np.testing.assert_allclose(blurring.sum(axis=(1, 2)), 1.0, atol=1e-5)
    # 0 (the function's default) is DeblurGAN's draw; nothing left to draw is an error.
    np.testing.assert_array_equal(degrade.motion_blur_kernel(7, 15, min_exposure=0.0),
                                  degrade.motion_blur_kernel(7, 15))
    assert degrade.exposure_choices(0.1) == (0.1, 0.5, 1.0)
    with pytest.raises(ValueError, match="excludes every"):
        degrade.motion_blur_kernel(0, 15, min_exposure=1.5)


def test_kernel_choice_is_a_function_of_the_seed():
    seeds = tf.constant([[1, 0], [2, 0], [1, 0], [3, 7]], tf.int64)
    ks = degrade.tf_select_kernels(seeds, 15, count=16).numpy()
    np.testing.assert_array_equal(ks[0], ks[2])
    assert not np.array_equal(ks[0], ks[1])
    np.testing.assert_allclose(ks.sum(axis=(1, 2)), 1.0, atol=1e-5)
    again = degrade.tf_select_kernels(seeds, 15, count=16).numpy()
    np.testing.assert_array_equal(ks, again)


def test_tf_blur_is_a_true_convolution_with_reflect_edges():
    from scipy.ndimage import convolve

    rng = np.random.default_rng(1)
    img = rng.uniform(size=(2, 40, 48, 3)).astype(np.float32)
    ks = np.stack([degrade.motion_blur_kernel(s, 15, exposure=1.0) for s in (11, 12)])
    ours = degrade.tf_blur(img, ks).numpy()
    for i in range(2):
        for c in range(3):
            # scipy's 'mirror' is TF's REFLECT (the edge pixel is not repeated).
            ref = convolve(img[i, :, :, c].astype(np.float64), ks[i].astype(np.float64), mode="mirror")
            np.testing.assert_allclose(ours[i, :, :, c], ref, atol=1e-5)
    np.testing.assert_allclose(degrade.tf_blur(img[0], ks[0]).numpy(), ours[0], atol=1e-6)


def _gradient_energy(rgb8):
    y = metrics.rgb_to_y(rgb8)
    return float(np.mean(np.diff(y, axis=0) ** 2) + np.mean(np.diff(y, axis=1) ** 2))


@pytest.mark.shared_data
def test_synthetic_blur_on_gopro_is_in_the_range_of_real_blur(shared_data):
    name = "GOPR0384_11_00-000001.png"
    sharp = images.read_rgb8(os.path.join(shared_data, "GoPro", "sharp", name))[200:456, 400:656]
    real = images.read_rgb8(os.path.join(shared_data, "GoPro", "blur", name))[200:456, 400:656]
    x = images.tf_to_float(sharp)
    # Full-exposure kernels of the configured size (deblurgan-gopro: 31) on a 256 crop.
    psnrs, energy = [], []
    for seed in range(4):
        k = degrade.motion_blur_kernel(seed, 31, exposure=1.0)
        blurred = images.tf_to_uint8(degrade.tf_blur(x, k)).numpy()
        psnrs.append(metrics.psnr_rgb(blurred, sharp))
        energy.append(_gradient_energy(blurred))
    # ... and the graph entry point with per-example seeds (bank of kernels, any exposure).
    seeded = images.tf_to_uint8(degrade.tf_motion_blur(x, tf.constant([5, 0], tf.int64), 31, count=8)).numpy()
    assert seeded.shape == sharp.shape
    real_psnr = metrics.psnr_rgb(real, sharp)
    print(f"GoPro crop: real blur {real_psnr:.2f} dB; synthetic full-exposure 31px "
          f"{', '.join(f'{p:.2f}' for p in psnrs)} dB; gradient energy sharp {_gradient_energy(sharp):.1f}, "
          f"blurred {', '.join(f'{e:.1f}' for e in energy)}")
    assert all(e < 0.6 * _gradient_energy(sharp) for e in energy)
    assert all(18.0 < p < 34.0 for p in psnrs)
