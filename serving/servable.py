"""One loaded model version: its signatures, request validation and the call itself.

Validation happens before anything heavy runs, so a bad request costs little and never disturbs the
server: unknown signature (NOT_FOUND), missing/unexpected inputs, wrong dtype or shape, empty,
non-image, truncated or oversized encoded images, non-finite float pixels (INVALID_ARGUMENT). Encoded
images are checked from their header (size) and chunk structure (PIL `verify`, no pixel decoding)
before TensorFlow decodes them; anything that still fails to decode inside the graph is reported as
INVALID_ARGUMENT too. A valid request then holds its input pixels from the server's pixel budget
(serving/pixel_budget.py) and runs directly or through the version's batch scheduler
(serving/batching.py).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
from typing import Dict, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from contracts import signatures
from serving.errors import ServingError, invalid, not_found

DEFAULT_SIGNATURE = signatures.SERVING
_INIT_OP = "__saved_model_init_op"


def read_signature_defs(export_dir: str) -> Dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the serving meta graph, exactly as stored (what TF Serving reports)."""
    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    graphs = [g for g in sm.meta_graphs if "serve" in g.meta_info_def.tags] or list(sm.meta_graphs)
    return {k: v for k, v in graphs[0].signature_def.items() if k != _INIT_OP}


def check_encoded_image(data: bytes, where: str, max_pixels: int) -> int:
    """Reject empty, non-image, structurally broken or too large encoded images without decoding pixels;
    returns the image's pixel count."""
    from PIL import Image

    if not data:
        raise invalid(f"{where} is empty (expected encoded PNG/JPEG bytes)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise invalid(f"{where} is {w}x{h} = {w * h} pixels, over this server's limit of {max_pixels} "
                              "(use tiled inference for large images)")
            im.verify()  # walks the chunks (CRCs for PNG): catches truncated files cheaply
        return w * h
    except ServingError:
        raise
    except Image.DecompressionBombError as e:
        raise invalid(f"{where}: {e}") from None
    except Image.UnidentifiedImageError:
        raise invalid(f"{where} is not an image in a format this model decodes (PNG, JPEG, BMP, GIF)") from None
    except Exception as e:  # PIL raises a zoo of types for garbage input
        raise invalid(f"{where} is a damaged or truncated image ({type(e).__name__}: {e})") from None


def _clean_tf_message(msg: str) -> str:
    """The line that says what went wrong, without TF's node names, stack of definitions and op names."""
    msg = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", msg or "").split("[[", 1)[0]
    lines = [line.strip() for line in msg.splitlines() if line.strip()]
    return lines[-1] if lines else "error in the graph"


class Servable:
    """A SavedModel version loaded for serving; `budget` (a PixelBudget) and `batching`
    (BatchingParameters) are the server's, None when off."""

    def __init__(self, name: str, version: int, path: str, max_pixels: int, budget=None, batching=None):
        self.name = name
        self.version = int(version)
        self.path = path
        self.max_pixels = int(max_pixels)
        self.budget = budget
        self.signature_defs = read_signature_defs(path)
        self._model = tf.saved_model.load(path)
        self._functions = dict(self._model.signatures)
        self._inputs = {k: fn.structured_input_signature[1] for k, fn in self._functions.items()}
        self._batcher = None
        if batching is not None:
            from serving.batching import BatchScheduler

            self._batcher = BatchScheduler(batching, name)

    def close(self) -> None:
        """Unloading: let queued batches run, end the batch threads."""
        if self._batcher is not None:
            self._batcher.stop()

    def signature_key(self, signature_name: str) -> str:
        key = signature_name or DEFAULT_SIGNATURE
        if key not in self._functions:
            raise not_found(f"signature {key!r} not found in model {self.name!r} version {self.version}; "
                            f"available: {sorted(self._functions)}")
        return key

    def input_specs(self, signature_name: str) -> Dict[str, tf.TensorSpec]:
        return self._inputs[self.signature_key(signature_name)]

    def predict(self, signature_name: str, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        key = self.signature_key(signature_name)
        specs = self._inputs[key]
        missing = sorted(set(specs) - set(inputs))
        extra = sorted(set(inputs) - set(specs))
        if missing or extra:
            raise invalid(f"signature {key!r} expects inputs {sorted(specs)}; "
                          f"missing {missing}, unexpected {extra}")
        feed, pixels = {}, 0
        for name, spec in specs.items():
            feed[name], n = self._validated(key, name, spec, inputs[name])
            pixels = max(pixels, n)
        held = self.budget.hold(pixels, self.name) if self.budget is not None and pixels else contextlib.nullcontext()
        with held:
            if self._batcher is not None:
                return self._batcher.run(key, lambda batch: self._call(key, batch), feed)
            return self._call(key, feed)

    def _call(self, key: str, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        specs = self._inputs[key]
        try:
            outputs = self._functions[key](**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in feed.items()})
        except tf.errors.InvalidArgumentError as e:
            raise invalid(f"{key}: {_clean_tf_message(e.message)}") from None
        except tf.errors.ResourceExhaustedError as e:
            raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, _clean_tf_message(e.message)) from None
        return {k: v.numpy() for k, v in outputs.items()}

    def _validated(self, signature: str, name: str, spec: tf.TensorSpec, value: np.ndarray) -> Tuple[np.ndarray, int]:
        """(the input as numpy, its pixel count: encoded images' sizes, or N*H*W of a float batch)."""
        value = np.asarray(value)
        where = f"{signature}: input {name!r}"
        if spec.dtype == tf.string:
            if value.dtype.kind not in ("O", "S"):
                raise invalid(f"{where} must be DT_STRING (encoded image bytes), got {value.dtype}")
        else:
            if value.dtype != spec.dtype.as_numpy_dtype:
                raise invalid(f"{where} must be {spec.dtype.name}, got {value.dtype}")
        if not spec.shape.is_compatible_with(value.shape):
            raise invalid(f"{where} has shape {list(value.shape)}, expected {spec.shape.as_list()} "
                          "(None: any size)")
        if value.size == 0:
            raise invalid(f"{where} is an empty batch")
        pixels = 0
        if spec.dtype == tf.string and name.endswith("_bytes"):
            for i, item in enumerate(value.reshape(-1)):
                pixels += check_encoded_image(item if isinstance(item, bytes) else bytes(item), f"{name}[{i}]",
                                              self.max_pixels)
        elif value.ndim == 4:
            if value.shape[1] * value.shape[2] > self.max_pixels:
                raise invalid(f"{where} is {value.shape[2]}x{value.shape[1]} pixels per image, over this server's "
                              f"limit of {self.max_pixels}")
            pixels = value.shape[0] * value.shape[1] * value.shape[2]
        if value.dtype.kind == "f":
            bad = value.size - int(np.count_nonzero(np.isfinite(value)))
            if bad:
                raise invalid(f"{where} holds {bad} non-finite values (NaN or Infinity); pixels are numbers in "
                              "[0, 1]")
        return value, pixels
