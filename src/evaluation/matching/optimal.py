"""Optimal pair / k:1 matching and optimal full matching (MatchIt's ``method = "optimal"`` and ``"full"``).

MatchIt hands these to optmatch (a network-flow solver); here they are solved exactly with SciPy's
``linear_sum_assignment`` (a well-kept Hungarian/Jonker-Volgenant solver):

- optimal k:1: each focal unit repeated ``ratio`` times as a row of the focal x other distance matrix; the
  assignment minimises the total distance over all sets of ``ratio`` distinct matches per focal unit.
- full matching (no restriction on set sizes, optmatch's default): every unit is in exactly one matched set made of
  one treated unit and one or more controls or one control and one or more treated units, minimising the sum of
  within-set treated-control distances. Such a matching is a minimum-weight edge cover of the bipartite distance
  graph (Rosenbaum 1991, JRSS-B 53:597), found from a maximum-weight matching on the reduced weights
  ``m(u) + m(v) - d(u, v)`` (m: a unit's smallest distance) plus the cheapest edge of every unit left uncovered
  (Norman & Rabin 1959); edges whose two ends are both covered twice are dropped, which leaves stars.

Distances are ``|d_i - d_j|`` on the propensity score (MatchIt's ``eucdist_internal`` of the score) or
Euclidean distances between transformed covariates for ``distance="mahalanobis"`` and friends. optmatch rounds
distances to its ``tolerance`` before solving, so on ties or near-ties its matches can differ from these (which
are exactly optimal); the tests check optimality against brute force on small problems.
Exact strata are solved one by one. The distance matrix is dense: ``n_focal x n_other`` cells (refused above
50 million; use nearest-neighbour matching for pools of that size).
"""
from __future__ import annotations

import numpy as np

from ._inputs import MatchingError

__all__ = ["optimal_pairs", "full_matching", "MAX_CELLS"]

MAX_CELLS = 50_000_000


def _cost(rows, cols, d, X):
    if X is not None:
        from scipy.spatial.distance import cdist

        return cdist(X[rows], X[cols])
    return np.abs(d[rows][:, None] - d[cols][None, :])


def _check_size(n_rows, n_cols):
    if n_rows * n_cols > MAX_CELLS:
        raise MatchingError(f"optimal/full matching needs a {n_rows} x {n_cols} distance matrix (more than "
                            f"{MAX_CELLS:,} cells); use method='nearest' for pools of this size")


def optimal_pairs(focal: np.ndarray, d: np.ndarray | None, X: np.ndarray | None, *, ratio: int = 1,
                  strata: np.ndarray | None = None, discarded: np.ndarray | None = None) -> np.ndarray:
    """Optimal k:1 matching.

    Parameters
    ----------
    focal : numpy.ndarray
        1 for focal units (treated for the ATT), 0 for the others.
    d, X : numpy.ndarray or None
        The score (distance ``|d_i - d_j|``) or transformed covariates (Euclidean distance); one of them.
    ratio : int
        Matches per focal unit.
    strata : numpy.ndarray of int, optional
        Exact strata (-1: not matched); each is solved on its own.
    discarded : numpy.ndarray of bool, optional

    Returns
    -------
    numpy.ndarray
        n_focal x ratio positions (over all units) of the matches, -1 where unmatched.

    Raises
    ------
    MatchingError
        Fewer other units than ``ratio`` x focal units in a stratum, or a too large problem.
    """
    from scipy.optimize import linear_sum_assignment

    n = len(focal)
    disc = np.zeros(n, dtype=bool) if discarded is None else np.asarray(discarded, dtype=bool)
    st = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
    f_idx = np.flatnonzero(focal == 1)
    f_pos = np.full(n, -1, dtype=np.int64)
    f_pos[f_idx] = np.arange(len(f_idx))
    mm = np.full((len(f_idx), ratio), -1, dtype=np.int64)
    for s in np.unique(st[(st >= 0) & ~disc]):
        rows = np.flatnonzero((focal == 1) & (st == s) & ~disc)
        cols = np.flatnonzero((focal == 0) & (st == s) & ~disc)
        if len(rows) == 0 or len(cols) == 0:
            continue
        if len(cols) < ratio * len(rows):
            raise MatchingError(f"optimal matching: {len(cols)} units to match from for {len(rows)} focal units "
                                f"x ratio {ratio}" + (" in an exact stratum" if strata is not None else "") +
                                "; lower ratio or use method='full'")
        _check_size(len(rows) * ratio, len(cols))
        cost = _cost(rows, cols, d, X)
        rep = np.repeat(np.arange(len(rows)), ratio)
        r, c = linear_sum_assignment(cost[rep])
        fill = np.zeros(len(rows), dtype=np.int64)
        for ri, ci in zip(rep[r], c):
            mm[f_pos[rows[ri]], fill[ri]] = cols[ci]
            fill[ri] += 1
    return mm


