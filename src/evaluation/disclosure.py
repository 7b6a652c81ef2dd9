"""Disclosure control for published counts: primary and secondary suppression.

Every count of people that leaves the library for publication (report tables, figure annotations,
``results.json``) passes through here. The rules follow the Ministry of Justice's practice for Justice Data Lab
and statistical releases, as its R package *mojSuppression* implements them:

* **primary suppression**: a count from 1 to ``threshold - 1`` (default threshold 5, so 1–4) is suppressed;
  zero is shown (a true zero discloses nothing about a person) unless ``suppress_zero=True``;
* **secondary (complementary) suppression**: a published total minus the shown cells must not reveal a
  suppressed cell. Whenever a line that adds up to a published total (each column, when ``total_row``; each row,
  when ``total_col``) has exactly one suppressed cell, the smallest other non-zero cell in that line is suppressed
  too (a zero only when nothing else is left, a margin total last). This repeats until no line has a lone
  suppressed cell (a fixed point), as cells suppressed for a column can leave a row with a lone one and vice versa.
  A final exact check then looks for cells still recoverable from *combinations* of lines (the published totals
  form a linear system; a suppressed cell is recoverable iff the system fixes its value) and suppresses a partner
  for each, returning to the line rule until neither finds anything.

Totals may be outside the table (``total_row=True``: column totals are published elsewhere) or inside it as
margins (``total_row="Total"``: that row holds the column totals, as ``pd.crosstab(..., margins=True)`` makes);
margin cells are counts like any other (a total of 3 is suppressed).

Conventions: suppressed cells are shown as ``"[c]"`` (the ONS/GSS symbol for "confidential") in display tables,
and are NaN in data tables with a boolean mask beside them. Rates and estimates are not counts and are not
suppressed here; a rate computed from a suppressed count is the caller's to withhold.

Relation to *mojSuppression* (MoJ analytical services, R): it applies the same two steps to rows, columns or both
of one data frame (``simple_suppression``, ``suppress_single_group``; ``suppress_tidy_data`` per group), and where
several secondary cells would do it explores the choices by branching to lose the least information. This
module picks the smallest candidate (deterministic, no search), handles margins inside the table, and adds the
exact linear-algebra check, which the line rule alone does not guarantee. Known limit shared with both: a reader
who knows the rule and that suppressed primary cells are at least 1 can bound cells (e.g. two suppressed cells
with a residual of 2 must both be 1). Suppress zeros too (``suppress_zero=True``) where that matters.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evaluation.errors import EvaluationError

SUPPRESSED = "[c]"
DEFAULT_THRESHOLD = 5


class DisclosureError(EvaluationError):
    """A figure meant for publication would disclose a small count; the message names where."""


@dataclass
class Suppressed:
    """A table after suppression: ``values`` (NaN where suppressed), ``mask`` (True = suppressed) and
    ``display`` (the table to show: counts as integers, suppressed cells ``"[c]"``, missing ``"–"``).

    Unpacks as ``display, mask = suppress(...)``."""

    values: pd.DataFrame
    mask: pd.DataFrame
    display: pd.DataFrame

    def __iter__(self):
        return iter((self.display, self.mask))


def _count_columns(table: pd.DataFrame) -> list:
    return [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c]) and not
            pd.api.types.is_bool_dtype(table[c])]


def suppress(table: pd.DataFrame, threshold: int = DEFAULT_THRESHOLD, *, count_cols=None,
             total_row: bool | Any = True, total_col: bool | Any = False, suppress_zero: bool = False) -> Suppressed:
    """Primary and secondary suppression of the count columns of ``table`` (see the module docstring).

    ``count_cols``: the columns holding counts of people (default: every numeric, non-boolean column).

    ``total_row``: the column totals are published. ``True`` — outside the table (e.g. in the text or another
    table); a row *label* — that row of ``table`` holds them (a margin, e.g. ``"Total"`` from
    ``pd.crosstab(..., margins=True, margins_name="Total")``); ``False`` — no column totals. ``total_col`` likewise
    for the row totals (a column label names a margin column, which must be one of ``count_cols``). Margin cells
    are counts too: a small total is suppressed, and a margin may be the secondary cell of last resort.

    NaN cells (not applicable) are neither counted nor suppressed.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"suppress: expected a DataFrame, got {type(table).__name__}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or threshold < 1:
        raise ValueError(f"suppress: threshold must be a whole number >= 1, got {threshold!r}")
    if count_cols is None:
        cols = _count_columns(table)
    else:
        cols = list(count_cols)
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise ValueError(f"suppress: count_cols {missing} are not columns of the table "
                             f"(columns: {list(table.columns)})")
        not_num = [c for c in cols if not pd.api.types.is_numeric_dtype(table[c])]
        if not_num:
            raise ValueError(f"suppress: count column(s) {not_num} are not numeric")
    x = table[cols].to_numpy(dtype=float) if cols else np.zeros((len(table), 0))
    bad = ~np.isnan(x) & ((x < 0) | (x != np.round(x)))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"suppress: column '{cols[c]}' row '{table.index[r]}' is not a count ({x[r, c]!r})")
    margin_row = _margin_position(total_row, list(table.index), "total_row", "row of the table")
    margin_col = _margin_position(total_col, cols, "total_col", "count column")
    present = ~np.isnan(x)
    low = 0 if suppress_zero else 1
    mask = present & (x >= low) & (x < threshold)
    lines = _lines(x.shape, present, by_column=bool(total_row is not False), by_row=bool(total_col is not False),
                   margin_row=margin_row, margin_col=margin_col)
    if lines:
        mask = _secondary(x, present, mask, lines)
    values = table.copy()
    display = table.copy().astype(object)
    for j, c in enumerate(cols):
        values[c] = np.where(mask[:, j], np.nan, x[:, j])
        display[c] = [SUPPRESSED if m else ("–" if np.isnan(v) else int(v)) for m, v in zip(mask[:, j], x[:, j])]
    mask_df = pd.DataFrame(False, index=table.index, columns=table.columns)
    mask_df[cols] = mask
    return Suppressed(values=values, mask=mask_df, display=display)


