"""Restoration in overlapping tiles inside the served graph, so that the memory a request needs is set by
the tile, not by the image (export.tile_size, export.tile_overlap).

The geometry and the blending weights are models/tile_geometry.py's, the same the client's tiling
(serving/tiling.py) uses, evaluated here on tensors because the input size is known only at run time.
The grid is a product of row and column tiles, so the normalised weight of a tile is the product of a
row weight and a column weight. Outputs are assembled by a streaming overlap-add: tiles of a row of
tiles are added into a strip from left to right, and each column range no later tile touches is
finished and kept; strips are added the same way from top to bottom. Only one tile's activations (one
tile position of every image of the batch), one strip and the finished output are alive at a time;
`finish` (clip, or conversion to uint8 for the PNG signature) runs on the finished pieces, so a uint8
output never exists in float32 at full size.
"""
from __future__ import annotations

from types import SimpleNamespace

import tensorflow as tf

from models.tile_geometry import tile_grid, window_1d

TF_OPS = SimpleNamespace(arange=tf.range, where=tf.where, minimum=tf.minimum, maximum=tf.maximum, cos=tf.cos,
                         to_float=lambda v: tf.cast(v, tf.float32))


def axis_weights(length, tile: int, overlap: int, scale: int):
    """(size, starts, weights [n, size * scale]) of the tiles along one axis: each tile's blending
    window divided by the sum of all windows at each output pixel."""
    size, starts = tile_grid(length, tile, overlap, TF_OPS)
    n = tf.size(starts)
    i = tf.range(n)[:, None]
    windows = window_1d(size * scale, overlap * scale, i > 0, i < n - 1, TF_OPS)  # [n, size * scale]
    where = starts[:, None] * scale + tf.range(size * scale)[None, :]
    total = tf.math.unsorted_segment_sum(tf.reshape(windows, [-1]), tf.reshape(where, [-1]), length * scale)
    return size, starts, windows / tf.gather(total, where)


def overlap_add(count, starts, piece, piece_shape, finish, dtype):
    """sum over i < count of piece(i) (each of `piece_shape`) placed at starts[i] (increasing) along axis
    0, with `finish` applied to each finished part; returns the concatenation."""
    parts = tf.TensorArray(dtype, size=count + 1, infer_shape=False, element_shape=tf.TensorShape(None))
    pad = [[0, 0]] * (len(piece_shape) - 1)

    def step(i, acc, parts):
        d = tf.where(i > 0, starts[i] - starts[tf.maximum(i - 1, 0)], 0)  # what no later piece reaches
        parts = parts.write(i, finish(acc[:d]))
        return i + 1, piece(i) + tf.pad(acc[d:], [[0, d]] + pad), parts

    acc = tf.zeros(piece_shape, tf.float32)
    _, acc, parts = tf.while_loop(lambda i, *_: i < count, step, (tf.constant(0), acc, parts),
                                  parallel_iterations=1)
    return parts.write(count, finish(acc)).concat()


def restore_tiled(x, forward, scale: int, tile: int, overlap: int, finish, out_dtype):
    """x float32 [N, H, W, 3] -> finish(forward restored tile by tile, blended) [N, sH, sW, 3].

    forward: float32 [N, h, w, 3] -> float32 [N, sh, sw, 3] for any h, w <= tile. Each call restores
    one tile position of all N images (memory: N tiles)."""
    shape = tf.shape(x)
    n = shape[0]
    th, ys, wy = axis_weights(shape[1], tile, overlap, scale)
    tw, xs, wx = axis_weights(shape[2], tile, overlap, scale)
    identity = lambda t: t  # noqa: E731

    def strip(i):
        band = x[:, ys[i]:ys[i] + th]

        def column(j):  # one tile, weighted, its columns first so that they concatenate along axis 0
            t = forward(band[:, :, xs[j]:xs[j] + tw]) * (wy[i][:, None, None] * wx[j][None, :, None])
            return tf.transpose(t, [2, 0, 1, 3])  # [tw s, N, th s, 3]

        cols = overlap_add(tf.size(xs), xs * scale, column, [tw * scale, n, th * scale, 3], identity, tf.float32)
        return tf.transpose(cols, [2, 1, 0, 3])  # [th s, N, W s, 3]

    rows = overlap_add(tf.size(ys), ys * scale, strip, [th * scale, n, shape[2] * scale, 3], finish, out_dtype)
    return tf.transpose(rows, [1, 0, 2, 3])  # for one image a reshape: TF moves no data for a size-1 axis
