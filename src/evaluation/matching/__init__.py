"""Propensity-score matching that reproduces R MatchIt 4.7.2 nearest-neighbour matching.

``match(data, "treat", covariates, ...)`` fits a logistic propensity score (statsmodels), matches greedily as
``MatchIt::matchit(method = "nearest", distance = "glm")`` does, and returns a :class:`MatchedDesign` with
balance (MatchIt's ``summary()`` conventions), plots and the ATT as a weighted difference in means.
``weight(data, "treat", covariates)`` is the inverse-probability (ATT odds) weighting alternative with the
same interface.

Conventions (MatchIt 4.7.2; checked against its fixtures in ``tests/results/matchit/``)
- distance: fitted probability (``link="logit"``) or linear predictor (``link="linear.logit"``) of a logistic
  regression fitted along R's glm.fit path (same start, IRLS steps and 1e-8 deviance rule), so that even on
  pools of millions the distances, and hence the matches, are MatchIt's.
- order: treated units are matched in decreasing (``"largest"``), increasing (``"smallest"``), data
  (``"data"``) or random (``"random"``, seeded by ``random_state``; not reproducible across languages) order
  of the distance; ties keep data order. With ``ratio > 1`` and no replacement every treated unit gets its
  first control before any gets a second. With replacement the order is the data order.
- caliper: in standard deviations (``ddof=1``) of the distance over all non-discarded units when
  ``std_caliper`` (else in distance units). Treated units with no control within the caliper are unmatched.
- exact: units are only matched within strata of the ``exact`` columns; strata without both groups are
  discarded (and counted).
- weights: treated 1; controls get 1/(number of controls in the subclass) (summed over treated with
  replacement), then rescaled so the control weights sum to the number of matched controls.
- subclass: the k-th matched treated unit in data order and its controls form subclass ``k``.
- SMD: (weighted) mean difference divided by the SD of the *treated* group in the unmatched sample
  (``sqrt(p(1-p))`` for binary variables); mean differences below sqrt(machine eps) are not standardised.
  Variance ratios (weighted, reliability weights) are NaN for binary variables.
- effect: weighted least squares of the outcome on treatment; SE cluster-robust by subclass
  (``sandwich::vcovCL`` defaults: HC1 with G/(G-1)) without replacement, HC3 with replacement (as
  ``sandwich::vcovHC(type="HC3")``); CI and p-value from the t distribution with n - 2 df (``lmtest``).
  Estimates are in outcome units (proportions for binary outcomes; multiply by 100 for percentage points).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from evaluation.errors import EvaluationError
from ._nn import fix_ties, group_minmax, irls_pass, logit_linkinv, nn_match

__all__ = ["match", "weight", "MatchedDesign", "WeightedDesign", "Effect", "fit_propensity", "MatchingError"]


class MatchingError(EvaluationError):
    """Bad input or an impossible design; the message names the argument, column and rows."""


# --------------------------------------------------------------------------------------------------------
# input checks and design matrix
# --------------------------------------------------------------------------------------------------------

def _rows(index, k=5) -> str:
    idx = list(index[:k])
    more = "" if len(index) <= k else f" (and {len(index) - k} more)"
    return ", ".join(map(str, idx)) + more


def _check_inputs(data: pd.DataFrame, treatment: str, covariates: Sequence[str]):
    if not isinstance(data, pd.DataFrame):
        raise MatchingError("data must be a pandas DataFrame")
    missing_cols = [c for c in [treatment, *covariates] if c not in data.columns]
    if missing_cols:
        raise MatchingError(f"data has no column(s) {missing_cols} (argument treatment/covariates)")
    if len(covariates) == 0:
        raise MatchingError("covariates: give at least one covariate")
    if not data.index.is_unique:
        dup = data.index[data.index.duplicated()]
        raise MatchingError(f"data index must be unique (one row per person); {len(dup)} duplicate label(s), e.g. "
                            f"{_rows(dup)}")
    t = data[treatment]
    tv = t.to_numpy()
    try:
        bad = ~((tv == 0) | (tv == 1))
    except TypeError:  # pragma: no cover - exotic dtypes
        bad = ~t.isin([0, 1]).to_numpy()
    bad = pd.Series(np.asarray(bad, dtype=bool) | t.isna().to_numpy(), index=data.index)
    if bad.any():
        raise MatchingError(
            f"treatment column {treatment!r} must be 0/1; {int(bad.sum())} row(s) are not, e.g. index "
            f"{_rows(data.index[bad.to_numpy()])} with values {list(t[bad].head(5))}")
    na = data[list(covariates)].isna()
    if na.to_numpy().any():
        rows = na.any(axis=1)
        cols = [c for c in covariates if na[c].any()]
        raise MatchingError(
            f"missing values in covariates: {int(rows.sum())} row(s) have a missing value in column(s) "
            f"{cols} (e.g. index {_rows(data.index[rows.to_numpy()])}); impute or drop them explicitly "
            "and report the exclusion")
    tt = t.to_numpy().astype(np.int8)
    if tt.sum() == 0 or tt.sum() == len(tt):
        raise MatchingError(f"treatment column {treatment!r} needs both treated (1) and control (0) rows")
    return tt


def _model_matrix(data: pd.DataFrame, covariates: Sequence[str], *, drop_first: bool) -> pd.DataFrame:
    """Numeric covariates as they are; categorical/bool/object ones as 0/1 dummies (first level dropped for
    the propensity model, all levels kept for balance, as MatchIt does)."""
    parts = []
    for c in covariates:
        s = data[c]
        if pd.api.types.is_bool_dtype(s):
            parts.append(s.astype(float).rename(c))
        elif pd.api.types.is_numeric_dtype(s):
            parts.append(s.astype(float).rename(c))
        else:
            d = pd.get_dummies(s.astype("category"), prefix=c, prefix_sep="", drop_first=drop_first, dtype=float)
            parts.append(d)
    return pd.concat(parts, axis=1)


# Up to this many rows the statsmodels Logit fit is also kept (design.model) for its summary; above it, it is
# skipped: it recomputes predictions several times per iteration and forms the Hessian from a weighted copy of
# the design (~0.45 s per million rows, ~1 GB extra at 5 million).
_STATSMODELS_ROWS = 200_000


def _glm_logit(X: np.ndarray, y: np.ndarray, *, epsilon: float = 1e-8, maxit: int = 25,
               chunk: int = 250_000) -> tuple[np.ndarray, int]:
    """Logistic regression along R's ``glm.fit`` iteration path (what MatchIt's ``distance = "glm"`` runs).

    Why not only statsmodels: glm stops when the relative change in deviance is below 1e-8, so its coefficients
    are R's last IRLS iterate, not the exact maximum-likelihood estimate; on large pools they differ from the MLE
    by ~1e-8 and that flips near-tied matches (14 of 10,000 pairs in the 5-million benchmark). Following R's path
    (start mu = (y + 0.5)/2, IRLS = Newton steps for the logit link, same convergence rule) reproduces R's
    coefficients to ~1e-13 and MatchIt's matched pairs exactly. Each iteration is one numba pass over the rows
    (gradient, Hessian and deviance together), which is also what makes pools of millions fast.
    Returns (coefficients, iterations). Equal to statsmodels' Logit MLE up to glm's convergence tolerance
    (tests/test_matching.py::test_glm_path_equals_statsmodels_and_r).
    """
    n, k = X.shape
    yf = y.astype(float)
    starts = list(range(0, n, chunk))
    # Fixed-size chunks, summed in chunk order: the result does not depend on the number of threads or cores.
    workers = min(len(starts), os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None

    def _pass(b, first):
        H = np.zeros((k, k))
        rhs = np.zeros(k)
        dev = 0.0
        run = (lambda a: irls_pass(X[a:a + chunk], yf[a:a + chunk], b, first))
        for Hc, rc, dc in (pool.map(run, starts) if pool is not None else map(run, starts)):
            H += Hc
            rhs += rc
            dev += dc
        return H, rhs, dev

    try:
        return _glm_iterate(_pass, k, epsilon, maxit)
    finally:
        if pool is not None:
            pool.shutdown()


def _glm_iterate(_pass, k: int, epsilon: float, maxit: int) -> tuple[np.ndarray, int]:
    """R glm.fit's loop: start, then IRLS steps until the relative change in deviance is below ``epsilon``."""

    def _solve(H, rhs):
        try:
            b = np.linalg.solve(H, rhs)
        except np.linalg.LinAlgError as exc:
            raise MatchingError("propensity model failed: singular design (collinear covariates or perfect "
                                "separation)") from exc
        if not np.all(np.isfinite(b)):
            raise MatchingError("propensity model diverged (perfect separation)")
        return b

    H, rhs, devold = _pass(np.zeros(k), True)
    b = _solve(H, rhs)
    for it in range(1, maxit + 1):
        H, rhs, dev = _pass(b, False)
        if not np.isfinite(dev):
            raise MatchingError("propensity model diverged (perfect separation)")
        if abs(dev - devold) / (0.1 + abs(dev)) < epsilon:
            return b, it
        devold = dev
        b = _solve(H, rhs)
    warnings.warn(f"propensity model: glm-style IRLS did not converge in {maxit} iterations", stacklevel=4)
    return b, maxit


