"""MoJ proven reoffending: binary, frequency and days to first proven reoffence, one row per person.

Definition (``/work/shared/EVALUATION-NOTES.md``; the Ministry of Justice proven-reoffending measure)
-------------------------------------------------------------------------------------------------------
For each person of a cohort, with an index date ``I``:

* **follow-up end** ``F = I + follow_up_months`` calendar months (default 12);
* an offence counts when it was committed **strictly after** ``I`` and **on or before** ``F``
  (an offence on the index day is not counted; one on ``F`` is);
* and it is **proven**: its disposal is a counted disposal (conviction, caution, reprimand, warning, youth caution,
  youth conditional caution) given **on or before** ``W = F + waiting_months`` calendar months (default 6).
  Penalty notices, community resolutions, NFA and pending cases (no disposal date) never count;
* a person is **eligible** only when the waiting period has ended by the data extract date (``W <= extract_date``);
  the others are kept, flagged ``eligible = False`` with ``exclusion_reason = 'waiting period not ended by extract
  date'`` and have missing outcomes (never dropped silently).

Calendar-month arithmetic (the convention used everywhere in this module): add the months to the year/month and
keep the day of month, clipped to the last day of the target month -- ``2019-01-31 + 1 month = 2019-02-28``,
``2020-02-29 + 12 months = 2021-02-28``, ``2019-02-28 + 12 months = 2020-02-28``,
``2019-03-31 + 12 months = 2020-03-31``. This is what ``pandas.DateOffset(months=k)`` and R lubridate's
``%m+%`` do. The waiting period is added to the follow-up end, not to the index date (``W = (I + 12m) + 6m``,
which differs from ``I + 18m`` only for month-end index dates such as 2020-02-29: W = 2021-08-28, not 08-29).

Measures (columns of :func:`proven_reoffending`):

* ``reoffended`` -- 0/1 (pandas nullable ``Int64``; ``<NA>`` when not eligible);
* ``reoffence_count`` -- number of proven reoffences (offence records) in the follow-up (``Int64``; ``<NA>`` when not
  eligible);
* ``days_to_first`` -- days from the index date to the first proven reoffence (float, days; ``NaN`` for
  non-reoffenders and for people not eligible, as the Justice Data Lab reports it). For survival analysis use
  :func:`survival_view`, which censors non-reoffenders at the follow-up end.

Speed: the derivation never materialises the cohort x offences join. Person ids are looked up in a hash table of
the cohort's ids built once (a numba kernel reading the Arrow string buffers directly), and one pass over the offence
records updates per-person counters, so memory is O(cohort) beyond the inputs. See ``benchmarks/outcomes.py``.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

try:  # the canonical list lives with the schemas when that module exists
    from evaluation.schemas import COUNTED_DISPOSALS as _SCHEMA_COUNTED
except Exception:  # pragma: no cover - depends on the schemas module being present
    _SCHEMA_COUNTED = None

#: Disposals that make an offence "proven" (MoJ definition). Taken from :mod:`evaluation.schemas` when it defines
#: ``COUNTED_DISPOSALS``; otherwise defined here with the same values as ``data/README.md``.
COUNTED_DISPOSALS: tuple[str, ...] = tuple(_SCHEMA_COUNTED) if _SCHEMA_COUNTED else (
    "conviction", "caution", "reprimand", "warning", "youth_caution", "youth_conditional_caution")
NOT_COUNTED_DISPOSALS: tuple[str, ...] = ("penalty_notice", "community_resolution", "nfa", "pending")

WAITING_NOT_ENDED = "waiting period not ended by extract date"
OUTCOME_COLUMNS = ["person_id", "eligible", "exclusion_reason", "reoffended", "reoffence_count", "days_to_first"]

_NS_PER_DAY = 86_400 * 10**9
_EPOCH = np.datetime64("1970-01-01", "D")
_NAT = np.iinfo(np.int64).min


class OutcomeInputError(ValueError):
    """Bad input to an outcome function; the message names the argument, the column and the first rows."""


# ---------------------------------------------------------------------------------------------------------------
# calendar months and input checks
# ---------------------------------------------------------------------------------------------------------------
def add_months(days: np.ndarray, months: int) -> np.ndarray:
    """Add calendar months to dates given as int days since 1970-01-01 (day of month clipped to the month's end).

    Same result as ``pandas.DateOffset(months=months)`` and R lubridate ``%m+%``:
    ``2019-01-31 + 1 = 2019-02-28``; ``2020-02-29 + 12 = 2021-02-28``.
    """
    d = (np.asarray(days, dtype=np.int64) + _EPOCH.astype(np.int64)).astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    dom = (d - m.astype("datetime64[D]")).astype(np.int64)  # 0-based day of month
    m2 = m + np.timedelta64(int(months), "M")
    month_len = ((m2 + np.timedelta64(1, "M")).astype("datetime64[D]") - m2.astype("datetime64[D]")).astype(np.int64)
    out = m2.astype("datetime64[D]") + np.minimum(dom, month_len - 1).astype("timedelta64[D]")
    return (out - _EPOCH).astype(np.int64)


def _rows(index: pd.Index, bad: np.ndarray, values=None, limit: int = 5) -> str:
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


def _check_cohort(cohort: pd.DataFrame, arg: str = "cohort") -> np.ndarray:
    """Check the cohort; return index days (int64 days since the epoch)."""
    _require(cohort, arg, ["person_id", "index_date"])
    pid = cohort["person_id"]
    missing = pid.isna().to_numpy()
    if missing.any():
        raise OutcomeInputError(f"{arg}: column 'person_id' is missing in {_rows(cohort.index, missing)}")
    return _to_day(_date_ns(cohort["index_date"], arg, "index_date", allow_missing=False))


def _counted_codes(offences: pd.DataFrame, counted_disposals, arg: str = "offences") -> tuple[np.ndarray, np.ndarray]:
    """(integer codes per row, -1 for missing; lookup bool per code) for the disposal types."""
    counted = tuple(COUNTED_DISPOSALS if counted_disposals is None else counted_disposals)
    s = offences["disposal_type"]
    if isinstance(s.dtype, pd.CategoricalDtype):
        cat = s.array
    else:
        cat = pd.Categorical(s)
    cats = np.asarray(cat.categories, dtype=object)
    known = set(COUNTED_DISPOSALS) | set(NOT_COUNTED_DISPOSALS) | set(counted)
    unknown = [c for c in cats if c not in known]
    if unknown:  # only categories that occur are errors
        present = np.bincount(cat.codes[cat.codes >= 0], minlength=len(cats)) > 0
        unknown = [c for c, p in zip(cats, present) if p and c not in known]
    if unknown:
        bad = np.isin(cat.codes, [list(cats).index(u) for u in unknown])
        raise OutcomeInputError(
            f"{arg}: column 'disposal_type' has unknown disposal(s) {unknown}; expected one of "
            f"{sorted(known)}: {_rows(offences.index, bad, s.to_numpy())}")
    lut = np.array([c in counted for c in cats], dtype=np.bool_)
    return np.asarray(cat.codes), lut


# ---------------------------------------------------------------------------------------------------------------
# person-id lookup on Arrow string buffers
# ---------------------------------------------------------------------------------------------------------------
def _arrow_chunks(s: pd.Series, arg: str, col: str) -> list[pa.Array]:
    """The column as a list of Arrow (large_)string arrays, zero-copy for Arrow-backed strings."""
    arr = s.array
    try:
        if hasattr(arr, "__arrow_array__") and not pd.api.types.is_numeric_dtype(s.dtype):
            chunked = arr.__arrow_array__()
        else:
            chunked = pa.chunked_array([pa.array(s.astype(str) if not pd.api.types.is_string_dtype(s.dtype)
                                                 else s.to_numpy(dtype=object), from_pandas=True)])
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        chunked = pa.chunked_array([pa.array(s.astype(str).to_numpy(dtype=object), from_pandas=True)])
    if isinstance(chunked, pa.Array):
        chunked = pa.chunked_array([chunked])
    if not (pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type)):
        chunked = chunked.cast(pa.large_string())
    return [c for c in chunked.chunks if len(c)]


def _buffers(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    bufs = a.buffers()
    off_t = np.int32 if pa.types.is_string(a.type) else np.int64
    offs = np.frombuffer(bufs[1], dtype=off_t)[a.offset: a.offset + len(a) + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return offs, data


try:
    import numba

    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency; the numpy engine is the fallback
    _HAVE_NUMBA = False


if _HAVE_NUMBA:
    @numba.njit(cache=True, inline="always")
    def _key(data, start, end, exact):  # pragma: no cover - compiled
        """64-bit key of one id. exact: the bytes themselves (len <= 7: bytes + length in the top byte; len 8: the
        8 bytes), unique per id; ids that cannot be keyed exactly give -1 (looked up as "not in the cohort", which is
        right because the cohort only uses exact mode when none of its ids is like that). Otherwise a 63-bit hash
        (FNV-1a + splitmix64 finaliser) that is verified against the id's bytes."""
        n = end - start
        if exact:
            if n > 8 or (n == 8 and data[end - 1] < 8):
                return np.int64(-1)
            k = np.uint64(0)
            for b in range(n):
                k |= np.uint64(data[start + b]) << np.uint64(8 * b)
            if n < 8:
                k |= np.uint64(n) << np.uint64(56)
            return np.int64(k)
        h = np.uint64(14695981039346656037)
        for b in range(start, end):
            h = (h ^ np.uint64(data[b])) * np.uint64(1099511628211)
        return np.int64(h & np.uint64(0x7FFFFFFFFFFFFFFF))  # never -1

    @numba.njit(cache=True, inline="always")
    def _slot(key, mask):  # pragma: no cover - compiled
        # mix all 64 bits (splitmix64 finaliser), then take the low bits
        h = np.uint64(key)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
        return np.int64(h & np.uint64(mask))

    @numba.njit(cache=True, inline="always")
    def _same(a, s1, e1, b, s2, e2):  # pragma: no cover - compiled
        if e1 - s1 != e2 - s2:
            return False
        for k in range(e1 - s1):
            if a[s1 + k] != b[s2 + k]:
                return False
        return True

    @numba.njit(cache=True)
    def _build_table(offs, data, exact, size, rel_day):  # pragma: no cover - compiled
        """Open-addressing table of the cohort ids, 16 bytes per slot so that a lookup touches one cache line:
        [key, cohort row << 32 | (index day - first index day)]; -1 marks an empty slot.
        Returns (table, first duplicate row or -1)."""
        table = np.full((size, 2), -1, np.int64)
        mask = size - 1
        for j in range(offs.size - 1):
            s = np.int64(offs[j])
            e = np.int64(offs[j + 1])
            key = _key(data, s, e, exact)
            pos = _slot(key, mask)
            while True:
                v = table[pos, 1]
                if v == -1:
                    table[pos, 0] = key
                    table[pos, 1] = (np.int64(j) << 32) | np.int64(rel_day[j])
                    break
                t = v >> 32
                if table[pos, 0] == key and (exact or _same(data, s, e, data, np.int64(offs[t]),
                                                            np.int64(offs[t + 1]))):
                    return table, j
                pos = (pos + 1) & mask
        return table, -1

    @numba.njit(cache=True, inline="always")
    def _find(table, key, data, s, e, c_offs, c_data, exact):  # pragma: no cover - compiled
        """The slot's packed value (row << 32 | relative index day), or -1 when the id is not in the cohort."""
        mask = table.shape[0] - 1
        pos = _slot(key, mask)
        while True:
            v = table[pos, 1]
            if v == -1:
                return v
            if table[pos, 0] == key:
                if exact:
                    return v
                t = v >> 32
                if _same(data, s, e, c_data, np.int64(c_offs[t]), np.int64(c_offs[t + 1])):
                    return v
            pos = (pos + 1) & mask

    @numba.njit(cache=True)
    def _lookup(offs, data, table, c_offs, c_data, exact):  # pragma: no cover - compiled
        n = offs.size - 1
        out = np.empty(n, np.int64)
        for i in range(n):
            s = np.int64(offs[i])
            e = np.int64(offs[i + 1])
            key = _key(data, s, e, exact)
            v = -1 if key == -1 else _find(table, key, data, s, e, c_offs, c_data, exact)
            out[i] = -1 if v < 0 else v >> 32
        return out

    @numba.njit(cache=True, parallel=True)
    def _scan(offs, data, od, dd, code, lut, table, c_offs, c_data, exact, base, fu_lut, we_lut,
              lo_day, hi_day, we_max, acc):  # pragma: no cover - compiled
        """One pass over offence records, split in acc.shape[0] blocks run in parallel; acc[block, person] =
        (count, first day) updated in place. Each block goes through the rows in batches of 512: (1) the cheap
        disposal/date filters and the id's key and home slot, streaming; (2) the hash-table probes, a short loop whose
        iterations are independent so the CPU overlaps their cache misses (this halves the time against probing
        row by row); (3) the person's window test (follow-up and waiting ends from small look-up tables indexed by
        index day) and the counter update."""
        nat = np.iinfo(np.int64).min
        ns = np.int64(86_400_000_000_000)
        nb = acc.shape[0]
        n = od.size
        step = (n + nb - 1) // nb
        B = 512
        mask = table.shape[0] - 1
        for b in numba.prange(nb):
            ks = np.empty(B, np.int64)
            ps = np.empty(B, np.int64)
            ods = np.empty(B, np.int64)
            dds = np.empty(B, np.int64)
            ss = np.empty(B, np.int64)
            es = np.empty(B, np.int64)
            vs = np.empty(B, np.int64)
            lo = b * step
            hi = min(n, (b + 1) * step)
            i = lo
            while i < hi:
                m = 0
                end = min(hi, i + B)
                for r in range(i, end):
                    c = code[r]
                    if c < 0 or not lut[c]:
                        continue
                    dv = dd[r]
                    ov = od[r]
                    if dv == nat or ov == nat:
                        continue
                    oday = ov // ns
                    if oday <= lo_day or oday > hi_day:
                        continue
                    dday = dv // ns
                    if dday > we_max:
                        continue
                    s = np.int64(offs[r])
                    e = np.int64(offs[r + 1])
                    key = _key(data, s, e, exact)
                    if key == -1:
                        continue
                    ks[m] = key
                    ps[m] = _slot(key, mask)
                    ods[m] = oday
                    dds[m] = dday
                    ss[m] = s
                    es[m] = e
                    m += 1
                i = end
                # probe: short independent iterations so that the cache misses overlap
                for k in range(m):
                    pos = ps[k]
                    key = ks[k]
                    v = np.int64(-1)
                    while True:
                        t = table[pos, 1]
                        if t == -1:
                            break
                        if table[pos, 0] == key:
                            row = t >> 32
                            if exact or _same(data, ss[k], es[k], c_data, np.int64(c_offs[row]),
                                              np.int64(c_offs[row + 1])):
                                v = t
                                break
                        pos = (pos + 1) & mask
                    vs[k] = v
                for k in range(m):
                    v = vs[k]
                    if v < 0:
                        continue
                    rel = v & 0xFFFFFFFF
                    oday = ods[k]
                    if oday > base + rel and oday <= fu_lut[rel] and dds[k] <= we_lut[rel]:
                        j = v >> 32
                        acc[b, j, 0] += 1
                        if oday < acc[b, j, 1]:
                            acc[b, j, 1] = oday


class _IdTable:
    """The cohort's person ids as a hash table (numba engine) or a pandas Index (numpy engine).

    ``rel_day`` (numba engine): each person's index day minus the earliest index day (0 .. 2**32 - 1)."""

    def __init__(self, cohort_ids: pd.Series, engine: str, rel_day=None):
        self.engine = engine
        if engine == "numba":
            n = len(cohort_ids)
            rel_day = np.zeros(n, np.int64) if rel_day is None else rel_day
            chunks = _arrow_chunks(cohort_ids, "cohort", "person_id")
            a = pa.concat_arrays([c.cast(pa.large_string()) for c in chunks]) if chunks else pa.array(
                [], pa.large_string())
            self.c_offs, self.c_data = _buffers(a)
            lengths = np.diff(self.c_offs)
            # exact keys when every id is at most 8 bytes (and an 8-byte id does not end in a byte < 8)
            last = self.c_data[self.c_offs[1:][lengths == 8] - 1] if (lengths == 8).any() else np.zeros(0, np.uint8)
            self.exact = bool(n == 0 or (lengths.max() <= 8 and not (last < 8).any()))
            size = 1 << max(4, int(2 * max(n, 1) - 1).bit_length())
            self.table, self.duplicate = _build_table(self.c_offs, self.c_data, self.exact, size, rel_day)
        else:
            self.index = pd.Index(cohort_ids.astype(str).to_numpy(dtype=object))
            self.duplicate = -1 if self.index.is_unique else 0

    def positions(self, ids: pd.Series) -> np.ndarray:
        """Cohort row of each id (-1 when not in the cohort)."""
        if self.engine == "numba":
            out = [np.zeros(0, np.int64)]
            for chunk in _arrow_chunks(ids, "offences", "person_id"):
                offs, data = _buffers(chunk)
                out.append(_lookup(offs, data, self.table, self.c_offs, self.c_data, self.exact))
            return np.concatenate(out)
        return self.index.get_indexer(ids.astype(str).to_numpy(dtype=object))


def _engine(engine: str) -> str:
    if engine == "auto":
        return "numba" if _HAVE_NUMBA else "numpy"
    if engine not in ("numba", "numpy"):
        raise OutcomeInputError(f"engine: must be 'auto', 'numba' or 'numpy', got {engine!r}")
    if engine == "numba" and not _HAVE_NUMBA:  # pragma: no cover
        raise OutcomeInputError("engine: 'numba' requested but numba is not installed")
    return engine


# ---------------------------------------------------------------------------------------------------------------
# the measure
# ---------------------------------------------------------------------------------------------------------------
def _windows(index_day: np.ndarray, follow_up_months: int, waiting_months: int):
    """(relative index day, follow-up end day, waiting end day, base, fu_lut, we_lut) per person.

    Month arithmetic is done once per distinct calendar day in the index-date range (look-up tables ``fu_lut``,
    ``we_lut`` indexed by ``index day - base``), not once per person."""
    for name, v in (("follow_up_months", follow_up_months), ("waiting_months", waiting_months)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
            raise OutcomeInputError(f"{name}: must be a whole number of months >= 0, got {v!r}")
    if index_day.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, 0, np.zeros(1, np.int64), np.zeros(1, np.int64)
    base = int(index_day.min())
    rel = index_day - base
    fu_lut = add_months(np.arange(base, int(index_day.max()) + 1, dtype=np.int64), int(follow_up_months))
    we_lut = add_months(fu_lut, int(waiting_months))
    return rel, fu_lut[rel], we_lut[rel], base, fu_lut, we_lut


def _duplicates_error(cohort: pd.DataFrame, arg: str = "cohort") -> OutcomeInputError:
    pid = cohort["person_id"]
    dup = pid.duplicated(keep=False).to_numpy()
    return OutcomeInputError(
        f"{arg}: column 'person_id' has duplicate people (one index date per person): "
        f"{_rows(cohort.index, dup, pid.to_numpy())}")


def _counts(cohort: pd.DataFrame, offences: pd.DataFrame, index_day: np.ndarray, win, counted_disposals,
            engine: str) -> tuple[np.ndarray, np.ndarray]:
    """(count, first day) of proven offences in each person's window; first = int64 max when none.

    Raises for duplicate people in the cohort (the numba engine finds them while building its table)."""
    _require(offences, "offences", ["person_id", "offence_date", "disposal_date", "disposal_type"])
    rel, fu, we, base, fu_lut, we_lut = win
    n = len(cohort)
    count = np.zeros(n, np.int64)
    first = np.full(n, np.iinfo(np.int64).max, np.int64)
    table = _IdTable(cohort["person_id"], engine, rel) if n else None
    if table is not None and table.duplicate >= 0:
        raise _duplicates_error(cohort)
    if n == 0 or len(offences) == 0:
        return count, first
    nulls = getattr(offences["person_id"].array, "_pa_array", None)
    if nulls is None or nulls.null_count:
        missing = offences["person_id"].isna().to_numpy()
        if missing.any():
            raise OutcomeInputError(f"offences: column 'person_id' is missing in {_rows(offences.index, missing)}")
    od = _date_ns(offences["offence_date"], "offences", "offence_date", allow_missing=False)
    dd = _date_ns(offences["disposal_date"], "offences", "disposal_date", allow_missing=True)
    code, lut = _counted_codes(offences, counted_disposals)
    lo_day, hi_day, we_max = int(index_day.min()), int(fu.max()), int(we.max())
    if engine == "numba":
        blocks = max(1, min(numba.get_num_threads(), 8))
        acc = np.zeros((blocks, n, 2), np.int64)
        acc[:, :, 1] = np.iinfo(np.int64).max
        start = 0
        for chunk in _arrow_chunks(offences["person_id"], "offences", "person_id"):
            offs, data = _buffers(chunk)
            stop = start + len(chunk)
            _scan(offs, data, od[start:stop], dd[start:stop], code[start:stop], lut, table.table,
                  table.c_offs, table.c_data, table.exact, base, fu_lut, we_lut, lo_day, hi_day, we_max, acc)
            start = stop
        return acc[:, :, 0].sum(axis=0), acc[:, :, 1].min(axis=0)
    # numpy engine: the same filters, vectorised; then a per-person reduction
    keep = lut[np.maximum(code, 0)] & (code >= 0) & (dd != _NAT)
    rows = np.flatnonzero(keep)
    oday = od[rows] // _NS_PER_DAY
    dday = dd[rows] // _NS_PER_DAY
    ok = (oday > lo_day) & (oday <= hi_day) & (dday <= we_max)
    rows, oday, dday = rows[ok], oday[ok], dday[ok]
    j = table.positions(offences["person_id"].iloc[rows])
    ok = j >= 0
    j, oday, dday = j[ok], oday[ok], dday[ok]
    ok = (oday > index_day[j]) & (oday <= fu[j]) & (dday <= we[j])
    j, oday = j[ok], oday[ok]
    count = np.bincount(j, minlength=n).astype(np.int64)
    np.minimum.at(first, j, oday)
    return count, first


def _derive(cohort, offences, extract_date, follow_up_months, waiting_months, counted_disposals, engine):
    engine = _engine(engine)
    index_day = _check_cohort(cohort)
    win = _windows(index_day, follow_up_months, waiting_months)
    eligible = win[2] <= _extract_day(extract_date)
    count, first = _counts(cohort, offences, index_day, win, counted_disposals, engine)
    return index_day, win, eligible, count, first


def proven_reoffending(cohort: pd.DataFrame, offences: pd.DataFrame, *, extract_date, follow_up_months: int = 12,
                       waiting_months: int = 6, counted_disposals: Sequence[str] | None = None,
                       engine: str = "auto") -> pd.DataFrame:
    """One-year proven reoffending for each person of ``cohort`` (MoJ definition; see the module docstring).

    Parameters
    ----------
    cohort : DataFrame with ``person_id`` (unique) and ``index_date`` (dates). Other columns are ignored.
    offences : DataFrame with the canonical offences columns ``person_id``, ``offence_date``, ``disposal_date``
        (missing while pending) and ``disposal_type``. Offences of people not in the cohort are ignored.
    extract_date : date the data were extracted; people whose waiting period ends after it are not eligible.
    follow_up_months, waiting_months : calendar months (defaults 12 and 6).
    counted_disposals : disposal types that make an offence proven (default :data:`COUNTED_DISPOSALS`).
    engine : ``'auto'`` (numba when installed), ``'numba'`` or ``'numpy'`` (vectorised, slower on big tables).

    Returns
    -------
    DataFrame with the cohort's index and order: ``person_id``, ``eligible`` (bool), ``exclusion_reason`` (string,
    categorical, ``NaN`` when eligible), ``reoffended`` (Int64 0/1), ``reoffence_count`` (Int64, offence records),
    ``days_to_first`` (float days; NaN for non-reoffenders and ineligible people).

    Raises
    ------
    OutcomeInputError (a ValueError) naming the argument, column and first rows for missing columns, duplicate
    or missing people in the cohort, and dates that cannot be parsed.
    """
    index_day, _, eligible, count, first = _derive(cohort, offences, extract_date, follow_up_months,
                                                   waiting_months, counted_disposals, engine)
    return _assemble(cohort, eligible, count, first, index_day)


def _assemble(cohort, eligible, count, first, index_day) -> pd.DataFrame:
    n = len(cohort)
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


def survival_view(cohort: pd.DataFrame, offences: pd.DataFrame, *, extract_date, follow_up_months: int = 12,
                  waiting_months: int = 6, counted_disposals: Sequence[str] | None = None,
                  custody: pd.DataFrame | None = None, engine: str = "auto") -> pd.DataFrame:
    """Time to first proven reoffence for survival analysis, for the **eligible** people of ``cohort``.

    Returns ``person_id``, ``duration`` (days from the index date, int) and ``event`` (1 = proven reoffence).
    Reoffenders: duration = days to the first proven reoffence, event 1. Non-reoffenders: censored (event 0) at the
    follow-up end (365 or 366 days for 12 months, calendar-month arithmetic). With ``custody`` (columns
    ``person_id``, ``custody_start``), a person is censored at the first custody start strictly after the index date
    and on or before the follow-up end when that comes before the first proven reoffence (an offence dated on the
    custody start day is still counted: it usually is why the person went into custody); custody that began on or
    before the index date is ignored. People not eligible (waiting period not ended by the extract date) are left
    out of this view; their number is in ``result.attrs['excluded']`` and they are listed by
    :func:`proven_reoffending`.
    """
    index_day, win, eligible, count, first = _derive(cohort, offences, extract_date, follow_up_months,
                                                     waiting_months, counted_disposals, engine)
    fu = win[1]
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
    event = (count > 0) & (first <= censor)
    duration = np.where(event, first, censor) - index_day
    out = pd.DataFrame({"person_id": cohort["person_id"].to_numpy(), "duration": duration.astype(np.int64),
                        "event": event.astype(np.int64)}, index=cohort.index)[eligible]
    out.attrs["excluded"] = {WAITING_NOT_ENDED: int((~eligible).sum())}
    return out


def first_time_entry(cohort: pd.DataFrame, offences: pd.DataFrame, *, extract_date, follow_up_months: int = 12,
                     waiting_months: int = 6, counted_disposals: Sequence[str] | None = None,
                     engine: str = "auto") -> pd.DataFrame:
    """Proven (re)offending for children at risk, with a flag for people with no record before the index date.

    The measure is the same as :func:`proven_reoffending` (for someone with no record it counts *first* proven
    offending). Added columns: ``no_prior_record`` (bool: no offence record of any disposal dated strictly before
    the index date) and ``first_time_entrant`` (Int64 0/1: no prior record and a proven offence in the follow-up;
    ``<NA>`` when not eligible).
    """
    out = proven_reoffending(cohort, offences, extract_date=extract_date, follow_up_months=follow_up_months,
                             waiting_months=waiting_months, counted_disposals=counted_disposals, engine=engine)
    index_day = _check_cohort(cohort)
    prior = np.zeros(len(cohort), dtype=bool)
    if len(offences) and len(cohort):
        od = _to_day(_date_ns(offences["offence_date"], "offences", "offence_date", allow_missing=False))
        pos = pd.Index(cohort["person_id"].astype(str).to_numpy(dtype=object)).get_indexer(
            offences["person_id"].astype(str).to_numpy(dtype=object))
        ok = pos >= 0
        prior[pos[ok][od[ok] < index_day[pos[ok]]]] = True
    out["no_prior_record"] = ~prior
    fte = out["reoffended"].astype("Int64") * out["no_prior_record"].astype(np.int64)
    out["first_time_entrant"] = fte.astype("Int64")
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
# CLI: python -m evaluation outcomes
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


def _world_extract_date(world, path=None) -> dt.date:
    """The extract date: ``world.extract_date`` when the loader provides it, else ``extract_date`` in the world's
    ``meta.json``, else the latest date in the offences, contacts and referrals tables (a lower bound)."""
    value = getattr(world, "extract_date", None)
    if value is not None:
        return pd.Timestamp(value).date()
    if path is not None:
        import json
        from pathlib import Path

        meta = Path(path) / "meta.json"
        if meta.exists():
            value = json.loads(meta.read_text()).get("extract_date")
            if value:
                return pd.Timestamp(value).date()
    latest = []
    for table, cols in (("offences", ("offence_date", "disposal_date")), ("contacts", ("contact_date",)),
                        ("referrals", ("referral_date", "start_date", "end_date"))):
        df = getattr(world, table, None)
        if df is None:
            continue
        for c in cols:
            if c in df.columns and df[c].notna().any():
                latest.append(pd.to_datetime(df[c]).max())
    if not latest:
        raise OutcomeInputError("world: cannot tell the extract date (no dated records); pass --extract-date")
    return max(latest).date()


def _run_cli(args) -> int:
    from evaluation.cohort import build_cohort
    from evaluation.config import load_programmes
    from evaluation.validate import load_world

    world = load_world(args.world)
    extract = pd.Timestamp(args.extract_date).date() if args.extract_date else _world_extract_date(world, args.world)
    programmes = load_programmes()
    wanted = [args.programme] if args.programme else [p for p, c in programmes.items() if c.is_individual]
    print(f"World: {args.world}   extract date: {extract}")
    for pid in wanted:
        prog = programmes[pid]
        cohort = build_cohort(world, prog)
        data = cohort.data
        oc = prog.outcome
        res = proven_reoffending(data[["person_id", "index_date"]], world.offences, extract_date=extract,
                                 follow_up_months=oc["follow_up_months"], waiting_months=oc["waiting_months"])
        print(f"\n{prog.name} ({pid}) — one-year proven reoffending, participants vs comparison pool "
              f"(before matching); counts 1–{prog.disclosure_threshold - 1} shown as <{prog.disclosure_threshold}")
        print(headline_table(res, data["treat"].to_numpy(), threshold=prog.disclosure_threshold).to_string())
    return 0


def add_cli(subparsers) -> None:
    """Register ``outcomes``: headline proven-reoffending tables for each individual programme of a world."""
    from evaluation.config import PROGRAMME_IDS, default_world

    p = subparsers.add_parser("outcomes", help="print headline proven-reoffending tables for each programme",
                              description=add_cli.__doc__)
    p.add_argument("--world", default=str(default_world()), help="world folder (default: %(default)s)")
    p.add_argument("--programme", choices=PROGRAMME_IDS, default=None, help="one programme only")
    p.add_argument("--extract-date", default=None,
                   help="data extract date YYYY-MM-DD (default: the world's, else its latest record date)")
    p.set_defaults(func=_run_cli)


__all__ = ["COUNTED_DISPOSALS", "NOT_COUNTED_DISPOSALS", "WAITING_NOT_ENDED", "OutcomeInputError", "add_months",
           "proven_reoffending", "survival_view", "first_time_entry", "summarise", "headline_table", "add_cli"]
