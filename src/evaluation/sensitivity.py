"""Sensitivity of a matched comparison to unmeasured confounding.

- :func:`rosenbaum_binary` / :func:`rosenbaum_bounds`: Rosenbaum bounds for 1:1 matched pairs on a binary
  outcome (the McNemar-type sign test; Rosenbaum 2002, *Observational Studies*, 4.3.2; as R
  ``rbounds::binarysens``). Among discordant pairs (exactly one member had the event), under no effect and
  hidden bias of at most Gamma (odds of treatment between matched people differ by at most a factor Gamma), the
  number of pairs in which the *treated* member had the event is bounded by Binomial(D, 1/(1+Gamma)) and
  Binomial(D, Gamma/(1+Gamma)). The bounds give the range of one-sided p-values.
- :func:`e_value`: VanderWeele & Ding (2017) E-value for a risk ratio and its confidence limit: the minimum
  strength of association (risk-ratio scale) an unmeasured confounder would need with both treatment and
  outcome to explain the estimate away.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from evaluation._lazy import optimize, stats  # scipy on first use (about 1 s to import)

__all__ = ["rosenbaum_binary", "rosenbaum_bounds", "e_value"]

DEFAULT_GAMMAS = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.75, 2.0, 2.5, 3.0)


def rosenbaum_binary(treated: Sequence[int], control: Sequence[int], gammas: Sequence[float] = DEFAULT_GAMMAS,
                     alternative: str = "less") -> pd.DataFrame:
    """Rosenbaum bounds for matched pairs with a 0/1 outcome.

    treated, control: outcomes of the treated and control member of each pair (same length).
    alternative: "less" (treatment lowers the event rate, e.g. reoffending) or "greater".
    Returns one row per Gamma: gamma, discordant pairs D, treated-only events T, p_lower and p_upper (one-sided
    p-value bounds). ``.attrs["critical_gamma"]`` is the smallest Gamma at which p_upper exceeds 0.05 (NaN if the
    result is not significant at Gamma = 1; inf if it stays significant to Gamma = 1000).
    """
    t = np.asarray(treated, dtype=int)
    c = np.asarray(control, dtype=int)
    if t.shape != c.shape:
        raise ValueError(f"treated ({t.size}) and control ({c.size}) must have one value per pair")
    if not (np.isin(t, [0, 1]).all() and np.isin(c, [0, 1]).all()):
        raise ValueError("outcomes must be 0/1")
    if alternative not in ("less", "greater"):
        raise ValueError("alternative must be 'less' or 'greater'")
    T = int(np.sum((t == 1) & (c == 0)))
    D = T + int(np.sum((t == 0) & (c == 1)))

    def bounds(g):
        lo_p, hi_p = 1 / (1 + g), g / (1 + g)
        if D == 0:
            return 1.0, 1.0
        # (p_lower, p_upper): P(X <= T) falls and P(X >= T) rises with the binomial probability
        if alternative == "less":  # evidence = few pairs where only the treated member had the event
            return float(stats.binom.cdf(T, D, hi_p)), float(stats.binom.cdf(T, D, lo_p))
        return float(stats.binom.sf(T - 1, D, lo_p)), float(stats.binom.sf(T - 1, D, hi_p))

    rows = [(g, D, T, *bounds(g)) for g in gammas]
    out = pd.DataFrame(rows, columns=["gamma", "discordant_pairs", "treated_only_events", "p_lower", "p_upper"])
    if bounds(1.0)[1] > 0.05:
        crit = float("nan")
    elif bounds(1000.0)[1] <= 0.05:
        crit = float("inf")
    else:
        crit = optimize.brentq(lambda g: bounds(g)[1] - 0.05, 1.0, 1000.0)
    out.attrs["critical_gamma"] = crit
    return out


def rosenbaum_bounds(design, outcome: str, gammas: Sequence[float] = DEFAULT_GAMMAS,
                     alternative: str = "less") -> pd.DataFrame:
    """:func:`rosenbaum_binary` on the pairs of a 1:1 matched design without replacement.

    Parameters
    ----------
    design : MatchedDesign
        Nearest-neighbour or optimal 1:1 matching without replacement.
    outcome : str
        A 0/1 outcome column (the only kind these bounds support: the McNemar-type sign test).
    gammas, alternative
        As :func:`rosenbaum_binary`.

    Returns
    -------
    pandas.DataFrame
        One row per Gamma (see :func:`rosenbaum_binary`).

    Raises
    ------
    ValueError
        Not 1:1 pairs without replacement, or an outcome that is not 0/1.

    Examples
    --------
    >>> rosenbaum_bounds(match(cohort, "treat", ["age", "prior"]), "reoffended")  # doctest: +SKIP
    """
    if getattr(design, "replace", True) or any(len(c) > 1 for c in getattr(design, "match_matrix", {}).values()) \
            or getattr(design, "method_name", "nearest") not in ("nearest", "optimal"):
        raise ValueError("Rosenbaum bounds need 1:1 matched pairs without replacement (method='nearest', ratio=1, "
                         "replace=False)")
    if outcome not in design.data.columns:
        raise ValueError(f"outcome column {outcome!r} is not in the data")
    y = design.data[outcome]
    if not y.dropna().isin([0, 1]).all():
        raise ValueError(f"Rosenbaum bounds here support 0/1 outcomes only; {outcome!r} has other values (for a "
                         "continuous or count outcome use the E-value of its ratio, e_value())")
    pairs = design.pairs()
    return rosenbaum_binary(y.loc[pairs["treated"]].to_numpy(), y.loc[pairs["control"]].to_numpy(), gammas,
                            alternative)


def _e(rr: float) -> float:
    if rr < 1:
        rr = 1 / rr
    return rr + math.sqrt(rr * (rr - 1))


def e_value(rr: float, ci_low: float | None = None, ci_high: float | None = None) -> dict:
    """E-value for a risk ratio (VanderWeele & Ding 2017): ``RR + sqrt(RR (RR - 1))`` after inverting RR < 1.

    For the confidence interval, the limit closer to 1 is used; the E-value is 1 when the interval contains 1.
    Returns {"point": ..., "ci": ...} (ci is None when no limits are given).
    """
    if not rr > 0:
        raise ValueError(f"risk ratio must be positive, not {rr}")
    out = {"point": _e(rr), "ci": None}
    if ci_low is not None and ci_high is not None:
        if ci_low <= 1 <= ci_high:
            out["ci"] = 1.0
        else:
            out["ci"] = _e(ci_high if rr < 1 else ci_low)
    return out
