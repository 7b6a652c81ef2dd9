"""Argument checks shared by every matching method (MatchIt's ``matchit()`` checks before dispatching).

Errors name the argument, the column and the rows (by index label, never by value: an index may be a person id,
so at most five labels are quoted and callers that publish messages should index by row number).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from evaluation.errors import EvaluationError

__all__ = ["MatchingError", "covariate_list", "check_inputs", "model_matrix", "rows_text"]


class MatchingError(EvaluationError):
    """Bad input or an impossible design; the message names the argument, column and rows."""


def rows_text(index, k: int = 5) -> str:
    """Up to ``k`` index labels for an error message, with how many more there are."""
    idx = list(index[:k])
    more = "" if len(index) <= k else f" (and {len(index) - k} more)"
    return ", ".join(map(str, idx)) + more


def covariate_list(covariates, argument: str = "covariates") -> list[str]:
    """One column name (a string) or a sequence of names, as a list (``"age"`` is one column, not three)."""
    if covariates is None:
        return []
    if isinstance(covariates, str):
        return [covariates]
    try:
        out = list(covariates)
    except TypeError:
        raise MatchingError(f"{argument} must be a column name or a list of column names, not "
                            f"{type(covariates).__name__}") from None
    bad = [c for c in out if not isinstance(c, str)]
    if bad:
        raise MatchingError(f"{argument} must be column names (strings); got {bad[:5]}")
    return out


def check_inputs(data: pd.DataFrame, treatment: str, covariates: Sequence[str]) -> np.ndarray:
    """Check data, treatment and covariates; return the treatment as int8 0/1."""
    if not isinstance(data, pd.DataFrame):
        raise MatchingError("data must be a pandas DataFrame")
    if not isinstance(treatment, str):
        raise MatchingError(f"treatment must be a column name, not {type(treatment).__name__}")
    missing_cols = [c for c in [treatment, *covariates] if c not in data.columns]
    if missing_cols:
        raise MatchingError(f"data has no column(s) {missing_cols} (argument treatment/covariates)")
    if len(covariates) == 0:
        raise MatchingError("covariates: give at least one covariate")
    if not data.index.is_unique:
        dup = data.index[data.index.duplicated()]
        raise MatchingError(f"data index must be unique (one row per person); {len(dup)} duplicate label(s), e.g. "
                            f"{rows_text(dup)}")
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
            f"{rows_text(data.index[bad.to_numpy()])}")
    # column by column: data[covariates].isna() first copies the covariates into a new frame (~1 s at 5 million)
    if any(data[c].isna().to_numpy().any() for c in covariates):
        na = data[list(covariates)].isna()
        rows = na.any(axis=1)
        cols = [c for c in covariates if na[c].any()]
        raise MatchingError(
            f"missing values in covariates: {int(rows.sum())} row(s) have a missing value in column(s) "
            f"{cols} (e.g. index {rows_text(data.index[rows.to_numpy()])}); impute or drop them explicitly "
            "and report the exclusion")
    tt = t.to_numpy().astype(np.int8)
    if tt.sum() == 0 or tt.sum() == len(tt):
        raise MatchingError(f"treatment column {treatment!r} needs both treated (1) and control (0) rows")
    return tt


def model_matrix(data: pd.DataFrame, covariates: Sequence[str], *, drop_first: bool,
                 dummy_scale: float = 1.0) -> pd.DataFrame:
    """Numeric covariates as they are; categorical/bool/object ones as 0/1 dummies (first level dropped for
    models, all levels kept for balance, as MatchIt does), each multiplied by ``dummy_scale``."""
    parts = []
    for c in covariates:
        s = data[c]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            parts.append(s.astype(float).rename(c))
        else:
            d = pd.get_dummies(s.astype("category"), prefix=c, prefix_sep="", drop_first=drop_first, dtype=float)
            parts.append(d * dummy_scale if dummy_scale != 1.0 else d)
    return pd.concat(parts, axis=1)
