"""Proven reoffending (MoJ definition): boundary cases on hand-made frames, input errors, and the fast kernel
against a plain reference implementation on random data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.outcomes import (
    COUNTED_DISPOSALS,
    NOT_COUNTED_DISPOSALS,
    WAITING_NOT_ENDED,
    OutcomeInputError,
    add_months,
    first_time_entry,
    proven_offences,
    headline_table,
    proven_reoffending,
    summarise,
    survival_view,
)

EXTRACT = "2024-12-31"
ENGINES = ["duckdb"]


def cohort(*rows):
    return pd.DataFrame(rows, columns=["person_id", "index_date"]).astype({"index_date": "datetime64[ns]"})


def offences(*rows):
    df = pd.DataFrame(rows, columns=["person_id", "offence_date", "disposal_date", "disposal_type"])
    df["offence_date"] = pd.to_datetime(df["offence_date"])
    df["disposal_date"] = pd.to_datetime(df["disposal_date"])
    df["disposal_type"] = pd.Categorical(df["disposal_type"], categories=list(COUNTED_DISPOSALS + NOT_COUNTED_DISPOSALS))
    return df


def one(index_date, offence_date, disposal_date, disposal="conviction", engine="numba", extract=EXTRACT):
    out = proven_reoffending(cohort(("A", index_date)), offences(("A", offence_date, disposal_date, disposal)),
                             extract_date=extract, engine=engine)
    return out.iloc[0]


def days(date):
    return int((np.datetime64(date, "D") - np.datetime64("1970-01-01", "D")).astype(np.int64))


# ---------------------------------------------------------------------------------------------------------------
# calendar months
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("start,months,expected", [
    ("2019-01-31", 1, "2019-02-28"), ("2020-01-31", 1, "2020-02-29"), ("2019-02-28", 12, "2020-02-28"),
    ("2020-02-29", 12, "2021-02-28"), ("2019-03-31", 12, "2020-03-31"), ("2020-02-29", 6, "2020-08-29"),
    ("2019-08-31", 6, "2020-02-29"), ("2019-12-15", 1, "2020-01-15"), ("1969-12-31", 2, "1970-02-28"),
])
def test_add_months_examples(start, months, expected):
    assert add_months(np.array([days(start)]), months)[0] == days(expected)


def test_add_months_matches_pandas_dateoffset():
    rng = np.random.default_rng(1)
    d = rng.integers(days("1990-01-01"), days("2030-12-31"), 5000)
    for k in (1, 6, 12, 18, 25):
        expected = pd.DatetimeIndex(d.astype("datetime64[D]")) + pd.DateOffset(months=k)
        got = add_months(d, k).astype("datetime64[D]")
        np.testing.assert_array_equal(got, expected.values.astype("datetime64[D]"))


# ---------------------------------------------------------------------------------------------------------------
# boundaries of the definition
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
class TestBoundaries:
    def test_offence_on_index_day_not_counted(self, engine):
        r = one("2019-05-10", "2019-05-10", "2019-06-01", engine=engine)
        assert r["eligible"] and r["reoffended"] == 0 and r["reoffence_count"] == 0 and np.isnan(r["days_to_first"])

    def test_day_after_index_counted(self, engine):
        r = one("2019-05-10", "2019-05-11", "2019-06-01", engine=engine)
        assert r["reoffended"] == 1 and r["days_to_first"] == 1

    def test_last_follow_up_day_counted(self, engine):
        r = one("2019-05-10", "2020-05-10", "2020-06-01", engine=engine)
        assert r["reoffended"] == 1 and r["days_to_first"] == 366  # 2020 is a leap year

    def test_day_after_follow_up_not_counted(self, engine):
        assert one("2019-05-10", "2020-05-11", "2020-06-01", engine=engine)["reoffended"] == 0

    @pytest.mark.parametrize("index,last", [("2019-02-28", "2020-02-28"), ("2020-02-29", "2021-02-28"),
                                            ("2019-03-31", "2020-03-31"), ("2019-01-31", "2020-01-31")])
    def test_leap_years_and_month_ends(self, engine, index, last):
        nxt = str(np.datetime64(last) + 1)
        assert one(index, last, last, engine=engine)["reoffended"] == 1
        assert one(index, nxt, nxt, engine=engine)["reoffended"] == 0

    def test_disposal_on_last_waiting_day_counted(self, engine):
        # follow-up end 2020-05-10, waiting end 2020-11-10
        assert one("2019-05-10", "2019-09-01", "2020-11-10", engine=engine)["reoffended"] == 1

    def test_disposal_day_after_waiting_not_counted(self, engine):
        assert one("2019-05-10", "2019-09-01", "2020-11-11", engine=engine)["reoffended"] == 0

    def test_waiting_period_added_to_follow_up_end(self, engine):
        # index 2020-02-29: follow-up end 2021-02-28, waiting end 2021-08-28 (not index + 18 months = 2021-08-29)
        assert one("2020-02-29", "2020-06-01", "2021-08-28", engine=engine)["reoffended"] == 1
        assert one("2020-02-29", "2020-06-01", "2021-08-29", engine=engine)["reoffended"] == 0

    @pytest.mark.parametrize("disposal", list(COUNTED_DISPOSALS))
    def test_counted_disposals(self, engine, disposal):
        assert one("2019-05-10", "2019-07-01", "2019-08-01", disposal, engine=engine)["reoffended"] == 1

    @pytest.mark.parametrize("disposal", list(NOT_COUNTED_DISPOSALS))
    def test_not_counted_disposals(self, engine, disposal):
        assert one("2019-05-10", "2019-07-01", "2019-08-01", disposal, engine=engine)["reoffended"] == 0

    def test_pending_without_disposal_date(self, engine):
        assert one("2019-05-10", "2019-07-01", None, "conviction", engine=engine)["reoffended"] == 0

    def test_too_recent_index_is_ineligible(self, engine):
        # waiting ends 2024-12-31 + ... : index 2023-07-01 -> follow-up end 2024-07-01 -> waiting end 2025-01-01
        r = one("2023-07-01", "2023-08-01", "2023-09-01", engine=engine)
        assert not r["eligible"] and r["exclusion_reason"] == WAITING_NOT_ENDED
        assert pd.isna(r["reoffended"]) and pd.isna(r["reoffence_count"]) and np.isnan(r["days_to_first"])
        # waiting period ending exactly on the extract date is eligible
        r = one("2023-06-30", "2023-08-01", "2023-09-01", engine=engine)
        assert r["eligible"] and pd.isna(r["exclusion_reason"]) and r["reoffended"] == 1

    def test_person_without_offences_and_multiple_reoffences(self, engine):
        c = cohort(("A", "2019-05-10"), ("B", "2019-06-01"), ("C", "2019-01-01"))
        o = offences(
            ("A", "2019-09-01", "2019-10-01", "conviction"),
            ("A", "2019-06-01", "2019-07-01", "caution"),      # first: 22 days
            ("A", "2020-01-01", "2020-03-01", "penalty_notice"),  # not counted
            ("A", "2019-05-01", "2019-05-20", "conviction"),   # before index
            ("A", "2020-05-10", "2020-05-10", "warning"),      # last day
            ("Z", "2019-09-01", "2019-10-01", "conviction"),   # not in the cohort
            ("C", "2019-06-01", None, "pending"),
        )
        out = proven_reoffending(c, o, extract_date=EXTRACT, engine=engine)
        assert list(out["person_id"]) == ["A", "B", "C"]
        assert list(out["reoffence_count"]) == [3, 0, 0]
        assert list(out["reoffended"]) == [1, 0, 0]
        assert out["days_to_first"].iloc[0] == 22 and out["days_to_first"].iloc[1:].isna().all()
        assert out.columns.tolist() == ["person_id", "eligible", "exclusion_reason", "reoffended",
                                        "reoffence_count", "days_to_first"]

    def test_custom_windows_and_disposals(self, engine):
        c = cohort(("A", "2019-05-10"))
        o = offences(("A", "2019-07-01", "2019-08-01", "penalty_notice"), ("A", "2019-12-01", "2019-12-02", "conviction"))
        out = proven_reoffending(c, o, extract_date=EXTRACT, follow_up_months=6, waiting_months=0,
                                 counted_disposals=["penalty_notice"], engine=engine)
        assert out["reoffence_count"].iloc[0] == 1


def test_string_dates_object_ids_and_index_kept():
    c = pd.DataFrame({"person_id": [101, 102], "index_date": ["2019-05-10", "2019-06-01"]}, index=[7, 3])
    o = pd.DataFrame({"person_id": [101, 101], "offence_date": ["2019-06-01", "2019-07-01"],
                      "disposal_date": ["2019-07-01", None], "disposal_type": ["conviction", "pending"]})
    out = proven_reoffending(c, o, extract_date="2024-12-31")
    assert list(out.index) == [7, 3] and list(out["reoffence_count"]) == [1, 0]


def test_long_ids_use_the_verified_hash_path():
    ids = [f"person-number-{i:06d}" for i in range(50)]
    c = pd.DataFrame({"person_id": ids, "index_date": pd.Timestamp("2019-01-01")})
    o = offences(*[(p, "2019-02-01", "2019-03-01", "conviction") for p in ids[::2]])
    out = proven_reoffending(c, o, extract_date=EXTRACT)
    assert out["reoffended"].tolist() == [1, 0] * 25


# ---------------------------------------------------------------------------------------------------------------
# input errors
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_duplicate_person_in_cohort(engine):
    c = cohort(("A", "2019-05-10"), ("B", "2019-05-10"), ("A", "2019-06-10"))
    with pytest.raises(OutcomeInputError, match=r"cohort: column 'person_id' has duplicate.*2 row\(s\): 0, 2") as e:
        proven_reoffending(c, offences(("A", "2019-06-01", "2019-07-01", "conviction")), extract_date=EXTRACT,
                           engine=engine)
    assert "'A'" not in str(e.value)  # never a person id in a message


def test_missing_columns_named():
    with pytest.raises(OutcomeInputError, match="cohort: missing column.*'index_date'"):
        proven_reoffending(pd.DataFrame({"person_id": ["A"]}), offences(), extract_date=EXTRACT)
    with pytest.raises(OutcomeInputError, match="offences: missing column.*'disposal_type'"):
        proven_reoffending(cohort(("A", "2019-01-01")), pd.DataFrame(
            {"person_id": ["A"], "offence_date": ["2019-02-01"], "disposal_date": ["2019-03-01"]}),
            extract_date=EXTRACT)


def test_unparseable_dates_named_with_rows():
    c = pd.DataFrame({"person_id": ["A", "B"], "index_date": ["2019-01-01", "not a date"]})
    with pytest.raises(OutcomeInputError, match=r"cohort: column 'index_date'.*not dates.*1 \('not a date'\)"):
        proven_reoffending(c, offences(), extract_date=EXTRACT)
    c = pd.DataFrame({"person_id": ["A", "B"], "index_date": ["2019-01-01", None]})
    with pytest.raises(OutcomeInputError, match=r"cohort: column 'index_date' is missing.*row"):
        proven_reoffending(c, offences(), extract_date=EXTRACT)
    o = pd.DataFrame({"person_id": ["A"], "offence_date": ["2019-13-45"], "disposal_date": [None],
                      "disposal_type": ["pending"]})
    with pytest.raises(OutcomeInputError, match="offences: column 'offence_date'"):
        proven_reoffending(cohort(("A", "2019-01-01")), o, extract_date=EXTRACT)
    with pytest.raises(OutcomeInputError, match="extract_date"):
        proven_reoffending(cohort(("A", "2019-01-01")), offences(), extract_date="soon")


def test_unknown_disposal_named():
    o = pd.DataFrame({"person_id": ["A"], "offence_date": ["2019-02-01"], "disposal_date": ["2019-03-01"],
                      "disposal_type": ["fine"]})
    with pytest.raises(OutcomeInputError, match="disposal_type.*'fine'"):
        proven_reoffending(cohort(("A", "2019-01-01")), o, extract_date=EXTRACT)


def test_bad_months():
    with pytest.raises(OutcomeInputError, match="follow_up_months"):
        proven_reoffending(cohort(("A", "2019-01-01")), offences(), extract_date=EXTRACT, follow_up_months=1.5)


def test_empty_inputs():
    # an empty cohort is an error (issue 12: it used to compute silently); no offences is fine
    with pytest.raises(OutcomeInputError, match="cohort: is empty"):
        proven_reoffending(cohort(), offences(), extract_date=EXTRACT)
    out = proven_reoffending(cohort(("A", "2019-01-01")), offences(), extract_date=EXTRACT)
    assert out["reoffended"].tolist() == [0]


# ---------------------------------------------------------------------------------------------------------------
# survival view, first-time entry, summaries
# ---------------------------------------------------------------------------------------------------------------
def test_survival_view_censoring():
    c = cohort(("A", "2019-05-10"), ("B", "2019-03-01"), ("C", "2020-03-01"), ("D", "2024-01-01"),
               ("E", "2019-05-10"))
    o = offences(("A", "2019-06-01", "2019-07-01", "conviction"), ("E", "2019-09-01", "2019-10-01", "conviction"))
    cust = pd.DataFrame({"person_id": ["E", "B"], "custody_start": pd.to_datetime(["2019-08-01", "2018-01-01"])})
    sv = survival_view(c, o, extract_date=EXTRACT).set_index("person_id")
    assert sv.loc["A"].tolist() == [22, 1, 1]
    assert sv.loc["B"].tolist() == [366, 0, 0]   # 2019-03-01 -> 2020-03-01 (leap year)
    assert sv.loc["C"].tolist() == [365, 0, 0]
    assert "D" not in sv.index and sv.attrs["excluded"] == {WAITING_NOT_ENDED: 1}
    sv = survival_view(c, o, extract_date=EXTRACT, custody=cust).set_index("person_id")
    assert sv.loc["E"].tolist() == [83, 0, 2]    # custody from 2019-08-01 came first: a competing event
    assert sv.loc["B"].tolist() == [366, 0, 0]   # custody before index ignored
    cust = pd.DataFrame({"person_id": ["A", "C"], "custody_start": pd.to_datetime(["2019-06-01", "2021-03-01"])})
    sv = survival_view(c, o, extract_date=EXTRACT, custody=cust).set_index("person_id")
    assert sv.loc["A"].tolist() == [22, 1, 1]    # the offence on the custody start day is counted
    assert sv.loc["C"].tolist() == [365, 0, 0]   # custody on the follow-up end day: censored there


@pytest.mark.parametrize("seed", [0, 1])
def test_survival_view_consistent_with_outcomes(seed):
    from evaluation.synth import national_tables

    c, o = national_tables(seed=seed, n_people=3000, n_offences=40000, index_start="2021-01-01",
                           index_end="2024-01-01")
    out = proven_reoffending(c, o, extract_date=EXTRACT)
    sv = survival_view(c, o, extract_date=EXTRACT)
    el = out[out["eligible"]]
    assert len(sv) == len(el) and sv.attrs["excluded"][WAITING_NOT_ENDED] == (~out["eligible"]).sum() > 0
    np.testing.assert_array_equal(sv["event"].to_numpy(), el["reoffended"].astype(int).to_numpy())
    ev = sv["event"].to_numpy() == 1
    np.testing.assert_array_equal(sv["duration"].to_numpy()[ev], el["days_to_first"].to_numpy()[ev])
    assert set(sv["duration"].to_numpy()[~ev]) <= {365, 366}


def test_first_time_entry_flags_prior_record():
    c = cohort(("A", "2019-05-10"), ("B", "2019-05-10"), ("C", "2019-05-10"))
    o = offences(("A", "2018-01-01", "2018-02-01", "nfa"), ("A", "2019-06-01", "2019-07-01", "conviction"),
                 ("B", "2019-06-01", "2019-07-01", "youth_caution"))
    out = first_time_entry(c, o, extract_date=EXTRACT).set_index("person_id")
    assert out["no_prior_record"].tolist() == [False, True, True]
    assert out["first_time_entrant"].tolist() == [0, 1, 0]
    assert out["reoffended"].tolist() == [1, 1, 0]


def test_summarise_and_headline():
    c = cohort(*[(f"P{i}", "2019-01-01") for i in range(20)], ("R1", "2024-06-01"))
    o = offences(*[(f"P{i}", "2019-03-01", "2019-04-01", "conviction") for i in range(0, 20, 4)],
                 ("P0", "2019-05-01", "2019-06-01", "conviction"))
    out = proven_reoffending(c, o, extract_date=EXTRACT)
    s = summarise(out)
    row = s.loc["all"]
    assert row["n"] == 21 and row["eligible"] == 20 and row[f"excluded: {WAITING_NOT_ENDED}"] == 1
    assert row["reoffenders"] == 5 and row["rate"] == pytest.approx(0.25)
    assert row["rate_lo"] < 0.25 < row["rate_hi"]
    assert row["frequency_per_100"] == pytest.approx(30.0) and row["mean_days_to_first"] == pytest.approx(59.0)
    treat = np.r_[np.ones(10), np.zeros(11)].astype(int)
    h = headline_table(out, treat)
    assert h.loc["participants", "reoffenders"] == "<5" and h.loc["participants", "rate (95% CI)"] == "suppressed"
    by = summarise(out.assign(g=treat), "g")
    assert by["n"].tolist() == [11, 10]


# ---------------------------------------------------------------------------------------------------------------
# fast implementation == plain reference implementation on random data
# ---------------------------------------------------------------------------------------------------------------
def reference(c: pd.DataFrame, o: pd.DataFrame, extract: str) -> pd.DataFrame:
    """Obviously correct: pandas DateOffset and a row-by-row loop per person."""
    ext = pd.Timestamp(extract)
    rows = []
    by_person = {p: g for p, g in o.groupby("person_id")}
    for p, idx in zip(c["person_id"], c["index_date"]):
        fu = idx + pd.DateOffset(months=12)
        we = fu + pd.DateOffset(months=6)
        eligible = we <= ext
        count, first = 0, None
        for _, r in by_person.get(p, pd.DataFrame(columns=o.columns)).iterrows():
            if r["disposal_type"] in COUNTED_DISPOSALS and pd.notna(r["disposal_date"]) \
                    and idx < r["offence_date"] <= fu and r["disposal_date"] <= we:
                count += 1
                first = r["offence_date"] if first is None else min(first, r["offence_date"])
        rows.append((p, eligible, count if eligible else np.nan,
                     (first - idx).days if (eligible and first is not None) else np.nan))
    return pd.DataFrame(rows, columns=["person_id", "eligible", "count", "days"])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("engine", ENGINES)
def test_matches_reference_on_random_data(seed, engine):
    rng = np.random.default_rng(seed)
    n, m = 60, 600
    ids = np.array([f"P{i:04d}" for i in range(n + 10)])  # 10 people with offences are not in the cohort
    # index dates concentrated on month ends and leap days to stress the calendar arithmetic
    specials = pd.to_datetime(["2019-01-31", "2019-02-28", "2020-02-29", "2019-03-31", "2023-06-30", "2023-07-01",
                               "2019-08-31", "2021-12-31"])
    idx = np.where(rng.random(n) < 0.5, specials[rng.integers(0, len(specials), n)],
                   pd.Timestamp("2018-06-01") + pd.to_timedelta(rng.integers(0, 2000, n), "D"))
    c = pd.DataFrame({"person_id": ids[:n], "index_date": pd.to_datetime(idx)}).sample(frac=1, random_state=seed)
    person = ids[rng.integers(0, n + 10, m)]
    base = c.set_index("person_id")["index_date"].reindex(person).fillna(pd.Timestamp("2019-06-01")).to_numpy()
    odate = pd.to_datetime(base) + pd.to_timedelta(rng.integers(-30, 420, m), "D")
    lag = rng.integers(0, 400, m)
    disp = rng.choice(list(COUNTED_DISPOSALS + NOT_COUNTED_DISPOSALS), m)
    ddate = pd.Series(odate + pd.to_timedelta(lag, "D"))
    ddate[disp == "pending"] = pd.NaT
    o = pd.DataFrame({"person_id": pd.array(person, dtype="string[pyarrow]"), "offence_date": odate,
                      "disposal_date": ddate.to_numpy(), "disposal_type": pd.Categorical(disp)})
    got = proven_reoffending(c, o, extract_date=EXTRACT, engine=engine)
    ref = reference(c, o, EXTRACT)
    assert got["person_id"].tolist() == ref["person_id"].tolist()
    np.testing.assert_array_equal(got["eligible"].to_numpy(), ref["eligible"].to_numpy())
    np.testing.assert_array_equal(got["reoffence_count"].astype(float).to_numpy(), ref["count"].to_numpy())
    np.testing.assert_array_equal(got["days_to_first"].to_numpy(), ref["days"].to_numpy())
    assert got["reoffended"].sum() > 0 and (~got["eligible"]).sum() > 0


# ---------------------------------------------------------------------------------------------------------------
# the SQL engine: any id type, parquet sources, its own input checks
# ---------------------------------------------------------------------------------------------------------------
def _random_world(seed=0, n=200, m=3000):
    from evaluation.synth import national_tables

    return national_tables(seed=seed, n_people=n, n_offences=m, index_start="2021-01-01", index_end="2024-01-01")


def _same(a, b):
    assert a["eligible"].tolist() == b["eligible"].tolist()
    np.testing.assert_array_equal(a["reoffence_count"].astype(float).to_numpy(), b["reoffence_count"].astype(float))
    np.testing.assert_array_equal(a["days_to_first"].to_numpy(), b["days_to_first"].to_numpy())


@pytest.mark.parametrize("kind", ["int64", "int32", "string", "object", "categorical", "int_vs_string",
                                  "categorical_int"])
def test_any_person_id_type_gives_identical_results(kind):
    c, o = _random_world()
    ref = proven_reoffending(c, o, extract_date=EXTRACT)
    num_c = c["person_id"].str[1:].astype("int64")
    num_o = o["person_id"].str[1:].astype("int64")
    conv = {
        "int64": (num_c, num_o),
        "int32": (num_c.astype("int32"), num_o.astype("int32")),
        "string": (c["person_id"].astype("string[python]"), o["person_id"].astype("string[python]")),
        "object": (c["person_id"].astype(object), o["person_id"].astype(object)),
        "categorical": (c["person_id"].astype("category"), o["person_id"].astype("category")),
        "int_vs_string": (num_c, num_o.astype(str)),
        "categorical_int": (num_c.astype("category"), num_o),
    }[kind]
    got = proven_reoffending(c.assign(person_id=conv[0]), o.assign(person_id=conv[1]), extract_date=EXTRACT)
    _same(got, ref)
    assert got["person_id"].tolist() == conv[0].tolist()
    sv_ref = survival_view(c, o, extract_date=EXTRACT)
    sv = survival_view(c.assign(person_id=conv[0]), o.assign(person_id=conv[1]), extract_date=EXTRACT)
    np.testing.assert_array_equal(sv["duration"].to_numpy(), sv_ref["duration"].to_numpy())


def test_parquet_file_folder_and_glob_give_identical_results(tmp_path):
    c, o = _random_world(seed=3)
    ref = proven_reoffending(c, o, extract_date=EXTRACT)
    (tmp_path / "one").mkdir()
    o.to_parquet(tmp_path / "one" / "offences.parquet")
    folder = tmp_path / "parts" / "year=all"
    folder.mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(len(o)), 3)):
        o.iloc[part].to_parquet(folder / f"part-{i}.parquet")
    for source in (tmp_path / "one" / "offences.parquet", str(tmp_path / "parts"),
                   str(tmp_path / "parts" / "*" / "part-*.parquet")):
        _same(proven_reoffending(c, source, extract_date=EXTRACT), ref)
    fte = first_time_entry(c, tmp_path / "parts", extract_date=EXTRACT)
    assert fte["no_prior_record"].tolist() == first_time_entry(c, o, extract_date=EXTRACT)["no_prior_record"].tolist()
    with pytest.raises(OutcomeInputError, match="offences: no such file or folder"):
        proven_reoffending(c, tmp_path / "nothing-here", extract_date=EXTRACT)


def test_disposal_before_offence_is_an_error_naming_rows_not_people(tmp_path):
    c = cohort(("SECRET-ID", "2019-05-10"))
    o = offences(("SECRET-ID", "2019-06-01", "2019-07-01", "conviction"),
                 ("SECRET-ID", "2019-08-01", "2019-07-01", "conviction"))
    with pytest.raises(OutcomeInputError, match=r"offences: column 'disposal_date' is before 'offence_date'.*"
                                                r"1 row\(s\): 1") as e:
        proven_reoffending(c, o, extract_date=EXTRACT)
    assert "SECRET" not in str(e.value)
    o.to_parquet(tmp_path / "o.parquet")
    with pytest.raises(OutcomeInputError, match=r"disposal_date' is before 'offence_date'.*o.parquet row 1") as e:
        proven_reoffending(c, tmp_path / "o.parquet", extract_date=EXTRACT)
    assert "SECRET" not in str(e.value)


def test_parquet_timestamps_disposal_before_offence_compares_days(tmp_path):
    """Timestamps in the files: a disposal earlier on the offence's own day is not before it (dates are compared,
    as the measure does); one on the day before is, and the row is named."""
    c = cohort(("A", "2019-05-10"))
    o = offences(("A", "2019-06-01", "2019-07-01", "conviction"), ("A", "2019-08-01", "2019-08-01", "conviction"),
                 ("A", "2019-09-02", "2019-09-01", "conviction"))
    o["offence_date"] = pd.to_datetime(o["offence_date"]) + pd.Timedelta(hours=15)
    o["disposal_date"] = pd.to_datetime(o["disposal_date"]) + pd.Timedelta(hours=9)
    o.iloc[:2].to_parquet(tmp_path / "ok.parquet")
    assert proven_reoffending(c, tmp_path / "ok.parquet", extract_date=EXTRACT)["reoffence_count"].tolist() == [2]
    o.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(OutcomeInputError, match=r"disposal_date' is before 'offence_date'.*1 row\(s\): bad.parquet "
                                                r"row 2$"):
        proven_reoffending(c, tmp_path / "bad.parquet", extract_date=EXTRACT)


def test_parquet_checks_missing_columns_and_unknown_disposals(tmp_path):
    c = cohort(("A", "2019-05-10"))
    o = offences(("A", "2019-06-01", "2019-07-01", "conviction"))
    o.drop(columns="disposal_type").to_parquet(tmp_path / "a.parquet")
    with pytest.raises(OutcomeInputError, match="offences: missing column.*'disposal_type'"):
        proven_reoffending(c, tmp_path / "a.parquet", extract_date=EXTRACT)
    o.assign(disposal_type="fine").to_parquet(tmp_path / "a.parquet")
    with pytest.raises(OutcomeInputError, match=r"disposal_type' has unknown disposal\(s\) \['fine'\].*a.parquet row 0"):
        proven_reoffending(c, tmp_path / "a.parquet", extract_date=EXTRACT)


def test_parquet_missing_person_found_with_and_without_file_statistics(tmp_path):
    """The null count of person_id comes from the parquet statistics when every row group has them; a file
    written without statistics is scanned instead. Either way a missing id is an error naming file and row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    c = cohort(("A", "2019-05-10"))
    o = offences(("A", "2019-06-01", "2019-07-01", "conviction"), ("A", "2019-06-02", "2019-07-01", "conviction"))
    o["person_id"] = o["person_id"].astype(object)
    o.loc[1, "person_id"] = None
    table = pa.Table.from_pandas(o, preserve_index=False)
    for stats in (True, False):
        path = tmp_path / f"o_{stats}.parquet"
        pq.write_table(table, path, write_statistics=stats)
        with pytest.raises(OutcomeInputError, match=rf"column 'person_id' is missing.*o_{stats}.parquet row 1"):
            proven_reoffending(c, path, extract_date=EXTRACT)
        pq.write_table(pa.Table.from_pandas(o.iloc[:1], preserve_index=False), path, write_statistics=stats)
        assert proven_reoffending(c, path, extract_date=EXTRACT)["reoffence_count"].tolist() == [1]