def fit_propensity(data: pd.DataFrame, treatment: str, covariates: Sequence[str], *, link: str = "logit",
                   _tt=None):
    """Logistic regression of treatment on covariates, as MatchIt's ``distance = "glm"``.

    The coefficients follow R's ``glm.fit`` iteration path (see :func:`_glm_logit`); up to 200,000 rows the
    statsmodels ``Logit`` fit (the MLE, started from them) is also returned for its summary, else None.
    Returns (distance Series on data.index, statsmodels results or None). ``link="linear.logit"`` returns the
    linear predictor instead of the probability. Raises MatchingError on constant covariates within a group
    (which makes the propensity score degenerate), perfect separation and no overlap.
    """
    import statsmodels.api as sm

    tt = _check_inputs(data, treatment, covariates) if _tt is None else _tt
    if link not in ("logit", "linear.logit"):
        raise MatchingError(f"link must be 'logit' or 'linear.logit', not {link!r}")
    if all(pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c]) for c in covariates):
        names = list(covariates)
        Xc = np.empty((len(data), len(names) + 1))
        Xc[:, 0] = 1.0
        for j, c in enumerate(names):  # column by column: no intermediate frame on pools of millions
            Xc[:, j + 1] = data[c].to_numpy(dtype=float)
    else:
        X = _model_matrix(data, covariates, drop_first=True)
        names = list(X.columns)
        Xc = np.empty((len(X), len(names) + 1))
        Xc[:, 0] = 1.0
        Xc[:, 1:] = X.to_numpy(dtype=float)
        del X
    glo, ghi = group_minmax(Xc[:, 1:], tt.astype(np.int64))
    lo, hi = glo.min(axis=0), ghi.max(axis=0)
    const = [c for c, a, b in zip(names, lo, hi) if a == b]
    if const:
        raise MatchingError(f"covariate(s) {const} are constant over all rows; drop them from covariates")
    for g, name in ((1, "treated"), (0, "control")):
        for j, c in enumerate(names):
            if glo[g, j] == ghi[g, j]:
                raise MatchingError(
                    f"covariate {c!r} is constant ({glo[g, j]:g}) in the {name} group ({int((tt == g).sum())} "
                    "rows); the propensity score cannot be estimated on it (perfect or quasi-separation). Drop it "
                    "or use exact=[...] on it instead")
    # Like R's glm (pivoted QR, tolerance 1e-7), a column that is a linear combination of the earlier ones (e.g.
    # norwich + yarmouth == 1 when a programme only covers those two districts) is aliased: dropped from the fit.
    G = Xc.T @ Xc
    keep = [0]
    for j in range(1, G.shape[0]):
        K = np.array(keep)
        r2 = G[j, j] - G[j, K] @ np.linalg.solve(G[np.ix_(K, K)], G[K, j])
        if G[j, j] > 0 and r2 / G[j, j] > 1e-14:
            keep.append(j)
    if len(keep) < Xc.shape[1]:
        aliased = [names[j - 1] for j in range(1, Xc.shape[1]) if j not in keep]
        warnings.warn(f"covariate(s) {aliased} are linear combinations of the other covariates (and the intercept) "
                      "and are left out of the propensity model, as R's glm does (NA coefficients); they are "
                      "still shown in the balance table", stacklevel=3)
        Xc = np.ascontiguousarray(Xc[:, keep])
    params, _ = _glm_logit(Xc, tt)
    res = None
    if len(Xc) <= _STATSMODELS_ROWS:
        # the statsmodels fit (the MLE) is kept for its summary, standard errors and diagnostics
        model = sm.Logit(tt.astype(float), Xc, check_rank=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = model.fit(method="newton", disp=0, maxiter=100, tol=1e-12, start_params=params)
            except Exception:  # noqa: BLE001 - the distance does not depend on it
                res = None
    eta = Xc @ params
    p = logit_linkinv(eta)  # R's binomial()$linkinv (C_logit_linkinv)
    if np.any(p > 1 - 1e-10) or np.any(p < 1e-10) or not np.all(np.isfinite(params)):
        n_extreme = int(np.sum((p > 1 - 1e-10) | (p < 1e-10)))
        raise MatchingError(
            f"perfect separation: the propensity model predicts treatment with certainty for {n_extreme} "
            f"row(s) (covariates {list(covariates)}); there is no overlap to match on")
    plo, phi = group_minmax(p[:, None], tt.astype(np.int64))  # per group (control row 0, treated row 1)
    if plo[1, 0] > phi[0, 0] or phi[1, 0] < plo[0, 0]:
        raise MatchingError("no overlap: treated and control propensity scores do not overlap at all "
                            f"(treated {plo[1, 0]:.3g}-{phi[1, 0]:.3g}, control {plo[0, 0]:.3g}-{phi[0, 0]:.3g})")
    dist = eta if link == "linear.logit" else p
    return pd.Series(dist, index=data.index, name="distance"), res


# --------------------------------------------------------------------------------------------------------
# MatchIt summary conventions
# --------------------------------------------------------------------------------------------------------

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


def _bal1(x, t, w=None):
    """MatchIt's bal1var (ATT, standardize=TRUE): mean_t, mean_c, smd, var_ratio."""
    binary = _is_bin(x)
    ww = np.ones_like(x) if w is None else w
    i1, i0 = t == 1, t == 0
    too_small = np.sum(ww[i1] != 0) < 2 and np.sum(ww[i0] != 0) < 2
    m1 = np.sum(x[i1] * ww[i1]) / np.sum(ww[i1])
    m0 = np.sum(x[i0] * ww[i0]) / np.sum(ww[i0])
    md = m1 - m0
    smd = md
    if abs(md) > _EPS and not too_small:
        std = math.sqrt(_wvar(x[i1], binary))
        if not np.isfinite(std) or std < _EPS:
            std = _pooled_sd(x, t, binary)
        smd = md / std
    vr = np.nan
    if not binary and not too_small:
        vr = _wvar(x[i1], binary, ww[i1]) / _wvar(x[i0], binary, ww[i0])
    return m1, m0, smd, vr


def _ess(w):
    return float(np.sum(w) ** 2 / np.sum(w ** 2)) if np.sum(w) > 0 else 0.0


# --------------------------------------------------------------------------------------------------------
# effects
# --------------------------------------------------------------------------------------------------------

@dataclass
class Effect:
    """ATT estimate from a matched/weighted design. Differences are in outcome units (proportion for binary
    outcomes: x100 for percentage points); ratios are treated / control (weighted means)."""
    outcome: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    df: int
    se_type: str
    mean_treated: float
    mean_control: float
    n_treated: int
    n_control: int
    outcome_type: str
    ratios: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        rows = {"difference": (self.estimate, self.se, self.ci_low, self.ci_high, self.p_value)}
        for name, (est, lo, hi, p) in self.ratios.items():
            rows[name] = (est, np.nan, lo, hi, p)
        return pd.DataFrame.from_dict(rows, orient="index", columns=["estimate", "se", "ci_low", "ci_high", "p_value"])


def _wls_vcov(y, t, w, cluster=None, se="cluster"):
    """WLS of y on (1, t) with sandwich covariance as R sandwich does it.

    se="cluster": vcovCL(type="HC1", cadjust=TRUE): G/(G-1) * (n-1)/(n-k) * B M B.
    se="HC3": vcovHC(type="HC3"). se="HC1": vcovHC(type="HC1").
    """
    X = np.column_stack([np.ones_like(y), t])
    XtWX = X.T @ (X * w[:, None])
    B = np.linalg.inv(XtWX)
    beta = B @ (X.T @ (w * y))
    e = y - X @ beta
    n, k = X.shape
    sc = X * (w * e)[:, None]
    if se == "cluster":
        codes, uniq = pd.factorize(cluster)
        G = len(uniq)
        S = np.zeros((G, k))
        np.add.at(S, codes, sc)
        meat = S.T @ S
        adj = G / (G - 1) * (n - 1) / (n - k)
        V = adj * B @ meat @ B
    elif se == "HC3":
        h = w * np.einsum("ij,jk,ik->i", X, B, X)
        sc3 = sc / (1 - h)[:, None]
        V = B @ (sc3.T @ sc3) @ B
    else:  # HC1
        V = n / (n - k) * B @ (sc.T @ sc) @ B
    return beta, V, n - k


def _effect(design, outcome: str, *, alpha=0.05, outcome_type=None) -> Effect:
    md = design.matched
    if outcome not in md.columns:
        raise MatchingError(f"outcome column {outcome!r} is not in the data")
    y_s = md[outcome]
    if y_s.isna().any():
        bad = md.index[y_s.isna().to_numpy()]
        raise MatchingError(f"outcome {outcome!r} is missing for {len(bad)} matched row(s) (e.g. index "
                            f"{_rows(bad)}); exclude them before matching and report the exclusion")
    y = y_s.to_numpy(dtype=float)
    t = md[design.treatment].to_numpy(dtype=float)
    w = md["weight"].to_numpy(dtype=float)
    if outcome_type is None:
        outcome_type = "binary" if _is_bin(y) else ("count" if np.all(y >= 0) and np.all(y == np.round(y)) else "continuous")
    if design.se_type == "cluster":
        beta, V, df = _wls_vcov(y, t, w, md["subclass"].to_numpy(), "cluster")
        se_type = "cluster-robust by subclass (sandwich::vcovCL defaults, HC1)"
    else:
        beta, V, df = _wls_vcov(y, t, w, None, design.se_type)
        se_type = design.se_type
    est, se = beta[1], math.sqrt(V[1, 1])
    q = stats.t.ppf(1 - alpha / 2, df)
    p = 2 * stats.t.sf(abs(est / se), df) if se > 0 else np.nan
    m0, m1 = beta[0], beta[0] + beta[1]
    ratios = {}
    # ratio measures by the delta method on the same sandwich covariance of (mean_control, mean_treated)
    J = np.array([[1.0, 0.0], [1.0, 1.0]])
    Vm = J @ V @ J.T  # cov of (m0, m1)
    z = stats.norm.ppf(1 - alpha / 2)

    def _ratio(g0, g1, d0, d1):
        est_l = g1 - g0
        grad = np.array([-d0, d1])
        s = math.sqrt(grad @ Vm @ grad)
        return (math.exp(est_l), math.exp(est_l - z * s), math.exp(est_l + z * s),
                2 * stats.norm.sf(abs(est_l / s)) if s > 0 else np.nan)

    if m0 > 0 and m1 > 0:
        if outcome_type == "binary":
            ratios["risk_ratio"] = _ratio(math.log(m0), math.log(m1), 1 / m0, 1 / m1)
            if m0 < 1 and m1 < 1:
                ratios["odds_ratio"] = _ratio(math.log(m0 / (1 - m0)), math.log(m1 / (1 - m1)),
                                              1 / (m0 * (1 - m0)), 1 / (m1 * (1 - m1)))
        elif outcome_type == "count":
            ratios["rate_ratio"] = _ratio(math.log(m0), math.log(m1), 1 / m0, 1 / m1)
    return Effect(outcome=outcome, estimate=float(est), se=float(se), ci_low=float(est - q * se),
                  ci_high=float(est + q * se), p_value=float(p), df=int(df), se_type=se_type,
                  mean_treated=float(m1), mean_control=float(m0), n_treated=int((t == 1).sum()),
                  n_control=int((t == 0).sum()), outcome_type=outcome_type, ratios=ratios)


# --------------------------------------------------------------------------------------------------------
# designs
# --------------------------------------------------------------------------------------------------------

class _Design:
    data: pd.DataFrame
    treatment: str
    covariates: list
    distance: pd.Series
    weights: pd.Series  # on data.index, 0 for unmatched
    se_type: str
    method: str
    discarded: pd.Series

    @property
    def matched(self) -> pd.DataFrame:
        raise NotImplementedError

    def balance(self) -> pd.DataFrame:
        """Balance table (MatchIt ``summary()`` conventions), indexed by ``distance`` and the covariates (dummy
        columns for categorical ones): mean_treated/_control, smd, var_ratio before and after. Sample sizes
        (All / Matched / ESS / Unmatched / Discarded by group) are in ``.attrs["sample_sizes"]`` and
        :meth:`sample_sizes`."""
        X = _model_matrix(self.data, self.covariates, drop_first=False)
        X.insert(0, "distance", self.distance.to_numpy())
        t = self.data[self.treatment].to_numpy()
        w = self.weights.to_numpy(dtype=float)
        rows = {}
        for c in X.columns:
            x = X[c].to_numpy(dtype=float)
            b = _bal1(x, t)
            a = _bal1(x, t, w)
            rows[c] = dict(mean_treated_before=b[0], mean_control_before=b[1], smd_before=b[2],
                           var_ratio_before=b[3], mean_treated_after=a[0], mean_control_after=a[1],
                           smd_after=a[2], var_ratio_after=a[3])
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "covariate"
        out.attrs["sample_sizes"] = self.sample_sizes()
        return out

    def sample_sizes(self) -> pd.DataFrame:
        """MatchIt's sample-size table: All, All (ESS), Matched, Matched (ESS), Unmatched, Discarded."""
        t = self.data[self.treatment].to_numpy()
        w = self.weights.to_numpy(dtype=float)
        disc = self.discarded.to_numpy()
        out = {}
        for g, name in ((0, "control"), (1, "treated")):
            gi = t == g
            out[name] = {"All (ESS)": float(gi.sum()), "All": int(gi.sum()), "Matched (ESS)": _ess(w[gi]),
                         "Matched": int((w[gi] > 0).sum()), "Unmatched": int(((w == 0) & gi & ~disc).sum()),
                         "Discarded": int((gi & disc).sum())}
        return pd.DataFrame(out)

    def effect(self, outcome: str, *, alpha: float = 0.05, outcome_type: str | None = None) -> Effect:
        """ATT of ``outcome`` as a weighted difference in means (see module docstring for the SE); for binary
        outcomes also the risk ratio and odds ratio, for counts the rate ratio (delta-method CIs on the log
        scale from the same robust covariance)."""
        return _effect(self, outcome, alpha=alpha, outcome_type=outcome_type)

    def plot_balance(self, ax=None, threshold: float = 0.1):
        """Love plot: absolute SMD before and after for each covariate, with a threshold line."""
        import matplotlib.pyplot as plt

        bal = self.balance()
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.35 * len(bal) + 1.5))
        y = np.arange(len(bal))[::-1]
        ax.scatter(bal["smd_before"].abs(), y, marker="o", facecolors="none", edgecolors="grey", label="Before")
        ax.scatter(bal["smd_after"].abs(), y, marker="o", color="black", label="After")
        ax.axvline(threshold, ls="--", color="grey", lw=0.8)
        ax.set_yticks(y, bal.index)
        ax.set_xlabel("Absolute standardised mean difference")
        ax.legend(loc="lower right", frameon=False)
        ax.set_title("Covariate balance")
        return ax

    def plot_overlap(self, ax=None, bins: int = 30):
        """Distribution of the distance (propensity score) by group, before and after matching; the shaded band
        is the common support (overlap of the two groups' ranges)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        t = self.data[self.treatment].to_numpy()
        d = self.distance.to_numpy()
        w = self.weights.to_numpy(dtype=float)
        edges = np.histogram_bin_edges(d, bins=bins)
        ax.hist(d[t == 0], bins=edges, density=True, alpha=0.35, color="tab:blue", label="Control (all)")
        ax.hist(d[t == 0], bins=edges, weights=w[t == 0], density=True, histtype="step", color="tab:blue",
                lw=1.5, label="Control (matched)")
        ax.hist(d[t == 1], bins=edges, density=True, alpha=0.35, color="tab:orange", label="Treated")
        lo, hi = max(d[t == 1].min(), d[t == 0].min()), min(d[t == 1].max(), d[t == 0].max())
        ax.axvspan(lo, hi, color="grey", alpha=0.08, label="Common support")
        ax.set_xlabel("Propensity score" if self.link == "logit" else "Linear propensity score")
        ax.set_ylabel("Density")
        ax.legend(frameon=False, fontsize=8)
        return ax

    def summary(self, outcome: str | None = None):
        """statsmodels-style summary (``statsmodels.iolib.summary2.Summary``): design, sample sizes, balance
        and, when ``outcome`` is given, the effect."""
        from statsmodels.iolib.summary2 import Summary

        s = Summary()
        s.add_title(f"{self.method} — ATT design")
        info = {"Treatment:": self.treatment, "Covariates:": ", ".join(self.covariates),
                "Distance:": f"logistic propensity score ({self.link})", "Method:": self.method,
                "SE:": {"cluster": "cluster-robust by subclass (HC1)"}.get(self.se_type, self.se_type)}
        s.add_dict(info)
        s.add_df(self.sample_sizes(), index=True, header=True)
        bal = self.balance()[["smd_before", "smd_after", "var_ratio_before", "var_ratio_after"]]
        s.add_df(bal.round(4), index=True, header=True)
        if outcome is not None:
            s.add_df(self.effect(outcome).to_frame().round(4), index=True, header=True)
        return s


class MatchedDesign(_Design):
    """Result of :func:`match`. ``.distance`` (all rows), ``.matched`` (matched rows + weight, subclass),
    ``.match_matrix`` (treated index -> matched control indices, MatchIt's match.matrix)."""

    def __init__(self, data, treatment, covariates, distance, weights, subclass, match_matrix, discarded,
                 replace, link, caliper, model):
        self.data, self.treatment, self.covariates = data, treatment, list(covariates)
        self.distance, self.weights, self.subclass = distance, weights, subclass
        self.match_matrix, self.discarded, self.replace, self.link = match_matrix, discarded, replace, link
        self.caliper, self.model = caliper, model
        self.se_type = "HC3" if replace else "cluster"
        self.method = "Nearest-neighbour matching" + (" with replacement" if replace else "")

    @property
    def matched(self) -> pd.DataFrame:
        keep = self.weights.to_numpy() > 0
        md = self.data.loc[keep].copy()
        md["weight"] = self.weights.to_numpy()[keep]
        if not self.replace:
            md["subclass"] = self.subclass.loc[keep].astype("int64").to_numpy()
        return md

    @property
    def unmatched(self) -> pd.DataFrame:
        """Rows not in the matched sample with a reason (``discarded by exact`` or ``not matched``)."""
        keep = self.weights.to_numpy() > 0
        out = self.data.loc[~keep].copy()
        out["exclusion_reason"] = np.where(self.discarded.to_numpy()[~keep], "no units of the other group in "
                                           "its exact stratum", "not matched")
        return out

    def pairs(self) -> pd.DataFrame:
        """1:1 matched pairs (treated index, control index) for sensitivity analysis."""
        mm = self.match_matrix
        rows = [(t, c[0]) for t, c in mm.items() if len(c)]
        return pd.DataFrame(rows, columns=["treated", "control"])


class WeightedDesign(_Design):
    """Inverse probability of treatment weighting for the ATT: treated weight 1, control weight ps/(1-ps),
    controls rescaled to sum to their number. SE: HC3 (ignores estimation of the propensity score, which is
    conservative for the ATT)."""

    def __init__(self, data, treatment, covariates, distance, weights, link, model):
        self.data, self.treatment, self.covariates = data, treatment, list(covariates)
        self.distance, self.weights, self.link, self.model = distance, weights, link, model
        self.discarded = pd.Series(False, index=data.index)
        self.se_type = "HC3"
        self.method = "Inverse probability (ATT odds) weighting"

    @property
    def matched(self) -> pd.DataFrame:
        md = self.data.copy()
        md["weight"] = self.weights.to_numpy()
        return md


def weight(data: pd.DataFrame, treatment: str, covariates: Sequence[str]) -> WeightedDesign:
    """ATT odds weighting design with the same balance / effect interface as :func:`match`."""
    ps, res = fit_propensity(data, treatment, covariates, link="logit")
    t = data[treatment].to_numpy()
    p = ps.to_numpy()
    w = np.where(t == 1, 1.0, p / (1 - p))
    w[t == 0] *= (t == 0).sum() / w[t == 0].sum()
    return WeightedDesign(data, treatment, covariates, ps, pd.Series(w, index=data.index, name="weight"),
                          "logit", res)


def match(data: pd.DataFrame, treatment: str, covariates: Sequence[str], *, ratio: int = 1,
          replace: bool = False, caliper: float | None = None, std_caliper: bool = True, link: str = "logit",
          order: str = "largest", exact: str | Sequence[str] | None = None,
          random_state=None, distance: pd.Series | np.ndarray | None = None) -> MatchedDesign:
    """Greedy nearest-neighbour matching on the propensity score, as MatchIt 4.7.2 ``matchit(method="nearest",
    distance="glm")``. See the module docstring for conventions. ``distance`` may be given to skip the
    propensity model (a Series/array aligned with data)."""
    tt = _check_inputs(data, treatment, covariates)
    if not (isinstance(ratio, (int, np.integer)) and ratio >= 1):
        raise MatchingError(f"ratio must be a positive integer, not {ratio!r}")
    if order not in ("largest", "smallest", "data", "random"):
        raise MatchingError(f"order must be largest/smallest/data/random, not {order!r}")
    if caliper is not None and not (caliper > 0):
        raise MatchingError(f"caliper must be positive, not {caliper!r}")
    if distance is None:
        dist_s, model = fit_propensity(data, treatment, covariates, link=link, _tt=tt)
    else:
        dist_s = pd.Series(np.asarray(distance, dtype=float), index=data.index, name="distance")
        model = None
    d = dist_s.to_numpy()
    n = len(d)
    # exact strata and discarding
    if exact is not None:
        ex_cols = [exact] if isinstance(exact, str) else list(exact)
        miss = [c for c in ex_cols if c not in data.columns]
        if miss:
            raise MatchingError(f"exact: no column(s) {miss} in data")
        codes = data.groupby(ex_cols, sort=True, observed=True, dropna=False).ngroup().to_numpy()
        has1 = np.bincount(codes[tt == 1], minlength=codes.max() + 1) > 0
        has0 = np.bincount(codes[tt == 0], minlength=codes.max() + 1) > 0
        discarded = ~(has1 & has0)[codes]
        if discarded[tt == 1].all():
            raise MatchingError(f"exact={ex_cols}: no stratum has both treated and control units")
    else:
        codes = np.zeros(n, dtype=np.int64)
        discarded = np.zeros(n, dtype=bool)
    n1 = int((tt == 1).sum())
    n0 = n - n1
    if not replace:
        if n0 < ratio * n1:
            raise MatchingError(f"fewer controls ({n0}) than ratio x treated ({ratio} x {n1} = {ratio * n1}); "
                                "lower ratio, use replace=True or enlarge the comparison pool")
        if exact is not None:
            c1 = np.bincount(codes[tt == 1], minlength=codes.max() + 1)
            c0 = np.bincount(codes[tt == 0], minlength=codes.max() + 1)
            short = (c1 > 0) & (c0 > 0) & (c0 < ratio * c1)
            if short.any():
                warnings.warn(f"exact={ex_cols}: {int(short.sum())} stratum/strata have fewer controls than "
                              f"ratio x treated; not all treated units will get {ratio} match(es)", stacklevel=2)
    cal = np.inf
    if caliper is not None:
        cal = caliper * (np.std(d[~discarded], ddof=1) if std_caliper else 1.0)
    # sorted positions over all units (R's stable order())
    # (a fast unstable sort, then equal distances put back in data order: 4x faster than a stable sort)
    sort_idx = fix_ties(np.argsort(d), d)
    rank = np.empty(n, dtype=np.int64)
    rank[sort_idx] = np.arange(n)
    t_idx = np.flatnonzero(tt == 1)
    # controls grouped by stratum, sorted by position (sort_idx is already in position order)
    if exact is not None:
        _, seg_code = np.unique(codes, return_inverse=True)
        seg_code = seg_code.astype(np.int64)
    else:
        seg_code = codes
    c_idx = sort_idx[((tt == 0) & ~discarded)[sort_idx]]
    if seg_code.max() > 0:
        c_idx = c_idx[np.argsort(seg_code[c_idx], kind="stable")]
    n_seg = int(seg_code.max()) + 1
    seg_off = np.zeros(n_seg + 1, dtype=np.int64)
    np.cumsum(np.bincount(seg_code[c_idx], minlength=n_seg), out=seg_off[1:])
    t_seg = np.where(discarded[t_idx], -1, seg_code[t_idx]).astype(np.int64)
    td = d[t_idx]
    if replace:
        mord = np.flatnonzero(t_seg >= 0)  # MatchIt sets m.order = "data" with unlimited reuse
    elif order == "largest":
        mord = np.argsort(-td, kind="stable")
    elif order == "smallest":
        mord = np.argsort(td, kind="stable")
    elif order == "data":
        mord = np.flatnonzero(t_seg >= 0)
    else:
        rng = np.random.default_rng(random_state)
        mord = rng.permutation(np.flatnonzero(t_seg >= 0))
    mm = nn_match(rank[t_idx], td.astype(np.float64), t_seg, mord.astype(np.int64), int(ratio), bool(replace),
                  float(cal), seg_off, rank[c_idx], d[c_idx].astype(np.float64))
    matched_t = mm[:, 0] >= 0
    if not matched_t.any():
        raise MatchingError("no treated unit found a control" + (f" within the caliper ({caliper} "
                            f"{'SD' if std_caliper else 'distance units'})" if caliper is not None else ""))
    # weights and subclasses (MatchIt's mm2subclass / get_weights_from_subclass / weights_matrixC)
    w = np.zeros(n)
    subclass = np.full(n, np.nan)
    valid = mm >= 0
    if not replace:
        sub_of_t = np.cumsum(matched_t)  # k-th matched treated in data order -> subclass k
        subclass[t_idx[matched_t]] = sub_of_t[matched_t]
        rows, cols = np.nonzero(valid)
        subclass[c_idx[mm[rows, cols]]] = sub_of_t[rows]
        n_ctrl = valid.sum(axis=1)
        w[t_idx[matched_t]] = 1.0
        w[c_idx[mm[rows, cols]]] = 1.0 / n_ctrl[rows]
    else:
        n_ctrl = valid.sum(axis=1)
        rows, cols = np.nonzero(valid)
        np.add.at(w, c_idx[mm[rows, cols]], 1.0 / n_ctrl[rows])
        w[t_idx[matched_t]] += 1.0
    c_pos = (tt == 0) & (w > 0)
    w[c_pos] = w[c_pos] * c_pos.sum() / w[c_pos].sum()
    t_pos = (tt == 1) & (w > 0)
    w[t_pos] = w[t_pos] * t_pos.sum() / w[t_pos].sum()
    index = data.index
    mmat = {index[t_idx[i]]: [index[c_idx[j]] for j in mm[i] if j >= 0] for i in range(len(t_idx))}
    return MatchedDesign(data, treatment, covariates, dist_s, pd.Series(w, index=index, name="weight"),
                         pd.Series(subclass, index=index, name="subclass"), mmat,
                         pd.Series(discarded, index=index, name="discarded"), replace, link, cal, model)


# sensitivity and power helpers live in their own modules; re-exported here for notebooks
from ..power import design_power, minimum_detectable_difference, number_needed  # noqa: E402
from ..sensitivity import e_value, rosenbaum_binary, rosenbaum_bounds  # noqa: E402

__all__ += ["rosenbaum_binary", "rosenbaum_bounds", "e_value", "design_power", "minimum_detectable_difference",
            "number_needed"]
