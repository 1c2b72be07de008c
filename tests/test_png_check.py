"""png_check against TensorFlow's PNG decoder (the one Transform uses), on real and damaged images.

Every file png_check passes must decode with TF, and every damage it reports must also stop TF, or
be visible in the file (a CRC mismatch libpng may only warn about).
"""
import glob
import os
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf

from components import png_check
from config import SAMPLE_DATA
from models import images


def chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def png(rgb: np.ndarray, interlace: bool = False, filters: int = 0, extra_rows: int = 0,
        idat: bytes | None = None) -> bytes:
    """An 8-bit RGB PNG built chunk by chunk: every row with filter type `filters` (0 = None, so the
    samples are the pixels), Adam7-interlaced on request, optionally with rows beyond the header's."""
    h, w, _ = rgb.shape
    if interlace:
        parts = [rgb[y0::dy, x0::dx] for x0, y0, dx, dy in png_check._ADAM7]
    else:
        parts = [np.concatenate([rgb, np.zeros((extra_rows, w, 3), np.uint8)])]
    raw = b"".join(bytes([filters]) + row.tobytes() for part in parts if part.size for row in part)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, int(interlace))
    data = zlib.compress(raw) if idat is None else idat
    return png_check.SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def tf_decodes(data: bytes) -> bool:
    try:
        tf.io.decode_png(data, channels=3)
        return True
    except tf.errors.OpError:
        return False


def damage(data: bytes) -> str | None:
    try:
        png_check.check(data)
        return None
    except png_check.Damaged as e:
        return "truncated" if e.truncated else "corrupt"


@pytest.fixture(scope="module")
def photo() -> bytes:
    """A 256x256 photograph: four neighbouring sample tiles of one photo, encoded by PIL."""
    tile = lambda i: images.read_rgb8(os.path.join(SAMPLE_DATA, f"china_{i:02d}.png"))  # noqa: E731
    rgb = np.concatenate([np.concatenate([tile(1), tile(2)], axis=1), np.concatenate([tile(5), tile(6)], axis=1)])
    return images.encode_png(rgb)


def test_real_pngs_pass_and_decode(photo):
    files = sorted(glob.glob(os.path.join(SAMPLE_DATA, "*.png")))
    assert len(files) > 60
    for data in [open(path, "rb").read() for path in files] + [photo]:
        png_check.check(data)  # raises on damage
        assert tf_decodes(data)


def test_interlaced_and_odd_sizes_pass(photo):
    rgb = tf.io.decode_png(photo, channels=3).numpy()
    for h, w in [(37, 53), (1, 9), (8, 8), (130, 97)]:
        for interlace in (False, True):
            data = png(rgb[:h, :w], interlace=interlace)
            png_check.check(data)
            np.testing.assert_array_equal(tf.io.decode_png(data, channels=3).numpy(), rgb[:h, :w])


def test_damage_in_storage_is_caught_by_the_crcs(photo):
    flipped = bytearray(photo)
    flipped[len(photo) // 2] ^= 0x01  # one bit in the image data
    zeroed = bytearray(photo)
    zeroed[len(photo) // 2:len(photo) // 2 + 200] = bytes(200)
    assert damage(bytes(flipped)) == damage(bytes(zeroed)) == "corrupt"
    assert damage(photo[:len(photo) // 2]) == "truncated"
    assert damage(photo[:-12]) == "truncated"  # only the IEND chunk missing
    assert not tf_decodes(bytes(zeroed)) and not tf_decodes(photo[:len(photo) // 2])


def test_intact_chunks_with_bad_image_data_are_caught_like_tf_does(photo):
    """Valid CRCs around image data a decoder rejects: what only inflating the stream can find."""
    rgb = tf.io.decode_png(photo, channels=3).numpy()[:40, :50]
    raw = b"".join(b"\x00" + row.tobytes() for row in rgb)
    stream = zlib.compress(raw)
    bad = {
        "not zlib": png(rgb, idat=b"\x00" * 64),
        "adler mismatch": png(rgb, idat=stream[:-4] + bytes(4)),
        "stream cut short": png(rgb, idat=zlib.compress(raw[:len(raw) // 2])[:-10]),
        "too few rows": png(rgb, idat=zlib.compress(raw[:len(raw) // 2])),
        "filter type 7": png(rgb, filters=7),
    }
    for name, data in bad.items():
        assert damage(data) == "corrupt", name
        assert not tf_decodes(data), name
    # Rows beyond the header's are a warning for libpng, which decodes the rows it needs; so do we.
    longer = png(rgb, extra_rows=3)
    assert damage(longer) is None
    np.testing.assert_array_equal(tf.io.decode_png(longer, channels=3).numpy(), rgb)


def test_structure_errors():
    assert damage(b"GIF89a" + bytes(40)) == "corrupt"
    rgb = np.zeros((4, 4, 3), np.uint8)
    good = png(rgb)
    no_idat = png_check.SIGNATURE + good[8:33] + chunk(b"IEND", b"")
    assert damage(no_idat) == "corrupt"
    assert damage(good) is None
