"""ImageExampleGen: layouts, splits, bad-file handling, counters; real Beam and a real BeamDagRunner run.

Images are real photographs (the committed samples, as PNG and re-encoded as JPEG) copied into tmp
folders, with the bad and odd files crafted next to them.
"""
import glob
import io
import logging
import os

import numpy as np
import pytest
import sample_images
from example_gen_io import assert_stored_as, read_rejects, read_split, run_executor
from PIL import Image
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components import image_check, image_listing
from components.image_example_gen import NAMESPACE, ImageExampleGen
from config import SAMPLE_DATA, preset
from contracts import datasets
from models import images

MAX_PIXELS = 600_000  # above the photographs, below the crafted 2000x2000 header


# -- crafting files ---------------------------------------------------------------------------------


corpus_script = sample_images.data_script("make_hostile_corpus")  # its PNG writers
png16_rgb, bomb_png, pil_bytes = corpus_script.png16_rgb, corpus_script.bomb_png, corpus_script.encode

JPEG_NAMES = ("astronaut_06", "chelsea_05", "coffee_04", "flower_03", "rocket_07")
PNG_NAMES = ("china_05", "coffee_06", "astronaut_11")


def save(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# -- unit level: listing and checks without Beam ----------------------------------------------------


def test_hash_split_is_deterministic_and_follows_ratio():
    ids = [f"img_align_celeba/{i:06d}" for i in range(2000)]
    first = [image_listing.hash_split(i, 0.8) for i in ids]
    assert first == [image_listing.hash_split(i, 0.8) for i in ids]
    assert 0.76 < first.count("train") / len(ids) < 0.84
    assert {image_listing.hash_split(i, 0.5) for i in ids} == {"train", "eval"}


def test_partition_file_parsing_rejects_malformed_lines():
    assert datasets.parse_partition("000001.jpg 0\n\n000002.jpg 1\n000003.jpg 2\n") == {
        "000001.jpg": "train", "000002.jpg": "eval", "000003.jpg": "test"}
    assert datasets.parse_partition("image_id,partition\n000001.jpg,2\n") == {"000001.jpg": "test"}  # Kaggle's
    with pytest.raises(ValueError, match=r"list_eval_partition.txt:2"):
        datasets.parse_partition("000001.jpg 0\n000002.jpg 3\n")
    with pytest.raises(ValueError, match=r"two different splits"):
        datasets.parse_partition("000001.jpg 0\n000001.jpg 1\n")


def test_check_image_reasons_from_bytes():
    good = sample_images.png("coffee_06")
    corrupt = bytearray(good)
    corrupt[len(good) // 2:len(good) // 2 + 200] = bytes(200)
    cases = {
        "empty": b"",
        "not_image": b"id\tsplit\n1\t0\n",
        "corrupt": bytes(corrupt),
        "truncated": good[:len(good) // 2],
        "too_small": pil_bytes(Image.new("RGB", (40, 80))),
        "too_large": bomb_png(2000),
    }
    for reason, data in cases.items():
        with pytest.raises(image_check.Rejected) as e:
            image_check.check_image(data, min_size=64, max_pixels=MAX_PIXELS)
        assert e.value.reason == reason, (reason, e.value)
    # Far beyond PIL's own decompression-bomb limit: rejected from the header, still too_large.
    with pytest.raises(image_check.Rejected, match="too_large"):
        image_check.check_image(bomb_png(100_000), min_size=64, max_pixels=10**12)
    kept = image_check.check_image(good, min_size=64, max_pixels=MAX_PIXELS)
    assert kept.data is good and not kept.converted and (kept.height, kept.width) == (128, 128)


# -- layouts through the Beam executor ----------------------------------------------------------------


@pytest.fixture()
def messy_folder(tmp_path):
    """Good images (JPEG photos, PNG photos in a sub-folder, grey/RGBA/palette/16-bit conversions) and
    one file of every bad kind. Returns (root, {id: source bytes}, {relative path: reason})."""
    root = tmp_path / "images"
    jpegs = {n: sample_images.jpeg(n) for n in JPEG_NAMES[:4]}
    pngs = {n: sample_images.png(n) for n in PNG_NAMES}
    expected = {}
    for name, data in jpegs.items():
        save(root / f"{name}.jpg", data)
        expected[name] = data
    for name, data in pngs.items():
        save(root / "png" / f"{name}.png", data)
        expected[f"png/{name}"] = data

    face = Image.open(io.BytesIO(jpegs[JPEG_NAMES[0]]))
    bird = images.read_rgb8(pngs[PNG_NAMES[1]])
    odd = {
        "odd/grey.png": pil_bytes(face.convert("L")),
        "odd/palette.png": pil_bytes(face.convert("P", palette=Image.ADAPTIVE)),
        "odd/grey16.png": pil_bytes(Image.fromarray(np.asarray(face.convert("L"), np.uint16) * 257)),
        "odd/rgb16.png": png16_rgb(bird),
    }
    # A graded alpha: composited over white, so not the raw colour values.
    rgba = Image.fromarray(bird).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 128).astype(np.uint8), (128, 1))))
    odd["odd/rgba.png"] = pil_bytes(rgba)
    for rel, data in odd.items():
        save(root / rel, data)
        expected[rel[:-4]] = data
    assert not np.array_equal(images.read_rgb8(odd["odd/rgba.png"]), bird)
    np.testing.assert_array_equal(images.read_rgb8(odd["odd/rgb16.png"]), bird)  # 16 -> 8 bits: the top byte

    good_png = pngs[PNG_NAMES[2]]
    corrupt = bytearray(good_png)
    corrupt[len(corrupt) // 2:len(corrupt) // 2 + 300] = bytes(300)
    bad = {
        "bad/corrupt.png": (bytes(corrupt), "corrupt"),
        "bad/truncated.jpg": (jpegs[JPEG_NAMES[1]][:3000], "truncated"),
        "bad/empty.png": (b"", "empty"),
        "bad/notes.txt": (b"these are not pixels\n", "not_image"),
        "bad/small.png": (pil_bytes(Image.fromarray(bird[:48, :48])), "too_small"),
        "bad/bomb.png": (bomb_png(2000), "too_large"),
        "bad/dup.png": (good_png, "duplicate_id"),  # bad/dup.jpg (below) owns the id "bad/dup"
    }
    for rel, (data, _) in bad.items():
        save(root / rel, data)
    save(root / "bad/dup.jpg", jpegs[JPEG_NAMES[2]])
    expected["bad/dup"] = jpegs[JPEG_NAMES[2]]
    save(root / ".hidden/ignored.png", good_png)  # hidden folders are not part of the data
    return str(root), expected, {rel: reason for rel, (_, reason) in bad.items()}


def test_folder_layout_keeps_every_good_image_and_lists_every_bad_one(messy_folder, tmp_path, caplog):
    root, expected, bad = messy_folder
    cfg = preset("tiny").override({"data.root": root, "data.layout": "folder", "data.max_pixels": MAX_PIXELS})
    from absl import logging as absl_logging

    # The executor logs through absl, whose own verbosity an earlier TFX run in this process may have
    # raised to WARNING; the summary lines must reach caplog whatever ran before.
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    try:
        with caplog.at_level(logging.INFO):
            examples = run_executor(cfg, tmp_path / "out")
    finally:
        absl_logging.set_verbosity(verbosity)

    splits = {s: read_split(examples.uri, s) for s in ("train", "eval")}
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
    # Uncompressed TFRecords without a suffix: TFX readers take the compression from the suffix.
    assert examples_utils.get_payload_format(examples) == example_gen_pb2.FORMAT_TF_EXAMPLE
    assert examples_utils.get_file_format(examples) == "tfrecords_gzip"
    files = glob.glob(os.path.join(examples.uri, "Split-*", "*"))
    assert files and not any(f.endswith(".gz") for f in files)
    got = {**splits["train"], **splits["eval"]}
    assert sorted(got) == sorted(expected)
    for split, exs in splits.items():
        for i, feats in exs.items():
            assert image_listing.hash_split(i, cfg.data.train_ratio) == split
            assert set(feats) == {"id", "image", "height", "width", "scene"}
            assert feats["scene"].decode() == os.path.dirname(i)
            assert_stored_as(feats, expected[i], converted=i.startswith("odd/"))

    assert read_rejects(examples.uri) == bad
    # Counters are Beam's, read back from the PipelineResult onto the artifact, and logged.
    # Every file is read once but the duplicate id, which the listing rejects.
    read = [os.path.join(root, p) for p in [f"{i}.jpg" for i in JPEG_NAMES[:4]] + [f"png/{n}.png" for n in PNG_NAMES]
            + list(odd_paths(root)) + [p for p, r in bad.items() if r != "duplicate_id"] + ["bad/dup.jpg"]]
    counts = {k: examples.get_int_custom_property(k) for k in ["accepted", "converted", "rejected", "files_read",
                                                               "bytes_read"] + [f"rejected_{r}" for r in bad.values()]}
    assert counts == {"accepted": len(expected), "converted": 5, "rejected": len(bad), "files_read": len(read),
                      "bytes_read": sum(os.path.getsize(p) for p in read), **{f"rejected_{r}": 1 for r in bad.values()}}
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{NAMESPACE} summary")]
    assert f"{NAMESPACE} summary: rejected_corrupt = 1" in logged
    assert f"{NAMESPACE} summary: accepted = {len(expected)}" in logged
    assert f"{NAMESPACE} summary: files_read = {len(read)}" in logged


def odd_paths(root):
    return (os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "odd", "*")))


