"""The TFX Trainer entry point (`run_fn`); `gan-restore train` (cli/train.py) runs the same code outside TFX.

    Trainer(run_fn="models.trainer.run_fn", custom_config={"config": cfg.to_json()}, ...)

A training run is identified by its settings and its input data (`training_run`), and keeps its
checkpoints in `<cfg.checkpoint_root>/<run>/`, outside the execution directory TFX gives each attempt:
- resume: the same run started again (a retried or killed execution) continues from its latest
  checkpoint; a finished one trains no step and exports the same weights;
- retraining: new data (a new Transform output) is a new run, which starts afresh;
- warm start (`train.warm_start`): a run that starts afresh initialises its generator from the latest
  blessed model (`base_model`: the TFX Trainer's input, or the newest version under `warm_start_from`).
A NaN/Inf loss raises `TrainingDiverged` and nothing is exported.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Sequence

import tensorflow as tf

from config import Config
from contracts import serving_layout
from models import cluster, train_data
from models.gan_loop import GanTrainer, Progress, TrainingDiverged, format_eta
from models.train_summaries import GRID_IMAGES, Summaries

log = logging.getLogger(__name__)
CHECKPOINTS_KEPT = 3
# custom_config key naming a serving base whose newest version is the warm start (Kubeflow: no Resolver).
WARM_START_FROM = "warm_start_from"


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor)."""
    # TFX logs through absl's root handler with the root logger at WARNING: let progress lines through.
    logging.getLogger("models").setLevel(logging.INFO)
    custom = fn_args.custom_config or {}
    if "config" not in custom:
        raise ValueError("the Trainer needs custom_config={'config': cfg.to_json()} (pipeline/pipeline.py)")
    cfg = Config.from_json(custom["config"])
    # The latest blessed model (the Resolver's, or the newest served version), else the configured start.
    base_model = (fn_args.base_model or serving_layout.latest_version_dir(custom.get(WARM_START_FROM, ""))
                  or (cfg.train.warm_start_from and serving_layout.resolve_model_dir(cfg.train.warm_start_from)))
    train_and_export(cfg, train_files=fn_args.train_files,
                     eval_files=fn_args.eval_files, transform_output=fn_args.transform_output,
                     model_run_dir=fn_args.model_run_dir, serving_model_dir=fn_args.serving_model_dir,
                     base_model=base_model or "")


def training_run(cfg: Config, train_files: Sequence[str], eval_files: Sequence[str]) -> str:
    """The identity of a training run: its settings (`Config.fingerprint`) and its input data, the
    transformed examples it reads, by location. TFX writes every new Transform output to a new URI and
    hands a retried or resumed execution the same one, so new data is a new run and a retry is not."""
    where = lambda p: p if "://" in p else os.path.abspath(p)  # noqa: E731
    data = [where(p) for p in sorted(train_files)] + ["--"] + [where(p) for p in sorted(eval_files)]
    return hashlib.sha256("\n".join([cfg.fingerprint(), *data]).encode()).hexdigest()[:16]


def train_and_export(cfg: Config, train_files: Sequence[str], eval_files: Sequence[str], transform_output: str | None,
                     model_run_dir: str, serving_model_dir: str, strategy: tf.distribute.Strategy | None = None,
                     base_model: str = "") -> str:
    """Train (or resume) to `warmup_steps + gan_steps` generator steps, then export the generator."""
    from models.export import export_generator
    from models.inference.precision import check_supported
    from models.networks import generator_size_multiple

    check_supported(cfg.export.precision)  # before the first step, not after the last one
    t = cfg.train
    run = training_run(cfg, train_files, eval_files)
    checkpoint_dir = os.path.join(cfg.checkpoint_root, run)
    trainer = GanTrainer(cfg, strategy)  # fails here, before any step, on a missing VGG weights file
    log.info("training run %s: strategy %s with %d replica(s), precision %s, global batch %d, checkpoints in %s",
             run, type(trainer.strategy).__name__, trainer.strategy.num_replicas_in_sync, trainer.policy,
             t.batch_size, checkpoint_dir)
    # Multi-worker: every worker saves, only the chief's copy stays (models/cluster.py).
    manager = cluster.checkpoint_manager(trainer.checkpoint, checkpoint_dir, trainer.strategy, CHECKPOINTS_KEPT)
    warm_from = ""
    if manager.latest_checkpoint:
        trainer.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log.info("resumed from %s at step %d (%s phase)", manager.latest_checkpoint, int(trainer.step.numpy()),
                 trainer.phase())
    elif t.warm_start and base_model:
        from models.warm_start import load_generator

        load_generator(trainer.generator, cfg, base_model)
        warm_from = base_model
    elif t.warm_start:
        log.info("train.warm_start: no blessed model yet, this run starts from its initial weights")
    start, total = int(trainer.step.numpy()), trainer.total_steps

    spec = train_data.feature_spec(transform_output)
    dataset = train_data.train_dataset(train_data.expand_files(train_files), spec, cfg, stream_offset=start)
    iterator = iter(cluster.distribute(trainer.strategy, dataset))
    summaries = Summaries(model_run_dir if cluster.is_chief(trainer.strategy) else None, cfg, trainer.generator,
                          *train_data.fixed_batch(train_data.expand_files(eval_files), spec, GRID_IMAGES))
    if warm_from:
        log.info("warm start from %s: eval PSNR-Y %.2f dB at step 0", warm_from,
                 summaries.validation(0, with_images=True))
    progress = Progress(start, total)
    step = start
    try:
        while step < total:
            values = trainer.train_one_step(iterator)
            step = int(trainer.step.numpy())
            last = step == total
            if step == t.warmup_steps and t.gan_steps:
                log.info("step %d: pixel-loss warm-up done, adversarial phase starts", step)
            if step % t.log_every == 0 or last:
                rate, eta = progress.update(step)
                psnr = summaries.validation(step, with_images=step % t.image_every == 0 or last)
                summaries.scalars(step, {**values, **trainer.learning_rates(), "perf/steps_per_sec": rate})
                log.info("step %d/%d [%s] %s | eval PSNR-Y %.2f dB | %.2f steps/s, ETA %s", step, total,
                         trainer.phase(step - 1), " ".join(f"{k}={v:.4g}" for k, v in sorted(values.items())),
                         psnr, rate, format_eta(eta))
            elif step % t.image_every == 0:
                summaries.validation(step, with_images=True)
            if step % t.checkpoint_every == 0 or last:
                log.info("checkpoint %s", manager.save(checkpoint_number=step))
    except TrainingDiverged:
        log.error("training diverged at step %d; the last good checkpoint is %s", step + 1, manager.latest_checkpoint)
        raise
    finally:
        summaries.close()

    export_dir = cluster.write_dir(serving_model_dir, trainer.strategy)
    export_generator(trainer.generator, export_dir, cfg, size_multiple=generator_size_multiple(cfg))
    write_training_run(export_dir, run, step, warm_from)
    cluster.remove_worker_copy(serving_model_dir, trainer.strategy)
    cluster.barrier(trainer.strategy)
    log.info("exported the generator of run %s at step %d to %s", run, step, serving_model_dir)
    return serving_model_dir


def write_training_run(model_dir: str, run: str, step: int, warm_from: str) -> None:
    """The exported model says which run (and step) it is the weights of: a Pusher need not publish the
    same weights twice (a rerun that resumed a finished run)."""
    path = os.path.join(model_dir, serving_layout.TRAINING_RUN_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps({"run": run, "step": int(step), "warm_start_from": warm_from}, sort_keys=True))
