"""Distances for matching: MatchIt's ``distance = "glm"`` propensity score and the covariate distances.

- ``glm``: logistic regression fitted along R's glm.fit path (same start, IRLS steps and 1e-8 deviance rule) so
  that even on pools of millions the distances, and hence the matches, are MatchIt's; the fitted score of each
  row depends on that row only (identical covariate rows get identical scores, so ties break as in MatchIt).
- ``mahalanobis``, ``robust_mahalanobis``, ``euclidean``, ``scaled_euclidean``: MatchIt's ``dist_functions.R`` scalings (see
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
from ._kernels import kernels

__all__ = ["fit_propensity", "scaled_covariates", "COVARIATE_DISTANCES"]

COVARIATE_DISTANCES = ("mahalanobis", "robust_mahalanobis", "euclidean", "scaled_euclidean")


# Up to this many rows the statsmodels Logit fit is also kept (design.model) for its summary; above it, it is
# skipped: it recomputes predictions several times per iteration and forms the Hessian from a weighted copy of
# the design (~0.45 s per million rows, ~1 GB extra at 5 million).
_STATSMODELS_ROWS = 200_000


def _glm_logit(X: np.ndarray, y: np.ndarray, *, epsilon: float = 1e-8, maxit: int = 25,
               chunk: int = 250_000, start=None) -> tuple[np.ndarray, int]:
    """Logistic regression along R's ``glm.fit`` iteration path (what MatchIt's ``distance = "glm"`` runs).

    Why not only statsmodels: glm stops when the relative change in deviance is below 1e-8, so its coefficients
    are R's last IRLS iterate, not the exact maximum-likelihood estimate; on large pools they differ from the MLE
    by ~1e-8 and that flips near-tied matches (14 of 10,000 pairs in the 5-million benchmark). Following R's path
    (start mu = (y + 0.5)/2, IRLS = Newton steps for the logit link, same convergence rule) reproduces R's
    coefficients to ~1e-13 and MatchIt's matched pairs exactly. Each iteration is one numba pass over the rows
    (gradient, Hessian and deviance together), which is also what makes pools of millions fast.

    ``X`` is the n x k design; Fortran order (each column contiguous, as :func:`fit_propensity` builds it) is
    used as it is, any other order is copied once. ``start``: the result of :func:`_glm_start` on the same
    data, when already computed. Returns (coefficients, iterations). Equal to statsmodels'
    Logit MLE up to glm's convergence tolerance (tests/test_matching.py::test_glm_path_equals_statsmodels_and_r).
    """
    n, k = X.shape
    Xt = np.ascontiguousarray(X.T, dtype=np.float64)  # k x n, C order: no copy when X is Fortran-ordered
    y8 = np.ascontiguousarray(y, dtype=np.int8)

    def _pass(b, first, pool):
        return start if first and start is not None else _irls_sum(Xt, y8, b, first, chunk, pool)

    with _pool(n, chunk) as pool:
        return _glm_iterate(lambda b, first: _pass(b, first, pool), k, epsilon, maxit)


def _glm_start(X: np.ndarray, y: np.ndarray, chunk: int = 250_000):
    """glm.fit's first pass (at its start mu = (y + 0.5) / 2): (H, rhs, deviance), H = X'X * 3/16 (every row
    has weight 3/4 * 1/4), so H also gives the cross-products that the aliasing check needs without a pass of
    its own."""
    n, k = X.shape
    with _pool(n, chunk) as pool:
        return _irls_sum(np.ascontiguousarray(X.T, dtype=np.float64), np.ascontiguousarray(y, dtype=np.int8),
                         np.zeros(k), True, chunk, pool)


def _irls_sum(Xt, y8, b, first, chunk, pool):
    """One IRLS pass (:func:`._nn.irls_pass`) over all rows: the chunks' (H, rhs, deviance) summed in order."""
    k, n = Xt.shape
    irls_pass = kernels().irls_pass
    H = np.zeros((k, k))
    rhs = np.zeros(k)
    dev = 0.0
    for Hc, rc, dc in _chunks(lambda a, e: irls_pass(Xt, y8, b, first, a, e), n, chunk, pool):
        H += Hc
        rhs += rc
        dev += dc
    return H, rhs, dev


