"""Distances for matching: MatchIt's ``distance = "glm"`` propensity score and the covariate distances.

- ``glm``: logistic regression fitted along R's glm.fit path (same start, IRLS steps and 1e-8 deviance rule) so
  that even on pools of millions the distances, and hence the matches, are MatchIt's; the fitted score of each
  row depends on that row only (identical covariate rows get identical scores, so ties break as in MatchIt).
- ``mahalanobis``, ``robust_mahalanobis``, ``euclidean``: MatchIt's ``dist_functions.R`` scalings (see
  :func:`scaled_covariates`): distances between rows of the returned matrix are Euclidean.
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
import pandas as pd

from ._inputs import MatchingError, check_inputs, model_matrix
from ._nn import group_minmax, irls_pass, linear_predictor, logit_linkinv

__all__ = ["fit_propensity", "scaled_covariates", "COVARIATE_DISTANCES"]

COVARIATE_DISTANCES = ("mahalanobis", "robust_mahalanobis", "euclidean")


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

    tt = check_inputs(data, treatment, covariates) if _tt is None else _tt
    if link not in ("logit", "linear.logit"):
        raise MatchingError(f"link must be 'logit' or 'linear.logit', not {link!r}")
    if all(pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c]) for c in covariates):
        names = list(covariates)
        Xc = np.empty((len(data), len(names) + 1))
        Xc[:, 0] = 1.0
        for j, c in enumerate(names):  # column by column: no intermediate frame on pools of millions
            Xc[:, j + 1] = data[c].to_numpy(dtype=float)
    else:
        X = model_matrix(data, covariates, drop_first=True)
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
    eta = linear_predictor(Xc, params)  # row by row: identical rows get identical scores
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
