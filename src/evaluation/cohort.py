"""Programme cohorts: participants and a comparison pool from police records, with covariates at the index date.

:func:`build_cohort` returns a :class:`Cohort`:

* participants (``treat = 1``): the programme's referrals. When the world's referrals came from a provider's list
  linked to police records (``World.linkage``, :mod:`evaluation.linkage`), attrition starts at "referrals on the
  provider's list" → "referrals found in police records" → "people referred (repeat referrals counted once)".
  Index date by the programme's ``index_date`` rule
  (``referral_date`` or ``start_date``); under ``start_date`` people who never started are an attrition stage and
  are excluded (they are counted, never dropped silently).
* comparison pool (``treat = 0``): people never referred to this programme with a police contact in the programme
  window (``start``..``end`` inclusive) that meets the config's ``target_group`` at the contact date -- age in
  whole years within ``min_age``..``max_age``, ``districts`` (a list, or ``all`` = the seven Norfolk districts),
  ``sex`` (``any``, ``F`` or ``M``) and, when ``drug_link: true``, a drug link (the person's ``drug_misuse``
  marker or a drug-related offence record dated on or before the contact). One index date per pool person: their
  first eligible contact.
* covariates at the index date: ``age`` (whole years, calendar-exact), ``male``, ``prior_offences`` (proven
  offences -- counted disposal given on or before the index date -- committed in the 24 calendar months up to
  and including the index date, as the synthetic generator defines its observable prior), ``prior_drug`` (1 if
  any proven drug-related offence, any time up to the index date), ``drug_misuse``, ``norwich``, ``yarmouth``
  (district dummies), plus ``district``, ``sex``, ``ethnicity_group`` and ``completion_status`` (participants
  only; ``<NA>`` in the pool).

``Cohort.attrition`` lists each stage with the people left and dropped; ``Cohort.data_quality`` counts missing or
unknown values among the cohort's people (and participants outside the target group, which are kept: a referral
is a referral).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaluation.config import Programme, load_programme
from evaluation.outcomes import COUNTED_DISPOSALS, OutcomeInputError, _rows, add_months

from evaluation.schemas import NORFOLK_DISTRICTS  # noqa: E402 - the code list is defined once, in schemas
COHORT_COLUMNS = ["person_id", "treat", "index_date", "age", "male", "prior_offences", "prior_drug", "drug_misuse",
                  "norwich", "yarmouth", "district", "sex", "ethnicity_group", "completion_status"]
PRIOR_MONTHS = 24


class CohortError(OutcomeInputError):
    """Bad input to :func:`build_cohort`; the message names the table, column and first rows."""


@dataclass
class Cohort:
    """A programme cohort: ``data`` (one row per person, :data:`COHORT_COLUMNS`), ``attrition`` (stages with
    counts), ``data_quality`` (missing/unknown values) and the programme id."""

    programme: str
    data: pd.DataFrame
    attrition: pd.DataFrame
    data_quality: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def treated(self) -> pd.DataFrame:
        return self.data[self.data["treat"] == 1]

    @property
    def pool(self) -> pd.DataFrame:
        return self.data[self.data["treat"] == 0]


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
def _table(world: Any, name: str, columns: list[str]) -> pd.DataFrame:
    df = world.get(name) if isinstance(world, dict) else getattr(world, name, None)
    if df is None:
        raise CohortError(f"world: table '{name}' is missing")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise CohortError(f"{name}: missing column(s) {', '.join(map(repr, missing))}")
    return df


def _dates(s: pd.Series, table: str, col: str) -> pd.Series:
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s
    out = pd.to_datetime(s, errors="coerce", format="mixed")
    bad = (out.isna() & s.notna()).to_numpy()
    if bad.any():
        raise CohortError(f"{table}: column '{col}' has values that are not dates: {_rows(s.index, bad, s.to_numpy())}")
    return out


def _day(s: pd.Series) -> np.ndarray:
    return (s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]") - np.datetime64("1970-01-01", "D")).astype(
        np.int64)


def age_years(dob: pd.Series, on: pd.Series) -> np.ndarray:
    """Whole years of age on date ``on`` (calendar-exact: the birthday is reached on its anniversary; someone born
    on 29 February turns a year older on 1 March in non-leap years). NaN where the date of birth is missing."""
    dob = pd.to_datetime(pd.Series(np.asarray(dob)))
    on = pd.to_datetime(pd.Series(np.asarray(on)))
    years = on.dt.year - dob.dt.year
    before = (on.dt.month * 100 + on.dt.day) < (dob.dt.month * 100 + dob.dt.day)
    return (years - before.astype(float)).to_numpy(dtype=float)


def _target(prog: Programme) -> dict[str, Any]:
    tg = dict(prog.get("target_group") or {})
    districts = tg.get("districts", "all")
    tg["districts"] = NORFOLK_DISTRICTS if districts in (None, "all") else tuple(districts)
    tg["sex"] = tg.get("sex", "any") or "any"
    return tg


def _in_target(tg: dict[str, Any], age: np.ndarray, district: pd.Series, sex: pd.Series) -> np.ndarray:
    ok = np.ones(len(age), dtype=bool)
    if tg.get("min_age") is not None:
        ok &= age >= tg["min_age"]
    if tg.get("max_age") is not None:
        ok &= age <= tg["max_age"]
    ok &= district.isin(tg["districts"]).to_numpy()
    if tg["sex"] != "any":
        ok &= (sex == tg["sex"]).to_numpy()
    return ok


def _linkage_row(world: Any, programme_id: str) -> dict | None:
    """The programme's linkage counts when the world's referrals came from linked provider lists, else None."""
    counts = world.get("linkage") if isinstance(world, dict) else getattr(world, "linkage", None)
    if counts is None:
        return None
    from evaluation.linkage import linkage_counts

    return linkage_counts(counts, programme_id)


def _stage(rows: list, group: str, stage: str, n: int, previous: int | None, reason: str = "") -> int:
    rows.append({"group": group, "stage": stage, "n": int(n),
                 "excluded": 0 if previous is None else int(previous - n), "reason": reason})
    return int(n)


def _priors(persons: pd.Series, index: pd.Series, offences: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(prior proven offences in the 24 months up to the index date, any proven drug-related offence by it)."""
    key = pd.DataFrame({"person_id": persons.to_numpy(), "row": np.arange(len(persons)), "idx": _day(index)})
    o = offences[offences["disposal_type"].isin(COUNTED_DISPOSALS) & offences["disposal_date"].notna()]
    o = pd.DataFrame({"person_id": o["person_id"].to_numpy(), "od": _day(o["offence_date"]),
                      "dd": _day(o["disposal_date"]), "drug": o["drug_related"].astype(bool).to_numpy()})
    m = key.merge(o, on="person_id", how="inner")
    lo = add_months(m["idx"].to_numpy(), -PRIOR_MONTHS)
    proven = (m["od"].to_numpy() <= m["idx"].to_numpy()) & (m["dd"].to_numpy() <= m["idx"].to_numpy())
    recent = proven & (m["od"].to_numpy() >= lo)
    prior = np.bincount(m["row"].to_numpy()[recent], minlength=len(persons))
    drug = np.bincount(m["row"].to_numpy()[proven & m["drug"].to_numpy()], minlength=len(persons)) > 0
    return prior.astype(np.int64), drug.astype(np.int64)


