"""Client retries, the REST JSON mapping, the model store's version handling and `predict --local`."""
import base64
import json
import logging
import os
import shutil
import socket

import grpc
import numpy as np
import pytest
import tensorflow as tf

from config import preset
from models import images
from serving import rest_api
from serving.errors import ServingError


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_grpc_client_retries_unavailable_with_backoff_then_fails_clearly(caplog):
    from serving.client import GrpcClient

    with caplog.at_level(logging.WARNING, logger="serving.client"):
        with GrpcClient(f"127.0.0.1:{closed_port()}", "srgan", retries=2, backoff_s=0.01, timeout_s=5) as g:
            with pytest.raises(ServingError) as e:
                g.status()
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
    assert [r.message.count("UNAVAILABLE") for r in caplog.records] == [1, 1]  # two retries, then the error


def test_rest_client_maps_connection_refused_to_unavailable(caplog):
    from serving.client import RestClient

    with caplog.at_level(logging.WARNING, logger="serving.client"):
        with pytest.raises(ServingError) as e:
            RestClient(f"127.0.0.1:{closed_port()}", "srgan", retries=1, backoff_s=0.01).status()
    assert e.value.code == grpc.StatusCode.UNAVAILABLE and len(caplog.records) == 1


SPECS = {"image_bytes": tf.TensorSpec([None], tf.string)}
FLOAT_SPECS = {"images": tf.TensorSpec([None, None, None, 3], tf.float32)}


def test_rest_row_and_columnar_formats_like_tf_serving():
    b = {"b64": base64.b64encode(b"\x89PNG").decode()}
    for body, row in (({"instances": [b, b]}, True), ({"instances": [{"image_bytes": b}]}, True),
                      ({"inputs": [b]}, False), ({"inputs": {"image_bytes": [b]}}, False)):
        inputs, row_format = rest_api.parse_predict_body(body, SPECS)
        assert row_format is row
        assert list(inputs) == ["image_bytes"] and all(x == b"\x89PNG" for x in inputs["image_bytes"])
    inputs, _ = rest_api.parse_predict_body({"instances": [[[[0.5, 0.25, 1]]]]}, FLOAT_SPECS)
    assert inputs["images"].dtype == np.float32 and inputs["images"].shape == (1, 1, 1, 3)

    outputs = {"image_bytes": np.array([b"ab", b"cd"], dtype=object), "height": np.array([4, 8], np.int32)}
    assert rest_api.format_predict_response(outputs, True) == {"predictions": [
        {"image_bytes": {"b64": "YWI="}, "height": 4}, {"image_bytes": {"b64": "Y2Q="}, "height": 8}]}
    assert rest_api.format_predict_response(outputs, False) == {"outputs": {
        "image_bytes": [{"b64": "YWI="}, {"b64": "Y2Q="}], "height": [4, 8]}}


@pytest.mark.parametrize("body,fragment", [
    ({"instances": [{"b64": "a"}], "inputs": []}, "exactly one"),
    ({"instances": []}, "non-empty"),
    ({"instances": [3]}, "b64"),
    ({"instances": [{"b64": "!!"}]}, "base64"),
    ([1, 2], "JSON object"),
])
def test_rest_bad_bodies_are_invalid_argument(body, fragment):
    with pytest.raises(ServingError) as e:
        rest_api.parse_predict_body(body, SPECS)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and fragment in e.value.message
    assert e.value.http_status == 400


def test_rest_ragged_floats_are_invalid_argument():
    with pytest.raises(ServingError, match="ragged"):
        rest_api.parse_predict_body({"inputs": [[[[0.5, 0.5, 0.5]], [[0.5]]]]}, FLOAT_SPECS)


@pytest.fixture(scope="module")
def smoke_export(tmp_path_factory):
    from serving.smoke_model import export_smoke_model

    return export_smoke_model(str(tmp_path_factory.mktemp("smoke") / "model"), preset("tiny", task="deblur"))