def _margin_position(spec, labels: list, arg: str, what: str) -> int | None:
    if isinstance(spec, (bool, np.bool_)) or spec is None:
        return None
    hits = [i for i, lab in enumerate(labels) if lab == spec]
    if len(hits) != 1:
        raise ValueError(f"suppress: {arg}={spec!r} must be True/False or the label of one {what} "
                         f"({'not found' if not hits else 'label not unique'})")
    return hits[0]


def _lines(shape, present, *, by_column: bool, by_row: bool, margin_row: int | None, margin_col: int | None):
    """Each published additive relation as ``(cells, coefficients)``: interior cells +1, the margin cell −1 (its
    right-hand side, a total outside the table or zero, is known to a reader)."""
    n, m = shape
    lines = []
    if by_column:
        for j in range(m):
            cells = [(i, j) for i in range(n) if i != margin_row and present[i, j]]
            coef = [1.0] * len(cells)
            if margin_row is not None and present[margin_row, j]:
                cells.append((margin_row, j))
                coef.append(-1.0)
            if cells:
                lines.append((cells, coef))
    if by_row:
        for i in range(n):
            cells = [(i, j) for j in range(m) if j != margin_col and present[i, j]]
            coef = [1.0] * len(cells)
            if margin_col is not None and present[i, margin_col]:
                cells.append((i, margin_col))
                coef.append(-1.0)
            if cells:
                lines.append((cells, coef))
    return lines


