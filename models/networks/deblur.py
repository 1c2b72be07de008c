"""DeblurGAN generator and PatchGAN critic (Kupyn et al. 2018, "DeblurGAN: Blind Motion Deblurring
Using Conditional Adversarial Networks"), both from the CycleGAN/pix2pix code (Zhu et al. 2017,
Isola et al. 2017) the paper builds on."""
from __future__ import annotations

import tf_keras as keras

from models.networks.layers import Clip, InstanceNormalization, ReflectionPadding2D, critic_norm, normalization

L = keras.layers

# Two stride-2 downsamplings: input sizes must be multiples of 4 (export.py pads others).
DEBLUR_SIZE_MULTIPLE = 4


def _conv_in_relu(x, filters, kernel, stride, name, transpose=False):
    conv = L.Conv2DTranspose if transpose else L.Conv2D
    x = conv(filters, kernel, strides=stride, padding="same", name=f"{name}_conv")(x)
    x = InstanceNormalization(name=f"{name}_in")(x)
    return L.ReLU(name=f"{name}_relu")(x)


def _resnet_block(x, channels, dropout, name):
    y = ReflectionPadding2D(1, name=f"{name}_pad1")(x)
    y = L.Conv2D(channels, 3, name=f"{name}_conv1")(y)
    y = InstanceNormalization(name=f"{name}_in1")(y)
    y = L.ReLU(name=f"{name}_relu")(y)
    if dropout > 0:
        y = L.Dropout(dropout, name=f"{name}_dropout")(y)
    y = ReflectionPadding2D(1, name=f"{name}_pad2")(y)
    y = L.Conv2D(channels, 3, name=f"{name}_conv2")(y)
    y = InstanceNormalization(name=f"{name}_in2")(y)
    return L.Add(name=f"{name}_add")([x, y])


def build_deblur_generator(cfg) -> keras.Model:
    """[0, 1] blurred images (H, W multiples of 4) -> [0, 1] sharp images of the same size.

    c7s1-64, d128, d256, `deblur_blocks` x R256, u128, u64, c7s1-3 + tanh; convolutions keep their
    biases (the reference code drops them only before batch norm). "ResOut": in [-1, 1] the output is
    clip(input + tanh residual, -1, 1), then mapped back to [0, 1].
    """
    m = cfg.model
    c = m.deblur_channels
    blurred = keras.Input((None, None, 3), name="blurred")
    signed = L.Rescaling(2.0, offset=-1.0, name="to_signed")(blurred)
    x = ReflectionPadding2D(3, name="head_pad")(signed)
    x = L.Conv2D(c, 7, name="head_conv")(x)
    x = InstanceNormalization(name="head_in")(x)
    x = L.ReLU(name="head_relu")(x)
    x = _conv_in_relu(x, 2 * c, 3, 2, "down1")
    x = _conv_in_relu(x, 4 * c, 3, 2, "down2")
    for b in range(m.deblur_blocks):
        x = _resnet_block(x, 4 * c, m.deblur_dropout, f"block{b + 1}")
    x = _conv_in_relu(x, 2 * c, 3, 2, "up1", transpose=True)
    x = _conv_in_relu(x, c, 3, 2, "up2", transpose=True)
    x = ReflectionPadding2D(3, name="tail_pad")(x)
    # The tail starts at zero, so the untrained model IS its input (tanh(0) = 0 on the global skip).
    # A Glorot-initialised tail adds a random residual that puts the untrained tiny model 22 dB below
    # the blurred input (15.4 vs 37.3 dB PSNR-Y, RGB 12.1), and a short warm-up spends its steps
    # undoing that (colour included).
    x = L.Conv2D(3, 7, kernel_initializer="zeros", name="tail_conv")(x)
    residual = L.Activation("tanh", dtype="float32", name="tanh")(x)
    x = L.Add(dtype="float32", name="res_out")([signed, residual])
    x = Clip(-1.0, 1.0, dtype="float32", name="clip")(x)
    sharp = L.Rescaling(0.5, offset=0.5, dtype="float32", name="sharp")(x)
    return keras.Model(blurred, sharp, name="deblurgan_generator")


def build_patchgan_critic(cfg) -> keras.Model:
    """[0, 1] images of any size (>= the receptive field) -> patch logits [N, h, w, 1].

    pix2pix NLayerDiscriminator with n = critic_layers (3: the 70x70 PatchGAN C64-C128-C256-C512):
    4x4 convs with 1-pixel zero padding, stride 2 for the first n, then a stride-1 layer and a stride-1
    conv to one channel; widths double per layer up to 8x; LeakyReLU 0.2; no norm on the first layer,
    instance norm under WGAN-GP (batch norm otherwise). Convs before batch norm drop their bias, as in
    the reference code. 256 input -> 30x30 patches.
    """
    m = cfg.model
    n = m.critic_layers
    norm = critic_norm(cfg)
    img = keras.Input((None, None, 3), name="image")
    x = L.Rescaling(2.0, offset=-1.0, name="to_signed")(img)

    def conv(x, filters, stride, i, use_norm, bias=True):
        x = L.ZeroPadding2D(1, name=f"pad{i}")(x)
        x = L.Conv2D(filters, 4, strides=stride, use_bias=bias, name=f"conv{i}")(x)
        if use_norm:
            x = normalization(norm, name=f"norm{i}")(x)
        return L.LeakyReLU(0.2, name=f"lrelu{i}")(x)

    x = conv(x, m.critic_channels, 2, 1, use_norm=False)
    for i in range(1, n + 1):
        stride = 2 if i < n else 1
        x = conv(x, m.critic_channels * min(2 ** i, 8), stride, i + 1, use_norm=True, bias=norm != "batch")
    x = L.ZeroPadding2D(1, name=f"pad{n + 2}")(x)
    logits = L.Conv2D(1, 4, dtype="float32", name="logits")(x)
    return keras.Model(img, logits, name="patchgan_critic")
