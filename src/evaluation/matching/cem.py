"""Coarsened exact matching, as MatchIt 4.7.2 ``matchit(method = "cem")`` (its own ``cem_matchit``, not the cem
package).

Each numeric covariate is cut into bins -- by default Sturges' number of equal-width bins between its minimum and
maximum, the outer edges opened to infinity (``cutpoints`` per column: a number of bins, a list of cut points,
``"sturges"``/``"fd"``/``"scott"``, ``"q<k>"`` for k quantile bins, 0 for no coarsening, 1 to leave the column
out) -- categorical and boolean covariates are kept as they are, and units are matched exactly on the coarsened
values. Strata with both groups are the subclasses, numbered by first appearance among the units of the group of
the first row (MatchIt's ``intersect`` order); stratum weights as MatchIt's ``get_weights_from_subclass``.

With ``k2k=True`` one control is matched to each treated unit within its stratum by nearest neighbour on
``k2k_method`` (MatchIt's ``do_k2k``: Mahalanobis on the uncoarsened covariates by default, in data order).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ._inputs import MatchingError

__all__ = ["cem_subclasses", "k2k_match"]


def _n_bins(x: np.ndarray, rule: str) -> int:
    """R's nclass.Sturges / nclass.FD / nclass.scott."""
    n = len(x)
    if rule == "sturges":
        return int(math.ceil(math.log2(n) + 1))
    if rule == "scott":
        h = 3.5 * math.sqrt(np.var(x, ddof=1)) * n ** (-1 / 3)
        return int(math.ceil((x.max() - x.min()) / h)) if h > 0 else 1
    # Freedman-Diaconis (R: IQR by quantile type 7; falls back to a wider spread when it is 0)
    h = 2 * (np.quantile(x, 0.75) - np.quantile(x, 0.25))
    if h == 0:
        xs = np.sort(x)
        al = 1 / 4
        while h == 0 and (al := al / 2) >= 1 / 512:
            h = (np.quantile(xs, 1 - al) - np.quantile(xs, al)) / (1 - 2 * al)
    return int(math.ceil((x.max() - x.min()) / (h * n ** (-1 / 3)))) if h > 0 else 1


def _coarsen(x: np.ndarray, cut) -> np.ndarray:
    if isinstance(cut, str):
        if cut.startswith("q") and cut[1:].isdigit():
            q = int(cut[1:])
            cut = list(np.quantile(x, np.arange(1, q) / q))  # R quantile type 7 (numpy's default)
        elif cut in ("sturges", "fd", "scott"):
            cut = _n_bins(x, cut)
        else:
            raise MatchingError(f"cutpoints: {cut!r} is not a binning rule (sturges, fd, scott or q<k>)")
    if np.isscalar(cut):
        bins = int(cut)
        lo, hi = float(x.min()), float(x.max())
        if bins > 1:  # R's seq(min, max, length = bins + 1), outer edges then opened
            inner = lo + np.arange(1, bins) * ((hi - lo) / bins)
        else:
            inner = np.array([])
        breaks = np.concatenate([[-np.inf], inner, [np.inf]])
    else:
        breaks = np.concatenate([[-np.inf], np.unique(np.asarray(cut, dtype=float)), [np.inf]])
    return np.searchsorted(breaks, x, side="right")  # R's findInterval


def cem_subclasses(data: pd.DataFrame, tt: np.ndarray, covariates: list[str], cutpoints=None) -> np.ndarray:
    """Subclass codes 0..K-1 of coarsened exact matching (-1: stratum without both groups).

    Parameters
    ----------
    data : pandas.DataFrame
    tt : numpy.ndarray
        0/1 treatment.
    covariates : list of str
    cutpoints : None, str, int or dict
        One rule for every numeric covariate, or ``{column: rule}`` (others use Sturges).

    Returns
    -------
    numpy.ndarray of int

    Raises
    ------
    MatchingError
        No stratum has both groups, or a bad cutpoint rule.
    """
    per = cutpoints if isinstance(cutpoints, dict) else {}
    default = "sturges" if (cutpoints is None or isinstance(cutpoints, dict)) else cutpoints
    bad = [c for c in per if c not in covariates]
    if bad:
        raise MatchingError(f"cutpoints: {bad} are not among the covariates")
    cols = {}
    for c in covariates:
        s = data[c]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        rule = per.get(c, default)
        if numeric and isinstance(rule, (int, np.integer)) and rule == 1:
            continue  # left out, as MatchIt
        if numeric and not (isinstance(rule, (int, np.integer)) and rule == 0):
            cols[c] = _coarsen(s.to_numpy(dtype=float), rule)
        else:
            cols[c] = s.to_numpy()
    if not cols:
        return np.zeros(len(tt), dtype=np.int64)
    frame = pd.DataFrame(cols)
    codes = frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy()
    first = tt[0]
    order = pd.unique(codes[tt == first])
    other = set(np.unique(codes[tt != first]).tolist())
    common = [c for c in order if c in other]
    if not common:
        raise MatchingError("coarsened exact matching: no stratum has both treated and control units; coarsen "
                            "more (fewer bins) or match on fewer covariates")
    lookup = np.full(codes.max() + 1, -1, dtype=np.int64)
    lookup[np.array(common, dtype=np.int64)] = np.arange(len(common))
    return lookup[codes]


def k2k_match(data: pd.DataFrame, focal: np.ndarray, covariates: list[str], strata: np.ndarray,
              method: str = "mahalanobis", order: str = "data", random_state=None):
    """MatchIt's ``do_k2k``: 1:1 nearest neighbour within the strata (the strata act as exact matching).

    Returns the match positions (focal x 1, -1 unmatched) over all units.
    """
    from ._nn_general import nn_general
    from .distance import scaled_covariates

    if order not in ("data", "random"):
        raise MatchingError(f"k2k matching order must be 'data' or 'random', not {order!r}")
    n = len(focal)
    disc = strata < 0
    mah = scaled_covariates(data, covariates, method, focal, None)
    nf = int((focal == 1).sum())
    if order == "data":
        ordr = np.flatnonzero(~disc[focal == 1])
    else:
        ordr = np.random.default_rng(random_state).permutation(np.flatnonzero(~disc[focal == 1]))
    return nn_general(focal.astype(np.int64), ordr.astype(np.int64), 1, 1, disc, np.ascontiguousarray(mah[:, 0]),
                      np.zeros(n), True, np.ascontiguousarray(mah), np.inf, False, np.inf, True,
                      strata.astype(np.int64), 0, np.zeros((n, 0), dtype=np.int64), 0, np.zeros((n, 0)),
                      np.zeros(0))[:nf]
