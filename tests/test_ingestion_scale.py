"""ImageExampleGen's Beam job graph does not grow with the number of images (issue 15: Dataflow refuses
job graphs over about 20 MB; `beam.Create` of CelebA's listing made one of about 715 MB).

A real tree of 200,000 (empty) files, listed by the executor's own scan, shard files written as the
executor writes them, the pipeline built exactly as `Executor.Do` builds it, and its runner API proto
serialised as a runner receives it. Nothing is run: the files are listed, never read.
"""
import os
import time

import apache_beam as beam
import pytest

from components import image_listing, listing_shards
from components.image_example_gen import build_pipeline, write_listing

N_FILES = 200_000
GRAPH_LIMIT = 1 << 20  # 1 MB, a twentieth of Dataflow's limit


def make_tree(root, n, per_folder=2000):
    """n empty files in folders of `per_folder`, CelebA-style names; a few seconds for 200,000."""
    for i in range(n):
        if i % per_folder == 0:
            folder = os.path.join(root, f"part{i // per_folder:03d}")
            os.makedirs(folder)
        os.close(os.open(os.path.join(folder, f"{i:06d}.jpg"), os.O_CREAT | os.O_WRONLY, 0o644))


def graph_bytes(n_files, tmp_path):
    root = str(tmp_path / f"tree{n_files:06d}")
    make_tree(root, n_files)
    start = time.perf_counter()
    listing = image_listing.scan(root, "folder", 0.8)
    shards = write_listing(listing, str(tmp_path / f"listing{n_files:06d}"))
    pipeline = beam.Pipeline()
    build_pipeline(pipeline, shards, listing.split_names, str(tmp_path / "out"), 64, 10**8)
    size = len(pipeline.to_runner_api().SerializeToString())
    print(f"{n_files} files: {len(listing.candidates)} candidates, {shards.count} shards, "
          f"job graph {size} bytes (listing + build {time.perf_counter() - start:.1f} s)")
    return listing, shards, size


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_job_graph_of_200k_files_stays_under_1mb_and_does_not_grow(tmp_path):
    small_listing, _, small = graph_bytes(20, tmp_path)
    listing, shards, big = graph_bytes(N_FILES, tmp_path)
    assert len(listing.candidates) == N_FILES and not listing.rejects
    assert big < GRAPH_LIMIT
    assert abs(big - small) < 100  # the graph holds the shards' directory and count, not the names
    assert shards.count == -(-N_FILES // listing_shards.SHARD_SIZE)
    # The shards hold the whole listing, in the executor's (seeded, shuffled) order, splits as listed.
    read_back = [item for i in range(shards.count) for item in listing_shards.read(shards.directory, i)]
    assert sorted(read_back) == sorted(listing.candidates)
    assert read_back != sorted(read_back)  # shuffled
    again = write_listing(listing, shards.directory + "-again")
    assert [item for i in range(again.count) for item in listing_shards.read(again.directory, i)] == read_back