def test_celeba_layout_splits_as_the_partition_file_says(tmp_path):
    root = tmp_path / "celeba"
    photos = sorted(glob.glob(os.path.join(SAMPLE_DATA, "*.png")))[::5][:13]
    names = [f"{i:06d}.jpg" for i in range(1, 14)]  # img_align_celeba's naming
    for name, photo in zip(names, photos, strict=True):
        save(root / "img_align_celeba" / name, pil_bytes(Image.open(photo), "JPEG"))
    want = {n: ("train" if i < 6 else "eval" if i < 10 else "test") for i, n in enumerate(names[:12])}
    code = {"train": 0, "eval": 1, "test": 2}
    # names[12] is not listed (rejected); 999999.jpg is listed but absent (ignored).
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{n} {code[s]}\n" for n, s in want.items()) + "999999.jpg 0\n")
    cfg = preset("srgan-celeba").override({"data.root": str(root)})

    examples = run_executor(cfg, tmp_path / "out")

    got = {s: read_split(examples.uri, s) for s in ("train", "eval", "test")}
    for split, exs in got.items():
        assert sorted(exs) == sorted(f"img_align_celeba/{n[:-4]}" for n, s in want.items() if s == split)
        for feats in exs.values():
            assert feats["scene"] == b"img_align_celeba" and (feats["height"], feats["width"]) == (128, 128)
    assert read_rejects(examples.uri) == {f"img_align_celeba/{names[12]}": "unpartitioned"}
    assert examples.get_int_custom_property("rejected_unpartitioned") == 1