def _secondary(x: np.ndarray, present: np.ndarray, mask: np.ndarray, lines) -> np.ndarray:
    """Complementary suppression to a fixed point.

    Step 1 (the classic rule, as in *mojSuppression*): a line with exactly one suppressed cell gets a second one —
    the smallest non-zero interior cell; failing that a zero cell; failing that the line's margin cell.
    Step 2 (exact check): a suppressed cell may still be recoverable from *combinations* of lines (e.g. two
    blocks of suppressed cells joined by one cell: adding and subtracting their totals isolates it). A cell is
    recoverable iff every solution of the published equations gives it the same value, i.e. the null space of
    the equations restricted to the suppressed cells is zero at that cell (the Gaussian-elimination test of
    Statistics Norway's GaussSuppression). Such a cell gets a partner as in step 1, and step 1 runs again.
    """
    mask = mask.copy()
    margins = set()
    for cells, coef in lines:
        margins.update(c for c, a in zip(cells, coef) if a < 0)

    def partner(cells) -> tuple | None:
        free = [c for c in cells if not mask[c] and present[c]]
        if not free:
            return None
        return min(free, key=lambda c: (c in margins, x[c] == 0, x[c]))

    while True:
        changed = False
        for cells, _ in lines:
            if sum(bool(mask[c]) for c in cells) == 1:
                c = partner(cells)
                if c is not None:
                    mask[c] = True
                    changed = True
        if changed:
            continue
        for k in _recoverable(x.shape, lines, mask):
            options = [partner(cells) for cells, _ in lines if k in cells]
            options = [c for c in options if c is not None]
            if options:
                mask[min(options, key=lambda c: (c in margins, x[c] == 0, x[c]))] = True
                changed = True
                break
        if not changed:
            return mask


def _recoverable(shape, lines, mask: np.ndarray) -> list[tuple[int, int]]:
    """Suppressed cells whose value the published lines determine exactly (see :func:`_secondary`)."""
    unknown = [tuple(c) for c in np.argwhere(mask)]
    if not unknown:
        return []
    pos = {c: k for k, c in enumerate(unknown)}
    a = np.zeros((len(lines), len(unknown)))
    for r, (cells, coef) in enumerate(lines):
        for c, v in zip(cells, coef):
            if c in pos:
                a[r, pos[c]] = v
    a = a[np.abs(a).sum(axis=1) > 0]
    if a.size == 0:
        return []
    _, sv, vt = np.linalg.svd(a, full_matrices=True)
    rank = int((sv > 1e-9 * max(1.0, sv[0])).sum())
    null = vt[rank:]  # rows span the null space
    touched = np.abs(a).sum(axis=0) > 0
    fixed = touched & (np.abs(null).max(axis=0, initial=0.0) < 1e-9)
    return [unknown[k] for k in np.flatnonzero(fixed)]


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


# ------------------------------------------------------------------------------------------------------------------
# Register-wide disclosure control (evaluation.register)
# ------------------------------------------------------------------------------------------------------------------
def round_base(n: int, base: int = 5) -> int:
    """Round a count to the nearest multiple of ``base``, halves up (ONS practice for rounded counts)."""
    return int(base * math.floor(n / base + 0.5))


