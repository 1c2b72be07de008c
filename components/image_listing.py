"""Image ingestion's listing: the candidates of a dataset layout (contracts/datasets.py), their splits,
the rejects visible from names alone, and the fingerprint that decides ExampleGen's caching.

Plain Python over `tf.io.gfile` (local and cloud paths), run in ImageExampleGen's executor before its
Beam pipeline and testable on its own. Files are recognised by content later (components/image_check.py):
a text file in an image folder is rejected as `not_image`, listed and counted, never silently dropped.
"""
from __future__ import annotations

import hashlib
import posixpath
from typing import Dict, Iterable, List, NamedTuple, Tuple

import tensorflow as tf

from contracts import datasets
from contracts.datasets import CELEBA_IMAGES, CELEBA_PARTITION, EVAL, GOPRO_FRAMES, GOPRO_SPLITS, TEST, TRAIN


class Candidate(NamedTuple):
    """One example to be: an image (or a GOPRO sharp/blur pair) and where it goes."""

    id: str
    split: str
    scene: str
    image: str  # path relative to the root (the sharp frame for GOPRO)
    blur: str | None = None  # GOPRO only


class Reject(NamedTuple):
    path: str  # relative to the data root
    reason: str  # one of contracts.datasets.REASONS
    detail: str = ""


class Listing(NamedTuple):
    """What a scan of the data root found: candidates, rejects known before decoding, split names."""

    root: str
    candidates: List[Candidate]
    rejects: List[Reject]
    split_names: List[str]


# -- splits ----------------------------------------------------------------------------------------


def hash_split(example_id: str, train_ratio: float) -> str:
    """train or eval, deterministically from the id (stable across runs, machines and file order)."""
    h = int.from_bytes(hashlib.sha256(example_id.encode("utf-8")).digest()[:8], "big")
    return TRAIN if h / 2.0**64 < train_ratio else EVAL


# -- listing ---------------------------------------------------------------------------------------


def scan(root: str, layout: str, train_ratio: float) -> Listing:
    """All candidates of a dataset root for `layout`, plus the rejects visible from names alone."""
    if not root:
        raise ValueError("data.root is empty: set it to the folder that holds the images")
    if not tf.io.gfile.isdir(root):
        raise FileNotFoundError(f"data.root {root!r} is not a directory")
    if not 0.0 < train_ratio < 1.0:
        raise ValueError(f"data.train_ratio must be in (0, 1), got {train_ratio}")
    if layout == "folder":
        cands, rejects = _by_hash(_files_below(root, ""), train_ratio), []
        splits = [TRAIN, EVAL]
    elif layout == "celeba":
        cands, rejects, splits = _scan_celeba(root, train_ratio)
    elif layout == "gopro":
        cands, rejects = _scan_gopro(root)
        splits = [TRAIN, EVAL]
    else:
        raise ValueError(f"unknown data.layout {layout!r}")
    cands, dups = _drop_duplicate_ids(cands)
    if not cands:
        raise ValueError(f"no image files found under {root!r} for data.layout={layout!r} ({_layout_hint(layout)})")
    return Listing(root, cands, sorted(rejects + dups), splits)


def _layout_hint(layout: str) -> str:
    return {"folder": "any files below the root, recursively",
            "celeba": f"expected {CELEBA_IMAGES}/*.jpg",
            "gopro": "expected {train,test}/<scene>/{blur,sharp}/*.png"}[layout]


def _files_below(root: str, sub: str) -> List[str]:
    """Relative paths ('/'-separated) of the non-hidden files below root/sub, sorted."""
    top = posixpath.join(root, sub) if sub else root
    if not tf.io.gfile.isdir(top):
        return []
    out = []
    for dirpath, dirnames, filenames in tf.io.gfile.walk(top):
        rel_dir = posixpath.relpath(dirpath.replace("\\", "/"), root.rstrip("/"))
        if any(part.startswith(".") for part in rel_dir.split("/") if part != "."):
            continue
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out.extend(posixpath.normpath(posixpath.join(rel_dir, f)) for f in filenames if not f.startswith("."))
    return sorted(out)


def _strip_ext(path: str) -> str:
    return posixpath.splitext(path)[0]


def _parent(path: str) -> str:
    parent = posixpath.dirname(path)
    return "" if parent in ("", ".") else parent


