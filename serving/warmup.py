"""TF Serving's model warm-up: requests replayed when a version loads, before it is AVAILABLE.

`<version>/assets.extra/tf_serving_warmup_requests` is a TFRecord file of
tensorflow.serving.PredictionLog records (at most 1,000). As in TF Serving, each `predict_log`'s
request runs once through the version (validation, pixel budget and batching included), a record
that cannot be parsed or run fails the load (the version ends with that error, the previous one
keeps serving), and a version without the file loads without warm-up. The model name in the
recorded requests is not used: they run on the version being loaded.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Dict, Iterable, Tuple

import numpy as np

from serving.metrics import METRICS
from serving.tensors import to_ndarray, to_tensor_proto

log = logging.getLogger("serving.warmup")

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000


def replay(servable) -> int:
    """Run the version's warm-up requests; returns how many (0 without a warm-up file)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(servable.path, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return 0
    t0 = time.perf_counter()
    count = 0
    for record in tf.data.TFRecordDataset(path):
        count += 1
        if count > MAX_RECORDS:
            raise ValueError(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
        entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        kind = entry.WhichOneof("log_type")
        if kind != "predict_log":
            raise ValueError(f"Unsupported log_type for warmup: {kind} (record {count} of {path}); these models "
                             "have predict signatures only")
        request = entry.predict_log.request
        servable.predict(request.model_spec.signature_name,
                         {k: to_ndarray(v) for k, v in request.inputs.items()})
    seconds = time.perf_counter() - t0
    METRICS.warmup_seconds.set(seconds, servable.name, servable.version)
    METRICS.warmup_records.set(count, servable.name, servable.version)
    log.info("model %s version %d warmed up: %d requests in %.0f ms", servable.name, servable.version, count,
             seconds * 1000)
    return count


def write_requests(path: str, requests: Iterable[Tuple[str, Dict[str, np.ndarray]]], model_name: str = "") -> str:
    """Write (signature name, inputs) pairs as a warm-up file of PredictionLog records."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, inputs in requests:
            entry = prediction_log_pb2.PredictionLog()
            request = entry.predict_log.request
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature_name
            for k, v in inputs.items():
                request.inputs[k].CopyFrom(to_tensor_proto(v))
            writer.write(entry.SerializeToString())
    return path
