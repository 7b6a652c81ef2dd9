"""Load a world's tables and validate them, with errors a researcher can act on and that are safe to publish.

``load_world(path)`` reads every canonical table of ``data/README.md`` from a folder (``<table>.parquet`` or
``<table>.csv``; parquet wins), parses and types each column, validates it against its pandera schema
(:mod:`evaluation.schemas`), then checks the relations pandera cannot see (dates in order, a counted disposal has
a disposal date, referrals inside the programme's dates, one referral per person per programme, everyone known in
``people``, no event before the person's birth, plausible dates of birth, an extract date the data can support).

Every problem raises :class:`DataError` naming the **file**, the **column**, what is wrong, how many rows, and the
first offending **line numbers**. ``str(error)`` never holds a value of an identifying column (ids, dates of
birth, names: :func:`evaluation.schemas.is_identifying`), because build summaries and report indexes show it;
other values (an unknown disposal code, an unparseable date) are quoted, escaped and truncated. The full values
are on ``error.detail``, for the terminal only (``python -m evaluation validate --show-values``). Row numbers are
**CSV line numbers** (the header is line 1) for CSV files and **1-based data rows** for parquet files; the message
says which. Nothing is dropped silently: records dated after the extract date are counted in
``World.exclusions``; columns a table has beyond its schema are dropped on load (so no extra identifier reaches a
cache or a report) and listed in ``World.dropped_columns``.

**The extract date** (one rule, :func:`extract_date`): ``extract_date`` in the world's ``meta.json`` when present,
else the latest offence or disposal date in ``offences`` (the outcome measure needs that table complete up to the
extract date, so its latest record is the latest date the data can support). Any extract date -- from a supplied
extract's ``meta.json`` or given by a user -- after that latest record or after today is refused unless explicitly
allowed (:func:`check_extract_date`). A synthetic world's ``meta.json`` date is the generator's own (it simulated
offending up to that date, so quiet last days mean no offences, not missing data) and is not checked against the
records.

Costs: parsing and validation are vectorised. The default synthetic world (≈240,000 offences) loads in about
two seconds; a national offences parquet (20M rows) in tens of seconds, most of it the uniqueness and cross-table
checks (``validate=False`` skips the checks for trusted, already-validated extracts). ``cache=True`` keeps the
validated tables in a user cache folder (:func:`default_cache_dir`) keyed by content.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pandera.errors

from evaluation.errors import EvaluationError
from evaluation.schemas import (COLUMN_KINDS, COUNTED_DISPOSALS, EVENT_DATE_COLUMNS, LATEST_RECORD_COLUMNS,
                                MAX_AGE_YEARS, MISSING_TEXT, NOT_COUNTED_DISPOSALS, PENDING_DISPOSAL,
                                REQUIRED_TABLES, RULES_VERSION, SCHEMAS, TABLES, is_identifying)

MAX_ROWS_SHOWN = 5
MAX_VALUE_CHARS = 80
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class DataError(EvaluationError):
    """A table cannot be used.

    ``str(error)`` names the file, column, problem and the first offending line numbers, and never a value of an
    identifying column; it is safe to copy into build summaries. The attributes carry the parts:

    Attributes
    ----------
    file : str or None
        The file (or folder) at fault.
    column : str or None
        The column at fault.
    lines : list of int
        Line numbers (CSV; header = line 1) or 1-based data rows (parquet) of the first offending rows.
    n_rows : int
        How many rows are at fault.
    detail : str
        The message with the offending values, identifying ones included: for the terminal only, never for a file.
    """

    def __init__(self, message: str, *, file=None, column: str | None = None, lines=(), n_rows: int = 0,
                 detail: str | None = None):
        super().__init__(message)
        self.file = None if file is None else str(file)
        self.column = column
        self.lines = [int(x) for x in lines]
        self.n_rows = int(n_rows)
        self.detail = detail if detail is not None else message


# ------------------------------------------------------------------------------------------------- messages
def _row_label(path: Path) -> tuple[str, int]:
    """(word, offset): CSV line numbers (header = line 1) or 1-based parquet data rows."""
    return ("line", 2) if Path(path).suffix == ".csv" else ("row", 1)


def _quote(value) -> str:
    """A value for a message: ``repr`` (escapes control characters and quotes), truncated."""
    text = repr(value if isinstance(value, str) else str(value))
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 4] + "…" + text[0]


def _fail(path: Path, column: str | None, problem: str, positions, values=None, *,
          show: bool | None = None) -> DataError:
    """A DataError for rows at ``positions`` (0-based data positions). ``values`` (one per shown row) are quoted
    in the message only when ``show`` (default: the column is not identifying); always in ``detail``."""
    word, offset = _row_label(path)
    positions = np.asarray(positions)
    n = len(positions)
    show = (not is_identifying(column)) if show is None else show
    lines = [int(p) + offset for p in positions[:MAX_ROWS_SHOWN]]
    safe, full = [], []
    for k, line in enumerate(lines):
        v = None if values is None or k >= len(values) else values[k]
        full.append(f"{word} {line}" + ("" if values is None else f" ({v!r})"))
        safe.append(f"{word} {line}" + (f" ({_quote(v)})" if values is not None and show else ""))
    more = f" and {n - MAX_ROWS_SHOWN} more" if n > MAX_ROWS_SHOWN else ""
    where = f"column '{column}': " if column else ""
    kind = "CSV line numbers, header = line 1" if word == "line" else "1-based data rows"
    head = f"{path}: {where}{problem} in {n} row(s): "
    return DataError(f"{head}{', '.join(safe)}{more} [{kind}]", file=path, column=column, lines=lines, n_rows=n,
                     detail=f"{head}{', '.join(full)}{more} [{kind}]")


# --------------------------------------------------------------------------------------------------- reading
def _find(path: Path, name: str) -> Path | None:
    """The file holding table ``name``: ``path`` itself if a file, else ``<name>.parquet`` / ``<name>.csv`` in it.
    A broken symbolic link counts as present (reading it is then an error, not a silently absent table)."""
    if path.is_file() or (path.is_symlink() and not path.is_dir()):
        return path
    for ext in (".parquet", ".csv"):
        p = path / f"{name}{ext}"
        if p.is_symlink() or p.exists():
            return p
    return None


def _csv_header(file: Path) -> list[str]:
    with open(file, newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh), [])


def _read(file: Path, name: str) -> tuple[pd.DataFrame, list[str]]:
    """Read the schema's columns of ``file``; returns the table and the names of the other columns (dropped)."""
    if file.is_symlink() and not file.exists():
        raise DataError(f"{file}: is a symbolic link to a file that does not exist (table '{name}' cannot be read)",
                        file=file)
    if not os.access(file, os.R_OK):
        raise DataError(f"{file}: cannot be read (permission denied) (table '{name}')", file=file)
    wanted = list(SCHEMAS[name].columns)
    try:
        if file.suffix == ".parquet":
            import pyarrow.parquet as pq

            header = list(pq.read_schema(file).names)
        else:
            header = _csv_header(file)
    except (OSError, ValueError, csv.Error) as exc:
        raise DataError(f"{file}: cannot be read as {file.suffix[1:] or 'a table'}: {type(exc).__name__}",
                        file=file, detail=f"{file}: cannot be read: {exc}") from None
    missing = [c for c in wanted if c not in header]
    if missing:  # the header's names go to detail only: in a file without a header, line 1 is a person's data
        shown = ", ".join(_quote(c) for c in header[:30])
        head = f"{file}: missing column(s) {', '.join(repr(c) for c in missing)} (expected {', '.join(wanted)}"
        raise DataError(f"{head}; the header (line 1) has {len(header)} column(s), {len(wanted) - len(missing)} of "
                        "them expected: is line 1 a header?)", file=file, column=missing[0], lines=[1],
                        detail=f"{head}; found {shown})")
    dup = [c for c, k in Counter(header).items() if k > 1]
    if dup:
        where = "; ".join(f"'{c}' in columns {', '.join(str(i + 1) for i, h in enumerate(header) if h == c)}"
                          for c in dup[:5])
        raise DataError(f"{file}: duplicate column name(s) in the header (line 1): {where}", file=file,
                        column=dup[0], lines=[1])
    extra = [c for c in header if c not in wanted]
    try:
        if file.suffix == ".parquet":
            df = pd.read_parquet(file, columns=wanted)
        else:
            # every column is read (not usecols=): pandas then refuses a row with more fields than the header
            # instead of dropping the extra field silently (an unquoted comma shifts a row's values)
            df = pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig",
                             index_col=False)[wanted]
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            exp, line, saw = (int(g) for g in m.groups())
            raise DataError(f"{file}: line {line} has {saw} fields, the header has {exp} (an unquoted comma or a "
                            "stray field: every row must have the header's columns)", file=file,
                            lines=[line]) from None
        raise DataError(f"{file}: cannot be read as csv: {type(exc).__name__}", file=file,
                        detail=f"{file}: cannot be read as csv: {exc}") from None
    except (OSError, ValueError) as exc:  # unreadable file: say which, without quoting its content
        raise DataError(f"{file}: cannot be read as {file.suffix[1:]}: {type(exc).__name__}", file=file,
                        detail=f"{file}: cannot be read as {file.suffix[1:]}: {exc}") from None
    return df, extra


