"""Networks: shapes for odd sizes, paper parameter counts (computed by hand from the layer sizes),
the sub-pixel layer, ICNR, the PatchGAN receptive field, serialisation."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from config import preset
from models import degrade
from models.export import RestorationModule
from models.networks import build_discriminator, build_generator, custom_objects, generator_size_multiple
from models.networks.layers import BicubicUpsample, DepthToSpace, SubPixelConv2D


def _rand(*shape, seed=0):
    return tf.constant(np.random.default_rng(seed).random(shape, dtype=np.float32))


# -- hand-computed parameter counts (Keras counts batch-norm moving statistics too: 4 per channel) --

def _conv(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def srresnet_params(blocks, c, scale, bn=True):
    bn_p = 4 * c if bn else 0
    head = _conv(9, 3, c) + c  # + PReLU slopes
    block = 2 * _conv(3, c, c) + 2 * bn_p + c
    body = _conv(3, c, c) + bn_p
    up = (_conv(3, c, 4 * c) + c) * int(np.log2(scale))
    return head + blocks * block + body + up + _conv(9, c, 3)


def srgan_disc_params(crop, d, dense, norm_p_per_channel=4):
    widths = [d, d, 2 * d, 2 * d, 4 * d, 4 * d, 8 * d, 8 * d]
    total, cin = 0, 3
    for i, w in enumerate(widths):
        total += _conv(3, cin, w) + (norm_p_per_channel * w if i else 0)
        cin = w
    flat = (crop // 16) ** 2 * 8 * d
    return total + flat * dense + dense + dense + 1


def deblurgan_params(c, blocks):
    return (_conv(7, 3, c) + _conv(3, c, 2 * c) + _conv(3, 2 * c, 4 * c)
            + blocks * 2 * _conv(3, 4 * c, 4 * c)
            + _conv(3, 4 * c, 2 * c) + _conv(3, 2 * c, c) + _conv(7, c, 3))


def patchgan_params(d, n):
    total, cin = _conv(4, 3, d), d  # instance norm (WGAN-GP) has no parameters; convs keep biases
    for i in range(1, n + 1):
        w = d * min(2 ** i, 8)
        total += _conv(4, cin, w)
        cin = w
    return total + _conv(4, cin, 1)


def test_paper_parameter_counts():
    sr = preset("srgan-celeba")
    g, d = build_generator(sr), build_discriminator(sr)
    expected_g = srresnet_params(16, 64, 4)
    print(f"SRResNet B=16 C=64 x4: {g.count_params():,} params (trainable "
          f"{sum(int(np.prod(v.shape)) for v in g.trainable_weights):,})")
    assert g.count_params() == expected_g
    assert abs(g.count_params() - 1.55e6) / 1.55e6 < 0.01  # "1.55 M" as published
    print(f"SRGAN discriminator on {sr.data.crop_size}x{sr.data.crop_size}: {d.count_params():,} params")
    assert d.count_params() == srgan_disc_params(sr.data.crop_size, 64, 1024)
    # The paper's 96x96 crops (6x6x512 features into Dense(1024)); same formula, not built again.
    print(f"SRGAN discriminator on 96x96 (paper): {srgan_disc_params(96, 64, 1024):,} params")

    db = preset("deblurgan-gopro")
    g, d = build_generator(db), build_discriminator(db)
    print(f"DeblurGAN generator (9 blocks, 64): {g.count_params():,} params; "
          f"PatchGAN 70x70 critic: {d.count_params():,} params")
    assert g.count_params() == deblurgan_params(64, 9)
    assert abs(g.count_params() - 11.4e6) / 11.4e6 < 0.02
    assert d.count_params() == patchgan_params(64, 3) == 2_764_737  # pix2pix n_layers=3 with biases
    assert d.compute_output_shape((1, 256, 256, 3)).as_list() == [1, 30, 30, 1]  # the classic 30x30 patches


@pytest.mark.parametrize("overrides", [
    {},  # tiny: residual bicubic, no batch norm
    {"model.residual_bicubic": False, "model.batch_norm": True, "model.icnr_init": False},
])
def test_sr_generator_odd_sizes(overrides):
    cfg = preset("tiny", "sr", overrides)
    g = build_generator(cfg)
    assert generator_size_multiple(cfg) == 1
    y = g(_rand(2, 37, 53, 3), training=False).numpy()
    assert y.shape == (2, 148, 212, 3) and y.dtype == np.float32
    assert y.min() >= 0.0 and y.max() <= 1.0
    cfg2 = preset("tiny", "sr", {**overrides, "model.scale": 2})
    assert build_generator(cfg2)(_rand(1, 37, 53, 3)).shape == (1, 74, 106, 3)


def test_deblur_generator_sizes_and_export_padding():
    cfg = preset("tiny", "deblur")
    g = build_generator(cfg)
    assert generator_size_multiple(cfg) == 4
    y = g(_rand(2, 36, 52, 3), training=True).numpy()
    assert y.shape == (2, 36, 52, 3) and 0.0 <= y.min() and y.max() <= 1.0
    # Other sizes go through the export module, which pads to the multiple and crops back.
    module = RestorationModule(g, cfg.scale, generator_size_multiple(cfg))  # tf.function keeps a weak ref
    out = module.restore(_rand(1, 37, 53, 3))["images"]
    assert out.shape == (1, 37, 53, 3)


def test_deblur_global_skip_is_identity_for_zero_residual():
    """ResOut: with the last conv at zero (tanh residual 0) the generator returns its input."""
    g = build_generator(preset("tiny", "deblur"))
    tail = g.get_layer("tail_conv")
    tail.set_weights([np.zeros_like(w) for w in tail.get_weights()])
    x = _rand(1, 16, 20, 3)
    np.testing.assert_allclose(g(x).numpy(), x.numpy(), atol=1e-6)


def test_bicubic_upsample_matches_matlab_imresize():
    """The residual path's upscaler equals degrade.imresize (MATLAB bicubic), borders included."""
    for h, w in ((9, 11), (1, 2), (2, 3)):
        x = _rand(2, h, w, 3)
        want = degrade.imresize(x, 4).numpy()
        np.testing.assert_allclose(BicubicUpsample(4)(x).numpy(), want, atol=1e-5)