def protect_register(reg, *, round_sections=("attrition", "profile", "risk", "ete", "vfm")) -> None:
    """Disclosure control over a whole :class:`evaluation.register.Register`, in place; then :func:`check_register`.

    1. **Rounding** (ONS practice): counts of people in ``round_sections`` are published rounded to ``reg.base``
       (default 5), except figures marked ``exact`` (the analysed N, published the same everywhere). A rounded
       count that is not exactly known cannot anchor a subtraction, so attrition steps, profile categories and
       numbers at risk cannot be read off each other.
    2. **Primary suppression**: any count from 1 to ``threshold − 1`` is suppressed (``[c]``).
    3. **Secondary suppression** over *all* relations at once: while some suppressed or small (1 to threshold − 1)
       count — published or hidden (e.g. the people lost between two attrition steps, the reoffenders among the
       unmatched) — is fixed by the exactly published figures (:func:`recoverable`), one more figure in a relation
       with it is suppressed (the smallest non-exact count first, then a rate it needs; an exact count last).
    4. **Bounds**: while some unpublished small count can be narrowed to fewer than ``threshold − 1`` values by
       the relations together with the rounding intervals and non-negativity (:func:`narrowed`), a partner is
       suppressed (a rounded figure in its relations first), then step 3 runs again.
    5. The exact check (:func:`check_register`) must then pass, or :class:`DisclosureError` is raised and the
       report is not written.
    """
    t = reg.threshold
    for f in reg.figures.values():
        if f.unit != "people" or f.status == "hidden" or f.value is None:
            continue
        if 0 < f.value < t:
            f.status, f.shown = "suppressed", SUPPRESSED
        elif f.section in round_sections and not f.exact and reg.base > 1:
            f.status, f.shown = "rounded", round_base(f.value, reg.base)
    # a rate over a rounded count, published to full precision, gives the exact count and denominator back
    # (15/136 = 0.11029… names 136 where the table rounds it to 135): such rates are published to whole percent
    for f in reg.figures.values():
        den = reg.figures.get(f.denominator) if f.denominator else None
        if f.unit == "proportion" and den is not None and den.status == "rounded" and isinstance(f.value, float):
            f.shown = round(f.value, 2)
            f.lower = None if f.lower is None else round(f.lower, 2)
            f.upper = None if f.upper is None else round(f.upper, 2)
    _suppress_until_unrecoverable(reg)
    # bounds as well as equations: a rounded count lies within half a base of what is shown and no count of people
    # is negative, so a subtraction against an exact figure can pin a small group to a narrow range without
    # fixing it (numbers at risk on day 360, rounded, against the exact count of reoffenders leave the people who
    # reoffended in the last days between 0 and 2). Such a group gets a partner suppressed (a rounded figure in its
    # relations first: it loses the least), and the exact check runs again, until neither finds anything.
    _suppress_until(reg, narrowed, _interval_partners, f"can be narrowed to fewer than {t} people",
                    then=_suppress_until_unrecoverable)
    # a withheld rate takes its difference and ratios with it (they would give it back); withholding only removes
    # relations, so the check below cannot get worse
    for grp in reg.meta.get("together", []):
        if any(reg.figures[i].status == "withheld" for i in grp):
            for i in grp:
                if reg.figures[i].status == "shown":
                    reg.figures[i].status, reg.figures[i].shown = "withheld", None
    _per_head(reg)
    check_register(reg)


def per_head_amount(total: float, count: int, nearest: int = 10) -> int | None:
    """An amount per person as published: ``total / count`` over the *published* (rounded) count, to the nearest
    ``nearest`` pounds, halves up; ``None`` for no count. The register (:func:`_per_head`) and the value-for-money
    statement (:meth:`evaluation.vfm.VfmResult.text`) both print this, so they cannot disagree."""
    from evaluation.wording import round_half_up

    return int(nearest * round_half_up(total / count / nearest)) if count else None


def _per_head(reg, nearest: int = 10) -> None:
    """An amount per person (unit ``gbp``, ``denominator`` a count of people, ``meta["numerator"]`` the total it
    divides, e.g. the funding) is published as the total over the *published* count, to the nearest
    ``nearest`` pounds; withheld when that count is suppressed or withheld. Published to the penny from the exact
    count, £95,000 / £1,283.78 gives back exactly 74 completers where the tables round them to 75 (issue 11)."""
    for f in reg.figures.values():
        den = reg.figures.get(f.denominator) if f.denominator else None
        num = reg.figures.get(f.meta.get("numerator")) if den is not None else None
        if f.unit != "gbp" or num is None or den.unit != "people" or f.status != "shown":
            continue
        if den.status in ("suppressed", "withheld", "hidden") or not isinstance(num.value, (int, float)):
            f.status, f.shown = "withheld", None
        elif den.status == "rounded":
            f.shown = per_head_amount(num.value, den.shown, nearest)
            if f.shown is None:
                f.status = "withheld"


def _suppress_until(reg, find, partners, what: str, then=None) -> None:
    """While ``find(reg)`` names a figure at risk, suppress (a count) or withhold (anything else) the first of
    ``partners(reg, id)``, then run ``then(reg)``; a figure with no partner left is a :class:`DisclosureError`."""
    for _ in range(10 * len(reg.figures) + 10):
        bad = find(reg)
        if not bad:
            return
        cand = partners(reg, bad[0])
        if not cand:
            raise DisclosureError(f"register: '{bad[0]}' {what} from published figures and no other figure in its "
                                  "relations can be suppressed")
        f = reg.figures[cand[0]]
        f.status, f.shown = ("suppressed", SUPPRESSED) if f.unit == "people" else ("withheld", None)
        if then is not None:
            then(reg)