class _pool:
    """A thread pool for the chunks of a large pool of rows (None when there is one chunk or one core); the kernels
    release the GIL (:mod:`._kernels`)."""

    def __init__(self, n: int, chunk: int):
        workers = min(-(-n // chunk), os.cpu_count() or 1)
        self.pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None

    def __enter__(self):
        return self.pool

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown()


def _chunks(run, n: int, chunk: int, pool):
    """``run(start, stop)`` over fixed-size chunks of ``range(n)``, results in chunk order: summing them in this
    order makes the result independent of the number of threads or cores."""
    starts = range(0, n, chunk)
    call = (lambda a: run(a, min(a + chunk, n)))
    return pool.map(call, starts) if pool is not None else map(call, starts)


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
    tt = check_inputs(data, treatment, covariates) if _tt is None else _tt
    if link not in ("logit", "linear.logit"):
        raise MatchingError(f"link must be 'logit' or 'linear.logit', not {link!r}")
    if all(pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c]) for c in covariates):
        names = list(covariates)
        Xc = np.empty((len(data), len(names) + 1), order="F")  # columns contiguous: what the IRLS passes read
        Xc[:, 0] = 1.0
        for j, c in enumerate(names):  # column by column: no intermediate frame on pools of millions
            Xc[:, j + 1] = data[c].to_numpy(dtype=float)
    else:
        X = model_matrix(data, covariates, drop_first=True)
        names = list(X.columns)
        Xc = np.empty((len(X), len(names) + 1), order="F")
        Xc[:, 0] = 1.0
        Xc[:, 1:] = X.to_numpy(dtype=float)
        del X
    t8 = np.ascontiguousarray(tt, dtype=np.int8)
    kern = kernels()
    glo, ghi = kern.group_minmax(Xc.T[1:], t8)
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
    start = _glm_start(Xc, tt)  # glm's first pass; its matrix is X'X * 3/16
    G = start[0]
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
        Xc = np.asfortranarray(Xc[:, keep])
        start = None
    params, _ = _glm_logit(Xc, tt, start=start)
    res = None
    if len(Xc) <= _STATSMODELS_ROWS:
        import statsmodels.api as sm  # here, not above: importing it takes ~1 s, and large pools do not use it

        # the statsmodels fit (the MLE) is kept for its summary, standard errors and diagnostics
        model = sm.Logit(tt.astype(float), Xc, check_rank=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = model.fit(method="newton", disp=0, maxiter=100, tol=1e-12, start_params=params)
            except Exception:  # noqa: BLE001 - the distance does not depend on it
                res = None
    # each row's sum in column order and libm's exp, as R: identical rows get identical scores
    Xt = np.ascontiguousarray(Xc.T)  # a view: Xc is Fortran-ordered
    eta, p = np.empty(len(Xc)), np.empty(len(Xc))
    with _pool(len(Xc), 1_000_000) as pool:
        list(_chunks(lambda a, e: kern.scores(Xt, params, eta, p, a, e), len(Xc), 1_000_000, pool))
    if np.any(p > 1 - 1e-10) or np.any(p < 1e-10) or not np.all(np.isfinite(params)):
        n_extreme = int(np.sum((p > 1 - 1e-10) | (p < 1e-10)))
        raise MatchingError(
            f"perfect separation: the propensity model predicts treatment with certainty for {n_extreme} "
            f"row(s) (covariates {list(covariates)}); there is no overlap to match on")
    plo, phi = kern.group_minmax(p[None, :], t8)  # per group (control row 0, treated row 1)
    if plo[1, 0] > phi[0, 0] or phi[1, 0] < plo[0, 0]:
        raise MatchingError("no overlap: treated and control propensity scores do not overlap at all "
                            f"(treated {plo[1, 0]:.3g}-{phi[1, 0]:.3g}, control {plo[0, 0]:.3g}-{phi[0, 0]:.3g})")
    dist = eta if link == "linear.logit" else p
    return pd.Series(dist, index=data.index, name="distance"), res


# ---------------------------------------------------------------------------------------------------------------
# covariate distances (MatchIt's dist_functions.R): the covariates are transformed so that the Euclidean distance
# between transformed rows is the requested distance
# ---------------------------------------------------------------------------------------------------------------
def covariates_for_distance(data: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """MatchIt's ``get_covs_matrix_for_dist``: numeric and 0/1 columns as they are; a categorical column as one
    dummy per level divided by sqrt(2) (so a two-level factor counts as one 0/1 variable, as optmatch does)."""
    return model_matrix(data, covariates, drop_first=False, dummy_scale=1 / np.sqrt(2.0))


def _r_sd(x: np.ndarray) -> np.ndarray:
    return np.std(x, axis=0, ddof=1)


def _inverse(var: np.ndarray) -> np.ndarray:
    """R ``solve()`` when det > 1e-8, else MatchIt's ``generalized_inverse`` (SVD, relative tolerance 1e-8)."""
    if np.linalg.det(var) > 1e-8:
        try:
            inv = np.linalg.inv(var)
            # R's solve() refuses a matrix whose reciprocal condition number (1-norm) is below machine epsilon
            if 1.0 / (np.linalg.norm(var, 1) * np.linalg.norm(inv, 1)) >= np.finfo(float).eps:
                return inv
        except np.linalg.LinAlgError:
            pass
    u, s, vt = np.linalg.svd(var)
    pos = s > max(1e-8 * s[0], 0)
    return vt[pos].T @ (s[pos, None] ** -1 * u[:, pos].T)


def _mahalanobize(X: np.ndarray, inv_var: np.ndarray) -> np.ndarray:
    """MatchIt's ``mahalanobize``: ``X %*% t(chol(inv_var, pivot = TRUE)[, order(pivot)])``.

    The pivoted Cholesky factor is LAPACK's dpstrf, as R's ``chol(pivot = TRUE)``; any square root gives the same
    distances, but the first transformed column is the one MatchIt scans in sorted order, which decides ties.
    """
    from scipy.linalg import lapack

    c, piv, _rank, info = lapack.dpstrf(np.array(inv_var, dtype=float, order="F"), lower=0, tol=-1.0)
    if info < 0:  # pragma: no cover - bad argument to LAPACK
        raise MatchingError("Mahalanobis distance: the covariance matrix could not be factorised")
    ch = np.triu(c)
    p = np.argsort(piv - 1, kind="stable")
    # row by row, summed in column order (R's reference BLAS dgemm): identical covariate rows get identical
    # transformed rows, so ties between identical units break as in MatchIt (a blocked BLAS product need not)
    from ._nn_general import rowwise_product  # numba: imported only for covariate distances

    return rowwise_product(np.ascontiguousarray(X, dtype=float), np.ascontiguousarray(ch[:, p], dtype=float))


def _pooled_cov(X: np.ndarray, t: np.ndarray) -> np.ndarray:
    Xc = X.copy()
    for g in np.unique(t):
        Xc[t == g] -= Xc[t == g].mean(axis=0)
    n = len(X)
    return np.cov(Xc, rowvar=False, ddof=1).reshape(X.shape[1], X.shape[1]) * (n - 1) / (n - len(np.unique(t)))


def _pooled_sd(X: np.ndarray, t: np.ndarray) -> np.ndarray:
    """MatchIt's ``pooled_sd`` (proportional contribution, no weights): binary columns p(1-p) by group."""
    n = len(X)
    out = np.empty(X.shape[1])
    for j in range(X.shape[1]):
        x = X[:, j]
        if np.all((x == 0) | (x == 1)):
            v = sum(x[t == g].sum() * (1 - x[t == g].sum() / (t == g).sum()) for g in np.unique(t)) / n
        else:
            xc = x.copy()
            for g in np.unique(t):
                xc[t == g] -= xc[t == g].mean()
            v = np.sum(xc ** 2) / (n - len(np.unique(t)))
        out[j] = v
    return np.sqrt(out)


def scaled_covariates(data: pd.DataFrame, covariates: Sequence[str], method: str, tt: np.ndarray,
                      discarded: np.ndarray | None = None) -> np.ndarray:
    """Covariates transformed as MatchIt's ``transform_covariates`` (with the treatment given, no weights).

    Parameters
    ----------
    data : pandas.DataFrame
    covariates : list of str
    method : {"mahalanobis", "robust_mahalanobis", "euclidean", "scaled_euclidean"}
        Mahalanobis: covariates standardised, pooled within-group covariance (Rubin 1980), its inverse factored
        by pivoted Cholesky; robust: ranks (average ties) rescaled as Rosenbaum (2010, ch. 8); scaled Euclidean:
        divided by pooled within-group SDs; Euclidean: as they are.
    tt : numpy.ndarray
        0/1 treatment (the focal group coded 1).
    discarded : numpy.ndarray of bool, optional
        Units left out of the scaling statistics (and, for ranks, set to 0), as MatchIt.

    Returns
    -------
    numpy.ndarray
        n x k matrix; Euclidean distances between its rows are the requested distances.
    """
    if method not in COVARIATE_DISTANCES:
        raise MatchingError(f"distance must be one of {list(COVARIATE_DISTANCES)}, not {method!r}")
    X = covariates_for_distance(data, covariates).to_numpy(dtype=float)
    if not np.all(np.isfinite(X)):
        raise MatchingError(f"distance={method!r}: covariates must be finite")
    disc = np.zeros(len(X), dtype=bool) if discarded is None else np.asarray(discarded, dtype=bool)
    no_var = np.abs(X.max(axis=0) - X.min(axis=0)) < np.sqrt(np.finfo(float).eps)
    if no_var.all():
        return X[:, :1].copy()  # MatchIt: Euclidean on the first column
    X = X[:, ~no_var]
    keep = ~disc
    if method == "mahalanobis":
        Xs = (X - X.mean(axis=0)) / _r_sd(X)
        var = _pooled_cov(Xs[keep], tt[keep])
        return _mahalanobize(Xs, _inverse(var))
    if method == "robust_mahalanobis":
        from scipy.stats import rankdata

        Xr = np.column_stack([rankdata(X[keep, j], method="average") for j in range(X.shape[1])])
        var_r = np.cov(Xr, rowvar=False, ddof=1).reshape(X.shape[1], X.shape[1])
        mult = np.std(np.arange(1, keep.sum() + 1), ddof=1) / np.sqrt(np.diag(var_r))
        var_r = var_r * np.outer(mult, mult)
        inv = _inverse(var_r)
        if disc.any():
            full = np.zeros_like(X)
            full[keep] = Xr
            Xr = full
        return _mahalanobize(Xr, inv)
    if method == "scaled_euclidean":
        return X / _pooled_sd(X[keep], tt[keep])
    return X
