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
    assert sorted(os.listdir(first)) == sorted(set(os.listdir(model_dir)) | {"assets.extra"})  # + its source
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


def age_tree(path, seconds):
    old = time.time() - seconds
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            os.utime(os.path.join(dirpath, name), (old, old))
    os.utime(path, (old, old))


def test_a_killed_push_leaves_a_temporary_directory_the_next_push_removes(model_dir, tmp_path, caplog):
    base = tmp_path / "srgan"
    stale, fresh, slow = base / ".tmp-123-dead", base / ".tmp-456-busy", base / ".tmp-789-slow"
    for d in (stale, fresh, slow):
        shutil.copytree(model_dir, d)
    age_tree(stale, 2 * serving_layout.STALE_TMP_S)  # the killed push's directory: untouched for two hours
    # A push still copying a large variables file: its folders are old, the file it writes is not.
    age_tree(slow, 2 * serving_layout.STALE_TMP_S)
    variables = next((slow / "variables").glob("variables.data-*"))
    with open(variables, "ab") as f:
        f.write(b"")
    os.utime(variables)
    with caplog.at_level(logging.INFO, logger="contracts.serving_layout"):
        serving_layout.publish(model_dir, str(base))
    assert not stale.exists() and fresh.exists() and slow.exists()  # a push that may still run is left alone
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


def test_publish_syncs_every_file_and_folder_before_the_rename(model_dir, tmp_path, monkeypatch):
    """What a crash right after the push needs: each file's data and each folder's names on disk before
    the version's name appears. Recorded from the real fsync calls (the paths behind their fds)."""
    events = []
    real_fsync, real_rename = os.fsync, serving_layout.tf.io.gfile.rename

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def rename(src, dst, overwrite=False):
        events.append(("rename", src))
        return real_rename(src, dst, overwrite)

    monkeypatch.setattr(serving_layout.os, "fsync", fsync)
    monkeypatch.setattr(serving_layout.tf.io.gfile, "rename", rename)
    base = tmp_path / "new_base" / "srgan"  # the base does not exist yet: its own name is synced too
    final = serving_layout.publish(model_dir, str(base))
    [renamed] = [i for i, (kind, _) in enumerate(events) if kind == "rename"]
    tmp = events[renamed][1]
    synced_before = {os.path.normpath(path) for kind, path in events[:renamed] if kind == "fsync"}
    for dirpath, dirs, files in os.walk(final):
        for name in [""] + dirs + files:
            rel = os.path.relpath(os.path.join(dirpath, name), final)
            assert os.path.normpath(os.path.join(tmp, rel)) in synced_before, rel
    assert str(tmp_path / "new_base") in synced_before
    assert ("fsync", str(base)) in events[renamed:]  # the version's new name in the base
