"""The environment TensorFlow is imported with, by every process of the product (the command line, Beam's
workers, which inherit it, the Kubeflow entrypoint, the tests). TensorFlow reads it at import.

- TF_USE_LEGACY_KERAS=1: tf_keras is this stack's Keras (docs/stack.md).
- TF_ENABLE_ONEDNN_OPTS=1: TF 2.16 turns its oneDNN kernels on by default only on CPUs with AVX512-VNNI,
  AVX512-BF16 or AMX; on an AVX2 machine they are off, and measured on one (AMD Zen 3, 2 cores) they
  make an SRResNet 16x64 training step 2.1x faster (4.73 -> 2.30 s, batch 16, 96x96 HR) and inference
  about as much (docs/benchmarks.md). Already on where TF would turn them on anyway.
An explicit setting in the environment wins.
"""
from __future__ import annotations

import os

TF_ENVIRONMENT = {"TF_USE_LEGACY_KERAS": "1", "TF_ENABLE_ONEDNN_OPTS": "1"}


def apply() -> None:
    for key, value in TF_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
