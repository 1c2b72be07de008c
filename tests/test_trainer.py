"""The Trainer: input pipeline, learning-rate schedules, divergence, missing VGG weights, the exported
model (any input size), on real Transform output of CelebA faces (tests/fixtures_data.py)."""
import io
import os

import numpy as np
import pytest
import tensorflow as tf
from fixtures_data import fixture_config
from PIL import Image

from models import train_data
from models.gan_loop import PhaseSchedule, TrainingDiverged
from models.trainer import train_and_export, training_run


def _run(data, tmp_path, task_cfg, name="run"):
    out = tmp_path / name
    path = train_and_export(task_cfg, data.train_files, data.eval_files, data.transform_graph,
                            model_run_dir=str(out / "logs"), serving_model_dir=str(out / "model"))
    return path, str(out / "logs")


def _run_tfx_trainer(data, tmp_path, cfg):
    """The real TFX Trainer executor (GenericExecutor) on the Transform output, as the pipeline runs it."""
    import json

    from tfx.components.trainer.executor import GenericExecutor
    from tfx.proto import trainer_pb2
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import proto_utils

    examples = standard_artifacts.Examples()
    examples.uri = os.path.dirname(data.train_split_dir)
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    graph = standard_artifacts.TransformGraph()
    graph.uri = data.transform_graph
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, model_run.uri = str(tmp_path / "model"), str(tmp_path / "model_run")
    GenericExecutor().Do(
        {"examples": [examples], "transform_graph": [graph]}, {"model": [model], "model_run": [model_run]},
        {"run_fn": "models.trainer.run_fn",
         "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(num_steps=cfg.train.warmup_steps
                                                                           + cfg.train.gan_steps)),
         "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(num_steps=1)),
         "custom_config": json.dumps({"config": cfg.to_json()})})
    return str(tmp_path / "model" / "Format-Serving"), model_run.uri


def _png(h, w, seed=0):
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


# -- input pipeline ----------------------------------------------------------------------------------

def test_augmentation_is_identical_for_input_and_target_and_seeded():
    img = tf.random.stateless_uniform([16, 16, 3], seed=[1, 2])
    a, b = train_data.augment_pair(img, img, tf.constant([7, 3], tf.int64))
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # same flip and jitter on both sides
    again, _ = train_data.augment_pair(img, img, tf.constant([7, 3], tf.int64))
    np.testing.assert_array_equal(a.numpy(), again.numpy())  # deterministic for a seed
    outs = [train_data.augment_pair(img, img, tf.constant([s, 0], tf.int64))[0].numpy() for s in range(8)]
    assert len({o.tobytes() for o in outs}) > 1  # and it does vary
    assert all(0.0 <= o.min() and o.max() <= 1.0 for o in outs)


def test_random_patches_stay_aligned_and_rotation_is_shared():
    from models import degrade

    hr = tf.random.stateless_uniform([32, 32, 3], seed=[4, 5])
    lr = degrade.imresize(hr, 0.25)
    for s in range(6):
        d, t = train_data.random_patch(lr, hr, 16, 4, tf.constant([s, 1], tf.int64))
        assert d.shape == (4, 4, 3) and t.shape == (16, 16, 3)
        # Where the LR patch sits in the LR image, times the scale, is where the HR patch sits.
        oy, ox = [int(v) for v in np.argwhere(np.all(np.isclose(lr.numpy(), d.numpy()[0, 0]), axis=-1))[0]]
        np.testing.assert_array_equal(t.numpy(), hr.numpy()[4 * oy:4 * oy + 16, 4 * ox:4 * ox + 16])
    a, b = train_data.augment_pair(hr, hr, tf.constant([7, 3], tf.int64), rotate=True)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    turned = {train_data.augment_pair(hr, hr, tf.constant([s, 0], tf.int64), rotate=True)[0].numpy().tobytes()
              for s in range(16)}
    assert len(turned) > 2


def test_train_dataset_reads_transform_output(transformed_sr):
    data, cfg = transformed_sr, transformed_sr.cfg
    spec = train_data.feature_spec(data.transform_graph)
    files = train_data.expand_files(data.train_files)
    first = [b for b, _ in zip(train_data.train_dataset(files, spec, cfg), range(3), strict=False)]
    degraded, target = first[0]
    assert degraded.shape == (cfg.train.batch_size, 8, 8, 3) and target.shape == (cfg.train.batch_size, 32, 32, 3)
    assert degraded.dtype == tf.float32 and 0.0 <= float(tf.reduce_min(target)) <= float(tf.reduce_max(target)) <= 1.0
    # Same seed, same stream.
    again = next(iter(train_data.train_dataset(files, spec, cfg)))
    np.testing.assert_array_equal(degraded.numpy(), again[0].numpy())
    with pytest.raises(FileNotFoundError, match="no transformed examples"):
        train_data.expand_files([os.path.join(data.root, "nothing-here", "*")])