def test_sr_residual_bicubic_adds_bicubic_upscale():
    g = build_generator(preset("tiny", "sr"))
    tail = g.get_layer("tail_conv")
    tail.set_weights([np.zeros_like(w) for w in tail.get_weights()])
    x = _rand(1, 9, 11, 3)
    want = np.clip(degrade.imresize(x, 4).numpy(), 0, 1)
    np.testing.assert_allclose(g(x).numpy(), want, atol=1e-5)


def test_discriminator_outputs():
    sr = preset("tiny", "sr")
    d = build_discriminator(sr)
    c = sr.train_patch  # the training size: random patches of the crops
    assert d(_rand(2, c, c, 3)).shape == (2, 1)
    db = preset("tiny", "deblur")  # critic_layers=2: 64 -> 32 -> 16 -> 15 -> 14
    assert build_discriminator(db)(_rand(2, 64, 64, 3)).shape == (2, 14, 14, 1)
    # No batch norm next to a gradient penalty.
    assert not any(isinstance(ly, keras.layers.BatchNormalization) for ly in build_discriminator(db).layers)


def test_patchgan_receptive_field_is_70():
    cfg = preset("deblurgan-gopro", overrides={"model.critic_channels": 4, "loss.adversarial": "bce"})
    critic = build_discriminator(cfg)  # batch norm in inference mode: a local, affine map
    x = _rand(1, 128, 128, 3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = critic(x, training=False)
        centre = out[0, out.shape[1] // 2, out.shape[2] // 2, 0]
    grad = np.abs(tape.gradient(centre, x).numpy()[0]).sum(axis=-1)
    rows, cols = np.nonzero(grad.sum(axis=1))[0], np.nonzero(grad.sum(axis=0))[0]
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_subpixel_layers_equal_depth_to_space():
    x = _rand(2, 5, 7, 12)
    np.testing.assert_array_equal(DepthToSpace(2)(x).numpy(), tf.nn.depth_to_space(x, 2).numpy())
    layer = SubPixelConv2D(3, scale=2, icnr=False)
    y = layer(x)
    k, b = layer.get_weights()
    b = np.random.default_rng(1).normal(size=b.shape).astype(np.float32)
    layer.set_weights([k, b])
    want = tf.nn.depth_to_space(tf.nn.conv2d(x, k, 1, "SAME") + b, 2)
    np.testing.assert_allclose(layer(x).numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    assert y.shape == (2, 10, 14, 3)


def test_icnr_init_has_no_checkerboard():
    x = _rand(1, 8, 8, 16)
    for icnr in (True, False):
        y = SubPixelConv2D(16, scale=2, icnr=icnr)(x).numpy()
        blocks = [y[:, i::2, j::2] for i in (0, 1) for j in (0, 1)]
        same = all(np.array_equal(blocks[0], b) for b in blocks[1:])
        assert same == icnr  # identical within every 2x2 block only with ICNR


@pytest.mark.parametrize("task", ["sr", "deblur"])
def test_generator_serialisation_roundtrip(task):
    g = build_generator(preset("tiny", task))
    clone = keras.models.model_from_json(g.to_json(), custom_objects=custom_objects())
    clone.set_weights(g.get_weights())
    x = _rand(1, 16, 20, 3)
    np.testing.assert_allclose(clone(x).numpy(), g(x).numpy(), atol=1e-6)
