"""TF Serving's model directory layout, and the one way a version is published into it.

    <serving base>/<model name>/<version>/saved_model.pb (+ variables/, assets/, assets.extra/)

A version is a directory named by a positive integer that holds `saved_model.pb`; anything else (a
`.tmp-...` directory a push is still writing, a version without its graph) is not a version, as TF
Serving sees it. `publish` makes a new version appear whole: it copies into `<base>/.tmp-<version>-<random>/`
(TF Serving ignores non-numeric names), syncs every file and the directory to disk, then renames it to
`<base>/<version>/`: one rename on a local or POSIX file system, so a version is either absent or whole,
also after a machine crash. On object stores (gs://) a rename is a copy per object; `saved_model.pb` is
written last there, the most those stores allow. Leftovers of killed pushes (nothing in them written
for STALE_TMP_S) are removed by the next push, with a log line.

Used by the Pusher, the Evaluator's serving-dir baseline, the local server's model store, the clients
and the tests alike. Paths go through tf.io.gfile, so the base may be local or on gs://.
"""
from __future__ import annotations

import json
import logging
import os
import posixpath
import time
import uuid
from typing import List

import tensorflow as tf

log = logging.getLogger(__name__)

SAVED_MODEL_FILE = "saved_model.pb"
TMP_PREFIX = ".tmp-"
# Which model a version was pushed from, and which training run (and step) its weights are
# (assets.extra/ is where TF Serving expects, and ignores, extras).
SOURCE_FILE = posixpath.join("assets.extra", "pushed_from.txt")
TRAINING_RUN_FILE = posixpath.join("assets.extra", "training_run.json")
# TF Serving's warm-up requests: a TFRecord of PredictionLog protos it replays after loading a version,
# before the version is AVAILABLE (models/warmup_requests.py writes it at export).
WARMUP_FILE = posixpath.join("assets.extra", "tf_serving_warmup_requests")
# A push copies a model in seconds; a temporary directory untouched for this long belongs to a killed one.
STALE_TMP_S = 3600
_RENAME_ATTEMPTS = 5


def _join(*parts: str) -> str:
    return posixpath.join(*parts) if "://" in parts[0] else os.path.join(*parts)


def versions(base_dir: str) -> List[int]:
    """The complete versions under `base_dir` (numeric name, saved_model.pb present), ascending."""
    if not base_dir or not tf.io.gfile.isdir(base_dir):
        return []
    names = (n.rstrip("/") for n in tf.io.gfile.listdir(base_dir))
    return sorted(int(n) for n in names
                  if n.isdigit() and int(n) > 0 and tf.io.gfile.exists(_join(base_dir, n, SAVED_MODEL_FILE)))


def version_dir(base_dir: str, version: int) -> str:
    return _join(base_dir, str(int(version)))


def latest_version_dir(base_dir: str) -> str:
    """The newest complete version of a model base path, or "" when there is none yet."""
    found = versions(base_dir)
    return version_dir(base_dir, found[-1]) if found else ""


def is_saved_model(path: str) -> bool:
    return tf.io.gfile.exists(_join(path, SAVED_MODEL_FILE))


def resolve_model_dir(path: str) -> str:
    """A SavedModel directory as given, or the newest version under a model base path; "" if neither."""
    return path if is_saved_model(path) else latest_version_dir(path)


def same_weights(model_dir: str, version_dir: str) -> bool:
    """Whether `version_dir` already serves `model_dir`'s weights: it was published from that very path, or
    both are the same training run at the same step (models/trainer.py writes TRAINING_RUN_FILE)."""
    if not version_dir:
        return False
    if _read(_join(version_dir, SOURCE_FILE)).strip() == model_dir:
        return True
    run = _weights_of(model_dir)
    return run is not None and run == _weights_of(version_dir)


def _weights_of(model_dir: str):
    """(training run, step) a model's weights come from, or None for a model without that record."""
    text = _read(_join(model_dir, TRAINING_RUN_FILE))
    record = json.loads(text) if text else {}
    return (record["run"], record["step"]) if "run" in record and "step" in record else None


def _read(path: str) -> str:
    if not tf.io.gfile.exists(path):
        return ""
    with tf.io.gfile.GFile(path) as f:
        return f.read()


def next_version(base_dir: str) -> int:
    """A UNIX-timestamp version strictly newer than every numeric entry already in `base_dir`."""
    names = [n.rstrip("/") for n in tf.io.gfile.listdir(base_dir)] if tf.io.gfile.isdir(base_dir) else []
    return max([int(time.time())] + [int(n) + 1 for n in names if n.isdigit()])


