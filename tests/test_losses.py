"""Losses against hand computations (numpy), the gradient penalty against finite differences, the
perceptual loss' weight loading through the real path (a weights file the test writes)."""
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from config import preset
from config.vgg_weights import WEIGHT_FILES
from models import losses, vgg
from models.networks import build_discriminator

RNG = np.random.default_rng(0)


def _cfg(**loss):
    return preset("tiny", "sr", {f"loss.{k}": v for k, v in loss.items()})


def _softplus(x):
    return np.log1p(np.exp(x))


def test_pixel_losses():
    a = RNG.random((2, 3, 4, 3)).astype(np.float32)
    b = RNG.random((2, 3, 4, 3)).astype(np.float32)
    mse = losses.pixel_loss(_cfg(pixel="mse"), a, b).numpy()
    l1 = losses.pixel_loss(_cfg(pixel="l1"), a, b).numpy()
    assert mse.shape == (2,)
    np.testing.assert_allclose(mse, [np.mean((a[i] - b[i]) ** 2) for i in range(2)], rtol=1e-6)
    np.testing.assert_allclose(l1, [np.mean(np.abs(a[i] - b[i])) for i in range(2)], rtol=1e-6)


@pytest.mark.parametrize("shape", [(4, 1), (4, 2, 3, 1)])  # SRGAN logits, PatchGAN patch logits
def test_adversarial_losses(shape):
    r = RNG.normal(size=shape).astype(np.float32)
    f = RNG.normal(size=shape).astype(np.float32)
    per_ex = lambda x: x.reshape(shape[0], -1).mean(axis=1)
    sig = lambda x: 1 / (1 + np.exp(-x))
    want = {
        "bce": (per_ex(-np.log(sig(f))), per_ex(-np.log(sig(r)) - np.log(1 - sig(f)))),
        "wgan-gp": (per_ex(-f), per_ex(f - r)),
        # ESRGAN: D_Ra(a, b) = sigmoid(C(a) - mean_batch C(b))
        "ragan": (per_ex(-np.log(1 - sig(r - f.mean(0))) - np.log(sig(f - r.mean(0)))),
                  per_ex(-np.log(sig(r - f.mean(0))) - np.log(1 - sig(f - r.mean(0))))),
    }
    for kind, (gen, disc) in want.items():
        cfg = _cfg(adversarial=kind)
        np.testing.assert_allclose(losses.generator_adversarial_loss(cfg, f, r).numpy(), gen, rtol=1e-5)
        np.testing.assert_allclose(losses.discriminator_adversarial_loss(cfg, r, f).numpy(), disc, rtol=1e-5)


