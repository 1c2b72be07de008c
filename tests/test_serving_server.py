"""The local TF Serving-compatible server as a subprocess, called over real gRPC and REST on loopback.

One server serves two models from one base directory: `srgan` (requests, bad and malformed requests,
slow connections under load, tiling) and `hotswap` (a second version pushed while serving). The models
are the real SRResNet generator of the `tiny` preset (models.networks, random weights; two builds give
two different versions), exported through models.export exactly as the Trainer exports it.
"""
import base64
import http.client
import json
import os
import signal
import socket
import threading
import time

import grpc
import numpy as np
import pytest

from config import SAMPLE_DATA, preset
from models import images
from serving.server_process import ServerProcess, push_version

pytestmark = pytest.mark.slow

MAX_PIXELS = 250_000  # small, so that the "image over the pixel limit" case stays cheap
MAX_MESSAGE_MB = 4


def rest_call(server, method: str, path: str, body=None):
    """(HTTP status, JSON payload) of a raw REST call: bodies the client would never send, too."""
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    payload = json.loads(r.read() or b"{}")
    conn.close()
    return r.status, payload


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from models.export import export_generator
    from models.networks import build_generator, generator_size_multiple

    # The server starts on an empty base (its start-up overlaps the export) and picks the models up
    # when they are pushed, as in production where the Pusher writes while TF Serving runs.
    base = str(tmp_path_factory.mktemp("serving_base"))
    srv = ServerProcess(base, str(tmp_path_factory.mktemp("logs") / "server.log"),
                        ["--set", f"serving.max_pixels={MAX_PIXELS}",
                         "--set", f"serving.max_message_mb={MAX_MESSAGE_MB}", "--set", "serving.shutdown_grace_s=60",
                         # slow connections stay open through the load test (its requests take seconds)
                         "--set", "serving.rest_read_timeout_s=120"])
    try:
        root = tmp_path_factory.mktemp("exports")
        # Without the bicubic skip: an untrained residual tail starts at zero (the model would be plain
        # bicubic, and two builds identical), and these tests need two distinct, non-trivial models.
        cfg = preset("tiny", task="sr").override({"model.residual_bicubic": False})
        srv.exported = {i: export_generator(build_generator(cfg), str(root / f"build{i}"), cfg,
                                           generator_size_multiple(cfg)) for i in (0, 1)}
        push_version(srv.exported[0], base, "srgan", 1)
        push_version(srv.exported[0], base, "hotswap", 1)
        srv.wait_available("srgan", 1)
        srv.wait_available("hotswap", 1)
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def direct(server):
    from serving.client import LocalModel

    return {seed: LocalModel(path) for seed, path in server.exported.items()}


@pytest.fixture(scope="module")
def photo():
    # A real photograph (a committed sample), cropped small: the served model's output must be 4x its size.
    return images.read_rgb8(os.path.join(SAMPLE_DATA, "coffee_06.png"))[:72, :56]


def grpc_client(server, model="srgan", **kw):
    from serving.client import GrpcClient

    return GrpcClient(server.grpc_target, model, retries=kw.pop("retries", 1), backoff_s=0.1,
                      max_message_mb=64, **kw)


def test_grpc_and_rest_predict_match_a_direct_savedmodel_call(server, direct, photo):
    from serving.client import RestClient

    png = images.encode_png(photo)
    expected = images.read_rgb8(direct[0].predict_encoded([png]).images[0])
    assert expected.shape == (photo.shape[0] * 4, photo.shape[1] * 4, 3)

    with grpc_client(server) as g:
        pred = g.predict_encoded([png, png])
        assert pred.version == 1
        for out in pred.images:
            np.testing.assert_array_equal(images.read_rgb8(out), expected)
        # The float signature too, against the SavedModel's own `restore`.
        x = images.uint8_to_float(photo)[None]
        got = g.predict_arrays({"images": x}, signature_name="restore")["images"]
        np.testing.assert_array_equal(got, direct[0].restore_fn()(x))
        sigs = g.metadata().signature_def
        assert sigs["serving_default"].inputs["image_bytes"].dtype == 7  # DT_STRING
        assert g.status() == [(1, "AVAILABLE", "")]

    rest = RestClient(f"127.0.0.1:{server.rest_port}", "srgan", retries=1)
    np.testing.assert_array_equal(images.read_rgb8(rest.predict_encoded([png]).images[0]), expected)
    # Columnar {"inputs": ...} format, explicit version in the URL.
    b64 = base64.b64encode(png).decode()
    status, body = rest_call(server, "POST", "/v1/models/srgan/versions/1:predict", {"inputs": [{"b64": b64}]})
    assert status == 200
    assert body["outputs"]["height"] == [photo.shape[0] * 4] and body["outputs"]["width"] == [photo.shape[1] * 4]
    np.testing.assert_array_equal(images.read_rgb8(base64.b64decode(body["outputs"]["image_bytes"][0]["b64"])),
                                  expected)
    status, meta = rest_call(server, "GET", "/v1/models/srgan/metadata")
    assert status == 200 and meta["model_spec"] == {"name": "srgan", "signature_name": "", "version": "1"}
    assert set(meta["metadata"]["signature_def"]["signature_def"]) == {"serving_default", "restore"}
    assert "model=srgan version=1 status=OK latency_ms=" in server.log_text()  # one line per request