def test_learning_rate_schedules():
    step = PhaseSchedule(1e-4, "step", decay_steps=10, total_steps=40)
    assert [float(step(s)) for s in (0, 9, 10, 25)] == pytest.approx([1e-4, 1e-4, 5e-5, 2.5e-5])
    linear = PhaseSchedule(1e-4, "linear", decay_steps=10, total_steps=30, updates_per_step=5)
    # 5 critic updates per generator step: update 100 is generator step 20, halfway through the decay.
    assert [float(linear(u)) for u in (0, 50, 100, 150, 500)] == pytest.approx([1e-4, 1e-4, 5e-5, 0.0, 0.0])


# -- failures surface early and export nothing -------------------------------------------------------

def test_nan_loss_stops_training_and_exports_nothing(transformed_sr, tmp_path):
    cfg = fixture_config("sr", **{"train.lr_gen": 1e30, "train.warmup_steps": 6, "train.gan_steps": 0,
                                  "train.checkpoint_root": str(tmp_path / "ckpt")})
    with pytest.raises(TrainingDiverged, match=r"loss pixel=(nan|inf) at step \d+ \(warmup phase\)"):
        _run(transformed_sr, tmp_path, cfg)
    assert not (tmp_path / "run" / "model").exists()


def test_missing_vgg_weights_fail_before_training(transformed_sr, tmp_path):
    cfg = fixture_config("sr", **{"loss.perceptual_net": "vgg19", "loss.perceptual_weight": 0.006,
                                  "loss.vgg_weights": str(tmp_path / "no-such-vgg19.h5"),
                                  "train.checkpoint_root": str(tmp_path / "ckpt")})
    with pytest.raises(FileNotFoundError, match="no-such-vgg19.h5"):
        _run(transformed_sr, tmp_path, cfg)
    assert not (tmp_path / "ckpt").exists() and not (tmp_path / "run").exists()


def test_an_export_precision_this_machine_cannot_run_fails_before_training(transformed_sr, tmp_path):
    import tensorflow as tf

    from config import ConfigError

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("float16 is the export precision of GPU machines; this one has a GPU")
    cfg = fixture_config("sr", **{"export.precision": "float16", "train.checkpoint_root": str(tmp_path / "ckpt")})
    with pytest.raises(ConfigError, match="export.precision=float16 is for GPUs"):
        _run(transformed_sr, tmp_path, cfg)
    assert not (tmp_path / "ckpt").exists() and not (tmp_path / "run").exists()


# -- a short deblur run in the TFX Trainer executor: phases, TensorBoard, checkpoints, export---------------------------

@pytest.mark.slow
def test_deblur_training_run_exports_a_model_for_any_size(transformed_deblur, tmp_path):
    # Also the options' code paths: bfloat16 mixed precision (on CPU), clipping, a decaying schedule.
    cfg = fixture_config("deblur", **{"train.warmup_steps": 2, "train.gan_steps": 2, "train.log_every": 2,
                                      "train.image_every": 2, "train.checkpoint_every": 2,
                                      "train.lr_schedule": "linear", "train.clip_norm": 1.0,
                                      "train.mixed_precision": True,
                                      "train.checkpoint_root": str(tmp_path / "ckpt")})
    model_dir, logs = _run_tfx_trainer(transformed_deblur, tmp_path, cfg)
    run_dir = os.path.join(cfg.checkpoint_root, training_run(cfg, transformed_deblur.train_files,
                                                             transformed_deblur.eval_files))
    assert tf.train.latest_checkpoint(run_dir).endswith("ckpt-4")
    tags = set()
    for f in tf.io.gfile.glob(os.path.join(logs, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(f):
            tags.update(v.tag for v in event.summary.value)
    assert {"loss/pixel", "loss/gen_total", "loss/disc_total", "loss/disc_gradient_penalty", "eval/psnr_y",
            "lr/generator", "lr/discriminator", "perf/steps_per_sec", "eval/blur|output|sharp"} <= tags

    served = tf.saved_model.load(model_dir)
    for h, w in ((37, 53), (32, 32), (17, 90)):  # sizes that are not multiples of the generator's 4
        out = served.signatures["serving_default"](image_bytes=tf.constant([_png(h, w)]))
        assert (int(out["height"][0]), int(out["width"][0])) == (h, w)
        assert np.asarray(Image.open(io.BytesIO(out["image_bytes"][0].numpy()))).shape == (h, w, 3)
    floats = served.signatures["restore"](images=tf.random.uniform([2, 37, 53, 3]))["images"]
    assert floats.shape == (2, 37, 53, 3)
