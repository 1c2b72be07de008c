"""`gan-restore predict`: restore one image or a folder of images with a served (or local) model.

Outputs are PNG files under --output, mirroring the input folder. Inputs that cannot be read or are
refused by the server are skipped, counted and listed with their reason; the exit status is 1 when
any input failed.
"""
from __future__ import annotations

import argparse
import logging
import os
import time

from cli.config_args import add_config_arguments, config_from_args
from contracts.datasets import is_image_name

HELP = "restore images with a served model (gRPC or REST) or a local SavedModel, tiled for large inputs"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="an image file or a folder of images (searched recursively)")
    parser.add_argument("-o", "--output", default="restored", help="output folder")
    add_config_arguments(parser)
    g = parser.add_argument_group("where the model runs")
    g.add_argument("--server", default="", help="host:port of the gRPC server (default: localhost:serving.grpc_port)"
                                                "; with --rest, host:port or URL of the REST API")
    g.add_argument("--rest", action="store_true", help="use TF Serving's REST API instead of gRPC")
    g.add_argument("--local", metavar="MODEL_DIR", default="",
                   help="run this SavedModel (or the latest version under it) in-process, no server")
    g.add_argument("--model_name", default="", help="served model name (default: the configuration's)")
    g.add_argument("--version", type=int, default=None, help="model version (default: the latest served)")
    g.add_argument("--timeout", type=float, default=None, help="seconds per request (default: serving.timeout_s)")
    g.add_argument("--retries", type=int, default=None, help="retries on UNAVAILABLE/DEADLINE_EXCEEDED "
                                                             "(default: serving.retries)")
    g = parser.add_argument_group("tiling")
    g.add_argument("--tile_size", type=int, default=None,
                   help="tile edge in input pixels, 0 = whole image (default: serving.tile_size)")
    g.add_argument("--tile_overlap", type=int, default=None, help="overlap in input pixels (default: "
                                                                  "serving.tile_overlap)")
    g.add_argument("--tile_batch", type=int, default=4, help="tiles per request")


def find_images(path: str):
    """(source path, path relative to the input) for a file or every image under a folder."""
    if os.path.isfile(path):
        return [(path, os.path.basename(path))]
    if not os.path.isdir(path):
        raise SystemExit(f"input not found: {path}")
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
            if is_image_name(f):
                p = os.path.join(root, f)
                found.append((p, os.path.relpath(p, path)))
    return found


def read_checked(path: str, max_pixels: int):
    """uint8 RGB, refusing images whose header announces more than max_pixels (before decoding)."""
    from PIL import Image

    from models import images

    with Image.open(path) as im:
        w, h = im.size
    if w * h > max_pixels:
        raise ValueError(f"{w}x{h} is over data.max_pixels={max_pixels}")
    return images.read_rgb8(path)


def run(args: argparse.Namespace) -> int:
    from models import images
    from serving.client import make_backend, restore_image
    from serving.errors import ServingError

    cfg = config_from_args(args)
    tile = cfg.serving.tile_size if args.tile_size is None else args.tile_size
    overlap = cfg.serving.tile_overlap if args.tile_overlap is None else args.tile_overlap
    inputs = find_images(args.input)
    if not inputs:
        raise SystemExit(f"no images found under {args.input}")
    backend = make_backend(cfg, local=args.local, server=args.server, rest=args.rest, model_name=args.model_name,
                           version=args.version, timeout_s=args.timeout, retries=args.retries)
    failed = []
    t0 = time.perf_counter()
    for src, rel in inputs:
        dst = os.path.join(args.output, os.path.splitext(rel)[0] + ".png")
        try:
            rgb = read_checked(src, cfg.data.max_pixels)
            out = restore_image(rgb, backend, tile, overlap, args.tile_batch)
        except ServingError as e:
            if e.code.name == "UNAVAILABLE":
                raise SystemExit(f"model server unavailable: {e.message}") from None
            failed.append((src, e.code.name, e.message))
            continue
        except Exception as e:  # unreadable input: skip, count, report
            failed.append((src, type(e).__name__, str(e)))
            continue
        os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
        with open(dst, "wb") as f:
            f.write(images.encode_png(out))
        log.info("%s (%dx%d) -> %s (%dx%d)", src, rgb.shape[1], rgb.shape[0], dst, out.shape[1], out.shape[0])
    done = len(inputs) - len(failed)
    print(f"restored {done}/{len(inputs)} images into {args.output} in {time.perf_counter() - t0:.1f} s"
          + (f"; {len(failed)} skipped:" if failed else ""))
    for src, reason, detail in failed:
        print(f"  {src}\t{reason}\t{detail}")
    return 1 if failed else 0