def _parse(df: pd.DataFrame, name: str, file: Path) -> pd.DataFrame:
    """Type each canonical column; unparseable values are errors naming the rows, never silent NaN. Text columns
    keep missing as ``None`` (never the string ``'nan'``): empty, whitespace and :data:`MISSING_TEXT` are missing."""
    out = df.copy()
    for col, kind in COLUMN_KINDS[name].items():
        if col not in out.columns:
            continue
        s = out[col]
        if kind == "date":
            if pd.api.types.is_datetime64_any_dtype(s):
                parsed = s.astype("datetime64[ns]") if s.dt.tz is None else s.dt.tz_localize(None)
            else:
                text = s.astype("string[pyarrow]").str.strip()
                text = text.where(~text.str.lower().isin(MISSING_TEXT), pd.NA)
                parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
                bad = text.notna() & parsed.isna()
                if bad.any():
                    pos = np.flatnonzero(bad.to_numpy())
                    raise _fail(file, col, "unparseable date (expected YYYY-MM-DD)", pos, text.iloc[pos[:5]].tolist())
            out[col] = parsed.astype("datetime64[ns]")
        elif kind == "bool":
            if pd.api.types.is_bool_dtype(s) and not s.isna().any():
                out[col] = s.astype(bool)
                continue
            text = s.astype("string[pyarrow]").str.strip().str.lower()
            bad = (~(text.isin(_TRUE) | text.isin(_FALSE))).fillna(True)
            if bad.any():
                pos = np.flatnonzero(bad.to_numpy())
                raise _fail(file, col, "wrong type or missing: expected true/false (or 1/0, yes/no)", pos,
                            s.iloc[pos[:5]].tolist())
            out[col] = text.isin(_TRUE).astype(bool)
        elif kind in ("int", "float"):
            num = pd.to_numeric(s, errors="coerce")
            bad = s.notna() & num.isna()
            if kind == "int":
                bad |= num.notna() & (num != np.round(num))
            if bad.any():
                pos = np.flatnonzero(bad.to_numpy())
                raise _fail(file, col, f"wrong type: expected {'a whole number' if kind == 'int' else 'a number'}",
                            pos, s.iloc[pos[:5]].tolist())
            out[col] = num.astype("Int64") if kind == "int" else num.astype(float)
        else:
            text = s.astype("string[pyarrow]")  # Arrow kernels: strip/lower vectorised in C
            missing = (text.isna() | text.str.strip().str.lower().isin(MISSING_TEXT)).fillna(True)
            out[col] = text.astype(object).where(~missing.to_numpy(), None)
    return out


