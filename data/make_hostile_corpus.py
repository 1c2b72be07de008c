"""Builds a hostile data folder for ImageExampleGen: good photographs, every odd-but-valid format the
converter handles, and every kind of bad file, each with what ingestion must make of it. (About 300
lines in one script on purpose: each file is made on the line that states what it must yield.)

    python data/make_hostile_corpus.py OUT      # builds OUT/ (must not exist) and prints its table

What is in it (the table printed, and `build(out).entries` for tests/test_hostile_corpus.py):
  good    45 sample photographs (data/samples) as PNG and JPEG, at the top and two folders down
  odd     grey, 1-bit, grey+alpha, palette, palette+tRNS, RGBA, 16-bit grey and RGB, interlaced PNGs,
          trailing bytes after IEND, grey/CMYK/progressive JPEG, BMP, TIFF (RGB, 16-bit grey, float),
          GIF, animated GIF, WebP (lossy, lossless RGBA), a PNG named .jpg, a symlink to a photo:
          all kept (converted to 8-bit RGB unless they already are 8-bit RGB PNG/JPEG); and one JPEG
          whose zeroed scan bytes still decode without a warning: JPEG has no checksum, so that damage
          is invisible to any decoder and the file is kept (the limit of every check)
  bad     empty, text, HTML named .png, truncated PNG/JPEG, corrupt PNGs of five colour types (wrong
          image-data CRC or zeroed data), corrupt JPEG bodies (RGB, grey, CMYK: markers in the scan,
          which libjpeg only warns about), too small,
          decompression-bomb headers (beyond data.max_pixels and beyond PIL's own limit), symlink
          loops (two links, a self link), dangling symlinks (top and sub-folder), folder symlinks to
          `.` and `..` (loops), a FIFO named fifo.png, a socket, links to /dev/zero and /dev/null, a
          name that is not UTF-8, a tab in a name, an unreadable file and folder (chmod 000), a
          duplicate id; plus hidden files, which are not data at all
Each entry says what ingestion must yield: "kept", "converted" (kept, re-encoded as 8-bit RGB PNG) or a
reject reason of contracts.datasets.REASONS.

chmod 000 does not stop root (CI and these machines run as root): the expectation of the two
unreadable entries is what this user can actually do: "unreadable" where an open fails, else kept.
(tests/test_hostile_corpus.py also reads them from a process that may not bypass file permissions:
`setpriv --bounding-set=-dac_override,-dac_read_search`, where both are `unreadable`.)
"""
from __future__ import annotations

import argparse
import io
import os
import stat
import struct
import sys
import zlib
from collections import Counter
from typing import Callable, List, NamedTuple

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(HERE, "samples")
N_GOOD = 45
KEPT, CONVERTED = "kept", "converted"
MAX_PIXELS = 40_000_000  # data.max_pixels' default; the bomb headers declare more


class Entry(NamedTuple):
    path: str  # relative to the corpus root; rejects.tsv escapes what is not printable UTF-8 (\xe9, \x09)
    kind: str  # e.g. "good PNG", "corrupt PNG (grey, IDAT CRC)"
    expect: str  # KEPT, CONVERTED or a reject reason


class Corpus(NamedTuple):
    root: str
    entries: List[Entry]
    hidden: List[str]  # not data: never listed, never rejected

    def kept(self):
        return {os.path.splitext(e.path)[0]: e for e in self.entries if e.expect in (KEPT, CONVERTED)}

    def rejects(self):
        return {e.path: e.expect for e in self.entries if e.expect not in (KEPT, CONVERTED)}


# -- encoders --------------------------------------------------------------------------------------


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_from_rows(width: int, height: int, bit_depth: int, colour_type: int, raw_rows: bytes,
                  interlace: int = 0) -> bytes:
    """A PNG written chunk by chunk (what PIL cannot write: 16-bit RGB, Adam7, lying headers)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw_rows))
            + png_chunk(b"IEND", b""))


def png16_rgb(rgb8: np.ndarray) -> bytes:
    """16-bit RGB PNG whose top 8 bits are `rgb8` (each row: filter byte 0, big-endian samples)."""
    h, w, _ = rgb8.shape
    rows = (rgb8.astype(">u2") * 257).reshape(h, w * 3)
    return png_from_rows(w, h, 16, 2, b"".join(b"\x00" + row.tobytes() for row in rows))


def bomb_png(side: int) -> bytes:
    """A few hundred bytes whose header declares side x side RGB pixels (one row of data)."""
    return png_from_rows(side, side, 8, 2, b"\x00" + bytes(3 * side))


def wrong_idat_crc(png: bytes) -> bytes:
    """The same PNG with the first IDAT chunk's CRC flipped: its pixels still inflate."""
    pos = png.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", png[pos:pos + 4])
    crc_at = pos + 8 + length
    return png[:crc_at] + bytes(b ^ 0xFF for b in png[crc_at:crc_at + 4]) + png[crc_at + 4:]


