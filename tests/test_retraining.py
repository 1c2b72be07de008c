"""Scheduled retraining, three runs, twice: through the compiled Kubeflow package (run task by task as
open-source KFP runs it, tests/kfp_launcher.py) and through BeamDagRunner. Run 1 trains on the samples and
pushes; run 2, after images were added, trains a new run (warm-started from the pushed model) and pushes
different weights; run 3, with nothing changed, pushes nothing (on Kubeflow: trains nothing either).

The gate's regression tolerance is opened wide here: these runs check the retraining mechanics, not
whether 20 more steps on a grown data set beat the blessed model (tests/test_pipeline_e2e.py checks the gate).
"""
import json
import os
import shutil

import numpy as np
import pytest

from config import SAMPLE_DATA, preset
from contracts import serving_layout

pytestmark = pytest.mark.slow
FIRST, ADDED = 16, 8  # sample images in run 1, images added before run 2


def _config(tmp_path, data):
    return preset("tiny", task="sr", overrides={
        "data.root": str(data), "data.crop_size": 64, "run_root": str(tmp_path / "runs"),
        "train.warmup_steps": 20, "train.gan_steps": 0, "train.batch_size": 4, "train.log_every": 10,
        "train.image_every": 20, "train.checkpoint_every": 10, "train.warm_start": True,
        "eval.max_images": 8, "eval.max_psnr_drop": 20.0, "eval.max_ssim_drop": 1.0,
        "beam_args": "--direct_running_mode=in_memory,--direct_num_workers=1"})


def _copy_samples(data, names):
    data.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(os.path.join(SAMPLE_DATA, name), data / name)


def _samples():
    return sorted(n for n in os.listdir(SAMPLE_DATA) if n.endswith(".png"))


def _weights(version_dir):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(version_dir, "variables", "variables"))
    return {k: reader.get_tensor(k) for k in sorted(reader.get_variable_to_shape_map()) if "generator" in k}


def _training_run(version_dir):
    with open(os.path.join(version_dir, serving_layout.TRAINING_RUN_FILE)) as f:
        return json.load(f)


def test_kubeflow_package_retrains_on_new_data_and_reuses_the_cache_on_unchanged_data(tmp_path):
    from kfp_launcher import KfpRehearsal

    from pipeline.kubeflow_runner import compile_pipeline

    data = tmp_path / "data"
    _copy_samples(data, _samples()[:FIRST])
    cfg = _config(tmp_path, data).override({
        "kubeflow.pipeline_root": str(tmp_path / "kfp_root"), "kubeflow.data_root": str(data),
        "kubeflow.serving_base": str(tmp_path / "serving"), "kubeflow.trainer_gpus": 0,
        "kubeflow.beam_args": "--direct_running_mode=in_memory,--direct_num_workers=1"})
    package = compile_pipeline(cfg, str(tmp_path / "package.yaml"), local_storage=True)
    serving = os.path.join(str(tmp_path / "serving"), cfg.model_name)
    kfp = KfpRehearsal(package, str(tmp_path / "kfp_root"), str(tmp_path / "kfp_work"))
    env = {"TF_CPP_MIN_LOG_LEVEL": "2"}

    first = kfp.run("run-1", env)
    assert {t.state for t in first.values()} == {"ran"}
    assert "no blessed model yet" in first["Trainer"].log
    [v1] = serving_layout.versions(serving)

    _copy_samples(data, _samples()[FIRST:FIRST + ADDED])
    second = kfp.run("run-2", env)
    assert {t.state for t in second.values()} == {"ran"}  # a new fingerprint: a new ingestion key, all anew
    assert f"warm start from {serving_layout.version_dir(serving, v1)}: eval PSNR-Y" in second["Trainer"].log
    v1_, v2 = serving_layout.versions(serving)
    assert v1_ == v1
    assert _training_run(serving_layout.version_dir(serving, v2))["run"] != \
        _training_run(serving_layout.version_dir(serving, v1))["run"]
    w1, w2 = (_weights(serving_layout.version_dir(serving, v)) for v in (v1, v2))
    assert w1.keys() == w2.keys() and any(not np.array_equal(w1[k], w2[k]) for k in w1)

    third = kfp.run("run-3", env)
    states = {n: t.state for n, t in third.items()}
    assert states.pop("DataFingerprint") == "ran"  # never cached: it is what notices new data
    assert set(states.values()) == {"cached"}, states  # the Trainer above all: no GPU time
    assert third["ImageExampleGen"].artifacts["examples"]["name"] == second["ImageExampleGen"].artifacts[
        "examples"]["name"]
    assert serving_layout.versions(serving) == [v1, v2]  # nothing pushed


def test_local_runs_retrain_on_new_data_and_push_nothing_when_nothing_changed(tmp_path):
    from pipeline.local_runner import run_pipeline
    from pipeline.run_summary import run_summary

    data = tmp_path / "data"
    _copy_samples(data, _samples()[:FIRST])
    cfg = _config(tmp_path, data)

    def run():
        run_pipeline(cfg)
        summary = run_summary(cfg)
        return {name: state for name, state, _ in summary["components"]}, summary

    states, _ = run()
    assert states["Trainer"] == "ran"
    [v1] = serving_layout.versions(cfg.serving_dir)

    _copy_samples(data, _samples()[FIRST:FIRST + ADDED])
    states, summary = run()
    assert states["ImageExampleGen"] == states["Transform"] == states["Trainer"] == "ran"
    v1_, v2 = serving_layout.versions(cfg.serving_dir)
    run2 = _training_run(serving_layout.version_dir(cfg.serving_dir, v2))
    assert run2["warm_start_from"].endswith("Format-Serving") and run2["step"] == 20  # from v1's model, 20 steps
    w1, w2 = (_weights(serving_layout.version_dir(cfg.serving_dir, v)) for v in (v1, v2))
    assert any(not np.array_equal(w1[k], w2[k]) for k in w1)

    states, summary = run()
    assert states["ImageExampleGen"] == states["Transform"] == "cached"
    # The Resolver now hands the Trainer the model of run 2 as its base: TFX runs it again, and the training
    # run (same settings, same data) is the finished run 2: it trains no step and exports the same weights.
    pushed = summary["outputs"]["PushedModel"].custom_properties
    assert serving_layout.versions(cfg.serving_dir) == [v1, v2]
    assert pushed["pushed_destination"].string_value == serving_layout.version_dir(cfg.serving_dir, v2)
