"""MoJ proven reoffending: binary, frequency and days to first proven reoffence, one row per person.

The measure is the Ministry of Justice's proven reoffending measure
(https://www.gov.uk/government/collections/proven-reoffending-statistics), written once as SQL
(:data:`PROVEN_REOFFENDING_SQL`, below) and executed by DuckDB. :func:`proven_reoffending`, :func:`survival_view`,
:func:`first_time_entry` and :func:`proven_offences` (the offence records behind the counts, used for value for
money) all run that one definition.

Definition                                                   where it is in the SQL
------------------------------------------------------------ -------------------------------------------------
For each person of a cohort, with an index date ``I``:
* follow-up end ``F = I + follow_up_months`` calendar        ``windows.follow_up_end``
  months (default 12);
* waiting end ``W = F + waiting_months`` calendar months      ``windows.waiting_end`` (added to ``F``, not ``I``)
  (default 6);
* an offence counts when committed strictly after ``I``       ``proven``: ``offence_date > index_date``
  and on or before ``F`` (an offence on the index day is       ``AND offence_date <= follow_up_end``
  not counted; one on ``F`` is);
* and it is proven: a counted disposal (conviction, caution,  ``disposal_type IN ({counted})``
  reprimand, warning, youth caution, youth conditional        ``AND disposal_date <= waiting_end``
  caution) given on or before ``W``. Penalty notices,         (a pending case has no disposal date: ``NULL <= W``
  community resolutions, NFA and pending cases never count;   is not true, so it never counts)
* a person is eligible only when the waiting period has       ``waiting_end <= $extract_date``
  ended by the data extract date; the others are kept,
  flagged ``eligible = False`` with ``exclusion_reason =
  'waiting period not ended by extract date'`` and have
  missing outcomes (never dropped silently).

Calendar-month arithmetic: add the months to the year/month and keep the day of month, clipped to the last day of
the target month -- ``2019-01-31 + 1 month = 2019-02-28``, ``2020-02-29 + 12 months = 2021-02-28``,
``2019-02-28 + 12 months = 2020-02-28``, ``2019-03-31 + 12 months = 2020-03-31``. This is what DuckDB's
``date + INTERVAL n MONTH`` does, and ``pandas.DateOffset(months=k)``, R lubridate's ``%m+%`` and
:func:`add_months` (numpy, for callers that need the same arithmetic outside SQL). Because ``W`` is added to ``F``,
``W`` differs from ``I + 18 months`` for month-end index dates such as 2020-02-29 (W = 2021-08-28, not 08-29).

Measures (columns of :func:`proven_reoffending`):

* ``reoffended`` -- 0/1 (pandas nullable ``Int64``; ``<NA>`` when not eligible);
* ``reoffence_count`` -- number of proven reoffences (offence records) in the follow-up (``Int64``; ``<NA>`` when not
  eligible);
* ``days_to_first`` -- days from the index date to the first proven reoffence (float, days; ``NaN`` for
  non-reoffenders and for people not eligible, as the Justice Data Lab reports it). For survival analysis use
  :func:`survival_view`, which censors non-reoffenders at the follow-up end.

Inputs: the cohort is a DataFrame; the offences are a DataFrame, or a parquet file, a folder of parquet files or a
glob, read by DuckDB without loading them into pandas. Person ids may be integers, strings or categoricals (on
either side; when the two sides differ in kind they are compared as text), with identical results. The inputs are
checked first (:class:`OutcomeInputError` names the argument, column and rows, never a person id). Speed and
memory: ``benchmarks/outcomes.py``.
"""
from __future__ import annotations

import datetime as dt
import glob as _glob
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from evaluation.errors import EvaluationError
from evaluation.schemas import COUNTED_DISPOSALS, DISPOSAL_LABELS, NOT_COUNTED_DISPOSALS, PENDING_DISPOSAL
from evaluation.wording import listing

WAITING_NOT_ENDED = "waiting period not ended by extract date"
OUTCOME_COLUMNS = ["person_id", "eligible", "exclusion_reason", "reoffended", "reoffence_count", "days_to_first"]
OFFENCE_COLUMNS = ("person_id", "offence_date", "disposal_date", "disposal_type")

_NS_PER_DAY = 86_400 * 10**9
_EPOCH = np.datetime64("1970-01-01", "D")
_NAT = np.iinfo(np.int64).min
_NONE = np.iinfo(np.int64).max  # "no proven offence" in the first-day arrays


class OutcomeInputError(EvaluationError):
    """Bad input to an outcome function; the message names the argument, the column and the first rows."""


# ---------------------------------------------------------------------------------------------------------------
# the definition, in SQL (see the module docstring for the rule each line implements)
# ---------------------------------------------------------------------------------------------------------------
#: The common table expressions that *are* the definition. Inputs: ``cohort(row_id, person_key, index_date)``
#: (one row per person) and ``offences(person_key, offence_date, disposal_date, disposal_type, ...)``, dates as
#: DATE. ``{counted}`` is the list of counted disposal types (quoted SQL literals, filled in by :func:`_sql`);
#: parameters ``$follow_up_months`` and ``$waiting_months`` (whole months), and ``$first_index``,
#: ``$last_follow_up_end``, ``$last_waiting_end`` (the cohort's earliest index date and latest window ends,
#: :data:`BOUNDS_SQL`). ``proven`` holds one row per proven reoffence, with the person's cohort ``row_id``.
DEFINITION_SQL = """
windows AS (                                      -- one row per person of the cohort
    SELECT row_id, person_key, index_date,
           CAST(index_date + to_months($follow_up_months) AS DATE) AS follow_up_end    -- F = I + 12 months
    FROM cohort
),
windows_w AS (
    SELECT *, CAST(follow_up_end + to_months($waiting_months) AS DATE) AS waiting_end  -- W = F + 6 months
    FROM windows
),
candidates AS (                                   -- records that can count for someone: the rules below with
    SELECT * FROM offences                        -- the widest window; only saves work, decides nothing
    WHERE disposal_type IN ({counted})
      AND offence_date > $first_index AND offence_date <= $last_follow_up_end
      AND disposal_date <= $last_waiting_end
),
proven AS (                                       -- proven reoffences in each person's follow-up
    SELECT w.row_id, o.*
    FROM candidates AS o
    JOIN windows_w AS w ON o.person_key = w.person_key
    WHERE o.offence_date >  w.index_date          -- committed strictly after the index date
      AND o.offence_date <= w.follow_up_end       -- ... and on or before the follow-up end
      AND o.disposal_type IN ({counted})          -- a counted disposal
      AND o.disposal_date <= w.waiting_end        -- given by the end of the waiting period (pending: NULL, never)
)
"""

