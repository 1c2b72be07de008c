"""Image ingestion's check of one file: it must decode in Transform, and it becomes 8-bit RGB.

Each failure is a `Rejected` with a reason of the one vocabulary (contracts.datasets.REASONS). Plain
Python (PIL, TensorFlow's decoder, components/png_check.py), run inside ImageExampleGen's Beam DoFn and
by `data/prepare_dataset.py --verify`.
"""
from __future__ import annotations

import io
import posixpath
import warnings
from typing import NamedTuple, Tuple

import tensorflow as tf

from components import png_check
from components.image_listing import Candidate, Reject
from contracts.datasets import REASONS
from models import images


class Rejected(Exception):
    """A file that cannot become an example; carries the reason for counters and rejects.tsv."""

    def __init__(self, reason: str, detail: str = ""):
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


class CheckedImage(NamedTuple):
    data: bytes  # the original bytes (8-bit RGB PNG/JPEG) or a PNG re-encoding as 8-bit RGB
    height: int
    width: int
    converted: bool


def check_image(data: bytes, min_size: int, max_pixels: int) -> CheckedImage:
    """Check one encoded image and normalise it to 8-bit RGB; raises `Rejected`.

    The size limits are judged from the header before any pixel is decoded, so a decompression bomb
    costs a few hundred bytes of reading. Files kept as they are (8-bit RGB PNG/JPEG) must decode in
    Transform: PNGs are proved intact without decoding their pixels (`png_check`: chunk CRCs, the
    inflated image data, row filters), JPEGs are decoded by TensorFlow, the decoder Transform uses.
    PIL decodes the files it converts, and names the failure when TF cannot decode a JPEG.
    """
    if not data:
        raise Rejected("empty", "0 bytes")
    with open_header(io.BytesIO(data), len(data)) as im:
        width, height = im.size
        if width * height > max_pixels:
            raise Rejected("too_large", f"{width}x{height} = {width * height} pixels > data.max_pixels {max_pixels}")
        if min(width, height) < min_size:
            raise Rejected("too_small", f"{width}x{height}, shorter side < {min_size}")
        kept = _kept_format(im, data)
        if kept == "PNG":
            try:
                png_check.check(data)
            except png_check.Damaged as e:
                raise Rejected("truncated" if e.truncated else "corrupt", str(e)) from None
            return CheckedImage(data, height, width, converted=False)
        if kept == "JPEG":
            try:
                _tf_decode(tf.constant(data))
            except tf.errors.OpError as tf_error:
                _pil_load(im)  # raises with PIL's diagnosis (truncated, corrupt) when it has one
                raise Rejected("corrupt", f"TensorFlow cannot decode it: {tf_error.message}") from None
            return CheckedImage(data, height, width, converted=False)
        _pil_load(im)
        return CheckedImage(images.encode_png(images.to_rgb8(im)), height, width, converted=True)


def open_header(stream, size: int):
    """PIL's image of an encoded file, from its header alone (no pixel is decoded); raises `Rejected`
    (not_image, too_large beyond PIL's own limit, corrupt or truncated headers). Also what
    `prepare_dataset.py` checks each file with when it does not decode them."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Our own max_pixels check is the guard; PIL's warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(stream)
    except UnidentifiedImageError:
        raise Rejected("not_image", f"{size} bytes, no known image format") from None
    except Image.DecompressionBombError as e:  # PIL's own limit (2x Image.MAX_IMAGE_PIXELS)
        raise Rejected("too_large", str(e)) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise _decode_error(e) from None


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _tf_decode(data):
    return tf.shape(images.tf_decode_rgb8(data))


def _pil_load(im) -> None:
    try:
        im.load()
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, zlib.error, ...
        raise _decode_error(e) from None


def _decode_error(e: Exception) -> Rejected:
    msg = f"{type(e).__name__}: {e}"
    return Rejected("truncated" if "truncat" in msg.lower() else "corrupt", msg)


def _kept_format(im, data: bytes) -> str | None:
    """"PNG" or "JPEG" when the file already is what TF decodes to uint8 RGB unchanged (its bytes
    are kept), else None (it is converted)."""
    if im.mode != "RGB" or getattr(im, "is_animated", False):
        return None
    if im.format == "JPEG":
        return "JPEG"
    # PIL opens 16-bit RGB PNGs as 8-bit "RGB" too: read bit depth and colour type from the IHDR.
    if im.format == "PNG" and data[:8] == png_check.SIGNATURE and data[24] == 8 and data[25] == 2:
        return "PNG"
    return None


def read_bytes(root: str, rel_path: str) -> bytes:
    try:
        with tf.io.gfile.GFile(posixpath.join(root, rel_path), "rb") as f:
            return f.read()
    except (OSError, tf.errors.OpError) as e:
        raise Rejected("unreadable", f"{type(e).__name__}: {e}") from None


def check_candidate(root: str, cand: Candidate, min_size: int, max_pixels: int
                    ) -> Tuple[CheckedImage, CheckedImage | None]:
    """Check a candidate's image (and blur frame); raises `Rejected` with the failing file's path."""
    image = _check_file(root, cand.image, min_size, max_pixels)
    if cand.blur is None:
        return image, None
    blur = _check_file(root, cand.blur, min_size, max_pixels)
    if (blur.height, blur.width) != (image.height, image.width):
        raise RejectedPath(cand.blur, Rejected(
            "size_mismatch", f"blur {blur.width}x{blur.height} vs sharp {image.width}x{image.height}"))
    return image, blur


class RejectedPath(Exception):
    """A `Rejected` with the path of the file that caused it (one of a pair)."""

    def __init__(self, path: str, rejected: Rejected):
        super().__init__(f"{path}: {rejected}")
        self.reject = Reject(path, rejected.reason, rejected.detail)


def _check_file(root: str, rel_path: str, min_size: int, max_pixels: int) -> CheckedImage:
    try:
        return check_image(read_bytes(root, rel_path), min_size, max_pixels)
    except Rejected as r:
        raise RejectedPath(rel_path, r) from None
