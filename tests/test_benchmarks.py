"""The benchmark helpers that carry numbers into the report: the rewritten inference graph must compute
what the model computes, the held-out bookkeeping and the data-path arithmetic must be right."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from benchmarks import datapath, folded_srresnet, quality
from config import preset
from models.networks import build_generator


def test_subpixel_tail_equals_the_convolution_after_depth_to_space():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(9, 9, 5, 3)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    p = tf.constant(rng.normal(size=(2, 7, 6, 20)).astype(np.float32))  # 20 = 2 * 2 * 5 channels
    direct = tf.nn.conv2d(tf.nn.depth_to_space(p, 2), w, 1, "SAME") + b
    w2, b2 = folded_srresnet.subpixel_tail(w, b)
    assert w2.shape == (5, 5, 20, 12)
    moved = tf.nn.depth_to_space(tf.nn.conv2d(p, w2, 1, "SAME") + b2, 2)
    np.testing.assert_allclose(moved.numpy(), direct.numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", ["srgan-celeba", "srresnet-psnr"])  # batch norm + tanh; no BN + bicubic skip
def test_folded_graph_computes_the_keras_generator(name):
    cfg = preset(name, overrides={"model.num_blocks": 2})
    keras.utils.set_random_seed(0)
    model = build_generator(cfg)
    rng = np.random.default_rng(1)
    for v in model.variables:  # away from the initialisation: unit BN or a zero tail would hide mistakes
        if "moving_variance" in v.name:
            v.assign(rng.uniform(0.5, 2.0, v.shape).astype(np.float32))
        elif "alpha" in v.name:
            v.assign(rng.uniform(0.0, 1.0, v.shape).astype(np.float32))
        else:
            v.assign(v + rng.normal(0.0, 0.02, v.shape).astype(np.float32))
    x = tf.random.stateless_uniform([1, 13, 17, 3], seed=[3, 4])
    ref = model(x, training=False).numpy()
    out = tf.function(folded_srresnet.inference_fn(model, cfg, tf.float32))(x).numpy()
    assert out.shape == ref.shape == (1, 52, 68, 3)
    np.testing.assert_allclose(out, ref, atol=2e-5)


def test_seen_in_training_finds_benchmark_images_by_stem_and_tile_name(tmp_path):
    (tmp_path / "img_001_y0000_x0128.png").write_bytes(b"")
    (tmp_path / "img_003.png").write_bytes(b"")
    (tmp_path / "astronaut_01.png").write_bytes(b"")
    ids = ["img_001.png", "img_002.png", "img_003.png", "img_010.png"]
    assert quality.seen_in_training(str(tmp_path), ids) == ["img_001.png", "img_003.png"]
    assert quality.seen_in_training(str(tmp_path / "absent"), ids) == []


def test_break_even_is_where_end_to_end_reaches_the_ratio():
    plain, steady, fixed = 80.0, 140.0, 50.0
    n = datapath.break_even(plain, steady, fixed)
    assert n / (fixed + n / steady) == pytest.approx(1.5 * plain)
    assert datapath.break_even(plain, 100.0, fixed) == float("inf")  # steady state below 1.5x: never
    assert datapath.break_even(plain, float("nan"), fixed) == float("inf")  # no steady state measured
