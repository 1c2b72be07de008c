"""Tiled inference for images too large for one forward pass (or one gRPC message).

The image is cut into equally sized, overlapping tiles spread evenly over it (so tiles can be batched),
each tile is restored by `restore_fn`, and the outputs are blended with smooth weight windows, normalised
by their sum, so no seam and no brightness change shows. The geometry and the windows are
models/tile_geometry.py's, which the served graph uses for its own tiles too (models/inference/tiles.py).

`restore_fn(batch)` takes float32 [N, h, w, 3] in [0, 1] and returns float32 [N, h*s, w*s, 3]; the
scale s is read from its output, so the same code serves SR (x4) and deblurring (x1), a local
SavedModel (`restore` signature) and a remote server (tiles sent as PNG over gRPC/REST).
"""
from __future__ import annotations

from typing import Callable, List, Tuple

import numpy as np

from models.tile_geometry import tile_grid, window_1d

RestoreFn = Callable[[np.ndarray], np.ndarray]


def restore_tiled(image: np.ndarray, restore_fn: RestoreFn, tile_size: int, overlap: int,
                  batch_size: int = 4) -> np.ndarray:
    """Restore float32 [H, W, 3] in [0, 1] tile by tile; returns float32 [H*s, W*s, 3].

    tile_size and overlap are in input pixels; tile_size <= 0 restores the whole image at once.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
    h, w = image.shape[:2]
    if tile_size <= 0 or (tile_size >= h and tile_size >= w):
        return np.asarray(restore_fn(image[None]), dtype=np.float32)[0]
    (th, ys), (tw, xs) = tile_grid(h, tile_size, overlap), tile_grid(w, tile_size, overlap)
    boxes: List[Tuple[int, int]] = [(y, x) for y in ys for x in xs]

    out = acc = None
    scale = None
    for i in range(0, len(boxes), max(1, batch_size)):
        chunk = boxes[i: i + max(1, batch_size)]
        batch = np.stack([image[y: y + th, x: x + tw] for y, x in chunk])
        restored = np.asarray(restore_fn(batch), dtype=np.float32)
        if scale is None:
            scale = _scale_of(restored.shape, th, tw)
            out = np.zeros((h * scale, w * scale, 3), dtype=np.float64)
            acc = np.zeros((h * scale, w * scale, 1), dtype=np.float64)
            # Windows depend only on which sides have a neighbour: build them per tile below.
        elif restored.shape[1:3] != (th * scale, tw * scale):
            raise ValueError(f"restore_fn returned {restored.shape[1:3]} for a {th}x{tw} tile at scale {scale}")
        for (y, x), tile_out in zip(chunk, restored, strict=True):
            wy = window_1d(th * scale, overlap * scale, y > 0, y + th < h)
            wx = window_1d(tw * scale, overlap * scale, x > 0, x + tw < w)
            weight = (wy[:, None] * wx[None, :])[..., None]
            sy, sx = y * scale, x * scale
            out[sy: sy + th * scale, sx: sx + tw * scale] += tile_out * weight
            acc[sy: sy + th * scale, sx: sx + tw * scale] += weight
    if np.any(acc <= 0):  # cannot happen with tile_starts' geometry; guard against future edits
        raise RuntimeError("tiling left pixels without weight; increase the overlap")
    return (out / acc).astype(np.float32)


def _scale_of(shape, th: int, tw: int) -> int:
    if len(shape) != 4 or shape[1] % th or shape[2] % tw or shape[1] // th != shape[2] // tw:
        raise ValueError(f"restore_fn returned shape {shape} for {th}x{tw} tiles: not an integer scale")
    return shape[1] // th
