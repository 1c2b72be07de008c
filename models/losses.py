"""Losses: pixel, perceptual (VGG), adversarial (BCE, WGAN-GP, relativistic average), gradient penalty.

Every function returns PER-EXAMPLE float32 losses of shape [N] (means over pixels, channels, feature
maps or patches); nothing averages over the batch. Under a tf.distribute strategy the trainer reduces
them with `tf.nn.compute_average_loss(per_example, global_batch_size=...)`. The plain loss functions
are unweighted; `generator_loss` / `discriminator_loss` apply the weights of `cfg.loss`.

Weights as in the papers: SRGAN's "VGG loss rescaled by 1/12.75" is `perceptual_weight = 0.006`
((1/12.75)**2 on the squared feature difference, identical to dividing the features by 12.75), so
`PerceptualLoss` itself does not rescale; DeblurGAN uses 100 x VGG16 block3_conv3 + WGAN-GP.
"""
from __future__ import annotations

import tensorflow as tf

from models import vgg


def per_example_mean(x):
    """Mean over every axis but the batch axis, as float32 [N]."""
    x = tf.cast(x, tf.float32)
    return tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)


def pixel_loss(cfg, target, output):
    """MSE or L1 (`loss.pixel`) between [0, 1] images, per example."""
    d = tf.cast(output, tf.float32) - tf.cast(target, tf.float32)
    if cfg.loss.pixel == "mse":
        return per_example_mean(tf.square(d))
    if cfg.loss.pixel == "l1":
        return per_example_mean(tf.abs(d))
    raise ValueError(f"loss.pixel must be mse or l1, got {cfg.loss.pixel!r}")


def perceptual_enabled(cfg) -> bool:
    return bool(cfg.loss.perceptual_net) and cfg.loss.perceptual_weight > 0


def check_perceptual_weights(cfg):
    """At start: the VGG weights file the run will use (None when the perceptual loss is off).
    Raises FileNotFoundError naming the file and where to put it."""
    if not perceptual_enabled(cfg) or cfg.loss.allow_random_vgg:
        return None
    return vgg.resolve_weights(cfg.loss.perceptual_net, cfg.loss.vgg_weights)


class PerceptualLoss:
    """Mean squared difference of VGG features (`loss.perceptual_net` / `loss.perceptual_layer`) of
    [0, 1] RGB images, per example. Build it inside `strategy.scope()` (it owns the frozen VGG
    variables). The weights file is resolved at construction: a missing one fails here, at start."""

    def __init__(self, cfg):
        net, layer = cfg.loss.perceptual_net, cfg.loss.perceptual_layer
        if not net:
            raise ValueError("PerceptualLoss: loss.perceptual_net is empty (the perceptual loss is disabled)")
        self.features = vgg.feature_extractor(net, layer, cfg.loss.vgg_weights, cfg.loss.allow_random_vgg)

    def __call__(self, target, output):
        # One VGG pass over both batches; the target side carries no gradient anyway.
        n = tf.shape(output)[0]
        f = self.features(vgg.preprocess(tf.concat([tf.stop_gradient(target), output], axis=0)),
                          training=False)
        f = tf.cast(f, tf.float32)
        return per_example_mean(tf.square(f[n:] - f[:n]))


def _relativistic(a_logits, b_logits):
    """ESRGAN's C(a) - E_b[C(b)]: the batch mean over this replica's examples (per patch for PatchGAN)."""
    return a_logits - tf.reduce_mean(b_logits, axis=0, keepdims=True)


def generator_adversarial_loss(cfg, fake_logits, real_logits=None):
    """The generator's adversarial loss per example (unweighted).

    bce: -log D(G(x)) (SRGAN's non-saturating form); wgan-gp: -D(G(x));
    ragan (ESRGAN): -log(1 - D_Ra(real, fake)) - log D_Ra(fake, real), needs `real_logits`.
    """
    fake = tf.cast(fake_logits, tf.float32)
    kind = cfg.loss.adversarial
    if kind == "bce":
        return per_example_mean(tf.nn.softplus(-fake))
    if kind == "wgan-gp":
        return per_example_mean(-fake)
    if kind == "ragan":
        if real_logits is None:
            raise ValueError("the relativistic (ragan) generator loss needs the real logits too")
        real = tf.stop_gradient(tf.cast(real_logits, tf.float32))
        return per_example_mean(tf.nn.softplus(_relativistic(real, fake)) +
                                tf.nn.softplus(-_relativistic(fake, real)))
    raise ValueError(f"unknown loss.adversarial {kind!r}")


