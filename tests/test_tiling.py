"""Tiled inference on the client: blending, and agreement with untiled inference on real images (the
geometry and windows it shares with the served graph: tests/test_tile_geometry.py)."""
import numpy as np
import pytest

from serving import tiling


def _nearest_x(scale):
    # A real (deterministic, position-independent) restore function: nearest-neighbour upscaling plus
    # a pointwise curve, so tiling must reproduce the whole-image result exactly.
    return lambda b: np.repeat(np.repeat(np.sqrt(b), scale, axis=1), scale, axis=2)


@pytest.mark.parametrize("scale", [1, 4])
def test_tiled_equals_whole_image_for_a_position_independent_function(scale):
    rng = np.random.default_rng(0)
    img = rng.random((70, 101, 3), dtype=np.float32)
    calls = []

    def fn(batch):
        calls.append(batch.shape)
        return _nearest_x(scale)(batch)

    tiled = tiling.restore_tiled(img, fn, tile_size=32, overlap=8, batch_size=3)
    whole = _nearest_x(scale)(img[None])[0]
    assert tiled.shape == (70 * scale, 101 * scale, 3)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    assert len(calls) > 1 and len(set(calls[:-1])) == 1  # equal-size tiles, batched
    assert all(c[1:] == calls[0][1:] and max(c[1:3]) <= 32 for c in calls)


def test_small_image_and_bad_arguments():
    img = np.zeros((10, 12, 3), np.float32)
    assert tiling.restore_tiled(img, _nearest_x(2), tile_size=64, overlap=8).shape == (20, 24, 3)
    with pytest.raises(ValueError, match="overlap"):
        tiling.restore_tiled(np.zeros((100, 100, 3), np.float32), _nearest_x(1), tile_size=16, overlap=16)
    with pytest.raises(ValueError, match="integer scale"):
        tiling.restore_tiled(np.zeros((100, 100, 3), np.float32), lambda b: b[:, :-1], tile_size=32, overlap=8)
    with pytest.raises(ValueError, match="RGB"):
        tiling.restore_tiled(np.zeros((100, 100), np.float32), _nearest_x(1), tile_size=32, overlap=8)


def psnr_uint8(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["sr", "deblur"])
def test_tiled_and_untiled_savedmodel_restoration_agree_on_a_1000x700_photo(task, tmp_path):
    import sample_images

    from config import preset
    from serving.client import LocalModel, restore_image
    from serving.smoke_model import export_smoke_model

    cfg = preset("tiny", task=task)
    export_smoke_model(str(tmp_path / "1"), cfg)
    model = LocalModel(str(tmp_path))  # base dir: picks the latest version
    # 1000x700 (W x H) of real photographs: 6 x 8 sample tiles.
    lr = sample_images.mosaic(6, 8)[:700, :1000]

    whole = restore_image(lr, model, tile_size=0)
    tiled = restore_image(lr, model, tile_size=256, overlap=32, batch=2)
    assert whole.shape == tiled.shape == (700 * cfg.scale, 1000 * cfg.scale, 3)
    diff = np.abs(whole.astype(int) - tiled.astype(int))
    assert diff.max() <= 2, f"max abs difference {diff.max()}/255"
    assert psnr_uint8(whole, tiled) >= 50.0
