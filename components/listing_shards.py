"""ImageExampleGen's file listing as shard files that the Beam pipeline reads, so that the job graph
does not grow with the number of images.

`beam.Create(items)` would embed every candidate in the pipeline proto sent to the runner: about
715 MB for CelebA's 202,599 files, far past Dataflow's ~20 MB job-graph limit. Instead the executor
writes the (already shuffled) listing as JSON-lines shards next to its output, and the graph holds
their directory and count only; shard indices are spread over the workers by a shuffle keyed on the
index (deterministic: the local runner reads the shards in order, so a rerun writes the same files).
"""
from __future__ import annotations

import json
import posixpath
from typing import Iterable, Iterator, List, NamedTuple

import apache_beam as beam
import tensorflow as tf
from apache_beam.transforms.util import ReshufflePerKey

from components.image_listing import Candidate
from components.rejects_ledger import Reject

SHARD_SIZE = 1000  # items per shard: ~100 KB, the unit a worker takes at a time


class Shards(NamedTuple):
    root: str  # the data root the paths are relative to
    directory: str
    count: int


def shard_path(directory: str, index: int) -> str:
    return posixpath.join(directory, f"listing-{index:06d}.jsonl")


def write(items: Iterable[Candidate | Reject], root: str, directory: str, shard_size: int = 0) -> Shards:
    """Write items, in order, as shards of `shard_size` (default SHARD_SIZE) lines; returns where they are."""
    shard_size = shard_size or SHARD_SIZE
    tf.io.gfile.makedirs(directory)
    count, batch = 0, []
    for item in items:
        batch.append(_encode(item))
        if len(batch) == shard_size:
            _write_shard(shard_path(directory, count), batch)
            count, batch = count + 1, []
    if batch:
        _write_shard(shard_path(directory, count), batch)
        count += 1
    return Shards(root, directory, count)


def read(directory: str, index: int) -> Iterator[Candidate | Reject]:
    with tf.io.gfile.GFile(shard_path(directory, index), "r") as f:
        for line in f:
            yield _decode(line)


def remove(shards: Shards) -> None:
    if tf.io.gfile.exists(shards.directory):
        tf.io.gfile.rmtree(shards.directory)


@beam.ptransform_fn
def ReadListing(pipeline: beam.Pipeline, shards: Shards):
    """The listing's items as a PCollection; the graph holds one element whatever the listing's size."""
    directory, count = shards.directory, shards.count
    return (pipeline
            | "Count" >> beam.Create([count])
            | "Indices" >> beam.FlatMap(lambda n: list(range(n)))
            | "KeyByIndex" >> beam.Map(lambda i: (i, None))
            | "SpreadShards" >> ReshufflePerKey()  # a fusion break: shards go to different workers
            | "Index" >> beam.Keys()
            | "ReadShard" >> beam.FlatMap(lambda i: read(directory, i)))


def _write_shard(path: str, lines: List[str]) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("".join(lines))


def _encode(item: Candidate | Reject) -> str:
    kind = "c" if isinstance(item, Candidate) else "r"
    return json.dumps({kind: list(item)}, ensure_ascii=True) + "\n"


def _decode(line: str) -> Candidate | Reject:
    obj = json.loads(line)
    return Candidate(*obj["c"]) if "c" in obj else Reject(*obj["r"])
