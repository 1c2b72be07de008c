"""TF Serving's REST API over a ModelStore (the subset this product uses), on a pooled HTTP server.

GET  /v1/models/<name>[/versions/<v>]              model status
GET  /v1/models/<name>[/versions/<v>]/metadata     signature defs
POST /v1/models/<name>[/versions/<v>]:predict      {"instances": [...]} (row) or {"inputs": ...} (columnar)

Binary values travel as {"b64": "..."} both ways (outputs whose name ends in `_bytes` are encoded so,
like TF Serving). Errors answer {"error": "..."} with TF Serving's HTTP status for the gRPC code.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Dict, Tuple

import grpc
import numpy as np
from google.protobuf import json_format

from serving.errors import ServingError, invalid, not_found
from serving.model_store import ModelStore
from serving.request_log import RequestRecord

_ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)"
                    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
                    r"(?:(?P<metadata>/metadata)|:(?P<verb>[a-z]+))?/?$")


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


def parse_predict_body(body: Dict[str, Any], specs) -> Tuple[Dict[str, np.ndarray], bool]:
    """{"instances": ...} or {"inputs": ...} -> (named numpy inputs, row_format)."""
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object with \"instances\" or \"inputs\"")
    if ("instances" in body) == ("inputs" in body):
        raise invalid("the request must have exactly one of \"instances\" (row format) or \"inputs\" (columnar)")
    names = sorted(specs)
    if "instances" in body:
        rows = body["instances"]
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

class _Handler(BaseHTTPRequestHandler):
    server: RestServer
    server_version = "gan-restoration-local-serving"

    def log_message(self, fmt, *args):  # one line per request comes from RequestRecord instead
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, http_method: str) -> None:
        m = _ROUTE.match(self.path.split("?", 1)[0])
        kind = "unknown"
        if m:
            kind = "metadata" if m["metadata"] else (m["verb"] or "status")
        with RequestRecord("rest", f"{http_method} {kind}", m["name"] if m else "-") as rec:
            if not m:
                raise not_found(f"malformed request path {self.path!r}: expected /v1/models/<name>"
                                "[/versions/<version>][/metadata|:predict]")
            if m["label"]:
                raise not_found(f"version label {m['label']!r} is not configured on this server")
            version = self._version(m["version"])
            rec.version = "-" if version is None else version
            if http_method == "GET" and kind in ("status", "metadata"):
                if kind == "status":
                    payload = status_json(self.server.store.status(m["name"], version))
                else:
                    servable = self.server.store.get(m["name"], version)
                    rec.version = servable.version
                    payload = self._metadata(servable)
            elif http_method == "POST" and kind == "predict":
                payload = self._predict(m["name"], version, rec)
            elif kind in ("classify", "regress"):
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                   f"{kind} is not supported: these models have predict signatures only")
            else:
                raise not_found(f"{http_method} {self.path} is not a TF Serving REST endpoint")
            self._send(200, payload)
        if rec.error is not None:
            self._send(rec.error.http_status, {"error": rec.error.message})

    @staticmethod
    def _version(text: str | None) -> int | None:
        if text is None:
            return None
        if not text.isdigit():
            raise invalid(f"model version must be an integer, got {text!r}")
        return int(text)

    def _metadata(self, servable) -> Dict[str, Any]:
        from tensorflow_serving.apis import get_model_metadata_pb2

        sig_map = get_model_metadata_pb2.SignatureDefMap()
        for k, v in servable.signature_defs.items():
            sig_map.signature_def[k].CopyFrom(v)
        return {"model_spec": {"name": servable.name, "signature_name": "", "version": str(servable.version)},
                "metadata": {"signature_def": json_format.MessageToDict(sig_map, preserving_proto_field_name=True)}}

    def _predict(self, name: str, version: int | None, rec: RequestRecord) -> Dict[str, Any]:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise invalid("Content-Length is required")
        if int(length) > self.server.max_message_bytes:
            self._discard_body(int(length))
            raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                               f"request body of {length} bytes is over this server's limit of "
                               f"{self.server.max_message_bytes} bytes", http_status=413)
        raw = self.rfile.read(int(length))
        servable = self.server.store.get(name, version)
        rec.version = servable.version
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise invalid(f"the request body is not valid JSON: {e}") from None
        signature_name = body.get("signature_name", "") if isinstance(body, dict) else ""
        specs = servable.input_specs(signature_name)
        inputs, row_format = parse_predict_body(body, specs)
        outputs = servable.predict(signature_name, inputs)
        return format_predict_response(outputs, row_format)

    def _discard_body(self, length: int) -> None:
        """Read and drop a refused body (bounded) so the client sees the answer, not a reset."""
        self.close_connection = True
        left = min(length, 2 * self.server.max_message_bytes)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)

    def _send(self, status: int, payload: Dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away; nothing to answer


class RestServer(HTTPServer):
    """HTTPServer that hands requests to a bounded thread pool; `stop()` finishes in-flight requests."""

    daemon_threads = False
    allow_reuse_address = True

    def __init__(self, store: ModelStore, address: Tuple[str, int], threads: int, max_message_bytes: int):
        super().__init__(address, _Handler)
        self.store = store
        self.max_message_bytes = max_message_bytes
        self.pool = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rest")
        self._thread: threading.Thread | None = None

    def process_request(self, request, client_address):
        self.pool.submit(self._process, request, client_address)

    def _process(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="rest-accept", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()  # stop accepting
        self.pool.shutdown(wait=True)  # finish what was accepted
        self.server_close()