#: The window bounds over the whole cohort (parameters of :data:`DEFINITION_SQL`'s ``candidates``).
BOUNDS_SQL = "WITH" + DEFINITION_SQL.split("candidates AS")[0].rstrip().rstrip(",") + """
SELECT min(index_date) AS first_index, max(follow_up_end) AS last_follow_up_end,
       max(waiting_end) AS last_waiting_end
FROM windows_w
"""

#: The measure per person: ``row_id``, ``eligible`` (waiting period ended by ``$extract_date``),
#: ``follow_up_end`` and ``waiting_end`` (days since 1970-01-01), ``reoffence_count``, ``first_day`` (day of the
#: first proven reoffence since 1970-01-01; NULL when none).
PROVEN_REOFFENDING_SQL = "WITH" + DEFINITION_SQL + """,
counts AS (
    SELECT row_id, count(*) AS reoffence_count, min(offence_date) AS first_offence
    FROM proven
    GROUP BY row_id
)
SELECT w.row_id,
       w.waiting_end <= $extract_date              AS eligible,
       w.follow_up_end - DATE '1970-01-01'          AS follow_up_end,
       w.waiting_end - DATE '1970-01-01'            AS waiting_end,
       coalesce(c.reoffence_count, 0)               AS reoffence_count,
       c.first_offence - DATE '1970-01-01'          AS first_day
FROM windows_w AS w LEFT JOIN counts AS c USING (row_id)
"""

#: The proven reoffence records themselves (for the offence mix of value for money).
PROVEN_OFFENCES_SQL = "WITH" + DEFINITION_SQL + "SELECT * FROM proven"

# ---------------------------------------------------------------------------------------------------------------
# the definitions in words: every report's Methods and Glossary print these, so the two cannot disagree with each
# other or with the SQL above (tests/test_guidance.py)
# ---------------------------------------------------------------------------------------------------------------
def proven_offence_definition(follow_up_months: int = 12, waiting_months: int = 6,
                              counted_disposals: Sequence[str] | None = None) -> str:
    """What :data:`DEFINITION_SQL` counts as a proven (re)offence, in words (no full stop, lower case first).

    ``follow_up_months`` and ``waiting_months`` are calendar months; ``counted_disposals`` defaults to
    :data:`~evaluation.schemas.COUNTED_DISPOSALS`, and every other disposal type of
    :data:`~evaluation.schemas.NOT_COUNTED_DISPOSALS` is named as not counted.

    >>> proven_offence_definition().startswith("an offence committed after the index date and within 12 calendar")
    True
    """
    counted = list(COUNTED_DISPOSALS if counted_disposals is None else counted_disposals)
    other = [d for d in NOT_COUNTED_DISPOSALS if d not in counted and d != PENDING_DISPOSAL]
    not_counted = listing([DISPOSAL_LABELS.get(d, d.replace("_", " ")) for d in other], "or")
    pending = PENDING_DISPOSAL not in counted
    return (f"an offence committed after the index date and within {follow_up_months} calendar months of it that "
            f"received a {listing([DISPOSAL_LABELS.get(d, d.replace('_', ' ')) for d in counted], 'or')} by the end "
            f"of a further {waiting_months}-month waiting period"
            + (f" (an offence dealt with by a {not_counted}" if other else "")
            + (", or still pending," if other and pending else " (a case still pending" if pending else "")
            + (" is not counted)" if other or pending else ""))


def first_time_entrant_definition() -> str:
    """Who :func:`first_time_entry` counts as a first-time entrant, in words (no full stop, lower case first):
    no offence record of any disposal dated before the index date (:data:`PRIOR_RECORD_SQL`) and a proven offence
    in the follow-up (:func:`proven_offence_definition`).

    >>> first_time_entrant_definition().startswith("someone with no offence record")
    True
    """
    return ("someone with no offence record of any kind (whatever its outcome) before the index date who has a "
            "proven offence in the follow-up, counted by the same definition of proven reoffending")


#: First-time entry: people with any offence record (whatever its disposal) dated strictly before the index date.
PRIOR_RECORD_SQL = """
SELECT DISTINCT c.row_id
FROM offences AS o JOIN cohort AS c ON o.person_key = c.person_key
WHERE o.offence_date < c.index_date
"""

#: Checks on the offence records, in one pass (each a count of bad rows). ``$known``: every disposal type allowed.
_CHECKS = {
    "missing_person": ("person_key IS NULL", "column 'person_id' is missing (empty) in"),
    "missing_offence_date": ("offence_date IS NULL",
                             "column 'offence_date' is missing (empty) or not a date (YYYY-MM-DD) in"),
    "bad_disposal_date": ("disposal_date IS NULL AND disposal_date_raw IS NOT NULL",
                          "column 'disposal_date' has values that are not dates (YYYY-MM-DD) in"),
    "disposal_before_offence": ("disposal_date < offence_date",
                                "column 'disposal_date' is before 'offence_date' (a disposal before its offence) in"),
    "unknown_disposal": ("disposal_type IS NOT NULL AND NOT list_contains($known, disposal_type)",
                         "column 'disposal_type' has unknown disposal(s) {values}; expected one of {known}:"),
}


