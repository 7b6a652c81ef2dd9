"""Load a world's tables and validate them, with errors a researcher can act on.

``load_world(path)`` reads every canonical table of ``data/README.md`` from a folder (``<table>.parquet`` or
``<table>.csv``; parquet wins), parses and types each column, validates it against its pandera schema
(:mod:`evaluation.schemas`), then checks the relations pandera cannot see (dates in order, referrals inside the
programme's dates, one referral per person per programme, everyone known in ``people``).

Every problem raises :class:`DataError` naming the **file**, the **column**, what is wrong, how many rows, and the
first offending rows with their values. Row numbers are **CSV line numbers** (the header is line 1) for CSV files
and **1-based data rows** for parquet files; the message says which. Nothing is dropped silently: records left out
by design (dated after the extract date) are counted in ``World.exclusions``.

Costs: parsing and validation are vectorised. The default synthetic world (≈240,000 offences) loads in about
a second; a national offences parquet (20M rows) in tens of seconds, most of it the uniqueness and cross-table
checks (``validate=False`` skips the checks for trusted, already-validated extracts).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pandera.errors

from evaluation.schemas import COLUMN_KINDS, OPTIONAL_TABLES, REQUIRED_TABLES, SCHEMAS, TABLES

MAX_ROWS_SHOWN = 5
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class DataError(ValueError):
    """A table cannot be used; the message names the file, column, problem and first offending rows."""


# ------------------------------------------------------------------------------------------------- messages
def _row_label(path: Path) -> tuple[str, int]:
    """(word, offset): CSV line numbers (header = line 1) or 1-based parquet data rows."""
    return ("line", 2) if path.suffix == ".csv" else ("row", 1)


def _fail(path: Path, column: str | None, problem: str, positions: np.ndarray, values=None) -> DataError:
    word, offset = _row_label(path)
    positions = np.asarray(positions)
    n = len(positions)
    shown = []
    for k, pos in enumerate(positions[:MAX_ROWS_SHOWN]):
        v = "" if values is None else f" ({values[k]!r})"
        shown.append(f"{word} {int(pos) + offset}{v}")
    more = f" and {n - MAX_ROWS_SHOWN} more" if n > MAX_ROWS_SHOWN else ""
    where = f"column '{column}': " if column else ""
    kind = "CSV line numbers, header = line 1" if word == "line" else "1-based data rows"
    return DataError(f"{path}: {where}{problem} in {n} row(s): {', '.join(shown)}{more} [{kind}]")


# --------------------------------------------------------------------------------------------------- reading
def _find(path: Path, name: str) -> Path | None:
    if path.is_file():
        return path
    for ext in (".parquet", ".csv"):
        p = path / f"{name}{ext}"
        if p.exists():
            return p
    return None


def _read(file: Path) -> pd.DataFrame:
    try:
        if file.suffix == ".parquet":
            return pd.read_parquet(file)
        return pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as exc:  # unreadable file: say which
        raise DataError(f"{file}: cannot be read as {file.suffix[1:]}: {exc}") from None


def _parse(df: pd.DataFrame, name: str, file: Path) -> pd.DataFrame:
    """Type each canonical column; unparseable values are errors naming the rows, never silent NaN."""
    out = df.copy()
    for col, kind in COLUMN_KINDS[name].items():
        if col not in out.columns:
            continue
        s = out[col]
        if kind == "date":
            if pd.api.types.is_datetime64_any_dtype(s):
                parsed = s.astype("datetime64[ns]") if s.dt.tz is None else s.dt.tz_localize(None)
            else:
                text = s.astype("string").str.strip()
                parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
                bad = text.notna() & parsed.isna()
                if bad.any():
                    pos = np.flatnonzero(bad.to_numpy())
                    raise _fail(file, col, "unparseable date (expected YYYY-MM-DD)", pos, text.iloc[pos[:5]].tolist())
            out[col] = parsed.astype("datetime64[ns]")
        elif kind == "bool":
            if pd.api.types.is_bool_dtype(s):
                out[col] = s.astype(bool)
                continue
            text = s.astype("string").str.strip().str.lower()
            val = pd.Series(np.where(text.isin(_TRUE), True, np.where(text.isin(_FALSE), False, None)), index=s.index)
            bad = ~(text.isin(_TRUE) | text.isin(_FALSE))
            if bad.any():
                pos = np.flatnonzero(bad.to_numpy())
                raise _fail(file, col, "wrong type: expected true/false (or 1/0, yes/no)", pos,
                            s.iloc[pos[:5]].tolist())
            out[col] = val.astype(bool)
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
            if isinstance(s.dtype, pd.CategoricalDtype) or not pd.api.types.is_object_dtype(s):
                s = s.astype(object).where(s.notna(), None)
            out[col] = s.map(lambda v: v if v is None or isinstance(v, str) else str(v)) if s.dtype == object else s
    return out


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
        return DataError(f"{file}: column '{col}': wrong type ({first.get('failure_case')}; expected {check})")
    else:
        problem = f"fails check {check}"
    if len(pos) == 0:
        return DataError(f"{file}: column '{col}': {problem}: {values[:5]}")
    return _fail(file, col, problem, pos, values)


def _check_columns(df: pd.DataFrame, name: str, file: Path) -> None:
    expected = list(SCHEMAS[name].columns)
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise DataError(f"{file}: missing column(s) {', '.join(repr(c) for c in missing)} "
                        f"(expected {', '.join(expected)}; found {', '.join(map(str, df.columns))})")
    if len(df) == 0:
        raise DataError(f"{file}: the table '{name}' is empty (no data rows)")


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
    elif name == "referrals":
        _order(df, file, "referral_date", "start_date", "start_date before referral_date")
        _order(df, file, "start_date", "end_date", "end_date before start_date")
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
    elif name == "delivery" and programmes is not None:
        pass  # delivery dates against programme dates are checked by evaluation.delivery, which names the programme


def load_table(path: str | Path, name: str, *, programmes=None, validate: bool = True) -> pd.DataFrame:
    """Read, type and validate one canonical table (``name`` in :data:`evaluation.schemas.TABLES`).

    ``path`` is a world folder (``<name>.parquet`` or ``<name>.csv`` inside) or the file itself. Returns the
    typed DataFrame (dates ``datetime64[ns]``, flags ``bool``, counts ``Int64``); raises :class:`DataError`.
    """
    if name not in SCHEMAS:
        raise DataError(f"unknown table '{name}'; tables are {', '.join(TABLES)}")
    path = Path(path)
    file = _find(path, name)
    if file is None:
        raise DataError(f"{path}: no {name}.parquet or {name}.csv")
    raw = _read(file)
    _check_columns(raw, name, file)
    df = _parse(raw, name, file)
    if validate:
        try:
            df = SCHEMAS[name].validate(df, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            raise _schema_error(exc, file) from None
        except pandera.errors.SchemaError as exc:  # pragma: no cover - lazy=True collects these
            raise DataError(f"{file}: {exc}") from None
        _relations(df, name, file, programmes)
    return df


# ----------------------------------------------------------------------------------------------------- world
@dataclass
class World:
    """A validated world: the canonical tables (optional ones ``None`` when absent) and what was left out."""

    path: Path
    people: pd.DataFrame
    referrals: pd.DataFrame
    contacts: pd.DataFrame
    offences: pd.DataFrame
    custody: pd.DataFrame | None = None
    area_monthly: pd.DataFrame | None = None
    delivery: pd.DataFrame | None = None
    extract_date: dt.date | None = None
    synthetic: bool = False
    meta: dict = field(default_factory=dict)
    exclusions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["table", "reason", "count"]))

    def tables(self) -> dict[str, pd.DataFrame]:
        return {t: getattr(self, t) for t in TABLES if getattr(self, t) is not None}


def _unknown_people(world: World, table: str, people_ids: pd.Index, programmes_file: Path | None) -> None:
    df = getattr(world, table)
    if df is None:
        return
    bad = ~df["person_id"].isin(people_ids).to_numpy()
    if bad.any():
        file = _find(world.path, table) or world.path / table
        pos = np.flatnonzero(bad)
        raise _fail(file, "person_id", "person not in the people table", pos, df["person_id"].iloc[pos[:5]].tolist())


def default_cache_dir() -> Path:
    """Where validated worlds are kept: ``EVALUATION_CACHE`` or ``data/processed/validated`` (git-ignored)."""
    import os

    from evaluation.config import repo_root

    return Path(os.environ.get("EVALUATION_CACHE", repo_root() / "data" / "processed" / "validated"))


def _world_key(path: Path) -> str:
    """Content key of a world as :func:`load_world` would see it: every table file and meta/truth JSON (bytes),
    the programme configs (referral dates are checked against them) and this module and the schemas (a change in
    the rules must re-validate)."""
    import hashlib

    from evaluation import schemas
    from evaluation.config import programmes_dir

    h = hashlib.sha256()
    files = [f for t in TABLES if (f := _find(path, t)) is not None]
    files += [p for p in (path / "meta.json", path / "truth.json") if p.exists()]
    files += sorted(Path(programmes_dir()).glob("*.yaml"))
    files += [Path(__file__), Path(schemas.__file__)]
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    h.update(pd.__version__.encode())
    return h.hexdigest()


def _read_cached(folder: Path) -> World | None:
    try:
        facts = json.loads((folder / "world.json").read_text())
        tables = {t: (pd.read_parquet(folder / f"{t}.parquet") if t in facts["tables"] else None) for t in TABLES}
    except (OSError, ValueError, KeyError):
        return None  # absent, half-written or from another version: validate from the raw files
    extract = dt.date.fromisoformat(facts["extract_date"]) if facts["extract_date"] else None
    return World(path=Path(facts["path"]), extract_date=extract, synthetic=facts["synthetic"], meta=facts["meta"],
                 exclusions=pd.DataFrame(facts["exclusions"], columns=["table", "reason", "count"]), **tables)


def _write_cached(world: World, folder: Path) -> None:
    """Write the validated tables as parquet; atomic (a folder renamed into place), so parallel report builds
    either see a complete cache or none. Older caches of the same world folder are removed."""
    import os
    import shutil
    import tempfile

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        present = list(world.tables())
        for t in present:
            getattr(world, t).to_parquet(tmp / f"{t}.parquet", index=False)
        facts = {"path": str(world.path), "extract_date": world.extract_date.isoformat() if world.extract_date else None,
                 "synthetic": world.synthetic, "meta": world.meta, "tables": present,
                 "exclusions": world.exclusions.to_dict("records")}
        (tmp / "world.json").write_text(json.dumps(facts, default=str))
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


def load_world(path: str | Path, *, programmes=None, tables: Iterable[str] | None = None,
               validate: bool = True, cache: bool | str | Path = False) -> World:
    """Load and validate every table of a world folder (see the module docstring).

    ``extract_date`` comes from ``meta.json`` (key ``extract_date``) when present, else it is the latest date in
    the offences table (offence or disposal date). Records dated after the extract date are left out and counted
    in ``exclusions``. ``synthetic`` is true for worlds written by :mod:`evaluation.synth`.

    ``cache`` (``True`` for :func:`default_cache_dir`, or a folder) keeps the validated world as parquet under a
    key of its content (raw files, programme configs, validation rules; see :func:`_world_key`), so the next load
    of an unchanged world reads typed parquet instead of parsing and validating again (the default synthetic world:
    about 2.5 s → 0.3 s; every report build loads it). Any change to a raw file re-validates. Used only for a
    full, validated load with the default programme configs.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such world folder (make synth writes data/raw/synthetic; real extracts are "
                        "named with --world or EVALUATION_WORLD)")
    if cache is not False and cache is not None and validate and tables is None and programmes is None:
        folder = (default_cache_dir() if cache is True else Path(cache)) / f"{path.resolve().name}-{_world_key(path)[:20]}"
        world = _read_cached(folder)
        if world is None:
            world = load_world(path)
            _write_cached(world, folder)
        world.path = path
        return world
    wanted = list(tables) if tables is not None else list(TABLES)
    loaded: dict[str, pd.DataFrame | None] = {}
    for name in wanted:
        if _find(path, name) is None:
            if name in REQUIRED_TABLES:
                raise DataError(f"{path}: missing required table '{name}' ({name}.csv or {name}.parquet)")
            loaded[name] = None
            continue
        loaded[name] = load_table(path, name, programmes=programmes, validate=validate)
    meta = {}
    if (path / "meta.json").exists():
        try:
            meta = json.loads((path / "meta.json").read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{path / 'meta.json'}: not valid JSON: {exc}") from None
    if meta.get("extract_date"):
        try:
            extract = dt.date.fromisoformat(str(meta["extract_date"]))
        except ValueError:
            raise DataError(f"{path / 'meta.json'}: key 'extract_date': '{meta['extract_date']}' is not a date "
                            "(YYYY-MM-DD)") from None
    elif loaded.get("offences") is not None:
        off = loaded["offences"]
        extract = max(off["offence_date"].max(), off["disposal_date"].max()).date()
    else:
        extract = None
    world = World(path=path, extract_date=extract, synthetic=bool(meta.get("generator_version"))
                  or (path / "truth.json").exists(), meta=meta,
                  **{t: loaded.get(t) for t in TABLES if t in REQUIRED_TABLES or t in loaded},
                  **{t: None for t in REQUIRED_TABLES if t not in loaded})
    if validate and world.people is not None:
        ids = pd.Index(world.people["person_id"])
        for table in ("referrals", "contacts", "offences", "custody"):
            _unknown_people(world, table, ids, None)
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