def _by_hash(paths: Iterable[str], train_ratio: float) -> List[Candidate]:
    return [Candidate(_strip_ext(p), hash_split(_strip_ext(p), train_ratio), _parent(p), p) for p in paths]


def _scan_celeba(root: str, train_ratio: float) -> Tuple[List[Candidate], List[Reject], List[str]]:
    if not tf.io.gfile.isdir(posixpath.join(root, CELEBA_IMAGES)):
        raise FileNotFoundError(f"data.layout=celeba: {root!r} has no {CELEBA_IMAGES}/ folder")
    paths = _files_below(root, CELEBA_IMAGES)
    part_path = posixpath.join(root, CELEBA_PARTITION)
    if not tf.io.gfile.exists(part_path):
        return _by_hash(paths, train_ratio), [], [TRAIN, EVAL]
    with tf.io.gfile.GFile(part_path, "r") as f:
        partition = datasets.parse_partition(f.read(), part_path)
    cands, rejects = [], []
    for p in paths:
        split = partition.get(posixpath.basename(p))
        if split is None:
            rejects.append(Reject(p, "unpartitioned", f"not listed in {CELEBA_PARTITION}"))
        else:
            cands.append(Candidate(_strip_ext(p), split, _parent(p), p))
    return cands, rejects, [TRAIN, EVAL, TEST]


def _scan_gopro(root: str) -> Tuple[List[Candidate], List[Reject]]:
    if not any(tf.io.gfile.isdir(posixpath.join(root, d)) for d in GOPRO_SPLITS):
        raise FileNotFoundError(f"data.layout=gopro: {root!r} has neither train/ nor test/")
    cands, rejects = [], []
    for top, split in GOPRO_SPLITS.items():
        top_dir = posixpath.join(root, top)
        if not tf.io.gfile.isdir(top_dir):
            continue
        for scene in sorted(d.rstrip("/") for d in tf.io.gfile.listdir(top_dir)):
            if scene.startswith(".") or not tf.io.gfile.isdir(posixpath.join(top_dir, scene)):
                continue
            frames = {kind: _frames(root, f"{top}/{scene}/{kind}") for kind in GOPRO_FRAMES}
            pairs, unpaired = datasets.pair_frames(frames["blur"], frames["sharp"])
            for stem, blur, sharp in pairs:
                cands.append(Candidate(f"{scene}/{stem}", split, scene, frames["sharp"][sharp], frames["blur"][blur]))
            for kind, name in unpaired:
                missing = "sharp" if kind == "blur" else "blur"
                stem = posixpath.splitext(name)[0]
                rejects.append(Reject(frames[kind][name], "unpaired", f"no {missing} frame named {stem}.*"))
    return cands, rejects


def _frames(root: str, sub: str) -> Dict[str, str]:
    """{file name: relative path} of the frames directly in root/sub."""
    return {posixpath.basename(p): p for p in _files_below(root, sub) if _parent(p) == sub}


def _drop_duplicate_ids(cands: List[Candidate]) -> Tuple[List[Candidate], List[Reject]]:
    """Keep the first file (by path) of each id: ids key splits, seeds and reports downstream."""
    seen: Dict[str, str] = {}
    keep, dups = [], []
    for c in sorted(cands, key=lambda c: c.image):
        if c.id in seen:
            dups.append(Reject(c.image, "duplicate_id", f"id {c.id!r} already taken by {seen[c.id]}"))
        else:
            seen[c.id] = c.image
            keep.append(c)
    return keep, dups


# -- input fingerprint (caching) -------------------------------------------------------------------


def tree_fingerprint(root: str) -> str:
    """Names, sizes and mtimes of every file below root, in the style of TFX's split fingerprints.

    TFX's FileBasedExampleGen fingerprints one glob level (`root/*`); images in sub-folders would
    then change without invalidating the cached ExampleGen run.
    """
    paths = _files_below(root, "")
    names = hashlib.sha256("\n".join(paths).encode("utf-8")).hexdigest()[:16]
    total = xor_m = sum_m = 0
    for p in paths:
        st = tf.io.gfile.stat(posixpath.join(root, p))
        mtime = int(st.mtime_nsec // 1_000_000_000)
        total, xor_m, sum_m = total + st.length, xor_m ^ mtime, sum_m + mtime
    return (f"tree:{root},num_files:{len(paths)},names:{names},total_bytes:{total},"
            f"xor_checksum:{xor_m},sum_checksum:{sum_m}")