def _truncated_png(photo):
    png = images.encode_png(photo)
    return png[: len(png) // 2]


def test_bad_requests_get_clear_errors_and_the_server_keeps_serving(server, photo):
    from serving.errors import ServingError

    good = images.encode_png(photo)
    over_limit = images.encode_png(np.zeros((520, 500, 3), np.uint8))  # 260,000 px > MAX_PIXELS
    INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    grpc_cases = [  # (what, model, version, signature, inputs, code, message fragment)
        ("not an image", "srgan", None, "", {"image_bytes": [b"GIF? no, plain text"]}, INVALID, "not an image"),
        ("truncated PNG", "srgan", None, "", {"image_bytes": [_truncated_png(photo)]}, INVALID, "truncated"),
        ("empty bytes", "srgan", None, "", {"image_bytes": [b""]}, INVALID, "empty"),
        ("over the pixel limit", "srgan", None, "", {"image_bytes": [over_limit]}, INVALID, "limit of 250000"),
        ("wrong dtype", "srgan", None, "restore", {"images": np.zeros((1, 8, 8, 3), np.float64)}, INVALID,
         "must be float32"),
        ("wrong shape", "srgan", None, "restore", {"images": np.zeros((1, 8, 8), np.float32)}, INVALID, "shape"),
        ("wrong input name", "srgan", None, "", {"image": [good]}, INVALID, "missing ['image_bytes']"),
        ("unknown model", "nope", None, "", {"image_bytes": [good]}, NOT_FOUND, "nope"),
        ("unknown version", "srgan", 9, "", {"image_bytes": [good]}, NOT_FOUND, "Specific(srgan, 9)"),
        ("unknown signature", "srgan", None, "nosig", {"image_bytes": [good]}, NOT_FOUND, "nosig"),
    ]
    for what, model, version, signature, inputs, code, fragment in grpc_cases:
        with grpc_client(server, model, version=version) as g:
            arrays = {k: np.array(v, dtype=object) if isinstance(v, list) else v for k, v in inputs.items()}
            with pytest.raises(ServingError) as e:
                g.predict_arrays(arrays, signature_name=signature)
            assert e.value.code == code, what
            assert fragment in e.value.message, (what, e.value.message)
        with grpc_client(server) as g:  # the next good request still succeeds
            assert len(g.predict_encoded([good]).images) == 1, what

    # A message over the server's gRPC limit is refused by gRPC itself.
    with grpc_client(server) as g, pytest.raises(ServingError) as e:
        g.predict_encoded([os.urandom(MAX_MESSAGE_MB * 1024 * 1024 + 1)])
    assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED

    b64 = lambda b: {"b64": base64.b64encode(b).decode()}  # noqa: E731
    rest_cases = [  # (what, path, body, HTTP status, message fragment)
        ("not an image", "/v1/models/srgan:predict", {"instances": [b64(b"plain text")]}, 400, "not an image"),
        ("truncated PNG", "/v1/models/srgan:predict", {"instances": [b64(_truncated_png(photo))]}, 400, "truncated"),
        ("empty bytes", "/v1/models/srgan:predict", {"instances": [b64(b"")]}, 400, "empty"),
        ("over the pixel limit", "/v1/models/srgan:predict", {"instances": [b64(over_limit)]}, 400, "limit"),
        ("wrong dtype", "/v1/models/srgan:predict", {"instances": [1.5]}, 400, "b64"),
        ("wrong shape", "/v1/models/srgan:predict", {"signature_name": "restore", "instances": [[0.5, 0.5]]},
         400, "shape"),
        ("not JSON", "/v1/models/srgan:predict", b"{oops", 400, "not valid JSON"),
        ("bad base64", "/v1/models/srgan:predict", {"instances": [{"b64": "***"}]}, 400, "base64"),
        ("unknown model", "/v1/models/nope:predict", {"instances": [b64(good)]}, 404, "nope"),
        ("unknown version", "/v1/models/srgan/versions/9:predict", {"instances": [b64(good)]}, 404, "9"),
        ("unknown signature", "/v1/models/srgan:predict", {"signature_name": "x", "instances": [b64(good)]}, 404,
         "'x'"),
        ("body too large", "/v1/models/srgan:predict", b"x" * (MAX_MESSAGE_MB * 1024 * 1024 + 1), 413, "limit"),
        ("unknown route", "/v2/whatever", None, 404, "expected /v1/models"),
    ]
    for what, path, body, http_status, fragment in rest_cases:
        status, payload = rest_call(server, "POST" if body is not None else "GET", path, body)
        assert status == http_status, (what, payload)
        assert fragment in payload["error"], (what, payload)
        status, payload = rest_call(server, "POST", "/v1/models/srgan:predict", {"instances": [b64(good)]})
        assert status == 200 and len(payload["predictions"]) == 1, what
    assert server.proc.poll() is None


def raw_http(server, data: bytes) -> bytes:
    """What the server answers to raw bytes on one connection, read until it closes the connection."""
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=60) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_malformed_requests_get_a_4xx_with_a_message_and_the_server_keeps_serving(server, photo):
    from serving.errors import ServingError

    good = {"instances": [{"b64": base64.b64encode(images.encode_png(photo)).decode()}]}
    predict = "/v1/models/srgan:predict"
    deep = 200_000
    cases = [  # (what, body, HTTP status, message fragment)
        ("200,000 levels of nested lists", b"[" * deep + b"]" * deep, 400, "nests deeper than"),
        ("200,000 levels of nested objects", b'{"a":' * deep + b"1" + b"}" * deep, 400, "nests deeper than"),
        ("nested instances", {"instances": [[[[[[[{"b64": "AA=="}]]]]]]]}, 400, "shape"),
        ("NaN pixels", b'{"signature_name": "restore", "instances": [[[[NaN, 0.5, 0.5]]]]}', 400, "non-finite"),
        ("Infinity pixels", b'{"signature_name": "restore", "inputs": [[[[0.5, Infinity, -Infinity]]]]}', 400,
         "2 non-finite"),
        ("four channels", {"signature_name": "restore", "instances": np.full((1, 8, 8, 4), 0.5).tolist()}, 400,
         "has shape [1, 8, 8, 4], expected [None, None, None, 3]"),
        ("rank 3 floats", {"signature_name": "restore", "inputs": np.full((8, 8, 3), 0.5).tolist()}, 400, "shape"),
        ("ragged rows", b'{"signature_name": "restore", "instances": [[[[0.5, 0.5, 0.5]], [[0.5, 0.5]]]]}', 400,
         "ragged"),
        ("a number that is not", b'{"signature_name": "restore", "instances": [[[[0.5, 0.5, 1.2.3]]]]}', 400,
         "not numbers"),
        ("whitespace inside a number", b'{"signature_name": "restore", "instances": [[[[0.5, 0.5, 1 2]]]]}', 400,
         "whitespace"),
        ("numbers for image bytes", {"instances": [[1, 2, 3]]}, 400, "b64"),
        ("a signature name that is not a string", {"signature_name": 7, "instances": [1]}, 400, "string"),
        ("not UTF-8", b'{"instances": ["\xff\xfe"]}', 400, "UTF-8"),
        ("empty body", b"", 400, "empty"),
        ("trailing garbage", json.dumps(good).encode() + b" }", 400, "extra data"),
        ("a huge body of the wrong shape", b"[" + b"0.5," * (MAX_MESSAGE_MB * 1024 * 1024 // 4) + b"0.5]", 413,
         "over this server's limit"),
    ]
    for what, body, http_status, fragment in cases:
        status, payload = rest_call(server, "POST", predict, body)
        assert status == http_status, (what, payload)
        assert fragment in payload["error"], (what, payload)
    # A wrong-shaped body just under the limit is refused from its shape, before its numbers are parsed.
    wrong = {"signature_name": "restore", "instances": np.full((1, 300, 300, 4), 0.123456).tolist()}
    status, payload = rest_call(server, "POST", predict, wrong)
    assert status == 400 and "expected [None, None, None, 3]" in payload["error"]

    # HTTP-level mistakes: answered, then the connection is closed.
    assert raw_http(server, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw_http(server, b"POST /v1/models/srgan:predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n0\r\n\r\n").startswith(b"HTTP/1.1 411")
    assert raw_http(server, b"GET /v1/models/srgan HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n"
                    ).startswith(b"HTTP/1.1 431")
    big = MAX_MESSAGE_MB * 1024 * 1024 + 1
    answer = raw_http(server, f"POST {predict} HTTP/1.1\r\nContent-Length: {big}\r\nExpect: 100-continue\r\n\r\n"
                      .encode())
    assert answer.startswith(b"HTTP/1.1 413")  # refused before the body was sent

    # Non-finite pixels over gRPC too; the server is alive and serving.
    with grpc_client(server) as g:
        with pytest.raises(ServingError) as e:
            g.predict_arrays({"images": np.full((1, 4, 4, 3), np.nan, np.float32)}, signature_name="restore")
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "48 non-finite" in e.value.message
    status, payload = rest_call(server, "POST", predict, good)
    assert status == 200 and len(payload["predictions"]) == 1
    assert server.proc.poll() is None


def test_slow_connections_and_100_clients_never_starve_health_checks(server):
    """8 connections that never finish a request (4 idle, 4 half-sent) stay open while 100 clients
    predict at once; every health check meanwhile answers within a second and no request fails."""
    png = base64.b64encode(images.encode_png(np.full((12, 12, 3), 128, np.uint8))).decode()
    body = json.dumps({"instances": [{"b64": png}]}).encode()
    mark = server.log.mark()
    slow = [socket.create_connection(("127.0.0.1", server.rest_port), timeout=60) for _ in range(8)]
    for i, s in enumerate(slow[4:]):  # half-sent: a partial request line, partial headers, a partial body
        s.sendall([b"GET /v1/mod", b"POST /v1/models/srgan:predict HTTP/1.1\r\nContent-Le",
                   b"POST /v1/models/srgan:predict HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"inst",
                   b"GET /v1/models/srgan HTTP/1.1\r\n"][i])
    # The server has accepted all eight (its log says so) before the load starts.
    server.log.wait_for(r"rest connection [\d.:]+ opened$", after=mark, count=8)

    results, health = [], []
    start, done = threading.Barrier(101), threading.Event()

    def client():
        start.wait()
        results.append(rest_call(server, "POST", "/v1/models/srgan:predict", body))

    def checker():
        start.wait()
        while not done.is_set():
            t0 = time.perf_counter()
            status, payload = rest_call(server, "GET", "/v1/models/srgan")
            health.append((time.perf_counter() - t0, status, payload))

    threads = [threading.Thread(target=client) for _ in range(100)]
    watcher = threading.Thread(target=checker)
    for t in threads + [watcher]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()

    assert len(results) == 100 and all(status == 200 and len(p["predictions"]) == 1 for status, p in results), \
        [r for r in results if r[0] != 200][:3]
    assert health and all(status == 200 and p["model_version_status"][0]["state"] == "AVAILABLE"
                          for _, status, p in health)
    slowest = max(seconds for seconds, _, _ in health)
    assert slowest < 1.0, f"a health check took {slowest:.2f} s under load ({len(health)} checks)"
    for s in slow:  # still open, still unanswered: they were held for the whole load
        s.setblocking(False)
        with pytest.raises(BlockingIOError):
            s.recv(1)
        s.close()


def test_client_tiles_over_grpc_like_untiled_restoration(server, tmp_path):
    from cli import main as cli
    from models.tile_geometry import tile_grid
    from serving.client import restore_image

    # Two tiles of one photograph side by side: 128 x 210.
    lr = np.concatenate([images.read_rgb8(os.path.join(SAMPLE_DATA, f"china_{i:02d}.png")) for i in (5, 6)],
                        axis=1)[:, :210]
    with grpc_client(server) as g:
        whole = restore_image(lr, g, tile_size=0)
        tiled = restore_image(lr, g, tile_size=96, overlap=32, batch=4)
    assert len(tile_grid(128, 96, 32)[1]) * len(tile_grid(210, 96, 32)[1]) == 6
    assert tiled.shape == whole.shape == (512, 840, 3)
    diff = np.abs(whole.astype(int) - tiled.astype(int))
    mse = np.mean(diff.astype(np.float64) ** 2)
    assert diff.max() <= 2 and (mse == 0 or 10 * np.log10(255 ** 2 / mse) >= 50)

    # The predict command over gRPC on a folder: good images restored, a broken one skipped and listed.
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "a.png").write_bytes(images.encode_png(lr[:40, :30]))
    (src / "sub" / "b.png").write_bytes(images.encode_png(lr[:20, :24]))
    (src / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"
    rc = cli.main(["predict", str(src), "-o", str(out), "--server", server.grpc_target, "--model_name", "srgan",
                   "--tile_size", "16", "--tile_overlap", "4"])
    assert rc == 1  # one input failed
    assert images.read_rgb8(str(out / "a.png")).shape == (160, 120, 3)
    assert images.read_rgb8(str(out / "sub" / "b.png")).shape == (80, 96, 3)
    assert not (out / "broken.png").exists()


def test_a_newly_pushed_version_is_served_without_restart(server, direct, photo):
    png = images.encode_png(photo)
    with grpc_client(server, "hotswap") as g:
        assert g.predict_encoded([png]).version == 1
        mark = server.log.mark()
        push_version(server.exported[1], server.model_base, "hotswap", 2)  # another build as version 2
        server.wait_available("hotswap", 2, after=mark)
        pred = g.predict_encoded([png])
    assert pred.version == 2
    expected = images.read_rgb8(direct[1].predict_encoded([png]).images[0])
    np.testing.assert_array_equal(images.read_rgb8(pred.images[0]), expected)
    assert not np.array_equal(expected, images.read_rgb8(direct[0].predict_encoded([png]).images[0]))
    # The old version is unloaded once the new one serves (in the same poll pass).
    server.log.wait_for(r"unloaded model hotswap version 1$", after=mark)
    status, body = rest_call(server, "GET", "/v1/models/hotswap")
    assert {s["version"]: s["state"] for s in body["model_version_status"]} == {"2": "AVAILABLE", "1": "END"}
    assert rest_call(server, "GET", "/v1/models/hotswap/versions/1/metadata")[0] == 404


def test_sigterm_lets_in_flight_requests_finish(server, photo):
    # Several larger images in one request keep the server busy while SIGTERM arrives.
    png = images.encode_png(np.tile(photo, (3, 4, 1)))  # 216 x 224 -> 864 x 896
    result = {}

    def call(g):
        try:
            result["pred"] = g.predict_encoded([png] * 2)
        except Exception as e:  # noqa: BLE001 - reported below
            result["error"] = e

    with grpc_client(server, retries=0, timeout_s=120) as g:
        # Connect first (a small request on the same channel): under load, a connection still being
        # set up when SIGTERM arrives is refused, and the request would never have been in flight.
        g.predict_encoded([images.encode_png(photo[:8, :8])])
        mark = server.log.mark()
        t = threading.Thread(target=call, args=(g,))
        t.start()
        server.log.wait_for(r"grpc Predict model=srgan started$", after=mark)  # in flight on the server
        server.proc.send_signal(signal.SIGTERM)
        t.join(120)
    assert "error" not in result, result.get("error")
    assert len(result["pred"].images) == 2
    assert server.proc.wait(timeout=60) == 0
    log = server.log_text()
    assert "shutting down" in log and "stopped" in log
    # The request was still in flight when the signal arrived: it is logged after the shutdown began.
    shutdown_at = log.index("shutting down")
    assert "grpc Predict model=srgan version=1 status=OK" in log[shutdown_at:], log[-2000:]
