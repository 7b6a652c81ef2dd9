"""Covariate balance as MatchIt's ``summary()`` computes it and cobalt's ``bal.tab()`` presents it.

Conventions (MatchIt 4.7.2, ``bal1var``; checked against its fixtures)
- SMD: (weighted) mean difference divided by the SD of the *unmatched* sample's treated group for the ATT, of the
  control group for the ATC, and sqrt((var_treated + var_control) / 2) for the ATE (``sqrt(p(1-p))`` for binary
  variables); mean differences below sqrt(machine eps) are not standardised.
- Variance ratio (treated / control, weighted, reliability weights): NaN for binary variables.
- eCDF mean / max: mean and largest vertical distance between the groups' weighted empirical CDFs (evaluated at
  each distinct value); for binary variables both are the absolute difference in proportions (as cobalt).
- Thresholds (cobalt's ``thresholds``): |SMD| <= 0.1 and variance ratio within 0.5-2 flagged "Balanced".
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ._inputs import model_matrix

__all__ = ["balance_table", "love_plot", "ecdf_plot", "qq_plot", "SMD_THRESHOLD", "VAR_RATIO_RANGE"]

SMD_THRESHOLD = 0.1
VAR_RATIO_RANGE = (0.5, 2.0)
_EPS = math.sqrt(np.finfo(float).eps)


def _is_bin(x):
    return bool(np.all((x == 0) | (x == 1)))


def _wvar(x, binary, w=None):
    if w is None:
        w = np.ones_like(x)
    w = w / w.sum()
    mx = np.sum(w * x)
    if binary:
        return mx * (1 - mx)
    return np.sum(w * (x - mx) ** 2) / (1 - np.sum(w ** 2))


def _pooled_sd(x, t, binary):
    n = len(x)
    if binary:
        v = 0.0
        for g in (0, 1):
            xi = x[t == g]
            s = xi.sum()
            v += s * (1 - s / len(xi)) / n
        return math.sqrt(v)
    xc = x.astype(float).copy()
    for g in (0, 1):
        xc[t == g] -= xc[t == g].mean()
    return math.sqrt(np.sum(xc ** 2) / (n - 2))


def _sd_denominator(x, t, binary, estimand):
    if estimand == "ATC":
        return math.sqrt(_wvar(x[t == 0], binary))
    if estimand == "ATE":
        return math.sqrt((_wvar(x[t == 1], binary) + _wvar(x[t == 0], binary)) / 2)
    return math.sqrt(_wvar(x[t == 1], binary))


def _bal1(x, t, w=None, estimand="ATT"):
    """MatchIt's bal1var (standardize=TRUE): mean_t, mean_c, smd, var_ratio."""
    binary = _is_bin(x)
    ww = np.ones_like(x) if w is None else w
    i1, i0 = t == 1, t == 0
    too_small = np.sum(ww[i1] != 0) < 2 and np.sum(ww[i0] != 0) < 2
    m1 = np.sum(x[i1] * ww[i1]) / np.sum(ww[i1])
    m0 = np.sum(x[i0] * ww[i0]) / np.sum(ww[i0])
    md = m1 - m0
    smd = md
    if abs(md) > _EPS and not too_small:
        std = _sd_denominator(x, t, binary, estimand)
        if not np.isfinite(std) or std < _EPS:
            std = _pooled_sd(x, t, binary)
        smd = md / std
    vr = np.nan
    if not binary and not too_small:
        vr = _wvar(x[i1], binary, ww[i1]) / _wvar(x[i0], binary, ww[i0])
    return m1, m0, smd, vr


def _ecdf(x, t, w=None):
    """(mean, max) distance between the groups' weighted eCDFs (cobalt's ``ks`` is the max)."""
    ww = np.ones_like(x) if w is None else w
    # as MatchIt, every unit's value is a point of evaluation (unmatched ones too, with weight 0)
    if _is_bin(x):
        d = abs(np.average(x[t == 1], weights=ww[t == 1]) - np.average(x[t == 0], weights=ww[t == 0]))
        return d, d
    s = np.where(t == 1, ww / ww[t == 1].sum(), -ww / ww[t == 0].sum())
    o = np.argsort(x, kind="stable")
    xo = x[o]
    c = np.abs(np.cumsum(s[o]))
    last = np.append(np.diff(xo) != 0, True)
    e = c[last]
    return float(e.mean()), float(e.max())


def _ess(w):
    return float(np.sum(w) ** 2 / np.sum(w ** 2)) if np.sum(w) > 0 else 0.0


def covariate_frame(data: pd.DataFrame, covariates, *, squares: bool = False, interactions: bool = False):
    """Balance columns: dummies for every level of a categorical covariate, optional squares of the continuous
    ones and pairwise products (``a * b``), as cobalt's ``int = TRUE, poly = 2``."""
    parts = [model_matrix(data, [c], drop_first=False) for c in covariates]
    X = pd.concat(parts, axis=1)
    source = {col: c for c, part in zip(covariates, parts) for col in part.columns}
    base = list(X.columns)
    extra = {}
    if squares:
        for c in base:
            if not _is_bin(X[c].to_numpy()):
                extra[f"{c}²"] = X[c] ** 2
    if interactions:
        for i, a in enumerate(base):
            for b in base[i + 1:]:
                if source[a] == source[b]:
                    continue  # two levels of one factor: always 0
                prod = X[a] * X[b]
                if prod.std() > 0:
                    extra[f"{a} * {b}"] = prod
    if extra:
        X = pd.concat([X, pd.DataFrame(extra, index=X.index)], axis=1)
    return X