def test_gopro_layout_pairs_blur_and_sharp_by_scene_and_name(tmp_path):
    root = tmp_path / "gopro"
    frames = {}  # id -> {"sharp": PNG bytes, "blur": PNG bytes}: a photograph and its camera-shake blur
    for (split_dir, scene), photo in zip((("train", "GOPR0384_11_00"), ("test", "GOPR0396_11_00")),
                                         ("china_05", "rocket_07"), strict=True):
        sharp = sample_images.rgb(photo)
        blur = sample_images.blurred(sharp)
        for kind, data in (("sharp", images.encode_png(sharp)), ("blur", images.encode_png(blur))):
            save(root / split_dir / scene / kind / "000001.png", data)
            frames.setdefault(f"{scene}/000001", {})[kind] = data
    # The same frames under the swapped name: pairing must follow names, not listing order.
    a, b = frames["GOPR0384_11_00/000001"], frames["GOPR0396_11_00/000001"]
    save(root / "train/GOPR0384_11_00/blur/000002.png", b["blur"])
    save(root / "train/GOPR0384_11_00/sharp/000002.png", b["sharp"])
    frames["GOPR0384_11_00/000002"] = b
    save(root / "train/GOPR0384_11_00/blur/000003.png", a["blur"])  # no sharp frame
    save(root / "test/GOPR0396_11_00/sharp/000004.png", a["sharp"])  # no blur frame
    half = pil_bytes(Image.open(io.BytesIO(a["blur"])).crop((0, 0, 96, 96)))
    save(root / "test/GOPR0396_11_00/blur/000005.png", half)
    save(root / "test/GOPR0396_11_00/sharp/000005.png", a["sharp"])  # sizes differ
    save(root / "train/GOPR0384_11_00/blur_gamma/000001.png", a["blur"])  # GOPRO_Large extra: ignored
    # A scene of sharp frames only (no blur/ folder): examples without `blur`, blurred by Transform.
    save(root / "train/photos/sharp/tile_1.png", b["sharp"])
    frames["photos/tile_1"] = {"sharp": b["sharp"]}
    cfg = preset("deblurgan-gopro").override({"data.root": str(root), "data.crop_size": 64})

    examples = run_executor(cfg, tmp_path / "out")

    got = {s: read_split(examples.uri, s) for s in ("train", "eval")}
    assert sorted(got["train"]) == ["GOPR0384_11_00/000001", "GOPR0384_11_00/000002", "photos/tile_1"]
    assert sorted(got["eval"]) == ["GOPR0396_11_00/000001"]
    for exs in got.values():
        for i, feats in exs.items():
            assert feats["image"] == frames[i]["sharp"] and feats.get("blur") == frames[i].get("blur")
            assert feats["scene"].decode() == i.split("/")[0] and (feats["height"], feats["width"]) == (128, 128)
    assert read_rejects(examples.uri) == {
        "train/GOPR0384_11_00/blur/000003.png": "unpaired",
        "test/GOPR0396_11_00/sharp/000004.png": "unpaired",
        "test/GOPR0396_11_00/blur/000005.png": "size_mismatch",
    }
    assert examples.get_int_custom_property("rejected_unpaired") == 2


