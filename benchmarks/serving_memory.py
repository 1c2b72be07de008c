"""Peak memory of a process restoring one image through the exported SavedModel, by input size: what a
server needs per request (docs/serving.md, "Bounded memory").

    python -m benchmarks.serving_memory                       # 256,512,1000,2000 px, tiled export
    python -m benchmarks.serving_memory --sizes 256,512 --tile_size 0   # whole images, for comparison
    python -m benchmarks.serving_memory --model DIR           # a pushed model instead

The model is the paper's SRResNet (16 blocks x 64 channels, x4; srgan-celeba preset, seeded weights:
memory does not depend on the values) exported by models/export.py with export.tile_size/tile_overlap.
Each size runs in a fresh process (peak RSS only grows): load the SavedModel, send one PNG of real
photographs (the committed samples as a mosaic) through `serving_default`, as the server does, and read
the kernel's high-water mark (VmHWM) after loading and after the request. Target: flat within 1.5x from
512 px up, and a 2000x2000 SR input in <= 3 GB.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from benchmarks import common

TARGET_FLAT = 1.5
TARGET_2000_GB = 3.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="256,512,1000,2000", help="input edge lengths (pixels), comma-separated")
    p.add_argument("--model", default="", help="an exported SavedModel (default: export SRResNet 16x64)")
    p.add_argument("--tile_size", type=int, default=None, help="export.tile_size of the export (default: config)")
    p.add_argument("--tile_overlap", type=int, default=None)
    p.add_argument("--signature", default="serving_default", choices=("serving_default", "restore"))
    p.add_argument("--child_size", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def vm_hwm_mb() -> float:
    """The process's peak resident set (kernel high-water mark), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def mosaic(size: int) -> np.ndarray:
    """size x size uint8 RGB of the committed sample photographs, tile after tile."""
    from config import SAMPLE_DATA
    from models import images

    tiles = [images.read_rgb8(os.path.join(SAMPLE_DATA, n)) for n in sorted(os.listdir(SAMPLE_DATA))
             if n.endswith(".png")]
    t = tiles[0].shape[0]
    n = -(-size // t)
    rows = [np.concatenate([tiles[(r * n + c) % len(tiles)] for c in range(n)], axis=1) for r in range(n)]
    return np.ascontiguousarray(np.concatenate(rows)[:size, :size])


def child(args) -> int:
    import tensorflow as tf

    from contracts import signatures
    from models import images

    x = mosaic(args.child_size)
    loaded = tf.saved_model.load(args.model)
    fn = loaded.signatures[args.signature]
    after_load = vm_hwm_mb()
    start = time.perf_counter()
    if args.signature == signatures.SERVING:  # the PNG stays encoded, as a server sends it
        out = fn(**{signatures.BYTES: tf.constant([images.encode_png(x)])})
        shape = (int(out[signatures.HEIGHT][0]), int(out[signatures.WIDTH][0]), len(out[signatures.BYTES].numpy()[0]))
    else:
        shape = fn(**{signatures.IMAGES: tf.constant(images.uint8_to_float(x)[None])})[signatures.IMAGES].shape[1:]
    seconds = time.perf_counter() - start
    common.emit({"bench": "serving_memory", "size": args.child_size, "signature": args.signature,
                 "peak_mb": vm_hwm_mb(), "after_load_mb": after_load, "seconds": seconds,
                 "output": list(shape), "load": common.load_average()})
    return 0


def export_bench_model(path: str, tile_size, tile_overlap) -> dict:
    import tf_keras as keras

    from benchmarks import srresnet_arch
    from models.export import export_generator
    from models.networks import build_generator

    overrides = {k: v for k, v in (("export.tile_size", tile_size), ("export.tile_overlap", tile_overlap))
                 if v is not None}
    cfg = srresnet_arch.bench_config(**overrides)
    keras.utils.set_random_seed(0)
    export_generator(build_generator(cfg), path, cfg)
    return {"tile_size": cfg.export.tile_size, "tile_overlap": cfg.export.tile_overlap}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child_size:
        return child(args)
    tiles = {}
    if not args.model:
        args.model = os.path.join(tempfile.mkdtemp(prefix="bench_mem_"), "1")
        print(f"exporting SRResNet 16x64 to {args.model}", flush=True)
        tiles = export_bench_model(args.model, args.tile_size, args.tile_overlap)
    recs = []
    for size in [int(s) for s in args.sizes.split(",") if s]:
        argv = [sys.executable, "-m", "benchmarks.serving_memory", "--model", args.model, "--signature",
                args.signature, "--child_size", str(size)]
        (rec,) = common.run_child(argv)
        recs.append(rec)
        print(f"{size}x{size} -> {rec['output'][0]}x{rec['output'][1]}: peak {rec['peak_mb']:.0f} MB "
              f"(after loading {rec['after_load_mb']:.0f} MB), {rec['seconds']:.1f} s; load {rec['load']}",
              flush=True)
    print(f"\n{args.signature}, model {args.model} {tiles or ''}; {common.load_note()}")
    print("| input | output | peak RSS | after load | request | vs 512 px |\n|---|---|---|---|---|---|")
    ref = next((r["peak_mb"] for r in recs if r["size"] == 512), None)
    for r in recs:
        ratio = f"{r['peak_mb'] / ref:.2f}x" if ref else "-"
        print(f"| {r['size']}x{r['size']} | {r['output'][0]}x{r['output'][1]} | {r['peak_mb']:.0f} MB | "
              f"{r['after_load_mb']:.0f} MB | {r['seconds']:.1f} s | {ratio} |")
    big = [r["peak_mb"] for r in recs if r["size"] >= 512]
    if ref and len(big) > 1:
        print(f"flat from 512 px up: max/min {max(big) / min(big):.2f}x (target <= {TARGET_FLAT}x)")
    at2000 = next((r["peak_mb"] for r in recs if r["size"] == 2000), None)
    if at2000:
        print(f"2000x2000: {at2000 / 1024:.2f} GB (target <= {TARGET_2000_GB} GB)")
    common.write_json(os.path.join(common.results_dir(), "serving_memory.json"), {"records": recs, **tiles})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
