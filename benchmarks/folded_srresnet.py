"""An inference-only graph of a trained SRResNet: batch norm folded into the convolutions, written
with raw ops in the order TF's oneDNN remapper fuses (Conv2D + BiasAdd [+ Add]), optionally in
bfloat16 end to end (weights cast once, not per call as a Keras mixed policy does).

Same numbers as the Keras model in float32 (up to rounding): the folding is exact algebra,
    BN(conv(x, W) + b) = conv(x, W * s) + (b - mean) * s + beta,   s = gamma / sqrt(var + eps).
Used by the inference benchmark to measure what fusion and precision buy; not part of the product.
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


def inference_fn(model, cfg, dtype):
    """images float32 [N, H, W, 3] in [0, 1] -> float32 [N, 4H, 4W, 3], same as `model(x)`."""
    import tensorflow as tf

    m = cfg.model
    if m.residual_bicubic:
        raise ValueError("the folded benchmark graph covers the paper's SRResNet (tanh output), not residual_bicubic")
    bn = (lambda name: name) if m.batch_norm else (lambda name: None)

    # numpy here, tf.constant inside the traced function: the weights become Const nodes of the graph
    # (captured tensors would be function inputs), which grappler folds and oneDNN caches reordered.
    def const(a):
        return a

    head = tuple(map(const, _conv_weights(model, "head_conv", None))) + (const(_alpha(model, "head_prelu")),)
    blocks = []
    for i in range(1, m.num_blocks + 1):
        w1, b1 = _conv_weights(model, f"block{i}_conv1", bn(f"block{i}_bn1"))
        w2, b2 = _conv_weights(model, f"block{i}_conv2", bn(f"block{i}_bn2"))
        blocks.append((const(w1), const(b1), const(_alpha(model, f"block{i}_prelu")), const(w2), const(b2)))
    body = tuple(map(const, _conv_weights(model, "body_conv", bn("body_bn"))))
    ups = []
    stages = int(round(np.log2(m.scale)))
    for s in range(1, stages + 1):
        layer = model.get_layer(f"upsample{s}")
        ups.append((const(layer.kernel.numpy()), const(layer.bias.numpy()), const(_alpha(model, f"upsample{s}_prelu"))))
    tail = tuple(map(const, _conv_weights(model, "tail_conv", None)))

    def conv(x, w, b):
        return tf.nn.bias_add(tf.nn.conv2d(x, tf.constant(w, dtype), 1, "SAME"), tf.constant(b, dtype))

    def prelu(x, a):
        return tf.maximum(x, 0) + tf.constant(a, dtype) * tf.minimum(x, 0)

    def fn(images):
        x = tf.cast(images, dtype)
        x = h = prelu(conv(x, head[0], head[1]), head[2])
        for w1, b1, a, w2, b2 in blocks:
            x = conv(prelu(conv(x, w1, b1), a), w2, b2) + x  # Conv2D + BiasAdd + Add fuse
        x = conv(x, *body) + h
        for w, b, a in ups:
            x = prelu(tf.nn.depth_to_space(conv(x, w, b), 2), a)
        y = conv(x, *tail)
        return tf.tanh(tf.cast(y, tf.float32)) * 0.5 + 0.5

    return fn
