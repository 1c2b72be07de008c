"""Load and latency of the serving path over loopback: N concurrent clients, a fixed number of requests.

    python -m benchmarks.serving_load                      # starts the local server with the smoke model
    python -m benchmarks.serving_load --bench_model --clients 1,4,16 --size 128 --first_request
    python -m benchmarks.serving_load --target 127.0.0.1:8500 --model_name srgan   # an already running server

Each client has its own gRPC channel (or REST connection) and sends `serving_default` requests with
one encoded image until the shared budget of requests is spent. Reports p50/p90/p99 latency,
throughput and failures per client count; exits 1 when any request failed. Loopback only: this
measures the server, not a network.
`--bench_model` serves the benchmark's SRResNet (srgan-celeba preset, seeded weights) exported through
models.export, as the Pusher would publish it. `--first_request` starts a fresh server twice, without
and with a warm-up file (the export's own, else one 128x128 request written here), and times the first
request after the version is AVAILABLE against the steady state. `--malformed_mb N` times the refusal
of an N MB REST body of the wrong shape and of a 200,000-level nested body, with the server's peak
memory before and after (VmHWM). `--emit` prints the records for benchmarks/run_all.py.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", default="8", help="concurrent clients; a comma-separated list runs each in turn")
    p.add_argument("--requests", type=int, default=500, help="requests per client count (at least 2 per client)")
    p.add_argument("--warmup", type=int, default=8, help="untimed requests first (graph warm-up)")
    p.add_argument("--protocol", choices=("grpc", "rest"), default="grpc")
    p.add_argument("--target", default="", help="host:port of a running server on loopback "
                                                "(default: start the local server)")
    p.add_argument("--model_name", default="srgan")
    p.add_argument("--model_dir", default="", help="SavedModel to serve when starting the server "
                                                   "(default: the smoke generator, x4)")
    p.add_argument("--bench_model", action="store_true", help="serve the benchmark's SRResNet (16x64, srgan-celeba)")
    p.add_argument("--image", default="", help="request image (default: a crop of Set5 baby, else a gradient)")
    p.add_argument("--size", type=int, default=64, help="crop edge of the request image")
    p.add_argument("--first_request", action="store_true", help="first request after load, without and with warm-up")
    p.add_argument("--malformed_mb", type=int, default=0, help="time refusing a wrong-shaped REST body of N MB")
    p.add_argument("--emit", action="store_true", help="print result records for benchmarks/run_all.py")
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
        return RestClient(target, model, retries=0, timeout_s=300)
    return GrpcClient(target, model, retries=0, timeout_s=300)


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
    return {"bench": "serving", "protocol": protocol, "clients": clients, "requests": total, "ok": len(latencies),
            "failures": len(failures), "failure_examples": sorted(set(failures))[:3],
            "wall_s": round(wall, 2), "throughput_rps": round(len(latencies) / wall, 2),
            "latency_ms": {"p50": pct(50), "p90": pct(90), "p99": pct(99),
                           "mean": round(float(ms.mean()), 1) if len(ms) else None},
            "cpu_count": os.cpu_count(), "load": os.getloadavg()[0]}


def export_model(args, work: str) -> str:
    if args.model_dir:
        from contracts.serving_layout import resolve_model_dir

        return resolve_model_dir(args.model_dir) or args.model_dir
    if args.bench_model:
        import tf_keras as keras

        from benchmarks.srresnet_arch import bench_config
        from models.export import export_generator
        from models.networks import build_generator, generator_size_multiple

        cfg = bench_config()
        keras.utils.set_random_seed(0)
        return export_generator(build_generator(cfg), os.path.join(work, "export"), cfg, generator_size_multiple(cfg))
    from config import preset
    from serving.smoke_model import export_smoke_model

    return export_smoke_model(os.path.join(work, "export"), preset("tiny", task="sr"))


def start_server(work: str, name: str, threads: int, model_dir: str, model_name: str, version: int = 1):
    from serving.server_process import ServerProcess, push_version

    base = os.path.join(work, name)
    os.makedirs(base)
    server = ServerProcess(base, os.path.join(work, f"{name}.log"), ["--threads", str(threads)])
    push_version(model_dir, base, model_name, version)
    server.wait_available(model_name, version)
    print(f"local server up (log: {server.log_path})", file=sys.stderr)
    return server


def first_request(args, work: str, model_dir: str, png: bytes) -> list:
    """First request after the version is AVAILABLE, in a fresh server, without then with warm-up."""
    from contracts.serving_layout import WARMUP_FILE
    from models.warmup_requests import write_requests

    plain = os.path.join(work, "no_warmup")
    shutil.copytree(model_dir, plain)
    if os.path.exists(os.path.join(plain, WARMUP_FILE)):
        os.remove(os.path.join(plain, WARMUP_FILE))
    warmed, origin = model_dir, "the export's own"
    if not os.path.exists(os.path.join(model_dir, WARMUP_FILE)):
        warmed, origin = os.path.join(work, "with_warmup"), f"one {args.size}x{args.size} serving_default request"
        shutil.copytree(model_dir, warmed)
        write_requests(os.path.join(warmed, WARMUP_FILE),
                              [("serving_default", {"image_bytes": np.array([png], dtype=object)})])
    records = []
    for label, path in (("without warm-up", plain), ("with warm-up", warmed)):
        server = start_server(work, "base_" + label.replace(" ", "_").replace("-", ""), 4, path, args.model_name)
        try:
            client = make_client("grpc", server.grpc_target, args.model_name)
            t0 = time.perf_counter()
            client.predict_encoded([png])
            first = time.perf_counter() - t0
            steady = run_load("grpc", server.grpc_target, args.model_name, png, 1, 10, 0)
        finally:
            server.stop()
        records.append({"bench": "serving_first_request", "case": label,
                        "warmup_file": origin if path == warmed else "none", "first_ms": round(first * 1000, 1),
                        "steady_p50_ms": steady["latency_ms"]["p50"],
                        "ratio": round(first * 1000 / steady["latency_ms"]["p50"], 2), "load": os.getloadavg()[0]})
        print(f"first request {label}: {first * 1000:.1f} ms; steady p50 {steady['latency_ms']['p50']} ms "
              f"(ratio {records[-1]['ratio']})", flush=True)
    return records


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def malformed(server, size_mb: int) -> list:
    """Refusal time and the server's peak memory for a wrong-shaped body of `size_mb` and a deeply nested one."""
    import http.client

    row = "[" + ",".join(["[0.123456,0.654321,0.5,0.25]"] * 1024) + "]"  # 4 channels: `restore` takes 3
    rows = max(1, size_mb * 1024 * 1024 // (len(row) + 1))
    bodies = {f"{size_mb} MB of floats, 4 channels": (
                  '{"signature_name": "restore", "instances": [[' + ",".join([row] * rows) + "]]}").encode(),
              "200,000-level nested lists": b"[" * 200_000 + b"]" * 200_000}
    records = []
    for what, body in bodies.items():
        before = peak_rss_mb(server.proc.pid)
        conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=600)
        t0 = time.perf_counter()
        conn.request("POST", f"/v1/models/{server.model_name}:predict", body=body)
        r = conn.getresponse()
        answer = json.loads(r.read())
        seconds = time.perf_counter() - t0
        conn.close()
        records.append({"bench": "serving_malformed", "body": what, "body_mb": round(len(body) / 2 ** 20, 1),
                        "status": r.status, "error": answer.get("error", "")[:120], "seconds": round(seconds, 2),
                        "server_peak_mb_before": round(before),
                        "server_peak_mb_after": round(peak_rss_mb(server.proc.pid))})
        print(f"{what}: HTTP {r.status} in {seconds:.2f} s, server peak memory {records[-1]['server_peak_mb_before']} "
              f"-> {records[-1]['server_peak_mb_after']} MB ({answer.get('error', '')[:80]})", flush=True)
    return records


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    png = request_image(args.image, args.size)
    clients = [int(c) for c in args.clients.split(",") if c]
    records, server, work = [], None, ""
    target = args.target
    if target:
        if not target.replace("http://", "").startswith(LOOPBACK):
            raise SystemExit(f"--target must be a loopback address, got {target}")
    else:
        work = tempfile.mkdtemp(prefix="serving_load_")
        model_dir = export_model(args, work)
        if args.first_request:
            records += first_request(args, work, model_dir, png)
        server = start_server(work, "models", max(clients), model_dir, args.model_name)
        server.model_name = args.model_name
        target = server.grpc_target if args.protocol == "grpc" else server.rest_url
    try:
        for n in clients:
            report = run_load(args.protocol, target, args.model_name, png, n, max(args.requests, 2 * n), args.warmup)
            report["image_bytes"], report["size"] = len(png), args.size
            lat = report["latency_ms"]
            print(f"{report['ok']}/{report['requests']} ok, {report['failures']} failed, {n} clients over "
                  f"{report['protocol']}: {report['throughput_rps']} req/s, latency p50 {lat['p50']} ms, p90 "
                  f"{lat['p90']} ms, p99 {lat['p99']} ms ({report['cpu_count']} CPUs, {report['wall_s']} s)",
                  flush=True)
            records.append(report)
        if args.malformed_mb and server is not None:
            records += malformed(server, args.malformed_mb)
    finally:
        if server is not None:
            server.stop()
        if work:
            shutil.rmtree(work, ignore_errors=True)
    for r in records:
        if args.emit:
            from benchmarks import common

            common.emit(r)
        else:
            print(json.dumps(r))
    return 1 if any(r.get("failures") for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