def balance_table(design, *, squares: bool = False, interactions: bool = False, ecdf: bool = True,
                  smd_threshold: float = SMD_THRESHOLD, var_ratio_range=VAR_RATIO_RANGE) -> pd.DataFrame:
    """Balance before and after matching; see :meth:`MatchedDesign.balance`."""
    X = covariate_frame(design.data, design.covariates, squares=squares, interactions=interactions)
    X.insert(0, "distance", design.distance.to_numpy())
    t = design.data[design.treatment].to_numpy()
    w = design.weights.to_numpy(dtype=float)
    estimand = getattr(design, "estimand", "ATT")
    rows = {}
    for c in X.columns:
        x = X[c].to_numpy(dtype=float)
        if not np.all(np.isfinite(x)):
            continue
        b = _bal1(x, t, None, estimand)
        a = _bal1(x, t, w, estimand)
        r = dict(mean_treated_before=b[0], mean_control_before=b[1], smd_before=b[2], var_ratio_before=b[3],
                 mean_treated_after=a[0], mean_control_after=a[1], smd_after=a[2], var_ratio_after=a[3])
        if ecdf:
            r["ecdf_mean_before"], r["ecdf_max_before"] = _ecdf(x, t)
            r["ecdf_mean_after"], r["ecdf_max_after"] = _ecdf(x, t, w)
        rows[c] = r
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "covariate"
    lo, hi = var_ratio_range
    out["smd_balanced"] = out["smd_after"].abs() <= smd_threshold
    vr = out["var_ratio_after"]
    out["var_ratio_balanced"] = np.where(vr.isna(), pd.NA, (vr >= lo) & (vr <= hi))
    out["var_ratio_balanced"] = out["var_ratio_balanced"].astype("boolean")
    out.attrs["thresholds"] = {"smd": smd_threshold, "var_ratio": tuple(var_ratio_range)}
    return out


def love_plot(design, ax=None, *, absolute: bool = True, threshold: float = SMD_THRESHOLD, squares=False,
              interactions=False, labels=None):
    """Love plot: (absolute) SMD before and after for each covariate, with threshold lines. ``labels`` maps
    variable names to the names shown on the axis (default: the variable names)."""
    import matplotlib.pyplot as plt

    bal = balance_table(design, squares=squares, interactions=interactions, ecdf=False)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.3 * len(bal) + 1.5))
    y = np.arange(len(bal))[::-1]
    f = (lambda s: s.abs()) if absolute else (lambda s: s)
    ax.scatter(f(bal["smd_before"]), y, marker="o", facecolors="none", edgecolors="grey", label="Before")
    ax.scatter(f(bal["smd_after"]), y, marker="o", color="black", label="After")
    ax.axvline(threshold, ls="--", color="grey", lw=0.8)
    if not absolute:
        ax.axvline(-threshold, ls="--", color="grey", lw=0.8)
        ax.axvline(0, color="black", lw=0.5)
    ax.set_yticks(y, [labels.get(v, v) for v in bal.index] if labels else bal.index)
    ax.set_xlabel(("Absolute s" if absolute else "S") + "tandardised mean difference")
    ax.legend(loc="lower right", frameon=False)
    ax.set_title("Covariate balance")
    return ax


def _check_var(design, variable):
    X = covariate_frame(design.data, design.covariates)
    if variable == "distance":
        return design.distance.to_numpy(dtype=float)
    if variable not in X.columns:
        from ._inputs import MatchingError
        raise MatchingError(f"variable {variable!r} is not a balance column; choose from {['distance', *X.columns]}")
    return X[variable].to_numpy(dtype=float)


def ecdf_plot(design, variable: str, ax=None):
    """Weighted empirical CDFs of ``variable`` by group, before (thin) and after matching (thick)."""
    import matplotlib.pyplot as plt

    x = _check_var(design, variable)
    t = design.data[design.treatment].to_numpy()
    w = design.weights.to_numpy(dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for g, colour, lab in ((1, "tab:orange", "Treated"), (0, "tab:blue", "Control")):
        for ww, lw, ls, when in ((np.ones_like(x), 0.8, ":", "all"), (w, 1.6, "-", "matched")):
            sel = (t == g) & (ww > 0)
            o = np.argsort(x[sel], kind="stable")
            cw = np.cumsum(ww[sel][o]) / ww[sel].sum()
            ax.step(x[sel][o], cw, where="post", color=colour, lw=lw, ls=ls, label=f"{lab} ({when})")
    ax.set_xlabel(variable)
    ax.set_ylabel("Cumulative proportion")
    ax.legend(frameon=False, fontsize=8)
    return ax


def qq_plot(design, variable: str, ax=None, n_quantiles: int = 100):
    """Quantiles of ``variable`` among controls against treated, before and after matching (weighted)."""
    import matplotlib.pyplot as plt

    x = _check_var(design, variable)
    t = design.data[design.treatment].to_numpy()
    w = design.weights.to_numpy(dtype=float)
    q = np.linspace(0, 1, n_quantiles)

    def wq(v, ww):
        o = np.argsort(v, kind="stable")
        c = (np.cumsum(ww[o]) - 0.5 * ww[o]) / ww.sum()
        return np.interp(q, c, v[o])

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    one = np.ones_like(x)
    for ww, lab, mk in ((one, "All", "o"), (w, "Matched", "x")):
        s1, s0 = (t == 1) & (ww > 0), (t == 0) & (ww > 0)
        ax.scatter(wq(x[s0], ww[s0]), wq(x[s1], ww[s1]), s=8, marker=mk, label=lab)
    lo, hi = np.min(x), np.max(x)
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
    ax.set_xlabel(f"{variable}: control quantiles")
    ax.set_ylabel("treated quantiles")
    ax.legend(frameon=False, fontsize=8)
    return ax
