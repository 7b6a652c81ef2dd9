"""Cohort building: hand-made worlds for each rule, then the small synthetic world for every programme."""
from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from evaluation.cohort import COHORT_COLUMNS, CohortError, age_years, build_cohort
from evaluation.config import load_programme, load_programmes

T = pd.Timestamp


def world(people, referrals, contacts, offences):
    p = pd.DataFrame(people, columns=["person_id", "date_of_birth", "sex", "ethnicity_group", "district",
                                      "drug_misuse"])
    p["date_of_birth"] = pd.to_datetime(p["date_of_birth"])
    r = pd.DataFrame(referrals, columns=["referral_id", "person_id", "programme_id", "referral_date", "start_date",
                                         "completion_status"])
    for c in ("referral_date", "start_date"):
        r[c] = pd.to_datetime(r[c])
    c = pd.DataFrame(contacts, columns=["person_id", "contact_date"])
    c["contact_date"] = pd.to_datetime(c["contact_date"])
    o = pd.DataFrame(offences, columns=["person_id", "offence_date", "disposal_date", "disposal_type",
                                        "drug_related"])
    o["offence_date"] = pd.to_datetime(o["offence_date"])
    o["disposal_date"] = pd.to_datetime(o["disposal_date"])
    return types.SimpleNamespace(people=p, referrals=r, contacts=c, offences=o)


@pytest.fixture()
def youth_world():
    people = [
        ("T1", "2005-05-02", "M", "White", "Norwich", False),
        ("T2", "2005-01-01", "F", "White", "Norwich", False),
        ("P1", "2004-01-15", "F", "Black", "Great Yarmouth", True),
        ("P2", "2005-01-01", "M", "White", "Norwich", False),
        ("P3", "2005-01-01", "M", "White", "Breckland", False),
        ("P4", "2001-01-01", "M", "White", "Norwich", False),
        ("P6", "2009-07-01", "M", "Unknown", "Norwich", False),
    ]
    referrals = [
        ("R1", "T1", "pathways-out", "2019-04-15", "2019-05-01", "completed"),
        ("R2", "T2", "pathways-out", "2019-04-20", None, "not_started"),
        ("R3", "P2", "mace", "2019-05-01", "2019-05-02", "completed"),  # another programme: still in the pool
    ]
    contacts = [
        ("T1", "2019-06-01"),
        ("P1", "2019-08-01"), ("P1", "2019-06-01"),
        ("P2", "2019-03-01"), ("P2", "2019-09-01"),
        ("P3", "2019-06-01"),
        ("P4", "2019-06-01"),
        ("P6", "2019-05-01"), ("P6", "2019-07-02"),
        ("P1", "2020-04-01"),
    ]
    offences = [
        ("T1", "2018-01-01", "2018-03-01", "conviction", False),
        ("T1", "2017-05-01", "2017-06-01", "caution", False),      # exactly 24 months before: counted
        ("T1", "2017-04-30", "2017-06-01", "conviction", False),   # one day earlier: not
        ("T1", "2019-04-20", "2019-06-01", "conviction", False),   # disposed after the index date: not
        ("T1", "2018-06-01", "2018-07-01", "nfa", False),          # not a counted disposal
        ("T1", "2016-01-01", "2016-02-01", "conviction", True),    # prior drug (any time)
        ("P1", "2019-06-01", "2019-06-01", "youth_caution", True),  # on the index day and disposed that day
    ]
    return world(people, referrals, contacts, offences)


def test_youth_programme_rules(youth_world):
    c = build_cohort(youth_world, "pathways-out")
    d = c.data.set_index("person_id")
    assert list(c.data.columns) == COHORT_COLUMNS
    assert sorted(d.index) == ["P1", "P2", "P6", "T1"]
    assert d.loc["T1", "treat"] == 1 and d.loc["T1", "index_date"] == T("2019-05-01")
    assert d.loc["T1", "age"] == 13 and d.loc["T1", "male"] == 1 and d.loc["T1", "norwich"] == 1
    assert d.loc["T1", "prior_offences"] == 2 and d.loc["T1", "prior_drug"] == 1
    assert d.loc["T1", "completion_status"] == "completed"
    assert d.loc["P1", "index_date"] == T("2019-06-01") and d.loc["P1", "yarmouth"] == 1
    assert d.loc["P1", "prior_offences"] == 1 and d.loc["P1", "prior_drug"] == 1 and d.loc["P1", "drug_misuse"] == 1
    assert pd.isna(d.loc["P1", "completion_status"]) and d.loc["P1", "treat"] == 0
    assert d.loc["P2", "index_date"] == T("2019-09-01")          # contact before the window ignored
    assert d.loc["P6", "index_date"] == T("2019-07-02") and d.loc["P6", "age"] == 10  # first *eligible* contact
    att = c.attrition.set_index(["group", "stage"])
    assert att.loc[("participants", "referred"), "n"] == 2
    assert att.loc[("participants", "started (index date = start date)"), "excluded"] == 1
    assert att.loc[("comparison pool", "contact meets target group"), "n"] == 3
    assert att.loc[("comparison pool", "contact meets target group"), "excluded"] == 2  # P3 district, P4 age
    assert att.loc[("participants", "in cohort"), "n"] == 1
    dq = c.data_quality.set_index("item")
    assert dq.loc["ethnicity_group", "comparison pool"] == 1


def test_referral_date_rule_keeps_non_starters(youth_world):
    prog = load_programme("pathways-out")
    raw = dict(prog.raw, index_date="referral_date")
    from evaluation.config import parse_programme

    c = build_cohort(youth_world, parse_programme(raw))
    d = c.data.set_index("person_id")
    assert d.loc["T1", "index_date"] == T("2019-04-15") and d.loc["T2", "treat"] == 1


