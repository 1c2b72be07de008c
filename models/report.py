"""The human evaluation report: metrics table, picture grid, and an HTML + Markdown page tying them.

Files written into one directory (the ModelEvaluation artifact, or any folder):
    metrics.json   everything: per-image and mean metrics per system, rejects, the gate decision
    metrics.csv    one row per image and system (spreadsheet-friendly)
    grid.png       rows of input | baseline | model | ground truth (| blessed model when there is one)
    report.md      summary, gate checks, mean and per-image tables
    report.html    the same page for a browser, with the grid inline
Writes go through tf.io.gfile so the directory may be on GCS (Kubeflow runs).
"""
from __future__ import annotations

import dataclasses
import html
import json
import math
import os
from typing import Dict, List, Sequence

import numpy as np

from models import images
from models.gate import GateDecision
from models.scoring import BASELINE, BLESSED, METRICS, MODEL, EvaluationResult, Sample

GRID_GAP = 4  # white pixels between grid cells
METRIC_LABELS = {"psnr_y": "PSNR-Y (dB)", "ssim_y": "SSIM-Y", "psnr_rgb": "PSNR-RGB (dB)", "ssim_rgb": "SSIM-RGB"}
FILES = ("metrics.json", "metrics.csv", "grid.png", "report.md", "report.html")


def system_labels(result: EvaluationResult) -> Dict[str, str]:
    return {MODEL: "model", BASELINE: result.baseline_name, BLESSED: "blessed model"}


# -- picture grid ------------------------------------------------------------------------------------

def grid_columns(samples: Sequence[Sample], result: EvaluationResult | None = None) -> List[str]:
    base = result.baseline_name if result else "baseline"
    cols = ["input", base, "model", "ground truth"]
    if samples and samples[0].blessed is not None:
        cols.append("blessed model")
    return cols


def grid_size(samples: Sequence[Sample]) -> tuple:
    """(height, width) of the grid image: each row as tall as its ground truth, columns as wide as the
    widest ground truth, GRID_GAP pixels between cells."""
    if not samples:
        return (0, 0)
    w = max(s.target.shape[1] for s in samples)
    rows, cols = len(samples), len(grid_columns(samples))
    return (sum(s.target.shape[0] for s in samples) + (rows - 1) * GRID_GAP, cols * w + (cols - 1) * GRID_GAP)


def make_grid(samples: Sequence[Sample]) -> np.ndarray:
    """uint8 RGB grid on white; the (smaller) SR input is shown enlarged by pixel repetition, so its
    pixels stay visible instead of being smoothed into another bicubic image."""
    gh, gw = grid_size(samples)
    grid = np.full((gh, gw, 3), 255, np.uint8)
    if not samples:
        return grid
    cw = max(s.target.shape[1] for s in samples)
    y = 0
    for s in samples:
        cells = [_enlarge(s.degraded, s.target.shape), s.baseline, s.model, s.target]
        if s.blessed is not None:
            cells.append(s.blessed)
        for c, img in enumerate(cells):
            img = img[:s.target.shape[0], :cw]
            x = c * (cw + GRID_GAP)
            grid[y:y + img.shape[0], x:x + img.shape[1]] = img
        y += s.target.shape[0] + GRID_GAP
    return grid


