"""Training runs told apart (models/trainer.py): a run is its settings and its input data; a new run can
warm-start its generator from a pushed model, whose validation PSNR it then starts at."""
import logging
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from fixtures_data import fixture_config

from models.trainer import train_and_export, training_run
from models.warm_start import WarmStartError, load_generator

STEPS = 30


def _cfg(tmp_path, **extra):
    # No bicubic skip: an untrained generator is far from a trained one, so a warm start shows.
    return fixture_config("sr", **{"model.residual_bicubic": False, "train.warmup_steps": STEPS,
                                   "train.gan_steps": 0, "train.log_every": 10, "train.image_every": STEPS,
                                   "train.checkpoint_every": STEPS, "train.checkpoint_root": str(tmp_path / "ckpt"),
                                   **extra})


def _validation_psnr(model_fn, data):
    """Mean PSNR-Y of `model_fn` on the Trainer's fixed validation batch (the first eval examples)."""
    from models import metrics, train_data
    from models.train_summaries import GRID_IMAGES

    degraded, target = train_data.fixed_batch(train_data.expand_files(data.eval_files),
                                              train_data.feature_spec(data.transform_graph), GRID_IMAGES)
    return float(tf.reduce_mean(metrics.tf_psnr(tf.clip_by_value(model_fn(degraded), 0.0, 1.0), target, 4)))


def test_a_run_is_its_settings_and_its_data(transformed_sr, tmp_path):
    cfg, data = _cfg(tmp_path), transformed_sr
    run = training_run(cfg, data.train_files, data.eval_files)
    assert run == training_run(cfg.override({"train.log_every": 5, "train.warm_start": True}), data.train_files,
                               data.eval_files)  # how it is watched or started: the same run
    assert run != training_run(cfg.override({"train.lr_gen": 5e-4}), data.train_files, data.eval_files)
    moved = [f.replace("transformed_examples", "transformed_examples_2") for f in data.train_files]
    assert run != training_run(cfg, moved, data.eval_files)  # another Transform output: new data


def test_warm_start_begins_at_the_blessed_models_psnr(transformed_sr, tmp_path, caplog):
    from models.networks import build_generator

    cfg = _cfg(tmp_path)
    base = train_and_export(cfg, transformed_sr.train_files, transformed_sr.eval_files, transformed_sr.transform_graph,
                            str(tmp_path / "logs1"), str(tmp_path / "base_model"))
    restore = tf.saved_model.load(base).signatures["restore"]
    blessed_psnr = _validation_psnr(lambda x: restore(images=x)["images"], transformed_sr)
    tf.keras.utils.set_random_seed(cfg.train.seed)
    untrained_psnr = _validation_psnr(build_generator(cfg), transformed_sr)
    assert abs(blessed_psnr - untrained_psnr) > 0.3  # 0.68 dB measured: the two are told apart

    # A new run (another checkpoint root: nothing to resume) warm-started from the exported model.
    warm = cfg.override({"train.warm_start": True, "train.warmup_steps": 1,
                         "train.checkpoint_root": str(tmp_path / "ckpt2")})
    with caplog.at_level(logging.INFO, logger="models"):
        train_and_export(warm, transformed_sr.train_files, transformed_sr.eval_files, transformed_sr.transform_graph,
                         str(tmp_path / "logs2"), str(tmp_path / "model2"), base_model=base)
    line = next(r.getMessage() for r in caplog.records if "warm start from" in r.getMessage())
    first_psnr = float(re.search(r"eval PSNR-Y ([\d.]+) dB at step 0", line).group(1))
    assert abs(first_psnr - blessed_psnr) <= 0.05, (first_psnr, blessed_psnr, untrained_psnr)

    # The same warm run started again resumes its own checkpoint instead.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="models"):
        train_and_export(warm, transformed_sr.train_files, transformed_sr.eval_files, transformed_sr.transform_graph,
                         str(tmp_path / "logs3"), str(tmp_path / "model3"), base_model=base)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("resumed from") for m in messages) and not any("warm start from" in m for m in messages)


def test_a_model_of_another_architecture_is_refused(transformed_sr, tmp_path):
    from models.export import export_generator
    from models.networks import build_generator

    cfg = _cfg(tmp_path)
    other = cfg.override({"model.num_blocks": 2})
    path = export_generator(build_generator(other), str(tmp_path / "other"), other)
    with pytest.raises(WarmStartError, match="set train.warm_start=false"):
        load_generator(build_generator(cfg), cfg, path)
    with pytest.raises(WarmStartError, match="not a model of this product"):
        load_generator(build_generator(cfg), cfg, str(tmp_path))
    # Same architecture: every generator variable is taken from the model.
    same = build_generator(cfg)
    load_generator(same, cfg, export_generator(build_generator(cfg), str(tmp_path / "same"), cfg))
    assert all(np.isfinite(v.numpy()).all() for v in same.variables)
    assert os.path.isdir(tmp_path / "same")


def test_without_a_blessed_model_a_run_starts_from_train_warm_start_from(transformed_sr, tmp_path, caplog):
    """A pipeline's first warm start has no blessed model yet: it takes `train.warm_start_from` (a shipped
    model, a SavedModel or a serving base); the Trainer's base_model input wins when there is one."""
    from tfx.components.trainer.fn_args_utils import FnArgs

    from models.export import export_generator
    from models.networks import build_generator
    from models.trainer import run_fn

    cfg = _cfg(tmp_path, **{"train.warmup_steps": 1})
    base = tmp_path / "pretrained" / "srgan"
    export_generator(build_generator(cfg), str(base / "3"), cfg)  # a serving base: its newest version is used
    warm = cfg.override({"train.warm_start": True, "train.warm_start_from": str(base)})
    args = dict(train_files=transformed_sr.train_files, eval_files=transformed_sr.eval_files,
                transform_output=transformed_sr.transform_graph, model_run_dir=str(tmp_path / "logs"),
                custom_config={"config": warm.to_json()})
    with caplog.at_level(logging.INFO, logger="models"):
        run_fn(FnArgs(serving_model_dir=str(tmp_path / "m1"), **args))
    assert any(f"warm start from {base / '3'}:" in r.getMessage() for r in caplog.records)
