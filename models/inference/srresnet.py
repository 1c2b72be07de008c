"""SRResNet's inference graph (what the export serves): the trained Keras generator rewritten for
oneDNN on CPU (and cuDNN), in float32 or end to end in a reduced precision (weights cast once, not per
call as a Keras mixed policy does). Three exact rewrites:

- batch norm folded into the convolutions:
      BN(conv(x, W) + b) = conv(x, W * s) + (b - mean) * s + beta,   s = gamma / sqrt(var + eps);
- the 9x9 output convolution (64 -> 3 channels at full resolution) moved before the last
  depth_to_space: a 5x5 convolution 256 -> 12 channels at half resolution, then depth_to_space.
  oneDNN computes output channels in blocks of 16, so 3 outputs used 3/16 of the vector units: that
  one layer took ~38% of the bfloat16 run (95 of 254 ms of convolutions, ONEDNN_VERBOSE=1); 12
  outputs use 12/16 for 23% more multiply-adds (the kernel's zero taps);
- PReLU as max(x, a * x) (two elementwise passes instead of four) when every slope is in [0, 1].

Weights are graph constants (grappler folds them, oneDNN caches them reordered), ops in the order TF's
oneDNN remapper fuses (Conv2D + BiasAdd [+ Add]). Same numbers as the Keras model in float32 up to
rounding (tests/test_inference_graph.py).
"""
from __future__ import annotations

import numpy as np


def _conv_weights(model, conv_name: str, bn_name: str | None):
    layer = model.get_layer(conv_name)
    w, b = (v.numpy() for v in (layer.kernel, layer.bias))
    if bn_name is not None:
        bn = model.get_layer(bn_name)
        s = bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
        w = w * s
        b = (b - bn.moving_mean.numpy()) * s + bn.beta.numpy()
    return w.astype(np.float32), b.astype(np.float32)


def _alpha(model, name: str):
    return model.get_layer(name).alpha.numpy().reshape(-1).astype(np.float32)


def subpixel_tail(w: np.ndarray, b: np.ndarray, block: int = 2):
    """A k x k convolution applied after depth_to_space(., block) as a convolution applied before it.

    w [k, k, C, O] (odd k), b [O] -> w' [k', k', block^2 C, block^2 O], b' [block^2 O] with
        conv(depth_to_space(p), w) + b == depth_to_space(conv(p, w') + b')   (SAME padding, exact).
    TF's depth_to_space puts channel (dy * block + dx) * C + c of pixel (i, j) at (block i + dy,
    block j + dx, c); output phase (a, b) of the result reads input phase (e, f) at offset o where
    block * o + e - a is the original tap.
    """
    k, _, c, o = w.shape
    r = k // 2
    span = (r + block - 1) // block  # largest |offset| in low-resolution pixels
    kk = 2 * span + 1
    out = np.zeros((kk, kk, block * block * c, block * block * o), w.dtype)
    for a in range(block):
        for bb in range(block):
            for e in range(block):
                for f in range(block):
                    for oy in range(-span, span + 1):
                        for ox in range(-span, span + 1):
                            ty, tx = block * oy + e - a + r, block * ox + f - bb + r
                            if 0 <= ty < k and 0 <= tx < k:
                                ci, co = (e * block + f) * c, (a * block + bb) * o
                                out[oy + span, ox + span, ci:ci + c, co:co + o] = w[ty, tx]
    return out, np.tile(b, block * block)


def inference_fn(model, cfg, dtype):
    """images float32 [N, H, W, 3] in [0, 1] -> float32 [N, 4H, 4W, 3], same as `model(x)`."""
    import tensorflow as tf

    m = cfg.model
    bn = (lambda name: name) if m.batch_norm else (lambda name: None)
    # numpy here, tf.constant inside the traced function: the weights become Const nodes of the graph
    # (captured tensors would be function inputs), which grappler folds and oneDNN caches reordered.
    head = _conv_weights(model, "head_conv", None) + (_alpha(model, "head_prelu"),)
    blocks = [_conv_weights(model, f"block{i}_conv1", bn(f"block{i}_bn1")) + (_alpha(model, f"block{i}_prelu"),)
              + _conv_weights(model, f"block{i}_conv2", bn(f"block{i}_bn2")) for i in range(1, m.num_blocks + 1)]
    body = _conv_weights(model, "body_conv", bn("body_bn"))
    stages = int(round(np.log2(m.scale)))
    ups = []
    for s in range(1, stages + 1):
        layer = model.get_layer(f"upsample{s}")
        # PReLU commutes with depth_to_space when each slope is repeated for the 4 sub-pixel phases.
        ups.append((layer.kernel.numpy(), layer.bias.numpy(), np.tile(_alpha(model, f"upsample{s}_prelu"), 4)))
    tail = subpixel_tail(*_conv_weights(model, "tail_conv", None))
    bicubic = model.get_layer("bicubic") if m.residual_bicubic else None

    def conv(x, w, b):
        return tf.nn.bias_add(tf.nn.conv2d(x, tf.constant(w, dtype), 1, "SAME"), tf.constant(b, dtype))

    def prelu(x, a):
        if 0.0 <= a.min() and a.max() <= 1.0:
            return tf.maximum(x, x * tf.constant(a, dtype))
        return tf.maximum(x, 0) + tf.constant(a, dtype) * tf.minimum(x, 0)

    def fn(images):
        x = tf.cast(images, dtype)
        x = h = prelu(conv(x, head[0], head[1]), head[2])
        for w1, b1, a, w2, b2 in blocks:
            x = conv(prelu(conv(x, w1, b1), a), w2, b2) + x  # Conv2D + BiasAdd + Add fuse
        x = conv(x, *body) + h
        for i, (w, b, a) in enumerate(ups):
            x = prelu(conv(x, w, b), a)
            if i < len(ups) - 1:
                x = tf.nn.depth_to_space(x, 2)
        y = tf.cast(tf.nn.depth_to_space(conv(x, *tail), 2), tf.float32)
        if bicubic is not None:
            return tf.clip_by_value(bicubic(images) + y, 0.0, 1.0)
        return tf.tanh(y) * 0.5 + 0.5

    return fn