def _suppress_until_unrecoverable(reg) -> None:
    """Secondary suppression: while a suppressed or small count can be worked out exactly (:func:`recoverable`),
    suppress or withhold one more figure in its relations (:func:`_partners`)."""
    _suppress_until(reg, recoverable, _partners, "can be worked out")


def _analysed(k: str) -> bool:
    """False for context figures (the profile's pre-match column), which a partner search gives up before the
    analysed groups' figures: "41 analysed" stays shown beside an eligible [c]."""
    return not k.endswith(".prematch")


def _partners(reg, target: str) -> list[str]:
    """Published figures whose suppression could protect ``target``: those in its relations, and (when those are
    all rounded, hidden or exact, e.g. a part = total − other part, where the total and the other part are each
    given back by a published rate) those in the relations of the figures it is related to, one step further.
    Exact counts (the analysed N and reoffenders, the headline's base) sort last."""
    live = _live_relations(reg)
    out = []
    for r in live:
        if target not in r.terms:
            continue
        for k in list(r.terms) + list(r.via):
            f = reg.figures[k]
            if k != target and f.status == "shown":
                out.append(k)
    if all(reg.figures[k].exact for k in out):  # also when only an exact count is in reach: look one step out
        near = {k for r in live if target in r.terms for k in r.terms if k != target}
        for r in live:
            if near & set(r.terms):
                out += [k for k in list(r.terms) + list(r.via) if k != target and reg.figures[k].status == "shown"]
    def key(k):  # counts first, context (the profile's pre-match column) before the analysed groups, smallest
        f = reg.figures[k]  # first; an exact count (the analysed N or reoffenders, the headline's base) last
        return (f.exact, f.unit != "people", _analysed(k), f.value == 0,
                f.value if isinstance(f.value, (int, float)) else 0)
    return sorted(set(out), key=key)


def _live_relations(reg):
    return [r for r in reg.relations if all(reg.figures[v].status == "shown" for v in r.via)]


def recoverable(reg) -> list[str]:
    """Ids of suppressed counts, and of hidden or rounded counts from 1 to ``threshold − 1``, whose exact value
    the published figures determine (solving every live relation at once; exactly published counts are known,
    rounded, suppressed and hidden ones unknown)."""
    t = reg.threshold
    unknown = [k for k, f in reg.figures.items() if f.unit == "people" and f.status != "shown" and f.value is not None]
    if not unknown:
        return []
    pos = {k: i for i, k in enumerate(unknown)}
    rows = []
    for r in _live_relations(reg):
        row = np.zeros(len(unknown))
        for k, c in r.terms.items():
            if k in pos:
                row[pos[k]] += c
        if np.abs(row).sum() > 0:
            rows.append(row)
    if not rows:
        return []
    a = np.array(rows)
    _, sv, vt = np.linalg.svd(a, full_matrices=True)
    rank = int((sv > 1e-9 * max(1.0, sv[0])).sum())
    null = vt[rank:]
    touched = np.abs(a).sum(axis=0) > 0
    fixed = touched & (np.abs(null).max(axis=0, initial=0.0) < 1e-9)
    out = []
    for i in np.flatnonzero(fixed):
        f = reg.figures[unknown[i]]
        if f.status == "suppressed" or 0 < f.value < t:
            out.append(unknown[i])
    return out


def _known_range(f, base: int) -> tuple[float, float | None]:
    """What a reader knows about one count of people from its own publication: a rounded count ``r`` (halves up
    to a multiple of ``base``) is an integer in ``[r - base/2, r + base/2)``; a suppressed or hidden one is only
    known not to be negative."""
    if f.status == "rounded" and isinstance(f.shown, (int, float)):
        lo = math.ceil(f.shown - base / 2)
        return float(max(0, lo)), float(math.ceil(f.shown + base / 2) - 1)
    return float(min(0, f.value)), None


