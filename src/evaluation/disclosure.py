"""Disclosure control for published counts: primary and secondary suppression.

Every count of people that leaves the library for publication (report tables, figure annotations,
``results.json``) passes through here. The rules follow the Ministry of Justice's practice for Justice Data Lab
and statistical releases, as its R package *mojSuppression* implements them:

* **primary suppression**: a count from 1 to ``threshold - 1`` (default threshold 5, so 1–4) is suppressed;
  zero is shown (a true zero discloses nothing about a person) unless ``suppress_zero=True``;
* **secondary (complementary) suppression**: a published total minus the shown cells must not reveal a
  suppressed cell. Whenever a line that adds up to a published total (each column, when ``total_row``; each row,
  when ``total_col``) has exactly one suppressed cell, the smallest other non-zero cell in that line is suppressed
  too. This repeats until no line has a lone suppressed cell (a fixed point), as cells suppressed for a column can
  leave a row with a lone one and vice versa.

Conventions: suppressed cells are shown as ``"[c]"`` (the ONS/GSS symbol for "confidential") in display tables,
and are NaN in data tables with a boolean mask beside them. Rates and estimates are not counts and are not
suppressed here; a rate computed from a suppressed count is the caller's to withhold.

Unlike *mojSuppression*, which picks secondary cells to minimise information loss over hierarchies, this module
handles one two-way table at a time and picks the smallest cell: simple, deterministic and sufficient for the
report tables (attrition, profiles, referral funnels), whose lines are short.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

SUPPRESSED = "[c]"
DEFAULT_THRESHOLD = 5


class DisclosureError(ValueError):
    """A figure meant for publication would disclose a small count; the message names where."""


@dataclass
class Suppressed:
    """A table after suppression: ``values`` (NaN where suppressed), ``mask`` (True = suppressed) and
    ``display`` (the table to show: counts as integers, suppressed cells ``"[c]"``, missing ``"–"``)."""

    values: pd.DataFrame
    mask: pd.DataFrame
    display: pd.DataFrame


def _count_columns(table: pd.DataFrame) -> list:
    return [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c]) and not
            pd.api.types.is_bool_dtype(table[c])]


def suppress(table: pd.DataFrame, threshold: int = DEFAULT_THRESHOLD, *, suppress_zero: bool = False,
             total_row: bool = True, total_col: bool = False) -> Suppressed:
    """Primary and secondary suppression of the count columns of ``table`` (see the module docstring).

    ``total_row=True``: each column's total is (or may be) published, so each column must not have a lone
    suppressed cell. ``total_col=True``: likewise each row's total. NaN cells (not applicable) are neither counted
    nor suppressed.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"suppress: expected a DataFrame, got {type(table).__name__}")
    if not isinstance(threshold, (int, np.integer)) or threshold < 1:
        raise ValueError(f"suppress: threshold must be a whole number >= 1, got {threshold!r}")
    cols = _count_columns(table)
    x = table[cols].to_numpy(dtype=float) if cols else np.zeros((len(table), 0))
    bad = ~np.isnan(x) & ((x < 0) | (x != np.round(x)))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"suppress: column '{cols[c]}' row '{table.index[r]}' is not a count ({x[r, c]!r})")
    present = ~np.isnan(x)
    low = 0 if suppress_zero else 1
    mask = present & (x >= low) & (x < threshold)
    if total_row or total_col:
        mask = _secondary(x, present, mask, by_column=total_row, by_row=total_col)
    values = table.copy()
    display = table.copy().astype(object)
    for j, c in enumerate(cols):
        values[c] = np.where(mask[:, j], np.nan, x[:, j])
        display[c] = [SUPPRESSED if m else ("–" if np.isnan(v) else int(v)) for m, v in zip(mask[:, j], x[:, j])]
    mask_df = pd.DataFrame(False, index=table.index, columns=table.columns)
    mask_df[cols] = mask
    return Suppressed(values=values, mask=mask_df, display=display)


def _secondary(x: np.ndarray, present: np.ndarray, mask: np.ndarray, *, by_column: bool, by_row: bool) -> np.ndarray:
    mask = mask.copy()
    changed = True
    while changed:
        changed = False
        lines = []
        if by_column:
            lines += [(slice(None), j) for j in range(x.shape[1])]
        if by_row:
            lines += [(i, slice(None)) for i in range(x.shape[0])]
        for line in lines:
            m = mask[line]
            if m.sum() != 1:
                continue
            vals = x[line]
            ok = present[line] & ~m & (vals > 0)  # a zero cell reveals nothing when suppressed alongside
            if not ok.any():
                continue  # nothing else in the line: the total itself equals the suppressed cell (caller's to hide)
            k = np.flatnonzero(ok)[np.argmin(vals[ok])]
            idx = np.arange(len(vals))[k]
            if isinstance(line[0], slice):
                mask[idx, line[1]] = True
            else:
                mask[line[0], idx] = True
            changed = True
    return mask


def safe_count(n, threshold: int = DEFAULT_THRESHOLD):
    """A single published count: the number itself when 0 or at least ``threshold``, else ``"[c]"``."""
    if n is None or (isinstance(n, float) and np.isnan(n)):
        return None
    n = int(n)
    return n if n == 0 or n >= threshold else SUPPRESSED


_COUNT_WORDS = {"n", "count", "counts", "participants", "comparison", "people", "reoffenders", "referred",
                "matched", "eligible", "excluded", "persons", "individuals", "referrals", "contacts"}
_NOT_COUNT_WORDS = {"rate", "share", "mean", "estimate", "lower", "upper", "p", "value", "pct", "ess", "ratio",
                    "se", "difference", "smd", "days", "mdd", "needed", "effective", "per"}


def _is_count_key(key: str) -> bool:
    parts = [p for p in re.split(r"[^a-z0-9]+", str(key).lower()) if p]
    return bool(parts) and any(p in _COUNT_WORDS for p in parts) and not any(p in _NOT_COUNT_WORDS for p in parts)


def check_published(obj: Any, threshold: int = DEFAULT_THRESHOLD, *, _path: str = "") -> None:
    """Scan a results structure (nested dicts/lists) meant for publication; raise :class:`DisclosureError` naming
    the key path of any whole number from 1 to ``threshold - 1`` stored under a key that names a count of people
    (``n``, ``participants``, ``reoffenders``, ``matched``, ...). Floats (rates, estimates) are not counts."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{_path}.{k}" if _path else str(k)
            if _is_count_key(k) and _is_small(v, threshold):
                raise DisclosureError(f"results: '{path}' = {v} is a count below {threshold}; suppress it "
                                      "(evaluation.disclosure.safe_count / suppress)")
            check_published(v, threshold, _path=path)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_published(v, threshold, _path=f"{_path}[{i}]")


def _is_small(v, threshold: int) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (int, np.integer)):
        return 0 < int(v) < threshold
    return False
