"""One log line per request, the same for gRPC and REST: protocol, method, model, version, status, latency."""
from __future__ import annotations

import logging
import time

import grpc

from serving.errors import ServingError

log = logging.getLogger("serving.requests")


class RequestRecord:
    """Times one request and logs it once; `error` is the ServingError to answer with, if any.

    with RequestRecord("grpc", "Predict", model) as rec:
        rec.version = servable.version
        ...
    Exceptions inside the block are turned into `rec.error` (unexpected ones into INTERNAL) and
    swallowed, so the caller answers the client from `rec.error` after the block.
    """

    def __init__(self, protocol: str, method: str, model: str = "-"):
        self.protocol, self.method, self.model = protocol, method, model or "-"
        self.version = "-"
        self.error: ServingError | None = None

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
        ms = (time.perf_counter() - self._t0) * 1000.0
        detail = f" error={self.error.message!r}" if self.error else ""
        log.info("%s %s model=%s version=%s status=%s latency_ms=%.1f%s", self.protocol, self.method,
                 self.model, self.version, status, ms, detail)
        return True