def count_bounds(reg, ids=None) -> dict[str, tuple[int, int | None]]:
    """The narrowest range a reader can give each unpublished count (rounded, suppressed or hidden) from the whole
    register: every live relation at once, rounded counts within their rounding interval, no count negative.

    Solved as two linear programmes per count (scipy's HiGHS); the bounds of the continuous relaxation are
    rounded inwards to whole people, so they are never narrower than what a reader working in whole numbers
    could reach by this route. ``None`` as an upper bound: unbounded.

    Parameters
    ----------
    reg : Register
        After (or during) disclosure control.
    ids : iterable of str, optional
        The counts to bound (default: every unpublished count of people).

    Returns
    -------
    dict
        ``{id: (lower, upper)}`` in people.

    Examples
    --------
    >>> count_bounds(reg)["hidden.risk_tail.participants"]  # doctest: +SKIP
    (0, 7)
    """
    from scipy.optimize import linprog

    unknown = [k for k, f in reg.figures.items() if f.unit == "people" and f.status != "shown" and f.value is not None]
    if not unknown:
        return {}
    pos = {k: i for i, k in enumerate(unknown)}
    rows, rhs = [], []
    for r in _live_relations(reg):
        row, b, ok = np.zeros(len(unknown)), float(r.rhs), True
        for k, c in r.terms.items():
            f = reg.figures[k]
            if k in pos:
                row[pos[k]] += c
            elif f.status == "shown" and isinstance(f.value, (int, float)):
                b -= c * float(f.value)
            else:  # a term a reader does not know and that is not a count: the relation is not usable
                ok = False
        if ok and np.abs(row).sum() > 0:
            rows.append(row)
            rhs.append(b)
    bounds = [_known_range(reg.figures[k], reg.base) for k in unknown]
    targets = unknown if ids is None else [k for k in ids if k in pos]
    out: dict[str, tuple[int, int | None]] = {}
    if not rows:
        for k in targets:
            lo, hi = bounds[pos[k]]
            out[k] = (int(lo), None if hi is None else int(hi))
        return out
    a, b = np.array(rows), np.array(rhs)
    # only the variables joined to a target through relations matter: solve on its connected block
    link = np.abs(a) > 0
    for k in targets:
        block = {pos[k]}
        frontier = [pos[k]]
        rows_in = set()
        while frontier:
            j = frontier.pop()
            for r in np.flatnonzero(link[:, j]):
                if r in rows_in:
                    continue
                rows_in.add(r)
                for jj in np.flatnonzero(link[r]):
                    if jj not in block:
                        block.add(jj)
                        frontier.append(jj)
        lo0, hi0 = bounds[pos[k]]
        if not rows_in:
            out[k] = (int(lo0), None if hi0 is None else int(hi0))
            continue
        cols = sorted(block)
        ri = sorted(rows_in)
        sub_a, sub_b = a[np.ix_(ri, cols)], b[ri]
        c = np.zeros(len(cols))
        c[cols.index(pos[k])] = 1.0
        bnd = [bounds[j] for j in cols]
        res = []
        for sign in (1.0, -1.0):
            sol = linprog(sign * c, A_eq=sub_a, b_eq=sub_b, bounds=bnd, method="highs")
            res.append(None if sol.status == 3 else (sign * sol.fun if sol.status == 0 else None))
        lo = lo0 if res[0] is None else math.ceil(res[0] - 1e-6)
        hi = res[1]
        hi = None if hi is None else math.floor(hi + 1e-6)
        out[k] = (int(lo), hi)
    return out