# ---------------------------------------------------------------------------------------------------------------
# calendar months (numpy; the same arithmetic as DuckDB's date + INTERVAL n MONTH)
# ---------------------------------------------------------------------------------------------------------------
def add_months(days: np.ndarray, months: int) -> np.ndarray:
    """Add calendar months to dates given as int days since 1970-01-01 (day of month clipped to the month's end).

    Same result as DuckDB ``date + INTERVAL n MONTH`` (what :data:`PROVEN_REOFFENDING_SQL` uses),
    ``pandas.DateOffset(months=months)`` and R lubridate ``%m+%``.

    Parameters
    ----------
    days : array of int, days since 1970-01-01.
    months : int, calendar months to add (may be negative).

    Returns
    -------
    numpy.ndarray of int64, days since 1970-01-01.

    Examples
    --------
    >>> import numpy as np
    >>> d = (np.datetime64("2020-02-29") - np.datetime64("1970-01-01")).astype(int)
    >>> str(np.datetime64("1970-01-01") + add_months(np.array([d]), 12)[0])
    '2021-02-28'
    """
    d = (np.asarray(days, dtype=np.int64) + _EPOCH.astype(np.int64)).astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    dom = (d - m.astype("datetime64[D]")).astype(np.int64)  # 0-based day of month
    m2 = m + np.timedelta64(int(months), "M")
    month_len = ((m2 + np.timedelta64(1, "M")).astype("datetime64[D]") - m2.astype("datetime64[D]")).astype(np.int64)
    out = m2.astype("datetime64[D]") + np.minimum(dom, month_len - 1).astype("timedelta64[D]")
    return (out - _EPOCH).astype(np.int64)


# ---------------------------------------------------------------------------------------------------------------
# input checks (messages name argument, column and rows; never a person id)
# ---------------------------------------------------------------------------------------------------------------
def _rows(index: pd.Index, bad: np.ndarray, values=None, limit: int = 5) -> str:
    """'n row(s): label, label ...' for the rows where ``bad``; ``values`` (never person ids) shown beside them."""
    pos = np.flatnonzero(bad)
    shown = []
    for p in pos[:limit]:
        label = index[p]
        shown.append(f"{label!r}" if values is None else f"{label!r} ({values[p]!r})")
    more = f" and {pos.size - limit} more" if pos.size > limit else ""
    return f"{pos.size} row(s): " + ", ".join(shown) + more


