"""`gan-restore evaluate`: score any model directory on any folder of images, with a report.

    gan-restore evaluate --model runs/serving/srgan --hr Set5 --lr Set5/LRx4 --out report_dir
    gan-restore evaluate --model m/3 --hr photos             # LR made with our MATLAB-style bicubic
    gan-restore evaluate --model runs/serving/deblurgan --blur GoPro/blur --sharp GoPro/sharp

SR: each HR image is paired with the LR of the same file name in --lr (the standard benchmark LR
images), the HR cropped from the top-left to `scale` x the LR size (the convention of the SR
literature); without --lr the HR is cropped to a multiple of `scale` and the LR made by MATLAB-style
antialiased bicubic (models/degrade.py). Deblur: blur and sharp frames paired by file name.
The model, its bicubic / blurred-input baseline and the metrics (published protocol, models/metrics.py)
come from models/evaluation.py, the report files (table per image and mean, picture grid, Markdown
and HTML) from models/report.py. The task and scale are the model's own (the config stored in the
SavedModel), the gate thresholds those of the configuration options. Files that cannot be paired or
read are skipped, counted and listed in the report.
"""
from __future__ import annotations

import argparse
import logging
import os
from typing import List, Sequence, Tuple

import numpy as np

from pipeline.cli import add_config_arguments, config_from_args

HELP = "score a model (SavedModel dir or serving base) on folders of HR[/LR] or blur/sharp images"
CONFIG_KEY = "config_json/.ATTRIBUTES/VARIABLE_VALUE"  # RestorationModule.config_json
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="", help="SavedModel directory, or a serving base path whose newest "
                                                    "version is used (default: the latest pushed model of the config)")
    parser.add_argument("--hr", default="", help="folder of HR ground-truth images (SR)")
    parser.add_argument("--lr", default="", help="folder of LR inputs named as the HR images (SR; default: "
                                                 "made from the HR with MATLAB-style bicubic)")
    parser.add_argument("--blur", default="", help="folder of blurred inputs (deblur)")
    parser.add_argument("--sharp", default="", help="folder of sharp ground truth named as the blurred images")
    parser.add_argument("--out", default="", help="report directory (default: <run_root>/evaluate/<data folder>)")
    parser.add_argument("--max_images", type=int, default=0, help="first N images (0: all)")
    parser.add_argument("--grid_crop", type=int, default=0,
                        help="crop the picture-grid rows to this square (ground-truth pixels, centre); 0: whole images")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    model_dir = resolve_model_dir(args.model or cfg.serving_dir)
    cfg = model_config(model_dir, cfg)
    deblur = bool(args.blur or args.sharp)
    if deblur == bool(args.hr or args.lr):
        raise SystemExit("gan-restore evaluate: give --hr [--lr] (super-resolution) or --blur and --sharp (deblur)")
    if deblur:
        if not (args.blur and args.sharp):
            raise SystemExit("gan-restore evaluate: deblurring needs both --blur and --sharp")
        if cfg.task != "deblur":
            raise SystemExit(f"gan-restore evaluate: {model_dir} is a {cfg.task} model; blur/sharp folders need a "
                             f"deblurring model")
        pairs, rejects = deblur_pairs(args.blur, args.sharp, args.max_images)
        data_dir = args.blur
    else:
        if cfg.task != "sr":
            raise SystemExit(f"gan-restore evaluate: {model_dir} is a {cfg.task} model; --hr/--lr need an SR model")
        pairs, rejects = sr_pairs(args.hr, args.lr, cfg.scale, args.max_images)
        data_dir = args.hr
    if not pairs:
        raise SystemExit(f"gan-restore evaluate: no usable images ({len(rejects)} rejected: "
                         f"{'; '.join(f'{i}: {r}' for i, r in rejects[:5])})")
    out = args.out or os.path.join(cfg.run_root, "evaluate", os.path.basename(os.path.normpath(data_dir)))
    result, decision, paths = evaluate_to_report(cfg, pairs, model_dir, out, rejects, args.grid_crop)
    print(summary_text(result))
    print(decision.message)
    print(f"report: {paths['report.md']} ({', '.join(sorted(paths))})")
    return 0


# -- model -------------------------------------------------------------------------------------------

def resolve_model_dir(path: str) -> str:
    """A SavedModel directory as given, or the newest version under a serving base path."""
    from models import evaluation

    if os.path.exists(os.path.join(path, evaluation.SAVED_MODEL_FILE)):
        return path
    latest = evaluation.latest_version_dir(path)
    if not latest:
        raise SystemExit(f"gan-restore evaluate: no SavedModel in {path} (neither saved_model.pb nor a numeric "
                         f"version directory holding one); pass --model")
    return latest


def model_config(model_dir: str, fallback):
    """The configuration stored in the SavedModel (task, scale), with the caller's gate thresholds.

    Read from the variables checkpoint (the `config_json` variable of models/export.py) rather than by
    loading the SavedModel, which models/evaluation.py does once anyway."""
    import json

    import tensorflow as tf

    from pipeline.config import Config

    try:
        reader = tf.train.load_checkpoint(os.path.join(model_dir, "variables", "variables"))
        stored = Config.from_dict(json.loads(reader.get_tensor(CONFIG_KEY)))
    except (tf.errors.OpError, ValueError, KeyError) as e:
        log.warning("%s carries no usable config (%s); using the command line's task/scale", model_dir, e)
        return fallback
    return stored.override({f"eval.{k}": v for k, v in fallback.to_dict()["eval"].items()})


