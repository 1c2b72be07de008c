"""The embedded sample set (data/samples, data/PROVENANCE.md, data/make_samples.py) and the CelebA /
GOPRO layout script (data/prepare_dataset.py) on tiny fakes of each download built from the samples."""
import os
import re
import shutil
import zipfile

import numpy as np
import pytest
import sample_images
from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO_ROOT, "data")
SAMPLES = os.path.join(DATA, "samples")


prep = sample_images.data_script("prepare_dataset")
make_samples = sample_images.data_script("make_samples")


# -- the embedded sample set -----------------------------------------------------------------------------


def _provenance_files():
    with open(os.path.join(DATA, "PROVENANCE.md"), encoding="utf-8") as f:
        return re.findall(r"^\| (\S+\.(?:png|jpg)) \|", f.read(), flags=re.M)


def test_every_sample_is_an_rgb_photo_listed_in_provenance():
    files = sorted(os.listdir(SAMPLES))
    listed = _provenance_files()
    assert sorted(listed) == files, "data/samples and PROVENANCE.md disagree"
    assert 40 <= len(files) <= 80
    total = 0
    for f in files:
        path = os.path.join(SAMPLES, f)
        total += os.path.getsize(path)
        with Image.open(path) as im:
            im.load()
            assert im.mode == "RGB", f
            assert 128 <= min(im.size) and max(im.size) <= 192, (f, im.size)
            a = np.asarray(im)
        # a real photograph, not a flat or grey tile
        assert a.std() > 10 and np.abs(a[..., 0].astype(int) - a[..., 2]).mean() > 1, f
    assert total < 4_000_000


def test_make_samples_reproduces_the_committed_set():
    try:
        samples = make_samples.build()
    except make_samples.SourceError as e:
        pytest.skip(f"source photographs unavailable: {e}")
    assert make_samples.differences(samples) == []
    # non-overlapping crops inside their source photo
    boxes = {}
    for s in samples:
        for other in boxes.get(s.source.stem, []):
            assert s.box[2] <= other[0] or other[2] <= s.box[0] or s.box[3] <= other[1] or other[3] <= s.box[1]
        boxes.setdefault(s.source.stem, []).append(s.box)


# -- CelebA layout -----------------------------------------------------------------------------------------


def jpeg_photos(folder, n: int) -> list:
    """`n` sample photographs written as JPEGs named as in img_align_celeba (000001.jpg, ...)."""
    os.makedirs(folder, exist_ok=True)
    names = []
    for i, sample in enumerate(sorted(os.listdir(SAMPLES))[:n], 1):
        names.append(f"{i:06d}.jpg")
        Image.open(os.path.join(SAMPLES, sample)).save(os.path.join(folder, names[-1]), "JPEG", quality=95)
    return names


@pytest.fixture
def fake_celeba(tmp_path):
    """img_align_celeba.zip + list_eval_partition.txt from 32 real photographs, with known defects:
    one image without a partition entry, one entry without an image, one empty file."""
    photos = tmp_path / "photos"
    faces = jpeg_photos(photos, 32)
    zpath = tmp_path / "img_align_celeba.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as z:
        for f in faces:
            z.write(photos / f, f"img_align_celeba/{f}")
        z.writestr("img_align_celeba/999998.jpg", b"")  # an empty download
        z.writestr("__MACOSX/img_align_celeba/._000001.jpg", b"junk")
    part = tmp_path / "list_eval_partition.txt"
    codes = [0] * 20 + [1] * 6 + [2] * 5
    lines = [f"{f} {c}" for f, c in zip(faces[:-1], codes, strict=True)]  # the last face has no entry
    lines += ["999998.jpg 0", "999999.jpg 2"]  # 999999.jpg: an entry without an image
    part.write_text("\n".join(lines) + "\n")
    return faces, zpath, part


