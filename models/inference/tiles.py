"""Restoration in overlapping tiles inside the served graph, so that the memory a request needs is set by
the tile, not by the image (export.tile_size, export.tile_overlap).

The geometry and the blending weights are models/tile_geometry.py's, the same the client's tiling
(serving/tiling.py) uses, evaluated here on tensors because the input size is known only at run time.
The grid is a product of row and column tiles, so the normalised weight of a tile is the product of a
row weight and a column weight. The tiles of a row of tiles are added into a strip (each padded to the
strip's width: no transposes or concatenations of strips, 0.16 GB less at 2000 px than assembling
columns by overlap-add), and strips are assembled by a streaming overlap-add from top to bottom: the
rows no later strip reaches are finished and kept. Only one tile's activations (one tile position of
every image of the batch), one strip and the finished output are alive at a time; `finish` (clip, or
conversion to uint8 for the PNG signature) runs on the finished rows, so a uint8 output never exists in
float32 at full size.
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

    def strip(i):  # the row of tiles i, blended: [th s, N, W s, 3]
        band = x[:, ys[i]:ys[i] + th]

        def add_tile(j, acc):  # tiles added into the strip from left to right, each padded to its width
            t = forward(band[:, :, xs[j]:xs[j] + tw]) * (wy[i][:, None, None] * wx[j][None, :, None])
            left = xs[j] * scale
            return (acc + tf.pad(t, [[0, 0], [0, 0], [left, (shape[2] - xs[j] - tw) * scale], [0, 0]]),)

        (acc,) = sequential_loop(tf.size(xs), add_tile, tf.zeros([n, th * scale, shape[2] * scale, 3]))
        return tf.transpose(acc, [1, 0, 2, 3])  # for one image a reshape: TF moves no data for a size-1 axis

    rows = overlap_add(tf.size(ys), ys * scale, strip, [th * scale, n, shape[2] * scale, 3], finish, out_dtype)
    return tf.transpose(rows, [1, 0, 2, 3])  # for one image a reshape: TF moves no data for a size-1 axis


def sequential_loop(count, body, *state):
    """state after body(i, *state) for i in range(count), one iteration at a time."""
    out = tf.while_loop(lambda i, *_: i < count, lambda i, *s: (i + 1, *body(i, *s)), (tf.constant(0), *state),
                        parallel_iterations=1)
    return out[1:]
