"""Model-vs-baseline evaluation: restore the eval images, score them, decide the blessing.

Used by the ImageEvaluator component (components/image_evaluator.py) and reusable from a CLI or a
benchmark: everything here works on plain directories and numpy arrays.

Three systems are scored on the same images, in the published protocol (models/metrics.py: Y channel
of BT.601, `scale` border removed for SR, float64, Gaussian SSIM), with RGB figures beside them:
- `model`: the candidate SavedModel (models/export.py contract), its output rounded to uint8 exactly
  as the served PNG is;
- `baseline`: the classical answer the GAN has to beat: MATLAB-style bicubic upsampling of the LR input
  (SR) or the blurred input itself (deblur);
- `blessed`: the latest blessed model, when there is one (the regression check).

The gate (`gate`) blesses a model when its mean Y PSNR/SSIM clear the absolute lower bounds, do not
fall behind the blessed model beyond the tolerances, and (optionally) beat the baseline by a margin;
every check carries a sentence saying what was compared, so a refusal explains itself.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from models import images, metrics

log = logging.getLogger(__name__)

MODEL, BASELINE, BLESSED = "model", "baseline", "blessed"
METRICS = metrics.METRIC_NAMES  # psnr_y, ssim_y (the protocol), psnr_rgb, ssim_rgb
# Transform output features (docs/architecture.md).
ID_FEATURE, TARGET_FEATURE, DEGRADED_FEATURE = "id", "target", "degraded"
SAVED_MODEL_FILE = "saved_model.pb"
_BATCH = 8  # images per `restore` call: bounds memory for large eval crops


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


@dataclass
class Check:
    name: str  # the config key: min_psnr, min_ssim, max_psnr_drop, max_ssim_drop, min_gain_over_baseline
    passed: bool
    message: str


@dataclass
class GateDecision:
    blessed: bool
    checks: List[Check]
    rubber_stamped: bool  # no blessed model to compare with: change checks skipped

    @property
    def failures(self) -> List[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def message(self) -> str:
        """One paragraph for logs, the blessing file and the blessing's `blessing_message` property."""
        head = "BLESSED" if self.blessed else "NOT BLESSED"
        lines = [c.message for c in (self.failures if not self.blessed else self.checks)]
        if self.rubber_stamped:
            lines.append("no blessed model to compare with: regression checks skipped")
        return f"{head}: " + "; ".join(lines)

    def to_dict(self) -> dict:
        return {"blessed": self.blessed, "rubber_stamped": self.rubber_stamped, "message": self.message,
                "checks": [dataclasses.asdict(c) for c in self.checks]}


# -- reading the eval split ------------------------------------------------------------------------

def read_eval_images(split_uri: str, scale: int, max_images: int) -> Tuple[List[EvalImage], List[Tuple[str, str]]]:
    """The first `max_images` good pairs of a Transform output split directory (TFRecord, gzip or not).

    A bad record (missing feature, undecodable PNG, sizes that do not match `scale`) is skipped and
    listed in the returned rejects with its reason, never silently dropped.
    """
    import tensorflow as tf

    from models import train_data

    files = sorted(f for f in tf.io.gfile.glob(os.path.join(split_uri, "*")) if not tf.io.gfile.isdir(f))
    if not files:
        raise FileNotFoundError(f"no example files in {split_uri}")
    pairs: List[EvalImage] = []
    rejects: List[Tuple[str, str]] = []
    for path in files:
        for i, record in enumerate(train_data.record_dataset([path]).as_numpy_iterator()):
            if len(pairs) >= max_images:
                return pairs, rejects
            pair, reason = _parse_pair(record, scale)
            if pair is None:
                where = f"{os.path.basename(path)}#{i}"
                rejects.append((where, reason))
                log.warning("eval example %s skipped: %s", where, reason)
            else:
                pairs.append(pair)
    return pairs, rejects


