"""No file in a data folder can stop or hang ingestion (issue 18): the hostile corpus of
data/make_hostile_corpus.py (45 sample photographs, every odd-but-valid format, every kind of bad
file: FIFO, socket, symlink loops, dangling symlinks, folder links to `.` and `..`, /dev/zero,
corrupt PNGs of every colour type, corrupt JPEG bodies, bombs, a name that is not UTF-8...) through
ImageExampleGen's executor and once through a real BeamDagRunner with the component's driver.
Every good image is kept (and stored as Transform will read it), every bad file is in rejects.tsv
with its reason, the counters add up, and a time bound on each test catches a hang.
"""
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
import sample_images
from example_gen_io import assert_stored_as, read_rejects, read_split, run_executor

from components import image_check, image_listing, tree_walk
from components.rejects_ledger import printable
from config import preset

corpus_script = sample_images.data_script("make_hostile_corpus")
# Decided by the listing, before any byte is read: these files are never opened.
LISTING_REASONS = {"symlink_loop", "dangling_symlink", "not_a_file", "bad_name", "duplicate_id"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile") / "corpus"
    yield corpus_script.build(str(out))
    os.chmod(out / "locked_dir", 0o755)  # so that pytest can remove it


def expected_rejects(corpus):
    """{path as rejects.tsv prints it: reason}."""
    return {printable(path): reason for path, reason in corpus.rejects().items()}


def corpus_config(corpus, tmp_path):
    return preset("tiny").override({"data.root": corpus.root, "data.layout": "folder",
                                    "run_root": str(tmp_path / "runs")})


def source_bytes(corpus, rel):
    with open(os.path.join(corpus.root, rel), "rb") as f:
        return f.read()


def check_output(corpus, uri, counts):
    """What a run over the corpus must have written and counted."""
    kept, rejects = corpus.kept(), expected_rejects(corpus)
    got = {}
    for split in ("train", "eval"):
        got.update(read_split(uri, split))
    assert sorted(got) == sorted(kept)
    for example_id, entry in kept.items():
        assert_stored_as(got[example_id], source_bytes(corpus, entry.path), converted=entry.expect == "converted")
    assert read_rejects(uri) == rejects

    reasons = sorted(set(rejects.values()))
    read = [e.path for e in corpus.entries if e.expect not in LISTING_REASONS and e.expect != "unreadable"]
    assert counts == {
        "accepted": len(kept),
        "converted": sum(e.expect == "converted" for e in kept.values()),
        "rejected": len(rejects),
        **{f"rejected_{r}": list(rejects.values()).count(r) for r in reasons},
        "files_read": len(read),
        "bytes_read": sum(os.path.getsize(os.path.join(corpus.root, p)) for p in read),
    }


@pytest.mark.timeout(300)
def test_the_corpus_holds_every_kind_it_promises(corpus):
    kinds = {e.kind for e in corpus.entries}
    for needed in ("FIFO", "socket", "symlink loop (two links)", "dangling symlink (top)",
                   "dangling symlink (sub-folder)", "folder symlink to . (top)", "PNG corrupt (grey, IDAT CRC)",
                   "JPEG corrupt body (RGB)", "JPEG CMYK", "PNG interlaced RGB", "WebP lossy", "duplicate id"):
        assert needed in kinds
    assert sum(e.kind.startswith("good ") for e in corpus.entries) == corpus_script.N_GOOD
    assert stat.S_ISFIFO(os.lstat(os.path.join(corpus.root, "fifo.png")).st_mode)
    assert os.readlink(os.path.join(corpus.root, "again")) == "."


@pytest.mark.timeout(300)
def test_listing_and_fingerprint_reject_what_is_not_a_regular_file_without_opening_it(corpus, tmp_path):
    listing = image_listing.scan(corpus.root, "folder", 0.8)
    want = {path: reason for path, reason in expected_rejects(corpus).items() if reason in LISTING_REASONS}
    assert {r.path: r.reason for r in listing.rejects} == want
    assert all(".git" not in c.image and "/." not in c.image for c in listing.candidates)

    fingerprint = image_listing.tree_fingerprint(corpus.root)
    assert fingerprint == image_listing.tree_fingerprint(corpus.root)
    # A new FIFO (never opened: this would block forever otherwise) changes the fingerprint.
    os.mkfifo(os.path.join(corpus.root, "bad", "another_fifo.png"))
    try:
        assert image_listing.tree_fingerprint(corpus.root) != fingerprint
    finally:
        os.remove(os.path.join(corpus.root, "bad", "another_fifo.png"))


UNREADABLE_PROBE = """
import json, sys
from components import image_check, image_listing
root = sys.argv[1]
out = {r.path: r.reason for r in image_listing.scan(root, "folder", 0.8).rejects if r.path.startswith("locked")}
try:
    image_check.read_file(root + "/locked.png")
    out["locked.png"] = "read"
except image_check.Rejected as e:
    out["locked.png"] = e.reason
print(json.dumps(out))
"""


@pytest.mark.timeout(300)
def test_chmod_000_is_unreadable_for_a_process_that_may_not_bypass_it(corpus):
    """Root reads chmod 000 files (the corpus expects them kept there). A process without the
    capabilities that let root bypass file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: dropped
    with setpriv) sees what any other user sees: both are rejects, and the run goes on."""
    cmd = [sys.executable, "-c", UNREADABLE_PROBE, corpus.root]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            pytest.skip("running as root without setpriv (util-linux): chmod 000 cannot stop this process")
        cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"locked_dir": "unreadable", "locked.png": "unreadable"}


