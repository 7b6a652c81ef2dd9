"""MatchIt's ``get_weights_from_subclass`` and the normalisation ``matchit()`` applies to every method."""
from __future__ import annotations

import numpy as np

from ._inputs import MatchingError


def weights_from_subclass(subclass: np.ndarray, tt: np.ndarray, estimand: str) -> np.ndarray:
    """Stratum weights: ATT treated 1, controls n1_s / n0_s; ATC the mirror; ATE 1 + n_other_s / n_own_s.
    ``subclass`` holds codes 0..K-1 and -1 for units in no subclass. Then, as ``matchit(normalize = TRUE)``,
    each group's non-zero weights are rescaled to average 1."""
    ok = subclass >= 0
    if not ok[tt == 1].any():
        raise MatchingError("no treated units were matched")
    if not ok[tt == 0].any():
        raise MatchingError("no control units were matched")
    k = int(subclass.max()) + 1
    n1 = np.bincount(subclass[ok & (tt == 1)], minlength=k).astype(float)
    n0 = np.bincount(subclass[ok & (tt == 0)], minlength=k).astype(float)
    w = np.zeros(len(tt))
    i1, i0 = ok & (tt == 1), ok & (tt == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if estimand == "ATT":
            w[i1] = 1.0
            w[i0] = (n1 / n0)[subclass[i0]]
        elif estimand == "ATC":
            w[i1] = (n0 / n1)[subclass[i1]]
            w[i0] = 1.0
        else:
            w[i1] = 1 + (n0 / n1)[subclass[i1]]
            w[i0] = 1 + (n1 / n0)[subclass[i0]]
    w[~np.isfinite(w)] = 0.0
    return normalize(w, tt)


def normalize(w: np.ndarray, tt: np.ndarray) -> np.ndarray:
    """MatchIt's ``.make_sum_to_n``: the non-zero weights of each group rescaled to sum to their number."""
    w = w.copy()
    for g in (0, 1):
        pos = (tt == g) & (w > 0)
        if pos.any():
            w[pos] = w[pos] * pos.sum() / w[pos].sum()
    return w
