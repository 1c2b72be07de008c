"""A pushed SavedModel (contracts/signatures.py) as a function on uint8 images, and the configuration it
was trained with (stored in the SavedModel)."""
from __future__ import annotations

import logging
import os
from typing import Dict, List, Sequence

import numpy as np

from contracts import signatures
from contracts.serving_layout import SAVED_MODEL_FILE
from models import images

log = logging.getLogger(__name__)
_BATCH = 8  # images per `restore` call: bounds memory for large eval crops


class SavedModelRestorer:
    """A SavedModel of the models/export.py contract as a function: uint8 images -> uint8 images.

    Uses the `restore` signature (float batches); a model exported without it is called through
    `serving_default` on PNG bytes, which is the served path anyway.
    """

    def __init__(self, model_dir: str):
        import tensorflow as tf

        if not tf.io.gfile.exists(os.path.join(model_dir, SAVED_MODEL_FILE)):
            raise FileNotFoundError(f"no SavedModel ({SAVED_MODEL_FILE}) in {model_dir}")
        self.model_dir = model_dir
        self._loaded = tf.saved_model.load(model_dir)
        sigs = self._loaded.signatures
        self._float_fn = sigs.get(signatures.RESTORE)
        self._bytes_fn = sigs.get(signatures.SERVING)
        if self._float_fn is None and self._bytes_fn is None:
            raise ValueError(f"{model_dir} has neither a {signatures.RESTORE!r} nor a {signatures.SERVING!r} "
                             f"signature (contracts/signatures.py)")

    def __call__(self, batch: Sequence[np.ndarray]) -> List[np.ndarray]:
        out: List[np.ndarray | None] = [None] * len(batch)
        for idx in _group_by_shape(batch).values():  # one batch needs one shape
            for start in range(0, len(idx), _BATCH):
                part = idx[start:start + _BATCH]
                for i, y in zip(part, self._run([batch[i] for i in part]), strict=True):
                    out[i] = y
        return out

    def _run(self, chunk: List[np.ndarray]) -> List[np.ndarray]:
        import tensorflow as tf

        if self._float_fn is not None:
            x = tf.constant(np.stack([images.uint8_to_float(a) for a in chunk]))
            y = self._float_fn(**{signatures.IMAGES: x})[signatures.IMAGES].numpy()
            return [images.float_to_uint8(a) for a in y]
        pngs = tf.constant([images.encode_png(a) for a in chunk])
        res = self._bytes_fn(**{signatures.BYTES: pngs})
        return [images.read_rgb8(b) for b in res[signatures.BYTES].numpy()]


def _group_by_shape(batch: Sequence[np.ndarray]) -> Dict[tuple, List[int]]:
    groups: Dict[tuple, List[int]] = {}
    for i, a in enumerate(batch):
        groups.setdefault(a.shape, []).append(i)
    return groups


def stored_config(model_dir: str):
    """The configuration a SavedModel was trained with, read from its variables checkpoint (the
    `config_json` variable) without loading the graph. Raises ValueError when it carries none."""
    import json

    import tensorflow as tf

    from config import Config

    try:
        reader = tf.train.load_checkpoint(os.path.join(model_dir, "variables", "variables"))
        return Config.from_dict(json.loads(reader.get_tensor(signatures.CONFIG_CHECKPOINT_KEY)))
    except (tf.errors.OpError, ValueError, KeyError) as e:
        raise ValueError(f"{model_dir} carries no usable configuration ({e})") from None


def model_config(model_dir: str, fallback):
    """The configuration stored in the SavedModel (task, scale), with the caller's gate thresholds; the
    caller's configuration when the model carries none."""
    try:
        stored = stored_config(model_dir)
    except ValueError as e:
        log.warning("%s; using the command line's task/scale", e)
        return fallback
    return stored.override({f"eval.{k}": v for k, v in fallback.to_dict()["eval"].items()})
