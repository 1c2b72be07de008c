"""The DeblurGAN generator's inference graph (what the export serves), in float32 or a reduced precision.

Instance normalisation uses each image's own statistics, so it cannot be folded into the convolutions
as batch norm can. What applies instead, each exact up to rounding:

- the bias of every convolution that instance norm follows is dropped (the norm subtracts the
  per-channel mean, bias included), as is the input's [0, 1] -> [-1, 1] shift before the first
  convolution (its scale goes into the kernel: reflection padding commutes with a pointwise map);
- instance norm as x * s - mean * s with s = rsqrt(var + eps) (the norm has no learned scale or
  offset), statistics in float32 whatever the precision. (TF's oneDNN remapper has an instance-norm
  fusion, `_MklFusedInstanceNorm`; it did not fire on this graph nor on the Keras layer's, ONEDNN_VERBOSE
  shows no normalisation primitive, and calling the raw op would tie the graph to oneDNN builds);
- the 7x7 output convolution (64 -> 3 channels at full resolution, 3/16 of oneDNN's output-channel
  block) as a 5x5 convolution 256 -> 12 at half resolution between space_to_depth and depth_to_space
  (the SRResNet tail rewrite, models/inference/srresnet.py `subpixel_tail`);
- the output clip(2x - 1 + tanh(r), -1, 1) / 2 + 1/2 as clip(x + tanh(r) / 2, 0, 1);
- weights as graph constants, dropout gone (inference).
With oneDNN on it runs 2.65x faster than the Keras model (deblurgan-gopro architecture, 256x256, 2
threads: 2.6 against 6.9 s); with TF's Eigen kernels both take the same time (docs/training.md).
"""
from __future__ import annotations

import numpy as np

from models.inference.srresnet import subpixel_tail


def _kernel(model, name: str) -> np.ndarray:
    return model.get_layer(name).kernel.numpy().astype(np.float32)


def inference_fn(model, cfg, dtype):
    """images float32 [N, H, W, 3] in [0, 1] (H, W multiples of 4) -> float32 [N, H, W, 3], same as
    `model(x, training=False)`."""
    import tensorflow as tf

    m = cfg.model
    eps = model.get_layer("head_in").epsilon
    head = 2.0 * _kernel(model, "head_conv")  # the [-1, 1] shift's scale; its offset is a bias the norm removes
    downs = [_kernel(model, f"down{i}_conv") for i in (1, 2)]
    blocks = [(_kernel(model, f"block{i}_conv1"), _kernel(model, f"block{i}_conv2"))
              for i in range(1, m.deblur_blocks + 1)]
    ups = [_kernel(model, f"up{i}_conv") for i in (1, 2)]
    tail_layer = model.get_layer("tail_conv")
    tail = subpixel_tail(tail_layer.kernel.numpy().astype(np.float32), tail_layer.bias.numpy().astype(np.float32))

    def instance_norm(x, relu=True):
        x32 = tf.cast(x, tf.float32)
        mean, var = tf.nn.moments(x32, axes=[1, 2], keepdims=True)
        s = tf.math.rsqrt(var + eps)
        y = x32 * s - mean * s
        return tf.cast(tf.nn.relu(y) if relu else y, dtype)

    def conv(x, w, stride=1, padding="VALID"):
        return tf.nn.conv2d(x, tf.constant(w, dtype), stride, padding)

    def up(x, w):
        n, h, wd = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        return tf.nn.conv2d_transpose(x, tf.constant(w, dtype), [n, 2 * h, 2 * wd, w.shape[2]], 2, "SAME")

    def reflect(x, p):
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def fn(images):
        x = tf.cast(images, dtype)
        x = instance_norm(conv(reflect(x, 3), head))
        for w in downs:
            x = instance_norm(conv(x, w, 2, "SAME"))
        for w1, w2 in blocks:
            y = instance_norm(conv(reflect(x, 1), w1))
            x = x + instance_norm(conv(reflect(y, 1), w2), relu=False)
        for w in ups:
            x = instance_norm(up(x, w))
        # conv_valid(reflect(x, 3), w) == conv_same(reflect(x, 4), w) cropped by 4; the half-resolution
        # form needs even sizes, which reflect(x, 4) of a multiple-of-4 input has.
        p = tf.nn.space_to_depth(reflect(x, 4), 2)
        r = tf.nn.depth_to_space(tf.nn.bias_add(conv(p, tail[0], 1, "SAME"), tf.constant(tail[1], dtype)), 2)
        r = tf.cast(r[:, 4:-4, 4:-4, :], tf.float32)
        return tf.clip_by_value(images + 0.5 * tf.tanh(r), 0.0, 1.0)

    return fn
