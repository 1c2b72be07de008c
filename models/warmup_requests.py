"""TF Serving's warm-up file of an exported model (contracts/serving_layout.py `WARMUP_FILE`): a TFRecord
of `tensorflow_serving.apis.prediction_log_pb2.PredictionLog` records, one PredictRequest for each
signature, which TF Serving replays after loading a version and before reporting it AVAILABLE, so the
first client request does not pay for graph optimisation, oneDNN primitive creation or (on a GPU)
CUDA/cuDNN set-up. The inputs are small and image-like: a WARMUP_EDGE x WARMUP_EDGE picture (smooth
colours, edges, fine texture and a little noise), as PNG for `serving_default` and as floats for `restore`.
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, Iterator, List, Tuple

import numpy as np

from contracts import signatures
from contracts.serving_layout import WARMUP_FILE
from models import images

WARMUP_EDGE = 128  # a thumbnail, and the size the serving benchmark sends


def warmup_image(edge: int = WARMUP_EDGE, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 RGB picture with what photographs have: gradients, edges, texture, noise."""
    y, x = np.mgrid[0:edge, 0:edge].astype(np.float64) / edge
    disc = ((x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.06).astype(np.float64)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * 12 * (x + 0.3 * y))
    rgb = np.stack([0.2 + 0.6 * x + 0.2 * disc, 0.3 + 0.4 * y * stripes, 0.7 - 0.5 * x * y + 0.1 * stripes], axis=-1)
    rgb += np.random.default_rng(seed).normal(0.0, 0.02, rgb.shape)
    return images.float_to_uint8(np.clip(rgb, 0.0, 1.0))


def warmup_inputs(edge: int = WARMUP_EDGE) -> Dict[str, Dict[str, np.ndarray]]:
    """signature name -> its inputs, for both signatures of contracts/signatures.py."""
    rgb = warmup_image(edge)
    return {signatures.SERVING: {signatures.BYTES: np.array([images.encode_png(rgb)], dtype=object)},
            signatures.RESTORE: {signatures.IMAGES: images.uint8_to_float(rgb)[None]}}


def write_requests(path: str, requests: Iterable[Tuple[str, Dict[str, np.ndarray]]], model_name: str = "") -> str:
    """Write (signature name, inputs) pairs as a warm-up file of PredictionLog records; returns `path`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in requests:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def write_warmup_file(export_dir: str, model_name: str, edge: int = WARMUP_EDGE) -> str:
    """Write the warm-up records into an exported SavedModel; returns the file's path."""
    return write_requests(os.path.join(export_dir, WARMUP_FILE), warmup_inputs(edge).items(), model_name)


def iter_requests(path: str) -> Iterator[Tuple[str, Dict[str, np.ndarray]]]:
    """(signature name, inputs) of each record of a warm-up file, in file order. A record that is not a
    PredictLog raises ValueError (these models have predict signatures only)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    for i, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        kind = log.WhichOneof("log_type")
        if kind != "predict_log":
            raise ValueError(f"Unsupported log_type for warmup: {kind} (record {i + 1} of {path}); these models "
                             "have predict signatures only")
        request = log.predict_log.request
        yield (request.model_spec.signature_name or signatures.SERVING,
               {k: tf.make_ndarray(v) for k, v in request.inputs.items()})


def read_warmup_requests(export_dir: str) -> List[Tuple[str, Dict[str, np.ndarray]]]:
    """The warm-up requests of an exported model ([] when it has no warm-up file)."""
    import tensorflow as tf

    path = os.path.join(export_dir, WARMUP_FILE)
    return list(iter_requests(path)) if tf.io.gfile.exists(path) else []