def _required(df: pd.DataFrame, name: str, file: Path) -> None:
    """Missing values in required columns are errors naming the lines (checked before pandera so the message
    says 'missing', whatever other check the column has)."""
    for col, column in SCHEMAS[name].columns.items():
        if column.nullable or col not in df.columns:
            continue
        bad = df[col].isna().to_numpy()
        if bad.any():
            raise _fail(file, col, "missing value (required; empty, blank or 'nan')", np.flatnonzero(bad))


def _schema_error(exc: pandera.errors.SchemaErrors, file: Path) -> DataError:
    """Translate pandera's failure cases into one DataError (the first failing column and check)."""
    fc = exc.failure_cases
    first = fc.iloc[0]
    col, check = first.get("column"), str(first.get("check"))
    part = fc[(fc["column"] == col) & (fc["check"].astype(str) == check)]
    pos = part["index"].dropna().astype(int).to_numpy()
    values = part["failure_case"].tolist()
    if check.startswith("isin"):
        allowed = check[check.find("(") + 1:-1] if "(" in check else check
        problem = f"unknown value (allowed: {allowed})"
    elif "field_uniqueness" in check or "unique" in check:
        problem = "duplicate values (must be unique)"
    elif "not_nullable" in check:
        problem = "missing values (required)"
    elif "dtype" in check:
        return DataError(f"{file}: column '{col}': wrong type (expected {check})", file=file, column=col,
                         detail=f"{file}: column '{col}': wrong type ({first.get('failure_case')}; expected {check})")
    else:
        problem = f"fails check {check}"
    if len(pos) == 0:
        return DataError(f"{file}: column '{col}': {problem}", file=file, column=col,
                         detail=f"{file}: column '{col}': {problem}: {values[:5]}")
    return _fail(file, col, problem, pos, values)


def _check_rows(df: pd.DataFrame, name: str, file: Path) -> None:
    if len(df) == 0:
        raise DataError(f"{file}: the table '{name}' is empty (no data rows)", file=file)


def _order(df: pd.DataFrame, file: Path, early: str, late: str, problem: str) -> None:
    bad = (df[late] < df[early]).to_numpy()
    if bad.any():
        pos = np.flatnonzero(bad)
        vals = [f"{a:%Y-%m-%d} < {b:%Y-%m-%d}" for a, b in zip(df[late].iloc[pos[:5]], df[early].iloc[pos[:5]])]
        raise _fail(file, late, problem, pos, vals)


def _relations(df: pd.DataFrame, name: str, file: Path, programmes) -> None:
    """Checks between columns of one table."""
    if name == "offences":
        _order(df, file, "offence_date", "disposal_date", "disposal before offence")
        undated = (df["disposal_type"].isin(COUNTED_DISPOSALS) & df["disposal_date"].isna()).to_numpy()
        if undated.any():
            pos = np.flatnonzero(undated)
            raise _fail(file, "disposal_date", "counted disposal (" + ", ".join(COUNTED_DISPOSALS) + ") with no "
                        "disposal date: it cannot be placed in the follow-up and waiting periods, and would be left "
                        "uncounted (give the date, or the type 'pending' if not yet disposed of)", pos,
                        df["disposal_type"].iloc[pos[:5]].tolist())
    elif name == "referrals":
        _order(df, file, "referral_date", "start_date", "start_date before referral_date")
        _order(df, file, "start_date", "end_date", "end_date before start_date")
        # the status must agree with the dates: completers and started counts are read from both
        status = df["completion_status"].astype("string")
        for bad, col, problem in (
                ((status == "not_started") & df["start_date"].notna(), "start_date",
                 "status 'not_started' with a start date"),
                (status.isin(["completed", "disengaged", "ongoing"]) & df["start_date"].isna(), "start_date",
                 "status 'completed', 'disengaged' or 'ongoing' with no start date"),
                (status.isin(["completed", "disengaged"]) & df["end_date"].isna(), "end_date",
                 "status 'completed' or 'disengaged' with no end date"),
                ((status == "ongoing") & df["end_date"].notna(), "end_date", "status 'ongoing' with an end date")):
            bad = bad.fillna(False).to_numpy(dtype=bool)
            if bad.any():
                pos = np.flatnonzero(bad)
                raise _fail(file, col, problem, pos, status.iloc[pos[:5]].tolist())
        dup = df.duplicated(["programme_id", "person_id"], keep=False).to_numpy()
        if dup.any():
            pos = np.flatnonzero(dup)
            vals = [f"{p} in {g}" for p, g in zip(df["person_id"].iloc[pos[:5]], df["programme_id"].iloc[pos[:5]])]
            raise _fail(file, "person_id", "duplicate person in a programme cohort (one referral per person per "
                        "programme)", pos, vals)
        if programmes is None:
            from evaluation.config import load_programmes

            programmes = load_programmes()
        start = df["programme_id"].map({k: pd.Timestamp(p.start) for k, p in programmes.items()})
        end = df["programme_id"].map({k: pd.Timestamp(p.end) for k, p in programmes.items()})
        bad = ((df["referral_date"] < start) | (df["referral_date"] > end)).to_numpy()
        if bad.any():
            pos = np.flatnonzero(bad)
            vals = [f"{d:%Y-%m-%d} not in {p} {s:%Y-%m-%d}..{e:%Y-%m-%d}" for d, p, s, e in
                    zip(df["referral_date"].iloc[pos[:5]], df["programme_id"].iloc[pos[:5]], start.iloc[pos[:5]],
                        end.iloc[pos[:5]])]
            raise _fail(file, "referral_date", "referral outside the programme's dates", pos, vals)
    elif name == "custody":
        _order(df, file, "custody_start", "custody_end", "custody_end before custody_start")