# ---------------------------------------------------------------------------------------------------------------
# the cohort
# ---------------------------------------------------------------------------------------------------------------
def build_cohort(world: Any, programme: Programme | str, *, pool_per_treated: int | None = None,
                 seed: int = 0) -> Cohort:
    """Participants and comparison pool of one programme, with covariates at each person's index date.

    ``world``: a :class:`evaluation.validate.World` (or any object / dict with DataFrames ``people``,
    ``referrals``, ``contacts``, ``offences``). ``programme``: a :class:`~evaluation.config.Programme` or its id.
    ``pool_per_treated``: keep at most this many pool people per participant (a random sample with ``seed``;
    ``None`` keeps the whole pool). See the module docstring for the rules. Raises :class:`CohortError` for a
    person referred twice to the programme, missing tables or columns and unparseable dates.
    """
    prog = programme if isinstance(programme, Programme) else load_programme(programme)
    people = _table(world, "people", ["person_id", "date_of_birth", "sex", "ethnicity_group", "district",
                                      "drug_misuse"])
    referrals = _table(world, "referrals", ["person_id", "programme_id", "referral_date", "start_date",
                                            "completion_status"])
    contacts = _table(world, "contacts", ["person_id", "contact_date"])
    offences = _table(world, "offences", ["person_id", "offence_date", "disposal_date", "disposal_type",
                                          "drug_related"])
    dup = people["person_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        raise CohortError(f"people: column 'person_id' has duplicate people: "
                          f"{_rows(people.index, dup, people['person_id'].to_numpy())}")
    if pool_per_treated is not None and (not isinstance(pool_per_treated, int) or pool_per_treated < 1):
        raise CohortError(f"pool_per_treated: must be a whole number >= 1 or None, got {pool_per_treated!r}")
    rule = prog.index_date_rule
    start, end = pd.Timestamp(prog.start), pd.Timestamp(prog.end)
    attrition: list[dict] = []

    # ---- participants
    ref = referrals[referrals["programme_id"].astype(str) == prog.id]
    dup = ref["person_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        raise CohortError(f"referrals: column 'person_id' has people referred more than once to '{prog.id}': "
                          f"{_rows(ref.index, dup, ref['person_id'].to_numpy())}")
    link = _linkage_row(world, prog.id)
    if link is None:
        n = _stage(attrition, "participants", "referred", len(ref), None)
    else:  # the provider's list, linked to police records (evaluation.linkage): the Justice Data Lab's first step
        n = _stage(attrition, "participants", "referrals on the provider's list", link["referred"], None)
        n = _stage(attrition, "participants", "referrals found in police records", link["found"], n,
                   "not found in police records")
        n = _stage(attrition, "participants", "people referred (repeat referrals counted once)",
                   link["found"] - link["duplicates"], n,
                   "repeat referral of a person already referred")
        if len(ref) > n:
            raise CohortError(f"referrals: {len(ref):,} linked referrals to '{prog.id}' but the linkage counts say "
                              f"{n:,}; the linkage output and the referrals table disagree (run `python -m "
                              "evaluation link` again)")
        if len(ref) < n:  # referrals dated after the extract date (World.exclusions)
            n = _stage(attrition, "participants", "referred by the extract date", len(ref), n,
                       "referral dated after the extract date")
    found = ref["person_id"].isin(people["person_id"]).to_numpy()
    if link is None or not found.all():  # linked referrals were found in police records: a step only if one lacks
        n = _stage(attrition, "participants", "with a police person record", found.sum(), n,
                   "person not in people table")
    ref = ref[found]
    index_col = "start_date" if rule == "start_date" else "referral_date"
    idx = _dates(ref[index_col], "referrals", index_col)
    has_index = idx.notna().to_numpy()
    label = "started (index date = start date)" if rule == "start_date" else "referral date present"
    n = _stage(attrition, "participants", label, has_index.sum(), n,
               "never started" if rule == "start_date" else "no referral date")
    treated = pd.DataFrame({"person_id": ref["person_id"].to_numpy()[has_index],
                            "index_date": idx.to_numpy()[has_index],
                            "completion_status": ref["completion_status"].astype("string").to_numpy()[has_index]})

    # ---- comparison pool
    tg = _target(prog)
    referred_any = set(referrals.loc[referrals["programme_id"].astype(str) == prog.id, "person_id"])
    c = contacts[["person_id", "contact_date"]].copy()
    c["contact_date"] = _dates(c["contact_date"], "contacts", "contact_date")
    c = c[(c["contact_date"] >= start) & (c["contact_date"] <= end) & ~c["person_id"].isin(referred_any)]
    n = _stage(attrition, "comparison pool", "police contact in programme window (not referred)",
               c["person_id"].nunique(), None)
    c = c.merge(people[["person_id", "date_of_birth", "sex", "district", "drug_misuse"]], on="person_id", how="inner")
    n = _stage(attrition, "comparison pool", "with a police person record", c["person_id"].nunique(), n,
               "person not in people table")
    age = age_years(_dates(c["date_of_birth"], "people", "date_of_birth"), c["contact_date"])
    ok = _in_target(tg, age, c["district"], c["sex"])
    if tg.get("drug_link"):
        drug_off = offences.loc[offences["drug_related"].astype(bool), ["person_id", "offence_date"]]
        cc = c.reset_index(drop=True)
        m = cc[["person_id", "contact_date"]].reset_index().merge(drug_off, on="person_id", how="inner")
        linked_rows = m.loc[_dates(m["offence_date"], "offences", "offence_date") <= m["contact_date"], "index"]
        linked = np.zeros(len(cc), dtype=bool)
        linked[linked_rows.to_numpy()] = True
        ok &= linked | cc["drug_misuse"].fillna(False).astype(bool).to_numpy()
    c = c[ok]
    reason = ", ".join(f"{k}={v}" for k, v in (("age", f"{tg.get('min_age')}-{tg.get('max_age')}"),
                                                ("sex", tg["sex"]), ("drug_link", tg.get("drug_link", False))))
    n = _stage(attrition, "comparison pool", "contact meets target group", c["person_id"].nunique(), n,
               f"outside target group ({reason}; districts {', '.join(tg['districts'])})")
    first = c.sort_values(["contact_date", "person_id"]).drop_duplicates("person_id", keep="first")
    pool = pd.DataFrame({"person_id": first["person_id"].to_numpy(), "index_date": first["contact_date"].to_numpy()})
    pool = pool.sort_values("person_id", kind="stable").reset_index(drop=True)
    if pool_per_treated is not None and len(pool) > pool_per_treated * len(treated):
        keep = np.random.default_rng(seed).choice(len(pool), pool_per_treated * len(treated), replace=False)
        pool = pool.iloc[np.sort(keep)].reset_index(drop=True)
        n = _stage(attrition, "comparison pool", f"sampled ({pool_per_treated} per participant, seed {seed})",
                   len(pool), n, "not sampled")
    pool["completion_status"] = pd.array([pd.NA] * len(pool), dtype="string")

    # ---- covariates at the index date
    data = pd.concat([treated.assign(treat=1), pool.assign(treat=0)], ignore_index=True)
    data["index_date"] = pd.to_datetime(data["index_date"])
    p = people.set_index("person_id")
    attrs = p.reindex(data["person_id"])
    data["age"] = age_years(_dates(attrs["date_of_birth"].reset_index(drop=True), "people", "date_of_birth"),
                            data["index_date"])
    data["male"] = (attrs["sex"].astype("string") == "M").fillna(False).astype(int).to_numpy()
    data["prior_offences"], data["prior_drug"] = _priors(data["person_id"], data["index_date"], offences)
    data["drug_misuse"] = attrs["drug_misuse"].fillna(False).astype(bool).astype(int).to_numpy()
    district = attrs["district"].astype("string").to_numpy()
    data["norwich"] = (district == "Norwich").astype(int)
    data["yarmouth"] = (district == "Great Yarmouth").astype(int)
    data["district"] = district
    data["sex"] = attrs["sex"].astype("string").to_numpy()
    data["ethnicity_group"] = attrs["ethnicity_group"].astype("string").to_numpy()
    if not np.isnan(data["age"]).any():
        data["age"] = data["age"].astype(int)
    data["treat"] = data["treat"].astype(int)
    data = data[COHORT_COLUMNS]
    _stage(attrition, "participants", "in cohort", int((data["treat"] == 1).sum()), None)
    _stage(attrition, "comparison pool", "in cohort", int((data["treat"] == 0).sum()), None)

    # ---- data quality
    t = data["treat"] == 1
    dq = []
    for col, bad, note in (
        ("age", data["age"].isna(), "date of birth missing"),
        ("sex", data["sex"].isna() | (data["sex"] == "U"), "missing or 'U' (unknown); counted as not male"),
        ("ethnicity_group", data["ethnicity_group"].isna() | (data["ethnicity_group"] == "Unknown"),
         "missing or 'Unknown'"),
        ("district", data["district"].isna(), "missing"),
        ("drug_misuse", attrs["drug_misuse"].isna().to_numpy(), "missing; counted as 0"),
    ):
        bad = np.asarray(bad, dtype=bool)
        dq.append({"item": col, "participants": int(bad[t].sum()), "comparison pool": int(bad[~t].sum()),
                   "note": note})
    out_tg = ~_in_target(tg, data.loc[t, "age"].to_numpy(dtype=float), data.loc[t, "district"].astype("string"),
                         data.loc[t, "sex"].astype("string"))
    dq.append({"item": "outside target group", "participants": int(out_tg.sum()), "comparison pool": 0,
               "note": "participants outside the configured ages/districts/sex (kept)"})
    return Cohort(programme=prog.id, data=data.reset_index(drop=True), attrition=pd.DataFrame(attrition),
                  data_quality=pd.DataFrame(dq))


__all__ = ["Cohort", "CohortError", "build_cohort", "age_years", "COHORT_COLUMNS", "NORFOLK_DISTRICTS"]
