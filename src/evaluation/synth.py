"""The synthetic world: embedded default data with known true effects.

Two entry points:

* :func:`generate_world` builds a linked, realistic world for all nine programmes (people, referrals, police
  contacts, offences, custody, ADDER area series and delivery logs, in the canonical schema of
  ``data/README.md``) plus ``truth.json`` with the true effects used, deterministic per seed.
* :func:`national_tables` builds national-size ``(cohort, offences)`` tables in memory for benchmarks.

Conventions: dates are ``datetime64[ns]`` at midnight; lags and windows are in days unless said otherwise;
hazard ratios act on the daily hazard of committing an offence (and so of a proven one) and are conditional on
the person-level rate.

Model (one place to read it):

* Each person offends as a Poisson process with yearly rate
  ``exp(mu + sd*z + b_male*male + b_drug*drug_misuse + b_young*(min(age,18)-14) + b_old*(max(age,18)-18))``
  (``_RATE``), ``age`` the person's age on the day (rising to 18, then falling; simulated by thinning draws at the
  peak rate), from their 10th birthday (or 2010-01-01) to the extract date (``EXTRACT_DATE`` = 2024-12-31).
  ``z`` is latent; drug misuse is drawn independently of ``z``. The model is the same for every population and
  follows age, so the only confounders are observables at the index date (see ``_RATE``).
* Comparison pools (``POOL_SIZES`` x scale) come from police records: each person has police contacts in the
  programme windows; their first contact is their reference date.
* Programme participants: ``_CANDIDATES_PER_PLACE`` candidates per place are drawn from the target group
  (ages, districts, sex, dates from ``programmes/*.yaml``); their history up to the index date is
  simulated; places go to a risk-weighted draw (Gumbel top-k) on observables at the index date — log(1 + proven
  offences in the 2 years before), drug misuse, age, sex — so selection is on observables only: matching on them
  removes the bias, a naive comparison does not. After the index date the rate is multiplied by the programme's
  hazard ratio (by completion status; WONDER+ completers are a lower-risk selected subgroup with a larger effect).
* Disposals: type by age (youth disposals under 18) and offence group; log-normal lags by type (days for
  penalty notices and community resolutions, months for convictions); pending when the disposal would fall after
  the extract date. Custody follows some adult convictions, ends before the next offence and the reference date.
* truth.json: per programme the hazard ratio(s), and by simulation (400 replicates per participant, common random
  numbers) the one-year proven (re)offending risk with and without the programme among those with an index date,
  its difference (ATT risk difference), ratio and the implied marginal cumulative-hazard ratio; overall and by
  completion status. ``project-adder``: the level (log rate ratio) and slope (log per month) changes in Greater
  Norwich from 2021-01 for each area measure.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

GENERATOR_VERSION = "1.0.0"

from evaluation.schemas import OFFENCE_GROUPS  # noqa: E402 - the code list is defined once, in schemas
# Rough shares of recorded offences by group (police recorded crime, offender-linked), sum to 1.
_GROUP_P = np.array([0.12, 0.14, 0.02, 0.02, 0.05, 0.20, 0.04, 0.09, 0.01, 0.09, 0.03, 0.08, 0.03, 0.03, 0.04])
_GROUP_P = _GROUP_P / _GROUP_P.sum()
from evaluation.schemas import COUNTED_DISPOSALS, DISPOSAL_TYPES, NOT_COUNTED_DISPOSALS  # noqa: E402
# Adult disposals (reprimands/warnings/youth cautions are for under-18s).
_DISP_ADULT_P = np.array([0.46, 0.14, 0.0, 0.0, 0.0, 0.0, 0.06, 0.12, 0.17, 0.05])
_DISP_YOUTH_P = np.array([0.22, 0.0, 0.02, 0.02, 0.16, 0.10, 0.0, 0.20, 0.23, 0.05])
_DRUG_GROUPS = (OFFENCE_GROUPS.index("drug_possession"), OFFENCE_GROUPS.index("drug_supply"))
_ACQUISITIVE = tuple(OFFENCE_GROUPS.index(g) for g in ("robbery", "burglary", "theft", "vehicle", "fraud"))

_NS_PER_DAY = 86_400 * 10**9
_EPOCH = np.datetime64("1970-01-01", "D")


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
def _days(date: str | np.datetime64) -> int:
    """Days since 1970-01-01 of an ISO date."""
    return int((np.datetime64(date, "D") - _EPOCH).astype(np.int64))


def _to_datetime(days: np.ndarray) -> np.ndarray:
    """int days since epoch (float NaN or int) -> datetime64[ns] array; NaN -> NaT."""
    days = np.asarray(days)
    if days.dtype.kind == "f":
        out = np.full(days.shape, np.iinfo(np.int64).min, dtype=np.int64)
        ok = ~np.isnan(days)
        out[ok] = days[ok].astype(np.int64) * _NS_PER_DAY
        return out.view("datetime64[ns]")
    return (days.astype(np.int64) * _NS_PER_DAY).view("datetime64[ns]")


def _id_strings(numbers: np.ndarray, prefix: str, width: int) -> pa.StringArray:
    """Vectorised ``f"{prefix}{n:0{width}d}"`` as a pyarrow string array (built from raw buffers).

    Building tens of millions of Python ``str`` objects costs ~1 s and ~60 bytes per id; the Arrow buffer costs
    ``len(prefix) + width + 4`` bytes per id and a few numpy passes.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    n = numbers.size
    p = len(prefix)
    length = p + width
    buf = np.empty((n, length), dtype=np.uint8)
    buf[:, :p] = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    rest = numbers.copy()
    for j in range(width - 1, -1, -1):
        buf[:, p + j] = (rest % 10 + 48).astype(np.uint8)
        rest //= 10
    if n * length < 2**31 - 1:
        offsets = np.arange(0, (n + 1) * length, length, dtype=np.int32)
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf.reshape(-1)))
    offsets = np.arange(0, (n + 1) * length, length, dtype=np.int64)  # pragma: no cover - > 2 GB of ids
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf.reshape(-1)))


def _string_series(arr: pa.Array, name: str) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(arr), name=name)


def person_ids(numbers: np.ndarray) -> np.ndarray:
    """Synthetic person ids ``P0000001`` … as an object array of Python strings (for small tables)."""
    return np.array([f"P{int(i):07d}" for i in numbers], dtype=object)