def _require(df, arg: str, columns: Iterable[str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise OutcomeInputError(f"{arg}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise OutcomeInputError(
            f"{arg}: missing column(s) {', '.join(repr(c) for c in missing)}; has {', '.join(map(str, df.columns))}")


def _date_ns(s: pd.Series, arg: str, col: str, *, allow_missing: bool) -> np.ndarray:
    """A date column as int64 ns since the epoch (NaT -> int64 min); unparseable values raise, naming rows."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    if not pd.api.types.is_datetime64_dtype(s.dtype):
        parsed = pd.to_datetime(s, errors="coerce", format="mixed") if len(s) else pd.Series(
            [], dtype="datetime64[ns]")
        bad = (parsed.isna() & s.notna()).to_numpy()
        if bad.any():
            raise OutcomeInputError(
                f"{arg}: column '{col}' has values that are not dates (YYYY-MM-DD): "
                f"{_rows(s.index, bad, s.to_numpy())}")
        s = parsed
    values = s.to_numpy(dtype="datetime64[ns]").view(np.int64)
    if not allow_missing:
        bad = values == _NAT
        if bad.any():
            raise OutcomeInputError(f"{arg}: column '{col}' is missing (empty) in {_rows(s.index, bad)}")
    return values


def _to_day(ns: np.ndarray) -> np.ndarray:
    """int64 ns (NaT = int64 min) -> int64 days (floor); NaT stays int64 min."""
    out = ns // _NS_PER_DAY
    out[ns == _NAT] = _NAT
    return out


def _extract_day(extract_date) -> int:
    if extract_date is None:
        raise OutcomeInputError("extract_date: required (the date the data were extracted)")
    try:
        ts = pd.Timestamp(extract_date)
    except (ValueError, TypeError):
        raise OutcomeInputError(f"extract_date: {extract_date!r} is not a date (YYYY-MM-DD)") from None
    if pd.isna(ts):
        raise OutcomeInputError("extract_date: is missing")
    return int((np.datetime64(ts.date(), "D") - _EPOCH).astype(np.int64))


def _months(name: str, v) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
        raise OutcomeInputError(f"{name}: must be a whole number of months >= 0, got {v!r}")
    return int(v)


def _check_cohort(cohort: pd.DataFrame, arg: str = "cohort") -> np.ndarray:
    """Check the cohort; return index days (int64 days since the epoch)."""
    _require(cohort, arg, ["person_id", "index_date"])
    if len(cohort) == 0:
        raise OutcomeInputError(f"{arg}: is empty (no people); an outcome needs at least one person")
    missing = cohort["person_id"].isna().to_numpy()
    if missing.any():
        raise OutcomeInputError(f"{arg}: column 'person_id' is missing in {_rows(cohort.index, missing)}")
    return _to_day(_date_ns(cohort["index_date"], arg, "index_date", allow_missing=False))


def _duplicates_error(cohort: pd.DataFrame, arg: str = "cohort") -> OutcomeInputError:
    dup = cohort["person_id"].duplicated(keep=False).to_numpy()
    return OutcomeInputError(
        f"{arg}: column 'person_id' has duplicate people (one index date per person; ids not shown): "
        f"{_rows(cohort.index, dup)}")


# ---------------------------------------------------------------------------------------------------------------
# inputs as DuckDB relations
# ---------------------------------------------------------------------------------------------------------------
def _arrow_column(s: pd.Series) -> pa.ChunkedArray:
    """A pandas column as Arrow without Python objects where possible. Categoricals stay dictionary-encoded
    (DuckDB reads a dictionary as its values; decoding 20 million disposal types would cost more than the
    measure)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        inner = pa.array(cats.to_numpy(dtype=object) if cats.dtype == object else cats.to_numpy(), from_pandas=True)
        codes = s.cat.codes.to_numpy()
        mask = codes < 0
        arr = pa.DictionaryArray.from_arrays(pa.array(codes, mask=mask if mask.any() else None), inner)
        return pa.chunked_array([arr])
    try:
        arr = pa.array(s.array if hasattr(s.array, "__arrow_array__") else s.to_numpy(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects: compare as text
        arr = pa.array(s.astype("string").to_numpy(dtype=object), from_pandas=True)
    return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])


def _key_kind(t) -> str:
    """'int', 'str' or 'other' for an Arrow type or a DuckDB type name."""
    if isinstance(t, pa.DictionaryType):
        t = t.value_type
    name = str(t).upper()
    if any(k in name for k in ("INT", "HUGEINT")) and "INTERVAL" not in name:
        return "int"
    if name in ("STRING", "LARGE_STRING", "VARCHAR", "STRING_VIEW", "UTF8", "LARGE_UTF8"):
        return "str"
    return "other"


def _date_sql(col: str, duck_type: str) -> str:
    if duck_type.upper() == "VARCHAR":
        return f"TRY_CAST({col} AS DATE)"
    return f"CAST({col} AS DATE)"


def _parquet_source(path) -> str:
    """A ``read_parquet`` argument for a file, folder or glob; raises when nothing is there."""
    text = os.fspath(path)
    p = Path(text)
    if p.is_dir():
        pattern = str(p / "**" / "*.parquet")
    elif any(ch in text for ch in "*?["):
        pattern = text
    elif p.is_file():
        pattern = text
    else:
        raise OutcomeInputError(f"offences: no such file or folder: {text}")
    if not _glob.glob(pattern, recursive=True):
        raise OutcomeInputError(f"offences: no parquet files at {pattern}")
    return pattern


class _Inputs:
    """A DuckDB connection holding ``cohort`` and ``offences`` in the shape :data:`DEFINITION_SQL` expects."""

    def __init__(self, cohort: pd.DataFrame, index_day: np.ndarray, offences, *, extra_columns=(),
                 counted_disposals=None, check: bool = True):
        import duckdb

        self.con = duckdb.connect()
        self.cohort_df = cohort
        self.offences = offences
        self.counted = list(COUNTED_DISPOSALS if counted_disposals is None else counted_disposals)
        bad = [d for d in self.counted if not isinstance(d, str)]
        if bad or not self.counted:
            raise OutcomeInputError(f"counted_disposals: must be a non-empty list of disposal types, got "
                                    f"{self.counted!r}")
        self.known = sorted(set(COUNTED_DISPOSALS) | set(NOT_COUNTED_DISPOSALS) | set(self.counted))
        # ---- offences
        if isinstance(offences, pd.DataFrame):
            _require(offences, "offences", OFFENCE_COLUMNS + tuple(extra_columns))
            od = _days(_date_ns(offences["offence_date"], "offences", "offence_date", allow_missing=True))
            dd = _days(_date_ns(offences["disposal_date"], "offences", "disposal_date", allow_missing=True))
            cols = {"person_id": _arrow_column(offences["person_id"]),
                    "offence_date": _date32(*od), "disposal_date": _date32(*dd),
                    "disposal_type": _arrow_column(offences["disposal_type"])}
            if check:
                self._check_frame(offences, cols, od, dd)
            for c in extra_columns:
                cols[c] = _arrow_column(offences[c])
            self.raw_offences = pa.table(cols)
            self.con.register("offences_in", self.raw_offences)
            self.source = None
        elif isinstance(offences, (str, os.PathLike)):
            self.source = _parquet_source(offences)
            quoted = self.source.replace("'", "''")
            self.con.execute(f"CREATE TEMP VIEW offences_in AS SELECT * FROM read_parquet('{quoted}', "
                             "union_by_name = true)")
        else:
            raise OutcomeInputError(f"offences: expected a DataFrame or a parquet file, folder or glob, got "
                                    f"{type(offences).__name__}")
        types = dict(self.con.execute("SELECT column_name, column_type FROM (DESCRIBE offences_in)").fetchall())
        missing = [c for c in OFFENCE_COLUMNS + tuple(extra_columns) if c not in types]
        if missing:
            raise OutcomeInputError(f"offences: missing column(s) {', '.join(repr(c) for c in missing)}; has "
                                    f"{', '.join(types)}")
        # ---- cohort
        self.cohort_table = pa.table({
            "row_id": pa.array(np.arange(len(cohort), dtype=np.int64)),
            "person_id": _arrow_column(cohort["person_id"]),
            "index_date": pa.array(index_day.astype(np.int32), type=pa.int32()).cast(pa.date32()),
        })
        kinds = {_key_kind(self.cohort_table.schema.field("person_id").type), _key_kind(types["person_id"])}
        as_is = kinds in ({"int"}, {"str"})
        key = "person_id" if as_is else "CAST(person_id AS VARCHAR)"
        self.con.register("cohort_in", self.cohort_table)
        self.con.execute(f"CREATE TEMP VIEW cohort AS SELECT row_id, {key} AS person_key, index_date FROM cohort_in")
        extras = "".join(f", {_ident(c)}" for c in extra_columns)
        self.con.execute(
            f"CREATE TEMP VIEW offences AS SELECT {key} AS person_key, "
            f"{_date_sql('offence_date', types['offence_date'])} AS offence_date, "
            f"{_date_sql('disposal_date', types['disposal_date'])} AS disposal_date, "
            f"disposal_date AS disposal_date_raw, "
            f"CAST(disposal_type AS VARCHAR) AS disposal_type{extras} FROM offences_in")
        self.date_types = types
        dup = self.con.execute("SELECT count(*) - count(DISTINCT person_key) FROM cohort").fetchall()[0][0]
        if dup:
            raise _duplicates_error(cohort)
        if check and self.source is not None:
            self._check_offences()

    def run(self, template: str, *, follow_up_months: int, waiting_months: int, **kw):
        """Run one of the module's SQL texts on these inputs; returns a DuckDB relation."""
        months = {"follow_up_months": follow_up_months, "waiting_months": waiting_months}
        bounds = self.con.execute(BOUNDS_SQL, months).fetchall()[0]
        params = {**months, **dict(zip(("first_index", "last_follow_up_end", "last_waiting_end"), bounds)), **kw}
        sql = _sql(template, self.counted)
        used = {k: v for k, v in params.items() if "$" + k in sql}
        return self.con.sql(sql, params=used)

    def _check_frame(self, offences: pd.DataFrame, cols: dict, od: np.ndarray, dd: np.ndarray) -> None:
        """The checks of :data:`_CHECKS` on an in-memory table, vectorised (no second pass through DuckDB)."""
        idx = offences.index
        pid = cols["person_id"]
        if pid.null_count:
            raise OutcomeInputError(f"offences: {_CHECKS['missing_person'][1]} "
                                    f"{_rows(idx, offences['person_id'].isna().to_numpy())}")
        (od, od_missing), (dd, dd_missing) = od, dd
        if od_missing.any():
            raise OutcomeInputError(f"offences: {_CHECKS['missing_offence_date'][1]} {_rows(idx, od_missing)}")
        before = (dd < od) & ~dd_missing
        if before.any():
            raise OutcomeInputError(f"offences: {_CHECKS['disposal_before_offence'][1]} {_rows(idx, before)}")
        disp = cols["disposal_type"]
        if pa.types.is_dictionary(disp.type):
            codes = offences["disposal_type"].cat.codes.to_numpy()
            cats = offences["disposal_type"].cat.categories
            present = np.bincount(codes[codes >= 0], minlength=len(cats)) > 0
            values = [str(c) for c, p in zip(cats, present) if p]
        else:
            import pyarrow.compute as pc

            values = [v for v in pc.unique(disp).to_pylist() if v is not None]
        unknown = sorted(v for v in values if v not in self.known)
        if unknown:
            bad = offences["disposal_type"].astype("string").isin(unknown).fillna(False).to_numpy(dtype=bool)
            message = _CHECKS["unknown_disposal"][1].format(values=unknown, known=self.known)
            raise OutcomeInputError(f"offences: {message} {_rows(idx, bad)}")

    def _check_offences(self) -> None:
        """The checks of :data:`_CHECKS` on a parquet source, in one pass that reads only what it must.

        Why not one ``count(*) FILTER`` per check over the rows (as before): that decoded all 50 million person ids
        for ``IS NULL`` and ran ``list_contains`` on every row, ~40% of the measure's time. Here the null count of
        ``person_id`` comes from the files' own statistics when every row group has them (a scan otherwise), and
        the remaining counts are grouped by disposal type (a handful of groups), so unknown types are the groups
        not in ``$known``. Same counts, same messages, same order of checks as :data:`_CHECKS`.
        """
        varchar_dd = self.date_types["disposal_date"].upper() == "VARCHAR"
        names = [k for k in _CHECKS if k != "unknown_disposal" and (k != "bad_disposal_date" or varchar_dd)]
        if "missing_person" in names and self._no_null_person_ids():
            names.remove("missing_person")
        sql = ("SELECT disposal_type, " + ", ".join(f"count(*) FILTER (WHERE {_CHECKS[k][0]}) AS {k}" for k in names)
               + " FROM offences GROUP BY disposal_type")
        groups = self.con.execute(sql).fetchall()
        counts = {k: sum(int(g[1 + i]) for g in groups) for i, k in enumerate(names)}
        unknown = sorted(g[0] for g in groups if g[0] is not None and g[0] not in self.known)
        for name, (cond, message) in _CHECKS.items():
            if name == "unknown_disposal":
                if not unknown:
                    continue
                n = self.con.execute(f"SELECT count(*) FROM offences WHERE {cond}", {"known": self.known}
                                     ).fetchall()[0][0]
                message = message.format(values=unknown[:10], known=self.known)
            else:
                n = counts.get(name, 0)
                if not n:
                    continue
            raise OutcomeInputError(f"offences: {message} {self._bad_rows(cond, n)}")

    def _no_null_person_ids(self) -> bool:
        """True when the parquet files' statistics show no missing ``person_id`` in any row group (False when a
        file or row group has no statistics: then the rows are counted)."""
        quoted = self.source.replace("'", "''")
        try:
            total = self.con.execute(f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata('{quoted}')"
                                     ).fetchall()[0][0]
            covered, nulls, unknown = self.con.execute(
                f"SELECT coalesce(sum(row_group_num_rows), 0), coalesce(sum(stats_null_count), 0), "
                f"count(*) FILTER (WHERE stats_null_count IS NULL) FROM parquet_metadata('{quoted}') "
                f"WHERE path_in_schema = 'person_id'").fetchall()[0]
        except Exception:  # noqa: BLE001 - statistics are an optimisation; the scan decides when they fail
            return False
        return int(covered) == int(total) and int(unknown) == 0 and int(nulls) == 0

    def _bad_rows(self, cond: str, n: int, limit: int = 5) -> str:
        """Where the bad rows of a parquet source are: file name and row number (0-based) in it."""
        more = f" and {n - limit} more" if n > limit else ""
        params = {"known": self.known} if "$known" in cond else {}
        quoted = self.source.replace("'", "''")
        inner = self.con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'offences'").fetchall()[0][0]
        select = inner[inner.upper().index("SELECT"):].rstrip(";")
        select = select.replace("FROM offences_in", f"FROM read_parquet('{quoted}', union_by_name = true, "
                                                    "filename = true, file_row_number = true)")
        select = select.replace("SELECT ", "SELECT filename, file_row_number, ", 1)
        rows = self.con.execute(f"SELECT filename, file_row_number FROM ({select}) WHERE {cond} "
                                f"ORDER BY filename, file_row_number LIMIT {limit}", params).fetchall()
        labels = [f"{Path(f).name} row {int(r)}" for f, r in rows]
        return f"{n} row(s): " + ", ".join(labels) + more


def _days(ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int64 ns since the epoch (NaT = int64 min) -> (int32 days since the epoch, floor; missing mask)."""
    missing = ns == _NAT
    return (ns // _NS_PER_DAY).astype(np.int32), missing


def _date32(days: np.ndarray, missing: np.ndarray) -> pa.Array:
    """int32 days since the epoch as an Arrow date32 array (missing -> null)."""
    return pa.array(days, mask=missing if missing.any() else None).cast(pa.date32())


def _sql(template: str, counted: Sequence[str]) -> str:
    """The SQL with the counted disposal types written in as quoted literals (a constant list lets DuckDB filter
    while it scans; a list parameter becomes a join).

    ``x IN ({counted})`` is written out as ``(x = 'a' OR x = 'b' ...)``, the same test: DuckDB rewrites an IN
    list of six or more constants into a hash (mark) join evaluated on every offence record, once per IN, ~2 s of
    CPU on 50 million records; equalities joined by OR are filtered while the parquet is scanned.
    """
    literals = ["'" + str(d).replace("'", "''") + "'" for d in counted]

    def expand(m: re.Match) -> str:
        return "(" + " OR ".join(f"{m.group(1)} = {lit}" for lit in literals) + ")"

    return _IN_COUNTED.sub(expand, template).replace("{counted}", ", ".join(literals))


_IN_COUNTED = re.compile(r"((?:\w+\.)?disposal_type) IN \(\{counted\}\)")


def _arrow(relation) -> pa.Table:
    """A DuckDB relation's rows as an Arrow table (``to_arrow_table`` in DuckDB >= 1.4, ``arrow`` before)."""
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


_ENGINES = ("auto", "duckdb", "numba", "numpy")


def _engine(engine: str) -> str:
    # 'numba' and 'numpy' named the engines this module had before the SQL definition; they are accepted so that
    # old callers keep working, and run the same SQL.
    if engine not in _ENGINES:
        raise OutcomeInputError(f"engine: must be one of {', '.join(map(repr, _ENGINES))}, got {engine!r}")
    return "duckdb"


# ---------------------------------------------------------------------------------------------------------------
# the measure
# ---------------------------------------------------------------------------------------------------------------
class _Derived:
    """Per cohort row: index day, follow-up end day, eligible, count, first proven offence day (int64 max: none)."""

    def __init__(self, cohort, offences, extract_date, follow_up_months, waiting_months, counted_disposals,
                 engine):
        _engine(engine)
        fu_m = _months("follow_up_months", follow_up_months)
        wait_m = _months("waiting_months", waiting_months)
        extract = _extract_day(extract_date)
        self.index_day = _check_cohort(cohort)
        self.inputs = _Inputs(cohort, self.index_day, offences, counted_disposals=counted_disposals)
        res = _arrow(self.inputs.run(PROVEN_REOFFENDING_SQL, follow_up_months=fu_m, waiting_months=wait_m,
                                     extract_date=dt.date(1970, 1, 1) + dt.timedelta(days=extract)))
        n = len(cohort)
        row = res.column("row_id").to_numpy()
        self.eligible = np.zeros(n, bool)
        self.fu = np.zeros(n, np.int64)
        self.count = np.zeros(n, np.int64)
        self.first = np.full(n, _NONE, np.int64)
        self.eligible[row] = res.column("eligible").to_numpy(zero_copy_only=False)
        self.fu[row] = res.column("follow_up_end").to_numpy()
        self.count[row] = res.column("reoffence_count").to_numpy()
        first = res.column("first_day").fill_null(_NONE).to_numpy()
        self.first[row] = first


def proven_reoffending(cohort: pd.DataFrame, offences, *, extract_date, follow_up_months: int = 12,
                       waiting_months: int = 6, counted_disposals: Sequence[str] | None = None,
                       engine: str = "auto") -> pd.DataFrame:
    """Proven reoffending for each person of ``cohort`` (MoJ definition; see the module docstring).

    Parameters
    ----------
    cohort : DataFrame with ``person_id`` (unique; int, string or categorical) and ``index_date`` (dates). Other
        columns are ignored.
    offences : DataFrame, or path of a parquet file, a folder of parquet files or a glob, with the canonical
        offences columns ``person_id``, ``offence_date``, ``disposal_date`` (missing while pending) and
        ``disposal_type``. Offences of people not in the cohort are ignored.
    extract_date : date the data were extracted; people whose waiting period ends after it are not eligible.
    follow_up_months, waiting_months : int, calendar months (defaults 12 and 6).
    counted_disposals : disposal types that make an offence proven (default :data:`COUNTED_DISPOSALS`).
    engine : ``'auto'`` or ``'duckdb'`` (the SQL definition; ``'numba'`` and ``'numpy'`` are accepted for old
        callers and run the same SQL).

    Returns
    -------
    DataFrame with the cohort's index and order: ``person_id``, ``eligible`` (bool), ``exclusion_reason``
    (categorical, ``NaN`` when eligible), ``reoffended`` (Int64 0/1), ``reoffence_count`` (Int64, offence records),
    ``days_to_first`` (float, days; NaN for non-reoffenders and ineligible people).

    Raises
    ------
    OutcomeInputError
        (an :class:`~evaluation.errors.EvaluationError`) naming the argument, column and rows (never a person id)
        for: an empty cohort, missing columns, duplicate or missing people in the cohort, dates that cannot be
        parsed, a disposal dated before its offence, unknown disposal types, and bad month counts.

    Examples
    --------
    >>> import pandas as pd
    >>> c = pd.DataFrame({"person_id": [1], "index_date": pd.to_datetime(["2019-05-10"])})
    >>> o = pd.DataFrame({"person_id": [1], "offence_date": pd.to_datetime(["2019-06-01"]),
    ...                   "disposal_date": pd.to_datetime(["2019-07-01"]), "disposal_type": ["caution"]})
    >>> r = proven_reoffending(c, o, extract_date="2024-12-31").iloc[0]
    >>> int(r["reoffended"]), float(r["days_to_first"])
    (1, 22.0)
    """
    d = _Derived(cohort, offences, extract_date, follow_up_months, waiting_months, counted_disposals, engine)
    return _assemble(cohort, d.eligible, d.count, d.first, d.index_day)


def _assemble(cohort, eligible, count, first, index_day) -> pd.DataFrame:
    mask = ~eligible
    reoff = (count > 0).astype(np.int64)
    days = np.where(count > 0, (first - index_day).astype(np.float64), np.nan)
    days[mask] = np.nan
    # a categorical with one category: 1 byte per person instead of a million string objects
    reason = pd.Categorical.from_codes(np.where(mask, 0, -1).astype(np.int8), categories=[WAITING_NOT_ENDED])
    return pd.DataFrame({
        "person_id": cohort["person_id"].array,
        "eligible": eligible.astype(bool),
        "exclusion_reason": reason,
        "reoffended": pd.arrays.IntegerArray(reoff, mask.copy()),
        "reoffence_count": pd.arrays.IntegerArray(count.astype(np.int64), mask.copy()),
        "days_to_first": days,
    }, index=cohort.index)


def survival_view(cohort: pd.DataFrame, offences, *, extract_date, follow_up_months: int = 12,
                  waiting_months: int = 6, counted_disposals: Sequence[str] | None = None,
                  custody: pd.DataFrame | None = None, engine: str = "auto") -> pd.DataFrame:
    """Time to first proven reoffence for survival analysis, for the **eligible** people of ``cohort``.

    Parameters
    ----------
    cohort, offences, extract_date, follow_up_months, waiting_months, counted_disposals, engine
        As :func:`proven_reoffending`.
    custody : DataFrame with ``person_id`` and ``custody_start``, optional.

    Returns
    -------
    DataFrame ``person_id``, ``duration`` (days from the index date, int), ``event`` (1 = proven reoffence,
    0 otherwise) and ``event_type`` (1 = proven reoffence, 2 = custody first (a competing event), 0 = censored).
    Reoffenders: duration = days to the first proven reoffence, event 1. Non-reoffenders: censored (event 0) at the
    follow-up end (365 or 366 days for 12 months, calendar-month arithmetic). With ``custody``, a person's follow-up
    for reoffending stops at the first custody start strictly after the index date and before the follow-up end
    when that comes before the first proven reoffence (an offence dated on the custody start day is still counted:
    it usually is why the person went into custody): duration = days to the custody start, event 0, event_type 2.
    Custody is a competing event, not censoring: someone in custody cannot reoffend in the community, so the
    proportion reoffending by day t is the cumulative incidence (:func:`evaluation.survival.cumulative_incidence`),
    not 1 − Kaplan-Meier. Custody that began on or before the index date is ignored, and custody starting on the
    follow-up end day is censoring at the follow-up end (event_type 0). People not
    eligible are left out; their number is in ``result.attrs['excluded']`` and they are listed by
    :func:`proven_reoffending`.

    Raises
    ------
    OutcomeInputError
        As :func:`proven_reoffending`, and for a custody table without its columns or with bad dates.
    """
    d = _Derived(cohort, offences, extract_date, follow_up_months, waiting_months, counted_disposals, engine)
    index_day, fu = d.index_day, d.fu
    censor = fu.copy()
    if custody is not None:
        _require(custody, "custody", ["person_id", "custody_start"])
        cs = _to_day(_date_ns(custody["custody_start"], "custody", "custody_start", allow_missing=False))
        pos = pd.Index(cohort["person_id"].astype(str).to_numpy(dtype=object)).get_indexer(
            custody["person_id"].astype(str).to_numpy(dtype=object))
        ok = pos >= 0
        pos, cs = pos[ok], cs[ok]
        ok = (cs > index_day[pos]) & (cs <= fu[pos])
        np.minimum.at(censor, pos[ok], cs[ok])
    event = (d.count > 0) & (d.first <= censor)
    duration = np.where(event, d.first, censor) - index_day
    # custody is a competing event, not censoring: it stops a proven reoffence in the community being observed
    event_type = np.where(event, 1, np.where(censor < fu, 2, 0))
    out = pd.DataFrame({"person_id": cohort["person_id"].to_numpy(), "duration": duration.astype(np.int64),
                        "event": event.astype(np.int64), "event_type": event_type.astype(np.int64)},
                       index=cohort.index)[d.eligible]
    out.attrs["excluded"] = {WAITING_NOT_ENDED: int((~d.eligible).sum())}
    return out


def first_time_entry(cohort: pd.DataFrame, offences, *, extract_date, follow_up_months: int = 12,
                     waiting_months: int = 6, counted_disposals: Sequence[str] | None = None,
                     engine: str = "auto") -> pd.DataFrame:
    """Proven (re)offending for children at risk, with a flag for people with no record before the index date.

    Parameters
    ----------
    cohort, offences, extract_date, follow_up_months, waiting_months, counted_disposals, engine
        As :func:`proven_reoffending`.

    Returns
    -------
    The columns of :func:`proven_reoffending` (for someone with no record it counts *first* proven offending),
    plus ``no_prior_record`` (bool: no offence record of any disposal dated strictly before the index date) and
    ``first_time_entrant`` (Int64 0/1: no prior record and a proven offence in the follow-up; ``<NA>`` when not
    eligible).

    Raises
    ------
    OutcomeInputError
        As :func:`proven_reoffending`.
    """
    d = _Derived(cohort, offences, extract_date, follow_up_months, waiting_months, counted_disposals, engine)
    out = _assemble(cohort, d.eligible, d.count, d.first, d.index_day)
    rows = _arrow(d.inputs.con.sql(PRIOR_RECORD_SQL)).column("row_id").to_numpy()
    prior = np.zeros(len(cohort), dtype=bool)
    prior[rows] = True
    out["no_prior_record"] = ~prior
    fte = out["reoffended"].astype("Int64") * out["no_prior_record"].astype(np.int64)
    out["first_time_entrant"] = fte.astype("Int64")
    return out


def proven_offences(cohort: pd.DataFrame, offences, *, follow_up_months: int = 12, waiting_months: int = 6,
                    counted_disposals: Sequence[str] | None = None,
                    columns: Sequence[str] = ("offence_group",)) -> pd.DataFrame:
    """The proven reoffence records of each person of ``cohort`` (the rows :func:`proven_reoffending` counts).

    Eligibility is not applied (every person's follow-up is used); callers pass eligible people.

    Parameters
    ----------
    cohort, offences, follow_up_months, waiting_months, counted_disposals
        As :func:`proven_reoffending`.
    columns : further columns of ``offences`` to return (default ``offence_group``).

    Returns
    -------
    DataFrame, one row per proven reoffence: ``person_id`` (as in the cohort), ``index_date``, ``offence_date``,
    ``disposal_date``, ``disposal_type`` and ``columns``; ordered by cohort row then offence date.

    Raises
    ------
    OutcomeInputError
        As :func:`proven_reoffending`, and when one of ``columns`` is missing.
    """
    fu_m = _months("follow_up_months", follow_up_months)
    wait_m = _months("waiting_months", waiting_months)
    index_day = _check_cohort(cohort)
    inputs = _Inputs(cohort, index_day, offences, extra_columns=tuple(columns), counted_disposals=counted_disposals)
    cols = ", ".join(["row_id", "offence_date", "disposal_date", "disposal_type"] + [_ident(c) for c in columns])
    res = inputs.run(f"SELECT {cols} FROM ({PROVEN_OFFENCES_SQL}) ORDER BY row_id, offence_date",
                     follow_up_months=fu_m, waiting_months=wait_m).df()
    row = res.pop("row_id").to_numpy()
    out = pd.DataFrame({"person_id": cohort["person_id"].to_numpy()[row],
                        "index_date": (index_day[row] + _EPOCH.astype(np.int64)).astype("datetime64[D]")
                        .astype("datetime64[ns]")})
    for c in res.columns:
        out[c] = res[c].to_numpy() if not c.endswith("_date") else pd.to_datetime(res[c]).to_numpy()
    return out

# ---------------------------------------------------------------------------------------------------------------
# summaries
# ---------------------------------------------------------------------------------------------------------------
def summarise(outcomes: pd.DataFrame, group=None, *, alpha: float = 0.05) -> pd.DataFrame:
    """Headline measures per group (or overall) from :func:`proven_reoffending` output.

    Columns: ``n`` (people), ``eligible``, ``excluded`` and one ``excluded: <reason>`` column per exclusion reason,
    ``reoffenders``, ``rate`` (proportion of eligible people who reoffended, 0-1) with ``rate_lo``/``rate_hi``
    (Wilson score interval), ``frequency_per_100`` (proven reoffences per 100 eligible people) with
    ``frequency_lo``/``frequency_hi`` (quasi-Poisson interval, see :func:`evaluation.rates.frequency_per_100`),
    ``mean_days_to_first`` (days, reoffenders only). ``group`` is a column name of ``outcomes`` or an array-like
    aligned with it; ``None`` gives one row labelled ``'all'``.
    """
    from evaluation.rates import frequency_per_100, wilson_ci

    _require(outcomes, "outcomes", OUTCOME_COLUMNS[1:])
    if group is None:
        keys = pd.Series("all", index=outcomes.index, name="group")
    elif isinstance(group, str):
        _require(outcomes, "outcomes", [group])
        keys = outcomes[group]
    else:
        keys = pd.Series(np.asarray(group), index=outcomes.index, name=getattr(group, "name", None) or "group")
    reasons = sorted(outcomes["exclusion_reason"].dropna().unique())
    rows = {}
    for key, part in outcomes.groupby(keys.to_numpy(), sort=True, dropna=False):
        el = part[part["eligible"].astype(bool)]
        n_el = len(el)
        k = int(el["reoffended"].astype("Int64").sum()) if n_el else 0
        lo, hi = wilson_ci(k, n_el, alpha=alpha)
        counts = el["reoffence_count"].astype(float).to_numpy()
        f, flo, fhi = frequency_per_100(counts, alpha=alpha)
        row = {"n": len(part), "eligible": n_el, "excluded": len(part) - n_el}
        for r in reasons:
            row[f"excluded: {r}"] = int((part["exclusion_reason"] == r).sum())
        days = el["days_to_first"].dropna()
        row.update(reoffenders=k, rate=k / n_el if n_el else np.nan, rate_lo=lo, rate_hi=hi,
                   frequency_per_100=f, frequency_lo=flo, frequency_hi=fhi,
                   mean_days_to_first=float(days.mean()) if len(days) else np.nan)
        rows[key] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = keys.name if keys.name is not None else "group"
    return out


# ---------------------------------------------------------------------------------------------------------------
# printing (the CLI is in evaluation.outcomes_cli)
# ---------------------------------------------------------------------------------------------------------------
def _fmt_count(v, threshold: int) -> str:
    v = int(v)
    return f"<{threshold}" if 0 < v < threshold else str(v)


def headline_table(outcomes: pd.DataFrame, treat, *, threshold: int = 5) -> pd.DataFrame:
    """Participants vs comparison pool: n, eligible, reoffenders, rate % (95% CI), frequency per 100 (95% CI).

    For printing: counts 1..threshold-1 are shown as ``"<threshold"`` and a suppressed reoffender count also hides
    its rate (primary suppression only; :mod:`evaluation.disclosure` does the full job for published reports).
    """
    labels = np.where(np.asarray(treat).astype(int) == 1, "participants", "comparison pool")
    s = summarise(outcomes, pd.Series(labels, index=outcomes.index, name="group"))
    s = s.reindex([g for g in ("participants", "comparison pool") if g in s.index])
    rows = []
    for g, r in s.iterrows():
        hidden = 0 < r["reoffenders"] < threshold
        rate = "suppressed" if hidden or r["eligible"] == 0 else (
            f"{100 * r['rate']:.0f}% ({100 * r['rate_lo']:.0f}-{100 * r['rate_hi']:.0f})")
        freq = "suppressed" if hidden or r["eligible"] == 0 else (
            f"{r['frequency_per_100']:.0f} ({r['frequency_lo']:.0f}-{r['frequency_hi']:.0f})")
        rows.append({"group": g, "n": _fmt_count(r["n"], threshold), "eligible": _fmt_count(r["eligible"], threshold),
                     "reoffenders": _fmt_count(r["reoffenders"], threshold), "rate (95% CI)": rate,
                     "per 100 (95% CI)": freq})
    return pd.DataFrame(rows).set_index("group")


__all__ = ["COUNTED_DISPOSALS", "NOT_COUNTED_DISPOSALS", "WAITING_NOT_ENDED", "OUTCOME_COLUMNS", "OutcomeInputError",
           "DEFINITION_SQL", "BOUNDS_SQL", "PROVEN_REOFFENDING_SQL", "PROVEN_OFFENCES_SQL", "PRIOR_RECORD_SQL", "add_months",
           "proven_reoffending", "survival_view", "first_time_entry", "proven_offences", "summarise",
           "headline_table", "proven_offence_definition", "first_time_entrant_definition"]
