"""Quality benchmark: x4 SR on Set5 and BSD100 from the standard LR images (bicubic vs our model),
deblurring on the two GoPro test pairs (blurred input vs our model), published Y protocol.

    python -m benchmarks.quality [--sr_model DIR] [--deblur_model DIR] [--out DIR]

Models: the directories given, else the latest pushed model of the srgan-celeba / deblurgan-gopro
presets (their serving base); without one, the classical baseline alone is scored and the report
says so. Reuses models/eval_pairs.py, models/scoring.py and models/report.py (pairing, scores, report files).
"""
from __future__ import annotations

import argparse
import os
import re
from typing import Dict, List

import numpy as np

from benchmarks import common

SR_SETS = (("Set5", "Set5"), ("BSD100", "B100"))
GRID_CROP = 128  # HR pixels per picture-grid cell
# SRGAN paper, Table 2 (x4, Y, 4-pixel border): bicubic / SRResNet / SRGAN, PSNR and SSIM.
PUBLISHED = {"Set5": "bicubic 28.43 / 0.8211, SRResNet 32.05 / 0.9019, SRGAN 29.40 / 0.8472",
             "BSD100": "bicubic 25.94 / 0.6935, SRResNet 27.58 / 0.7620, SRGAN 25.16 / 0.6688",
             "GoPro": "PSNR-RGB of the blurred input 24.05 / 25.11 dB on these two pairs (../shared/data/SOURCES.md); "
                      "DeblurGAN 28.7 dB on the full test set"}
COLUMNS = (("psnr_y", "PSNR-Y", 2), ("ssim_y", "SSIM-Y", 4), ("psnr_rgb", "PSNR-RGB", 2))


def latest_model(preset_name: str) -> str:
    from config import preset
    from contracts.serving_layout import latest_version_dir

    return latest_version_dir(preset(preset_name).serving_dir)


def run(out_dir: str, sr_model: str = "", deblur_model: str = "", max_images: int = 0) -> Dict:
    """Scores and report sections; {"markdown": str, "datasets": {name: {...}}}."""
    from config import preset
    from models import eval_pairs
    from models.restorer import model_config

    sr_model = sr_model or latest_model("srgan-celeba")
    deblur_model = deblur_model or latest_model("deblurgan-gopro")
    md: List[str] = ["## 1. Quality", "", f"SR model: `{sr_model or 'none given or pushed: bicubic only'}`; deblur "
                     f"model: `{deblur_model or 'none given or pushed: blurred input only'}`. Published protocol "
                     "(Y channel BT.601, `scale` border removed for SR, float64, Gaussian SSIM).", ""]
    datasets = {}
    jobs = [(name, folder, "sr") for name, folder in SR_SETS] + [("GoPro", "GoPro", "deblur")]
    for name, folder, task in jobs:
        root = common.shared_data_dir(folder)
        if not root:
            md += [f"### {name}", "", f"skipped: ../shared/data/{folder} is absent", ""]
            continue
        model = sr_model if task == "sr" else deblur_model
        cfg = preset("srgan-celeba" if task == "sr" else "deblurgan-gopro")
        if model:
            cfg = model_config(model, cfg)
        if task == "sr":
            pairs, rejects = eval_pairs.sr_pairs(root, os.path.join(root, "LRx4"), cfg.scale, max_images)
        else:
            pairs, rejects = eval_pairs.deblur_pairs(os.path.join(root, "blur"), os.path.join(root, "sharp"),
                                                     max_images)
        sub = os.path.join(out_dir, f"quality_{name.lower()}")
        table = _score(cfg, pairs, rejects, model, sub)
        table["seen"] = seen_in_training(cfg.data.root, table["ids"]) if model else []
        datasets[name] = table
        md += _section(name, table, os.path.relpath(table["grid"], out_dir))
        print(f"quality {name}: " + ", ".join(f"{s} PSNR-Y {v['psnr_y']:.2f} dB SSIM-Y {v['ssim_y']:.4f}"
                                               for s, v in table["means"].items()), flush=True)
    return {"markdown": "\n".join(md), "datasets": datasets}


