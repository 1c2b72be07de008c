"""The server's metrics in Prometheus' text format, on the REST port like TF Serving's
`--monitoring_config_file` (prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }).

TF Serving's own series keep their names and labels, so one dashboard reads both servers:
`:tensorflow:serving:request_count{model_name,status}` and the `:tensorflow:serving:request_latency`
histogram (microseconds, TF Serving's buckets 10 * 1.8^i, labels model_name, API, entrypoint).
This server adds, per model and signature: `gan_restore_requests_total`,
`gan_restore_request_errors_total`, the `gan_restore_request_latency_seconds` histogram, and its own
gauges (the pixel budget, batching, warm-up).

Label values come from served models and signatures only: a request naming an unknown model or
signature is counted under "_unknown", so no client can grow the series without bound.
"""
from __future__ import annotations

import threading
from typing import Dict, Sequence, Tuple

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_PATH = "/monitoring/prometheus/metrics"  # TF Serving's PrometheusExporter::kPrometheusPath
UNKNOWN = "_unknown"
TFS_LATENCY_BUCKETS_US = tuple(10 * 1.8 ** i for i in range(33))  # TF Serving's request_latency buckets
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)] + ([extra] if extra else [])
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(v: float) -> str:
    return repr(float(v)) if v != int(v) or abs(v) >= 1e15 else str(int(v))


class _Metric:
    kind = ""

    def __init__(self, registry: Registry, name: str, help_text: str, labels: Sequence[str] = ()):
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self._lock = registry.lock
        self._values: Dict[Tuple[str, ...], object] = {}
        registry.metrics.append(self)

    def _key(self, labels) -> Tuple[str, ...]:
        if len(labels) != len(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {labels}")
        return tuple(str(v) for v in labels)

    def render(self):
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for key, value in sorted(self._values.items()):
            yield from self._lines(key, value)

    def _lines(self, key, value):
        yield f"{self.name}{_labels(self.label_names, key)} {_number(value)}"


class Counter(_Metric):
    kind = "counter"

    def inc(self, *labels, by: float = 1.0) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + by


class Gauge(_Metric):
    kind = "gauge"

    def set(self, value: float, *labels) -> None:
        with self._lock:
            self._values[self._key(labels)] = float(value)

    def add(self, by: float, *labels) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + by


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, registry, name, help_text, labels=(), buckets: Sequence[float] = LATENCY_BUCKETS_S):
        super().__init__(registry, name, help_text, labels)
        self.buckets = tuple(buckets)

    def observe(self, value: float, *labels) -> None:
        key = self._key(labels)
        with self._lock:
            counts = self._values.setdefault(key, [0] * (len(self.buckets) + 2) + [0.0])
            i = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
            counts[i] += 1
            counts[-2] += 1  # count
            counts[-1] += value  # sum

    def _lines(self, key, counts):
        cumulative = 0
        for limit, n in zip(self.buckets + (float("inf"),), counts[:-2], strict=True):
            cumulative += n
            le = 'le="%s"' % ("+Inf" if limit == float("inf") else f"{limit:.6g}")
            yield f"{self.name}_bucket{_labels(self.label_names, key, le)} {cumulative}"
        yield f"{self.name}_sum{_labels(self.label_names, key)} {_number(counts[-1])}"
        yield f"{self.name}_count{_labels(self.label_names, key)} {counts[-2]}"


class Registry:
    def __init__(self):
        self.lock = threading.Lock()
        self.metrics = []

    def render(self) -> str:
        with self.lock:
            return "\n".join(line for m in self.metrics for line in m.render()) + "\n"


class ServerMetrics(Registry):
    """The series this server exports (one instance per process: `METRICS`)."""

    def __init__(self):
        super().__init__()
        self.tfs_requests = Counter(self, ":tensorflow:serving:request_count", "The total number of requests.",
                                    ("model_name", "status"))
        self.tfs_latency = Histogram(
            self, ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ("model_name", "API", "entrypoint"), TFS_LATENCY_BUCKETS_US)
        labels = ("model", "signature", "method", "protocol")
        self.requests = Counter(self, "gan_restore_requests_total", "Requests answered, by status (gRPC code).",
                                labels + ("status",))
        self.errors = Counter(self, "gan_restore_request_errors_total", "Requests answered with an error.",
                              labels + ("code",))
        self.latency = Histogram(self, "gan_restore_request_latency_seconds",
                                 "Wall time from a request's arrival to its answer.", labels)
        self.pixel_budget = Gauge(self, "gan_restore_pixel_budget",
                                  "serving.max_concurrent_pixels: input pixels allowed in flight at once.")
        self.pixels_in_flight = Gauge(self, "gan_restore_pixels_in_flight", "Input pixels being restored now.")
        self.pixels_in_flight_max = Gauge(self, "gan_restore_pixels_in_flight_max",
                                          "The most input pixels ever in flight at once.")
        self.waiting = Gauge(self, "gan_restore_requests_waiting_for_pixels",
                             "Requests queued for the pixel budget now.")
        self.waited = Counter(self, "gan_restore_pixel_waits_total",
                              "Requests that had to queue for the pixel budget.", ("model",))
        self.wait_seconds = Histogram(self, "gan_restore_pixel_wait_seconds",
                                      "Time requests queued for the pixel budget.", ("model",))
        self.batch_size = Histogram(self, "gan_restore_batch_size", "Batch sizes the batcher ran (padding included).",
                                    ("model", "signature"), BATCH_BUCKETS)
        self.batch_shape_splits = Counter(
            self, "gan_restore_batching_shape_splits_total",
            "Requests batched apart from queued ones of another shape (TF Serving fails such a batch).",
            ("model", "signature"))
        self.warmup_seconds = Gauge(self, "gan_restore_model_warmup_seconds",
                                    "Wall time of the last warm-up replay.", ("model", "version"))
        self.warmup_records = Gauge(self, "gan_restore_model_warmup_records",
                                    "Warm-up records replayed at the last load.", ("model", "version"))

    def request_done(self, model: str, signature: str, method: str, protocol: str, code: str, seconds: float):
        self.tfs_requests.inc(model, code)
        self.tfs_latency.observe(seconds * 1e6, model, method, protocol.upper())
        self.requests.inc(model, signature, method, protocol, code)
        if code != "OK":
            self.errors.inc(model, signature, method, protocol, code)
        self.latency.observe(seconds, model, signature, method, protocol)


METRICS = ServerMetrics()


def prometheus_path(monitoring_config_file: str) -> str:
    """Where a TF Serving --monitoring_config_file puts the metrics ("" when it does not enable them)."""
    from serving.tfs_protos import parse_text_file

    prometheus = parse_text_file(monitoring_config_file, "MonitoringConfig").prometheus_config
    return (prometheus.path or DEFAULT_PATH) if prometheus.enable else ""
