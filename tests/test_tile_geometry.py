"""Tile geometry and blending windows (models/tile_geometry.py), which the client's tiling and the served
graph share: the numpy and the TensorFlow evaluation of the same code agree."""
import numpy as np
import pytest

from models.tile_geometry import tile_grid, window_1d


@pytest.mark.parametrize("length,tile,overlap", [(100, 32, 8), (33, 32, 8), (32, 32, 8), (20, 32, 8), (257, 64, 0),
                                                 (512, 256, 32), (2000, 256, 32), (1, 4, 3)])
def test_tiles_cover_the_axis_with_the_overlap_in_equal_sizes(length, tile, overlap):
    size, starts = tile_grid(length, tile, overlap)
    assert size <= tile and starts[0] == 0 and starts[-1] + size == length
    for a, b in zip(starts, starts[1:], strict=False):
        assert 0 < b - a <= size - overlap  # consecutive tiles overlap by at least `overlap`
    if length > tile:  # no fewer tiles would do
        assert (len(starts) - 2) * (tile - overlap) + tile < length  # n - 1 full tiles fall short


def test_evenly_spread_tiles_restore_fewer_pixels_than_full_tiles():
    size, starts = tile_grid(512, 256, 32)
    assert (size, list(starts)) == (192, [0, 160, 320])  # 3 x 192 = 576 per axis, not 3 x 256 = 768


def test_bad_overlaps_are_refused():
    for overlap in (-1, 32, 40):
        with pytest.raises(ValueError, match="overlap"):
            tile_grid(100, 32, overlap)


def test_window_is_smooth_zero_at_inner_edges_and_one_at_image_borders():
    w = window_1d(64, 16, taper_start=True, taper_end=False)
    assert w[0] == 0 and w[-1] == 1 and np.all(np.diff(w) >= 0)
    assert np.all(w[16:] == 1)
    assert np.all(window_1d(64, 16, False, False) == 1)
    both = window_1d(20, 16, True, True)  # overlap clamped to half the tile: the ramps never cross
    np.testing.assert_allclose(both, both[::-1])


def test_the_graph_evaluates_the_same_geometry_and_windows():
    import tensorflow as tf

    from models.inference.tiles import TF_OPS

    for length, tile, overlap, scale in ((100, 32, 8, 4), (2000, 256, 32, 4), (700, 256, 32, 1), (20, 32, 8, 1)):
        size, starts = tile_grid(length, tile, overlap)
        tsize, tstarts = tile_grid(tf.constant(length), tile, overlap, TF_OPS)
        assert int(tsize) == size and list(tstarts.numpy()) == list(starts)
        for flags in ((False, False), (True, False), (False, True), (True, True)):
            want = window_1d(size * scale, overlap * scale, *flags)
            got = window_1d(tsize * scale, overlap * scale, *(tf.constant(f) for f in flags), TF_OPS)
            np.testing.assert_allclose(got.numpy(), want, atol=1e-6)