# ---------------------------------------------------------------------------------------------------------------
# national tables (benchmarks)
# ---------------------------------------------------------------------------------------------------------------
def national_tables(
    seed: int = 0,
    n_people: int = 1_000_000,
    n_offences: int = 20_000_000,
    *,
    index_start: str = "2019-01-01",
    index_end: str = "2021-12-31",
    progress: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """National-size ``(cohort, offences)`` tables, in memory, for benchmarks.

    cohort: one row per person — ``person_id`` (``P0000001``…, pandas ``string[pyarrow]``), ``index_date``
    (uniform over ``index_start``..``index_end``, datetime64[ns]).

    offences: canonical offences columns — ``offence_id`` (``O000000001``…, ``string[pyarrow]``), ``person_id``
    (``string[pyarrow]``), ``offence_date`` and ``disposal_date`` (datetime64[ns]; NaT when pending),
    ``disposal_type`` and ``offence_group`` (categoricals with every canonical level), ``drug_related`` (bool).
    Offences per person are over-dispersed (gamma-Poisson; many people have none); offence dates lie from 5 years
    before to 3 years after the person's index date with a concentration around the index date; disposal lags are
    log-normal (median ~ 45 days, long right tail up to ~2 years); ~5% pending; disposal mix differs for
    under-18s (by a synthetic age) so counted and non-counted disposals both occur. Rows are in random order.

    Ids are Arrow strings built from buffers (20 million ids in well under a second, ~14 bytes each), not Python
    objects. Deterministic per ``seed``. About 10–20 s and ~1 GB for the default sizes.
    """
    from tqdm import tqdm

    steps = tqdm(total=4, desc="national tables", disable=not progress, leave=False)
    rng = np.random.default_rng(seed)
    lo, hi = _days(index_start), _days(index_end)
    pid_num = np.arange(1, n_people + 1, dtype=np.int64)
    index_day = rng.integers(lo, hi + 1, size=n_people)
    cohort = pd.DataFrame({
        "person_id": _string_series(_id_strings(pid_num, "P", 7 if n_people < 10**7 else 9), "person_id"),
        "index_date": _to_datetime(index_day),
    })

    # offences per person: gamma-Poisson via a multinomial over person weights (exact total n_offences)
    weights = rng.gamma(shape=0.35, scale=1.0, size=n_people)
    counts = rng.multinomial(n_offences, weights / weights.sum()) if n_people else np.zeros(0, dtype=np.int64)
    person_idx = np.repeat(np.arange(n_people, dtype=np.int64), counts)
    person_idx = person_idx[rng.permutation(n_offences)]
    steps.update()
    # offset from index (days): 70% broad (-5y..+3y), 30% near index (sd 180 days)
    near = rng.random(n_offences) < 0.30
    offset = np.where(
        near,
        np.rint(rng.normal(0.0, 180.0, n_offences)),
        rng.integers(-5 * 365, 3 * 365 + 1, size=n_offences),
    ).astype(np.int64)
    offence_day = index_day[person_idx] + offset
    # disposal lag: log-normal days, median 45
    lag = np.minimum(np.rint(np.exp(rng.normal(np.log(45.0), 1.0, n_offences))), 730).astype(np.int64)
    # synthetic age at offence: youth share ~ 20%
    youth = rng.random(n_people) < 0.2
    is_youth = youth[person_idx]
    u = rng.random(n_offences)
    disp = np.where(
        is_youth,
        np.searchsorted(np.cumsum(_DISP_YOUTH_P), u * _DISP_YOUTH_P.sum(), side="right"),
        np.searchsorted(np.cumsum(_DISP_ADULT_P), u * _DISP_ADULT_P.sum(), side="right"),
    ).astype(np.int8)
    disp = np.minimum(disp, len(DISPOSAL_TYPES) - 1)
    pending = disp == DISPOSAL_TYPES.index("pending")
    disposal_day = (offence_day + lag).astype(np.float64)
    disposal_day[pending] = np.nan
    group = np.searchsorted(np.cumsum(_GROUP_P), rng.random(n_offences) * _GROUP_P.sum(), side="right")
    group = np.minimum(group, len(OFFENCE_GROUPS) - 1).astype(np.int8)
    drug = np.isin(group, _DRUG_GROUPS) | (np.isin(group, _ACQUISITIVE) & (rng.random(n_offences) < 0.3))
    steps.update()

    offences = pd.DataFrame({
        "offence_id": _string_series(_id_strings(np.arange(1, n_offences + 1), "O", 9 if n_offences < 10**9 else 12),
                                     "offence_id"),
        "person_id": _string_series(
            _id_strings(pid_num[person_idx], "P", 7 if n_people < 10**7 else 9), "person_id"),
        "offence_date": _to_datetime(offence_day),
        "disposal_date": _to_datetime(disposal_day),
        "disposal_type": pd.Categorical.from_codes(disp, categories=list(DISPOSAL_TYPES)),
        "offence_group": pd.Categorical.from_codes(group, categories=list(OFFENCE_GROUPS)),
        "drug_related": drug,
    })
    steps.update(2)
    steps.close()
    return cohort, offences


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------
def _write_tables(tables: dict[str, pd.DataFrame], out, fmt: str, progress: bool = True) -> dict[str, int]:
    from pathlib import Path

    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name, df in tqdm(tables.items(), desc=f"writing {fmt}", unit="table", leave=False,
                         disable=not progress):
        if fmt == "parquet":
            df.to_parquet(out / f"{name}.parquet", index=False)
        else:
            df.to_csv(out / f"{name}.csv", index=False, date_format="%Y-%m-%d")
        rows[name] = len(df)
    return rows


def _run_cli(args) -> int:
    import json
    from pathlib import Path

    out = Path(args.out)
    if str(args.scale).lower() == "national":
        cohort, offences = national_tables(seed=args.seed, progress=True)
        rows = _write_tables({"cohort": cohort, "offences": offences}, out, "parquet")
        (out / "meta.json").write_text(json.dumps(
            {"extract_date": EXTRACT_DATE, "seed": args.seed, "generator_version": GENERATOR_VERSION,
             "scale": "national", "n_people": len(cohort), "n_offences": len(offences)}, indent=2) + "\n")
    else:
        try:
            scale = float(args.scale)
        except ValueError:
            raise SystemExit(f"--scale: expected a number or 'national', got {args.scale!r}") from None
        if scale <= 0:
            raise SystemExit(f"--scale: must be > 0, got {scale}")
        tables = generate_world(args.seed, out=out, scale=scale, fmt=args.format, progress=True)
        rows = {k: len(v) for k, v in tables.items()}
    width = max(len(k) for k in rows)
    print(f"synthetic world (seed {args.seed}) written to {out}")
    for name, n in rows.items():
        print(f"  {name:<{width}}  {n:>12,} rows")
    return 0


def add_cli(subparsers) -> None:
    """Register ``synth``: ``--seed N --out DIR [--scale X|national] [--format csv|parquet]``."""
    p = subparsers.add_parser(
        "synth", help="write a synthetic world",
        description="Write a synthetic world (canonical tables + truth.json + meta.json) to --out. "
                    "--scale multiplies the comparison pool and background population; 'national' writes "
                    "national-size cohort and offences tables (parquet) for benchmarks.")
    p.add_argument("--seed", type=int, default=20190401, help="random seed (default 20190401)")
    p.add_argument("--out", required=True, help="output folder, e.g. data/raw/synthetic")
    p.add_argument("--scale", default="1.0", help="float multiplier of the comparison pools and background population (default 1.0), or 'national' "
                        "(1,000,000-person cohort + 20,000,000 offences, always parquet)")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="table file format (default csv)")
    p.set_defaults(func=_run_cli)



# ---------------------------------------------------------------------------------------------------------------
# the synthetic world
# ---------------------------------------------------------------------------------------------------------------
EXTRACT_DATE = "2024-12-31"
HISTORY_START = "2010-01-01"  # offences are simulated from max(10th birthday, this date)
from evaluation.schemas import NORFOLK_DISTRICTS as DISTRICTS  # noqa: E402 - defined once, in schemas
# police-contact weighted district shares (Norwich and Great Yarmouth over-represented)
_DISTRICT_P = np.array([0.27, 0.15, 0.11, 0.11, 0.13, 0.09, 0.14])
from evaluation.schemas import ETHNICITY_GROUPS as ETHNICITY  # noqa: E402 - defined once, in schemas
_ETHNICITY_P = np.array([0.88, 0.025, 0.025, 0.03, 0.01, 0.03])
_SERIOUS = tuple(OFFENCE_GROUPS.index(g) for g in
                 ("violence_with_injury", "robbery", "sexual", "burglary", "drug_supply", "weapons", "arson"))
_GROUP_P_DRUG = _GROUP_P.copy()
_GROUP_P_DRUG[list(_DRUG_GROUPS)] *= 3.0
_GROUP_P_DRUG[OFFENCE_GROUPS.index("theft")] *= 1.5
_GROUP_P_DRUG /= _GROUP_P_DRUG.sum()
# log-normal disposal lags (median days, log sd) by disposal type
_LAG = {
    "conviction": (110.0, 0.8), "caution": (21.0, 0.9), "reprimand": (21.0, 0.9), "warning": (21.0, 0.9),
    "youth_caution": (28.0, 0.9), "youth_conditional_caution": (35.0, 0.9), "penalty_notice": (2.0, 0.8),
    "community_resolution": (3.0, 0.8), "nfa": (45.0, 1.0), "pending": (0.0, 0.0),
}
_LAG_MEDIAN = np.array([_LAG[d][0] for d in DISPOSAL_TYPES])
_LAG_SD = np.array([_LAG[d][1] for d in DISPOSAL_TYPES])

