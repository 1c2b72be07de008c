"""`gan-restore evaluate`: score any model directory on any folder of images, with a report.

    gan-restore evaluate --model runs/serving/srgan --hr Set5 --lr Set5/LRx4 --out report_dir
    gan-restore evaluate --model m/3 --hr photos             # LR made with our MATLAB-style bicubic
    gan-restore evaluate --model runs/serving/deblurgan --blur GoPro/blur --sharp GoPro/sharp

Pairs come from models/eval_pairs.py, the scores (published protocol) from models/scoring.py, the gate
from models/gate.py and the report files (table per image and mean, picture grid, Markdown and HTML)
from models/report.py. The task and scale are the model's own (the config stored in the SavedModel),
the gate thresholds those of the configuration options. Files that cannot be paired or read are
skipped, counted and listed in the report.
"""
from __future__ import annotations

import argparse
import os

from cli.config_args import add_config_arguments, config_from_args

HELP = "score a model (SavedModel dir or serving base) on folders of HR[/LR] or blur/sharp images"


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
    from contracts.serving_layout import resolve_model_dir
    from models.eval_pairs import deblur_pairs, sr_pairs
    from models.report import evaluate_to_report
    from models.restorer import model_config

    cfg = config_from_args(args)
    where = args.model or cfg.serving_dir
    model_dir = resolve_model_dir(where)
    if not model_dir:
        raise SystemExit(f"gan-restore evaluate: no SavedModel in {where} (neither saved_model.pb nor a numeric "
                         f"version directory holding one); pass --model")
    cfg = model_config(model_dir, cfg)
    deblur = bool(args.blur or args.sharp)
    if deblur == bool(args.hr or args.lr):
        raise SystemExit("gan-restore evaluate: give --hr [--lr] (super-resolution) or --blur and --sharp (deblur)")
    try:
        if deblur:
            if not (args.blur and args.sharp):
                raise SystemExit("gan-restore evaluate: deblurring needs both --blur and --sharp")
            if cfg.task != "deblur":
                raise SystemExit(f"gan-restore evaluate: {model_dir} is a {cfg.task} model; blur/sharp folders need "
                                 f"a deblurring model")
            pairs, rejects = deblur_pairs(args.blur, args.sharp, args.max_images)
            data_dir = args.blur
        else:
            if cfg.task != "sr":
                raise SystemExit(f"gan-restore evaluate: {model_dir} is a {cfg.task} model; --hr/--lr need an SR model")
            pairs, rejects = sr_pairs(args.hr, args.lr, cfg.scale, args.max_images)
            data_dir = args.hr
    except ValueError as e:
        raise SystemExit(f"gan-restore evaluate: {e}") from None
    if not pairs:
        raise SystemExit(f"gan-restore evaluate: no usable images ({len(rejects)} rejected: "
                         f"{'; '.join(f'{i}: {r}' for i, r in rejects[:5])})")
    out = args.out or os.path.join(cfg.run_root, "evaluate", os.path.basename(os.path.normpath(data_dir)))
    result, decision, paths = evaluate_to_report(cfg, pairs, model_dir, out, rejects, args.grid_crop)
    print(summary_text(result))
    print(decision.message)
    print(f"report: {paths['report.md']} ({', '.join(sorted(paths))})")
    return 0


def summary_text(result) -> str:
    from models.report import METRIC_LABELS, system_labels

    labels = system_labels(result)
    means = result.means
    lines = [f"{len(result.ids)} images ({len(result.rejects)} rejected), task {result.task} x{result.scale}:"]
    for s in result.systems:
        lines.append(f"  {labels[s]:14s} " + "  ".join(f"{METRIC_LABELS[m]} {means[s][m]:.4f}" for m in means[s]))
    return "\n".join(lines)