def _enlarge(img: np.ndarray, shape) -> np.ndarray:
    fy, fx = max(1, shape[0] // img.shape[0]), max(1, shape[1] // img.shape[1])
    return np.repeat(np.repeat(img, fy, axis=0), fx, axis=1)


# -- tables ------------------------------------------------------------------------------------------

def _num(x: float, metric: str) -> str:
    if math.isinf(x):
        return "inf"
    if math.isnan(x):
        return "n/a"
    return f"{x:.2f}" if metric.startswith("psnr") else f"{x:.4f}"


def _table_header(result: EvaluationResult, first: str) -> List[str]:
    labels = system_labels(result)
    return [first] + [f"{METRIC_LABELS[m]} {labels[s]}" for m in METRICS for s in result.systems]


def mean_rows(result: EvaluationResult) -> List[List[str]]:
    """Mean table: one row per system, one column per metric."""
    labels = system_labels(result)
    means = result.means
    return [[labels[s]] + [_num(means[s][m], m) for m in METRICS] for s in result.systems]


def per_image_rows(result: EvaluationResult) -> List[List[str]]:
    """Per-image table: metric x system columns, then a mean row."""
    rows = []
    for i, image_id in enumerate(result.ids):
        rows.append([image_id] + [_num(result.per_image[s][i][m], m) for m in METRICS for s in result.systems])
    means = result.means
    rows.append(["mean"] + [_num(means[s][m], m) for m in METRICS for s in result.systems])
    return rows


def _md_table(header: List[str], rows: List[List[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _html_table(header: List[str], rows: List[List[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


# -- the page ----------------------------------------------------------------------------------------

def _summary_lines(result: EvaluationResult, decision: GateDecision) -> List[str]:
    return [
        f"Decision: {decision.message}",
        f"Task: {result.task} (scale {result.scale}); {len(result.ids)} eval images, {len(result.rejects)} rejected",
        f"Model: {result.model_dir}",
        f"Blessed model: {result.blessed_model_dir or 'none yet (first model: regression checks skipped)'}",
        f"Baseline: {result.baseline_name}",
        "Protocol: PSNR/SSIM on the Y channel (ITU-R BT.601), border of `scale` pixels removed (SR), float64, "
        "Gaussian SSIM 11x11 sigma 1.5; RGB figures beside them. Model outputs are rounded to uint8 as served.",
    ]


def markdown(result: EvaluationResult, decision: GateDecision) -> str:
    mean_header = ["system"] + [METRIC_LABELS[m] for m in METRICS]
    checks = [[c.name, "yes" if c.passed else "NO", c.message] for c in decision.checks]
    parts = ["# Evaluation report", "", *[f"- {line}" for line in _summary_lines(result, decision)], "",
             "## Gate checks", "", _md_table(["check", "passed", "detail"], checks),
             "", "## Mean metrics", "", _md_table(mean_header, mean_rows(result)), "",
             "## Pictures", "", f"Columns: {' | '.join(grid_columns(result.samples, result))}", "",
             "![grid](grid.png)", "", "## Per image", "",
             _md_table(_table_header(result, "image"), per_image_rows(result)), ""]
    if result.rejects:
        parts += ["## Rejected eval examples", "", _md_table(["example", "reason"], [list(r) for r in result.rejects]),
                  ""]
    return "\n".join(parts)


def html_page(result: EvaluationResult, decision: GateDecision) -> str:
    colour = "#1a7f37" if decision.blessed else "#cf222e"
    summary = "".join(f"<li>{html.escape(line)}</li>" for line in _summary_lines(result, decision)[1:])
    checks = _html_table(["check", "passed", "detail"],
                         [[c.name, "yes" if c.passed else "NO", c.message] for c in decision.checks])
    rejects = ("<h2>Rejected eval examples</h2>" + _html_table(["example", "reason"], [list(r) for r in result.rejects])
               if result.rejects else "")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Evaluation report</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} td:first-child{{text-align:left}}
img{{image-rendering:pixelated;max-width:100%}}</style></head>
<body><h1>Evaluation report</h1>
<p style="color:{colour};font-weight:bold">{html.escape(decision.message)}</p>
<ul>{summary}</ul>
<h2>Gate checks</h2>{checks}
<h2>Mean metrics</h2>{_html_table(["system"] + [METRIC_LABELS[m] for m in METRICS], mean_rows(result))}
<h2>Pictures</h2><p>Columns: {html.escape(" | ".join(grid_columns(result.samples, result)))}</p>
<img src="grid.png" alt="input, baseline, model, ground truth">
<h2>Per image</h2>{_html_table(_table_header(result, "image"), per_image_rows(result))}
{rejects}
</body></html>
"""


def csv_text(result: EvaluationResult) -> str:
    lines = ["image,system," + ",".join(METRICS)]
    for s in result.systems:
        for image_id, row in zip(result.ids, result.per_image[s], strict=True):
            lines.append(f"{_csv_cell(image_id)},{s}," + ",".join(repr(row[m]) for m in METRICS))
    return "\n".join(lines) + "\n"


def _csv_cell(s: str) -> str:
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s


def write_report(result: EvaluationResult, decision: GateDecision, out_dir: str) -> Dict[str, str]:
    """Write the report files (FILES) into `out_dir`; returns name -> path."""
    import tensorflow as tf

    tf.io.gfile.makedirs(out_dir)
    payload = result.to_dict()
    payload["gate"] = decision.to_dict()
    contents = {
        "metrics.json": json.dumps(payload, indent=2, sort_keys=True),
        "metrics.csv": csv_text(result),
        "grid.png": images.encode_png(make_grid(result.samples)) if result.samples else None,
        "report.md": markdown(result, decision),
        "report.html": html_page(result, decision),
    }
    paths = {}
    for name, data in contents.items():
        if data is None:
            continue
        path = os.path.join(out_dir, name)
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        paths[name] = path
    return paths


def evaluate_to_report(cfg, pairs, model_dir: str, out_dir: str, rejects: Sequence = (), grid_crop: int = 0):
    """Score model and baseline on `pairs`, gate, write the report files; (result, decision, paths)."""
    from models.gate import gate
    from models.scoring import evaluate

    cfg = cfg.override({"eval.report_images": max(cfg.eval.report_images, 1)})
    result = evaluate(cfg, pairs, model_dir, rejects=rejects)
    if grid_crop:
        result.samples = [crop_sample(s, grid_crop, result.scale) for s in result.samples]
    decision = gate(cfg.eval, result)
    paths = write_report(result, decision, out_dir)
    return result, decision, paths


def crop_sample(sample, size: int, scale: int):
    """The centre `size` square (ground-truth pixels, rounded to the scale) of every picture of a row."""
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