def load_table(path: str | Path, name: str, *, programmes=None, validate: bool = True) -> pd.DataFrame:
    """Read, type and validate one canonical table.

    Parameters
    ----------
    path : str or Path
        A world folder (``<name>.parquet`` or ``<name>.csv`` inside) or the file itself.
    name : str
        The table, one of :data:`evaluation.schemas.TABLES`.
    programmes : dict, optional
        Programme configurations (referral dates are checked against them); default: ``programmes/``.
    validate : bool
        ``False`` only types the columns (for trusted, already-validated extracts).

    Returns
    -------
    DataFrame
        The schema's columns only (others are dropped; their names are in ``df.attrs['dropped_columns']``), typed:
        dates ``datetime64[ns]``, flags ``bool``, counts ``Int64``, text ``object`` with ``None`` for missing.

    Raises
    ------
    DataError
        Naming the file, column and line numbers (see the module docstring).

    Examples
    --------
    >>> offences = load_table("data/raw/synthetic", "offences")  # doctest: +SKIP
    """
    if name not in SCHEMAS:
        raise DataError(f"unknown table '{name}'; tables are {', '.join(TABLES)}")
    path = Path(path)
    file = _find(path, name)
    if file is None:
        raise DataError(f"{path}: no {name}.parquet or {name}.csv", file=path)
    raw, extra = _read(file, name)
    _check_rows(raw, name, file)
    df = _parse(raw, name, file)
    if validate:
        _required(df, name, file)
        try:
            df = SCHEMAS[name].validate(df, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            raise _schema_error(exc, file) from None
        except pandera.errors.SchemaError as exc:  # pragma: no cover - lazy=True collects these
            raise DataError(f"{file}: column '{exc.schema.name}': fails validation", file=file,
                            detail=f"{file}: {exc}") from None
        _relations(df, name, file, programmes)
    df.attrs["dropped_columns"] = extra
    df.attrs["file"] = str(file)
    return df


# ----------------------------------------------------------------------------------------------------- world
@dataclass
class World:
    """A validated world: the canonical tables (optional ones ``None`` when absent) and the facts about it.

    Attributes
    ----------
    extract_date : datetime.date or None
        The one extract date (see :func:`extract_date`); ``extract_date_source`` says where it came from.
    latest_record : datetime.date or None
        The latest offence or disposal date in ``offences`` (before records after the extract date are left out).
    synthetic : bool
        Written by :mod:`evaluation.synth` (``truth.json`` present or ``generator_version`` in ``meta.json``).
    table_names : tuple of str
        The tables present, in :data:`evaluation.schemas.TABLES` order.
    files : dict
        Table -> the file it was read from.
    exclusions : DataFrame
        ``table``, ``reason``, ``count``: records left out by design (dated after the extract date).
    dropped_columns : dict
        Table -> columns of the file not in the schema, dropped on load (never cached or reported).
    linked : Path or None
        The linkage output folder (:func:`evaluation.linkage.link_world`) the referrals were read from, else
        ``None`` (the world's own ``referrals.csv``).
    linkage : DataFrame or None
        Per programme, from that folder: ``referred`` (rows of the provider's list), ``found`` (linked to a person
        in police records), ``duplicates`` (repeat referrals of a person found), ``precision``/``recall`` against
        the synthetic truth (missing for a real list).
    """

    path: Path
    people: pd.DataFrame
    referrals: pd.DataFrame
    contacts: pd.DataFrame
    offences: pd.DataFrame
    custody: pd.DataFrame | None = None
    area_monthly: pd.DataFrame | None = None
    delivery: pd.DataFrame | None = None
    ete: pd.DataFrame | None = None
    extract_date: dt.date | None = None
    extract_date_source: str = ""
    latest_record: dt.date | None = None
    synthetic: bool = False
    meta: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    exclusions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["table", "reason", "count"]))
    dropped_columns: dict = field(default_factory=dict)
    linked: Path | None = None
    linkage: pd.DataFrame | None = None

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t for t in TABLES if getattr(self, t) is not None)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {t: getattr(self, t) for t in TABLES if getattr(self, t) is not None}

    def __repr__(self) -> str:
        rows = ", ".join(f"{t} {len(getattr(self, t)):,}" for t in self.table_names)
        return (f"World({str(self.path)!r}: {rows}; extract date {self.extract_date}"
                f"{'; synthetic' if self.synthetic else ''})")


def latest_record_date(world) -> dt.date | None:
    """The latest date the data can support: the latest offence or disposal date in ``offences``
    (:data:`evaluation.schemas.LATEST_RECORD_COLUMNS`). ``world`` is a :class:`World` or a dict of tables."""
    if isinstance(world, World) and world.latest_record is not None:
        return world.latest_record
    latest = []
    for table, cols in LATEST_RECORD_COLUMNS.items():
        df = world.get(table) if isinstance(world, dict) else getattr(world, table, None)
        if df is None:
            continue
        for c in cols:
            if c in df.columns:
                m = pd.to_datetime(df[c]).max()
                if pd.notna(m):
                    latest.append(m)
    return max(latest).date() if latest else None


