"""Image ingestion's check of one file: it must decode in Transform, and it becomes 8-bit RGB.

Each failure is a `Rejected` with a reason of the one vocabulary (contracts.datasets.REASONS). Plain
Python (PIL, TensorFlow's decoder, components/png_check.py, simplejpeg), run inside ImageExampleGen's
Beam DoFn and by `data/prepare_dataset.py`.
"""
from __future__ import annotations

import io
import os
import posixpath
import stat
import warnings
from typing import Callable, NamedTuple, Tuple

import tensorflow as tf
from absl import logging

from components import png_check, tree_walk
from components.image_listing import Candidate
from components.rejects_ledger import Reject
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
    costs a few hundred bytes of reading. Damage is judged the same way whatever the colour type:
    every PNG is proved intact without decoding its pixels (`png_check`: chunk CRCs, the inflated
    image data, row filters; PIL, which converts the non-RGB ones, checks no CRC of the image data),
    and every JPEG is decoded by libjpeg-turbo with its warnings as errors (`_check_jpeg`: TF and PIL
    decode "Corrupt JPEG data" into garbage pixels without a word). Files kept as they are (8-bit RGB
    PNG/JPEG) must decode in Transform: JPEGs are also decoded by TensorFlow, the decoder Transform
    uses. PIL decodes the files it converts. Any other failure of a decoder on this file's bytes is
    `corrupt` too: one file never stops the run.
    """
    if not data:
        raise Rejected("empty", "0 bytes")
    try:
        return _check_image(data, min_size, max_pixels)
    except Rejected:
        raise
    except Exception as e:  # a decoder's own bug or limit on this file (PIL raises many types)
        logging.warning("image check: unexpected %s on a %d-byte file: %s", type(e).__name__, len(data), e)
        raise Rejected("corrupt", f"unexpected {type(e).__name__} while decoding: {e}") from None


def _check_image(data: bytes, min_size: int, max_pixels: int) -> CheckedImage:
    with open_header(io.BytesIO(data), len(data)) as im:
        width, height = im.size
        if width * height > max_pixels:
            raise Rejected("too_large", f"{width}x{height} = {width * height} pixels > data.max_pixels {max_pixels}")
        if min(width, height) < min_size:
            raise Rejected("too_small", f"{width}x{height}, shorter side < {min_size}")
        if im.format == "PNG":
            try:
                png_check.check(data)
            except png_check.Damaged as e:
                raise Rejected("truncated" if e.truncated else "corrupt", str(e)) from None
        elif im.format in ("JPEG", "MPO"):  # MPO: a JPEG with extra frames (phones); PIL reads the first
            _check_jpeg(data)
        kept = _kept_format(im, data)
        if kept == "PNG":
            return CheckedImage(data, height, width, converted=False)
        if kept == "JPEG":
            try:
                _tf_decode(tf.constant(data))
            except tf.errors.OpError as tf_error:
                raise Rejected("corrupt", f"TensorFlow cannot decode it: {tf_error.message}") from None
            return CheckedImage(data, height, width, converted=False)
        _pil_load(im)
        return CheckedImage(images.encode_png(images.to_rgb8(im)), height, width, converted=True)


def _check_jpeg(data: bytes) -> None:
    """Decode with libjpeg-turbo (simplejpeg), whose warnings ("Corrupt JPEG data: N extraneous bytes",
    "premature end of data segment", "Premature end of JPEG file") are errors here: a decoder that only
    warns still hands out the damaged pixels. About 0.14 ms for a 128x128 JPEG."""
    import simplejpeg

    try:
        simplejpeg.decode_jpeg(data, strict=True)
    except (ValueError, RuntimeError) as e:
        msg = str(e)
        raise Rejected("truncated" if "premature end of jpeg file" in msg.lower() else "corrupt",
                       f"libjpeg: {msg}") from None


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


def read_file(path: str) -> bytes:
    """A file's bytes; raises `Rejected` (not_a_file, unreadable) instead of blocking or failing. A
    local path is opened only when `stat` says it is a regular file, and without blocking (a FIFO put
    there since the listing cannot hang the read); object stores go through tf.io.gfile."""
    if tree_walk.is_remote(path):
        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                return f.read()
        except (OSError, tf.errors.OpError) as e:
            raise Rejected("unreadable", f"{type(e).__name__}: {e}") from None
    regular_size(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise _unreadable(e) from None
    try:
        _require_regular(os.fstat(fd).st_mode)  # the same file the stat saw, not one swapped in since
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    except OSError as e:
        raise _unreadable(e) from None
    finally:
        os.close(fd)


def regular_size(path: str) -> int:
    """The size of a local regular file, from `stat` alone; raises `Rejected` for anything else (a
    FIFO, a socket, a device, a symlink loop, a dangling symlink) without opening it."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise Rejected(*tree_walk.stat_error(e, path)) from None
    _require_regular(st.st_mode)
    return st.st_size


def _require_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise Rejected("not_a_file", tree_walk.kind_of(mode))


def _unreadable(e: OSError) -> Rejected:
    return Rejected("unreadable", f"{type(e).__name__}: {e.strerror or e}")


def check_candidate(root: str, cand: Candidate, min_size: int, max_pixels: int,
                    read: Callable[[str], bytes] = read_file) -> Tuple[CheckedImage, CheckedImage | None]:
    """Check a candidate's image (and blur frame); raises `RejectedPath` with the failing file's path.
    `read(path)` reads one file (the Beam DoFn passes one that counts)."""
    image = _check_file(root, cand.image, min_size, max_pixels, read)
    if cand.blur is None:
        return image, None
    blur = _check_file(root, cand.blur, min_size, max_pixels, read)
    if (blur.height, blur.width) != (image.height, image.width):
        raise RejectedPath(cand.blur, Rejected(
            "size_mismatch", f"blur {blur.width}x{blur.height} vs sharp {image.width}x{image.height}"))
    return image, blur


class RejectedPath(Exception):
    """A `Rejected` with the path of the file that caused it (one of a pair)."""

    def __init__(self, path: str, rejected: Rejected):
        super().__init__(f"{path}: {rejected}")
        self.reject = Reject(path, rejected.reason, rejected.detail)


def _check_file(root: str, rel_path: str, min_size: int, max_pixels: int, read: Callable[[str], bytes]
                ) -> CheckedImage:
    try:
        return check_image(read(posixpath.join(root, rel_path)), min_size, max_pixels)
    except Rejected as r:
        raise RejectedPath(rel_path, r) from None