def _parse_pair(record: bytes, scale: int) -> Tuple[EvalImage | None, str]:
    import tensorflow as tf

    ex = tf.train.Example.FromString(record)
    feats = ex.features.feature
    missing = [k for k in (TARGET_FEATURE, DEGRADED_FEATURE) if not feats[k].bytes_list.value]
    if missing:
        return None, f"missing feature(s) {missing}"
    ex_id = feats[ID_FEATURE].bytes_list.value[0].decode("utf-8", "replace") if feats[ID_FEATURE].bytes_list.value \
        else ""
    try:
        target = images.read_rgb8(feats[TARGET_FEATURE].bytes_list.value[0])
        degraded = images.read_rgb8(feats[DEGRADED_FEATURE].bytes_list.value[0])
    except Exception as e:  # PIL raises several types for corrupt data
        return None, f"{ex_id}: undecodable image ({type(e).__name__}: {e})"
    want = (degraded.shape[0] * scale, degraded.shape[1] * scale)
    if target.shape[:2] != want:
        return None, f"{ex_id}: target {target.shape[:2]} is not {scale}x degraded {degraded.shape[:2]}"
    return EvalImage(ex_id, degraded, target), ""


# -- models and baselines --------------------------------------------------------------------------

class SavedModelRestorer:
    """A SavedModel of the models/export.py contract as a function: uint8 images -> uint8 images.

    Uses the `restore` signature (float batches); a model exported without it is called through
    `serving_default` on PNG bytes, which is the served path anyway.
    """

    def __init__(self, model_dir: str):
        import tensorflow as tf

        from models import export

        if not tf.io.gfile.exists(os.path.join(model_dir, SAVED_MODEL_FILE)):
            raise FileNotFoundError(f"no SavedModel ({SAVED_MODEL_FILE}) in {model_dir}")
        self.model_dir = model_dir
        self._loaded = tf.saved_model.load(model_dir)
        sigs = self._loaded.signatures
        self._float_fn = sigs.get(export.FLOAT_SIGNATURE)
        self._bytes_fn = sigs.get("serving_default")
        if self._float_fn is None and self._bytes_fn is None:
            raise ValueError(f"{model_dir} has neither a {export.FLOAT_SIGNATURE!r} nor a 'serving_default' "
                             f"signature (models/export.py contract)")

    def __call__(self, batch: Sequence[np.ndarray]) -> List[np.ndarray]:
        out: List[np.ndarray | None] = [None] * len(batch)
        for idx in _group_by_shape(batch).values():  # one batch needs one shape
            for start in range(0, len(idx), _BATCH):
                part = idx[start:start + _BATCH]
                for i, y in zip(part, self._run([batch[i] for i in part]), strict=True):
                    out[i] = y
        return out

    def _run(self, chunk: List[np.ndarray]) -> List[np.ndarray]:
        import tensorflow as tf

        from models import export

        if self._float_fn is not None:
            x = tf.constant(np.stack([images.uint8_to_float(a) for a in chunk]))
            y = self._float_fn(**{"images": x})["images"].numpy()
            return [images.float_to_uint8(a) for a in y]
        pngs = tf.constant([images.encode_png(a) for a in chunk])
        res = self._bytes_fn(**{export.SERVING_INPUT: pngs})
        return [images.read_rgb8(b) for b in res["image_bytes"].numpy()]


def _group_by_shape(batch: Sequence[np.ndarray]) -> Dict[tuple, List[int]]:
    groups: Dict[tuple, List[int]] = {}
    for i, a in enumerate(batch):
        groups.setdefault(a.shape, []).append(i)
    return groups


def baseline_name(task: str) -> str:
    return "bicubic" if task == "sr" else "blurred input"


def baseline_restore(task: str, scale: int, degraded: np.ndarray) -> np.ndarray:
    """The classical answer: MATLAB-style bicubic upsampling of the LR (SR), the blurred input (deblur)."""
    if task != "sr":
        return degraded
    from models import degrade

    return degrade.resize_uint8(degraded, float(scale))


# -- model directories -----------------------------------------------------------------------------