def discriminator_adversarial_loss(cfg, real_logits, fake_logits):
    """The discriminator's adversarial loss per example (no gradient penalty; see `discriminator_loss`).

    bce: -log D(real) - log(1 - D(fake)); wgan-gp: D(fake) - D(real);
    ragan: -log D_Ra(real, fake) - log(1 - D_Ra(fake, real)).
    """
    real = tf.cast(real_logits, tf.float32)
    fake = tf.cast(fake_logits, tf.float32)
    kind = cfg.loss.adversarial
    if kind == "bce":
        return per_example_mean(tf.nn.softplus(-real) + tf.nn.softplus(fake))
    if kind == "wgan-gp":
        return per_example_mean(fake - real)
    if kind == "ragan":
        return per_example_mean(tf.nn.softplus(-_relativistic(real, fake)) +
                                tf.nn.softplus(_relativistic(fake, real)))
    raise ValueError(f"unknown loss.adversarial {kind!r}")


def gradient_penalty(critic, real, fake, alpha=None, training=True):
    """WGAN-GP penalty (Gulrajani et al. 2017) per example: (||grad_x f(x_hat)||_2 - 1)**2 at
    x_hat = alpha * real + (1 - alpha) * fake, alpha ~ U[0, 1] per example unless given ([N] or scalar).

    f is the critic's per-example score as used in the loss, i.e. the MEAN over PatchGAN patches (the
    DeblurGAN code differentiates the patch sum, which penalises a function h*w times larger). Needs a
    critic without batch norm (examples must not interact). Call it inside the trainer's tape: the
    penalty is differentiated again with respect to the critic's weights.
    """
    real = tf.stop_gradient(tf.cast(real, tf.float32))
    fake = tf.stop_gradient(tf.cast(fake, tf.float32))
    if alpha is None:
        alpha = tf.random.uniform([tf.shape(real)[0], 1, 1, 1], dtype=tf.float32)
    else:
        alpha = tf.reshape(tf.cast(alpha, tf.float32), [-1, 1, 1, 1])
    x_hat = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        score = per_example_mean(critic(x_hat, training=training))
    grad = tf.cast(tape.gradient(score, x_hat), tf.float32)
    # The small constant keeps the gradient of the norm finite where the gradient vanishes.
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]) + 1e-12)
    return tf.square(norm - 1.0)


def generator_loss(cfg, target, output, fake_logits=None, real_logits=None, perceptual=None):
    """Weighted generator terms per example: {"pixel", "perceptual", "adversarial", "total"}.

    Terms with weight 0 are left out; the adversarial term only when `fake_logits` is given; the
    perceptual term needs a `PerceptualLoss` when its weight is > 0. (The pixel-loss warm-up phase
    should call `pixel_loss` directly: presets may weight pixels 0 in the adversarial phase.)
    """
    w = cfg.loss
    terms = {}
    if w.pixel_weight > 0:
        terms["pixel"] = w.pixel_weight * pixel_loss(cfg, target, output)
    if perceptual_enabled(cfg):
        if perceptual is None:
            raise ValueError("loss.perceptual_weight > 0 but no PerceptualLoss was given")
        terms["perceptual"] = w.perceptual_weight * perceptual(target, output)
    if fake_logits is not None and w.adversarial_weight > 0:
        terms["adversarial"] = w.adversarial_weight * generator_adversarial_loss(cfg, fake_logits, real_logits)
    if not terms:
        raise ValueError("generator_loss: every loss weight is 0")
    terms["total"] = tf.add_n(list(terms.values()))
    return terms


def discriminator_loss(cfg, critic, real, fake, training=True):
    """Discriminator terms per example: {"adversarial", "gradient_penalty" (wgan-gp only), "total",
    "real_logits", "fake_logits"}; the penalty is weighted by `loss.gp_weight`. Runs the critic."""
    real_logits = critic(real, training=training)
    fake_logits = critic(tf.stop_gradient(fake), training=training)
    out = {"adversarial": discriminator_adversarial_loss(cfg, real_logits, fake_logits)}
    total = out["adversarial"]
    if cfg.loss.adversarial == "wgan-gp":
        out["gradient_penalty"] = cfg.loss.gp_weight * gradient_penalty(critic, real, fake, training=training)
        total = total + out["gradient_penalty"]
    out.update(total=total, real_logits=real_logits, fake_logits=fake_logits)
    return out
