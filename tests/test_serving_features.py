"""Batching, warm-up, metrics, the readiness probe, the pixel budget and REST read deadlines of the local
server, each on `gan-restore serve` as a subprocess over real gRPC and REST on loopback.

Two servers, both serving the smoke generator exported by models.export (as the Trainer exports):
- `batched`: --batching_parameters_file with max_batch_size 4 and a 60 s timeout, so a batch closes
  exactly when its fourth request arrives (no timing in the test), and the deploy monitoring config;
  its version carries a warm-up file written here.
- `limited`: a pixel budget of two 256x256 inputs, a 2 s REST read deadline, and a `gate` model whose
  graph writes to a FIFO: a request to it stays in flight, holding its pixels, until the test reads
  the FIFO, so the queue behind it is seen without timing.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import threading

import grpc
import numpy as np
import pytest

from config import preset
from models import images
from serving.server_process import REPO_ROOT, ServerProcess, push_version

pytestmark = pytest.mark.slow

DEPLOY = os.path.join(REPO_ROOT, "serving", "deploy")
MONITORING = os.path.join(DEPLOY, "monitoring.config")
METRICS_PATH = "/monitoring/prometheus/metrics"
BATCH = 4
BUDGET = 2 * 256 * 256
GATE_HEIGHTS = (300, 310)  # two gate requests of 90,000 and 93,000 pixels: each fits the budget, both do not


def photo(h: int, w: int, seed: int) -> np.ndarray:
    import sample_images

    tile = sample_images.rgb(sample_images.NAMES[seed % len(sample_images.NAMES)])
    return tile[:h, :w]


def scrape(server) -> dict:
    """{(sample name, frozenset of labels): value} from the server's Prometheus endpoint."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(server.rest_url + METRICS_PATH, timeout=30) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def delta(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def grpc_client(server, model="smoke"):
    from serving.client import GrpcClient

    return GrpcClient(server.grpc_target, model, retries=0, timeout_s=120)


def copy_with_warmup(src: str, dst: str, requests=None, raw: bytes = b"") -> str:
    from contracts.serving_layout import WARMUP_FILE
    from models.warmup_requests import write_requests

    shutil.copytree(src, dst)
    path = os.path.join(dst, WARMUP_FILE)
    if requests is not None:
        write_requests(path, requests)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(raw)
    return dst


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    from serving.smoke_model import export_smoke_model

    return export_smoke_model(str(tmp_path_factory.mktemp("smoke") / "model"), preset("tiny", task="sr"))


@pytest.fixture(scope="module")
def direct(smoke_dir):
    from serving.client import LocalModel

    return LocalModel(smoke_dir)


@pytest.fixture(scope="module")
def batched(tmp_path_factory, smoke_dir):
    work = tmp_path_factory.mktemp("batched")
    params = work / "batching_parameters.txt"
    params.write_text(f"max_batch_size {{ value: {BATCH} }}\nbatch_timeout_micros {{ value: 60000000 }}\n"
                      "max_enqueued_batches { value: 16 }\nnum_batch_threads { value: 2 }\n")
    base = work / "models"
    base.mkdir()
    srv = ServerProcess(str(base), str(work / "server.log"),
                        ["--batching_parameters_file", str(params), "--monitoring_config_file", MONITORING,
                         "--threads", "16"])
    try:
        # Warm-up requests of a full batch each: with this config a smaller one would wait 60 s.
        png = images.encode_png(photo(32, 32, 0))
        warm = [("serving_default", {"image_bytes": np.array([png] * BATCH, dtype=object)}),
                ("restore", {"images": np.full((BATCH, 32, 32, 3), 0.5, np.float32)})]
        push_version(copy_with_warmup(smoke_dir, str(work / "warm"), warm), str(base), "smoke", 1)
        srv.wait_available("smoke", 1)
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def broken(batched, smoke_dir, tmp_path_factory):
    """A second model whose only version carries a warm-up file that is not a TFRecord file."""
    mark = batched.log.mark()
    bad = copy_with_warmup(smoke_dir, str(tmp_path_factory.mktemp("broken") / "v1"), raw=b"not a TFRecord file")
    push_version(bad, batched.model_base, "broken", 1)
    return batched.log.wait_for(r"failed to load model broken version 1: .*", after=mark).group()


