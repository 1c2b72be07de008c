"""TF Serving's model directory layout (contracts/serving_layout.py): what counts as a version, and the one
publish every writer uses (the Pusher, the tests' server, the benchmark), on real exported SavedModels."""
import logging
import os
import shutil
import time

import pytest

from config import preset
from contracts import serving_layout


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from serving.smoke_model import export_smoke_model

    return export_smoke_model(str(tmp_path_factory.mktemp("export") / "model"), preset("tiny", task="sr"))


def test_versions_are_complete_numeric_directories(model_dir, tmp_path):
    base = tmp_path / "srgan"
    assert serving_layout.versions(str(base)) == [] and serving_layout.latest_version_dir(str(base)) == ""
    shutil.copytree(model_dir, base / "100")
    (base / "200").mkdir()  # incomplete: no saved_model.pb
    shutil.copytree(model_dir, base / ".tmp-300-abcd")  # a push still being written
    shutil.copytree(model_dir, base / "0")  # TF Serving's versions are positive
    assert serving_layout.versions(str(base)) == [100]
    assert serving_layout.latest_version_dir(str(base)) == str(base / "100")
    assert serving_layout.resolve_model_dir(str(base)) == str(base / "100")
    assert serving_layout.resolve_model_dir(model_dir) == model_dir
    assert serving_layout.resolve_model_dir(str(tmp_path / "nothing")) == ""


def test_next_version_never_goes_back(tmp_path):
    future = int(time.time()) + 1000
    (tmp_path / str(future)).mkdir()
    (tmp_path / ".tmp-1-x").mkdir()
    assert serving_layout.next_version(str(tmp_path)) == future + 1


def test_publish_writes_a_whole_version_and_records_its_source(model_dir, tmp_path):
    base = str(tmp_path / "srgan")
    first = serving_layout.publish(model_dir, base)
    assert os.listdir(base) == [os.path.basename(first)]  # no temporary directory left beside it
    assert sorted(os.listdir(first)) == sorted(os.listdir(model_dir) + ["assets.extra"])
    for sub, _, files in os.walk(model_dir):
        for f in files:
            src = os.path.join(sub, f)
            with open(src, "rb") as a, open(os.path.join(first, os.path.relpath(src, model_dir)), "rb") as b:
                assert a.read() == b.read(), f
    assert serving_layout.same_weights(model_dir, first)  # published from that very path
    assert not serving_layout.same_weights(str(tmp_path), first) and not serving_layout.same_weights(model_dir, "")
    second = serving_layout.publish(model_dir, base)
    assert int(os.path.basename(second)) > int(os.path.basename(first))
    assert serving_layout.publish(model_dir, base, version=7) == os.path.join(base, "7")
    with pytest.raises(FileExistsError, match="versions are immutable"):
        serving_layout.publish(model_dir, base, version=7)
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        serving_layout.publish(str(tmp_path), base)


def test_a_killed_push_leaves_a_temporary_directory_the_next_push_removes(model_dir, tmp_path, caplog):
    base = tmp_path / "srgan"
    stale, fresh = base / ".tmp-123-dead", base / ".tmp-456-busy"
    shutil.copytree(model_dir, stale)
    shutil.copytree(model_dir, fresh)
    old = time.time() - 2 * serving_layout.STALE_TMP_S
    os.utime(stale, (old, old))  # the killed push's directory: untouched for two hours
    with caplog.at_level(logging.INFO, logger="contracts.serving_layout"):
        serving_layout.publish(model_dir, str(base))
    assert not stale.exists() and fresh.exists()  # a push that may still be running is left alone
    assert any(f"removed {stale}" in r.getMessage() for r in caplog.records)


def test_same_weights_by_training_run(model_dir, tmp_path):
    import json

    def copy_with_run(name, run, step):
        path = tmp_path / name
        shutil.copytree(model_dir, path)
        (path / "assets.extra").mkdir(exist_ok=True)
        (path / serving_layout.TRAINING_RUN_FILE).write_text(json.dumps({"run": run, "step": step}))
        return str(path)

    served = serving_layout.publish(copy_with_run("a", "r1", 40), str(tmp_path / "srgan"))
    assert serving_layout.same_weights(copy_with_run("b", "r1", 40), served)  # a rerun's re-export
    assert not serving_layout.same_weights(copy_with_run("c", "r1", 30), served)
    assert not serving_layout.same_weights(copy_with_run("d", "r2", 40), served)
    assert not serving_layout.same_weights(model_dir, served)  # no run marker, another path
