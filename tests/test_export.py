"""The SavedModel contract of models/export.py on real (tiny) SRResNet and DeblurGAN generators: the served
inference graph against the Keras generator on real images, the generator still in the checkpoint for
warm starts, equal-size images batched together, the warm-up requests, and the precision checks."""
import os
import subprocess
import sys

import numpy as np
import pytest
import sample_images
import tensorflow as tf
from trained_generators import perturbed_generator

from config import ConfigError, preset
from contracts import signatures
from contracts.serving_layout import WARMUP_FILE
from models import images

# Batches of differently sized PNGs through serving_default, in a subprocess so that a native crash is
# a test failure instead of the end of the test run. With tf.map_fn's default parallel iterations this
# loop died with SIGSEGV inside oneDNN's convolutions (TF 2.16 CPU) within a few dozen batches.
MIXED_SIZES = """
import sys, numpy as np, tensorflow as tf
from models import images
f = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
scale = int(sys.argv[2])
rng = np.random.default_rng(0)
for _ in range(120):
    sizes = [tuple(int(v) for v in rng.integers(1, 64, 2)) for _ in range(int(rng.integers(2, 5)))]
    out = f(image_bytes=tf.constant([images.encode_png(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
                                     for h, w in sizes]))
    assert [tuple(v) for v in zip(out["height"].numpy(), out["width"].numpy())] == [
        (h * scale, w * scale) for h, w in sizes]
print("ok")
"""


@pytest.fixture(scope="module", params=["sr", "deblur"])
def exported(request, tmp_path_factory):
    """(cfg, path, Keras generator) of an export with weights off their initialisation (the tiny
    generators are bicubic and the identity at initialisation, which any graph reproduces)."""
    from models.export import export_generator
    from models.networks import generator_size_multiple

    cfg = preset("tiny", task=request.param, overrides={"model.batch_norm": request.param == "sr"})
    path = str(tmp_path_factory.mktemp(f"export_{request.param}") / "1")
    generator = perturbed_generator(cfg)
    export_generator(generator, path, cfg, generator_size_multiple(cfg))
    return cfg, path, generator


def _real(h, w, start=0):
    return sample_images.mosaic(2, 2, start=start)[:h, :w]


@pytest.mark.slow
def test_batches_of_mixed_sizes_never_crash_the_model(exported):
    cfg, path, _ = exported
    r = subprocess.run([sys.executable, "-c", MIXED_SIZES, path, str(cfg.scale)], capture_output=True, text=True,
                       timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.returncode, r.stderr[-2000:])


def test_the_served_graph_computes_the_keras_generator_on_real_images(exported):
    """float32 export: within 1e-4 of the Keras generator, at sizes the generator takes as they are and
    at sizes the export pads (deblur: not multiples of 4)."""
    cfg, path, generator = exported
    restore = tf.saved_model.load(path).signatures[signatures.RESTORE]
    for h, w in ((64, 96), (128, 200), (37, 53)):
        x = images.uint8_to_float(_real(h, w, start=h))[None]
        if cfg.task == "deblur" and (h % 4 or w % 4):
            continue  # the Keras generator cannot take it; tests/test_inference_graph.py checks the padding
        out = restore(images=tf.constant(x))[signatures.IMAGES].numpy()
        ref = np.clip(generator(x, training=False).numpy(), 0.0, 1.0)
        assert out.shape == ref.shape == (1, h * cfg.scale, w * cfg.scale, 3)
        assert np.abs(out - ref).max() <= 1e-4, (h, w, np.abs(out - ref).max())


def test_both_signatures_agree_and_keep_the_config(exported):
    from models import export

    cfg, path, _ = exported
    model = tf.saved_model.load(path)
    rgb = _real(37, 53)
    out = model.signatures[signatures.SERVING](image_bytes=tf.constant([images.encode_png(rgb)]))
    png = images.read_rgb8(out[signatures.BYTES].numpy()[0])
    assert png.shape == (37 * cfg.scale, 53 * cfg.scale, 3)
    assert (out[signatures.HEIGHT].numpy()[0], out[signatures.WIDTH].numpy()[0]) == png.shape[:2]
    floats = model.signatures[signatures.RESTORE](images=tf.constant(images.uint8_to_float(rgb)[None]))["images"]
    # Two graphs, two oneDNN schedules: rounding may land on the other side of .5 for a rare pixel.
    diff = np.abs(png.astype(int) - images.float_to_uint8(floats.numpy()[0]).astype(int))
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3
    assert export.load_config_json(model)["task"] == cfg.task


