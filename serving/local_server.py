"""A TF Serving-compatible server for machines that cannot run TF Serving.

It serves the same model base directory (`<base>/<model name>/<version>/`) with the same APIs and
the official protos: gRPC PredictionService (Predict, GetModelMetadata) and ModelService
(GetModelStatus) on one port, TF Serving's REST API on another. New versions are picked up by
polling (see model_store.py) and warmed up before they serve (warmup.py); requests run on bounded
thread pools, hold their input pixels from one budget (pixel_budget.py) and, with batching on, are
batched as TF Serving batches them (batching.py); the REST port also serves Prometheus metrics when a
monitoring config enables them (metrics.py); SIGTERM/SIGINT stop accepting new requests and let
in-flight ones finish (up to `serving.shutdown_grace_s`).

It is a stand-in with the same contract, not a replacement: no GPU scheduling. Production runs the
official image with the files in serving/deploy/.
"""
from __future__ import annotations

import logging
import signal
import threading
from typing import List

from serving.grpc_service import build_grpc_server
from serving.model_store import ModelSource, ModelStore
from serving.pixel_budget import PixelBudget
from serving.rest_api import RestServer

log = logging.getLogger("serving.local_server")


class LocalServer:
    ANY_PORT = -1  # rest_port: a free port the system chooses (0 disables REST, as in TF Serving)

    def __init__(self, *, max_pixels: int, max_message_mb: int, model_base: str = "",
                 sources: List[ModelSource] | None = None, host: str = "0.0.0.0", grpc_port: int = 8500,
                 rest_port: int = 8501, threads: int = 8, poll_seconds: float = 1.0,
                 shutdown_grace_s: float = 30.0, max_concurrent_pixels: int = 16_000_000,
                 rest_read_timeout_s: float = 30.0, rest_backlog: int = 1024, batching=None,
                 warmup: bool = True, metrics_path: str = ""):
        """`batching`: BatchingParameters (None: off); `metrics_path`: where REST serves Prometheus
        metrics ("" : nowhere, as TF Serving without a monitoring config)."""
        self.budget = PixelBudget(max_concurrent_pixels)
        self.store = ModelStore(max_pixels, sources=sources, model_base=model_base, poll_seconds=poll_seconds,
                                budget=self.budget, batching=batching, warmup=warmup)
        self.rest_read_timeout_s, self.rest_backlog, self.metrics_path = rest_read_timeout_s, rest_backlog, metrics_path
        self.host, self.grpc_port, self.rest_port = host, grpc_port, rest_port
        self.threads = threads
        self.max_message_bytes = int(max_message_mb) * 1024 * 1024
        self.shutdown_grace_s = shutdown_grace_s
        self._grpc = None
        self._rest = None
        self._stopped = threading.Event()

    @classmethod
    def from_config(cls, cfg, **kwargs) -> LocalServer:
        s = cfg.serving
        defaults = dict(max_pixels=s.max_pixels, max_message_mb=s.max_message_mb, grpc_port=s.grpc_port,
                        rest_port=s.rest_port, threads=s.server_threads, poll_seconds=s.poll_seconds,
                        shutdown_grace_s=s.shutdown_grace_s, max_concurrent_pixels=s.max_concurrent_pixels,
                        rest_read_timeout_s=s.rest_read_timeout_s, rest_backlog=s.rest_backlog)
        defaults.update({k: v for k, v in kwargs.items() if v is not None})
        return cls(**defaults)

    def start(self) -> None:
        self.store.start()  # models present now are loaded before the ports open
        self._grpc, self.grpc_port = build_grpc_server(self.store, f"{self.host}:{self.grpc_port}", self.threads,
                                                       self.max_message_bytes)
        self._grpc.start()
        if self.rest_port:
            port = 0 if self.rest_port == self.ANY_PORT else self.rest_port
            self._rest = RestServer(self.store, (self.host, port), self.threads, self.max_message_bytes,
                                    backlog=self.rest_backlog, read_timeout_s=self.rest_read_timeout_s,
                                    metrics_path=self.metrics_path)
            self.rest_port = self._rest.server_address[1]
            self._rest.start()
        log.info("serving models %s: gRPC on %s:%d, REST on %s", self.store.model_names(), self.host,
                 self.grpc_port, f"{self.host}:{self.rest_port}" if self.rest_port else "off")
        if self.metrics_path and self.rest_port:
            log.info("Prometheus metrics on REST at %s", self.metrics_path)

    def stop(self) -> None:
        """Stop accepting, finish in-flight requests, then stop polling."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("shutting down: finishing in-flight requests (grace %.0f s)", self.shutdown_grace_s)
        done = self._grpc.stop(self.shutdown_grace_s) if self._grpc else None
        if self._rest is not None:
            self._rest.stop()
        if done is not None:
            done.wait()
        self.store.stop()
        log.info("stopped")

    def serve_until_signalled(self) -> None:
        """Run until SIGTERM or SIGINT (main thread only), then shut down gracefully."""
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            stop.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()
