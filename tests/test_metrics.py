"""PSNR/SSIM by the published protocol (models/metrics.py): checked against scikit-image and against
the published Set5 / B100 x4 bicubic figures."""
import glob
import os

import numpy as np
import pytest
import sample_images
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from models import degrade, images, metrics


def _bicubic_pairs(shared_data, dataset, limit=None):
    """(bicubic x4 upscale of the standard LR as uint8, HR cropped top-left to 4x the LR size)."""
    lr_paths = sorted(glob.glob(os.path.join(shared_data, dataset, "LRx4", "*.png")))[:limit]
    outs, targets, names = [], [], []
    for path in lr_paths:
        lr = images.read_rgb8(path)
        hr = images.read_rgb8(os.path.join(shared_data, dataset, os.path.basename(path)))
        targets.append(hr[: lr.shape[0] * 4, : lr.shape[1] * 4])
        outs.append(images.tf_to_uint8(degrade.imresize(images.tf_to_float(lr), 4.0)).numpy())
        names.append(os.path.splitext(os.path.basename(path))[0])
    return outs, targets, names


def _skimage_ssim(a, b, **kw):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, **kw)


def test_agrees_with_scikit_image_on_real_images():
    # Real photographs (committed samples) and their bicubic x4 round trip through our MATLAB imresize.
    targets = [sample_images.rgb(n) for n in sample_images.pick(3)]
    outs = [degrade.resize_uint8(degrade.resize_uint8(hr, 0.25), 4.0) for hr in targets]
    border = 4
    for out, hr in zip(outs, targets, strict=True):
        ya = metrics.crop_border(metrics.rgb_to_y(out), border)
        yb = metrics.crop_border(metrics.rgb_to_y(hr), border)
        assert abs(metrics.psnr_y(out, hr, border) - peak_signal_noise_ratio(yb, ya, data_range=255)) < 1e-6
        # skimage filters with edge padding, then drops (win-1)/2 = 5 pixels of the SSIM map on each
        # side: exactly the 'valid' positions of our (MATLAB/BasicSR) filtering of the same Y arrays.
        assert abs(metrics.ssim_y(out, hr, border) - _skimage_ssim(ya, yb)) < 1e-4
        ra = metrics.crop_border(out.astype(np.float64), border)
        rb = metrics.crop_border(hr.astype(np.float64), border)
        assert abs(metrics.psnr_rgb(out, hr, border) - peak_signal_noise_ratio(rb, ra, data_range=255)) < 1e-6
        assert abs(metrics.ssim_rgb(out, hr, border) - _skimage_ssim(ra, rb, channel_axis=2)) < 1e-4


@pytest.mark.shared_data
def test_set5_bicubic_reproduces_the_published_figure(shared_data):
    outs, targets, names = _bicubic_pairs(shared_data, "Set5")
    rows = [metrics.image_metrics(o, t, 4) for o, t in zip(outs, targets, strict=True)]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in metrics.METRIC_NAMES}
    print("Set5 x4 bicubic: " + ", ".join(f"{n} {r['psnr_y']:.2f}/{r['ssim_y']:.4f}"
                                          for n, r in zip(names, rows, strict=True)))
    print(f"Set5 x4 bicubic mean: Y {mean['psnr_y']:.3f} dB / SSIM {mean['ssim_y']:.4f}; "
          f"RGB {mean['psnr_rgb']:.3f} dB / SSIM {mean['ssim_rgb']:.4f} (published 28.43 / 0.8211)")
    assert len(rows) == 5
    assert abs(mean["psnr_y"] - 28.43) < 0.01
    assert 0.80 < mean["ssim_y"] < 0.83


@pytest.mark.shared_data
def test_b100_bicubic_subset_is_near_the_published_mean(shared_data):
    outs, targets, _ = _bicubic_pairs(shared_data, "B100", limit=8)
    mean = {k: float(np.mean([metrics.image_metrics(o, t, 4)[k] for o, t in zip(outs, targets, strict=True)]))
            for k in ("psnr_y", "ssim_y")}
    print(f"B100 (first 8) x4 bicubic: Y {mean['psnr_y']:.3f} dB / SSIM {mean['ssim_y']:.4f} "
          "(published, all 100: 25.96 / 0.6675)")
    # Eight images are not the whole set: a loose band around the full-set mean.
    assert 23.0 < mean["psnr_y"] < 29.0 and 0.55 < mean["ssim_y"] < 0.80


def test_y_channel_is_matlab_rgb2ycbcr_and_inputs_agree():
    rgb8 = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [10, 200, 30]]], np.uint8)
    y = metrics.rgb_to_y(rgb8)
    np.testing.assert_allclose(y[0, :3], [16.0, 235.0, 16.0 + 65.481], atol=1e-9)
    np.testing.assert_allclose(metrics.rgb_to_y(rgb8.astype(np.float32) / 255.0), y, atol=1e-4)


def test_identical_and_invalid_inputs():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    assert metrics.psnr_y(a, a) == float("inf")
    assert metrics.ssim_y(a, a, border=2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ in size"):
        metrics.psnr_y(a, a[:16])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.psnr_y(a.astype(np.float32), a.astype(np.float32))
    with pytest.raises(ValueError, match="too small"):
        metrics.psnr_y(a, a, border=16)
    with pytest.raises(ValueError, match="at least"):
        metrics.ssim_y(a, a, border=12)


def test_tf_psnr_matches_the_numpy_protocol():
    rng = np.random.default_rng(1)
    target = rng.uniform(size=(3, 40, 36, 3))
    output = np.clip(target + rng.normal(scale=0.05, size=target.shape), 0, 1)
    got = metrics.tf_psnr(output.astype(np.float32), target.astype(np.float32), border=4).numpy()
    want = [metrics.psnr_y(o, t, border=4) for o, t in zip(output, target, strict=True)]
    np.testing.assert_allclose(got, want, atol=1e-3)
    got_rgb = metrics.tf_psnr(output.astype(np.float32), target.astype(np.float32), y_channel=False).numpy()
    np.testing.assert_allclose(got_rgb, [metrics.psnr_rgb(o, t) for o, t in zip(output, target, strict=True)],
                               atol=1e-3)
