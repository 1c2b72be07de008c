"""rejects.tsv: the ledger of files ingestion did not use, one line each with its reason
(contracts.datasets.REASONS), written into the Examples artifact beside the splits."""
from __future__ import annotations

from typing import Iterable, List

from components.image_listing import Reject

REJECTS_FILE = "rejects.tsv"
REJECTS_HEADER = "path\treason\tdetail"


def format_rejects(rejects: Iterable[Reject]) -> str:
    """rejects.tsv text: a header line, then one sorted line per reject (tabs/newlines in details
    become spaces so every line stays three columns)."""
    clean = lambda s: " ".join(str(s).split())
    lines = [REJECTS_HEADER] + ["\t".join((r.path, r.reason, clean(r.detail))) for r in sorted(rejects)]
    return "\n".join(lines) + "\n"


def parse_rejects(text: str) -> List[Reject]:
    rows = text.splitlines()
    if not rows or rows[0] != REJECTS_HEADER:
        raise ValueError(f"not a {REJECTS_FILE} file (header {rows[:1]})")
    return [Reject(*line.split("\t", 2)) for line in rows[1:] if line]