def _score(cfg, pairs, rejects, model_dir: str, sub: str) -> Dict:
    """Per-image and mean metrics per system, and a picture grid of crops (PNG path)."""
    from models import images, report, scoring

    report_cfg = cfg.override({"eval.report_images": 4})
    if model_dir:
        result, _, paths = report.evaluate_to_report(report_cfg, pairs, model_dir, sub, rejects, GRID_CROP)
        grid = paths.get("grid.png", "")
        per_image, means = result.per_image, result.means
        labels = report.system_labels(result)
    else:  # the classical baseline alone
        from models import metrics

        border = scoring.metric_border(cfg.task, cfg.scale)
        base = [scoring.baseline_restore(cfg.task, cfg.scale, p.degraded) for p in pairs]
        per_image = {scoring.BASELINE: [metrics.image_metrics(b, p.target, border)
                                           for b, p in zip(base, pairs, strict=True)]}
        means = {scoring.BASELINE: {m: float(np.mean([r[m] for r in per_image[scoring.BASELINE]]))
                                       for m in scoring.METRICS}}
        labels = {scoring.BASELINE: scoring.baseline_name(cfg.task)}
        samples = [scoring.Sample(p.id, p.degraded, b, b, p.target)
                   for p, b in zip(pairs[:4], base[:4], strict=True)]
        samples = [report.crop_sample(s, GRID_CROP, cfg.scale) for s in samples]
        os.makedirs(sub, exist_ok=True)
        grid = os.path.join(sub, "grid.png")
        # Without a model the "model" column would repeat the baseline: keep input | baseline | truth.
        cells = [[_enlarge(s.degraded, s.target), s.baseline, s.target] for s in samples]
        with open(grid, "wb") as f:
            f.write(images.encode_png(_grid(cells)))
    return {"ids": [p.id for p in pairs], "rejects": list(rejects),
            "per_image": {labels[s]: rows for s, rows in per_image.items()},
            "means": {labels[s]: v for s, v in means.items()}, "grid": grid,
            "columns": "input | baseline | model | ground truth" if model_dir else "input | baseline | ground truth"}


TILE_SUFFIX = re.compile(r"_y\d+_x\d+$")  # data/prepare_dataset.py tiles: <stem>_y<Y>_x<X>.png


def seen_in_training(data_root: str, ids: List[str]) -> List[str]:
    """Benchmark images the model's training folder holds (same file stem, or tiles cut from it), so the
    report can keep them out of the held-out mean. Knows the folder layout only (by name, not pixels)."""
    if not data_root or not os.path.isdir(data_root):
        return []
    stems = set()
    for _, _, names in os.walk(data_root):
        stems.update(TILE_SUFFIX.sub("", os.path.splitext(n)[0]) for n in names)
    return [i for i in ids if os.path.splitext(os.path.basename(i))[0] in stems]


def _enlarge(img, like):
    f = max(1, like.shape[0] // img.shape[0])
    return np.repeat(np.repeat(img, f, axis=0), f, axis=1)


def _grid(rows, gap: int = 4):
    h = sum(r[0].shape[0] for r in rows) + gap * (len(rows) - 1)
    w = max(sum(c.shape[1] for c in r) + gap * (len(r) - 1) for r in rows)
    out = np.full((h, w, 3), 255, np.uint8)
    y = 0
    for r in rows:
        x = 0
        for c in r:
            out[y:y + c.shape[0], x:x + c.shape[1]] = c
            x += c.shape[1] + gap
        y += r[0].shape[0] + gap
    return out


def _section(name: str, t: Dict, grid_rel: str) -> List[str]:
    systems = list(t["means"])
    head = ["image"] + [f"{s} {label}" for s in systems for _, label, _ in COLUMNS]
    rows = [[i] + [f"{t['per_image'][s][k][m]:.{d}f}" for s in systems for m, _, d in COLUMNS]
            for k, i in enumerate(t["ids"])]
    rows.append(["**mean**"] + [f"**{t['means'][s][m]:.{d}f}**" for s in systems for m, _, d in COLUMNS])
    seen = set(t.get("seen", ()))
    note = []
    if seen:
        keep = [k for k, i in enumerate(t["ids"]) if i not in seen]
        for r, i in zip(rows[:len(t["ids"])], t["ids"], strict=True):
            r[0] = f"{i} (training)" if i in seen else i
        if keep:
            rows.append([f"**mean, {len(keep)} held-out images**"] + [
                f"**{np.mean([t['per_image'][s][k][m] for k in keep]):.{d}f}**"
                for s in systems for m, _, d in COLUMNS])
        note = [f"The SR model's training folder holds {len(seen)} of these images (marked): compare on the "
                "held-out mean.", ""]
    md = [f"### {name} ({len(t['ids'])} images, {len(t['rejects'])} rejected)", "",
          f"Published: {PUBLISHED[name]}.", ""] + note + [
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
    return md + ["", f"Crops ({t['columns']}):", "", f"![{name}]({grid_rel})", ""]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sr_model", default="")
    p.add_argument("--deblur_model", default="")
    p.add_argument("--out", default="")
    p.add_argument("--max_images", type=int, default=0)
    args = p.parse_args(argv)
    out = args.out or common.results_dir()
    res = run(out, args.sr_model, args.deblur_model, args.max_images)
    common.write_json(os.path.join(out, "quality.json"), {k: v for k, v in res.items() if k != "markdown"})
    with open(os.path.join(out, "quality.md"), "w") as f:
        f.write(res["markdown"])
    print(res["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