# -- pairing folders ---------------------------------------------------------------------------------

def list_images(folder: str) -> List[str]:
    if not os.path.isdir(folder):
        raise SystemExit(f"gan-restore evaluate: {folder} is not a directory")
    return sorted(n for n in os.listdir(folder)
                  if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, n)))


def _read(path: str) -> Tuple[np.ndarray | None, str]:
    from models import images

    try:
        return images.read_rgb8(path), ""
    except Exception as e:  # PIL raises many types for corrupt or non-image files
        return None, f"unreadable ({type(e).__name__}: {e})"


def sr_pairs(hr_dir: str, lr_dir: str, scale: int, max_images: int = 0):
    """EvalImage pairs (LR, HR) for SR, and (name, reason) rejects."""
    from models import degrade
    from models.evaluation import EvalImage

    pairs, rejects = [], []
    for name in list_images(hr_dir):
        if max_images and len(pairs) >= max_images:
            break
        hr, why = _read(os.path.join(hr_dir, name))
        if hr is None:
            rejects.append((name, why))
            continue
        if lr_dir:
            lr_path = os.path.join(lr_dir, name)
            if not os.path.exists(lr_path):
                rejects.append((name, f"no LR image {lr_path}"))
                continue
            lr, why = _read(lr_path)
            if lr is None:
                rejects.append((name, f"LR {why}"))
                continue
            h, w = lr.shape[0] * scale, lr.shape[1] * scale
            if hr.shape[0] < h or hr.shape[1] < w:
                rejects.append((name, f"HR {hr.shape[1]}x{hr.shape[0]} smaller than {scale} x LR {lr.shape[1]}x"
                                      f"{lr.shape[0]}"))
                continue
            hr = hr[:h, :w]
        else:
            h, w = hr.shape[0] - hr.shape[0] % scale, hr.shape[1] - hr.shape[1] % scale
            if h < scale or w < scale:
                rejects.append((name, f"smaller than the scale {scale}"))
                continue
            hr = np.ascontiguousarray(hr[:h, :w])
            lr = degrade.resize_uint8(hr, 1.0 / scale)
        pairs.append(EvalImage(os.path.splitext(name)[0], lr, hr))
    return pairs, rejects


def deblur_pairs(blur_dir: str, sharp_dir: str, max_images: int = 0):
    """EvalImage pairs (blurred, sharp) by file name, and (name, reason) rejects."""
    from models.evaluation import EvalImage

    pairs, rejects = [], []
    for name in list_images(blur_dir):
        if max_images and len(pairs) >= max_images:
            break
        sharp_path = os.path.join(sharp_dir, name)
        if not os.path.exists(sharp_path):
            rejects.append((name, f"no sharp image {sharp_path}"))
            continue
        (blur, why_b), (sharp, why_s) = _read(os.path.join(blur_dir, name)), _read(sharp_path)
        if blur is None or sharp is None:
            rejects.append((name, f"blur {why_b}" if blur is None else f"sharp {why_s}"))
            continue
        if blur.shape != sharp.shape:
            rejects.append((name, f"blur {blur.shape[:2]} and sharp {sharp.shape[:2]} differ in size"))
            continue
        pairs.append(EvalImage(os.path.splitext(name)[0], blur, sharp))
    return pairs, rejects


# -- evaluating and reporting ------------------------------------------------------------------------

def evaluate_to_report(cfg, pairs, model_dir: str, out_dir: str, rejects: Sequence = (), grid_crop: int = 0):
    """Score model and baseline on `pairs`, gate, write the report files; (result, decision, paths)."""
    from models import evaluation, report

    cfg = cfg.override({"eval.report_images": max(cfg.eval.report_images, 1)})
    result = evaluation.evaluate(cfg, pairs, model_dir, rejects=rejects)
    if grid_crop:
        result.samples = [crop_sample(s, grid_crop, result.scale) for s in result.samples]
    decision = evaluation.gate(cfg.eval, result)
    paths = report.write_report(result, decision, out_dir)
    return result, decision, paths


def crop_sample(sample, size: int, scale: int):
    """The centre `size` square (ground-truth pixels, rounded to the scale) of every picture of a row."""
    import dataclasses

    th, tw = sample.target.shape[:2]
    size = max(scale, min(size, th, tw) // scale * scale)
    y0, x0 = (th - size) // 2 // scale * scale, (tw - size) // 2 // scale * scale

    def crop(img, s=1):
        if img is None:
            return None
        return np.ascontiguousarray(img[y0 // s:(y0 + size) // s, x0 // s:(x0 + size) // s])

    degraded_scale = max(1, th // sample.degraded.shape[0])
    return dataclasses.replace(sample, degraded=crop(sample.degraded, degraded_scale), baseline=crop(sample.baseline),
                               model=crop(sample.model), target=crop(sample.target), blessed=crop(sample.blessed))


def summary_text(result) -> str:
    from models.report import METRIC_LABELS, system_labels

    labels = system_labels(result)
    means = result.means
    lines = [f"{len(result.ids)} images ({len(result.rejects)} rejected), task {result.task} x{result.scale}:"]
    for s in result.systems:
        lines.append(f"  {labels[s]:14s} " + "  ".join(f"{METRIC_LABELS[m]} {means[s][m]:.4f}" for m in means[s]))
    return "\n".join(lines)
