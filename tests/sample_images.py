"""Real photographs for tests, from the committed samples (data/samples: 128x128 RGB PNG tiles of six
photographs), so that a clone without ../shared tests the core behaviour: a tile as PNG or JPEG bytes,
a larger picture made of tiles, and a sharp image with its synthetic camera-shake blur."""
from __future__ import annotations

import importlib.util
import io
import os
import sys
from typing import Sequence

import numpy as np
from PIL import Image

from config import SAMPLE_DATA

NAMES = sorted(os.path.splitext(n)[0] for n in os.listdir(SAMPLE_DATA) if n.endswith(".png"))


def png(name: str) -> bytes:
    """A sample photograph's PNG file, byte for byte."""
    with open(os.path.join(SAMPLE_DATA, f"{name}.png"), "rb") as f:
        return f.read()


def rgb(name: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png(name))).convert("RGB"))


def jpeg(name: str, quality: int = 95) -> bytes:
    """The same photograph as a JPEG, as cameras and CelebA store images."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(png(name))).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def mosaic(rows: int, cols: int, start: int = 0) -> np.ndarray:
    """A (128 rows) x (128 cols) picture of consecutive sample tiles: a large real-content image."""
    names = [NAMES[(start + i) % len(NAMES)] for i in range(rows * cols)]
    return np.concatenate([np.concatenate([rgb(n) for n in names[r * cols:(r + 1) * cols]], axis=1)
                           for r in range(rows)])


def blurred(sharp: np.ndarray, seed: int = 0, size: int = 15) -> np.ndarray:
    """`sharp` (uint8 RGB) blurred by a seeded full-exposure camera-shake kernel (models/degrade.py)."""
    from models import degrade, images

    kernel = degrade.motion_blur_kernel(seed, size, exposure=1.0)
    return images.float_to_uint8(np.asarray(degrade.tf_blur(images.uint8_to_float(sharp), kernel)))


def pick(count: int, step: int = 5) -> Sequence[str]:
    """`count` sample names spread over the six photographs."""
    return NAMES[::step][:count]


def data_script(name: str):
    """A script of data/ (not a package: its scripts run as files) loaded as a module by path."""
    path = os.path.join(os.path.dirname(SAMPLE_DATA), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"data_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module
