"""The served inference graphs (models/inference) compute the Keras generators: exact rewrites in float32,
a PSNR-Y cost under 0.05 dB in bfloat16 and float16 on real images with briefly trained generators, and
restoration in tiles inside the graph that matches whole images and the client's tiling."""
import numpy as np
import pytest
import sample_images
import tensorflow as tf
from trained_generators import perturbed_generator, trained_generator

from config import preset
from models import degrade, images, metrics
from models.inference import inference_fn, srresnet
from models.networks import generator_size_multiple

PSNR_BUDGET_DB = 0.05


def test_subpixel_tail_equals_the_convolution_after_depth_to_space():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(9, 9, 5, 3)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    p = tf.constant(rng.normal(size=(2, 7, 6, 20)).astype(np.float32))  # 20 = 2 * 2 * 5 channels
    direct = tf.nn.conv2d(tf.nn.depth_to_space(p, 2), w, 1, "SAME") + b
    w2, b2 = srresnet.subpixel_tail(w, b)
    assert w2.shape == (5, 5, 20, 12)
    moved = tf.nn.depth_to_space(tf.nn.conv2d(p, w2, 1, "SAME") + b2, 2)
    np.testing.assert_allclose(moved.numpy(), direct.numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name,task,overrides", [
    ("srgan-celeba", "sr", {"model.num_blocks": 2}),  # batch norm + tanh
    ("srresnet-psnr", "sr", {"model.num_blocks": 2}),  # no batch norm + bicubic skip
    ("tiny", "deblur", {"model.deblur_blocks": 2}),  # instance norm, reflection pads, transposed convs
])
def test_the_float32_graph_computes_the_keras_generator(name, task, overrides):
    cfg = preset(name, task, overrides)
    model = perturbed_generator(cfg)
    size = (16, 20) if task == "deblur" else (13, 17)
    x = tf.random.stateless_uniform([2, *size, 3], seed=[3, 4])
    ref = model(x, training=False).numpy()
    out = tf.function(inference_fn(model, cfg, "float32"))(x).numpy()
    assert out.shape == ref.shape == (2, size[0] * cfg.scale, size[1] * cfg.scale, 3)
    np.testing.assert_allclose(out, ref, atol=2e-5)


def _restore_uint8(fn, degraded):
    return images.float_to_uint8(np.asarray(fn(tf.constant(images.uint8_to_float(degraded)[None])))[0])


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
@pytest.mark.parametrize("task", ["sr", "deblur"])
def test_reduced_precision_costs_under_005_db_psnr_y_on_real_images(task, precision):
    t = trained_generator(task)
    reference = tf.function(lambda x: t.generator(x, training=False))
    reduced = tf.function(inference_fn(t.generator, t.cfg, precision))
    border = t.cfg.scale if task == "sr" else 0
    costs, fidelity, change = [], [], []
    for degraded, target in t.pairs:
        ref, out = _restore_uint8(reference, degraded), _restore_uint8(reduced, degraded)
        baseline = degraded if task == "deblur" else degrade.resize_uint8(degraded, t.cfg.scale)
        costs.append(metrics.psnr_y(ref, target, border) - metrics.psnr_y(out, target, border))
        fidelity.append(metrics.psnr_y(out, ref, border))
        change.append(metrics.psnr_y(ref, baseline, border))
    # The network changes its input (or its bicubic upscale) visibly: the figures are not trivially met.
    assert max(change) < 50.0, f"the generator barely changes its input: {change} dB"
    assert max(costs) < PSNR_BUDGET_DB, f"{precision} PSNR-Y costs {costs} dB"
    assert min(fidelity) > 50.0, f"{precision} PSNR-Y against float32 {fidelity} dB"


@pytest.mark.slow
def test_tiles_in_the_graph_match_the_whole_image_and_the_clients_tiling(tmp_path):
    """A 384x512 real photograph through `restore` with 128-pixel tiles in the graph: the same pixels as
    the whole image within 1/255, and the same blend as the client's tiling (shared geometry)."""
    from models.export import RestorationModule
    from serving.tiling import restore_tiled

    t = trained_generator("sr")
    lr = sample_images.mosaic(3, 4, start=7)
    x = images.uint8_to_float(lr)[None]
    forward = inference_fn(t.generator, t.cfg)
    tiled_module = RestorationModule(t.generator, t.cfg.scale, 1, forward=forward, tile_size=128, tile_overlap=32)
    whole_module = RestorationModule(t.generator, t.cfg.scale, 1, forward=forward)
    in_graph = tiled_module.restore(tf.constant(x))["images"].numpy()[0]
    whole = whole_module.restore(tf.constant(x))["images"].numpy()[0]
    client = restore_tiled(x[0], lambda b: whole_module.restore(tf.constant(b))["images"].numpy(), 128, 32)
    assert in_graph.shape == whole.shape == (384 * 4, 512 * 4, 3)
    np.testing.assert_allclose(in_graph, client, atol=1e-5)
    diff = np.abs(images.float_to_uint8(in_graph).astype(int) - images.float_to_uint8(whole).astype(int))
    assert diff.max() <= 1, f"max abs difference {diff.max()}/255"


def test_padding_for_the_deblur_size_multiple_goes_through_the_graph():
    from models.export import RestorationModule

    cfg = preset("tiny", "deblur")
    g = perturbed_generator(cfg)
    module = RestorationModule(g, cfg.scale, generator_size_multiple(cfg), forward=inference_fn(g, cfg))
    x = tf.random.stateless_uniform([1, 37, 53, 3], seed=[5, 6])
    out = module.restore(x)["images"]
    padded = module._pad(x, 37, 53)
    np.testing.assert_allclose(out.numpy(), g(padded, training=False).numpy()[:, :37, :53], atol=2e-5)
