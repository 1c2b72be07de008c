"""Clients for a served restoration model: gRPC (default), REST, or the SavedModel in-process.

All three offer `predict_encoded(list of encoded images) -> Prediction` (the `serving_default`
signature) and `restore_fn()`, the float-batch callable that `serving.tiling` drives, so one image
restoration routine (`restore_image`) covers remote and local inference, tiled or not.

Remote calls have a deadline (`timeout_s`) and are retried with exponential backoff (with jitter)
on UNAVAILABLE (server restarting, connection refused) and DEADLINE_EXCEEDED (predict is
idempotent). gRPC message limits are raised to `max_message_mb` on both sides of the channel.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import random
import time
import urllib.error
import urllib.request
from typing import Callable, List, NamedTuple

import grpc
import numpy as np

from contracts import signatures
from models import images
from serving import tiling
from serving.errors import ServingError
from serving.tensors import to_ndarray, to_tensor_proto

log = logging.getLogger("serving.client")

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_CODE_OF_HTTP = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
                 413: grpc.StatusCode.RESOURCE_EXHAUSTED, 429: grpc.StatusCode.RESOURCE_EXHAUSTED,
                 501: grpc.StatusCode.UNIMPLEMENTED, 503: grpc.StatusCode.UNAVAILABLE,
                 504: grpc.StatusCode.DEADLINE_EXCEEDED}


class Prediction(NamedTuple):
    images: List[bytes]  # encoded PNG outputs, one per input
    version: int | None  # model version that answered (None over REST: TF Serving does not say)


def with_retries(call: Callable, what: str, retries: int, backoff_s: float):
    """call() with up to `retries` retries on RETRYABLE ServingErrors, backing off exponentially."""
    for attempt in range(retries + 1):
        try:
            return call()
        except ServingError as e:
            if e.code not in RETRYABLE or attempt == retries:
                raise
            delay = backoff_s * (2 ** attempt) * random.uniform(0.5, 1.0)
            log.warning("%s: %s (%s); retry %d/%d in %.2f s", what, e.code.name, e.message, attempt + 1,
                        retries, delay)
            time.sleep(delay)


class _Remote:
    """Shared by the gRPC and REST clients: tiles travel as PNG through serving_default."""

    def restore_fn(self) -> tiling.RestoreFn:
        def fn(batch: np.ndarray) -> np.ndarray:
            pngs = [images.encode_png(images.float_to_uint8(t)) for t in batch]
            out = self.predict_encoded(pngs).images
            return np.stack([images.uint8_to_float(images.read_rgb8(b)) for b in out])
        return fn


class GrpcClient(_Remote):
    def __init__(self, target: str, model_name: str, *, version: int | None = None,
                 timeout_s: float = 60.0, retries: int = 3, backoff_s: float = 0.5, max_message_mb: int = 256):
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        limit = int(max_message_mb) * 1024 * 1024
        self.target, self.model_name, self.version = target, model_name, version
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", limit),
                                                              ("grpc.max_receive_message_length", limit)])
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _spec(self, spec, signature_name: str = "") -> None:
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = int(self.version)
        if signature_name:
            spec.signature_name = signature_name

    def _call(self, method, request, what: str):
        def once():
            try:
                return method(request, timeout=self.timeout_s)
            except grpc.RpcError as e:
                raise ServingError(e.code(), e.details() or str(e)) from None
        return with_retries(once, f"gRPC {what} to {self.target}", self.retries, self.backoff_s)

    def predict_encoded(self, encoded: List[bytes], signature_name: str = signatures.SERVING) -> Prediction:
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature_name)
        request.inputs[signatures.BYTES].CopyFrom(to_tensor_proto(list(encoded)))
        response = self._call(self._predict.Predict, request, "Predict")
        out = to_ndarray(response.outputs[signatures.BYTES])
        return Prediction([bytes(b) for b in out.reshape(-1)], response.model_spec.version.value)

    def predict_arrays(self, inputs: dict, signature_name: str = "") -> dict:
        """Any signature with numpy inputs (e.g. `restore` with float32 [N, H, W, 3])."""
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature_name)
        for k, v in inputs.items():
            request.inputs[k].CopyFrom(to_tensor_proto(v))
        response = self._call(self._predict.Predict, request, "Predict")
        return {k: to_ndarray(v) for k, v in response.outputs.items()}

    def status(self) -> List[tuple]:
        """[(version, state name, error message)] from ModelService.GetModelStatus."""
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        response = self._call(self._models.GetModelStatus, request, "GetModelStatus")
        state = get_model_status_pb2.ModelVersionStatus.State
        return [(s.version, state.Name(s.state), s.status.error_message) for s in response.model_version_status]

    def metadata(self):
        """The served model's SignatureDefMap (GetModelMetadata, field signature_def)."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._spec(request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._call(self._predict.GetModelMetadata, request, "GetModelMetadata")
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sig_map)
        return sig_map