def test_layout_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no img_align_celeba/"):
        image_listing.scan(str(tmp_path), "celeba", 0.8)
    with pytest.raises(FileNotFoundError, match="neither train/ nor test/"):
        image_listing.scan(str(tmp_path), "gopro", 0.8)
    with pytest.raises(ValueError, match="no image files found"):
        image_listing.scan(str(tmp_path), "folder", 0.8)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        image_listing.scan(str(tmp_path / "absent"), "folder", 0.8)


# -- the component in a real TFX pipeline -------------------------------------------------------------


@pytest.mark.slow
def test_component_runs_in_beam_dag_runner_and_caches_on_the_whole_tree(tmp_path):
    from ml_metadata.metadata_store import metadata_store
    from tfx.orchestration import metadata, pipeline
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    root = tmp_path / "data"
    for name in JPEG_NAMES:
        save(root / "sub" / "deeper" / f"{name}.jpg", sample_images.jpeg(name))
    save(root / "readme.txt", b"not an image\n")
    cfg = preset("tiny").override({"data.root": str(root), "run_root": str(tmp_path / "runs")})
    conn = metadata.sqlite_metadata_connection_config(cfg.metadata_path)

    def run():
        BeamDagRunner().run(pipeline.Pipeline(
            pipeline_name=cfg.pipeline_name, pipeline_root=cfg.pipeline_root,
            components=[ImageExampleGen(config=cfg)], enable_cache=True,
            metadata_connection_config=conn, beam_pipeline_args=[]))
        return metadata_store.MetadataStore(conn).get_artifacts_by_type("Examples")

    first = run()
    assert len(first) == 1
    art = first[0]
    assert art.custom_properties["accepted"].int_value == 5
    assert art.custom_properties["rejected_not_image"].int_value == 1
    assert "num_files:6" in art.custom_properties["input_fingerprint"].string_value
    assert read_rejects(art.uri) == {"readme.txt": "not_image"}
    n = sum(len(read_split(art.uri, s)) for s in ("train", "eval"))
    assert n == 5

    assert len(run()) == 1  # unchanged data: the cached execution is reused
    save(root / "sub" / "deeper" / "extra.png", sample_images.png(PNG_NAMES[0]))
    after = run()  # an image added two levels down invalidates the cache
    assert len(after) == 2 and after[-1].custom_properties["accepted"].int_value == 6