# Comparison pools at scale 1 (multiplied by --scale): police records, tens of times each programme.
POOL_SIZES = {"youth": 12_000, "women": 20_000, "adult_drug": 5_000}

# Rate model: log(offences per year) = mu + sd*z + male*b_male + drug*b_drug + b_age*(age - age0)
# One offending-rate model for everyone in the world (yearly rate; age in years at the reference date):
#   log rate = mu + sd*z + b_male*male + b_drug*drug_misuse + b_young*(min(age, 18) - 14) + b_old*(max(age, 18) - 18)
# It must not depend on which population (youth, women, adults with drug links) a person was drawn from: a
# programme's comparison pool is everyone in police records who meets its target group, so it mixes those
# populations (adults with drug links are also women; the youth pool reaches 19). With a population-specific rate,
# "which population" would be a confounder matching cannot see, and the matched estimates were biased against
# truth.json by more than their standard errors (WONDER+ -1.2 pp, Pathway Out (ADDER) +2.4 pp over 20 worlds).
# The populations differ through the observables instead (sex, age, drug misuse), which matching does see.
_RATE = dict(mu=np.log(0.10), sd=1.0, b_male=0.5, b_drug=1.2, b_young=0.12, b_old=-0.02)

# Programme specifications (sizes and places from the public pages cited in programmes/*.yaml).
# hr: true hazard ratio on offending after the index date (by completion status where it differs).
_PROGRAMMES = {
    "pathways-out": dict(
        pool="youth", n=46, start="2019-04-01", end="2020-03-31", ages=(12, 17), districts={"Norwich": 0.6,
        "Great Yarmouth": 0.4}, male=0.7, drug=0.25, sources={"school": 1.0}, index="start_date",
        status={"completed": 0.62, "disengaged": 0.28, "not_started": 0.10},
        hr={"completed": 0.80, "disengaged": 0.80}, sel=dict(prior=0.9, drug=0.8, age=0.15, male=0.3)),
    "sos-plus": dict(
        pool="youth", n=150, start="2019-04-01", end="2022-03-31", ages=(11, 17), districts=None, male=0.68,
        drug=0.2, sources={"school": 1.0}, index="start_date",
        status={"completed": 0.60, "disengaged": 0.30, "not_started": 0.10},
        hr={"completed": 0.85, "disengaged": 0.85}, sel=dict(prior=0.8, drug=0.6, age=0.1, male=0.3)),
    "mace": dict(
        pool="youth", n=250, start="2019-04-01", end="2020-06-30", ages=(10, 17), districts=None, male=0.55,
        drug=0.3, sources={"mash": 0.35, "school": 0.2, "community_policing": 0.2, "yot": 0.1, "early_help": 0.15},
        index="referral_date", status={"completed": 0.55, "disengaged": 0.30, "not_started": 0.15},
        hr={"completed": 0.90, "disengaged": 0.90, "not_started": 0.90},
        sel=dict(prior=1.0, drug=0.9, age=0.2, male=0.0)),
    "detached-youth-work": dict(
        pool="youth", n=150, start="2019-04-01", end="2020-03-31", ages=(11, 19), districts={"Norwich": 1.0},
        male=0.6, drug=0.2, sources={"self": 0.5, "community_policing": 0.3, "mash": 0.2}, index="start_date",
        status={"completed": 0.50, "disengaged": 0.42, "not_started": 0.08},
        hr={"completed": 1.0, "disengaged": 1.0}, sel=dict(prior=0.5, drug=0.5, age=0.15, male=0.2)),
    "family-support": dict(
        pool="youth", n=60, start="2019-04-01", end="2020-03-31", ages=(10, 17), districts={"Norwich": 1.0},
        male=0.6, drug=0.3, sources={"mace": 0.5, "mash": 0.3, "early_help": 0.2}, index="start_date",
        status={"completed": 0.65, "disengaged": 0.25, "not_started": 0.10},
        hr={"completed": 0.80, "disengaged": 0.80}, sel=dict(prior=1.0, drug=0.8, age=0.15, male=0.2)),
    "pathway-out-adder": dict(
        pool="adult_drug", n=160, start="2021-05-01", end="2023-03-31", ages=(18, 64),
        districts={"Norwich": 0.6, "Broadland": 0.2, "South Norfolk": 0.2}, male=0.75, drug=0.92,
        sources={"probation": 0.35, "custody": 0.2, "community_policing": 0.15, "dwp": 0.2, "self": 0.1},
        index="start_date", status={"completed": 0.45, "disengaged": 0.40, "not_started": 0.15},
        hr={"completed": 0.80, "disengaged": 0.80}, sel=dict(prior=0.6, drug=0.8, age=-0.03, male=0.2)),
    "wonder-plus": dict(
        pool="women", n=850, start="2018-03-01", end="2022-03-31", ages=(18, 70), districts=None, male=0.0,
        drug=0.35, sources={"custody": 0.35, "community_policing": 0.25, "early_help": 0.12, "health": 0.1,
                            "victim_services": 0.08, "self": 0.1},
        index="referral_date", status=None,  # completion depends on risk (below)
        hr={"completed": 0.70, "disengaged": 0.95, "not_started": 1.0},
        sel=dict(prior=0.9, drug=0.7, age=-0.02, male=0.0)),
}
_CANDIDATES_PER_PLACE = 10  # candidates drawn per programme place; the place goes to a risk-weighted draw

_POOL_SPEC = {
    "youth": dict(ages=(10, 17), old_share=0.08, old_ages=(18, 19), male=0.62, drug=0.12, female_only=False,
                  primary=("2019-04-01", "2020-06-30"), primary_share=0.75, window=("2019-04-01", "2022-03-31")),
    "women": dict(ages=(18, 70), male=0.0, drug=0.2, female_only=True,
                  primary=("2018-03-01", "2022-03-31"), primary_share=1.0, window=("2018-03-01", "2022-03-31")),
    "adult_drug": dict(ages=(18, 64), male=0.75, drug=0.85, female_only=False,
                       primary=("2021-05-01", "2023-03-31"), primary_share=1.0,
                       window=("2021-05-01", "2023-03-31"),
                       districts={"Norwich": 0.4, "Broadland": 0.15, "South Norfolk": 0.15, "Great Yarmouth": 0.1,
                                  "Breckland": 0.08, "North Norfolk": 0.05, "King's Lynn and West Norfolk": 0.07}),
}


def _choice(rng, n, probs: dict | np.ndarray, labels=None) -> np.ndarray:
    """Vectorised categorical draw: returns labels (object array) or indices when labels is None."""
    if isinstance(probs, dict):
        labels = np.array(list(probs), dtype=object)
        p = np.array(list(probs.values()), dtype=float)
    else:
        p = np.asarray(probs, dtype=float)
    c = np.cumsum(p / p.sum())
    idx = np.minimum(np.searchsorted(c, rng.random(n), side="right"), len(p) - 1)
    return labels[idx] if labels is not None else idx


def _age_days_to_dob(rng, ref_day: np.ndarray, age_years: np.ndarray) -> np.ndarray:
    """Date of birth (days) so that the whole-year age at ref_day is age_years."""
    return ref_day - np.floor((age_years + rng.random(ref_day.size)) * 365.25).astype(np.int64)