def publish(model_dir: str, base_dir: str, version: int | None = None) -> str:
    """Copy the SavedModel at `model_dir` to `<base_dir>/<version>/` so that the version directory only
    ever exists complete (default version: `next_version`). Returns the version directory. A failed
    copy leaves no version behind; an explicit version that exists already is a FileExistsError."""
    if not is_saved_model(model_dir):
        raise FileNotFoundError(f"no SavedModel ({SAVED_MODEL_FILE}) in {model_dir}")
    if not tf.io.gfile.isdir(base_dir):
        tf.io.gfile.makedirs(base_dir)
        _sync_dir(os.path.dirname(base_dir.rstrip("/")) or ".")  # the new base's own name
    remove_stale_tmp(base_dir)
    wanted = version
    version = int(version) if version is not None else next_version(base_dir)
    tmp = _join(base_dir, f"{TMP_PREFIX}{version}-{uuid.uuid4().hex[:8]}")
    try:
        _copy_tree(model_dir, tmp)
        _write_synced(_join(tmp, SOURCE_FILE), model_dir.encode())
        _copy_file(_join(model_dir, SAVED_MODEL_FILE), _join(tmp, SAVED_MODEL_FILE))  # last: see the docstring
        _sync_tree_dirs(tmp)  # every name in it, now that all are written (sub-folders made after a parent's sync too)
        for _ in range(_RENAME_ATTEMPTS):
            final = version_dir(base_dir, version)
            if not tf.io.gfile.exists(final):
                try:
                    tf.io.gfile.rename(tmp, final)
                    _sync_dir(base_dir)
                    return final
                except (tf.errors.OpError, OSError):  # another push took this version in between
                    if not tf.io.gfile.exists(final):
                        raise
            if wanted is not None:
                raise FileExistsError(f"{final} exists: versions are immutable, publish a new number")
            version = max(version + 1, next_version(base_dir))
        raise RuntimeError(f"could not claim a new version under {base_dir} after {_RENAME_ATTEMPTS} attempts")
    except BaseException:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.rmtree(tmp)
        raise


def remove_stale_tmp(base_dir: str, older_than_s: float = STALE_TMP_S) -> List[str]:
    """Remove temporary push directories nobody has written for `older_than_s` (killed pushes): no
    file or folder in them changed for that long (a push still copying a large variables file keeps
    that file's mtime fresh, while the folder above it ages)."""
    removed = []
    now = time.time()
    for name in tf.io.gfile.listdir(base_dir):
        name = name.rstrip("/")
        path = _join(base_dir, name)
        if not name.startswith(TMP_PREFIX):
            continue
        try:
            age = now - _newest_mtime_s(path)
            if age < older_than_s:
                continue
            tf.io.gfile.rmtree(path)
        except (tf.errors.OpError, OSError) as e:  # gone already, or not ours to remove
            log.warning("could not remove the leftover push directory %s: %s", path, e)
            continue
        log.info("removed %s, left by a push that did not finish %.0f s ago", path, age)
        removed.append(path)
    return removed


def _newest_mtime_s(path: str) -> float:
    """The newest modification time of `path` and everything below it, in seconds."""
    newest = tf.io.gfile.stat(path).mtime_nsec
    for dirpath, dirs, files in tf.io.gfile.walk(path):
        for name in list(dirs) + list(files):
            newest = max(newest, tf.io.gfile.stat(_join(dirpath, name.rstrip("/"))).mtime_nsec)
    return newest / 1e9


# -- copying, synced to disk where the file system has a disk ---------------------------------------------

def _local(path: str) -> bool:
    return "://" not in path


def _copy_tree(src: str, dst: str) -> None:
    """Every file of `src` but saved_model.pb (copied last by the caller), each synced (the directories
    are synced once everything is written: _sync_tree_dirs)."""
    for dirpath, _, files in tf.io.gfile.walk(src):
        rel = os.path.relpath(dirpath, src) if _local(src) else posixpath.relpath(dirpath, src)
        out_dir = dst if rel == "." else _join(dst, rel)
        tf.io.gfile.makedirs(out_dir)
        for name in files:
            if rel == "." and name == SAVED_MODEL_FILE:
                continue
            _copy_file(_join(dirpath, name), _join(out_dir, name))


def _copy_file(src: str, dst: str) -> None:
    if not _local(dst):
        tf.io.gfile.copy(src, dst, overwrite=True)
        return
    with tf.io.gfile.GFile(src, "rb") as f:
        _write_synced(dst, f.read())


def _write_synced(path: str, data: bytes) -> None:
    if not _local(path):
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(data)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_tree_dirs(root: str) -> None:
    """fsync every directory below `root`, deepest first, then `root` itself."""
    if not _local(root):
        return
    for dirpath, _, _ in os.walk(root, topdown=False):
        _sync_dir(dirpath)


def _sync_dir(path: str) -> None:
    """fsync a directory, so the names in it (a new file, a rename) survive a crash too."""
    if not _local(path):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