def test_a_file_that_vanishes_or_turns_into_a_fifo_after_the_listing_is_rejected(tmp_path):
    gone = tmp_path / "gone.png"
    with pytest.raises(image_check.Rejected) as e:
        image_check.read_file(str(gone))
    assert e.value.reason == "unreadable"
    os.mkfifo(tmp_path / "fifo.png")  # listed as a file, swapped for a FIFO before the read
    with pytest.raises(image_check.Rejected) as e:
        image_check.read_file(str(tmp_path / "fifo.png"))
    assert e.value.reason == "not_a_file" and "FIFO" in e.value.detail
    os.mkdir(tmp_path / "folder.png")
    with pytest.raises(image_check.Rejected, match="not_a_file: directory"):
        image_check.read_file(str(tmp_path / "folder.png"))
    assert tree_walk.walk(str(tmp_path / "absent")).files == []


@pytest.mark.timeout(300)
def test_executor_keeps_every_good_image_and_lists_every_bad_file(corpus, tmp_path):
    examples = run_executor(corpus_config(corpus, tmp_path), tmp_path / "out")
    counts = {k: v.int_value for k, v in examples.mlmd_artifact.custom_properties.items()
              if k not in ("payload_format", "file_format")}
    check_output(corpus, examples.uri, counts)
    assert not os.path.exists(os.path.join(examples.uri, "listing-tmp"))  # the listing's shards are removed


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_beam_dag_runner_runs_the_component_over_the_corpus(corpus, tmp_path):
    """The component with its driver (the input fingerprint walks the corpus; TFX's own glob of the top
    level used to abort on the dangling symlink and the loops there) in a real BeamDagRunner run."""
    from ml_metadata.metadata_store import metadata_store
    from tfx.orchestration import metadata, pipeline
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    from components.image_example_gen import ImageExampleGen

    cfg = corpus_config(corpus, tmp_path)
    conn = metadata.sqlite_metadata_connection_config(cfg.metadata_path)
    BeamDagRunner().run(pipeline.Pipeline(
        pipeline_name=cfg.pipeline_name, pipeline_root=cfg.pipeline_root, components=[ImageExampleGen(config=cfg)],
        enable_cache=True, metadata_connection_config=conn, beam_pipeline_args=[]))
    [art] = metadata_store.MetadataStore(conn).get_artifacts_by_type("Examples")
    counts = {k: v.int_value for k, v in art.custom_properties.items()
              if k.startswith(("accepted", "converted", "rejected", "files_read", "bytes_read"))}
    check_output(corpus, art.uri, counts)
    assert art.custom_properties["input_fingerprint"].string_value == image_listing.tree_fingerprint(corpus.root)
    shutil.rmtree(cfg.pipeline_root)