def narrowed(reg) -> list[str]:
    """Ids of unpublished counts of 1 to ``threshold − 1`` people that a reader can pin down to a range of fewer
    than ``threshold − 1`` whole numbers (e.g. "0, 1 or 2" with the default threshold 5) from the whole register
    (:func:`count_bounds`), and of never-published (hidden) counts of any size that a reader can place within
    1 to ``threshold`` (a small group known not to be empty). A suppressed small count tells a reader "1 to 4"; a
    published subtraction must not tell more. Exactly determined counts are :func:`recoverable`'s."""
    t = reg.threshold
    # People lost between two attrition stages (hidden.step.*: e.g. "0 or 1 participant could not be matched")
    # carry no outcome: a range for them says nothing about anyone's offending, and the rounded stages around an
    # exact analysed N always leave one (a report would fail on luck). They stay under the exact check
    # (:func:`recoverable`); the range check is for counts that carry an outcome (late reoffenders, the
    # reoffenders among a profile group, ...).
    def considered(k, f):
        return (f.unit == "people" and f.status != "shown" and isinstance(f.value, (int, float))
                and not (f.section == "attrition" and k.startswith("hidden.step.")))

    small = [k for k, f in reg.figures.items() if considered(k, f) and 0 < f.value < t]
    # A never-published count (the people leaving between two numbers at risk, ...) that a reader can show to be
    # from 1 to ``threshold`` says what a [c] says — "a few people" — whatever its true value: day 0 of the risk
    # table is the exact N, so N = 133 beside 130 (rounded) on day 60 tells "1 to 5 left in the first 60 days"
    # even when 5 did (issue 11). Two rounded rows never do this (their difference is known only to ±4).
    hidden = [k for k, f in reg.figures.items() if considered(k, f) and f.status == "hidden" and f.value > 0]
    if t < 3 or not (small or hidden):
        return []
    out = []
    for k, (lo, hi) in count_bounds(reg, list(dict.fromkeys(small + hidden))).items():
        if hi is None:
            continue
        # a hidden count a reader knows to be exactly ``threshold`` (5 first-time entrants: a shown rate of 3.7% of
        # an exact 135) is a publishable count, not "a few people": only a range that reaches below it is flagged
        if (k in small and hi - lo < t - 2) or (reg.figures[k].status == "hidden" and 1 <= lo < t and hi <= t):
            out.append(k)
    return out


def _interval_partners(reg, target: str) -> list[str]:
    """Figures whose suppression widens ``target``'s range: rounded or exactly published (not ``exact``) counts in
    its relations, rounded ones first (suppressing them loses the least), then one step further out."""
    live = _live_relations(reg)

    def ok(k):
        f = reg.figures[k]
        return k != target and f.unit == "people" and f.status in ("rounded", "shown") and not f.exact

    out = [k for r in live if target in r.terms for k in r.terms if ok(k)]
    if not out:
        near = {k for r in live if target in r.terms for k in r.terms if k != target}
        out = [k for r in live if near & set(r.terms) for k in r.terms if ok(k)]
    out = sorted(set(out), key=lambda k: (reg.figures[k].status != "rounded", _analysed(k), reg.figures[k].value))
    if not out:  # no count to give up: withhold a published rate that defines a term (e.g. a proportion x N)
        near = {k for r in live if target in r.terms for k in r.terms}
        out = sorted({v for r in live if near & set(r.terms) for v in r.via
                      if reg.figures[v].status == "shown" and not reg.figures[v].exact})
    return out


def check_register(reg) -> None:
    """Prove that no suppressed or small count is derivable from the whole register; set ``reg.checked``.

    Raises :class:`DisclosureError` naming the figure ids when a published count is from 1 to threshold − 1, a
    suppressed/small count is fixed by the published relations (:func:`recoverable`), or a small unpublished count
    can be pinned to a narrow range by them with the rounding intervals (:func:`narrowed`).
    """
    t = reg.threshold
    small = [k for k, f in reg.figures.items()
             if f.unit == "people" and f.status in ("shown", "rounded") and isinstance(f.shown, int) and 0 < f.shown < t]
    bad = small + recoverable(reg) + narrowed(reg)
    if bad:
        reg.checked = False
        raise DisclosureError(f"register: figures {sorted(set(bad))} would disclose a count below {t}")
    reg.checked = True
