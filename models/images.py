"""The one place that owns image conversions.

Convention: uint8 RGB (H, W, 3) at the edges (files, tf.Examples, PNG in and out of the served model),
float32 in [0, 1] inside the networks. Grey, palette, RGBA and 16-bit images become 8-bit RGB once, at
ingestion (`to_rgb8`), so nothing downstream ever sees another mode.
"""
from __future__ import annotations

import io

import numpy as np

# -- host side (PIL / numpy): ingestion, clients, reports --------------------------------------------


def to_rgb8(img) -> np.ndarray:
    """A PIL image of any mode as a uint8 RGB array (H, W, 3).

    16-bit images keep their top 8 bits; alpha is composited over white (transparent pixels carry
    arbitrary colour, white is what a viewer shows); palette images are expanded.
    """
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.uint32)
        # "I" from a 16-bit PNG holds 0..65535; scale 16 -> 8 bits with rounding.
        a = np.clip((a + 128) // 257, 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if mode == "F":
        a = np.asarray(img, dtype=np.float32)
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"), dtype=np.uint8)
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def read_rgb8(path_or_bytes) -> np.ndarray:
    """Decode a file path or encoded bytes to uint8 RGB."""
    from PIL import Image

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else path_or_bytes
    with Image.open(src) as im:
        im.load()
        return to_rgb8(im)


def encode_png(rgb8: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb8, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def float_to_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 with rounding (not truncation: truncation darkens by half a level)."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def uint8_to_float(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32) / 255.0


# -- graph side (TensorFlow): Transform, training input, the served model ----------------------------


def tf_decode_rgb8(image_bytes):
    """Encoded PNG/JPEG/BMP/GIF bytes (scalar string) to uint8 (H, W, 3)."""
    import tensorflow as tf

    img = tf.io.decode_image(image_bytes, channels=3, dtype=tf.uint8, expand_animations=False)
    img.set_shape([None, None, 3])
    return img


def tf_to_float(img_uint8):
    import tensorflow as tf

    return tf.cast(img_uint8, tf.float32) / 255.0


def tf_to_uint8(img_float):
    """[0, 1] floats to uint8 with rounding and clipping."""
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round(tf.cast(img_float, tf.float32) * 255.0), 0.0, 255.0), tf.uint8)