def test_celeba_from_zip_lays_out_and_reports_defects(fake_celeba, tmp_path, capsys):
    faces, zpath, part = fake_celeba
    out = tmp_path / "celeba"
    rc = prep.main(["celeba", "--images", str(zpath), "--partition", str(part), "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    laid = sorted(os.listdir(out / "img_align_celeba"))
    assert laid == sorted(faces + ["999998.jpg"])
    assert (out / "img_align_celeba" / faces[0]).read_bytes() == (tmp_path / "photos" / faces[0]).read_bytes()
    s = prep.check_celeba(str(out))
    assert s.counts["images"] == len(faces) + 1
    assert s.counts["partition entries"] == len(faces) - 1 + 2
    assert s.counts["usable images per split"] == "train 20 / eval 6 / test 5"
    # Files the pipeline would reject carry ImageExampleGen's own reasons.
    assert s.problems["unpartitioned"] == [faces[-1]]
    assert s.problems["empty"] == ["999998.jpg (0 bytes)"]
    assert s.problems["partition_entry_without_image"] == ["1 entries, e.g. 999999.jpg"]
    assert "celeba layout at" in printed and "unpartitioned (1)" in printed
    assert "--preset srgan-celeba --set data.root=" in printed
    # the partition file is rewritten in the official format
    first = (out / "list_eval_partition.txt").read_text().splitlines()[0]
    assert first == f"{faces[0]} 0"
    # re-running keeps files in place; --strict turns the defects into a failing exit status
    again = prep.layout_celeba(str(zpath), str(out), partition=str(part))
    assert again.notes[0].startswith(f"0 files extracted from {zpath}, {len(faces) + 1} already in place")
    assert prep.main(["celeba", "--check-only", "--strict", "--out", str(out)]) == 1


def test_celeba_kaggle_folder_with_csv_partition_symlinked(tmp_path):
    nested = tmp_path / "archive" / "img_align_celeba" / "img_align_celeba"
    faces = jpeg_photos(nested, 8)
    rows = ["image_id,partition"] + [f"{f},{i % 3}" for i, f in enumerate(faces)]
    (tmp_path / "archive" / "list_eval_partition.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "celeba"
    s = prep.layout_celeba(str(tmp_path / "archive"), str(out), mode="symlink", decode=True)
    assert s.num_problems == 0
    assert s.counts["usable images per split"] == "train 3 / eval 3 / test 2"
    linked = out / "img_align_celeba" / faces[0]
    assert linked.is_symlink() and linked.read_bytes() == (nested / faces[0]).read_bytes()
    assert (out / "list_eval_partition.txt").read_text().splitlines()[1] == f"{faces[1]} 1"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("decode", [False, True])
def test_the_check_names_what_is_no_regular_file_without_opening_it(fake_celeba, tmp_path, decode):
    """A FIFO in the layout would block an open forever; links that never resolve would fail a stat."""
    faces, zpath, part = fake_celeba
    out = tmp_path / "celeba"
    prep.layout_celeba(str(zpath), str(out), partition=str(part))
    images = out / "img_align_celeba"
    os.mkfifo(images / "900001.jpg")
    os.symlink("900002.jpg", images / "900002.jpg")
    os.symlink("nothing.jpg", images / "900003.jpg")
    s = prep.check_celeba(str(out), decode=decode)
    assert s.problems["not_a_file"] == ["900001.jpg (FIFO (named pipe))"]
    assert [p.split(" ")[0] for p in s.problems["symlink_loop"]] == ["900002.jpg"]
    assert [p.split(" ")[0] for p in s.problems["dangling_symlink"]] == ["900003.jpg"]


def test_celeba_wrong_inputs_are_clear_errors(tmp_path, capsys):
    not_zip = tmp_path / "notes.txt"
    not_zip.write_text("hello")
    assert prep.main(["celeba", "--images", str(not_zip), "--out", str(tmp_path / "o")]) == 2
    assert "neither a folder nor a zip archive" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(prep.LayoutError, match="no .jpg images found"):
        prep.layout_celeba(str(tmp_path / "empty"), str(tmp_path / "o"))
    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(img_dir / "000001.jpg")
    with pytest.raises(prep.LayoutError, match="--no-partition"):
        prep.layout_celeba(str(img_dir), str(tmp_path / "o"))
    bad = tmp_path / "bad_partition.txt"
    bad.write_text("000001.jpg 0\n000002.jpg train\n")
    with pytest.raises(prep.LayoutError, match=r"bad_partition.txt:2: expected"):
        prep.layout_celeba(str(img_dir), str(tmp_path / "o"), partition=str(bad))
    with pytest.raises(prep.LayoutError, match="no img_align_celeba/ folder"):
        prep.check_celeba(str(tmp_path / "empty"))


# -- GOPRO layout ------------------------------------------------------------------------------------------


@pytest.fixture
def fake_gopro(tmp_path):
    """GOPRO_Large/{train,test}/<scene>/{blur,blur_gamma,sharp}/ from two photographs (blur: a box-blurred
    copy), plus an unpaired sharp frame and a pair whose sizes differ."""
    from PIL import ImageFilter

    root = tmp_path / "GOPRO_Large"
    for (split, scene), sample in zip((("train", "GOPR0384_11_00"), ("test", "GOPR0396_11_00")),
                                      ("china_05.png", "rocket_07.png"), strict=True):
        sharp = Image.open(os.path.join(SAMPLES, sample))
        for kind, im in (("blur", sharp.filter(ImageFilter.BoxBlur(3))), ("sharp", sharp), ("blur_gamma", sharp)):
            d = root / split / scene / kind
            d.mkdir(parents=True)
            im.save(d / "000001.png")
    shutil.copy(root / "train" / "GOPR0384_11_00" / "sharp" / "000001.png",
                root / "train" / "GOPR0384_11_00" / "sharp" / "000002.png")
    with Image.open(root / "test" / "GOPR0396_11_00" / "sharp" / "000001.png") as im:
        im.crop((0, 0, 64, 64)).save(root / "test" / "GOPR0396_11_00" / "blur" / "000003.png")
        im.crop((0, 0, 32, 32)).save(root / "test" / "GOPR0396_11_00" / "sharp" / "000003.png")
    return root


def test_gopro_from_folder_pairs_frames_and_reports_defects(fake_gopro, tmp_path):
    out = tmp_path / "gopro"
    s = prep.layout_gopro(str(tmp_path), str(out))  # the parent of GOPRO_Large/: nesting is found
    assert s.counts == {"train scenes": 1, "train pairs": 1, "test scenes": 1, "test pairs": 1}
    assert s.problems == {"unpaired": ["train/GOPR0384_11_00/sharp/000002.png"],
                          "size_mismatch": ["test/GOPR0396_11_00/{blur,sharp}/000003 ((64, 64) vs (32, 32))"]}
    assert sorted(os.listdir(out / "train" / "GOPR0384_11_00")) == ["blur", "sharp"]  # blur_gamma not copied
    assert (out / "train" / "GOPR0384_11_00" / "blur" / "000001.png").read_bytes() == \
        (fake_gopro / "train" / "GOPR0384_11_00" / "blur" / "000001.png").read_bytes()
    assert any("subset of GOPRO_Large" in n for n in s.notes)


def test_gopro_from_zip_with_gamma_blur(fake_gopro, tmp_path, capsys):
    zpath = tmp_path / "GOPRO_Large.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as z:
        for dirpath, _, files in os.walk(fake_gopro):
            for f in files:
                full = os.path.join(dirpath, f)
                z.write(full, os.path.relpath(full, tmp_path))
    out = tmp_path / "gopro"
    rc = prep.main(["gopro", "--source", str(zpath), "--blur", "blur_gamma", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    # 000003 has no blur_gamma frame, so with --blur blur_gamma its sharp frame is unpaired too
    assert "train pairs: 1" in printed and "unpaired (2)" in printed
    assert "--preset deblurgan-gopro --set data.root=" in printed
    # blur/ now holds the blur_gamma frames (in this fake: copies of the sharp frame)
    assert (out / "test" / "GOPR0396_11_00" / "blur" / "000001.png").read_bytes() == \
        (fake_gopro / "test" / "GOPR0396_11_00" / "blur_gamma" / "000001.png").read_bytes()
    assert prep.main(["gopro", "--check-only", "--strict", "--out", str(out)]) == 1


def test_gopro_wrong_inputs_are_clear_errors(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "a.png")
    assert prep.main(["gopro", "--source", str(tmp_path / "photos"), "--out", str(tmp_path / "o")]) == 2
    assert "no {train,test}/<scene>/{blur,sharp}/*.png frames found" in capsys.readouterr().err
    assert prep.main(["gopro", "--check-only", "--out", str(tmp_path / "photos")]) == 2
    assert "no train/ or test/ folder" in capsys.readouterr().err
    assert prep.main(["gopro", "--source", str(tmp_path / "missing.zip"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


# -- the pipeline reads what the script writes ---------------------------------------------------------------


def test_layouts_are_read_by_image_example_gen_scan(fake_celeba, fake_gopro, tmp_path):
    """ImageExampleGen's own file listing (components/image_listing.py) accepts both layouts and sees
    the same defects the script reported."""
    from components.image_listing import scan

    faces, zpath, part = fake_celeba
    celeba = tmp_path / "celeba"
    prep.layout_celeba(str(zpath), str(celeba), partition=str(part))
    listing = scan(str(celeba), "celeba", 0.8)
    assert len(listing.candidates) == len(faces) and listing.split_names == ["train", "eval", "test"]
    assert [(r.path, r.reason) for r in listing.rejects] == [(f"img_align_celeba/{faces[-1]}", "unpartitioned")]

    gopro = tmp_path / "gopro"
    prep.layout_gopro(str(fake_gopro), str(gopro))
    listing = scan(str(gopro), "gopro", 0.8)
    assert sorted((c.id, c.split) for c in listing.candidates) == [
        ("GOPR0384_11_00/000001", "train"), ("GOPR0396_11_00/000001", "eval"), ("GOPR0396_11_00/000003", "eval")]
    assert [(r.path, r.reason) for r in listing.rejects] == [("train/GOPR0384_11_00/sharp/000002.png", "unpaired")]


# -- tiles: square training tiles from any photographs -----------------------------------------------------


def test_tiles_cut_every_square_exactly_and_report_what_they_skip(tmp_path, capsys):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    photo = os.path.join(SAMPLES, sorted(os.listdir(SAMPLES))[0])  # a real 128x128 photograph
    shutil.copy(photo, src / "a" / "same.png")
    big = np.asarray(Image.open(photo).convert("RGB"))
    Image.fromarray(big[:100, :128]).save(src / "b" / "same.png")  # same stem in another folder
    Image.fromarray(big[:40, :40]).save(src / "b" / "small.png")  # smaller than a tile
    (src / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "tiles"
    assert prep.main(["tiles", "--source", str(src), "--tile", "48", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    names = sorted(os.listdir(out))
    # 128x128 -> 2x2 tiles of 48 (the 32-pixel remainder is dropped), 100x128 -> 2x2; folders keep stems apart.
    assert names == [f"{d}_same_y{y:04d}_x{x:04d}.png" for d in ("a", "b") for y in (0, 48) for x in (0, 48)]
    for y in (0, 48):
        for x in (0, 48):
            tile = np.asarray(Image.open(out / f"a_same_y{y:04d}_x{x:04d}.png"))
            np.testing.assert_array_equal(tile, big[y:y + 48, x:x + 48])
    assert "tiles 48x48: 8" in printed and "too_small" in printed and "not_image" in printed
    assert "gan-restore run --preset srresnet-psnr" in printed
    assert prep.main(["tiles", "--check-only", "--out", str(out)]) == 0
    assert "tiles: 8" in capsys.readouterr().out


def test_tiles_wrong_inputs_are_clear_errors(tmp_path, capsys):
    assert prep.main(["tiles", "--source", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "neither a file nor a folder" in capsys.readouterr().err
    assert prep.main(["tiles", "--source", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no images" in capsys.readouterr().err


def test_overlapping_tiles_and_aligned_pair_tiles_for_a_mixed_deblur_set(fake_gopro, tmp_path, capsys):
    """Tiles every --stride pixels; blur/sharp pairs cut into aligned tiles as one gopro-layout scene; a scene
    of sharp tiles only (no blur/) is reported as frames for synthetic blur, and the pipeline's listing
    takes both kinds."""
    from components.image_listing import scan

    src = fake_gopro / "train" / "GOPR0384_11_00"
    root = tmp_path / "mixed"
    assert prep.main(["pair-tiles", "--blur", str(src / "blur"), "--sharp", str(src / "sharp"), "--tile", "64",
                      "--stride", "32", "--out", str(root / "train" / "real")]) == 0
    # 000002 has no blur frame: listed, not cut. 128x128 frames -> 3 x 3 tiles of 64 every 32 pixels.
    assert "unpaired (1)" in capsys.readouterr().out
    blur_tiles = sorted(os.listdir(root / "train" / "real" / "blur"))
    assert blur_tiles == sorted(os.listdir(root / "train" / "real" / "sharp")) and len(blur_tiles) == 9
    with Image.open(src / "blur" / "000001.png") as im:
        np.testing.assert_array_equal(np.asarray(Image.open(root / "train/real/blur/000001_y0032_x0064.png")),
                                      np.asarray(im.convert("RGB"))[32:96, 64:128])
    assert prep.main(["tiles", "--source", str(src / "sharp"), "--tile", "64", "--out",
                      str(root / "train" / "photos" / "sharp")]) == 0
    assert prep.main(["pair-tiles", "--blur", str(src / "blur"), "--sharp", str(src / "sharp"), "--tile", "64",
                      "--frames", "000001", "--out", str(root / "test" / "heldout")]) == 0
    capsys.readouterr()
    s = prep.check_gopro(str(root))
    assert s.counts["train pairs"] == 9 and s.counts["train sharp-only frames"] == 8 and s.num_problems == 0
    listing = scan(str(root), "gopro", 0.8)
    kinds = {c.id.split("/")[0]: c.blur is None for c in listing.candidates}
    assert kinds == {"real": False, "photos": True, "heldout": False} and not listing.rejects