def _edge_cover(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-weight edge cover of the complete bipartite graph with weights ``cost`` (rows x cols, >= 0)."""
    from scipy.optimize import linear_sum_assignment

    m_r = cost.min(axis=1)
    m_c = cost.min(axis=0)
    gain = m_r[:, None] + m_c[None, :] - cost
    r, c = linear_sum_assignment(np.maximum(gain, 0.0), maximize=True)
    edges = [(int(i), int(j)) for i, j in zip(r, c) if gain[i, j] > 0]
    cov_r = np.zeros(cost.shape[0], dtype=bool)
    cov_c = np.zeros(cost.shape[1], dtype=bool)
    for i, j in edges:
        cov_r[i] = cov_c[j] = True
    edges += [(int(i), int(np.argmin(cost[i]))) for i in np.flatnonzero(~cov_r)]
    edges += [(int(np.argmin(cost[:, j])), int(j)) for j in np.flatnonzero(~cov_c)]
    edges = list(dict.fromkeys(edges))
    # an edge whose ends are both covered by other edges costs >= 0 and is not needed: dropping such edges
    # leaves a union of stars (one unit of one group with one or more of the other)
    deg_r = np.bincount([i for i, _ in edges], minlength=cost.shape[0])
    deg_c = np.bincount([j for _, j in edges], minlength=cost.shape[1])
    keep = []
    for i, j in sorted(edges, key=lambda e: -cost[e]):
        if deg_r[i] > 1 and deg_c[j] > 1:
            deg_r[i] -= 1
            deg_c[j] -= 1
        else:
            keep.append((i, j))
    return keep


def full_matching(tt: np.ndarray, d: np.ndarray | None, X: np.ndarray | None, *,
                  strata: np.ndarray | None = None, discarded: np.ndarray | None = None) -> np.ndarray:
    """Optimal full matching: subclass codes 0..K-1 (-1: unmatched, i.e. discarded or outside the strata).

    Parameters
    ----------
    tt : numpy.ndarray
        0/1 treatment.
    d, X : numpy.ndarray or None
        The score or the transformed covariates (see :func:`optimal_pairs`).
    strata, discarded : numpy.ndarray, optional

    Returns
    -------
    numpy.ndarray of int
        Subclass of each unit, numbered by first appearance in the data.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(tt)
    disc = np.zeros(n, dtype=bool) if discarded is None else np.asarray(discarded, dtype=bool)
    st = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
    a_list, b_list = [], []
    for s in np.unique(st[(st >= 0) & ~disc]):
        rows = np.flatnonzero((tt == 1) & (st == s) & ~disc)
        cols = np.flatnonzero((tt == 0) & (st == s) & ~disc)
        if len(rows) == 0 or len(cols) == 0:
            continue
        _check_size(len(rows), len(cols))
        for i, j in _edge_cover(_cost(rows, cols, d, X)):
            a_list.append(rows[i])
            b_list.append(cols[j])
    if not a_list:
        raise MatchingError("full matching: no stratum has both treated and control units")
    g = coo_matrix((np.ones(len(a_list)), (np.array(a_list), np.array(b_list))), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    used = np.zeros(n, dtype=bool)
    used[a_list] = True
    used[b_list] = True
    codes = np.full(n, -1, dtype=np.int64)
    first = {}
    for i in np.flatnonzero(used):
        codes[i] = first.setdefault(comp[i], len(first))
    return codes
