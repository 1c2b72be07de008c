"""Per-image cost of ImageExampleGen's check on the committed samples (data/samples, 128x128), and of
each step the hardening added (issue 18): the safe read, the PNG check of converted (non-RGB) PNGs,
the strict libjpeg-turbo decode of every JPEG, and the listing's stat-based walk per file.

    python -m benchmarks.ingest_check [--repeat 5]

Each figure is the fastest of `--repeat` passes over the 65 samples (min, not mean: a shared host
only ever adds time), in milliseconds per image.
"""
from __future__ import annotations

import argparse
import io
import os
import tempfile
import time

from PIL import Image


def per_image_ms(fn, items, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best / len(items)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def main(argv=None) -> int:
    import simplejpeg
    import tensorflow as tf

    from components import image_check, png_check, tree_walk
    from config import SAMPLE_DATA

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    paths = sorted(os.path.join(SAMPLE_DATA, n) for n in os.listdir(SAMPLE_DATA) if n.endswith(".png"))
    photos = [Image.open(path).convert("RGB") for path in paths]
    pngs = [open(path, "rb").read() for path in paths]
    jpegs = [encode(im, "JPEG", quality=95) for im in photos]
    grey_pngs = [encode(im.convert("L"), "PNG") for im in photos]
    check = lambda data: image_check.check_image(data, 64, 40_000_000)

    def gfile_read(path):
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()

    for data in pngs[:2] + jpegs[:2] + grey_pngs[:2]:  # warm-up: TF traces its decode function once
        check(data)
    rows = [
        ("read: image_check.read_file (stat, O_NONBLOCK, fstat)",
         per_image_ms(image_check.read_file, paths, args.repeat)),
        ("read: tf.io.gfile.GFile (before)", per_image_ms(gfile_read, paths, args.repeat)),
        ("check, 8-bit RGB PNG (kept; unchanged path)", per_image_ms(check, pngs, args.repeat)),
        ("check, 8-bit RGB JPEG (kept)", per_image_ms(check, jpegs, args.repeat)),
        ("  of which the strict JPEG decode (added)", per_image_ms(simplejpeg.decode_jpeg, jpegs, args.repeat)),
        ("check, grey PNG (converted)", per_image_ms(check, grey_pngs, args.repeat)),
        ("  of which png_check of a converted PNG (added)", per_image_ms(png_check.check, grey_pngs, args.repeat)),
    ]
    with tempfile.TemporaryDirectory() as work:
        for i, data in enumerate(pngs * 16):
            with open(os.path.join(work, f"{i:05d}.png"), "wb") as f:
                f.write(data)
        n = len(pngs) * 16
        rows.append(("listing: tree_walk.walk, per file", per_image_ms(lambda _: tree_walk.walk(work), [0], args.repeat)
                     / n))
        rows.append(("listing: tf.io.gfile.walk, per file (before)",
                     per_image_ms(lambda _: list(tf.io.gfile.walk(work)), [0], args.repeat) / n))
    print(f"{len(paths)} committed samples (128x128), fastest of {args.repeat}, ms per image")
    for name, ms in rows:
        print(f"  {name:58s} {ms:7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
