"""The files below a data root, walked so that no single path can stop or hang ingestion.

A local tree can hold anything: FIFOs, sockets and devices (opening a FIFO blocks until a writer
comes, forever), symlink loops and dangling symlinks (stat fails), directory symlinks back to an
ancestor (an endless walk), names that are not UTF-8 (no id can be made of them), folders nobody may
read. The walk never opens an entry: it classifies each one from `stat` (following symlinks, as a
reader would), yields regular files with their size and mtime, and turns everything else into a
`Reject` with its reason (contracts.datasets.REASONS), listed in rejects.tsv like a damaged image.
Directory symlinks are followed unless they lead back to a folder on their own path (`find -L`'s
rule). Hidden names (`.git`, `.DS_Store`) are not data and are skipped.

Object stores (gs://, s3://) hold only objects: there the walk is `tf.io.gfile.walk`.
"""
from __future__ import annotations

import errno
import os
import posixpath
import stat
from typing import List, NamedTuple, Set, Tuple

import tensorflow as tf

from components.rejects_ledger import Reject, printable


class FileEntry(NamedTuple):
    path: str  # relative to the root, '/'-separated
    size: int
    mtime_s: int  # whole seconds, as TFX's fingerprints take them


class Tree(NamedTuple):
    files: List[FileEntry]  # regular files, sorted by path
    rejects: List[Reject]  # everything else that is not hidden, sorted by path
    folders: List[str]  # the folders found (walked, unless recursive=False), sorted


def is_remote(path: str) -> bool:
    return "://" in path


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words (for rejects.tsv)."""
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return f"special file (mode {mode:o})"


def walk(root: str, sub: str = "", recursive: bool = True, remote_sizes: bool = False) -> Tree:
    """The files, rejects and folders below root/sub, paths relative to root. `recursive=False`:
    only the entries directly in root/sub. A missing root/sub gives an empty Tree. On an object
    store sizes and mtimes cost a request per object: 0 unless `remote_sizes`."""
    top = posixpath.join(root, sub) if sub else root
    if is_remote(root):
        return _walk_remote(root, top, recursive, remote_sizes)
    files: List[FileEntry] = []
    rejects: List[Reject] = []
    folders: List[str] = []
    try:
        top_stat = os.stat(top)
    except OSError:
        return Tree([], [], [])
    if not stat.S_ISDIR(top_stat.st_mode):
        return Tree([], [], [])
    # (directory relative to root, (dev, inode) of it and of each folder above it up to root/sub)
    pending = [(sub.strip("/"), frozenset([(top_stat.st_dev, top_stat.st_ino)]))]
    while pending:
        rel_dir, ancestors = pending.pop()
        try:
            with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
                names = sorted((e.name, e) for e in it if not e.name.startswith("."))
        except OSError as e:
            rejects.append(Reject(printable(rel_dir), "unreadable", f"folder: {_os_error(e)}"))
            continue
        for name, entry in names:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            found = _classify(entry, rel, ancestors)
            if isinstance(found, Reject):
                rejects.append(found)
            elif isinstance(found, FileEntry):
                files.append(found)
            else:
                folders.append(rel)
                if recursive:
                    pending.append((rel, ancestors | {found}))
    return Tree(sorted(files), sorted(rejects), sorted(folders))


def _classify(entry: os.DirEntry, rel: str, ancestors: Set[Tuple[int, int]]):
    """A FileEntry, a Reject, or the (dev, inode) of a folder to descend into."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return Reject(printable(rel), "bad_name", "the name is not valid UTF-8: no id can be made of it")
    try:
        st = entry.stat(follow_symlinks=True)  # stat, never open: a FIFO is not touched
    except OSError as e:
        return Reject(printable(rel), *stat_error(e, entry.path))
    if stat.S_ISDIR(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            return Reject(printable(rel), "symlink_loop", f"symbolic link to {_target(entry.path)}, a folder above "
                                                          "it: walking it would never end")
        return key
    if not stat.S_ISREG(st.st_mode):
        return Reject(printable(rel), "not_a_file", kind_of(st.st_mode))
    return FileEntry(rel, st.st_size, int(st.st_mtime_ns // 1_000_000_000))


def stat_error(e: OSError, path: str) -> Tuple[str, str]:
    """(reason, detail) of a failed stat of `path`: a symlink loop, a dangling symlink, or unreadable."""
    if os.path.islink(path):
        if e.errno == errno.ELOOP:
            return "symlink_loop", f"symbolic link to {_target(path)}: {_os_error(e)}"
        if e.errno == errno.ENOENT:
            return "dangling_symlink", f"symbolic link to {_target(path)}, which does not exist"
    return "unreadable", _os_error(e)


def _target(path: str) -> str:
    try:
        return repr(printable(os.readlink(path)))
    except OSError:
        return "?"


def _os_error(e: OSError) -> str:
    return f"{type(e).__name__}: {e.strerror or e}"


def _walk_remote(root: str, top: str, recursive: bool, sizes: bool) -> Tree:
    if not tf.io.gfile.isdir(top):
        return Tree([], [], [])
    out, folders = [], []
    base = root.rstrip("/")
    for dirpath, dirnames, filenames in tf.io.gfile.walk(top):
        rel_dir = posixpath.relpath(dirpath.rstrip("/"), base)
        if any(part.startswith(".") for part in rel_dir.split("/") if part != "."):
            continue
        dirnames[:] = [d.rstrip("/") for d in dirnames if not d.startswith(".")]
        folders += [posixpath.normpath(posixpath.join(rel_dir, d)) for d in dirnames]
        if not recursive:
            dirnames[:] = []
        for f in filenames:
            if f.startswith("."):
                continue
            size = mtime = 0
            if sizes:
                st = tf.io.gfile.stat(posixpath.join(dirpath, f))
                size, mtime = st.length, int(st.mtime_nsec // 1_000_000_000)
            out.append(FileEntry(posixpath.normpath(posixpath.join(rel_dir, f)), size, mtime))
    return Tree(sorted(out), [], sorted(folders))
