"""Exact matching, as MatchIt 4.7.2 ``matchit(method = "exact")``: one subclass per distinct combination of the
covariates that has both treated and control units; subclasses are numbered by first appearance in the data
among the units of the group of the first row (MatchIt's ``intersect`` order); other units are unmatched."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._inputs import MatchingError


def exact_subclasses(data: pd.DataFrame, tt: np.ndarray, columns: list[str]) -> np.ndarray:
    """Subclass codes 0..K-1 (-1 for units in a stratum without both groups)."""
    codes = data.groupby(columns, sort=False, observed=True, dropna=False).ngroup().to_numpy()
    first_group = tt[0]
    order = pd.unique(codes[tt == first_group])  # first appearance in that group
    other = set(np.unique(codes[tt != first_group]).tolist())
    common = [c for c in order if c in other]
    if not common:
        raise MatchingError(f"exact matching on {columns}: no combination of values has both treated and "
                            "control units")
    lookup = np.full(codes.max() + 1, -1, dtype=np.int64)
    lookup[np.array(common, dtype=np.int64)] = np.arange(len(common))
    return lookup[codes]