def test_generator_loss_weights_terms():
    cfg = _cfg(pixel="l1", pixel_weight=2.0, adversarial="bce", adversarial_weight=0.5)
    a = RNG.random((2, 4, 4, 3)).astype(np.float32)
    b = RNG.random((2, 4, 4, 3)).astype(np.float32)
    f = RNG.normal(size=(2, 1)).astype(np.float32)
    terms = {k: v.numpy() for k, v in losses.generator_loss(cfg, a, b, fake_logits=f).items()}
    assert set(terms) == {"pixel", "adversarial", "total"}
    np.testing.assert_allclose(terms["pixel"], 2.0 * np.abs(a - b).mean(axis=(1, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(terms["adversarial"], 0.5 * _softplus(-f[:, 0]), rtol=1e-5)
    np.testing.assert_allclose(terms["total"], terms["pixel"] + terms["adversarial"], rtol=1e-6)
    with pytest.raises(ValueError, match="PerceptualLoss"):
        losses.generator_loss(_cfg(perceptual_net="vgg16", perceptual_weight=1.0), a, b)


def _small_critic(dtype="float64"):
    keras.utils.set_random_seed(1)
    x = keras.Input((6, 6, 2), dtype=dtype)
    y = keras.layers.Conv2D(4, 3, activation="tanh", dtype=dtype)(x)
    y = keras.layers.Conv2D(1, 3, dtype=dtype)(y)  # patch logits [N, 2, 2, 1]
    return keras.Model(x, y)


def test_gradient_penalty_matches_finite_differences():
    critic = _small_critic()
    real = RNG.random((2, 6, 6, 2)).astype(np.float32)
    fake = RNG.random((2, 6, 6, 2)).astype(np.float32)
    alpha = np.array([0.3, 0.8], np.float32)
    gp = losses.gradient_penalty(critic, real, fake, alpha=alpha).numpy()
    score = lambda x: critic(x).numpy().reshape(len(x), -1).mean(axis=1)  # per-example mean over patches
    eps = 1e-6
    for i in range(2):
        x_hat = alpha[i] * real[i].astype(np.float64) + (1 - alpha[i]) * fake[i].astype(np.float64)
        steps = np.eye(x_hat.size).reshape((x_hat.size,) + x_hat.shape) * eps
        grad = (score(x_hat + steps) - score(x_hat - steps)) / (2 * eps)  # central differences
        np.testing.assert_allclose(gp[i], (np.linalg.norm(grad) - 1.0) ** 2, rtol=1e-5)


def test_critic_step_under_strategy_reaches_every_kernel():
    """WGAN-GP critic step inside tf.function under a MirroredStrategy: the penalty's gradient (second
    order, through the inner tape) reaches every critic kernel, and the step applies."""
    cfg = preset("tiny", "deblur")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        critic = build_discriminator(cfg)
        opt = keras.optimizers.Adam(1e-4)
    real = tf.random.uniform((2, 32, 32, 3), seed=1)
    fake = tf.random.uniform((2, 32, 32, 3), seed=2)

    @tf.function
    def step(real, fake):
        def replica(real, fake):
            with tf.GradientTape() as tape:
                out = losses.discriminator_loss(cfg, critic, real, fake)
                loss = tf.nn.compute_average_loss(out["total"], global_batch_size=2)
            grads = tape.gradient(loss, critic.trainable_variables)
            opt.apply_gradients(zip(grads, critic.trainable_variables, strict=True))
            return loss, out["gradient_penalty"], {v.name: tf.reduce_sum(tf.abs(g))
                                                   for v, g in zip(critic.trainable_variables, grads, strict=True)}
        return strategy.run(replica, args=(real, fake))

    loss, gp, grad_sums = step(real, fake)
    assert np.isfinite(loss.numpy()) and gp.shape == (2,) and np.all(gp.numpy() >= 0)
    # Every kernel learns. (Biases may not: the WGAN loss and its penalty ignore the output bias, and
    # instance norm cancels the bias of the conv before it.)
    assert all(float(s) > 0 for k, s in grad_sums.items() if "kernel" in k)


# -- perceptual loss: weights resolution and loading -------------------------------------------------

@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    """No weights anywhere: $KERAS_HOME and ~ both point at empty folders."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "keras_home"


def _vgg16_cfg(**extra):
    return _cfg(perceptual_net="vgg16", perceptual_layer="block3_conv3", perceptual_weight=1.0, **extra)


def test_perceptual_loss_missing_weights_is_a_clear_error(empty_keras_home, tmp_path):
    name = WEIGHT_FILES["vgg16"]
    with pytest.raises(FileNotFoundError) as err:
        losses.PerceptualLoss(_vgg16_cfg())
    msg = str(err.value)
    assert name in msg and str(empty_keras_home / "models" / name) in msg and "loss.vgg_weights" in msg
    with pytest.raises(FileNotFoundError, match=name):
        losses.check_perceptual_weights(_vgg16_cfg())
    missing = str(tmp_path / "nowhere.h5")
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        losses.PerceptualLoss(_vgg16_cfg(vgg_weights=missing))
    assert losses.check_perceptual_weights(_cfg()) is None  # tiny: perceptual loss off


def test_perceptual_loss_loads_weights_from_the_standard_path(empty_keras_home):
    keras.utils.set_random_seed(7)
    saved = vgg.build_vgg("vgg16")  # stands in for the ImageNet file: same format, same file name
    path = empty_keras_home / "models" / WEIGHT_FILES["vgg16"]
    os.makedirs(path.parent)
    saved.save_weights(str(path))
    cfg = _vgg16_cfg()
    assert losses.check_perceptual_weights(cfg) == str(path)

    loss = losses.PerceptualLoss(cfg)
    for layer in loss.features.layers[1:]:  # all but the input layer
        for got, want in zip(layer.get_weights(), saved.get_layer(layer.name).get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
    assert loss.features.layers[-1].name == "block3_conv3" and not loss.features.trainable_weights

    # The loss equals an independent computation: keras' own VGG preprocessing on the saved model.
    a = RNG.random((2, 24, 24, 3)).astype(np.float32)
    b = RNG.random((2, 24, 24, 3)).astype(np.float32)
    feats = keras.Model(saved.input, saved.get_layer("block3_conv3").output)
    pre = lambda x: keras.applications.vgg16.preprocess_input(x * 255.0)
    want = ((feats(pre(b)).numpy() - feats(pre(a)).numpy()) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(loss(a, b).numpy(), want, rtol=1e-4)
    np.testing.assert_allclose(loss(a, a).numpy(), 0.0, atol=1e-6)
    # An explicit folder holding the standard file name works too.
    assert losses.check_perceptual_weights(_vgg16_cfg(vgg_weights=str(path.parent))) == str(path)


def test_perceptual_loss_random_weights_only_with_the_switch(empty_keras_home, caplog):
    with caplog.at_level(logging.WARNING):
        loss = losses.PerceptualLoss(_vgg16_cfg(allow_random_vgg=True))
    assert "RANDOM VGG weights" in caplog.text
    assert loss(np.zeros((1, 8, 8, 3), np.float32), np.ones((1, 8, 8, 3), np.float32)).shape == (1,)