def test_warm_up_runs_before_the_version_is_available_and_a_bad_warm_up_file_fails_the_load(batched, broken):
    log = batched.log_text()
    warmed = log.index("model smoke version 1 warmed up: 2 requests")
    assert warmed < log.index("model smoke version 1 AVAILABLE")
    m = scrape(batched)
    assert m[("gan_restore_model_warmup_records", frozenset({"model": "smoke", "version": "1"}.items()))] == 2

    assert "corrupted record" in broken or "DataLoss" in broken, broken
    with grpc_client(batched, "broken") as g:
        (version, state, error), = g.status()
        assert (version, state) == (1, "END") and error
    with grpc_client(batched) as g:  # the other model serves on
        assert g.status() == [(1, "AVAILABLE", "")]


def test_concurrent_mixed_size_requests_batch_by_shape_and_match_unbatched_calls(batched, direct):
    """Four `restore` requests of one size, four of another and four `serving_default` requests of
    mixed sizes, all at once: each shape forms one full batch, no request fails, every answer is what
    the SavedModel gives that request alone."""
    restore_inputs = [images.uint8_to_float(photo(h, w, i))[None] for i, (h, w) in
                      enumerate([(24, 20)] * BATCH + [(16, 28)] * BATCH)]
    pngs = [images.encode_png(photo(12 + 4 * i, 30 - 3 * i, 9 + i)) for i in range(BATCH)]
    before = scrape(batched)
    results, start = {}, threading.Barrier(2 * BATCH + BATCH)

    def call(key, fn):
        with grpc_client(batched) as g:
            start.wait()
            try:
                results[key] = fn(g)
            except Exception as e:  # noqa: BLE001 - asserted below
                results[key] = e

    threads = [threading.Thread(target=call, args=(("restore", i), lambda g, x=x: g.predict_arrays(
        {"images": x}, signature_name="restore")["images"])) for i, x in enumerate(restore_inputs)]
    threads += [threading.Thread(target=call, args=(("bytes", i), lambda g, p=p: g.predict_encoded([p]).images[0]))
                for i, p in enumerate(pngs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = {k: v for k, v in results.items() if isinstance(v, Exception)}
    assert not failed and len(results) == 3 * BATCH, failed

    restore = direct.restore_fn()
    for i, x in enumerate(restore_inputs):
        np.testing.assert_allclose(results[("restore", i)], restore(x), atol=1e-5)
    for i, p in enumerate(pngs):
        expected = images.read_rgb8(direct.predict_encoded([p]).images[0])
        got = images.read_rgb8(results[("bytes", i)])
        assert got.shape == expected.shape and np.abs(got.astype(int) - expected).max() <= 1
    after = scrape(batched)
    for signature, batches in (("restore", 2), ("serving_default", 1)):
        labels = {"model": "smoke", "signature": signature}
        assert delta(before, after, "gan_restore_batch_size_count", **labels) == batches
        assert delta(before, after, "gan_restore_batch_size_sum", **labels) == batches * BATCH

    # A request larger than a batch is refused with TF Serving's message; the server goes on.
    from serving.errors import ServingError

    with grpc_client(batched) as g, pytest.raises(ServingError) as e:
        g.predict_arrays({"images": np.zeros((BATCH + 1, 8, 8, 3), np.float32)}, signature_name="restore")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"Task size {BATCH + 1} is larger than maximum input batch size {BATCH}" in e.value.message


def test_metrics_count_requests_errors_and_latency_per_model_and_signature(batched):
    from serving.client import RestClient
    from serving.errors import ServingError

    full = [images.encode_png(photo(16, 16, i)) for i in range(BATCH)]  # a whole batch: runs at once
    before = scrape(batched)
    with grpc_client(batched) as g:
        for _ in range(2):
            assert len(g.predict_encoded(full).images) == BATCH
        with pytest.raises(ServingError):
            g.predict_encoded([b"not an image"])
    with grpc_client(batched, "nope") as g, pytest.raises(ServingError):
        g.predict_encoded(full)
    assert len(RestClient(batched.rest_url, "smoke", retries=0).predict_encoded(full).images) == BATCH
    after = scrape(batched)

    grpc_sd = {"model": "smoke", "signature": "serving_default", "method": "Predict", "protocol": "grpc"}
    assert delta(before, after, "gan_restore_requests_total", **grpc_sd, status="OK") == 2
    assert delta(before, after, "gan_restore_requests_total", **grpc_sd, status="INVALID_ARGUMENT") == 1
    assert delta(before, after, "gan_restore_request_errors_total", **grpc_sd, code="INVALID_ARGUMENT") == 1
    assert delta(before, after, "gan_restore_request_latency_seconds_count", **grpc_sd) == 3
    assert delta(before, after, "gan_restore_request_latency_seconds_sum", **grpc_sd) > 0
    rest_sd = dict(grpc_sd, protocol="rest")
    assert delta(before, after, "gan_restore_requests_total", **rest_sd, status="OK") == 1
    unknown = {"model": "_unknown", "signature": "_unknown", "method": "Predict", "protocol": "grpc"}
    assert delta(before, after, "gan_restore_requests_total", **unknown, status="NOT_FOUND") == 1
    # TF Serving's own series, same names and labels as its Prometheus exporter.
    assert delta(before, after, ":tensorflow:serving:request_count_total", model_name="smoke", status="OK") == 3
    assert delta(before, after, ":tensorflow:serving:request_latency_count", model_name="smoke", API="Predict",
                 entrypoint="GRPC") == 3


def run_probe(server, tmp_path, names) -> subprocess.CompletedProcess:
    config = tmp_path / "models.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{n}" base_path: "/models/{n}" model_platform: "tensorflow" }}\n' for n in names) + "}\n")
    return subprocess.run([sys.executable, os.path.join(DEPLOY, "readiness_probe.py"), "--model_config", str(config),
                           "--url", server.rest_url], capture_output=True, text=True, timeout=60)


