"""TF Serving's REST API over a ModelStore (the subset this product uses), on serving.http_server.

GET  /v1/models/<name>[/versions/<v>]              model status
GET  /v1/models/<name>[/versions/<v>]/metadata     signature defs
POST /v1/models/<name>[/versions/<v>]:predict      {"instances": [...]} (row) or {"inputs": ...} (columnar)
GET  <monitoring path>                             Prometheus metrics, when a monitoring config enables them

Binary values travel as {"b64": "..."} both ways (outputs whose name ends in `_bytes` are encoded so,
like TF Serving). Errors answer {"error": "..."} with TF Serving's HTTP status for the gRPC code.
Bodies are parsed by serving.json_tensors (cost in proportion to their size, depth bounded).
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Dict, Tuple

import grpc
import numpy as np
from google.protobuf import json_format

from serving import json_tensors
from serving.errors import ServingError, invalid, not_found
from serving.http_server import HttpServer, Request, Response
from serving.json_tensors import NumericArray
from serving.metrics import CONTENT_TYPE, METRICS
from serving.model_store import ModelStore
from serving.request_log import RequestRecord

_ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)"
                    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
                    r"(?:(?P<metadata>/metadata)|:(?P<verb>[a-z]+))?/?$")
_API = {"predict": "Predict", "metadata": "GetModelMetadata", "status": "GetModelStatus"}


# -- JSON <-> numpy --------------------------------------------------------------------------------

def _is_b64(v) -> bool:
    return isinstance(v, dict) and set(v) == {"b64"}


def _decode_b64(v):
    """Replace every {"b64": s} in a JSON value by the decoded bytes."""
    if _is_b64(v):
        if not isinstance(v["b64"], str):
            raise invalid("a {\"b64\": ...} value must be a base64 string")
        try:
            return base64.b64decode(v["b64"], validate=True)
        except (binascii.Error, ValueError) as e:
            raise invalid(f"invalid base64 in a {{\"b64\": ...}} value: {e}") from None
    if isinstance(v, list):
        return [_decode_b64(x) for x in v]
    return v


def _to_array(name: str, value, spec) -> np.ndarray:
    import tensorflow as tf

    if spec.dtype == tf.string and _contains(value, NumericArray):
        raise invalid(f"input {name!r} is DT_STRING: send encoded images as {{\"b64\": \"...\"}}, got numbers")
    if spec.dtype != tf.string:
        shape = _numeric_shape(value)
        if shape is not None and not json_tensors.compatible(shape, spec.shape):  # before any number is parsed
            raise invalid(f"input {name!r} has shape {list(shape)}, expected {spec.shape.as_list()} (None: any size)")
        value = json_tensors.materialize(value, spec.dtype.as_numpy_dtype, name)
    value = _decode_b64(value)
    try:
        if spec.dtype == tf.string:
            arr = np.array(value, dtype=object)
            flat = arr.reshape(-1)
            for i, x in enumerate(flat):
                if isinstance(x, str):
                    flat[i] = x.encode()
                elif not isinstance(x, bytes):
                    raise invalid(f"input {name!r} is DT_STRING: send encoded images as {{\"b64\": \"...\"}}, "
                                  f"got a {type(x).__name__}")
            return arr
        if _contains(value, (str, bytes)):
            raise invalid(f"input {name!r} is {spec.dtype.name}: expected numbers, got strings")
        return np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
    except ServingError:
        raise
    except (ValueError, TypeError) as e:
        raise invalid(f"input {name!r} is not a well-formed {spec.dtype.name} tensor (ragged or mixed lists?): "
                      f"{e}") from None


def _contains(v, types) -> bool:
    if isinstance(v, list):
        return any(_contains(x, types) for x in v)
    return isinstance(v, types)


def _numeric_shape(value):
    """The shape of a NumericArray, or of a list of equal-shaped ones (instances), else None."""
    if isinstance(value, NumericArray):
        return value.shape
    if isinstance(value, list) and value and all(isinstance(v, NumericArray) for v in value):
        shapes = {v.shape for v in value}
        return (len(value),) + value[0].shape if len(shapes) == 1 else None
    return None


def parse_predict_body(body: Dict[str, Any], specs) -> Tuple[Dict[str, np.ndarray], bool]:
    """{"instances": ...} or {"inputs": ...} -> (named numpy inputs, row_format)."""
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object with \"instances\" or \"inputs\"")
    if ("instances" in body) == ("inputs" in body):
        raise invalid("the request must have exactly one of \"instances\" (row format) or \"inputs\" (columnar)")
    names = sorted(specs)
    if "instances" in body:
        rows = body["instances"]
        if isinstance(rows, NumericArray):  # numbers all the way down: one input's whole batch
            if not rows.shape[0]:
                raise invalid("\"instances\" must be a non-empty list")
            if len(names) != 1:
                raise invalid(f"this signature has inputs {names}: each instance must be an object naming them")
            return {names[0]: _to_array(names[0], rows, specs[names[0]])}, True
        if not isinstance(rows, list) or not rows:
            raise invalid("\"instances\" must be a non-empty list")
        named = all(isinstance(r, dict) and not _is_b64(r) for r in rows)
        if named:
            keys = set(rows[0])
            if any(set(r) != keys for r in rows):
                raise invalid("every instance must name the same inputs")
            columns = {k: [r[k] for r in rows] for k in keys}
        elif len(names) == 1:
            columns = {names[0]: rows}
        else:
            raise invalid(f"this signature has inputs {names}: each instance must be an object naming them")
        return {k: _to_array(k, v, specs[k]) if k in specs else np.asarray([]) for k, v in columns.items()}, True
    inputs = body["inputs"]
    if isinstance(inputs, dict) and not _is_b64(inputs):
        columns = inputs
    elif len(names) == 1:
        columns = {names[0]: inputs}
    else:
        raise invalid(f"this signature has inputs {names}: \"inputs\" must be an object naming them")
    return {k: _to_array(k, v, specs[k]) if k in specs else np.asarray([]) for k, v in columns.items()}, False


def _json_value(name: str, arr: np.ndarray):
    if arr.dtype.kind in ("O", "S"):
        enc = (lambda b: {"b64": base64.b64encode(b).decode()}) if name.endswith("_bytes") else \
              (lambda b: b.decode("utf-8", "replace"))
        return np.vectorize(enc, otypes=[object])(arr).tolist() if arr.ndim else enc(arr.item())
    return arr.tolist()


def format_predict_response(outputs: Dict[str, np.ndarray], row_format: bool) -> Dict[str, Any]:
    if not row_format:
        if len(outputs) == 1:
            (name, arr), = outputs.items()
            return {"outputs": _json_value(name, arr)}
        return {"outputs": {k: _json_value(k, v) for k, v in outputs.items()}}
    values = {k: _json_value(k, v) for k, v in outputs.items()}
    n = len(next(iter(values.values())))
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{k: v[i] for k, v in values.items()} for i in range(n)]}


def status_json(statuses) -> Dict[str, Any]:
    return {"model_version_status": [
        {"version": str(s.version), "state": s.state,
         "status": {"error_code": "UNKNOWN" if s.error else "OK", "error_message": s.error}}
        for s in statuses]}


# -- HTTP ------------------------------------------------------------------------------------------

class RestApi:
    """The REST routes as a serving.http_server handler."""

    def __init__(self, store: ModelStore, metrics_path: str = ""):
        self.store, self.metrics_path = store, metrics_path

    def is_cheap(self, method: str, path: str) -> bool:
        return method == "GET"  # status, metadata, metrics: never queued behind predictions

    def handle(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        if self.metrics_path and path == self.metrics_path and request.method == "GET":
            return Response(200, METRICS.render().encode(), CONTENT_TYPE)
        m = _ROUTE.match(path)
        kind = "unknown"
        if m:
            kind = "metadata" if m["metadata"] else (m["verb"] or "status")
        with RequestRecord("rest", f"{request.method} {kind}", m["name"] if m else "-", _API.get(kind, kind)) as rec:
            if not m:
                raise not_found(f"malformed request path {request.path[:200]!r}: expected /v1/models/<name>"
                                "[/versions/<version>][/metadata|:predict]")
            if m["label"]:
                raise not_found(f"version label {m['label']!r} is not configured on this server")
            version = self._version(m["version"])
            if request.method == "GET" and kind == "status":
                payload = status_json(self.store.status(m["name"], version))
                rec.served(version if version is not None else "-")
            elif request.method == "GET" and kind == "metadata":
                servable = self.store.get(m["name"], version)
                rec.served(servable.version)
                payload = self._metadata(servable)
            elif request.method == "POST" and kind == "predict":
                payload = self._predict(m["name"], version, request.body, rec)
            elif kind in ("classify", "regress"):
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                   f"{kind} is not supported: these models have predict signatures only")
            else:
                raise not_found(f"{request.method} {path[:200]} is not a TF Serving REST endpoint")
            return Response(200, json_tensors.dumps(payload))
        return Response(rec.error.http_status, json_tensors.dumps({"error": rec.error.message}))

    @staticmethod
    def _version(text: str | None) -> int | None:
        if text is None:
            return None
        if not text.isdigit():
            raise invalid(f"model version must be an integer, got {text[:40]!r}")
        return int(text)

    @staticmethod
    def _metadata(servable) -> Dict[str, Any]:
        from tensorflow_serving.apis import get_model_metadata_pb2

        sig_map = get_model_metadata_pb2.SignatureDefMap()
        for k, v in servable.signature_defs.items():
            sig_map.signature_def[k].CopyFrom(v)
        return {"model_spec": {"name": servable.name, "signature_name": "", "version": str(servable.version)},
                "metadata": {"signature_def": json_format.MessageToDict(sig_map, preserving_proto_field_name=True)}}

    def _predict(self, name: str, version: int | None, raw: bytes, rec: RequestRecord) -> Dict[str, Any]:
        servable = self.store.get(name, version)
        rec.served(servable.version)
        body = json_tensors.loads(raw)
        signature_name = body.get("signature_name", "") if isinstance(body, dict) else ""
        if not isinstance(signature_name, str):
            raise invalid("\"signature_name\" must be a string")
        key = servable.signature_key(signature_name)
        rec.served(servable.version, key)
        inputs, row_format = parse_predict_body(body, servable.input_specs(key))
        return format_predict_response(servable.predict(key, inputs), row_format)


class RestServer(HttpServer):
    """TF Serving's REST API on an HttpServer; `stop()` finishes in-flight requests."""

    def __init__(self, store: ModelStore, address: Tuple[str, int], threads: int, max_message_bytes: int, *,
                 backlog: int, read_timeout_s: float, metrics_path: str = ""):
        self.api = RestApi(store, metrics_path)
        super().__init__(address[0], address[1], self.api.handle, self.api.is_cheap, threads=threads,
                         backlog=backlog, read_timeout_s=read_timeout_s, max_body_bytes=max_message_bytes)
