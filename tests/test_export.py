"""The SavedModel contract of models/export.py on a real (tiny) SRResNet and DeblurGAN generator."""
import os
import subprocess
import sys

import numpy as np
import pytest

from config import preset
from contracts import signatures
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
    from models.export import export_generator
    from models.networks import build_generator, generator_size_multiple

    cfg = preset("tiny", task=request.param)
    path = str(tmp_path_factory.mktemp(f"export_{request.param}") / "1")
    export_generator(build_generator(cfg), path, cfg, generator_size_multiple(cfg))
    return cfg, path


@pytest.mark.slow
def test_batches_of_mixed_sizes_never_crash_the_model(exported):
    cfg, path = exported
    r = subprocess.run([sys.executable, "-c", MIXED_SIZES, path, str(cfg.scale)], capture_output=True, text=True,
                       timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.returncode, r.stderr[-2000:])


def test_both_signatures_agree_and_keep_the_config(exported):
    import tensorflow as tf

    from models import export

    cfg, path = exported
    model = tf.saved_model.load(path)
    rgb = images.read_rgb8(os.path.join(os.path.dirname(__file__), "..", "data", "samples",
                                        sorted(os.listdir(os.path.join(os.path.dirname(__file__), "..", "data",
                                                                       "samples")))[0]))[:37, :53]
    out = model.signatures["serving_default"](image_bytes=tf.constant([images.encode_png(rgb)]))
    png = images.read_rgb8(out["image_bytes"].numpy()[0])
    assert png.shape == (37 * cfg.scale, 53 * cfg.scale, 3)
    floats = model.signatures[signatures.RESTORE](images=tf.constant(images.uint8_to_float(rgb)[None]))["images"]
    # Two graphs, two oneDNN schedules: rounding may land on the other side of .5 for a rare pixel.
    diff = np.abs(png.astype(int) - images.float_to_uint8(floats.numpy()[0]).astype(int))
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3
    assert export.load_config_json(model)["task"] == cfg.task
