"""`gan-restore evaluate` end to end: a real SavedModel (models/export.py) on real benchmark images."""
import json
import os

import numpy as np
import pytest
import sample_images

from cli import main as cli
from config import SAMPLE_DATA
from models import images, metrics


def _export_tiny(task, out_dir):
    import tf_keras as keras

    from config import preset
    from models import export
    from models.networks import build_generator, generator_size_multiple

    cfg = preset("tiny", task=task)
    keras.utils.set_random_seed(0)
    return export.export_generator(build_generator(cfg), str(out_dir), cfg, generator_size_multiple(cfg))


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving") / "srgan"
    _export_tiny("sr", base / "7")  # a serving base path: the newest version is picked
    return str(base)


def _report(out):
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f)


def test_evaluate_sr_pairs_hr_with_the_lr_of_the_same_name(sr_model, tmp_path, capsys):
    from models import degrade

    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    lr_dir.mkdir(parents=True)
    hr_dir.mkdir()
    for name in ("coffee_06", "rocket_07"):
        hr = images.read_rgb8(os.path.join(SAMPLE_DATA, f"{name}.png"))[:126, :122]  # not multiples of 4
        (hr_dir / f"{name}.png").write_bytes(images.encode_png(hr))
        (lr_dir / f"{name}.png").write_bytes(images.encode_png(degrade.resize_uint8(hr[:124, :120], 0.25)))
    out = tmp_path / "report"
    assert cli.main(["evaluate", "--model", sr_model, "--hr", str(hr_dir), "--lr", str(lr_dir), "--out", str(out),
                     "--grid_crop", "64"]) == 0
    rep = _report(out)
    assert rep["ids"] == ["coffee_06", "rocket_07"] and rep["model_dir"].endswith(os.path.join("srgan", "7"))
    # The HR is cropped from the top-left to 4x the LR (124x120), as the SR literature does.
    hr = images.read_rgb8(os.path.join(hr_dir, "coffee_06.png"))[:124, :120]
    lr = images.read_rgb8(os.path.join(lr_dir, "coffee_06.png"))
    want = metrics.psnr_y(degrade.resize_uint8(lr, 4.0), hr, 4)
    assert rep["per_image"]["baseline"][0]["psnr_y"] == pytest.approx(want)
    grid = images.read_rgb8(str(out / "grid.png"))
    assert grid.shape[1] == 4 * 64 + 3 * 4 and grid.shape[0] == 2 * 64 + 4
    assert "PSNR-Y" in capsys.readouterr().out


@pytest.mark.shared_data
def test_evaluate_sr_standard_lr(shared_data, sr_model, tmp_path, capsys):
    """Reproduces a published figure: the bicubic baseline on Set5's standard LR (baby ~31.8 dB Y)."""
    out = tmp_path / "report"
    set5 = os.path.join(shared_data, "Set5")
    rc = cli.main(["evaluate", "--model", sr_model, "--hr", set5, "--lr", os.path.join(set5, "LRx4"),
                   "--out", str(out), "--max_images", "2", "--grid_crop", "64"])
    assert rc == 0
    for name in ("metrics.json", "metrics.csv", "grid.png", "report.md", "report.html"):
        assert (out / name).is_file(), name
    rep = _report(out)
    assert rep["ids"] == ["baby", "bird"] and rep["model_dir"].endswith(os.path.join("srgan", "7"))
    # The bicubic baseline on the standard LR reproduces the literature's figure for baby (~31.8 dB Y).
    hr = images.read_rgb8(os.path.join(set5, "baby.png"))
    lr = images.read_rgb8(os.path.join(set5, "LRx4", "baby.png"))
    from models import degrade
    want = metrics.psnr_y(degrade.resize_uint8(lr, 4.0), hr[:lr.shape[0] * 4, :lr.shape[1] * 4], 4)
    assert rep["per_image"]["baseline"][0]["psnr_y"] == pytest.approx(want)
    assert 31.0 < want < 32.5
    assert np.isfinite(rep["means"]["model"]["psnr_y"])
    # Grid rows are 64x64 crops: 4 columns (LR | bicubic | model | HR) side by side.
    grid = images.read_rgb8(str(out / "grid.png"))
    assert grid.shape[1] == 4 * 64 + 3 * 4 and grid.shape[0] == 2 * 64 + 4
    assert "| baby |" in (out / "report.md").read_text()
    assert "PSNR-Y" in capsys.readouterr().out


def test_evaluate_sr_generated_lr_rejects_bad_files(sr_model, tmp_path):
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    src = images.read_rgb8(os.path.join(SAMPLE_DATA, "chelsea_05.png"))
    (hr_dir / "a.png").write_bytes(images.encode_png(src[:83, :101]))  # not a multiple of 4: cropped to 80x100
    (hr_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "report"
    assert cli.main(["evaluate", "--model", sr_model, "--hr", str(hr_dir), "--out", str(out)]) == 0
    rep = _report(out)
    assert rep["ids"] == ["a"]
    assert [r[0] for r in rep["rejects"]] == ["broken.png"] and "unreadable" in rep["rejects"][0][1]
    assert "broken.png" in (out / "report.md").read_text()


def test_evaluate_deblur_pairs(tmp_path):
    model = _export_tiny("deblur", tmp_path / "deblur_model")
    name = "flower_03.png"
    sharp = sample_images.rgb("flower_03")
    blur = sample_images.blurred(sharp, seed=3)
    crops = {}
    for kind, img in (("blur", blur), ("sharp", sharp)):
        (tmp_path / kind).mkdir()
        crops[kind] = img[16:112, 10:110]  # 96x100, padded by the export
        (tmp_path / kind / name).write_bytes(images.encode_png(crops[kind]))
    out = tmp_path / "report"
    assert cli.main(["evaluate", "--model", model, "--blur", str(tmp_path / "blur"), "--sharp",
                     str(tmp_path / "sharp"), "--out", str(out)]) == 0
    rep = _report(out)
    assert rep["task"] == "deblur" and rep["baseline_name"] == "blurred input"
    assert rep["per_image"]["baseline"][0]["psnr_y"] == pytest.approx(metrics.psnr_y(crops["blur"], crops["sharp"]))


def test_evaluate_refuses_mismatched_inputs(sr_model, tmp_path):
    with pytest.raises(SystemExit, match="deblurring model"):
        cli.main(["evaluate", "--model", sr_model, "--blur", str(tmp_path), "--sharp", str(tmp_path)])
    with pytest.raises(SystemExit, match="no SavedModel"):
        cli.main(["evaluate", "--model", str(tmp_path), "--hr", str(tmp_path)])