def test_readiness_probe_passes_only_when_every_model_has_an_available_version(batched, broken, tmp_path):
    ready = run_probe(batched, tmp_path, ["smoke"])
    assert ready.returncode == 0, ready.stderr
    for names, fragment in ((["smoke", "broken"], "broken: no AVAILABLE version (version 1 END"),
                            (["smoke", "absent"], "absent: HTTP 404")):
        result = run_probe(batched, tmp_path, names)
        assert result.returncode == 1 and fragment in result.stderr, result.stderr
        assert "smoke" not in result.stderr


# -- the pixel budget and REST read deadlines -----------------------------------------------------------

def export_gate_model(export_dir: str, fifo_prefix: str) -> str:
    """`restore` returns its input after writing to the FIFO `<fifo_prefix><input height>` (opening a
    FIFO for writing blocks until a reader opens it), so a request stays in the graph until the test
    reads that FIFO; one FIFO per request, so a release is never taken by another request."""
    import tensorflow as tf

    class Gate(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
        def restore(self, images):
            fifo = tf.strings.join([fifo_prefix, tf.strings.as_string(tf.shape(images)[1])])
            passed = tf.io.write_file(fifo, tf.strings.as_string(tf.size(images)))
            with tf.control_dependencies([passed]):
                return {"images": tf.identity(images)}

    gate = Gate()
    tf.saved_model.save(gate, export_dir, signatures={"restore": gate.restore, "serving_default": gate.restore})
    return export_dir


@pytest.fixture(scope="module")
def limited(tmp_path_factory, smoke_dir):
    work = tmp_path_factory.mktemp("limited")
    fifo_prefix = str(work / "gate")
    for height in GATE_HEIGHTS:
        os.mkfifo(f"{fifo_prefix}{height}")
    base = work / "models"
    base.mkdir()
    srv = ServerProcess(str(base), str(work / "server.log"),
                        ["--set", f"serving.max_concurrent_pixels={BUDGET}", "--set", "serving.rest_read_timeout_s=2",
                         "--monitoring_config_file", MONITORING, "--threads", "16"])
    try:
        push_version(smoke_dir, str(base), "smoke", 1)
        push_version(export_gate_model(str(work / "gate_export"), fifo_prefix), str(base), "gate", 1)
        srv.wait_available("smoke", 1)
        srv.wait_available("gate", 1)
        srv.fifo_prefix = fifo_prefix
        yield srv
    finally:
        srv.stop()


def test_a_request_over_the_pixel_budget_queues_until_pixels_are_free(limited):
    inputs = {h: np.full((1, h, 300, 3), 0.25, np.float32) for h in GATE_HEIGHTS}
    results, finished = {}, {h: threading.Event() for h in GATE_HEIGHTS}

    def call(h):
        with grpc_client(limited, "gate") as g:
            results[h] = g.predict_arrays({"images": inputs[h]}, signature_name="restore")["images"]
        finished[h].set()

    def release(h):  # read what the request in the graph writes: it then leaves the graph
        with open(f"{limited.fifo_prefix}{h}", "rb") as f:
            assert f.read() == str(inputs[h].size).encode()
        assert finished[h].wait(120)

    mark = limited.log.mark()
    threads = [threading.Thread(target=call, args=(h,)) for h in GATE_HEIGHTS]
    for t in threads:
        t.start()
    # One request holds its pixels inside the graph (blocked writing to its FIFO), the other queues.
    wait = limited.log.wait_for(r"request for model gate \((?P<px>\d+) pixels\) waits for the pixel budget: "
                                rf"(?P<held>\d+) of {BUDGET} in flight, 0 queued ahead", after=mark)
    queued = next(h for h in GATE_HEIGHTS if inputs[h][0, ..., 0].size == int(wait["px"]))
    holder = next(h for h in GATE_HEIGHTS if h != queued)
    assert int(wait["held"]) == inputs[holder][0, ..., 0].size
    m = scrape(limited)
    assert m[("gan_restore_requests_waiting_for_pixels", frozenset())] == 1
    assert m[("gan_restore_pixels_in_flight", frozenset())] == int(wait["held"])
    assert not finished[queued].is_set()
    release(holder)
    limited.log.wait_for(rf"request for model gate \({wait['px']} pixels\) admitted after", after=mark)
    release(queued)
    for t in threads:
        t.join()
    assert all(np.array_equal(results[h], inputs[h]) for h in GATE_HEIGHTS)
    m = scrape(limited)
    assert m[("gan_restore_pixel_waits_total", frozenset({"model": "gate"}.items()))] == 1
    assert m[("gan_restore_requests_waiting_for_pixels", frozenset())] == 0
    assert m[("gan_restore_pixels_in_flight", frozenset())] == 0
    assert m[("gan_restore_pixels_in_flight_max", frozenset())] <= BUDGET


def test_concurrent_large_requests_stay_within_the_pixel_budget(limited, direct):
    pngs = [images.encode_png(np.tile(photo(128, 128, i), (2, 2, 1))) for i in range(6)]  # 256x256 each
    results, start = {}, threading.Barrier(len(pngs))

    def call(i):
        with grpc_client(limited) as g:
            start.wait()
            results[i] = g.predict_encoded([pngs[i]]).images[0]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(pngs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == len(pngs)
    for i, p in enumerate(pngs):
        expected = images.read_rgb8(direct.predict_encoded([p]).images[0])
        assert np.abs(images.read_rgb8(results[i]).astype(int) - expected).max() <= 1
    m = scrape(limited)
    assert m[("gan_restore_pixels_in_flight_max", frozenset())] <= BUDGET
    assert m[("gan_restore_pixels_in_flight", frozenset())] == 0


def read_until_closed(sock) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_rest_read_deadline_answers_a_half_sent_request_408_and_closes_idle_connections(limited):
    mark = limited.log.mark()
    address = ("127.0.0.1", limited.rest_port)
    with socket.create_connection(address, timeout=60) as idle, socket.create_connection(address, timeout=60) as half:
        half.sendall(b'POST /v1/models/smoke:predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"inst')
        answer = read_until_closed(half)  # returns when the server, at its deadline, answers and closes
        assert answer.startswith(b"HTTP/1.1 408")
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "the request did not arrive whole within 2 s"
        assert read_until_closed(idle) == b""  # an idle connection is closed without an answer
    limited.log.wait_for(r"request not received whole within 2 s; answered 408", after=mark)
    body = {"instances": [{"b64": base64.b64encode(images.encode_png(photo(8, 8, 0))).decode()}]}
    import http.client

    conn = http.client.HTTPConnection(*address, timeout=60)
    conn.request("POST", "/v1/models/smoke:predict", json.dumps(body))
    assert conn.getresponse().status == 200
    conn.close()
