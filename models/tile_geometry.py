"""Where the tiles of a tiled restoration go and how their outputs are weighted: one implementation for
the served graph (models/inference/tiles.py, on tensors inside the SavedModel) and the client
(serving/tiling.py, on numpy arrays).

Along each axis a length L is cut into n equal tiles of `size` <= `tile` that overlap by at least
`overlap`, spread evenly from 0 to L: n = ceil((L - overlap) / (tile - overlap)) (1 when L <= tile),
size = ceil((L + (n - 1) overlap) / n). Equal tiles can be batched; spreading them evenly restores
fewer pixels than cutting full `tile`s and shifting the last one back (a 512 px side with 256 px tiles
and 32 px overlap: 3 tiles of 192 instead of 3 of 256: 27 % instead of 125 % extra work in 2-D).

Blending: on each side that touches another tile the weight is 0 over the outer quarter of the overlap
(where the generator's zero padding corrupts the output), rises along a raised cosine over the middle
half and is 1 beyond; image borders keep weight 1. The weights are normalised by their sum.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

# The array operations the geometry uses; the served graph passes TensorFlow's (models/inference/tiles.py).
NUMPY = SimpleNamespace(arange=np.arange, where=np.where, minimum=np.minimum, maximum=np.maximum, cos=np.cos,
                        to_float=lambda v: np.asarray(v, np.float64))


def tile_grid(length, tile: int, overlap: int, ops=NUMPY):
    """(size, starts) of the tiles covering [0, length): every tile is `size` long (<= tile), the first
    starts at 0, the last ends at `length`, neighbours overlap by >= `overlap`. `length` is an int, or
    an int32 tensor with TensorFlow's ops (the input size is known only at run time there)."""
    tile, overlap = int(tile), int(overlap)
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"tile overlap {overlap} must be >= 0 and smaller than the tile size {tile}")
    step = tile - overlap
    n = ops.maximum((length - overlap + step - 1) // step, 1)
    size = (length + (n - 1) * overlap + n - 1) // n
    return size, ops.arange(n) * (length - size) // ops.maximum(n - 1, 1)


def window_1d(size, overlap_out: int, taper_start, taper_end, ops=NUMPY):
    """The weight of one tile along one axis (`size` output pixels), tapered on the sides that have a
    neighbour: 0 over the outer quarter of min(overlap_out, size // 2), a raised cosine over its middle
    half, 1 beyond. `size` and the flags may be tensors with TensorFlow's ops."""
    r = ops.minimum(overlap_out, size // 2)
    margin = r // 4
    rise = ops.to_float(ops.maximum(r - 2 * margin, 1))
    p = ops.to_float(ops.arange(size))

    def up(q):  # the rising edge at distance q from the tile's side
        t = (q - ops.to_float(margin) + 0.5) / rise
        edge = ops.where(t < 0, 0.0, ops.where(t >= 1, 1.0, 0.5 - 0.5 * ops.cos(math.pi * t)))
        return ops.where(q < ops.to_float(margin), 0.0, edge)

    w = ops.where(taper_start, up(p), 1.0)
    return ops.minimum(w, ops.where(taper_end, up(ops.to_float(size - 1) - p), 1.0))
