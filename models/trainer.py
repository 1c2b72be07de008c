"""The TFX Trainer entry point (`run_fn`); `gan-restore train` (cli/train.py) runs the same code outside TFX.

    Trainer(run_fn="models.trainer.run_fn", custom_config={"config": cfg.to_json()}, ...)

Training resumes from the latest checkpoint in `cfg.checkpoint_dir` (keyed by pipeline and config
fingerprint, so it outlives the execution directory TFX gives each attempt). A NaN/Inf loss raises
`TrainingDiverged` and nothing is exported.
"""
from __future__ import annotations

import logging
from typing import Sequence

import tensorflow as tf

from config import Config
from models import train_data
from models.gan_loop import GanTrainer, Progress, TrainingDiverged, format_eta
from models.train_summaries import GRID_IMAGES, Summaries

log = logging.getLogger(__name__)
CHECKPOINTS_KEPT = 3


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor)."""
    # TFX logs through absl's root handler with the root logger at WARNING: let progress lines through.
    logging.getLogger("models").setLevel(logging.INFO)
    custom = fn_args.custom_config or {}
    if "config" not in custom:
        raise ValueError("the Trainer needs custom_config={'config': cfg.to_json()} (pipeline/pipeline.py)")
    train_and_export(Config.from_json(custom["config"]), train_files=fn_args.train_files,
                     eval_files=fn_args.eval_files, transform_output=fn_args.transform_output,
                     model_run_dir=fn_args.model_run_dir, serving_model_dir=fn_args.serving_model_dir)


def train_and_export(cfg: Config, train_files: Sequence[str], eval_files: Sequence[str], transform_output: str | None,
                     model_run_dir: str, serving_model_dir: str, strategy: tf.distribute.Strategy | None = None) -> str:
    """Train (or resume) to `warmup_steps + gan_steps` generator steps, then export the generator."""
    from models.export import export_generator
    from models.inference.precision import check_supported
    from models.networks import generator_size_multiple

    check_supported(cfg.export.precision)  # before the first step, not after the last one
    t = cfg.train
    trainer = GanTrainer(cfg, strategy)  # fails here, before any step, on a missing VGG weights file
    log.info("strategy %s with %d replica(s), precision %s, global batch %d, checkpoints in %s",
             type(trainer.strategy).__name__, trainer.strategy.num_replicas_in_sync, trainer.policy,
             t.batch_size, cfg.checkpoint_dir)
    manager = tf.train.CheckpointManager(trainer.checkpoint, cfg.checkpoint_dir, max_to_keep=CHECKPOINTS_KEPT)
    if manager.latest_checkpoint:
        trainer.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log.info("resumed from %s at step %d (%s phase)", manager.latest_checkpoint, int(trainer.step.numpy()),
                 trainer.phase())
    start, total = int(trainer.step.numpy()), trainer.total_steps

    spec = train_data.feature_spec(transform_output)
    dataset = train_data.train_dataset(train_data.expand_files(train_files), spec, cfg, stream_offset=start)
    iterator = iter(trainer.strategy.experimental_distribute_dataset(dataset))
    summaries = Summaries(model_run_dir, cfg, trainer.generator,
                          *train_data.fixed_batch(train_data.expand_files(eval_files), spec, GRID_IMAGES))
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

    export_generator(trainer.generator, serving_model_dir, cfg, size_multiple=generator_size_multiple(cfg))
    log.info("exported the generator to %s", serving_model_dir)
    return serving_model_dir