def latest_version_dir(base_dir: str) -> str:
    """The newest complete version of a TF Serving model base path (`<base>/<int>/saved_model.pb`),
    or "" when there is none yet. Non-numeric entries (e.g. an atomic push's temporary dir) are ignored,
    as TF Serving ignores them."""
    import tensorflow as tf

    if not base_dir or not tf.io.gfile.isdir(base_dir):
        return ""
    versions = []
    for name in tf.io.gfile.listdir(base_dir):
        name = name.rstrip("/")
        if name.isdigit() and tf.io.gfile.exists(os.path.join(base_dir, name, SAVED_MODEL_FILE)):
            versions.append(int(name))
    return os.path.join(base_dir, str(max(versions))) if versions else ""


# -- scoring ---------------------------------------------------------------------------------------

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
    pairs, rejects = read_eval_images(split_uri, cfg.scale, cfg.eval.max_images)
    log.info("evaluating %d eval images from %s (%d rejected)", len(pairs), split_uri, len(rejects))
    return evaluate(cfg, pairs, model_dir, blessed_model_dir, rejects)


# -- the gate --------------------------------------------------------------------------------------

def gate(eval_cfg, result: EvaluationResult) -> GateDecision:
    """Value and change thresholds on the mean Y-channel PSNR/SSIM (cfg.eval)."""
    if not result.ids:
        return GateDecision(False, [Check("eval_images", False, f"no usable eval images "
                                          f"({len(result.rejects)} rejected)")], BLESSED not in result.per_image)
    means = result.means
    m = means[MODEL]
    checks = [
        _at_least("min_psnr", m["psnr_y"], eval_cfg.min_psnr, "PSNR-Y", "dB", 2),
        _at_least("min_ssim", m["ssim_y"], eval_cfg.min_ssim, "SSIM-Y", "", 4),
    ]
    rubber_stamped = BLESSED not in means
    if not rubber_stamped:
        b = means[BLESSED]
        checks.append(_no_drop("max_psnr_drop", m["psnr_y"], b["psnr_y"], eval_cfg.max_psnr_drop, "PSNR-Y", "dB", 2))
        checks.append(_no_drop("max_ssim_drop", m["ssim_y"], b["ssim_y"], eval_cfg.max_ssim_drop, "SSIM-Y", "", 4))
    if eval_cfg.min_gain_over_baseline is not None:
        gain = m["psnr_y"] - means[BASELINE]["psnr_y"]
        ok = gain >= eval_cfg.min_gain_over_baseline
        checks.append(Check("min_gain_over_baseline", ok,
                            f"PSNR-Y gain over {result.baseline_name} {gain:+.2f} dB "
                            f"({m['psnr_y']:.2f} vs {means[BASELINE]['psnr_y']:.2f} dB) "
                            f"{'>=' if ok else '<'} min_gain_over_baseline {eval_cfg.min_gain_over_baseline:.2f} dB"))
    return GateDecision(all(c.passed for c in checks), checks, rubber_stamped)


def _at_least(name, value, bound, label, unit, digits) -> Check:
    ok = value >= bound
    return Check(name, ok, f"{label} {_fmt(value, digits, unit)} {'>=' if ok else '<'} {name} "
                           f"{_fmt(bound, digits, unit)}")


def _no_drop(name, value, blessed, tolerance, label, unit, digits) -> Check:
    drop = blessed - value
    ok = drop <= tolerance
    return Check(name, ok, f"{label} {_fmt(value, digits, unit)} vs blessed model {_fmt(blessed, digits, unit)}: "
                           f"drop {_fmt(drop, digits, unit)} {'<=' if ok else '>'} {name} "
                           f"{_fmt(tolerance, digits, unit)}")


def _fmt(x: float, digits: int, unit: str) -> str:
    s = f"{x:.{digits}f}"
    return f"{s} {unit}" if unit else s


def _mean(values: List[float]) -> float:
    # An exact reconstruction scores PSNR = inf; the mean then is inf too, which compares correctly.
    return float(np.mean(values)) if values else math.nan
