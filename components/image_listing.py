"""Image ingestion's listing: the candidates of a dataset layout (contracts/datasets.py), their splits,
the rejects visible from names alone, and the fingerprint that decides ExampleGen's caching.

Plain Python over local and cloud paths (components/tree_walk.py: what is not a regular file, a symlink
loop, a dangling symlink, is a reject here, never opened), run in ImageExampleGen's executor before its
Beam pipeline and testable on its own. Files are recognised by content later (components/image_check.py):
a text file in an image folder is rejected as `not_image`, listed and counted, never silently dropped.
"""
from __future__ import annotations

import hashlib
import posixpath
from typing import Dict, Iterable, List, NamedTuple, Tuple

import tensorflow as tf

from components import tree_walk
from components.rejects_ledger import Reject
from contracts import datasets
from contracts.datasets import CELEBA_IMAGES, CELEBA_PARTITION, EVAL, GOPRO_FRAMES, GOPRO_SPLITS, TEST, TRAIN


class Candidate(NamedTuple):
    """One example to be: an image (or a GOPRO sharp/blur pair) and where it goes."""

    id: str
    split: str
    scene: str
    image: str  # path relative to the root (the sharp frame for GOPRO)
    blur: str | None = None  # GOPRO only


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
        paths, rejects = _files_below(root, "")
        cands, splits = _by_hash(paths, train_ratio), [TRAIN, EVAL]
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


def _files_below(root: str, sub: str, recursive: bool = True) -> Tuple[List[str], List[Reject]]:
    """(relative paths of the regular non-hidden files below root/sub, sorted; the entries that are
    not readable regular files, as rejects)."""
    tree = tree_walk.walk(root, sub, recursive)
    return [f.path for f in tree.files], tree.rejects


def _strip_ext(path: str) -> str:
    return posixpath.splitext(path)[0]


def _parent(path: str) -> str:
    parent = posixpath.dirname(path)
    return "" if parent in ("", ".") else parent


def _by_hash(paths: Iterable[str], train_ratio: float) -> List[Candidate]:
    out = []
    for p in paths:
        example_id = _strip_ext(p)
        out.append(Candidate(example_id, hash_split(example_id, train_ratio), _parent(p), p))
    return out


def _scan_celeba(root: str, train_ratio: float) -> Tuple[List[Candidate], List[Reject], List[str]]:
    if not tf.io.gfile.isdir(posixpath.join(root, CELEBA_IMAGES)):
        raise FileNotFoundError(f"data.layout=celeba: {root!r} has no {CELEBA_IMAGES}/ folder")
    paths, rejects = _files_below(root, CELEBA_IMAGES)
    part_path = posixpath.join(root, CELEBA_PARTITION)
    if not tf.io.gfile.exists(part_path):
        return _by_hash(paths, train_ratio), rejects, [TRAIN, EVAL]
    with tf.io.gfile.GFile(part_path, "r") as f:
        partition = datasets.parse_partition(f.read(), part_path)
    cands = []
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
        # Files beside the scene folders are not part of the layout (ignored), nor is what cannot be a folder.
        for scene in (posixpath.basename(d) for d in tree_walk.walk(root, top, recursive=False).folders):
            frames = {}
            for kind in GOPRO_FRAMES:
                paths, bad = _files_below(root, f"{top}/{scene}/{kind}", recursive=False)
                frames[kind] = {posixpath.basename(p): p for p in paths}
                rejects += bad
            kinds = {posixpath.basename(d) for d in tree_walk.walk(root, f"{top}/{scene}", recursive=False).folders}
            if datasets.sharp_only_scene(kinds):  # no blur/ folder at all: frames to blur synthetically
                cands += [Candidate(f"{scene}/{posixpath.splitext(name)[0]}", split, scene, path)
                          for name, path in sorted(frames["sharp"].items())]
                continue
            pairs, unpaired = datasets.pair_frames(frames["blur"], frames["sharp"])
            for stem, blur, sharp in pairs:
                cands.append(Candidate(f"{scene}/{stem}", split, scene, frames["sharp"][sharp], frames["blur"][blur]))
            for kind, name in unpaired:
                missing = "sharp" if kind == "blur" else "blur"
                stem = posixpath.splitext(name)[0]
                rejects.append(Reject(frames[kind][name], "unpaired", f"no {missing} frame named {stem}.*"))
    return cands, rejects


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
    """Names, sizes and mtimes of every file below root, in the style of TFX's split fingerprints,
    plus the names and reasons of the entries the listing rejects (a FIFO, a dangling symlink), so
    that one appearing or going away runs ExampleGen again. Nothing is opened.

    TFX's FileBasedExampleGen fingerprints one glob level (`root/*`); images in sub-folders would
    then change without invalidating the cached ExampleGen run.
    """
    files, rejects, _ = tree_walk.walk(root, "", remote_sizes=True)
    listed = [f.path for f in files] + [f"{r.path}\t{r.reason}" for r in rejects]
    names = hashlib.sha256("\n".join(listed).encode("utf-8")).hexdigest()[:16]
    total = xor_m = sum_m = 0
    for f in files:
        total, xor_m, sum_m = total + f.size, xor_m ^ f.mtime_s, sum_m + f.mtime_s
    return (f"tree:{root},num_files:{len(files)},names:{names},total_bytes:{total},"
            f"xor_checksum:{xor_m},sum_checksum:{sum_m}")
