"""The benchmarked architecture: the SRGAN paper's SRResNet (16 residual blocks, 64 channels, x4),
from the `srgan-celeba` preset, and its multiply-add count computed from the network itself.

Shared by the TF inference and training benchmarks; the PyTorch twin (benchmarks/torch_srresnet.py)
is a separate re-implementation of the same layer list.
"""
from __future__ import annotations

BENCH_PRESET = "srgan-celeba"


def bench_config(**overrides):
    from config import preset

    return preset(BENCH_PRESET, overrides=overrides or None)


def conv_macs(fn, height: int, width: int) -> int:
    """Multiply-adds of every convolution `fn` (images [1, H, W, 3] -> images) runs on one H x W image,
    read from the traced graph's static shapes (so sub-pixel convolutions and any future layer count)."""
    import numpy as np
    import tensorflow as tf

    concrete = tf.function(fn).get_concrete_function(tf.TensorSpec([1, height, width, 3], tf.float32))
    total = 0
    for op in _all_ops(concrete.graph):
        if op.type in ("Conv2D", "_FusedConv2D"):
            out = op.outputs[0].shape.as_list()
            kh, kw, cin, cout = op.inputs[1].shape.as_list()
            total += int(np.prod(out[1:3])) * kh * kw * cin * cout
    return total


def _all_ops(graph):
    yield from graph.get_operations()
    for f in graph._functions.values():  # layers traced as nested functions
        yield from _all_ops(f.graph) if hasattr(f, "graph") else ()