def test_a_fresh_generator_warm_started_from_the_checkpoint_reproduces_the_export(exported):
    """The contract training relies on: the Keras generator's variables are in the SavedModel's
    checkpoint under `generator`."""
    from models.networks import build_generator

    cfg, path, _ = exported
    fresh = build_generator(cfg)
    tf.train.Checkpoint(generator=fresh).read(os.path.join(path, "variables", "variables")).expect_partial()
    x = images.uint8_to_float(_real(64, 96, start=3))[None]
    served = tf.saved_model.load(path).signatures[signatures.RESTORE](images=tf.constant(x))["images"].numpy()
    assert np.abs(np.clip(fresh(x, training=False).numpy(), 0, 1) - served).max() <= 1e-4


def test_warmup_requests_parse_and_replay_against_the_model(exported):
    from models.warmup_requests import read_warmup_requests

    cfg, path, _ = exported
    assert os.path.getsize(os.path.join(path, WARMUP_FILE)) > 0
    requests = read_warmup_requests(path)
    assert sorted(sig for sig, _ in requests) == sorted([signatures.SERVING, signatures.RESTORE])
    model = tf.saved_model.load(path)
    for sig, inputs in requests:
        out = model.signatures[sig](**{k: tf.constant(v) for k, v in inputs.items()})
        if sig == signatures.SERVING:
            assert images.read_rgb8(out[signatures.BYTES].numpy()[0]).shape == (128 * cfg.scale, 128 * cfg.scale, 3)
        else:
            assert out[signatures.IMAGES].shape == (1, 128 * cfg.scale, 128 * cfg.scale, 3)


def test_serving_default_restores_equal_sizes_in_one_batched_call():
    """Four images of two sizes: two generator calls, of batches 3 and 1, outputs in request order."""
    from models.export import RestorationModule
    from serving.smoke_model import build_smoke_generator

    g = build_smoke_generator(2)
    calls, batched = tf.Variable(0), tf.Variable(0)

    def counting(x):
        with tf.control_dependencies([calls.assign_add(1), batched.assign_add(tf.shape(x)[0])]):
            return g(tf.identity(x), training=False)

    module = RestorationModule(g, 2, 1, forward=counting)
    a, b = _real(37, 53), _real(20, 30, start=5)
    out = module.serve_bytes(tf.constant([images.encode_png(v) for v in (a, b, a, a)]))
    assert (int(calls.numpy()), int(batched.numpy())) == (2, 4)
    shapes = [images.read_rgb8(p).shape for p in out[signatures.BYTES].numpy()]
    assert shapes == [(74, 106, 3), (40, 60, 3), (74, 106, 3), (74, 106, 3)]
    assert list(out[signatures.HEIGHT].numpy()) == [74, 40, 74, 74]


def test_reduced_precision_savedmodel_runs_and_stays_close(tmp_path):
    """write_savedmodel (no check of this machine) in bfloat16: float32 in and out, within a few levels
    of the float32 export (the PSNR cost on trained weights: tests/test_inference_graph.py)."""
    from models.export import write_savedmodel

    cfg = preset("tiny", "sr", {"model.batch_norm": True, "export.precision": "bfloat16"})
    generator = perturbed_generator(cfg)
    write_savedmodel(generator, str(tmp_path / "1"), cfg)
    x = images.uint8_to_float(_real(40, 48))[None]
    out = tf.saved_model.load(str(tmp_path / "1")).signatures[signatures.RESTORE](images=tf.constant(x))["images"]
    assert out.dtype == tf.float32
    assert np.abs(out.numpy() - np.clip(generator(x, training=False).numpy(), 0, 1)).max() < 0.05


def test_precision_is_checked_against_the_machine(tmp_path):
    from models.export import export_generator
    from models.inference import precision

    with_bf16, without = tmp_path / "zen5", tmp_path / "zen3"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n")
    precision.check_supported("bfloat16", str(with_bf16))
    with pytest.raises(ConfigError, match="export.precision=bfloat16 needs a CPU with native bfloat16"):
        precision.check_supported("bfloat16", str(without))
    precision.check_supported("float32", str(without))

    cfg = preset("tiny", "sr", {"export.precision": "bfloat16"})
    target = tmp_path / "model"
    if precision.cpu_has_bf16():
        export_generator(perturbed_generator(cfg), str(target), cfg)
        assert (target / "saved_model.pb").exists()
    else:
        with pytest.raises(ConfigError, match="bfloat16"):
            export_generator(perturbed_generator(cfg), str(target), cfg)
        assert not target.exists()
    if not tf.config.list_physical_devices("GPU"):
        with pytest.raises(ConfigError, match="export.precision=float16 is for GPUs"):
            precision.check_supported("float16")


def test_reduced_precision_needs_a_generator_with_a_rewrite():
    from models.inference import inference_fn
    from serving.smoke_model import build_smoke_generator

    cfg = preset("tiny", "sr")
    assert inference_fn(build_smoke_generator(4), cfg, "float32") is not None
    with pytest.raises(ConfigError, match="needs a generator with an inference rewrite"):
        inference_fn(build_smoke_generator(4), cfg, "float16")
