"""Eval pairs (degraded input, ground truth) as uint8 images: from a Transform output split (the
Evaluator) or from folders of images (`gan-restore evaluate`, the quality benchmark). Anything that cannot
be paired or read is skipped and returned with its reason, never silently dropped.

Folders: SR pairs each HR image with the LR of the same file name (the standard benchmark LR images),
the HR cropped from the top-left to `scale` x the LR size (the convention of the SR literature);
without an LR folder the HR is cropped to a multiple of `scale` and the LR made by MATLAB-style
antialiased bicubic (models/degrade.py). Deblur pairs blur and sharp frames by file name.
"""
from __future__ import annotations

import logging
import os
from typing import List, Tuple

import numpy as np

from contracts import features
from contracts.datasets import is_image_name
from models import images
from models.scoring import EvalImage

log = logging.getLogger(__name__)


def read_eval_images(split_uri: str, scale: int, max_images: int) -> Tuple[List[EvalImage], List[Tuple[str, str]]]:
    """The first `max_images` good pairs of a Transform output split directory (TFRecord, gzip or not).

    A bad record (missing feature, undecodable PNG, sizes that do not match `scale`) is skipped and
    listed in the returned rejects with its reason, never silently dropped.
    """
    import tensorflow as tf

    from models import train_data

    files = sorted(f for f in tf.io.gfile.glob(os.path.join(split_uri, "*")) if not tf.io.gfile.isdir(f))
    if not files:
        raise FileNotFoundError(f"no example files in {split_uri}")
    pairs: List[EvalImage] = []
    rejects: List[Tuple[str, str]] = []
    for path in files:
        for i, record in enumerate(train_data.record_dataset([path]).as_numpy_iterator()):
            if len(pairs) >= max_images:
                return pairs, rejects
            pair, reason = _parse_pair(record, scale)
            if pair is None:
                where = f"{os.path.basename(path)}#{i}"
                rejects.append((where, reason))
                log.warning("eval example %s skipped: %s", where, reason)
            else:
                pairs.append(pair)
    return pairs, rejects


def _parse_pair(record: bytes, scale: int) -> Tuple[EvalImage | None, str]:
    import tensorflow as tf

    ex = tf.train.Example.FromString(record)
    feats = ex.features.feature
    missing = [k for k in (features.TARGET, features.DEGRADED) if not feats[k].bytes_list.value]
    if missing:
        return None, f"missing feature(s) {missing}"
    ids = feats[features.ID].bytes_list.value
    ex_id = ids[0].decode("utf-8", "replace") if ids else ""
    try:
        target = images.read_rgb8(feats[features.TARGET].bytes_list.value[0])
        degraded = images.read_rgb8(feats[features.DEGRADED].bytes_list.value[0])
    except Exception as e:  # PIL raises several types for corrupt data
        return None, f"{ex_id}: undecodable image ({type(e).__name__}: {e})"
    want = (degraded.shape[0] * scale, degraded.shape[1] * scale)
    if target.shape[:2] != want:
        return None, f"{ex_id}: target {target.shape[:2]} is not {scale}x degraded {degraded.shape[:2]}"
    return EvalImage(ex_id, degraded, target), ""


def list_images(folder: str) -> List[str]:
    """The image files (by extension) directly in `folder`, sorted; a missing folder is a ValueError."""
    if not os.path.isdir(folder):
        raise ValueError(f"{folder} is not a directory")
    return sorted(n for n in os.listdir(folder) if is_image_name(n) and os.path.isfile(os.path.join(folder, n)))


def _read(path: str) -> Tuple[np.ndarray | None, str]:
    try:
        return images.read_rgb8(path), ""
    except Exception as e:  # PIL raises many types for corrupt or non-image files
        return None, f"unreadable ({type(e).__name__}: {e})"


def sr_pairs(hr_dir: str, lr_dir: str, scale: int, max_images: int = 0):
    """EvalImage pairs (LR, HR) for SR, and (name, reason) rejects."""
    from models import degrade

    pairs, rejects = [], []
    for name in list_images(hr_dir):
        if max_images and len(pairs) >= max_images:
            break
        hr, why = _read(os.path.join(hr_dir, name))
        if hr is None:
            rejects.append((name, why))
            continue
        if lr_dir:
            lr_path = os.path.join(lr_dir, name)
            if not os.path.exists(lr_path):
                rejects.append((name, f"no LR image {lr_path}"))
                continue
            lr, why = _read(lr_path)
            if lr is None:
                rejects.append((name, f"LR {why}"))
                continue
            h, w = lr.shape[0] * scale, lr.shape[1] * scale
            if hr.shape[0] < h or hr.shape[1] < w:
                rejects.append((name, f"HR {hr.shape[1]}x{hr.shape[0]} smaller than {scale} x LR {lr.shape[1]}x"
                                      f"{lr.shape[0]}"))
                continue
            hr = hr[:h, :w]
        else:
            h, w = hr.shape[0] - hr.shape[0] % scale, hr.shape[1] - hr.shape[1] % scale
            if h < scale or w < scale:
                rejects.append((name, f"smaller than the scale {scale}"))
                continue
            hr = np.ascontiguousarray(hr[:h, :w])
            lr = degrade.resize_uint8(hr, 1.0 / scale)
        pairs.append(EvalImage(os.path.splitext(name)[0], lr, hr))
    return pairs, rejects


def deblur_pairs(blur_dir: str, sharp_dir: str, max_images: int = 0):
    """EvalImage pairs (blurred, sharp) by file name, and (name, reason) rejects."""
    pairs, rejects = [], []
    for name in list_images(blur_dir):
        if max_images and len(pairs) >= max_images:
            break
        sharp_path = os.path.join(sharp_dir, name)
        if not os.path.exists(sharp_path):
            rejects.append((name, f"no sharp image {sharp_path}"))
            continue
        (blur, why_b), (sharp, why_s) = _read(os.path.join(blur_dir, name)), _read(sharp_path)
        if blur is None or sharp is None:
            rejects.append((name, f"blur {why_b}" if blur is None else f"sharp {why_s}"))
            continue
        if blur.shape != sharp.shape:
            rejects.append((name, f"blur {blur.shape[:2]} and sharp {sharp.shape[:2]} differ in size"))
            continue
        pairs.append(EvalImage(os.path.splitext(name)[0], blur, sharp))
    return pairs, rejects