class RestClient(_Remote):
    def __init__(self, base_url: str, model_name: str, *, version: int | None = None,
                 timeout_s: float = 60.0, retries: int = 3, backoff_s: float = 0.5):
        self.base_url = base_url.rstrip("/")
        if "://" not in self.base_url:
            self.base_url = "http://" + self.base_url
        self.model_name, self.version = model_name, version
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s

    def url(self, suffix: str = "") -> str:
        v = f"/versions/{int(self.version)}" if self.version is not None else ""
        return f"{self.base_url}/v1/models/{self.model_name}{v}{suffix}"

    def request(self, url: str, payload: dict | None = None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()

        def once():
            req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                try:
                    message = json.loads(e.read()).get("error", e.reason)
                except ValueError:
                    message = str(e.reason)
                raise ServingError(_CODE_OF_HTTP.get(e.code, grpc.StatusCode.UNKNOWN),
                                   f"HTTP {e.code}: {message}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                reason = getattr(e, "reason", e)
                if isinstance(reason, TimeoutError):
                    raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                       f"no answer within {self.timeout_s} s") from None
                raise ServingError(grpc.StatusCode.UNAVAILABLE, str(reason)) from None
        return with_retries(once, f"REST {url}", self.retries, self.backoff_s)

    def predict_encoded(self, encoded: List[bytes], signature_name: str = signatures.SERVING) -> Prediction:
        body = {"signature_name": signature_name,
                "instances": [{"b64": base64.b64encode(b).decode()} for b in encoded]}
        preds = self.request(self.url(":predict"), body)["predictions"]
        return Prediction([base64.b64decode(p[signatures.BYTES]["b64"]) for p in preds], None)

    def status(self) -> List[tuple]:
        st = self.request(self.url())["model_version_status"]
        return [(int(s["version"]), s["state"], s.get("status", {}).get("error_message", "")) for s in st]

    def metadata(self) -> dict:
        return self.request(self.url("/metadata"))


class LocalModel:
    """The SavedModel in-process (no server): a version directory, or a base holding versions (latest)."""

    def __init__(self, model_dir: str):
        import tensorflow as tf

        from contracts.serving_layout import resolve_model_dir

        path = resolve_model_dir(model_dir)
        if not path:
            raise FileNotFoundError(f"{model_dir} holds neither a SavedModel nor integer version directories")
        model_dir = self.path = path
        self.version = int(os.path.basename(model_dir)) if os.path.basename(model_dir).isdigit() else None
        self._model = tf.saved_model.load(model_dir)

    def predict_encoded(self, encoded: List[bytes], signature_name: str = signatures.SERVING) -> Prediction:
        import tensorflow as tf

        out = self._model.signatures[signature_name](**{signatures.BYTES: tf.constant(list(encoded), dtype=tf.string)})
        return Prediction([bytes(b) for b in out[signatures.BYTES].numpy()], self.version)

    def restore_fn(self) -> tiling.RestoreFn:
        import tensorflow as tf

        fn = self._model.signatures[signatures.RESTORE]
        return lambda batch: fn(**{signatures.IMAGES: tf.constant(batch, dtype=tf.float32)})[signatures.IMAGES].numpy()


def restore_image(rgb8: np.ndarray, backend, tile_size: int = 0, overlap: int = 16, batch: int = 4) -> np.ndarray:
    """Restore a uint8 RGB image with any backend (GrpcClient, RestClient, LocalModel), tiled when
    tile_size > 0; returns uint8 RGB (scale x larger for SR)."""
    out = tiling.restore_tiled(images.uint8_to_float(rgb8), backend.restore_fn(), tile_size, overlap, batch)
    return images.float_to_uint8(out)


def make_backend(cfg, *, local: str = "", server: str = "", rest: bool = False, model_name: str = "",
                 version: int | None = None, timeout_s: float | None = None, retries: int | None = None):
    """The backend the predict command asked for, with the configuration's defaults."""
    if local:
        return LocalModel(local)
    s = cfg.serving
    name = model_name or cfg.model_name
    timeout = s.timeout_s if timeout_s is None else timeout_s
    tries = s.retries if retries is None else retries
    if rest:
        return RestClient(server or f"localhost:{s.rest_port}", name, version=version, timeout_s=timeout,
                          retries=tries)
    return GrpcClient(server or f"localhost:{s.grpc_port}", name, version=version, timeout_s=timeout,
                      retries=tries, max_message_mb=s.max_message_mb)
