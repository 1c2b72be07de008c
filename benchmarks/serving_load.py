"""Bounded load test of the serving path over loopback: N concurrent clients, a fixed number of requests.

    python -m benchmarks.serving_load                      # starts the local server with the smoke model
    python -m benchmarks.serving_load --target 127.0.0.1:8500 --model_name srgan   # an already running server

Each client has its own gRPC channel (or REST connection) and sends `serving_default` requests with
one encoded image until the shared budget of requests is spent. Reports p50/p90/p99 latency,
throughput and failures; exits 1 when any request failed. Loopback only: this measures the
server, not a network.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time

import numpy as np

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--warmup", type=int, default=8, help="untimed requests first (graph warm-up)")
    p.add_argument("--protocol", choices=("grpc", "rest"), default="grpc")
    p.add_argument("--target", default="", help="host:port of a running server on loopback "
                                                "(default: start the local server)")
    p.add_argument("--model_name", default="srgan")
    p.add_argument("--model_dir", default="", help="SavedModel to serve when starting the server "
                                                   "(default: the smoke generator, x4)")
    p.add_argument("--image", default="", help="request image (default: a 64x64 crop of Set5 baby, else a "
                                               "synthetic gradient)")
    p.add_argument("--size", type=int, default=64, help="crop edge of the request image")
    return p.parse_args(argv)


def request_image(path: str, size: int) -> bytes:
    from models import images

    shared = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                          "Set5", "baby.png")
    path = path or (shared if os.path.isfile(shared) else "")
    if path:
        rgb = images.read_rgb8(path)[:size, :size]
    else:
        y, x = np.mgrid[0:size, 0:size]
        rgb = np.stack([x * 255 // size, y * 255 // size, (x + y) * 127 // size], -1).astype(np.uint8)
    return images.encode_png(rgb)


def make_client(protocol: str, target: str, model: str):
    from serving.client import GrpcClient, RestClient

    if protocol == "rest":
        return RestClient(target, model, retries=0, timeout_s=60)
    return GrpcClient(target, model, retries=0, timeout_s=60)


def run_load(protocol: str, target: str, model: str, png: bytes, clients: int, total: int, warmup: int) -> dict:
    warm = make_client(protocol, target, model)
    for _ in range(warmup):
        warm.predict_encoded([png])
    latencies, failures = [], []
    lock = threading.Lock()
    remaining = [total]

    def worker():
        client = make_client(protocol, target, model)
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            t0 = time.perf_counter()
            try:
                out = client.predict_encoded([png])
                ok = len(out.images) == 1 and out.images[0][:8] == b"\x89PNG\r\n\x1a\n"
                err = None if ok else "malformed response"
            except Exception as e:  # counted and reported, never hidden
                err = f"{type(e).__name__}: {e}"
            dt = time.perf_counter() - t0
            with lock:
                (failures.append(err) if err else latencies.append(dt))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.array(latencies) * 1000.0
    pct = (lambda q: round(float(np.percentile(ms, q)), 1)) if len(ms) else (lambda q: None)
    return {"protocol": protocol, "clients": clients, "requests": total, "ok": len(latencies),
            "failures": len(failures), "failure_examples": sorted(set(failures))[:3],
            "wall_s": round(wall, 2), "throughput_rps": round(len(latencies) / wall, 1),
            "latency_ms": {"p50": pct(50), "p90": pct(90), "p99": pct(99),
                           "mean": round(float(ms.mean()), 1) if len(ms) else None},
            "cpu_count": os.cpu_count()}


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    png = request_image(args.image, args.size)
    server = None
    target = args.target
    if target:
        if not target.replace("http://", "").startswith(LOOPBACK):
            raise SystemExit(f"--target must be a loopback address, got {target}")
    else:
        from config import preset
        from serving.server_process import ServerProcess, push_version
        from serving.smoke_model import export_smoke_model

        work = tempfile.mkdtemp(prefix="serving_load_")
        base = os.path.join(work, "models")
        os.makedirs(base)
        server = ServerProcess(base, os.path.join(work, "server.log"),
                               ["--threads", str(max(args.clients, 1))])
        model_dir = args.model_dir or export_smoke_model(os.path.join(work, "export"), preset("tiny", task="sr"))
        push_version(model_dir, base, args.model_name, 1)
        server.wait_available(args.model_name, 1)
        target = server.grpc_target if args.protocol == "grpc" else server.rest_url
        print(f"local server up (log: {server.log_path})", file=sys.stderr)
    try:
        report = run_load(args.protocol, target, args.model_name, png, args.clients, args.requests, args.warmup)
    finally:
        if server is not None:
            server.stop()
    report["image_bytes"] = len(png)
    lat = report["latency_ms"]
    print(f"{report['ok']}/{report['requests']} ok, {report['failures']} failed, {report['clients']} clients "
          f"over {report['protocol']}: {report['throughput_rps']} req/s, latency p50 {lat['p50']} ms, "
          f"p90 {lat['p90']} ms, p99 {lat['p99']} ms ({report['cpu_count']} CPUs, {report['wall_s']} s)")
    print(json.dumps(report))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