def test_duplicate_referral_is_an_error(youth_world):
    youth_world.referrals = pd.concat([youth_world.referrals, youth_world.referrals.iloc[[0]]], ignore_index=True)
    with pytest.raises(CohortError, match="referrals: column 'person_id'.*more than once.*'T1'"):
        build_cohort(youth_world, "pathways-out")


def test_duplicate_person_in_people_is_an_error(youth_world):
    youth_world.people = pd.concat([youth_world.people, youth_world.people.iloc[[2]]], ignore_index=True)
    with pytest.raises(CohortError, match="people: column 'person_id' has duplicate.*'P1'"):
        build_cohort(youth_world, "pathways-out")


def test_missing_table_or_column(youth_world):
    youth_world.contacts = youth_world.contacts.drop(columns="contact_date")
    with pytest.raises(CohortError, match="contacts: missing column.*'contact_date'"):
        build_cohort(youth_world, "pathways-out")
    with pytest.raises(CohortError, match="table 'people' is missing"):
        build_cohort({}, "pathways-out")


def test_drug_link_target_group():
    people = [("A", "1990-01-01", "M", "White", "Norwich", False),
              ("Q1", "1990-01-01", "M", "White", "Norwich", True),
              ("Q2", "1990-01-01", "F", "White", "Broadland", False),
              ("Q3", "1990-01-01", "M", "White", "Norwich", False),
              ("Q4", "1990-01-01", "M", "White", "South Norfolk", False),
              ("Q5", "1990-01-01", "M", "White", "Great Yarmouth", True)]
    referrals = [("R1", "A", "pathway-out-adder", "2021-06-01", "2021-06-10", "completed")]
    contacts = [("Q1", "2021-07-01"), ("Q2", "2021-07-01"), ("Q3", "2021-07-01"), ("Q4", "2021-07-01"),
                ("Q5", "2021-07-01")]
    offences = [("Q2", "2020-01-01", None, "pending", True),     # a drug-related record before the contact
                ("Q3", "2021-08-01", "2021-09-01", "conviction", True)]  # after the contact: no link
    c = build_cohort(world(people, referrals, contacts, offences), "pathway-out-adder")
    assert sorted(c.pool["person_id"]) == ["Q1", "Q2"]      # Q5 district not in the target group
    assert c.treated["age"].tolist() == [31]


def test_age_years_birthdays():
    dob = pd.Series(pd.to_datetime(["2004-02-29", "2004-02-29", "2005-05-02", "2005-05-02", None]))
    on = pd.Series(pd.to_datetime(["2021-02-28", "2021-03-01", "2019-05-01", "2019-05-02", "2019-05-02"]))
    out = age_years(dob, on)
    assert out[:4].tolist() == [16, 17, 13, 14] and np.isnan(out[4])


# ---------------------------------------------------------------------------------------------------------------
# the small synthetic world
# ---------------------------------------------------------------------------------------------------------------
INDIVIDUAL = [p for p, c in load_programmes().items() if c.is_individual]


@pytest.mark.parametrize("pid", INDIVIDUAL)
def test_small_world_cohorts(small_world_tables, pid):
    tables = small_world_tables
    prog = load_programme(pid)
    c = build_cohort(tables, prog)
    d = c.data
    assert list(d.columns) == COHORT_COLUMNS and d["person_id"].is_unique
    ref = tables["referrals"][tables["referrals"]["programme_id"].astype(str) == pid]
    expected = ref["start_date"].notna().sum() if prog.index_date_rule == "start_date" else len(ref)
    assert (d["treat"] == 1).sum() == expected > 0
    pool = c.pool
    assert len(pool) > 2 * expected
    assert pool["index_date"].between(T(prog.start), T(prog.end)).all()
    tg = prog.get("target_group")
    assert pool["age"].between(tg["min_age"], tg["max_age"]).all()
    assert not pool["person_id"].isin(ref["person_id"]).any()
    assert d["age"].dtype.kind == "i" and set(d["male"].unique()) <= {0, 1}
    assert (d["prior_offences"] >= 0).all()
    att = c.attrition
    assert att.loc[att["stage"] == "in cohort", "n"].sum() == len(d)
    # the synthetic programmes select on prior offending: participants have more priors than the pool
    assert c.treated["prior_offences"].mean() > pool["prior_offences"].mean()


def test_pool_sampling_is_seeded(small_world_tables):
    a = build_cohort(small_world_tables, "pathways-out", pool_per_treated=3, seed=1)
    b = build_cohort(small_world_tables, "pathways-out", pool_per_treated=3, seed=1)
    n_t = len(a.treated)
    assert len(a.pool) == 3 * n_t
    pd.testing.assert_frame_equal(a.data, b.data)
    assert a.attrition["stage"].str.startswith("sampled").any()
    with pytest.raises(CohortError, match="pool_per_treated"):
        build_cohort(small_world_tables, "pathways-out", pool_per_treated=0)


def test_outcomes_cli(small_world, small_world_tables, capsys, monkeypatch):
    try:
        import evaluation.validate  # noqa: F401
    except ModuleNotFoundError:  # the loader is being written by another helper: stand in with the tables
        import sys

        fake = types.ModuleType("evaluation.validate")
        fake.load_world = lambda path: types.SimpleNamespace(**small_world_tables)
        monkeypatch.setitem(sys.modules, "evaluation.validate", fake)
    from evaluation.__main__ import main

    assert main(["outcomes", "--world", str(small_world), "--programme", "pathways-out"]) == 0
    out = capsys.readouterr().out
    assert "participants" in out and "comparison pool" in out and "extract date: 2024-12-31" in out
