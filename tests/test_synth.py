"""The synthetic world: determinism, sizes and windows from the seeds, schema, consistency, truth, selection."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from evaluation import synth
from evaluation.config import load_programmes

COLUMNS = {  # data/README.md, in order
    "people": ["person_id", "date_of_birth", "sex", "ethnicity_group", "district", "drug_misuse"],
    "referrals": ["referral_id", "person_id", "programme_id", "referral_date", "start_date", "end_date",
                  "completion_status", "referral_source"],
    "contacts": ["person_id", "contact_date", "contact_type"],
    "offences": ["offence_id", "person_id", "offence_date", "disposal_date", "disposal_type", "offence_group",
                 "drug_related"],
    "custody": ["person_id", "custody_start", "custody_end"],
    "area_monthly": ["area", "month", "measure", "value"],
    "delivery": ["programme_id", "date", "activity", "audience", "sessions", "attendees", "referrals_to",
                 "organisations"],
}
DATES = {"people": ["date_of_birth"], "referrals": ["referral_date", "start_date", "end_date"],
         "contacts": ["contact_date"], "offences": ["offence_date", "disposal_date"],
         "custody": ["custody_start", "custody_end"], "area_monthly": ["month"], "delivery": ["date"]}
COUNTED = set(synth.COUNTED_DISPOSALS)
PROGRAMMES = load_programmes()


def _age(dob: pd.Series, on: pd.Series) -> pd.Series:
    years = on.dt.year - dob.dt.year
    before = (on.dt.month < dob.dt.month) | ((on.dt.month == dob.dt.month) & (on.dt.day < dob.dt.day))
    return years - before.astype(int)


def _index(referrals: pd.DataFrame, pid: str) -> pd.DataFrame:
    r = referrals[referrals.programme_id == pid]
    rule = PROGRAMMES[pid].index_date_rule
    return r.assign(index_date=r[rule]).dropna(subset=["index_date"])


# ---------------------------------------------------------------------------------------------------------------
def test_deterministic_per_seed():
    a = synth.generate_world(7, scale=0.05)
    b = synth.generate_world(7, scale=0.05)
    c = synth.generate_world(8, scale=0.05)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert not a["offences"].equals(c["offences"])
    assert not a["referrals"].equals(c["referrals"])


def test_files_and_meta(small_world):
    for name in COLUMNS:
        assert (small_world / f"{name}.csv").exists(), name
    meta = json.loads((small_world / "meta.json").read_text())
    assert meta["seed"] == 20190401 and meta["scale"] == 0.2 and meta["generator_version"]
    assert meta["extract_date"] == synth.EXTRACT_DATE


def test_schema_columns_and_dtypes(small_world, small_world_tables):
    for name, cols in COLUMNS.items():
        df = small_world_tables[name]
        assert list(df.columns) == cols, name
        for c in DATES[name]:
            assert df[c].dtype == "datetime64[ns]", (name, c)
        on_disk = pd.read_csv(small_world / f"{name}.csv", nrows=5)
        assert list(on_disk.columns) == cols, name
    t = small_world_tables
    assert t["people"]["drug_misuse"].dtype == bool and t["offences"]["drug_related"].dtype == bool
    assert t["people"]["person_id"].is_unique and t["offences"]["offence_id"].is_unique
    assert t["referrals"]["referral_id"].is_unique
    assert set(t["people"]["sex"]) <= {"F", "M", "U"}
    assert set(t["people"]["ethnicity_group"]) <= set(synth.ETHNICITY)
    assert set(t["offences"]["disposal_type"]) == set(synth.DISPOSAL_TYPES)
    assert set(t["offences"]["offence_group"]) == set(synth.OFFENCE_GROUPS)
    assert set(t["referrals"]["programme_id"]) <= set(PROGRAMMES)
    assert set(t["contacts"]["contact_type"]) <= {"arrest", "stop_search", "intelligence", "safeguarding",
                                                  "custody", "school_concern"}
    assert set(t["area_monthly"]["measure"]) == {"drug_offences", "drug_deaths", "treatment_starts",
                                                 "treatment_completions", "arrests", "seizures", "population"}
    assert (t["area_monthly"]["value"] >= 0).all()
    assert t["people"]["person_id"].str.fullmatch(r"P\d{7}").all()


@pytest.mark.skipif(importlib.util.find_spec("evaluation.validate") is None, reason="evaluation.validate not there yet")
def test_world_validates(small_world):
    from evaluation.validate import load_world

    world = load_world(small_world)
    assert len(world.people) > 0 and len(world.offences) > 0 and world.area_monthly is not None


def test_links_and_time_consistency(small_world_tables):
    t = small_world_tables
    ids = set(t["people"]["person_id"])
    for name in ("referrals", "contacts", "offences", "custody"):
        assert set(t[name]["person_id"]) <= ids, name
    r = t["referrals"]
    assert not r.duplicated(["person_id", "programme_id"]).any()
    started = r["start_date"].notna()
    assert (r.loc[started, "start_date"] >= r.loc[started, "referral_date"]).all()
    ended = r["end_date"].notna()
    assert (r.loc[ended, "end_date"] >= r.loc[ended, "start_date"]).all()
    assert (r.loc[~started, "completion_status"] == "not_started").all()
    o = t["offences"]
    disposed = o["disposal_date"].notna()
    assert (o.loc[disposed, "disposal_date"] >= o.loc[disposed, "offence_date"]).all()
    assert (o.loc[~disposed, "disposal_type"] == "pending").all()
    assert (o["disposal_date"].max() <= pd.Timestamp(synth.EXTRACT_DATE))
    # disposal lags from days to months; some non-counted disposals; drug flag on all drug offences
    lag = (o["disposal_date"] - o["offence_date"]).dt.days
    assert lag.quantile(0.1) < 14 and lag.quantile(0.9) > 120
    assert o["drug_related"][o["offence_group"].isin(["drug_possession", "drug_supply"])].all()
    c = t["custody"]
    assert len(c) > 0 and (c["custody_end"] >= c["custody_start"]).all()
    # no offence while in custody
    m = o.merge(c, on="person_id")
    assert not ((m.offence_date > m.custody_start) & (m.offence_date < m.custody_end)).any()
    # offences only from age 10 (age of criminal responsibility)
    p = t["people"].set_index("person_id")
    assert (_age(o.person_id.map(p.date_of_birth), o.offence_date) >= 10).all()


@pytest.mark.parametrize("pid, lo, hi", [
    ("pathways-out", 46, 46), ("wonder-plus", 800, 1000), ("pathway-out-adder", 120, 200), ("sos-plus", 120, 200),
    ("mace", 200, 300), ("detached-youth-work", 120, 200), ("family-support", 40, 80),
])
def test_programme_sizes_windows_and_target_groups(small_world_tables, pid, lo, hi):
    prog = PROGRAMMES[pid]
    t = small_world_tables
    r = t["referrals"][t["referrals"].programme_id == pid]
    assert lo <= len(r) <= hi
    assert r.referral_date.min() >= pd.Timestamp(prog.start) and r.referral_date.max() <= pd.Timestamp(prog.end)
    assert set(r.referral_source) <= set(prog.get("referral_sources"))
    idx = _index(t["referrals"], pid).merge(t["people"], on="person_id")
    tg = prog.get("target_group")
    age = _age(idx.date_of_birth, idx.index_date)
    assert age.min() >= tg["min_age"] and age.max() <= tg["max_age"]
    if tg.get("districts") not in (None, "all"):
        assert set(idx.district) <= set(tg["districts"])
    if tg.get("sex") == "F":
        assert (idx.sex == "F").all()
    if tg.get("drug_link"):
        assert idx.drug_misuse.mean() > 0.8
    assert (r.completion_status == "completed").any() and (r.completion_status != "completed").any()


def test_pathways_out_facts(small_world_tables):
    r = small_world_tables["referrals"].query("programme_id == 'pathways-out'")
    assert len(r) == 46 and set(r.referral_source) == {"school"}
    p = small_world_tables["people"].set_index("person_id").loc[r.person_id]
    assert set(p.district) == {"Norwich", "Great Yarmouth"}
    w = small_world_tables["referrals"].query("programme_id == 'wonder-plus'")
    assert {"custody", "community_policing", "early_help", "health", "victim_services", "self"} <= set(w.referral_source)


def _prior_and_outcome(t: dict, cohort: pd.DataFrame) -> pd.DataFrame:
    """Proven offences in the 2 years before index (disposed by index) and one-year proven (re)offending."""
    o = t["offences"][t["offences"].disposal_type.isin(COUNTED)]
    m = cohort[["person_id", "index_date"]].merge(o, on="person_id")
    pre = m[(m.offence_date <= m.index_date) & (m.offence_date > m.index_date - pd.DateOffset(years=2))
            & (m.disposal_date <= m.index_date)]
    post = m[(m.offence_date > m.index_date) & (m.offence_date <= m.index_date + pd.DateOffset(years=1))
             & (m.disposal_date <= m.index_date + pd.DateOffset(months=18))]
    out = cohort.copy()
    out["prior"] = out.person_id.map(pre.groupby("person_id").size()).fillna(0)
    out["y"] = out.person_id.isin(post.person_id).astype(int)
    return out


def _pool(t: dict, pid: str) -> pd.DataFrame:
    prog = PROGRAMMES[pid]
    c = t["contacts"]
    c = c[(c.contact_date >= pd.Timestamp(prog.start)) & (c.contact_date <= pd.Timestamp(prog.end))
          & ~c.person_id.isin(t["referrals"].person_id)]
    c = c.sort_values("contact_date").drop_duplicates("person_id").rename(columns={"contact_date": "index_date"})
    c = c.merge(t["people"], on="person_id")
    tg = prog.get("target_group")
    age = _age(c.date_of_birth, c.index_date)
    keep = (age >= tg["min_age"]) & (age <= tg["max_age"])
    if tg.get("sex") == "F":
        keep &= c.sex == "F"
    if tg.get("districts") not in (None, "all"):
        keep &= c.district.isin(tg["districts"])
    return c[keep]


@pytest.mark.parametrize("pid", ["mace", "wonder-plus", "pathway-out-adder", "sos-plus"])
def test_selection_on_risk_and_pool_size(small_world_tables, pid):
    t = small_world_tables
    treated = _prior_and_outcome(t, _index(t["referrals"], pid))
    pool = _prior_and_outcome(t, _pool(t, pid))
    # the pool is many times larger than the programme even at scale 0.2 (tens of times at scale 1)
    assert len(pool) >= 4 * len(treated)
    # selection on risk: participants have more prior offending and a higher naive outcome
    assert treated.prior.mean() > 1.5 * pool.prior.mean()
    assert treated.y.mean() > pool.y.mean()


def test_truth(small_world, small_world_tables):
    truth = json.loads((small_world / "truth.json").read_text())
    assert truth["seed"] == 20190401 and truth["extract_date"] == synth.EXTRACT_DATE
    prog = truth["programmes"]
    assert set(prog) == set(PROGRAMMES)
    individual = [p for p in PROGRAMMES.values() if p.is_individual]
    for p in individual:
        e = prog[p.id]
        assert e["hazard_ratio_by_status"] and -0.2 < e["att_risk_difference"] <= 0.0
        assert 0 < e["risk_treated"] <= e["risk_untreated"] < 1
    assert any(prog[p.id]["hazard_ratio"] == 1.0 for p in individual)  # at least one null programme
    assert all(0.75 <= hr <= 1.0 for p in individual for hr in prog[p.id]["hazard_ratio_by_status"].values()
               if p.id != "wonder-plus")
    w = prog["wonder-plus"]["by_status"]
    assert w["completed"]["att_risk_difference"] < w["disengaged"]["att_risk_difference"]
    adder = prog["project-adder"]
    assert adder["measures"]["drug_deaths"]["level_log_ratio"] == 0.0
    assert adder["measures"]["arrests"]["level_ratio"] > 1
    # the realised one-year rate of a large cohort sits near the simulated risk under treatment
    t = small_world_tables
    wt = _prior_and_outcome(t, _index(t["referrals"], "wonder-plus"))
    assert abs(wt.y.mean() - prog["wonder-plus"]["risk_treated"]) < 0.05


def test_wonder_completers_are_selected(small_world_tables):
    t = small_world_tables
    w = _prior_and_outcome(t, _index(t["referrals"], "wonder-plus"))
    comp = w.completion_status == "completed"
    assert w.prior[comp].mean() < w.prior[~comp].mean()
    assert set(w.completion_status) >= {"completed", "disengaged", "not_started"}


def test_area_series(small_world_tables):
    a = small_world_tables["area_monthly"]
    areas = ["Greater Norwich"] + PROGRAMMES["project-adder"].get("area")["comparison"]
    assert set(a.area) == set(areas)
    assert len(a) == len(areas) * 108 * 7
    assert a.month.min() == pd.Timestamp("2016-01-01") and a.month.max() == pd.Timestamp("2024-12-01")
    assert (a.month.dt.day == 1).all()
    post = a.month >= "2021-01-01"
    logm = a.assign(post=post).groupby(["measure", "area", "post"]).value.mean().pipe(np.log).unstack("post")
    change = logm[True] - logm[False]
    did = change.xs("Greater Norwich", level="area") - change.drop("Greater Norwich", level="area").groupby(
        "measure").mean()
    assert did["arrests"] > 0.15 and did["seizures"] > 0.15 and did["treatment_starts"] > 0.1
    assert abs(did["drug_deaths"]) < 0.35


def test_delivery_near_targets(small_world_tables):
    d = small_world_tables["delivery"]
    for pid, prog in PROGRAMMES.items():
        dd = d[d.programme_id == pid]
        if len(dd):
            assert dd.date.min() >= pd.Timestamp(prog.start) and dd.date.max() <= pd.Timestamp(prog.end)
    sos = d[d.programme_id == "sos-plus"].groupby("audience")[["sessions", "attendees"]].sum()
    for audience, target in PROGRAMMES["sos-plus"].get("targets").items():
        assert 0.85 * target["sessions"] <= sos.loc[audience, "sessions"] <= 1.1 * target["sessions"]
        assert 0.8 * target["attendees"] <= sos.loc[audience, "attendees"] <= 1.15 * target["attendees"]
    cb = d[d.programme_id == "capacity-building"]
    assert (cb.audience == "vcse_organisations").all() and cb.organisations.notna().all()
    dyw = d[(d.programme_id == "detached-youth-work") & (d.activity == "referral")]
    assert {"MASH", "MACE"} <= set(dyw.referrals_to)
    assert (d[d.activity != "referral"].referrals_to.isna()).all()
    assert (d.programme_id == "mace").any() and (d[d.programme_id == "mace"].audience == "professionals").all()


def test_scale_multiplies_pool_only():
    a = synth.generate_world(3, scale=0.05)
    b = synth.generate_world(3, scale=0.1)
    assert a["referrals"].groupby("programme_id").size().equals(b["referrals"].groupby("programme_id").size())
    assert len(b["people"]) - len(a["referrals"]) > 1.8 * (len(a["people"]) - len(a["referrals"]))
    with pytest.raises(ValueError, match="scale"):
        synth.generate_world(3, scale=0)


def test_national_tables_small():
    cohort, offences = synth.national_tables(seed=1, n_people=2_000, n_offences=30_000)
    assert list(cohort.columns) == ["person_id", "index_date"] and len(cohort) == 2_000
    assert cohort.person_id.is_unique and cohort.index_date.dtype == "datetime64[ns]"
    assert list(offences.columns) == COLUMNS["offences"] and len(offences) == 30_000
    assert offences.offence_id.is_unique and set(offences.person_id) <= set(cohort.person_id)
    assert offences.offence_date.dtype == "datetime64[ns]" and offences.disposal_date.dtype == "datetime64[ns]"
    assert offences.drug_related.dtype == bool
    disposed = offences.disposal_date.notna()
    assert (offences.disposal_date[disposed] >= offences.offence_date[disposed]).all()
    assert (offences.disposal_type[~disposed] == "pending").all()
    assert set(offences.disposal_type) == set(synth.DISPOSAL_TYPES)
    assert set(offences.offence_group.cat.categories) == set(synth.OFFENCE_GROUPS)
    # offences spread before and after index dates
    m = offences.merge(cohort, on="person_id")
    delta = (m.offence_date - m.index_date).dt.days
    assert (delta < 0).mean() > 0.4 and (delta > 0).mean() > 0.2 and delta.abs().max() <= 5 * 365 + 1000
    c2, o2 = synth.national_tables(seed=1, n_people=2_000, n_offences=30_000)
    pd.testing.assert_frame_equal(o2, offences)
    assert cohort.person_id.iloc[0] == "P0000001"


def test_cli_writes_world(tmp_path, capsys):
    from evaluation.__main__ import main

    assert main(["synth", "--seed", "5", "--out", str(tmp_path / "w"), "--scale", "0.03"]) == 0
    printed = capsys.readouterr().out
    assert "offences" in printed and str(tmp_path / "w") in printed
    assert (tmp_path / "w" / "truth.json").exists() and (tmp_path / "w" / "people.csv").exists()
    assert main(["synth", "--seed", "5", "--out", str(tmp_path / "p"), "--scale", "0.03", "--format", "parquet"]) == 0
    people = pd.read_parquet(tmp_path / "p" / "people.parquet")
    assert len(people) > 0
    with pytest.raises(SystemExit):
        main(["synth", "--seed", "5", "--out", str(tmp_path / "x"), "--scale", "lots"])


def test_start_dates_inside_programme_windows(small_world_tables):
    r = small_world_tables["referrals"]
    for pid, g in r.groupby("programme_id"):
        started = g.start_date.dropna()
        assert started.max() <= pd.Timestamp(PROGRAMMES[pid].end), pid


@pytest.mark.slow
def test_stratified_comparison_recovers_truth_wonder_plus(tmp_path):
    """Selection is on observables only: exact stratification on them recovers the true ATT (on average over
    seeds), while the naive comparison is biased (participants look worse)."""
    naive, strat, truth = [], [], []
    for seed in (11, 12, 13):
        t = synth.generate_world(seed, out=tmp_path / str(seed), scale=0.5)
        cohort = _index(t["referrals"], "wonder-plus").merge(t["people"], on="person_id")
        treated = _prior_and_outcome(t, cohort).assign(treat=1)
        pool = _prior_and_outcome(t, _pool(t, "wonder-plus")).assign(treat=0)
        d = pd.concat([treated, pool], ignore_index=True)
        age_band = (_age(d.date_of_birth, d.index_date) // 10).clip(upper=6)
        d["stratum"] = d.prior.clip(upper=4).astype(int).astype(str) + d.drug_misuse.astype(str) + age_band.astype(str)
        g = d.groupby(["stratum", "treat"]).y.agg(["mean", "size"]).unstack("treat").dropna()
        strat.append(np.average(g[("mean", 1)] - g[("mean", 0)], weights=g[("size", 1)]))
        naive.append(treated.y.mean() - pool.y.mean())
        doc = json.loads((tmp_path / str(seed) / "truth.json").read_text())
        truth.append(doc["programmes"]["wonder-plus"]["att_risk_difference"])
    assert np.mean(naive) > 0.02
    assert abs(np.mean(strat) - np.mean(truth)) < 0.025, (strat, truth)


def test_ete_records_for_pathway_out_adder(small_world_tables, small_world):
    """ETE table (issue 11): one row per Pathway Out (ADDER) participant who started, valid categories, sustained
    only when in ETE at exit, and truth.json holds the generating probabilities and a positive true effect."""
    from evaluation.validate import load_table

    ete = small_world_tables["ete"]
    refs = small_world_tables["referrals"]
    started = refs[(refs["programme_id"] == "pathway-out-adder") & refs["start_date"].notna()]
    assert set(ete["person_id"]) == set(started["person_id"]) and ete["person_id"].is_unique
    assert set(ete["status_at_exit"]) <= {"employment", "education_training", "none", "unknown"}
    not_in = ete["status_at_exit"].isin(["none"])
    assert (ete.loc[not_in, "sustained_3m"].fillna(0) == 0).all()
    assert (ete["sustained_6m"].fillna(0) <= ete["sustained_3m"].fillna(0)).all()
    typed = load_table(small_world, "ete")  # the schema in evaluation.schemas accepts the written file
    assert len(typed) == len(ete) and str(typed["sustained_3m"].dtype) == "Int64"
    truth = json.loads((small_world / "truth.json").read_text())["programmes"]["pathway-out-adder"]["ete"]
    assert truth["n_started"] == len(ete) and truth["true_effect_pp_started"] > 0
