"""The whole pipeline with BeamDagRunner, for both tasks: the gate pushes a good model, refuses one below
an absolute bound, and refuses a candidate clearly worse than the blessed model.

Three runs share one pipeline root, as a user's successive runs would: TFX's cache reuses ingestion,
Transform and (for the threshold run) training, so only what the change touches re-runs. Beam runs in
this process (no beam args): multi-processing workers would cost more to start than these few images.
"""
import os
import shutil

import numpy as np
import pytest
from fixtures_data import fixture_config

from config import SAMPLE_DATA
from models import images
from pipeline import run_summary as demo

pytestmark = pytest.mark.slow
SAMPLES_USED = 20


def _states(summary):
    return {name: state for name, state, _ in summary["components"]}


def _versions(cfg):
    return sorted(d for d in os.listdir(cfg.serving_dir) if d.isdigit()) if os.path.isdir(cfg.serving_dir) else []


def _blessing(summary):
    b = summary["outputs"]["ModelBlessing"]
    blessed = b.custom_properties["blessed"].int_value
    message = b.custom_properties["blessing_message"].string_value
    assert os.path.exists(os.path.join(b.uri, "BLESSED" if blessed else "NOT_BLESSED"))
    return blessed, message


def _pushed(summary):
    return summary["outputs"]["PushedModel"].custom_properties["pushed"].int_value


@pytest.fixture(scope="module", params=["sr", "deblur"])
def first_run(request, tmp_path_factory):
    """Run 1: a fresh pipeline root; the model is pushed (nothing blessed before: bounds only)."""
    from pipeline.local_runner import run_pipeline

    root = tmp_path_factory.mktemp(f"e2e_{request.param}")
    data = root / "images"
    data.mkdir()
    for name in sorted(os.listdir(SAMPLE_DATA))[:SAMPLES_USED]:
        if name.endswith(".png"):
            shutil.copy(os.path.join(SAMPLE_DATA, name), data / name)
    cfg = fixture_config(request.param, **{
        "data.root": str(data), "run_root": str(root / "runs"), "train.warmup_steps": 30, "train.gan_steps": 4,
        "eval.max_images": 8})
    cfg = cfg.override({"beam_args": ()})
    run_pipeline(cfg)
    return cfg, demo.run_summary(cfg)


def test_a_run_pushes_a_blessed_model_that_serves(first_run):
    import tensorflow as tf

    cfg, summary = first_run
    assert set(_states(summary).values()) == {"ran"}
    blessed, message = _blessing(summary)
    assert blessed == 1 and message.startswith("BLESSED"), message
    assert _pushed(summary) == 1
    versions = _versions(cfg)
    assert len(versions) == 1
    version_dir = os.path.join(cfg.serving_dir, versions[0])
    assert summary["outputs"]["PushedModel"].custom_properties["pushed_destination"].string_value == version_dir
    # What landed is a TF Serving model: serving_default restores a PNG of any size.
    model = tf.saved_model.load(version_dir)
    lr = images.read_rgb8(os.path.join(cfg.data.root, sorted(os.listdir(cfg.data.root))[0]))[:21, :30]
    out = model.signatures["serving_default"](image_bytes=tf.constant([images.encode_png(lr)]))
    restored = images.read_rgb8(out["image_bytes"].numpy()[0])
    assert restored.shape == (21 * cfg.scale, 30 * cfg.scale, 3)
    # The human report sits in the evaluation artifact.
    report = summary["outputs"]["ModelEvaluation"].uri
    for name in ("report.html", "report.md", "grid.png", "metrics.json"):
        assert os.path.getsize(os.path.join(report, name)) > 0


def test_a_rerun_reuses_the_cache_and_pushes_no_duplicate(first_run):
    from contracts.serving_layout import SOURCE_FILE
    from pipeline.local_runner import run_pipeline

    cfg, first = first_run
    run_pipeline(cfg)
    summary = demo.run_summary(cfg)
    states = _states(summary)
    for name in ("ImageExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer"):
        assert states[name] == "cached", states
    # The gate re-ran (its baseline is now the blessed model: the same one) and blessed it again,
    # but the Pusher did not publish the same model under a second version.
    blessed, message = _blessing(summary)
    assert blessed == 1 and "vs blessed model" in message, message
    versions = _versions(cfg)
    assert len(versions) == 1
    pushed = summary["outputs"]["PushedModel"].custom_properties
    assert pushed["pushed_destination"].string_value == os.path.join(cfg.serving_dir, versions[0])
    with open(os.path.join(cfg.serving_dir, versions[0], SOURCE_FILE)) as f:
        assert f.read().strip() == first["outputs"]["Model"].uri + "/Format-Serving"


def test_an_unreachable_threshold_pushes_nothing_and_says_why(first_run):
    from pipeline.local_runner import run_pipeline

    cfg, _ = first_run
    strict = cfg.override({"eval.min_psnr": 99.0})
    run_pipeline(strict)
    summary = demo.run_summary(strict)
    states = _states(summary)
    # Only the gate and the push re-ran: the threshold is no input of ingestion, Transform or training.
    for name in ("ImageExampleGen", "StatisticsGen", "Transform", "Trainer"):
        assert states[name] == "cached", states
    assert states["ImageEvaluator"] == "ran"
    blessed, message = _blessing(summary)
    assert blessed == 0 and "min_psnr 99.00 dB" in message, message
    assert _pushed(summary) == 0
    assert len(_versions(cfg)) == 1


def test_a_clearly_worse_candidate_is_not_blessed(first_run):
    from pipeline.local_runner import run_pipeline

    cfg, first = first_run
    # One training step of a network without the bicubic / input skip: far from the blessed model.
    worse = cfg.override({"model.residual_bicubic": False, "train.warmup_steps": 1, "train.gan_steps": 0,
                          "train.lr_gen": 1e-6})
    if cfg.task == "deblur":
        worse = cfg.override({"train.warmup_steps": 1, "train.gan_steps": 0, "train.lr_gen": 0.05})
    run_pipeline(worse)
    summary = demo.run_summary(worse)
    assert _states(summary)["Trainer"] == "ran"
    blessed, message = _blessing(summary)
    assert blessed == 0 and "vs blessed model" in message and "max_psnr_drop" in message, message
    assert _pushed(summary) == 0
    assert len(_versions(cfg)) == 1
    # The regression is real: the report has the blessed model's figures beside the candidate's.
    import json

    with open(os.path.join(summary["outputs"]["ModelEvaluation"].uri, "metrics.json")) as f:
        means = json.load(f)["means"]
    assert means["model"]["psnr_y"] < means["blessed"]["psnr_y"] - 1.0
    assert np.isfinite(means["blessed"]["psnr_y"])
