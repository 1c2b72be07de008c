"""The gate: bless a model when its mean Y PSNR/SSIM clear the absolute lower bounds (`eval.min_psnr`,
`eval.min_ssim`), do not fall behind the blessed model beyond the tolerances (`eval.max_psnr_drop`,
`eval.max_ssim_drop`) and, optionally, beat the baseline by a margin (`eval.min_gain_over_baseline`).
Every check carries a sentence saying what was compared, so a refusal explains itself.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List

from models.scoring import BASELINE, BLESSED, MODEL, EvaluationResult


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
