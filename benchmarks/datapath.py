"""Data-path benchmark: images/s through ImageExampleGen + Transform (TFX components on Beam's direct
runner, multi-processing, every core) against a plain single-process loop doing the same work
(decode, centre crop, MATLAB-style antialiased bicubic x1/4, PNG-encode target and LR).

    python -m benchmarks.datapath --images 400

Input: real photographs (BSD100 HR, 481x321) replicated under new names into a temporary folder.
The TFX run uses ImportSchemaGen with the ingested features' schema, so only ExampleGen and
Transform do real work; per-stage times come from the executions recorded in ML Metadata. Beam and
TFX start-up costs are fixed, so the end-to-end rate only approaches the steady-state rate with
enough images: the report gives end-to-end and per-stage figures.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from benchmarks import common

CROP = 128  # HR crop (srgan-celeba's); LR is CROP / 4
SCHEMA = """
feature { name: "id" type: BYTES presence { min_fraction: 1 } shape { dim { size: 1 } } }
feature { name: "image" type: BYTES presence { min_fraction: 1 } shape { dim { size: 1 } } }
feature { name: "height" type: INT presence { min_fraction: 1 } shape { dim { size: 1 } } }
feature { name: "width" type: INT presence { min_fraction: 1 } shape { dim { size: 1 } } }
feature { name: "scene" type: BYTES presence { min_fraction: 1 } shape { dim { size: 1 } } }
"""


def make_image_folder(n: int, work: str) -> str:
    src = common.shared_data_dir("B100")
    if not src:
        return ""
    names = sorted(f for f in os.listdir(src) if f.endswith(".png"))
    root = os.path.join(work, "images")
    os.makedirs(root, exist_ok=True)
    for i in range(n):
        shutil.copyfile(os.path.join(src, names[i % len(names)]), os.path.join(root, f"img_{i:05d}.png"))
    return root


def plain_loop(root: str) -> float:
    """Seconds for the single-process loop over every image in `root`."""
    from models import degrade, images

    files = sorted(os.listdir(root))
    t0 = time.perf_counter()
    for name in files:
        with open(os.path.join(root, name), "rb") as f:
            img = images.read_rgb8(f.read())
        y, x = (img.shape[0] - CROP) // 2, (img.shape[1] - CROP) // 2
        target = img[y:y + CROP, x:x + CROP]
        lr = degrade.resize_uint8(target, 0.25)
        images.encode_png(target), images.encode_png(lr)
    return time.perf_counter() - t0


def tfx_run(root: str, work: str) -> dict:
    """End-to-end seconds of ExampleGen -> ImportSchemaGen -> Transform, and per-component seconds."""
    from tfx import v1 as tfx
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    from components.image_example_gen import ImageExampleGen
    from pipeline import pipeline as pl
    from pipeline.config import preset

    cfg = preset("srgan-celeba", overrides={"data.root": root, "data.layout": "folder", "data.crop_size": CROP,
                                            "run_root": os.path.join(work, "runs"), "enable_cache": False})
    schema = os.path.join(work, "schema.pbtxt")
    with open(schema, "w") as f:
        f.write(SCHEMA)
    gen = ImageExampleGen(config=cfg)
    imp = tfx.components.ImportSchemaGen(schema_file=schema)
    transform = tfx.components.Transform(examples=gen.outputs["examples"], schema=imp.outputs["schema"],
                                         preprocessing_fn=pl.PREPROCESSING_FN,
                                         custom_config=pl.custom_config(cfg, "transform"))
    t0 = time.perf_counter()
    BeamDagRunner().run(pl.create_pipeline(cfg, [gen, imp, transform]))
    total = time.perf_counter() - t0
    return {"total_s": total, "stages": stage_seconds(cfg.metadata_path), "beam_args": list(cfg.beam_args)}


def stage_seconds(metadata_path: str) -> dict:
    """Component -> seconds between its execution's creation and last update in ML Metadata."""
    import sqlite3

    con = sqlite3.connect(metadata_path)
    rows = con.execute("SELECT t.name, e.create_time_since_epoch, e.last_update_time_since_epoch FROM Execution e "
                       "JOIN Type t ON e.type_id = t.id").fetchall()
    con.close()
    out = {}
    for name, start, end in rows:
        out[name.rsplit(".", 1)[-1]] = (end - start) / 1000.0
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=400)
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench_datapath_")
    try:
        root = make_image_folder(args.images, work)
        if not root:
            return 0
        plain = plain_loop(root)
        print(f"plain loop (1 process: PIL decode, crop, models.degrade bicubic, 2 PNG encodes): {args.images} images "
              f"in {plain:.1f} s = {args.images / plain:.1f} images/s; load {common.load_average()}", flush=True)
        tfx_res = tfx_run(root, work)
        ex = tfx_res["stages"].get("ImageExampleGen", 0.0)
        tr = tfx_res["stages"].get("Transform", 0.0)
        rate = args.images / tfx_res["total_s"]
        print(f"TFX ExampleGen + Transform (Beam direct runner, {' '.join(tfx_res['beam_args'])}): "
              f"{args.images} images in {tfx_res['total_s']:.1f} s end-to-end = {rate:.1f} images/s (ratio to plain "
              f"{rate / (args.images / plain):.2f}x); ExampleGen {ex:.1f} s, Transform {tr:.1f} s; "
              f"load {common.load_average()}", flush=True)
        common.emit({"bench": "datapath", "images": args.images, "plain_s": plain, "tfx_total_s": tfx_res["total_s"],
                     "stages": tfx_res["stages"], "beam_args": tfx_res["beam_args"], "cpus": os.cpu_count(),
                     "load": common.load_average()})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
