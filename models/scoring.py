"""Scoring restorations: a candidate model, the classical baseline and the blessed model on the same images.

Three systems are scored in the published protocol (models/metrics.py: Y channel of BT.601, `scale`
border removed for SR, float64, Gaussian SSIM), with RGB figures beside them:
- `model`: the candidate SavedModel (contracts/signatures.py), its output rounded to uint8 exactly
  as the served PNG is;
- `baseline`: the classical answer the GAN has to beat: MATLAB-style bicubic upsampling of the LR input
  (SR) or the blurred input itself (deblur);
- `blessed`: the latest blessed model, when there is one (the regression check, models/gate.py).
Used by the ImageEvaluator component, `gan-restore evaluate` and the quality benchmark; everything here
works on plain directories and numpy arrays.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from models import metrics
from models.restorer import SavedModelRestorer

log = logging.getLogger(__name__)

MODEL, BASELINE, BLESSED = "model", "baseline", "blessed"
METRICS = metrics.METRIC_NAMES  # psnr_y, ssim_y (the protocol), psnr_rgb, ssim_rgb


@dataclass
class EvalImage:
    """One eval pair: the degraded input and its ground truth, uint8 RGB."""
    id: str
    degraded: np.ndarray
    target: np.ndarray


@dataclass
class Sample:
    """The pictures of one report row (uint8 RGB)."""
    id: str
    degraded: np.ndarray
    baseline: np.ndarray
    model: np.ndarray
    target: np.ndarray
    blessed: np.ndarray | None = None


@dataclass
class EvaluationResult:
    task: str
    scale: int
    baseline_name: str  # "bicubic" (SR) or "blurred input" (deblur)
    model_dir: str
    blessed_model_dir: str  # "" when there is no blessed model yet
    ids: List[str]
    # system -> one {metric: value} per image, in `ids` order
    per_image: Dict[str, List[Dict[str, float]]]
    rejects: List[Tuple[str, str]] = field(default_factory=list)  # (id or record index, reason)
    samples: List[Sample] = field(default_factory=list)

    @property
    def systems(self) -> List[str]:
        return [s for s in (MODEL, BASELINE, BLESSED) if s in self.per_image]

    @property
    def means(self) -> Dict[str, Dict[str, float]]:
        return {s: {m: _mean([row[m] for row in rows]) for m in METRICS} for s, rows in self.per_image.items()}

    def to_dict(self) -> dict:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "samples"}
        d["means"] = self.means
        d["num_images"] = len(self.ids)
        return d


def baseline_name(task: str) -> str:
    return "bicubic" if task == "sr" else "blurred input"


def baseline_restore(task: str, scale: int, degraded: np.ndarray) -> np.ndarray:
    """The classical answer: MATLAB-style bicubic upsampling of the LR (SR), the blurred input (deblur)."""
    if task != "sr":
        return degraded
    from models import degrade

    return degrade.resize_uint8(degraded, float(scale))


def metric_border(task: str, scale: int) -> int:
    """Pixels removed at each edge before scoring: the SR scale (the protocol); none for deblurring."""
    return scale if task == "sr" else 0


def evaluate(cfg, pairs: Sequence[EvalImage], model_dir: str, blessed_model_dir: str = "",
             rejects: Iterable[Tuple[str, str]] = ()) -> EvaluationResult:
    """Score the candidate, the classical baseline and (when given) the blessed model on `pairs`."""
    scale = cfg.scale
    border = metric_border(cfg.task, scale)
    degraded = [p.degraded for p in pairs]
    outputs = {MODEL: SavedModelRestorer(model_dir)(degraded) if pairs else [],
               BASELINE: [baseline_restore(cfg.task, scale, d) for d in degraded]}
    if blessed_model_dir:
        outputs[BLESSED] = SavedModelRestorer(blessed_model_dir)(degraded) if pairs else []
    per_image = {}
    for system, outs in outputs.items():
        rows = []
        for p, out in zip(pairs, outs, strict=True):
            if out.shape != p.target.shape:
                raise ValueError(f"{system} output for {p.id!r} is {out.shape}, the target is {p.target.shape}: "
                                 f"does the model's scale match the config's ({scale})?")
            rows.append(metrics.image_metrics(out, p.target, border))
        per_image[system] = rows
    n = min(cfg.eval.report_images, len(pairs))
    samples = [Sample(pairs[i].id, pairs[i].degraded, outputs[BASELINE][i], outputs[MODEL][i], pairs[i].target,
                      outputs[BLESSED][i] if BLESSED in outputs else None) for i in range(n)]
    return EvaluationResult(task=cfg.task, scale=scale, baseline_name=baseline_name(cfg.task),
                            model_dir=model_dir, blessed_model_dir=blessed_model_dir or "",
                            ids=[p.id for p in pairs], per_image=per_image, rejects=list(rejects),
                            samples=samples)


def evaluate_split(cfg, split_uri: str, model_dir: str, blessed_model_dir: str = "") -> EvaluationResult:
    """`evaluate` on the first `cfg.eval.max_images` good pairs of a Transform output split."""
    from models.eval_pairs import read_eval_images

    pairs, rejects = read_eval_images(split_uri, cfg.scale, cfg.eval.max_images)
    log.info("evaluating %d eval images from %s (%d rejected)", len(pairs), split_uri, len(rejects))
    return evaluate(cfg, pairs, model_dir, blessed_model_dir, rejects)


def _mean(values: List[float]) -> float:
    # An exact reconstruction scores PSNR = inf; the mean then is inf too, which compares correctly.
    return float(np.mean(values)) if values else math.nan
