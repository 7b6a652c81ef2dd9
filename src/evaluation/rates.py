"""Rates and differences with confidence intervals.

* :func:`wilson_ci` -- Wilson score interval for a proportion (statsmodels ``proportion_confint(method='wilson')``).
* :func:`newcombe_diff_ci` -- difference of two independent proportions, Newcombe (1998) hybrid score interval
  ("method 10"), built from the two Wilson intervals; agrees with statsmodels
  ``confint_proportions_2indep(method='newcomb')`` (tests check both and the paper's worked examples).
* :func:`two_proportion_pvalue` -- two-sided p-value of the pooled two-proportion z test (the Pearson chi-square
  test without continuity correction; statsmodels ``proportions_ztest``).
* :func:`frequency_per_100` -- proven reoffences per 100 people with a quasi-Poisson interval.

Proportions are on the 0-1 scale; differences are proportion 1 minus proportion 2 (multiply by 100 for percentage
points). ``alpha`` is two-sided (0.05 gives 95% intervals).
"""
from __future__ import annotations

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint, proportions_ztest


def _check_kn(k, n, name="k, n"):
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    if np.any(k < 0) or np.any(n < 0) or np.any(k > n) or np.any(k != np.round(k)) or np.any(n != np.round(n)):
        raise ValueError(f"{name}: need whole numbers with 0 <= k <= n, got k={k.tolist()}, n={n.tolist()}")
    return k, n


def wilson_ci(k, n, alpha: float = 0.05):
    """Wilson score interval ``(lower, upper)`` for k events in n trials (proportions 0-1).

    Scalars in, floats out; arrays in, arrays out. ``n == 0`` gives ``(nan, nan)``.
    """
    k, n = _check_kn(k, n)
    scalar = k.ndim == 0 and n.ndim == 0
    k, n = np.broadcast_arrays(np.atleast_1d(k), np.atleast_1d(n))
    lo = np.full(k.shape, np.nan)
    hi = np.full(k.shape, np.nan)
    ok = n > 0
    if ok.any():
        lo[ok], hi[ok] = proportion_confint(k[ok], n[ok], alpha=alpha, method="wilson")
    lo = np.clip(lo, 0.0, 1.0)
    hi = np.clip(hi, 0.0, 1.0)
    return (float(lo[0]), float(hi[0])) if scalar else (lo, hi)


def newcombe_diff_ci(k1, n1, k2, n2, alpha: float = 0.05):
    """Difference ``p1 - p2`` of two independent proportions with the Newcombe hybrid score interval.

    Newcombe RG (1998), *Interval estimation for the difference between independent proportions: comparison of
    eleven methods*, Stat Med 17:873-890, method 10: with Wilson limits (l1, u1) and (l2, u2),
    ``lower = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)``, ``upper = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)``.
    Returns ``(diff, lower, upper)`` on the 0-1 scale (nan when a group is empty).
    """
    k1, n1 = _check_kn(k1, n1, "k1, n1")
    k2, n2 = _check_kn(k2, n2, "k2, n2")
    scalar = all(np.ndim(v) == 0 for v in (k1, n1, k2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p1 = np.where(n1 > 0, k1 / np.where(n1 > 0, n1, 1), np.nan)
        p2 = np.where(n2 > 0, k2 / np.where(n2 > 0, n2, 1), np.nan)
    l1, u1 = wilson_ci(np.atleast_1d(k1), np.atleast_1d(n1), alpha)
    l2, u2 = wilson_ci(np.atleast_1d(k2), np.atleast_1d(n2), alpha)
    d = p1 - p2
    lo = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    if scalar:
        return float(np.squeeze(d)), float(np.squeeze(lo)), float(np.squeeze(hi))
    return d, lo, hi


def two_proportion_pvalue(k1, n1, k2, n2) -> float:
    """Two-sided p-value of the pooled two-proportion z test (= Pearson chi-square, no continuity correction).

    Returns 1.0 when both proportions are 0 or both are 1 (no evidence of a difference) and nan for an empty group.
    """
    _check_kn(k1, n1, "k1, n1")
    _check_kn(k2, n2, "k2, n2")
    if n1 == 0 or n2 == 0:
        return float("nan")
    if (k1 + k2) in (0, n1 + n2):
        return 1.0
    _, p = proportions_ztest([k1, k2], [n1, n2], alternative="two-sided")
    return float(p)


def frequency_per_100(counts, alpha: float = 0.05):
    """Proven reoffences per 100 people, ``(rate, lower, upper)``, with a quasi-Poisson interval.

    Reoffence counts are over-dispersed (most people have none, a few have many), so a plain Poisson interval is
    too narrow. The interval is that of an intercept-only Poisson GLM with log link whose variance is scaled by the
    Pearson dispersion ``phi = sum((y - mean)^2 / mean) / (n - 1)`` (quasi-Poisson; the same as statsmodels
    ``GLM(..., Poisson()).fit(scale='X2')``): ``exp(log(mean) +/- z * sqrt(phi / (n * mean)))``. ``phi`` is floored
    at 1 so that chance under-dispersion never gives an interval narrower than the Poisson one. When every count is
    0 the rate is 0 with the exact Poisson upper limit ``chi2(1 - alpha/2; 2) / 2 / n`` (x 100). Empty input: nans.
    Counts in, proven reoffences per 100 people out.
    """
    y = np.asarray(counts, dtype=float)
    y = y[~np.isnan(y)]
    n = y.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    if np.any(y < 0):
        raise ValueError("counts: must be >= 0")
    m = y.mean()
    if m == 0:
        return 0.0, 0.0, float(100 * stats.chi2.ppf(1 - alpha / 2, 2) / 2 / n)
    phi = max(1.0, float(((y - m) ** 2).sum() / m / (n - 1))) if n > 1 else 1.0
    z = stats.norm.ppf(1 - alpha / 2)
    se = np.sqrt(phi / (n * m))
    return float(100 * m), float(100 * m * np.exp(-z * se)), float(100 * m * np.exp(z * se))


__all__ = ["wilson_ci", "newcombe_diff_ci", "two_proportion_pvalue", "frequency_per_100"]
