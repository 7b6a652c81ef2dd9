"""Subclassification on the distance, as MatchIt 4.7.2 ``matchit(method = "subclass")``.

Cut points are quantiles (R type 7) of the distance among the treated (ATT), the controls (ATC) or everyone
(ATE), at ``subclass + 1`` equally spaced probabilities; units fall in ``findInterval(..., all.inside = TRUE)``.
Then MatchIt's ``subclass_scootC`` moves units so that every subclass has at least ``min_n`` of each group: for
each empty subclass, the unit of the nearest non-empty subclass closest to it (on the distance) moves in.
Weights are stratum weights for the estimand (see :func:`evaluation.matching._weights.weights_from_subclass`).
"""
from __future__ import annotations

import warnings

import numpy as np

from ._inputs import MatchingError


def _scoot(sub, tt, x, min_n):
    """Port of MatchIt's subclass_scootC (src/subclass_scootC.cpp), same order of moves and tie rules."""
    uniq = np.unique(sub)
    s_idx = np.searchsorted(uniq, sub)
    nsub = len(uniq)
    ut = list(dict.fromkeys(tt.tolist()))  # Rcpp unique(): order of appearance
    for t in ut:
        indt = np.flatnonzero(tt == t)
        subtab = np.bincount(s_idx[indt], minlength=nsub).astype(float)
        for _ in range(min_n):
            while subtab.min() <= 0:
                s = int(np.flatnonzero(subtab == 0)[0]) if (subtab == 0).any() else nsub - 1
                if s == nsub - 1:
                    left = True
                elif s == 0:
                    left = False
                else:
                    score = 0.0
                    for s2 in range(nsub):
                        if subtab[s2] <= 1 or s2 == s:
                            continue
                        score += (subtab[s2] - 1) / (s2 - s)
                    left = score <= 0
                if left:
                    s2 = s - 1
                    while s2 >= 0 and not subtab[s2] > 0:
                        s2 -= 1
                else:
                    s2 = s + 1
                    while s2 < nsub and not subtab[s2] > 0:
                        s2 += 1
                cand = indt[s_idx[indt] == s2]
                best = cand[0]
                for i in cand[1:]:
                    if left:
                        if x[i] < x[best]:
                            continue
                    elif x[i] > x[best]:
                        continue
                    best = i
                s_idx[best] = s
                subtab[s] += 1
                subtab[s2] -= 1
            subtab -= 1
    return uniq[s_idx]


def subclass_codes(d: np.ndarray, tt: np.ndarray, discarded: np.ndarray, *, subclass: int = 6,
                   estimand: str = "ATT", min_n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Subclass codes 0..K-1 (-1 for discarded units) and the cut points."""
    if not (isinstance(subclass, (int, np.integer)) and subclass > 1):
        raise MatchingError(f"subclass must be a whole number > 1, not {subclass!r}")
    probs = np.linspace(0, 1, int(subclass) + 1)
    base = {"ATT": d[tt == 1], "ATC": d[tt == 0]}.get(estimand, d)
    qu = np.quantile(base, probs)  # numpy's default "linear" is R's type 7
    keep = ~discarded
    k = np.searchsorted(qu, d[keep], side="right")  # R findInterval
    k = np.clip(k, 1, len(qu) - 1)
    if len(np.unique(k)) < subclass:
        warnings.warn("due to discreteness in the distance measure, fewer subclasses were generated than were "
                      "requested", stacklevel=3)
    if min_n > 0:
        k = _scoot(k, tt[keep].astype(int), d[keep], min_n)
    out = np.full(len(d), -1, dtype=np.int64)
    # MatchIt's factor(psclass, nmax) then levels 1..K: codes in sorted order of the (remaining) values
    _, out[keep] = np.unique(k, return_inverse=True)
    return out, qu