def zeroed_middle(data: bytes, n: int = 200) -> bytes:
    """n zero bytes over the middle of the file (inside a PNG's image data or a JPEG's scan)."""
    mid = len(data) // 2
    return data[:mid] + bytes(n) + data[mid + n:]


def markers_in_scan(jpeg: bytes) -> bytes:
    """A JPEG whose scan data has restart markers in the middle: libjpeg warns "Corrupt JPEG data:
    premature end of data segment" and fills the rest of the image with grey."""
    mid = len(jpeg) // 2
    return jpeg[:mid] + b"\xff\xd0" * 8 + jpeg[mid + 16:]


# -- the corpus ------------------------------------------------------------------------------------


def build(out: str) -> Corpus:
    """Create the corpus under `out` (created; must not exist) and return what it holds."""
    os.makedirs(out)
    names = sorted(os.path.splitext(n)[0] for n in os.listdir(SAMPLES) if n.endswith(".png"))[:N_GOOD]
    photos = {n: Image.open(os.path.join(SAMPLES, f"{n}.png")).convert("RGB") for n in names}
    entries: List[Entry] = []

    def put(rel: str, kind: str, expect: str, data: bytes | None = None, make: Callable[[str], None] | None = None):
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if make is not None:
            make(path)
        else:
            with open(path, "wb") as f:
                f.write(data)
        entries.append(Entry(rel, kind, expect))

    # Good photographs: PNG at the top and in photos/, JPEG two folders down.
    for i, name in enumerate(names):
        if i % 3 == 2:
            put(f"jpeg/deeper/{name}.jpg", "good JPEG", KEPT, encode(photos[name], "JPEG", quality=95))
        else:
            with open(os.path.join(SAMPLES, f"{name}.png"), "rb") as f:
                put(f"{'photos/' if i % 3 else ''}{name}.png", "good PNG", KEPT, f.read())

    a, b = photos[names[0]], photos[names[1]]
    rgb = np.asarray(b)
    grey = a.convert("L")
    rgba = a.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, a.width).astype(np.uint8), (a.height, 1))))
    palette = a.convert("P", palette=Image.ADAPTIVE)
    cmyk_jpeg = encode(a.convert("CMYK"), "JPEG", quality=95)
    grey_jpeg = encode(grey, "JPEG", quality=95)
    rgb_jpeg = encode(b, "JPEG", quality=95)
    rgb_png = encode(b, "PNG")

    # Odd but valid: every mode the converter handles, and the kept formats in unusual forms.
    odd = [
        ("grey.png", "PNG grey", CONVERTED, encode(grey, "PNG")),
        ("bilevel.png", "PNG 1-bit", CONVERTED, encode(grey.convert("1"), "PNG")),
        ("grey_alpha.png", "PNG grey+alpha", CONVERTED, encode(rgba.convert("LA"), "PNG")),
        ("palette.png", "PNG palette", CONVERTED, encode(palette, "PNG")),
        ("palette_trns.png", "PNG palette+tRNS", CONVERTED, encode(palette, "PNG", transparency=0)),
        ("rgba.png", "PNG RGBA", CONVERTED, encode(rgba, "PNG")),
        ("grey16.png", "PNG 16-bit grey", CONVERTED,
         encode(Image.fromarray(np.asarray(grey, np.uint16) * 257), "PNG")),
        ("rgb16.png", "PNG 16-bit RGB", CONVERTED, png16_rgb(rgb)),
        ("interlaced.png", "PNG interlaced RGB", KEPT, _interlaced(b)),
        ("interlaced_grey.png", "PNG interlaced grey", CONVERTED, _interlaced(grey)),
        ("trailing.png", "PNG trailing bytes after IEND", KEPT, rgb_png + b"trailing garbage"),
        ("grey_jpeg.jpg", "JPEG grey", CONVERTED, grey_jpeg),
        ("cmyk.jpg", "JPEG CMYK", CONVERTED, cmyk_jpeg),
        ("progressive.jpg", "JPEG progressive", KEPT, encode(a, "JPEG", quality=90, progressive=True)),
        # Zeroed scan bytes that happen to stay a valid bitstream: JPEG has no checksum, so no decoder
        # can tell (garbage pixels, no warning). Kept: the limit of what any check can see.
        ("zeroed_scan.jpg", "JPEG damage no decoder can see", KEPT, zeroed_middle(rgb_jpeg)),
        ("bitmap.bmp", "BMP", CONVERTED, encode(a, "BMP")),
        ("rgb_tiff.tif", "TIFF RGB", CONVERTED, encode(a, "TIFF")),
        ("grey16_tiff.tif", "TIFF 16-bit grey", CONVERTED,
         encode(Image.fromarray(np.asarray(grey, np.uint16) * 257), "TIFF")),
        ("float.tif", "TIFF float", CONVERTED, encode(Image.fromarray(np.asarray(grey, np.float32) / 255), "TIFF")),
        ("still.gif", "GIF", CONVERTED, encode(palette, "GIF")),
        ("animated.gif", "GIF animated (first frame)", CONVERTED,
         encode(palette, "GIF", save_all=True, append_images=[b.convert("P")], duration=100)),
        ("lossy.webp", "WebP lossy", CONVERTED, encode(a, "WEBP", quality=90)),
        ("lossless_rgba.webp", "WebP lossless RGBA", CONVERTED, encode(rgba, "WEBP", lossless=True)),
        ("png_named.jpg", "PNG named .jpg", KEPT, rgb_png),
    ]
    for rel, kind, expect, data in odd:
        put(f"odd/{rel}", kind, expect, data)
    put("odd/link_to_photo.png", "symlink to a photo", KEPT,
        make=lambda p: os.symlink(os.path.join("..", entries[0].path), p))

    # Bad files, each with its reason.
    bad = [
        ("empty.png", "empty file", "empty", b""),
        ("notes.txt", "text", "not_image", b"these are not pixels\n"),
        ("page.png", "HTML named .png", "not_image", b"<!doctype html><html><body>404</body></html>\n"),
        ("truncated_png.png", "PNG truncated", "truncated", rgb_png[:len(rgb_png) // 2]),
        ("truncated_jpeg.jpg", "JPEG truncated", "truncated", rgb_jpeg[:len(rgb_jpeg) // 2]),
        ("crc_rgb.png", "PNG corrupt (RGB, IDAT CRC)", "corrupt", wrong_idat_crc(rgb_png)),
        ("crc_grey.png", "PNG corrupt (grey, IDAT CRC)", "corrupt", wrong_idat_crc(encode(grey, "PNG"))),
        ("crc_palette.png", "PNG corrupt (palette, IDAT CRC)", "corrupt", wrong_idat_crc(encode(palette, "PNG"))),
        ("crc_grey16.png", "PNG corrupt (16-bit grey, IDAT CRC)", "corrupt",
         wrong_idat_crc(encode(Image.fromarray(np.asarray(grey, np.uint16) * 257), "PNG"))),
        ("zeroed_rgba.png", "PNG corrupt (RGBA, zeroed data)", "corrupt", zeroed_middle(encode(rgba, "PNG"))),
        ("body_rgb.jpg", "JPEG corrupt body (RGB)", "corrupt", markers_in_scan(rgb_jpeg)),
        ("body_grey.jpg", "JPEG corrupt body (grey)", "corrupt", markers_in_scan(grey_jpeg)),
        ("body_cmyk.jpg", "JPEG corrupt body (CMYK)", "corrupt", markers_in_scan(cmyk_jpeg)),
        ("small.png", "too small (48x48)", "too_small", encode(b.crop((0, 0, 48, 48)), "PNG")),
        ("bomb.png", "bomb header 10000x10000", "too_large", bomb_png(10_000)),
        ("huge_bomb.png", "bomb header 100000x100000", "too_large", bomb_png(100_000)),
    ]
    for rel, kind, reason, data in bad:
        put(f"bad/{rel}", kind, reason, data)
    put("loop_a.png", "symlink loop (two links)", "symlink_loop", make=lambda p: os.symlink("loop_b.png", p))
    put("loop_b.png", "symlink loop (two links)", "symlink_loop", make=lambda p: os.symlink("loop_a.png", p))
    put("bad/self.png", "symlink loop (self)", "symlink_loop", make=lambda p: os.symlink("self.png", p))
    put("gone.png", "dangling symlink (top)", "dangling_symlink", make=lambda p: os.symlink("missing.png", p))
    put("bad/gone.jpg", "dangling symlink (sub-folder)", "dangling_symlink",
        make=lambda p: os.symlink("../nowhere/nothing.jpg", p))
    put("again", "folder symlink to . (top)", "symlink_loop", make=lambda p: os.symlink(".", p))
    put("bad/up", "folder symlink to ..", "symlink_loop", make=lambda p: os.symlink("..", p))
    put("fifo.png", "FIFO", "not_a_file", make=os.mkfifo)
    put("bad/socket.png", "socket", "not_a_file", make=lambda p: os.mknod(p, stat.S_IFSOCK | 0o644))
    put("bad/zero.png", "symlink to /dev/zero", "not_a_file", make=lambda p: os.symlink("/dev/zero", p))
    put("bad/null.jpg", "symlink to /dev/null", "not_a_file", make=lambda p: os.symlink("/dev/null", p))
    put(os.fsdecode(b"bad/latin1_\xe9t\xe9.png"), "name not UTF-8", "bad_name", rgb_png)
    put("bad/tab\there.txt", "text, tab in its name", "not_image", b"not an image\n")
    put("dup/same.jpg", "duplicate id (kept: first by path)", KEPT, rgb_jpeg)
    put("dup/same.png", "duplicate id", "duplicate_id", rgb_png)

    # chmod 000: unreadable for a normal user; root reads it anyway (the expectation says which).
    locked_file, locked_dir = os.path.join(out, "locked.png"), os.path.join(out, "locked_dir")
    with open(locked_file, "wb") as f:
        f.write(rgb_png)
    os.makedirs(locked_dir)
    with open(os.path.join(locked_dir, "inside.png"), "wb") as f:
        f.write(rgb_png)
    os.chmod(locked_file, 0)
    os.chmod(locked_dir, 0)
    entries.append(Entry("locked.png", "unreadable file (chmod 000)", KEPT if _can_read(locked_file) else "unreadable"))
    entries.append(Entry("locked_dir/inside.png", "file in an unreadable folder (chmod 000)", KEPT)
                   if _can_list(locked_dir) else Entry("locked_dir", "unreadable folder (chmod 000)", "unreadable"))

    hidden = [".DS_Store", ".git/HEAD", "photos/.thumb.png"]
    for rel in hidden:
        os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
        with open(os.path.join(out, rel), "wb") as f:
            f.write(b"not data")
    return Corpus(out, entries, hidden)


def _interlaced(im: Image.Image) -> bytes:
    """An Adam7-interlaced PNG (PIL writes none): the rows of each pass, filter type 0."""
    a = np.asarray(im)
    channels = 1 if a.ndim == 2 else a.shape[2]
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = b"".join(b"\x00" + row.tobytes() for x0, y0, dx, dy in passes for row in a[y0::dy, x0::dx] if row.size)
    return png_from_rows(im.width, im.height, 8, {1: 0, 3: 2}[channels], raw, interlace=1)


def _can_read(path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def _can_list(path: str) -> bool:
    try:
        os.listdir(path)
        return True
    except OSError:
        return False


def table(corpus: Corpus) -> str:
    rows = Counter((e.kind, e.expect) for e in corpus.entries)
    lines = [f"{'kind':48s} {'files':>5s}  yields"]
    lines += [f"{kind:48s} {n:5d}  {expect}" for (kind, expect), n in sorted(rows.items(), key=lambda r: r[0][1])]
    kept = sum(e.expect in (KEPT, CONVERTED) for e in corpus.entries)
    lines.append(f"{len(corpus.entries)} entries: {kept} kept, {len(corpus.entries) - kept} rejected; "
                 f"{len(corpus.hidden)} hidden files ignored")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to create (must not exist)")
    args = parser.parse_args(argv)
    if os.path.lexists(args.out):
        print(f"{args.out} exists: give a new folder", file=sys.stderr)
        return 2
    print(table(build(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
