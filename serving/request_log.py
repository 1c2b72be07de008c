"""One log line and one set of metrics per request, the same for gRPC and REST: protocol, method, model,
version, signature, status, latency."""
from __future__ import annotations

import logging
import time

import grpc

from serving.errors import ServingError
from serving.metrics import METRICS, UNKNOWN

log = logging.getLogger("serving.requests")


class RequestRecord:
    """Times one request, logs it once and counts it; `error` is the ServingError to answer with, if any.

    with RequestRecord("grpc", "Predict", model) as rec:
        servable = store.get(model)
        rec.served(servable.version, signature_key)
        ...
    Exceptions inside the block are turned into `rec.error` (unexpected ones into INTERNAL) and
    swallowed, so the caller answers the client from `rec.error` after the block. Metrics label a
    request by its model and signature once `served` says they exist (before that: "_unknown").
    """

    def __init__(self, protocol: str, method: str, model: str = "-", api: str = ""):
        self.protocol, self.method, self.model = protocol, method, model or "-"
        self.api = api or method
        self.version = "-"
        self.signature = "-"
        self.known = False
        self.error: ServingError | None = None

    def served(self, version, signature: str = "-") -> None:
        """The model (and the signature, if any) exist on this server."""
        self.version, self.signature, self.known = version, signature, True

    def __enter__(self) -> RequestRecord:
        self._t0 = time.perf_counter()
        log.debug("%s %s model=%s started", self.protocol, self.method, self.model)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None and not isinstance(exc, Exception):
            return False  # KeyboardInterrupt / SystemExit pass through
        if exc is not None:
            if isinstance(exc, ServingError):
                self.error = exc
            else:
                log.exception("unexpected error in %s %s", self.protocol, self.method, exc_info=exc)
                self.error = ServingError(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        status = self.error.code.name if self.error else "OK"
        seconds = time.perf_counter() - self._t0
        detail = f" error={self.error.message!r}" if self.error else ""
        signature = f" signature={self.signature}" if self.signature != "-" else ""
        log.info("%s %s model=%s version=%s status=%s latency_ms=%.1f%s%s", self.protocol, self.method,
                 self.model, self.version, status, seconds * 1000.0, signature, detail)
        METRICS.request_done(self.model if self.known else UNKNOWN, self.signature if self.known else UNKNOWN,
                             self.api, self.protocol, status, seconds)
        return True