def test_model_store_loads_new_versions_then_unloads_old_and_survives_a_broken_push(tmp_path, smoke_export):
    from serving.model_store import ModelStore

    base = tmp_path / "deblurgan"
    shutil.copytree(smoke_export, base / "1")
    (base / "0007.partial").mkdir()  # not an integer version: ignored
    # Above the exports' 128x128 warm-up request, which a version must run before it is AVAILABLE.
    store = ModelStore(max_pixels=20_000, model_base=str(tmp_path))
    store.poll_once()
    assert store.get("deblurgan").version == 1
    (base / "3").mkdir()
    (base / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")  # a broken push
    store.poll_once()
    assert store.get("deblurgan").version == 1  # still serving the last good version
    assert {s.version: s.state for s in store.status("deblurgan")} == {3: "END", 1: "AVAILABLE"}
    assert store.status("deblurgan", 3)[0].error  # the load error is reported with the version
    shutil.rmtree(base / "3")
    shutil.copytree(smoke_export, base / "4")
    store.poll_once()
    assert store.get("deblurgan").version == 4
    assert store.status("deblurgan", 1)[0].state == "END"
    with pytest.raises(ServingError) as e:
        store.get("deblurgan", 1)
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    # The pixel limit is checked from the header, before any decoding.
    big = images.encode_png(np.zeros((151, 150, 3), np.uint8))
    with pytest.raises(ServingError, match="22650 pixels"):
        store.get("deblurgan").predict("", {"image_bytes": np.array([big], dtype=object)})


def test_predict_command_runs_a_local_savedmodel_on_a_folder(tmp_path, smoke_export):
    import sample_images

    from cli import main as cli

    src = tmp_path / "in"
    src.mkdir()
    for name, sample in (("baby.png", "chelsea_05"), ("bird.png", "flower_03")):
        (src / name).write_bytes(images.encode_png(sample_images.rgb(sample)[:64, :48]))
    (src / "notes.png").write_bytes(b"")  # empty file: skipped and reported
    out = tmp_path / "out"
    rc = cli.main(["predict", str(src), "-o", str(out), "--local", smoke_export, "--task", "deblur",
                   "--tile_size", "32", "--tile_overlap", "8"])
    assert rc == 1
    assert sorted(os.listdir(out)) == ["baby.png", "bird.png"]
    assert images.read_rgb8(str(out / "bird.png")).shape == (64, 48, 3)  # deblur: same size


def test_string_tensor_fast_path_matches_tensorflow():
    from serving.tensors import to_ndarray, to_tensor_proto

    value = np.array([[b"\x89PNG\x00a", b""], [b"b", b"\xff" * 3]], dtype=object)
    proto = to_tensor_proto(value)
    assert proto == tf.make_tensor_proto(value)
    np.testing.assert_array_equal(to_ndarray(proto), tf.make_ndarray(proto))
    floats = np.arange(6, dtype=np.float32).reshape(1, 2, 1, 3)
    np.testing.assert_array_equal(to_ndarray(to_tensor_proto(floats)), floats)
    with pytest.raises(ValueError, match="string values"):
        bad = to_tensor_proto([b"a", b"b"])
        bad.tensor_shape.dim[0].size = 3
        to_ndarray(bad)


@pytest.mark.parametrize("text", [
    "[[[[0.5, 0.25, 1]], [[0, 1e-3, -2.5E+2]]]]",
    '{"instances": [[[0.5, 0.5, 0.5], [1, 1, 1]]], "signature_name": "restore"}',
    '{"a": [{"b64": "YQ=="}, "s\\u00e9", true, null, -0, 1.5e3], "b": {"c": [[], []], "d": [[[]]]}}',
    "[ 1 ,\n 2 , 3\t]",
])
def test_request_json_parses_like_the_json_module(text):
    from serving import json_tensors

    def plain(v):
        if isinstance(v, json_tensors.NumericArray):
            return v.to_numpy(np.float64).tolist()
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return [plain(x) for x in v] if isinstance(v, list) else v

    for body in (text.encode(), text):
        assert plain(json_tensors.loads(body)) == json.loads(text)


def test_request_json_reads_non_finite_numbers_as_tf_serving_and_writes_them_the_same_way():
    from serving import json_tensors

    parsed = json_tensors.loads(b'{"x": [[NaN, Infinity, -Infinity]], "y": NaN}')
    x = parsed["x"].to_numpy(np.float32)
    assert np.isnan(x[0, 0]) and x[0, 1] == np.inf and x[0, 2] == -np.inf and np.isnan(parsed["y"])
    # TF Serving's json_tensor.cc writes these tokens for non-finite floats (not strict JSON, as there).
    out = json_tensors.dumps(rest_api.format_predict_response({"images": x}, row_format=False))
    assert out == b'{"outputs": [[NaN, Infinity, -Infinity]]}'


def test_request_json_refuses_deep_nesting_ragged_arrays_and_bad_numbers_cheaply():
    from serving import json_tensors

    for body, fragment in ((b"[" * 100_000 + b"]" * 100_000, "nests deeper"),
                           (b'{"a":' * 100_000 + b"0" + b"}" * 100_000, "nests deeper"),
                           (b"[[1, 2], [3]]", "ragged"), (b"[[1, 2], 3]", "ragged"), (b"[1,,2]", "ragged"),
                           (b"[1, 2,]", "ragged"), (b"[1 2]", "whitespace"), (b"[[1, 2]", "expecting"),
                           (b'{"a" 1}', "expecting ':'"), (b"\xff", "UTF-8"), (b"", "empty"), (b"[1] x", "extra")):
        with pytest.raises(ServingError) as e:
            json_tensors.loads(body)
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and fragment in e.value.message, (body[:20], e.value)
    with pytest.raises(ServingError, match="not numbers"):
        json_tensors.loads(b"[1.5, 1.2.3]").to_numpy(np.float32)
    # The shape of a wrong-shaped float body is refused before any of its numbers is parsed.
    big = json_tensors.loads(("[" + ",".join(["[[0.5, 0.5, 0.5, 0.5]]"] * 1000) + "]").encode())
    assert big.shape == (1000, 1, 4)
    with pytest.raises(ServingError, match=r"has shape \[1000, 1, 4\], expected \[None, None, None, 3\]"):
        rest_api.parse_predict_body({"inputs": big}, FLOAT_SPECS)
