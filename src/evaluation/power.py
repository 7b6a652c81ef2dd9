"""Power for a matched comparison of a binary outcome (one-year proven reoffending).

- :func:`minimum_detectable_difference`: the smallest reduction in the rate (as a proportion; x100 for
  percentage points) that a two-sided test at ``alpha`` detects with probability ``power``, for the given
  numbers of treated and (effective) comparison people and the comparison rate. Normal approximation with
  unpooled variances: z_(1-alpha/2) + z_power = d / sqrt(p1 (1 - p1) / n1 + p0 (1 - p0) / n0), p1 = p0 - d.
- :func:`number_needed`: the Justice Data Lab's "number of people needed" to detect the observed difference:
  treated people needed (each with ``ratio`` comparison people) so that the observed difference would be
  significant with the given power: n1 = (z_(1-alpha/2) + z_power)^2 (p1 (1 - p1) + p0 (1 - p0) / ratio) / d^2.
- :func:`design_power`: both for a matched design and an outcome, with the JDL caveat when there are fewer
  than 30 treated reoffenders (no significance is claimed, time to first reoffence is not a headline).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from evaluation._lazy import optimize, stats  # scipy on first use (about 1 s to import)

__all__ = ["minimum_detectable_difference", "number_needed", "design_power", "DesignPower",
           "MIN_TREATED_REOFFENDERS"]

MIN_TREATED_REOFFENDERS = 30


def minimum_detectable_difference(n_treated: float, n_control: float, p_control: float, *, alpha: float = 0.05,
                                  power: float = 0.8, direction: str = "decrease") -> float:
    """Minimum detectable difference in proportions (positive number; 0.1 = 10 percentage points)."""
    if not (0 < p_control < 1):
        raise ValueError(f"p_control must be strictly between 0 and 1, not {p_control}")
    if n_treated <= 0 or n_control <= 0:
        raise ValueError("n_treated and n_control must be positive")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    sign = -1 if direction == "decrease" else 1
    lim = p_control if direction == "decrease" else 1 - p_control

    def f(d):
        p1 = p_control + sign * d
        return d - z * math.sqrt(p1 * (1 - p1) / n_treated + p_control * (1 - p_control) / n_control)

    if f(lim - 1e-12) < 0:
        return float("inf")  # not even a change to 0% / 100% is detectable
    return float(optimize.brentq(f, 1e-12, lim - 1e-12))


def number_needed(p_treated: float, p_control: float, *, ratio: float = 1.0, alpha: float = 0.05,
                  power: float = 0.8) -> int:
    """Treated people needed (with ``ratio`` comparison people each) to detect p_treated vs p_control."""
    d = p_treated - p_control
    if d == 0:
        return math.inf  # type: ignore[return-value]
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = z ** 2 * (p_treated * (1 - p_treated) + p_control * (1 - p_control) / ratio) / d ** 2
    return int(math.ceil(n))


@dataclass
class DesignPower:
    """Power of a matched design for a 0/1 outcome (see :func:`design_power`)."""

    n_treated: int
    n_control_effective: float
    treated_events: int
    p_treated: float
    p_control: float
    mdd: float
    number_needed: int
    few_events: bool
    message: str

    def __repr__(self) -> str:
        return (f"<DesignPower: MDD {self.mdd * 100:.1f} points at comparison rate {self.p_control:.1%}, "
                f"{self.n_treated} treated>")


def design_power(design, outcome: str, *, alpha: float = 0.05, power: float = 0.8) -> DesignPower:
    """Power summary of a matched (or weighted) design for a 0/1 outcome.

    The control group counts with its effective sample size (Kish) under the matching weights; rates are
    weighted means.

    Parameters
    ----------
    design : MatchedDesign or WeightedDesign
        The design (its ``matched`` rows and weights are used).
    outcome : str
        A 0/1 outcome column: the only kind supported (rates and the JDL's number needed are for proportions).
    alpha, power : float
        Two-sided significance level and power.

    Returns
    -------
    DesignPower
        ``mdd`` (proportion; x100 for percentage points), ``number_needed`` (treated people), rates, and a
        message.

    Raises
    ------
    ValueError
        The outcome column is missing or not 0/1 (e.g. a continuous outcome or a count).

    Examples
    --------
    >>> design_power(match(cohort, "treat", ["age", "prior"]), "reoffended").mdd  # doctest: +SKIP
    """
    md = design.matched
    if outcome not in md.columns:
        raise ValueError(f"outcome column {outcome!r} is not in the data")
    vals = md[outcome].dropna()
    if len(vals) != len(md) or not vals.isin([0, 1]).all():
        raise ValueError(f"design_power supports 0/1 outcomes only (rates of people with the outcome); "
                         f"{outcome!r} has missing values or values other than 0 and 1. For a continuous outcome or "
                         "a count use the effect's confidence interval instead")
    t = md[design.treatment].to_numpy() == 1
    y = md[outcome].to_numpy(dtype=float)
    w = md["weight"].to_numpy(dtype=float)
    n1 = int(t.sum())
    ess0 = float(w[~t].sum() ** 2 / np.sum(w[~t] ** 2))
    p1 = float(np.average(y[t], weights=w[t]))
    p0 = float(np.average(y[~t], weights=w[~t]))
    events = int(y[t].sum())
    mdd = minimum_detectable_difference(n1, ess0, p0, alpha=alpha, power=power) if 0 < p0 < 1 else float("nan")
    ratio = ess0 / n1
    nn = number_needed(p1, p0, ratio=ratio, alpha=alpha, power=power) if p1 != p0 else math.inf
    few = events < MIN_TREATED_REOFFENDERS
    msg = (f"With {n1} treated and an effective {ess0:.0f} comparison people (comparison rate {p0:.0%}), the "
           f"smallest reduction detectable with {power:.0%} power is {mdd * 100:.1f} percentage points. ")
    from evaluation import wording

    if wording.too_small_to_detect(p1 - p0, nn if np.isfinite(nn) else None, n1):
        msg += (f"The observed difference ({wording.signed((p1 - p0) * 100, '+.1f')} points) is too small to be "
                "detected with any realistic number of treated people. ")
    elif np.isfinite(nn):
        msg += (f"About {wording.approx(nn)} treated people would be needed to detect the observed difference "
                f"({wording.signed((p1 - p0) * 100, '+.1f')} points). ")
    if few:
        msg += (f"The treatment group has only {events} people with the outcome (fewer than "
                f"{MIN_TREATED_REOFFENDERS}): following the Justice Data Lab, no significance is claimed.")
    return DesignPower(n1, ess0, events, p1, p0, mdd, nn, few, msg.strip())