def test_parquet_several_unknown_disposals_listed_sorted(tmp_path):
    c = cohort(("A", "2019-05-10"))
    o = offences(("A", "2019-06-01", "2019-07-01", "conviction"), ("A", "2019-06-02", "2019-07-01", "conviction"),
                 ("A", "2019-06-03", "2019-07-01", "conviction"))
    o["disposal_type"] = ["zz_fine", "conviction", "aa_fine"]
    o.to_parquet(tmp_path / "u.parquet")
    with pytest.raises(OutcomeInputError, match=r"unknown disposal\(s\) \['aa_fine', 'zz_fine'\].*2 row\(s\): "
                                                r"u.parquet row 0, u.parquet row 2"):
        proven_reoffending(c, tmp_path / "u.parquet", extract_date=EXTRACT)


def test_sql_month_arithmetic_matches_add_months():
    import duckdb

    rng = np.random.default_rng(5)
    d = np.r_[rng.integers(days("1990-01-01"), days("2030-12-31"), 3000),
              [days(x) for x in ("2020-02-29", "2019-01-31", "2019-08-31", "2019-03-31")]]
    con = duckdb.connect()
    con.register("d", pd.DataFrame({"d": (d + np.datetime64("1970-01-01", "D").astype(int)).astype("datetime64[D]")}))
    for k in (1, 6, 12, 18):
        got = con.execute(f"SELECT CAST(CAST(d AS DATE) + to_months({k}) AS DATE) - DATE '1970-01-01' FROM d").fetchall()
        np.testing.assert_array_equal(np.array([g[0] for g in got]), add_months(d, k))


def test_proven_offences_are_the_counted_records():
    c, o = _random_world(seed=4)
    out = proven_reoffending(c, o, extract_date=EXTRACT)
    rec = proven_offences(c, o)
    assert list(rec.columns) == ["person_id", "index_date", "offence_date", "disposal_date", "disposal_type",
                                 "offence_group"]
    counts = rec.groupby("person_id").size().reindex(c["person_id"], fill_value=0).to_numpy()
    el = out["eligible"].to_numpy()
    np.testing.assert_array_equal(counts[el], out["reoffence_count"].to_numpy()[el].astype(int))


@pytest.mark.parametrize("engine", ["auto", "duckdb", "numba", "numpy"])
def test_engine_names_of_old_callers_still_work(engine):
    assert one("2019-05-10", "2019-05-11", "2019-06-01", engine=engine)["reoffended"] == 1
    with pytest.raises(OutcomeInputError, match="engine"):
        one("2019-05-10", "2019-05-11", "2019-06-01", engine="spark")
