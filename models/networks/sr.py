"""SRResNet generator and SRGAN discriminator (Ledig et al. 2017, "Photo-Realistic Single Image
Super-Resolution Using a Generative Adversarial Network", fig. 4)."""
from __future__ import annotations

import math

import tf_keras as keras

from models.networks.layers import BicubicUpsample, Clip, SubPixelConv2D, critic_norm, normalization

L = keras.layers


def _prelu(name):
    # PReLU with one slope per channel (shared over H, W, so any input size works); 0.25 as in He et
    # al. 2015 and PyTorch, rather than Keras' 0 (a plain ReLU at initialisation).
    return L.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.Constant(0.25), name=name)


def _residual_block(x, channels: int, batch_norm: bool, name: str):
    y = L.Conv2D(channels, 3, padding="same", name=f"{name}_conv1")(x)
    if batch_norm:
        y = L.BatchNormalization(name=f"{name}_bn1")(y)
    y = _prelu(f"{name}_prelu")(y)
    y = L.Conv2D(channels, 3, padding="same", name=f"{name}_conv2")(y)
    if batch_norm:
        y = L.BatchNormalization(name=f"{name}_bn2")(y)
    return L.Add(name=f"{name}_add")([x, y])


def build_srresnet(cfg) -> keras.Model:
    """[0, 1] LR images of any size -> [0, 1] images `scale` times larger.

    Input stays in [0, 1] (the paper's LR range). Output: with `residual_bicubic` the 9x9 output conv
    is linear and is added to the bicubic upscaled input, then clipped to [0, 1] with a straight-through
    gradient; otherwise tanh gives the paper's [-1, 1] HR range, mapped linearly to [0, 1].
    """
    m = cfg.model
    stages = int(round(math.log2(m.scale)))
    if 2 ** stages != m.scale:
        raise ValueError(f"SRResNet upsamples by powers of 2; model.scale={m.scale}")
    c = m.channels
    lr = keras.Input((None, None, 3), name="lr")
    x = L.Conv2D(c, 9, padding="same", name="head_conv")(lr)
    x = head = _prelu("head_prelu")(x)
    for b in range(m.num_blocks):
        x = _residual_block(x, c, m.batch_norm, name=f"block{b + 1}")
    x = L.Conv2D(c, 3, padding="same", name="body_conv")(x)
    if m.batch_norm:
        x = L.BatchNormalization(name="body_bn")(x)
    x = L.Add(name="long_skip")([head, x])
    for s in range(stages):
        x = SubPixelConv2D(c, scale=2, kernel_size=3, icnr=m.icnr_init, name=f"upsample{s + 1}")(x)
        x = _prelu(f"upsample{s + 1}_prelu")(x)
    # Residual output: the tail starts at zero, so the untrained model IS bicubic. A Glorot-initialised
    # 9x9 tail adds noise that puts it 4.8 dB below bicubic (tiny preset), and the first few hundred
    # steps of training only undo that.
    tail_init = "zeros" if m.residual_bicubic else "glorot_uniform"
    x = L.Conv2D(3, 9, padding="same", kernel_initializer=tail_init, name="tail_conv")(x)
    # Outputs in float32 even under a mixed-precision policy.
    if m.residual_bicubic:
        x = L.Activation("linear", dtype="float32", name="residual")(x)
        x = L.Add(dtype="float32", name="add_bicubic")([BicubicUpsample(m.scale, name="bicubic")(lr), x])
        sr = Clip(0.0, 1.0, straight_through=True, dtype="float32", name="sr")(x)
    else:
        x = L.Activation("tanh", dtype="float32", name="tanh")(x)
        sr = L.Rescaling(0.5, offset=0.5, dtype="float32", name="sr")(x)
    return keras.Model(lr, sr, name="srresnet")


# (width multiplier of disc_channels, stride) of the eight 3x3 convolutions in the SRGAN discriminator
SRGAN_DISC_LAYERS = ((1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))


def build_srgan_discriminator(cfg) -> keras.Model:
    """[0, 1] HR crops of the training size (`cfg.train_patch`) -> logits [N, 1].

    Eight 3x3 convs (64, 64, 128, 128, 256, 256, 512, 512 for disc_channels=64; strides 1, 2, ...),
    LeakyReLU 0.2, normalisation on all but the first (batch norm; instance norm under WGAN-GP),
    Dense(disc_dense), LeakyReLU, Dense(1). Images enter in the paper's [-1, 1].
    """
    m = cfg.model
    size = cfg.train_patch
    norm = critic_norm(cfg)
    img = keras.Input((size, size, 3), name="image")
    x = L.Rescaling(2.0, offset=-1.0, name="to_signed")(img)
    for i, (mult, stride) in enumerate(SRGAN_DISC_LAYERS):
        x = L.Conv2D(m.disc_channels * mult, 3, strides=stride, padding="same", name=f"conv{i + 1}")(x)
        if i > 0:
            x = normalization(norm, name=f"norm{i + 1}")(x)
        x = L.LeakyReLU(0.2, name=f"lrelu{i + 1}")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(m.disc_dense, name="dense")(x)
    x = L.LeakyReLU(0.2, name="dense_lrelu")(x)
    logits = L.Dense(1, dtype="float32", name="logits")(x)
    return keras.Model(img, logits, name="srgan_discriminator")
