"""`gan-restore demo` (what `make demo` runs): the whole pipeline on the embedded samples, then its result.

Runs the `tiny` preset (SR by default, `--task deblur` for deblurring) with BeamDagRunner, then reads
ML Metadata (pipeline/run_summary.py) to say which components ran or came from the cache, where the
pushed model, the TensorBoard logs and the evaluation report are, and how the model compares with its
baseline (bicubic for SR, the blurred input for deblurring) on the eval images.
"""
from __future__ import annotations

import time

from cli.run import add_run_arguments, run_config

HELP = "run the whole pipeline on the embedded sample images and show the result"


def add_arguments(parser) -> None:
    add_run_arguments(parser)


def run(args) -> int:
    from pipeline.local_runner import run_pipeline
    from pipeline.run_summary import run_summary, summary_text

    cfg = run_config(args)
    start = time.time()
    print(f"demo: {cfg.task} pipeline, preset {cfg.name}, data {cfg.data.root}; writing to {cfg.pipeline_root}",
          flush=True)
    run_pipeline(cfg)
    print(summary_text(cfg, run_summary(cfg), time.time() - start), flush=True)
    return 0