def _as_date(value, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise DataError(f"{what}: {_quote(str(value))} is not a date (YYYY-MM-DD)") from None


def check_extract_date(world, extract_date, *, allow_after_data: bool = False, source: str = "extract date"
                       ) -> dt.date:
    """Check an extract date against the data and today; return it as a ``datetime.date``.

    An extract date after the latest record the data holds (:func:`latest_record_date`) would count follow-ups that
    run past the end of the data as complete with no reoffending; one after today cannot be true. Both are refused
    unless ``allow_after_data`` (CLI ``--allow-extract-date-after-data``) says the extract really was taken then.

    Parameters
    ----------
    world : World or dict of DataFrame
        The world (its ``offences`` table is what the date is checked against).
    extract_date : str, date or Timestamp
        The date to check (ISO ``YYYY-MM-DD`` when text).
    allow_after_data : bool
        Accept a date after the latest record or after today.
    source : str
        Where the date came from, for the message (e.g. ``"--extract-date"``, ``"meta.json"``).

    Returns
    -------
    datetime.date

    Raises
    ------
    DataError
        Not a date, after today, or after the latest record (unless allowed).

    Examples
    --------
    >>> check_extract_date(world, "2024-12-31")  # doctest: +SKIP
    datetime.date(2024, 12, 31)
    """
    date = _as_date(extract_date, source)
    if allow_after_data:
        return date
    today = dt.date.today()
    hint = ("; if the extract really was taken then, allow it explicitly (allow_after_data=True, CLI "
            "--allow-extract-date-after-data)")
    if date > today:
        raise DataError(f"{source}: the extract date {date} is after today ({today}){hint}")
    latest = latest_record_date(world)
    if latest is not None and date > latest:
        raise DataError(f"{source}: the extract date {date} is after the latest record in the world ({latest}, the "
                        "latest offence or disposal date): follow-ups running past the end of the data would be "
                        f"counted as complete with no reoffending{hint}")
    return date


def extract_date(world_or_path) -> dt.date | None:
    """THE extract date of a world (the one rule; cover, body and manifest all use it).

    ``extract_date`` from the world's ``meta.json`` when present, else the latest offence or disposal date in its
    ``offences`` table; either way checked by :func:`check_extract_date` when the world is loaded.

    Parameters
    ----------
    world_or_path : World, str, Path, dict of DataFrame or world-like object
        A loaded world, or a world folder (loaded and validated, through the cache, to apply the same rule); for a
        dict of tables or an object without ``extract_date``, the latest offence or disposal date.

    Returns
    -------
    datetime.date or None
        ``None`` only for a world with no offences loaded.

    Raises
    ------
    DataError
        The world folder does not validate.

    Examples
    --------
    >>> extract_date("data/raw/synthetic")  # doctest: +SKIP
    datetime.date(2024, 12, 31)
    """
    if isinstance(world_or_path, World):
        return world_or_path.extract_date
    if isinstance(world_or_path, (str, Path)):
        return load_world(world_or_path, cache=True).extract_date
    # a world-like object or a dict of tables (tests, notebooks): its own extract date, else the same fallback
    value = None if isinstance(world_or_path, dict) else getattr(world_or_path, "extract_date", None)
    return latest_record_date(world_or_path) if value is None else pd.Timestamp(value).date()


def _unknown_people(world: World, table: str, people_ids: pd.Index) -> None:
    df = getattr(world, table)
    if df is None:
        return
    bad = ~df["person_id"].isin(people_ids).to_numpy()
    if bad.any():
        file = Path(world.files.get(table) or world.path / table)
        pos = np.flatnonzero(bad)
        raise _fail(file, "person_id", "person not in the people table", pos, df["person_id"].iloc[pos[:5]].tolist())


def _future_records(world: World) -> None:
    """Events dated after today cannot be true (a typo in the year, a system default): refused, with lines."""
    today = pd.Timestamp(dt.date.today())
    tables = {t: (c,) if isinstance(c, str) else tuple(c) for t, c in EVENT_DATE_COLUMNS.items()}
    tables["offences"] = tables.get("offences", ()) + ("disposal_date",)
    for table, cols in tables.items():
        df = getattr(world, table, None)
        if df is None:
            continue
        for col in cols:
            if col not in df.columns:
                continue
            late = (df[col] > today).fillna(False).to_numpy(dtype=bool)
            if late.any():
                file = Path(world.files.get(table) or world.path / table)
                pos = np.flatnonzero(late)
                raise _fail(file, col, f"date after today ({today:%Y-%m-%d})", pos, df[col].iloc[pos[:5]].tolist())


def _births(world: World, extract: dt.date | None) -> None:
    """Dates of birth against the extract date (or today) and every dated event against the person's birth."""
    people = world.people
    file = Path(world.files.get("people") or world.path / "people")
    ref = pd.Timestamp(min(extract or dt.date.today(), dt.date.today()))
    dob = people["date_of_birth"]
    late = (dob > ref).to_numpy()
    if late.any():
        raise _fail(file, "date_of_birth", f"date of birth after the extract date ({ref:%Y-%m-%d})",
                    np.flatnonzero(late), dob.iloc[np.flatnonzero(late)[:5]].tolist())
    oldest = ref - pd.DateOffset(years=MAX_AGE_YEARS)
    old = (dob < oldest).to_numpy()
    if old.any():
        raise _fail(file, "date_of_birth", f"implausible date of birth (older than {MAX_AGE_YEARS} at "
                    f"{ref:%Y-%m-%d})", np.flatnonzero(old), dob.iloc[np.flatnonzero(old)[:5]].tolist())
    by_id = pd.Series(dob.to_numpy(), index=people["person_id"].to_numpy())
    for table, col in EVENT_DATE_COLUMNS.items():
        df = getattr(world, table)
        if df is None:
            continue
        born = df["person_id"].map(by_id)
        bad = (df[col] < born).to_numpy()
        if bad.any():
            pos = np.flatnonzero(bad)
            vals = [f"{a:%Y-%m-%d} < born {b:%Y-%m-%d}" for a, b in zip(df[col].iloc[pos[:5]], born.iloc[pos[:5]])]
            raise _fail(Path(world.files.get(table) or world.path / table), col,
                        "dated before the person's date of birth", pos, vals, show=False)


# ----------------------------------------------------------------------------------------------------- cache
def default_cache_dir() -> Path:
    """Where validated worlds are cached: outside the repository, in the user's cache folder.

    ``$EVALUATION_CACHE_DIR``, else ``$EVALUATION_CACHE`` (older name), else ``$XDG_CACHE_HOME/evaluation``, else
    ``~/.cache/evaluation``. Folders are created owner-only (0700), files owner-only (0600).
    """
    for var in ("EVALUATION_CACHE_DIR", "EVALUATION_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "evaluation"


def _world_key(path: Path, programmes_folder: Path | None = None, extra: str = "", linked: Path | None = None
               ) -> str:
    """Content key of a world as :func:`load_world` would see it: the bytes of every table file and of
    meta/truth JSON, the programme configs (referral dates are checked against them), the rules (this module, the
    schemas, :data:`RULES_VERSION`) and the pandas version. Sizes and modification times play no part."""
    import hashlib

    from evaluation import schemas
    from evaluation.config import programmes_dir

    h = hashlib.sha256(f"{RULES_VERSION}\0{pd.__version__}\0{extra}\0".encode())
    files = [f for t in TABLES if (f := _find(path, t)) is not None]
    files += [p for p in (path / "meta.json", path / "truth.json") if p.exists()]
    if linked is not None:  # referrals read from the linkage output instead (names differ: no clash)
        from evaluation.linkage import COUNTS_FILE, REFERRALS_FILE

        files += [linked / REFERRALS_FILE, linked / COUNTS_FILE]
        h.update(b"linked\0")
    files += sorted(Path(programmes_folder or programmes_dir()).glob("*.yaml"))
    files += [Path(__file__), Path(schemas.__file__)]
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def _read_cached(folder: Path) -> World | None:
    try:
        facts = json.loads((folder / "world.json").read_text())
        tables = {t: (pd.read_parquet(folder / f"{t}.parquet") if t in facts["tables"] else None) for t in TABLES}
        extract = dt.date.fromisoformat(facts["extract_date"]) if facts["extract_date"] else None
        latest = dt.date.fromisoformat(facts["latest_record"]) if facts["latest_record"] else None
        return World(path=Path(facts["path"]), extract_date=extract, extract_date_source=facts["extract_date_source"],
                     latest_record=latest, synthetic=facts["synthetic"], meta=facts["meta"], files=facts["files"],
                     dropped_columns=facts["dropped_columns"],
                     exclusions=pd.DataFrame(facts["exclusions"], columns=["table", "reason", "count"]), **tables)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, half-written or from another version: validate from the raw files


def _write_cached(world: World, folder: Path) -> None:
    """Write the validated tables (schema columns only) as parquet, owner-only; atomic (a folder renamed into
    place), so parallel report builds see a complete cache or none. Older caches of the same world are removed."""
    import shutil
    import tempfile

    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))  # mkdtemp: mode 0700
    try:
        present = list(world.table_names)
        for t in present:
            df = getattr(world, t)
            df[list(SCHEMAS[t].columns)].to_parquet(tmp / f"{t}.parquet", index=False)
        facts = {"path": str(world.path), "extract_date": world.extract_date.isoformat() if world.extract_date else None,
                 "extract_date_source": world.extract_date_source,
                 "latest_record": world.latest_record.isoformat() if world.latest_record else None,
                 "synthetic": world.synthetic, "meta": world.meta, "tables": present, "files": world.files,
                 "dropped_columns": world.dropped_columns, "exclusions": world.exclusions.to_dict("records")}
        (tmp / "world.json").write_text(json.dumps(facts, default=str))
        for f in tmp.iterdir():
            os.chmod(f, 0o600)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process published the same key first: theirs is identical
            shutil.rmtree(tmp, ignore_errors=True)
            return
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    stem = folder.name.rsplit("-", 1)[0]
    for old in folder.parent.glob(f"{stem}-*"):
        if old != folder and old.is_dir() and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------ load
