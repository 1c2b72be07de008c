"""rejects.tsv: the ledger of files ingestion did not use, one line each with its reason
(contracts.datasets.REASONS), written into the Examples artifact beside the splits."""
from __future__ import annotations

import os
from typing import Iterable, List, NamedTuple

REJECTS_FILE = "rejects.tsv"
REJECTS_HEADER = "path\treason\tdetail"


class Reject(NamedTuple):
    """One line of the ledger."""

    path: str  # relative to the data root
    reason: str  # one of contracts.datasets.REASONS
    detail: str = ""


def printable(path: str) -> str:
    """A file name as text that is valid UTF-8 and stays in one TSV column: undecodable bytes and
    control characters (tab, newline) as \\xNN. Applying it twice changes nothing."""
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:  # a surrogate that no file system decoding made
        raw = path.encode("utf-8", "backslashreplace")
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 32 or ord(c) == 127 else c for c in text)


def format_rejects(rejects: Iterable[Reject]) -> str:
    """rejects.tsv text: a header line, then one sorted line per reject (whitespace runs in details one
    space, paths and details `printable`, so every line stays three columns of UTF-8)."""
    clean = lambda s: " ".join(str(s).split())
    lines = [REJECTS_HEADER] + ["\t".join((printable(r.path), r.reason, printable(clean(r.detail))))
                                for r in sorted(rejects)]
    return "\n".join(lines) + "\n"


def parse_rejects(text: str) -> List[Reject]:
    rows = text.splitlines()
    if not rows or rows[0] != REJECTS_HEADER:
        raise ValueError(f"not a {REJECTS_FILE} file (header {rows[:1]})")
    return [Reject(*line.split("\t", 2)) for line in rows[1:] if line]
