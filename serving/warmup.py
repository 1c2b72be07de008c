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

from contracts.serving_layout import WARMUP_FILE
from models.warmup_requests import iter_requests
from serving.metrics import METRICS

log = logging.getLogger("serving.warmup")

MAX_RECORDS = 1000


def replay(servable) -> int:
    """Run the version's warm-up requests; returns how many (0 without a warm-up file)."""
    import tensorflow as tf

    path = os.path.join(servable.path, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return 0
    t0 = time.perf_counter()
    count = 0
    for signature, inputs in iter_requests(path):
        count += 1
        if count > MAX_RECORDS:
            raise ValueError(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
        servable.predict(signature, inputs)
    seconds = time.perf_counter() - t0
    METRICS.warmup_seconds.set(seconds, servable.name, servable.version)
    METRICS.warmup_records.set(count, servable.name, servable.version)
    log.info("model %s version %d warmed up: %d requests in %.0f ms", servable.name, servable.version, count,
             seconds * 1000)
    return count