def _age_at(dob_day: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Whole years of age (calendar-exact) at day, for day arrays."""
    dob = _to_datetime(dob_day).astype("datetime64[D]")
    d = _to_datetime(day).astype("datetime64[D]")
    y1 = dob.astype("datetime64[Y]").astype(np.int64)
    y2 = d.astype("datetime64[Y]").astype(np.int64)
    # compare (month, day) rather than day-of-year (leap years)
    m1 = dob.astype("datetime64[M]").astype(np.int64) % 12
    m2 = d.astype("datetime64[M]").astype(np.int64) % 12
    dd1 = (dob - dob.astype("datetime64[M]")).astype(np.int64)
    dd2 = (d - d.astype("datetime64[M]")).astype(np.int64)
    before = (m2 < m1) | ((m2 == m1) & (dd2 < dd1))
    return y2 - y1 - before.astype(np.int64)


def _add_months(day: np.ndarray, months: int) -> np.ndarray:
    """Calendar-month addition on day arrays (day of month clipped to the month's end, as pandas does)."""
    idx = pd.DatetimeIndex(_to_datetime(day)) + pd.DateOffset(months=months)
    return ((idx.values.astype("datetime64[D]") - _EPOCH).astype(np.int64))


def _age_effect(age_years: np.ndarray) -> np.ndarray:
    """The age part of the log offending rate at (fractional) age in years: rising to 18, then falling."""
    rp = _RATE
    return rp["b_young"] * (np.minimum(age_years, 18.0) - 14.0) + rp["b_old"] * (np.maximum(age_years, 18.0) - 18.0)


_AGE_PEAK = _RATE["b_young"] * 4.0  # _age_effect(18): the maximum over age (b_young > 0 > b_old)


def _age_factor(dob_day: np.ndarray, day: np.ndarray) -> np.ndarray:
    """rate(age at ``day``) / peak rate, in (0, 1]: the acceptance probability when thinning offences drawn at the
    peak rate. The rate follows the person's age on the day, so a person's risk is the same function of age
    whenever the index date falls (an index date a year later means a year older, not the same rate)."""
    age = (day - dob_day) / 365.25
    return np.exp(_age_effect(age) - _AGE_PEAK)


def _draw_people(rng, n: int, *, ages, male, drug, districts, ref_day, rate_key, old_share=0.0,
                 old_ages=None) -> dict[str, np.ndarray]:
    """Draw n people with reference dates ref_day: demographics and a person-level yearly offending rate."""
    lo, hi = ages
    if hi - lo > 20:  # adults: skewed to 20-45
        age = np.clip(np.rint(lo + rng.gamma(2.2, 7.0, n)), lo, hi).astype(np.int64)
    else:  # children: more police contact at older ages
        w = np.linspace(1.0, 2.5, hi - lo + 1)
        age = lo + _choice(rng, n, w)
    if old_share and old_ages:
        old = rng.random(n) < old_share
        age[old] = rng.integers(old_ages[0], old_ages[1] + 1, old.sum())
    dob = _age_days_to_dob(rng, ref_day, age)
    sex = np.where(rng.random(n) < male, "M", "F").astype(object)
    unknown = rng.random(n) < (0.005 if 0 < male < 1 else 0.0)  # women-only services record sex
    sex[unknown] = "U"
    if districts is None:
        district = np.array(DISTRICTS, dtype=object)[_choice(rng, n, _DISTRICT_P)]
    else:
        district = _choice(rng, n, districts)
    ethnicity = np.array(ETHNICITY, dtype=object)[_choice(rng, n, _ETHNICITY_P)]
    z = rng.normal(size=n)
    # Drug misuse raises the rate (b_drug) but is drawn independently of the latent risk z: programme candidates
    # and the pool have different drug prevalences, and a z-dependent marker would make the latent risk given the
    # observables differ between them (bias that matching on observables could not remove).
    drug_misuse = rng.random(n) < drug
    rp = _RATE  # the same model for every population (see _RATE); rate_key only names the population
    logr = (rp["mu"] + rp["sd"] * z + rp["b_male"] * (sex == "M") + rp["b_drug"] * drug_misuse
            + _age_effect(np.full(n, 18.0)))
    # ``rate`` is the person's peak yearly rate (at 18); at other ages it is scaled by _age_factor
    rate = np.minimum(np.exp(logr), 15.0)  # cap: the most prolific offenders, ~15 offences a year
    return dict(dob=dob, sex=sex, district=district, ethnicity=ethnicity, drug=drug_misuse, rate=rate,
                ref=ref_day.astype(np.int64), age=age)


def _offence_attributes(rng, offence_day, age, drug_person, extract_day):
    """Offence group, drug flag, disposal type and date for offences (vectorised)."""
    n = offence_day.size
    g_plain = _choice(rng, n, _GROUP_P)
    g_drug = _choice(rng, n, _GROUP_P_DRUG)
    group = np.where(drug_person, g_drug, g_plain)
    acquisitive = np.isin(group, _ACQUISITIVE)
    drug_related = np.isin(group, _DRUG_GROUPS) | (acquisitive & drug_person & (rng.random(n) < 0.5)) | (
        acquisitive & ~drug_person & (rng.random(n) < 0.05))
    youth = age < 18
    disp = np.where(youth, _choice(rng, n, _DISP_YOUTH_P), _choice(rng, n, _DISP_ADULT_P))
    serious = np.isin(group, _SERIOUS) & (rng.random(n) < 0.35)
    disp = np.where(serious, DISPOSAL_TYPES.index("conviction"), disp)
    lag = np.rint(_LAG_MEDIAN[disp] * np.exp(_LAG_SD[disp] * rng.normal(size=n))).astype(np.int64)
    lag = np.minimum(lag, 900)
    disposal_day = (offence_day + lag).astype(np.float64)
    pending = (disp == DISPOSAL_TYPES.index("pending")) | (disposal_day > extract_day)
    disp = np.where(pending, DISPOSAL_TYPES.index("pending"), disp)
    disposal_day[pending] = np.nan
    return group, drug_related, disp, disposal_day


def _simulate_offences(rng, people: dict, hr: np.ndarray, history_start: int, extract_day: int,
                       part: str = "both"):
    """Poisson offending at each person's age-dependent yearly rate (peak rate thinned by _age_factor) from max(10th birthday, history_start) to the
    extract date; after the reference (index) date the rate is multiplied by ``hr``. Returns arrays of
    (person index, offence day). ``part``: "pre" (up to and including the reference day), "post" or "both"."""
    start = np.maximum(_add_months(people["dob"], 120), history_start)  # 10th birthday
    ref = people["ref"]
    lam = people["rate"] / 365.25  # peak daily rate; offences drawn at it are kept with the age factor (thinning)
    pre_len = np.maximum(ref - start + 1, 0) * (part != "post")
    n_pre = rng.poisson(lam * pre_len)
    idx_pre = np.repeat(np.arange(ref.size), n_pre)
    day_pre = start[idx_pre] + np.floor(rng.random(idx_pre.size) * pre_len[idx_pre]).astype(np.int64)
    keep = rng.random(idx_pre.size) < _age_factor(people["dob"][idx_pre], day_pre)
    idx_pre, day_pre = idx_pre[keep], day_pre[keep]
    if part == "pre":
        return idx_pre, day_pre
    post_len = np.maximum(extract_day - ref, 0)
    n_post = rng.poisson(lam * hr * post_len)
    idx_post = np.repeat(np.arange(ref.size), n_post)
    day_post = ref[idx_post] + 1 + np.floor(rng.random(idx_post.size) * post_len[idx_post]).astype(np.int64)
    keep = rng.random(idx_post.size) < _age_factor(people["dob"][idx_post], day_post)
    idx_post, day_post = idx_post[keep], day_post[keep]
    if part == "post":
        return idx_post, day_post
    return np.concatenate([idx_pre, idx_post]), np.concatenate([day_pre, day_post])


def _prior_proven(rng, people, idx, day, extract_day, months=24):
    """Observable prior: counted-disposal offences in the `months` before the reference date (disposed by it)."""
    group, drug_rel, disp, disp_day = _offence_attributes(
        rng, day, _age_at(people["dob"][idx], day), people["drug"][idx], extract_day)
    ref = people["ref"][idx]
    lo = _add_months(people["ref"], -months)[idx]
    counted = disp < len(COUNTED_DISPOSALS)
    ok = counted & (day >= lo) & (day <= ref) & (np.nan_to_num(disp_day, nan=np.inf) <= ref)
    prior = np.bincount(idx[ok], minlength=people["ref"].size)
    return prior, (group, drug_rel, disp, disp_day)


def _one_year_truth(rng, people: dict, hr: np.ndarray, extract_day: int, reps: int = 400) -> dict[str, np.ndarray]:
    """Per-person probability of one-year proven (re)offending with and without treatment, by simulation.

    Offences after the index date and on or before index + 12 calendar months, proven by a counted disposal on or
    before index + 18 calendar months. Common random numbers: offences are drawn at the untreated rate and each is
    kept under treatment with probability ``hr`` (thinning), so both arms share draws.
    """
    n = people["ref"].size
    ref = people["ref"]
    end = _add_months(ref, 12)
    wait = _add_months(ref, 18)
    lam = people["rate"] / 365.25
    length = end - ref
    r0 = np.zeros(n)
    r1 = np.zeros(n)
    person = np.repeat(np.arange(n), reps)
    counts = rng.poisson(np.repeat(lam * length, reps))
    rep_id = np.repeat(np.arange(n * reps), counts)
    p = person[rep_id]
    day = ref[p] + 1 + np.floor(rng.random(rep_id.size) * length[p]).astype(np.int64)
    _, _, disp, disp_day = _offence_attributes(rng, day, _age_at(people["dob"][p], day), people["drug"][p],
                                               extract_day)
    proven = (disp < len(COUNTED_DISPOSALS)) & (np.nan_to_num(disp_day, nan=np.inf) <= wait[p])
    proven &= rng.random(rep_id.size) < _age_factor(people["dob"][p], day)  # the offence happens at this age
    keep = rng.random(rep_id.size) < hr[p]
    any0 = np.zeros(n * reps, bool)
    any1 = np.zeros(n * reps, bool)
    np.logical_or.at(any0, rep_id[proven], True)
    np.logical_or.at(any1, rep_id[proven & keep], True)
    r0 = any0.reshape(n, reps).mean(axis=1)
    r1 = any1.reshape(n, reps).mean(axis=1)
    return {"risk_treated": r1, "risk_untreated": r0}


def _gumbel_top_k(rng, logw: np.ndarray, k: int) -> np.ndarray:
    """Weighted sampling of k indices without replacement (probabilities proportional to exp(logw))."""
    keys = logw + rng.gumbel(size=logw.size)
    return np.sort(np.argpartition(-keys, k - 1)[:k])


def _take(people: dict, idx: np.ndarray) -> dict:
    return {k: v[idx] for k, v in people.items()}


def _concat(blocks: list[dict]) -> dict:
    keys = blocks[0].keys()
    return {k: np.concatenate([b[k] for b in blocks]) for k in keys}


def _participants(rng, pid: str, spec: dict, history_start: int, extract_day: int):
    """Candidates from the programme's target group; places go to a risk-weighted draw on observables
    (prior proven offences, drug misuse, age, sex) made at the index date. Returns people + offences + referrals."""
    n = spec["n"]
    m = n * _CANDIDATES_PER_PLACE
    lo, hi = _days(spec["start"]), _days(spec["end"])
    referral = rng.integers(lo, hi + 1, m)
    # first session a mean ~17 days after referral, and not after the programme's end date
    start = referral + np.minimum(1 + np.rint(rng.gamma(2.0, 8.0, m)).astype(np.int64), hi - referral)
    ref = start if spec["index"] == "start_date" else referral
    people = _draw_people(rng, m, ages=spec["ages"], male=spec["male"], drug=spec["drug"],
                          districts=spec["districts"], ref_day=ref, rate_key=spec["pool"])
    idx_pre, day_pre = _simulate_offences(rng, people, np.ones(m), history_start, extract_day, part="pre")
    prior, attrs = _prior_proven(rng, people, idx_pre, day_pre, extract_day)
    s = spec["sel"]
    logw = (s["prior"] * np.log1p(prior) + s["drug"] * people["drug"] + s["age"] * (people["age"] - people["age"].mean())
            + s["male"] * (people["sex"] == "M"))
    chosen = _gumbel_top_k(rng, logw, n)
    remap = np.full(m, -1)
    remap[chosen] = np.arange(n)
    keep = remap[idx_pre] >= 0
    people = _take(people, chosen)
    prior = prior[chosen]
    pre = (remap[idx_pre[keep]], day_pre[keep]) + tuple(a[keep] for a in attrs)
    referral, start = referral[chosen], start[chosen]

    # completion status
    if spec["status"] is None:  # WONDER+: completers are a selected, lower-risk subgroup
        logit = 0.2 - 0.6 * np.log1p(prior) - 0.6 * people["drug"] + 0.015 * (people["age"] - 35)
        completed = rng.random(n) < 1 / (1 + np.exp(-logit))
        status = np.where(completed, "completed", np.where(rng.random(n) < 0.7, "disengaged", "not_started"))
        status = status.astype(object)
    else:
        status = _choice(rng, n, spec["status"])
    hr = np.array([spec["hr"].get(st, 1.0) for st in status])
    not_started = status == "not_started"
    length = np.where(status == "completed", rng.integers(90, 366, n), rng.integers(7, 120, n))
    end = (start + length).astype(np.float64)
    start_f = start.astype(np.float64)
    start_f[not_started] = np.nan
    end[not_started] = np.nan
    idx_post, day_post = _simulate_offences(rng, people, hr, history_start, extract_day, part="post")
    post_attrs = _offence_attributes(rng, day_post, _age_at(people["dob"][idx_post], day_post),
                                     people["drug"][idx_post], extract_day)
    offences = tuple(np.concatenate([a, b]) for a, b in zip(pre, (idx_post, day_post) + post_attrs))
    referrals = dict(programme_id=np.full(n, pid, dtype=object), referral_date=referral, start_date=start_f,
                     end_date=end, completion_status=status, referral_source=_choice(rng, n, spec["sources"]))
    people["hr"] = hr
    people["prior"] = prior
    return people, offences, referrals


def _pool(rng, key: str, n: int, history_start: int, extract_day: int):
    """Comparison pool from police records: people with police contacts in the programme windows; the first
    contact is their reference date. Offending at their age-dependent rate (no programme)."""
    spec = _POOL_SPEC[key]
    plo, phi = _days(spec["primary"][0]), _days(spec["primary"][1])
    wlo, whi = _days(spec["window"][0]), _days(spec["window"][1])
    ref = rng.integers(plo, phi + 1, n)
    if spec["primary_share"] < 1:
        late = rng.random(n) > spec["primary_share"]
        ref[late] = rng.integers(phi + 1, whi + 1, late.sum())
    people = _draw_people(rng, n, ages=spec["ages"], male=spec["male"], drug=spec["drug"],
                          districts=spec.get("districts"), ref_day=ref, rate_key=key,
                          old_share=spec.get("old_share", 0.0), old_ages=spec.get("old_ages"))
    idx, day = _simulate_offences(rng, people, np.ones(n), history_start, extract_day)
    attrs = _offence_attributes(rng, day, _age_at(people["dob"][idx], day), people["drug"][idx], extract_day)
    people["hr"] = np.ones(n)
    people["prior"] = np.zeros(n, dtype=np.int64)
    # further contacts: more for higher-risk people
    extra = rng.poisson(0.3 + 0.4 * np.minimum(people["rate"], 5.0))
    cidx = np.repeat(np.arange(n), extra)
    cday = rng.integers(wlo, whi + 1, cidx.size)
    contacts = (np.concatenate([np.arange(n), cidx]), np.concatenate([ref, cday]))
    return people, (idx, day) + attrs, contacts


_YOUTH_CONTACTS = {"arrest": 0.22, "stop_search": 0.2, "intelligence": 0.18, "safeguarding": 0.2,
                   "school_concern": 0.2}
_ADULT_CONTACTS = {"arrest": 0.35, "stop_search": 0.15, "intelligence": 0.2, "safeguarding": 0.1, "custody": 0.2}


def _custody(rng, off: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """Custodial spells for adults, never overlapping an offence (no one offends while inside).

    (i) Sentences after some adult convictions: from the disposal date for a log-normal time (median ~4 months),
    released before the person's next offence and before their reference (index) date. (ii) Spells that start
    after the reference date, before any further offence is proven: recall on licence, remand, or a sentence
    for an earlier matter. Adult cohorts such as WONDER+ and Pathway Out (ADDER) have many people under
    licence or with pending cases, so about one in six adults with a previous conviction (one in four after a
    serious one) starts such a spell within a year or so; these compete with a proven reoffence in the
    follow-up. The second kind draws from a child generator so the rest of the world keeps its random stream.
    """
    o = off.sort_values(["pidx", "offence_day"])
    next_day = o.groupby("pidx")["offence_day"].shift(-1).fillna(np.inf).to_numpy()
    ref = people["ref"].to_numpy()[o["pidx"].to_numpy()]
    adult = o["age"].to_numpy() >= 18
    conv = o["disp"].to_numpy() == DISPOSAL_TYPES.index("conviction")
    serious = np.isin(o["group"].to_numpy(), _SERIOUS)
    p = np.where(serious, 0.35, 0.08)
    start = o["disp_day"].to_numpy()
    cand = adult & conv & (rng.random(len(o)) < p) & (start < next_day - 1) & (start < ref - 1)
    start = start[cand]
    length = np.rint(120 * np.exp(0.7 * rng.normal(size=start.size)))
    end = np.minimum.reduce([start + length, next_day[cand] - 1, ref[cand] - 1])
    before = pd.DataFrame({"pidx": o["pidx"].to_numpy()[cand], "custody_start": start, "custody_end": end})

    # (ii) after the reference date: adults with a conviction dated before it
    sub = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
    pidx, day = o["pidx"].to_numpy(), o["offence_day"].to_numpy()
    prior = adult & conv & (day < ref)
    per = pd.DataFrame({"pidx": pidx[prior], "serious": serious[prior]}).groupby("pidx")["serious"].any()
    who = per.index.to_numpy()
    ref_p = people["ref"].to_numpy()[who]
    chance = np.where(per.to_numpy(), 0.25, 0.16)
    pick = (sub.random(who.size) < chance) & np.isfinite(ref_p)
    who, ref_p = who[pick], ref_p[pick]
    s2 = ref_p + 1 + np.floor(sub.exponential(160, who.size))
    len2 = np.rint(60 * np.exp(0.8 * sub.normal(size=who.size)))
    # first offence on or after the spell's start: the spell must end the day before it (and start before it)
    key = pidx.astype(np.int64) * 10**7 + day.astype(np.int64)
    order = np.argsort(key, kind="stable")
    pos = np.searchsorted(key[order], who.astype(np.int64) * 10**7 + s2.astype(np.int64), side="left")
    nxt = np.full(who.size, np.inf)
    ok = pos < key.size
    same = np.zeros(who.size, bool)
    same[ok] = pidx[order][pos[ok]] == who[ok]
    nxt[same] = day[order][pos[same]]
    e2 = np.minimum(s2 + np.maximum(len2, 1), nxt - 1)
    good = (e2 > s2) & (s2 <= day.max())  # not after the last recorded offence day (the extract)
    after = pd.DataFrame({"pidx": who[good], "custody_start": s2[good], "custody_end": e2[good]})
    return pd.concat([before, after], ignore_index=True)


def _area_series(rng, extract_day: int) -> tuple[pd.DataFrame, dict]:
    """Monthly area series 2016-01..2024-12 for Greater Norwich and the comparison areas of
    programmes/project-adder.yaml, with trends, seasonality, over-dispersed noise, a spring-2020 lockdown dip and
    a known level and slope change in Greater Norwich from 2021-01 (log scale; none for drug deaths)."""
    areas = {"Greater Norwich": 420_000, "Ipswich": 140_000, "Peterborough": 215_000, "Cambridge": 146_000,
             "Colchester": 195_000, "Luton": 225_000}
    # monthly rate per 100,000, yearly trend (log), seasonal amplitude, seasonal peak month
    measures = {
        "drug_offences": (28.0, -0.02, 0.08, 7), "drug_deaths": (0.9, 0.03, 0.10, 1),
        "treatment_starts": (22.0, -0.01, 0.06, 3), "treatment_completions": (10.0, -0.01, 0.06, 3),
        "arrests": (24.0, -0.03, 0.07, 7), "seizures": (16.0, -0.02, 0.08, 7),
    }
    change = {  # Greater Norwich from 2021-01: level (log rate ratio) and slope (log change per month)
        "drug_offences": (np.log(1.15), 0.002), "drug_deaths": (0.0, 0.0),
        "treatment_starts": (np.log(1.20), 0.003), "treatment_completions": (np.log(1.10), 0.002),
        "arrests": (np.log(1.25), 0.004), "seizures": (np.log(1.35), 0.003),
    }
    months = pd.date_range("2016-01-01", "2024-12-01", freq="MS")
    t = np.arange(months.size)
    moy = months.month.to_numpy()
    t0 = months.get_loc(pd.Timestamp("2021-01-01"))
    post = (t >= t0).astype(float)
    lockdown = np.asarray((months >= "2020-04-01") & (months <= "2020-06-01"))
    rows = []
    for area, pop0 in areas.items():
        pop = pop0 * (1.006 ** (months.year.to_numpy() - 2016))
        rows.append(pd.DataFrame({"area": area, "month": months, "measure": "population", "value": np.rint(pop)}))
        for measure, (rate, trend, amp, peak) in measures.items():
            level = np.log(rate * pop / 1e5) + rng.normal(0, 0.15)
            slope = (trend + rng.normal(0, 0.01)) / 12
            season = amp * np.cos(2 * np.pi * (moy - peak) / 12)
            ar = np.zeros(t.size)
            eps = rng.normal(0, 0.04, t.size)
            for i in range(1, t.size):
                ar[i] = 0.5 * ar[i - 1] + eps[i]
            mu = level + slope * t + season + ar
            if measure in ("drug_offences", "arrests", "seizures"):
                mu = mu - 0.15 * lockdown
            if area == "Greater Norwich":
                lvl, slp = change[measure]
                mu = mu + lvl * post + slp * (t - t0) * post
            value = rng.poisson(np.exp(mu)).astype(float)
            rows.append(pd.DataFrame({"area": area, "month": months, "measure": measure, "value": value}))
    truth = {
        "treated_area": "Greater Norwich", "comparison_areas": [a for a in areas if a != "Greater Norwich"],
        "change_from": "2021-01-01",
        "model": "log E[count] = area level + area trend*t + seasonality + AR(1) noise; Greater Norwich adds "
                 "level*post + slope*(months since 2021-01)*post; counts Poisson; lockdown dip Apr-Jun 2020 in "
                 "drug_offences, arrests, seizures (all areas)",
        "measures": {m: {"level_log_ratio": float(lv), "level_ratio": float(np.exp(lv)),
                         "slope_log_per_month": float(sl)} for m, (lv, sl) in change.items()},
    }
    return pd.concat(rows, ignore_index=True), truth


# Education, training and employment (ETE) for Pathway Out (ADDER), the programme whose purpose is ETE. True
# probabilities by completion status; "without" is what the same people would have reached without the programme
# (a counterfactual the world knows and a report cannot see: there is no ETE record for non-participants).
ETE_TRUTH = {
    "programme": "pathway-out-adder",
    "p_ete_at_start": 0.12,
    "p_ete_at_exit": {"completed": 0.50, "disengaged": 0.18},
    "p_ete_at_exit_without_programme": 0.12,
    "share_employment_if_ete": 0.6,
    "p_sustained_3m_if_ete_at_exit": 0.75,
    "p_sustained_6m_if_sustained_3m": 0.80,
    "p_exit_status_unknown": 0.05,
}


def _ete(seed: int, referrals: pd.DataFrame, extract_day: int) -> tuple[pd.DataFrame, dict]:
    """ETE records for Pathway Out (ADDER) participants who started: ETE at start, status at exit, in ETE 3 and 6
    months after exit (missing when not yet due or the exit status is unknown).

    Drawn from its own random stream (``[seed, 11]``), so adding it leaves every other table of a world unchanged.
    Returns the table and its truth (``ETE_TRUTH`` plus the expected rates among those who started).
    """
    t = ETE_TRUTH
    rng = np.random.default_rng([int(seed), 11])
    r = referrals[(referrals["programme_id"] == t["programme"]) & referrals["start_date"].notna()]
    n = len(r)
    status = r["completion_status"].to_numpy(dtype=object)
    p_exit = np.array([t["p_ete_at_exit"].get(st, t["p_ete_at_exit_without_programme"]) for st in status])
    at_start = rng.random(n) < t["p_ete_at_start"]
    in_ete = rng.random(n) < p_exit
    job = rng.random(n) < t["share_employment_if_ete"]
    unknown = rng.random(n) < t["p_exit_status_unknown"]
    exit_status = np.where(unknown, "unknown", np.where(in_ete, np.where(job, "employment", "education_training"),
                                                        "none"))
    s3 = in_ete & (rng.random(n) < t["p_sustained_3m_if_ete_at_exit"])
    s6 = s3 & (rng.random(n) < t["p_sustained_6m_if_sustained_3m"])
    end = r["end_date"].to_numpy(dtype="datetime64[D]")
    extract = _EPOCH + np.timedelta64(int(extract_day), "D")
    due3 = end + np.timedelta64(91, "D") <= extract
    due6 = end + np.timedelta64(183, "D") <= extract
    s3v = pd.array(np.where(unknown | ~due3, pd.NA, s3.astype(int)), dtype="Int64")
    s6v = pd.array(np.where(unknown | ~due6, pd.NA, s6.astype(int)), dtype="Int64")
    df = pd.DataFrame({"person_id": r["person_id"].to_numpy(), "programme_id": t["programme"],
                       "ete_at_start": at_start, "status_at_exit": exit_status, "sustained_3m": s3v,
                       "sustained_6m": s6v}).reset_index(drop=True)
    by = {st: float(t["p_ete_at_exit"].get(st, t["p_ete_at_exit_without_programme"])) for st in np.unique(status)}
    known = 1 - t["p_exit_status_unknown"]
    truth = {**t, "n_started": int(n),
             "expected_ete_at_exit_rate_started": round(float(p_exit.mean()), 5),
             "true_effect_pp_started": round(float(p_exit.mean() - t["p_ete_at_exit_without_programme"]), 5),
             "p_ete_at_exit_by_status": by,
             "note": "rates among those who started with a known exit status; the recorded share of all who started "
                     f"is about {known:.2f} times these (status unknown for the rest)"}
    return df, truth


def _spread_dates(rng, n: int, start: str, end: str, gaps=()) -> np.ndarray:
    """n dates (days) over start..end avoiding August (school holidays) and the given (start, end) gaps."""
    lo, hi = _days(start), _days(end)
    days = np.arange(lo, hi + 1)
    dt64 = _to_datetime(days)
    ok = pd.DatetimeIndex(dt64).month != 8
    for g0, g1 in gaps:
        ok &= ~((days >= _days(g0)) & (days <= _days(g1)))
    return np.sort(rng.choice(days[ok], size=n, replace=True))


def _delivery(rng) -> pd.DataFrame:
    """Delivery logs: SOS+ sessions against its targets, MACE professional training, detached youth work contacts
    and onward referrals, family support sessions, Pathways Out mentoring sessions, capacity-building trainings."""
    recs = []

    def add(pid, days, activity, audience, sessions, attendees, referrals_to=None, organisations=None):
        k = len(days)
        recs.append(pd.DataFrame({
            "programme_id": pid, "date": _to_datetime(days), "activity": activity, "audience": audience,
            "sessions": np.asarray(sessions, dtype=np.int64) * np.ones(k, dtype=np.int64),
            "attendees": np.asarray(attendees, dtype=np.int64),
            "referrals_to": pd.array([referrals_to] * k if not isinstance(referrals_to, np.ndarray) else referrals_to,
                                     dtype=object),
            "organisations": pd.array(organisations if organisations is not None else [pd.NA] * k, dtype="Int64"),
        }))

    covid = [("2020-03-23", "2020-08-31")]
    for audience, n_target, att_target in (("pupils", 120, 8600), ("teachers", 40, 2100), ("parents", 80, 7700)):
        n = int(round(n_target * rng.uniform(0.92, 1.03)))
        mean = att_target / n_target * rng.uniform(0.94, 1.02)
        days = _spread_dates(rng, n, "2019-04-01", "2022-03-31", gaps=covid)
        add("sos-plus", days, "session", audience, 1, np.maximum(1, rng.negative_binomial(8, 8 / (8 + mean), n)))
    n = 64
    add("mace", _spread_dates(rng, n, "2019-04-01", "2020-06-30", gaps=[("2020-03-23", "2020-05-31")]), "training",
        "professionals", 1, rng.integers(8, 40, n))
    # detached youth work: weekly outreach contact records and monthly onward referrals
    weeks = np.arange(_days("2019-04-01"), _days("2020-03-31") + 1, 7)
    add("detached-youth-work", weeks, "contact", "young_people", rng.integers(2, 6, weeks.size),
        rng.poisson(28, weeks.size))
    months = pd.date_range("2019-04-01", "2020-03-01", freq="MS")
    mdays = (months.values.astype("datetime64[D]") - _EPOCH).astype(np.int64) + 14
    for to, mean in (("MASH", 3.0), ("MACE", 2.0), ("early_help", 1.5), ("YOT", 0.5)):
        add("detached-youth-work", mdays, "referral", "young_people", 0, rng.poisson(mean, mdays.size),
            referrals_to=to)
    add("family-support", mdays, "session", "families", rng.poisson(22, mdays.size), rng.poisson(9, mdays.size))
    add("pathways-out", mdays, "session", "young_people", rng.poisson(40, mdays.size), rng.poisson(25, mdays.size))
    n = 28
    add("capacity-building", _spread_dates(rng, n, "2019-04-01", "2020-03-31"), "training", "vcse_organisations", 1,
        rng.integers(6, 26, n), organisations=rng.integers(3, 13, n))
    return pd.concat(recs, ignore_index=True)


def generate_world(seed: int, out=None, scale: float = 1.0, *, fmt: str = "csv",
                   progress: bool = False) -> dict[str, pd.DataFrame]:
    """Generate the synthetic world; deterministic per ``seed``.

    Returns the canonical tables (``people``, ``referrals``, ``contacts``, ``offences``, ``custody``,
    ``area_monthly``, ``delivery``, and ``ete``: Pathway Out (ADDER) education, training and employment records; dates as
    datetime64[ns]). When ``out`` is given, writes ``<table>.csv`` (or
    ``.parquet`` with ``fmt="parquet"``), ``truth.json`` and ``meta.json`` there.

    ``scale`` multiplies the comparison pools (police-record non-participants: youth aged 10-19, mostly 10-17,
    across Norfolk; adult women; adults with drug links); programme sizes follow the public pages (Pathways Out 46,
    WONDER+ 850, ...). Selection into each programme is a risk-weighted draw on observables at the index date
    (prior proven offences in 2 years, drug misuse, age, sex) from its target group, so naive comparisons are
    biased and matching on those covariates removes the bias. Each person offends at a person-level yearly rate
    (log-normal; by sex and drug misuse, and following their age); after the index date a participant's rate is
    multiplied by the programme's true hazard ratio (``truth.json``), which also holds the implied true ATT on one-year
    proven (re)offending (risk difference, by simulation) and the ADDER area-series changes.
    """
    import json
    from pathlib import Path

    from tqdm import tqdm

    if not scale > 0:
        raise ValueError(f"scale: must be > 0, got {scale!r}")
    rng = np.random.default_rng(seed)
    extract_day = _days(EXTRACT_DATE)
    history_start = _days(HISTORY_START)
    steps = tqdm(total=6, desc="synth", disable=not progress, leave=False)

    blocks, off_blocks, ref_blocks, contact_blocks = [], [], [], []
    offset = 0
    for pid, spec in _PROGRAMMES.items():
        people, offs, refs = _participants(rng, pid, spec, history_start, extract_day)
        n = people["ref"].size
        people["programme"] = np.full(n, pid, dtype=object)
        people["status"] = refs["completion_status"]
        blocks.append(people)
        off_blocks.append((offs[0] + offset,) + offs[1:])
        refs["pidx"] = np.arange(n) + offset
        ref_blocks.append(refs)
        # police contacts in the year before referral (0-3)
        k = rng.integers(0, 4, n)
        cidx = np.repeat(np.arange(n), k)
        cday = refs["referral_date"][cidx] - rng.integers(1, 366, cidx.size)
        types = _YOUTH_CONTACTS if spec["pool"] == "youth" else _ADULT_CONTACTS
        contact_blocks.append((cidx + offset, cday, _choice(rng, cidx.size, types)))
        offset += n
    steps.update()
    for key, size in POOL_SIZES.items():
        n = max(int(round(size * scale)), 1)
        people, offs, (cidx, cday) = _pool(rng, key, n, history_start, extract_day)
        people["programme"] = np.full(n, "", dtype=object)
        people["status"] = np.full(n, "", dtype=object)
        blocks.append(people)
        off_blocks.append((offs[0] + offset,) + offs[1:])
        types = dict(_YOUTH_CONTACTS if key == "youth" else _ADULT_CONTACTS)
        # higher-risk people are more often arrested
        ctype = _choice(rng, cidx.size, types)
        arrest = rng.random(cidx.size) < np.minimum(0.5, 0.1 * people["rate"][cidx])
        ctype[arrest] = "arrest"
        contact_blocks.append((cidx + offset, cday, ctype))
        offset += n
    steps.update()
    allp = _concat(blocks)
    n_people = offset
    # pseudonymous ids in random order so ids reveal nothing about programme membership
    perm = rng.permutation(n_people)
    pid_of = np.empty(n_people, dtype=object)
    pid_of[perm] = person_ids(np.arange(1, n_people + 1))

    # people
    people_df = pd.DataFrame({
        "person_id": pid_of, "date_of_birth": _to_datetime(allp["dob"]), "sex": allp["sex"],
        "ethnicity_group": allp["ethnicity"], "district": allp["district"], "drug_misuse": allp["drug"].astype(bool),
    })
    people_df = people_df.iloc[np.argsort(perm, kind="stable")].reset_index(drop=True)

    # offences
    o = [np.concatenate([b[i] for b in off_blocks]) for i in range(6)]
    off = pd.DataFrame({"pidx": o[0], "offence_day": o[1], "group": o[2], "drug_related": o[3], "disp": o[4],
                        "disp_day": o[5]})
    off["age"] = _age_at(allp["dob"][off["pidx"].to_numpy()], off["offence_day"].to_numpy())
    custody = _custody(rng, off, pd.DataFrame({"ref": allp["ref"]}))
    steps.update()
    off = off.sort_values(["offence_day", "pidx"], kind="stable").reset_index(drop=True)
    offences_df = pd.DataFrame({
        "offence_id": [f"O{i:08d}" for i in range(1, len(off) + 1)],
        "person_id": pid_of[off["pidx"].to_numpy()],
        "offence_date": _to_datetime(off["offence_day"].to_numpy()),
        "disposal_date": _to_datetime(off["disp_day"].to_numpy()),
        "disposal_type": np.array(DISPOSAL_TYPES, dtype=object)[off["disp"].to_numpy()],
        "offence_group": np.array(OFFENCE_GROUPS, dtype=object)[off["group"].to_numpy()],
        "drug_related": off["drug_related"].to_numpy(bool),
    })
    custody = custody.sort_values(["custody_start", "pidx"], kind="stable")
    custody_df = pd.DataFrame({
        "person_id": pid_of[custody["pidx"].to_numpy()],
        "custody_start": _to_datetime(custody["custody_start"].to_numpy()),
        "custody_end": _to_datetime(custody["custody_end"].to_numpy()),
    }).reset_index(drop=True)

    # referrals
    r = {k: np.concatenate([b[k] for b in ref_blocks]) for k in ref_blocks[0]}
    referrals_df = pd.DataFrame({
        "referral_id": [f"R{i:06d}" for i in range(1, r["pidx"].size + 1)],
        "person_id": pid_of[r["pidx"]], "programme_id": r["programme_id"],
        "referral_date": _to_datetime(r["referral_date"]), "start_date": _to_datetime(r["start_date"]),
        "end_date": _to_datetime(r["end_date"]), "completion_status": r["completion_status"],
        "referral_source": r["referral_source"],
    })

    # contacts
    c = [np.concatenate([b[i] for b in contact_blocks]) for i in range(3)]
    contacts_df = pd.DataFrame({"person_id": pid_of[c[0]], "contact_date": _to_datetime(c[1]),
                                "contact_type": c[2]})
    contacts_df = contacts_df.iloc[np.lexsort((contacts_df["person_id"].to_numpy(), c[1]))].reset_index(drop=True)
    steps.update()

    area_df, area_truth = _area_series(rng, extract_day)
    delivery_df = _delivery(rng)
    steps.update()

    truth = _truth(rng, allp, extract_day)
    truth["project-adder"] = area_truth
    ete_df, ete_truth = _ete(seed, referrals_df, extract_day)
    truth["pathway-out-adder"]["ete"] = ete_truth
    steps.update()
    steps.close()
    tables = {"people": people_df, "referrals": referrals_df, "contacts": contacts_df, "offences": offences_df,
              "custody": custody_df, "area_monthly": area_df, "delivery": delivery_df, "ete": ete_df}
    meta = {"extract_date": EXTRACT_DATE, "seed": int(seed), "generator_version": GENERATOR_VERSION,
            "scale": float(scale)}
    if out is not None:
        out = Path(out)
        _write_tables(tables, out, fmt, progress)
        pools = {k: max(int(round(v * scale)), 1) for k, v in POOL_SIZES.items()}
        doc = {**meta, "programmes": truth, "comparison_pools": pools,
               "notes": "True effects used by evaluation.synth; for calibration tests only (reports never read it)."}
        (out / "truth.json").write_text(json.dumps(doc, indent=2) + "\n")
        (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return tables


def _truth(rng, allp: dict, extract_day: int) -> dict:
    """Per programme: hazard ratio(s) and the implied true ATT on one-year proven (re)offending (simulation)."""
    truth: dict = {}
    for pid, spec in _PROGRAMMES.items():
        sel = allp["programme"] == pid
        status = allp["status"][sel]
        has_index = np.ones(sel.sum(), bool) if spec["index"] == "referral_date" else status != "not_started"
        people = {k: v[sel][has_index] for k, v in allp.items()}
        sim = _one_year_truth(rng, people, people["hr"], extract_day)
        d = sim["risk_treated"] - sim["risk_untreated"]
        hrs = sorted(set(spec["hr"].values()))

        def summary(mask):
            p1, p0 = float(sim["risk_treated"][mask].mean()), float(sim["risk_untreated"][mask].mean())
            return {"n": int(mask.sum()), "risk_treated": round(p1, 5), "risk_untreated": round(p0, 5),
                    "att_risk_difference": round(p1 - p0, 5), "att_risk_ratio": round(p1 / p0, 5) if p0 else None,
                    # marginal (population-averaged) one-year cumulative-hazard ratio: attenuated towards 1
                    # relative to the person-level hazard ratio by the heterogeneity in risk
                    "marginal_hazard_ratio_1y": round(float(np.log1p(-p1) / np.log1p(-p0)), 5) if 0 < p0 < 1
                    else None}

        entry = {
            "hazard_ratio": hrs[0] if len(hrs) == 1 else None,
            "hazard_ratio_by_status": dict(spec["hr"]),
            "index_date": spec["index"],
            "n_referred": int(sel.sum()),
            "population": "everyone with an index date (" + (
                "all referred" if spec["index"] == "referral_date" else "started") + ")",
            **summary(np.ones(d.size, bool)),
            "by_status": {st: summary(people["status"] == st) for st in np.unique(people["status"])},
            "outcome": "offence in (index, index + 12 calendar months] with a counted disposal on or before "
                       "index + 18 calendar months",
            "selection": f"risk-weighted draw on observables at index: {spec['sel']}",
        }
        truth[pid] = entry
    truth["capacity-building"] = {"design": "delivery", "hazard_ratio": None}
    return truth