def _read_meta(path: Path) -> dict:
    if not (path / "meta.json").exists():
        return {}
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise DataError(f"{path / 'meta.json'}: key(s) given twice: {', '.join(dup)}", file=path / "meta.json")
        return dict(pairs)

    try:
        meta = json.loads((path / "meta.json").read_text(), object_pairs_hook=no_duplicates)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path / 'meta.json'}: cannot be read: {type(exc).__name__}", file=path / "meta.json") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path / 'meta.json'}: not valid JSON (line {exc.lineno})", file=path / "meta.json") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path / 'meta.json'}: expected a JSON object", file=path / "meta.json")
    if "extract_date" in meta and not isinstance(meta["extract_date"], str):
        raise DataError(f"{path / 'meta.json'}: key 'extract_date' must be a date as text (\"YYYY-MM-DD\"), got "
                        f"{type(meta['extract_date']).__name__}", file=path / "meta.json")
    return meta


def load_world(path: str | Path, *, programmes=None, tables: Iterable[str] | None = None,
               validate: bool = True, cache: bool | str | Path = False, extract_date=None,
               allow_extract_date_after_data: bool = False, linked=None, _problems: list | None = None) -> World:
    """Load and validate every table of a world folder (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The world folder.
    programmes : dict, optional
        Programme configurations for the referral-date checks (default: ``programmes/``).
    tables : iterable of str, optional
        Load only these tables (default: all present; the required ones must be).
    validate : bool
        ``False`` skips the checks (trusted extracts).
    cache : bool, str or Path
        ``True`` for :func:`default_cache_dir`, or a folder: keep the validated world as parquet under a key of its
        content (raw files, programme configs, rules; :func:`_world_key`), so the next load of an unchanged world
        reads typed parquet (the default synthetic world: about 2.5 s → 0.3 s). Any byte changed re-validates.
        Used for a full validated load only.
    extract_date : str or date, optional
        Use this extract date instead of the world's (checked by :func:`check_extract_date`).
    allow_extract_date_after_data : bool
        Accept an extract date (given or from ``meta.json``) after the latest record or after today.
    linked : str or Path, optional
        A linkage output folder (``python -m evaluation link``; :func:`evaluation.linkage.link_world`): the
        referrals are read from its ``referrals.csv`` (the providers' lists linked to police records, one per person
        per programme) instead of the world's, and ``World.linkage`` holds the linkage counts. It must have been
        linked from this world's current lists (:func:`evaluation.linkage.linked_folder`). Default: none.

    Returns
    -------
    World
        ``extract_date`` from ``extract_date``, else ``meta.json``, else the latest offence or disposal date.
        Records dated after it are left out and counted in ``exclusions``.

    Raises
    ------
    DataError
        The first problem found, naming file, column and line numbers.

    Examples
    --------
    >>> world = load_world("data/raw/synthetic", cache=True)  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such world folder (make synth writes data/raw/synthetic; real extracts are "
                        "named with --world or EVALUATION_WORLD)", file=path)
    counts = None
    if linked is not None and linked is not False:
        from evaluation.linkage import REFERRALS_FILE, linked_folder, read_counts

        linked = linked_folder(path, linked)  # checks it was linked from this world's current lists
        counts = read_counts(linked)
    else:
        linked = None
    if cache is not False and cache is not None and validate and tables is None and programmes is None \
            and _problems is None:
        try:
            key = _world_key(path, extra=f"{extract_date}|{allow_extract_date_after_data}",
                             linked=linked)
        except OSError:  # a file vanished or cannot be read: the fresh load says which
            key = None
        if key is not None:
            folder = (default_cache_dir() if cache is True else Path(cache)) / f"{path.resolve().name}-{key[:20]}"
            world = _read_cached(folder)
            if world is None:
                world = load_world(path, extract_date=extract_date, linked=linked,
                                   allow_extract_date_after_data=allow_extract_date_after_data)
                _write_cached(world, folder)
            world.path, world.linked, world.linkage = path, linked, counts
            return world
    wanted = list(tables) if tables is not None else list(TABLES)
    loaded: dict[str, pd.DataFrame | None] = {}
    failed = []
    for name in wanted:
        try:
            if name == "referrals" and linked is not None:  # the providers' lists, linked to police records
                loaded[name] = load_table(linked / REFERRALS_FILE, name, programmes=programmes, validate=validate)
                continue
            if _find(path, name) is None:
                if name in REQUIRED_TABLES:
                    raise DataError(f"{path}: missing required table '{name}' ({name}.csv or {name}.parquet)",
                                    file=path)
                loaded[name] = None
                continue
            loaded[name] = load_table(path, name, programmes=programmes, validate=validate)
        except DataError as exc:
            if _problems is None:
                raise
            _problems.append(exc)
            failed.append(name)
    if failed:
        return None  # only for validate_world, which reports the problems collected
    meta = _read_meta(path)
    world = World(path=path, meta=meta, synthetic=bool(meta.get("generator_version")) or (path / "truth.json").exists(),
                  files={t: df.attrs.get("file") for t, df in loaded.items() if df is not None},
                  dropped_columns={t: df.attrs["dropped_columns"] for t, df in loaded.items()
                                   if df is not None and df.attrs.get("dropped_columns")},
                  linked=linked, linkage=counts, **{t: loaded.get(t) for t in TABLES})
    for df in loaded.values():
        if df is not None:
            df.attrs.clear()  # the facts are on the World now; plain tables downstream
    world.latest_record = latest_record_date(world)
    allow = allow_extract_date_after_data
    if extract_date is not None:
        extract, source = check_extract_date(world, extract_date, allow_after_data=allow,
                                             source="extract date given"), "given"
    elif meta.get("extract_date"):
        extract = _as_date(meta["extract_date"], f"{path / 'meta.json'}: key 'extract_date'")
        # a synthetic world's generator simulated offending up to its extract date, so quiet last days are real
        # (no offences), not missing data; a supplied extract's meta.json gets the same check as a given date
        extract = check_extract_date(world, extract, allow_after_data=allow or not validate or world.synthetic,
                                     source=f"{path / 'meta.json'}: key 'extract_date'")
        source = "meta.json"
    else:
        extract, source = world.latest_record, "latest offence or disposal date"
    if validate:
        _future_records(world)
    world.extract_date, world.extract_date_source = extract, (source if extract is not None else "")
    if validate and world.people is not None:
        ids = pd.Index(world.people["person_id"])
        for table in ("referrals", "contacts", "offences", "custody"):
            _unknown_people(world, table, ids)
        _births(world, extract)
    if extract is not None:
        cut = pd.Timestamp(extract)
        rows = []
        for table, col in (("offences", "offence_date"), ("contacts", "contact_date"), ("referrals", "referral_date")):
            df = getattr(world, table)
            if df is None:
                continue
            late = df[col] > cut
            if late.any():
                rows.append({"table": table, "reason": f"{col} after the extract date {extract}",
                             "count": int(late.sum())})
                setattr(world, table, df.loc[~late].reset_index(drop=True))
        if rows:
            world.exclusions = pd.DataFrame(rows)
    return world


# ------------------------------------------------------------------------------------------ validation report
@dataclass
class ValidationReport:
    """What :func:`validate_world` found: tables and rows, exclusions, pending disposals, problems.

    ``ok`` is true when there is no problem. ``summary()`` gives one row per table; ``to_text()`` the report the
    CLI prints. Nothing in it quotes an identifying value (``to_text(show_values=True)`` adds each problem's
    ``detail`` for the terminal).
    """

    path: Path
    tables: pd.DataFrame
    exclusions: pd.DataFrame
    counts: pd.DataFrame
    problems: list
    extract_date: dt.date | None = None
    extract_date_source: str = ""
    latest_record: dt.date | None = None
    synthetic: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def __repr__(self) -> str:
        state = "valid" if self.ok else f"{len(self.problems)} problem(s)"
        return f"ValidationReport({str(self.path)!r}: {state}, {len(self.tables)} table(s), extract date {self.extract_date})"

    def summary(self) -> pd.DataFrame:
        """One row per table: file, rows, dropped columns, status."""
        return self.tables.copy()

    def to_text(self, show_values: bool = False) -> str:
        lines = [f"World: {self.path}" + ("  (synthetic)" if self.synthetic else "")]
        if self.extract_date is not None:
            lines.append(f"Extract date: {self.extract_date} ({self.extract_date_source}); latest offence or "
                         f"disposal date: {self.latest_record}")
        lines += ["", "Tables:", self.tables.to_string(index=False) if len(self.tables) else "  (none read)"]
        if len(self.counts):
            lines += ["", "Records not counted as proven offences:", self.counts.to_string(index=False)]
        lines += ["", "Excluded by design (counted, not dropped silently):",
                  self.exclusions.to_string(index=False) if len(self.exclusions) else "  none"]
        lines += ["", "Problems:" if self.problems else "Problems: none — the world is valid."]
        for k, p in enumerate(self.problems, 1):
            lines.append(f"  {k}. {p}")
            if show_values and getattr(p, "detail", None) and p.detail != str(p):
                lines.append(f"     values: {p.detail}")
        return "\n".join(lines)


def validate_world(path: str | Path, *, programmes=None, extract_date=None,
                   allow_extract_date_after_data: bool = False, linked=None) -> ValidationReport:
    """Validate a world folder without building anything and report what was found.

    Each table is checked on its own, so independent problems in several tables are all reported; the checks
    across tables (people known, births, the extract date) run when every table is readable.

    Parameters
    ----------
    path : str or Path
        The world folder.
    programmes : dict, optional
        Programme configurations (default: ``programmes/``).
    extract_date : str or date, optional
        An extract date to check and use instead of the world's.
    allow_extract_date_after_data : bool
        Accept an extract date after the latest record or after today.
    linked : str or Path, optional
        A linkage output folder whose referrals replace the world's (as :func:`load_world`).

    Returns
    -------
    ValidationReport

    Examples
    --------
    >>> validate_world("data/raw/synthetic").ok  # doctest: +SKIP
    True
    """
    path = Path(path)
    problems: list[DataError] = []
    world = None
    try:
        world = load_world(path, programmes=programmes, extract_date=extract_date, linked=linked,
                           allow_extract_date_after_data=allow_extract_date_after_data, _problems=problems)
    except DataError as exc:
        problems.append(exc)
    except EvaluationError as exc:  # the linkage output does not belong to this world (LinkageError)
        problems.append(DataError(str(exc)))
    rows = []
    for t in TABLES:
        file = _find(path, t) if path.is_dir() else None
        if t == "referrals" and world is not None and world.linked is not None:
            from evaluation.linkage import REFERRALS_FILE

            file = world.linked / REFERRALS_FILE
        bad = [p for p in problems if p.file and file and Path(p.file) == file]
        if world is not None and getattr(world, t) is not None:
            df = getattr(world, t)
            n = len(df) + int(world.exclusions.loc[world.exclusions["table"] == t, "count"].sum()) \
                if len(world.exclusions) else len(df)
            name = str(file) if t == "referrals" and world.linked is not None else file.name
            rows.append({"table": t, "file": name, "rows": n,
                         "dropped columns": ", ".join(world.dropped_columns.get(t, [])) or "",
                         "status": "problem" if bad else "ok"})
        elif file is not None:
            rows.append({"table": t, "file": file.name, "rows": None, "dropped columns": "",
                         "status": "problem" if bad else "not checked"})
        else:
            rows.append({"table": t, "file": "", "rows": None, "dropped columns": "",
                         "status": "missing (required)" if t in REQUIRED_TABLES else "absent (optional)"})
    tables = pd.DataFrame(rows)
    tables["rows"] = tables["rows"].astype("Int64")
    counts = pd.DataFrame(columns=["table", "records", "count"])
    exclusions = pd.DataFrame(columns=["table", "reason", "count"])
    if world is not None:
        exclusions = world.exclusions
        off = world.offences
        counts = pd.DataFrame([
            {"table": "offences", "records": "pending (no disposal yet; counted once disposed of)",
             "count": int((off["disposal_type"] == PENDING_DISPOSAL).sum())},
            {"table": "offences", "records": "disposal not counted (" + ", ".join(
                d for d in NOT_COUNTED_DISPOSALS if d != PENDING_DISPOSAL) + ")",
             "count": int((off["disposal_type"].isin(NOT_COUNTED_DISPOSALS)
                           & (off["disposal_type"] != PENDING_DISPOSAL)).sum())},
        ])
    return ValidationReport(path=path, tables=tables, exclusions=exclusions, counts=counts, problems=problems,
                            extract_date=world.extract_date if world is not None else None,
                            extract_date_source=world.extract_date_source if world is not None else "",
                            latest_record=world.latest_record if world is not None else None,
                            synthetic=bool(world and world.synthetic))


# ------------------------------------------------------------------------------------------------------- CLI
def _run_cli(args) -> int:
    from evaluation.config import ConfigError, load_programmes

    try:
        programmes = load_programmes(args.programmes) if args.programmes else None
    except ConfigError as exc:
        print(f"validate: {exc}", file=sys.stderr)
        return 2
    report = validate_world(args.world, programmes=programmes, extract_date=args.extract_date,
                            allow_extract_date_after_data=args.allow_extract_date_after_data,
                            linked=args.linked or None)
    print(report.to_text())
    if args.show_values and report.problems:
        print("\nValues of the problems above (terminal only; never copy them into a report):", file=sys.stderr)
        for k, p in enumerate(report.problems, 1):
            print(f"  {k}. {p.detail}", file=sys.stderr)
    return 0 if report.ok else 2


def add_cli(subparsers) -> None:
    """Register ``validate``: check a world folder and print a validation report, without building."""
    from evaluation.config import default_world

    p = subparsers.add_parser(
        "validate", help="check a world folder and print a validation report (no build)",
        description="Validate a world's tables and print what was found: tables and rows, records excluded or "
                    "pending, problems (file, column, line numbers). Exit status 0 when valid, 2 when not. "
                    "Identifying values (ids, dates of birth, names) are never printed unless --show-values.")
    p.add_argument("--world", default=str(default_world()), help="world folder (default: %(default)s)")
    p.add_argument("--extract-date", default=None,
                   help="check and use this extract date YYYY-MM-DD (default: meta.json's, else the latest offence "
                        "or disposal date)")
    p.add_argument("--allow-extract-date-after-data", action="store_true",
                   help="accept an extract date after the latest record in the world or after today")
    p.add_argument("--programmes", default=None, help="folder of programme configurations (default: programmes/)")
    p.add_argument("--linked", default=None,
                   help="linkage output folder (`evaluation link`) whose referrals replace the world's")
    p.add_argument("--show-values", action="store_true",
                   help="also print the offending values, identifying ones included, to the terminal (stderr)")
    p.set_defaults(func=_run_cli)


__all__ = ["DataError", "World", "ValidationReport", "load_table", "load_world", "validate_world", "extract_date",
           "check_extract_date", "latest_record_date", "default_cache_dir"]
