"""Every kind of bad input gets a clear error naming the file, the column and the rows."""
import json

import pandas as pd
import pytest

from evaluation.validate import DataError, load_table, load_world


def tiny_world(tmp_path, fmt="csv", **overrides):
    """A hand-written world of three people; ``overrides`` replace whole tables (DataFrames)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    tables = {
        "people": pd.DataFrame({"person_id": ["P1", "P2", "P3"], "date_of_birth": ["2004-05-01", "1990-01-31", "1985-12-12"],
                                "sex": ["M", "F", "F"], "ethnicity_group": ["White", "Black", "Unknown"],
                                "district": ["Norwich", "Great Yarmouth", "Norwich"], "drug_misuse": ["False", "True", "1"]}),
        "referrals": pd.DataFrame({"referral_id": ["R1", "R2"], "person_id": ["P1", "P2"],
                                   "programme_id": ["pathways-out", "wonder-plus"],
                                   "referral_date": ["2019-05-01", "2019-06-01"], "start_date": ["2019-05-10", ""],
                                   "end_date": ["2019-11-10", ""], "completion_status": ["completed", "not_started"],
                                   "referral_source": ["school", "custody"]}),
        "contacts": pd.DataFrame({"person_id": ["P3"], "contact_date": ["2019-07-01"], "contact_type": ["arrest"]}),
        "offences": pd.DataFrame({"offence_id": ["O1", "O2", "O3"], "person_id": ["P1", "P1", "P3"],
                                  "offence_date": ["2019-06-01", "2019-07-01", "2019-08-01"],
                                  "disposal_date": ["2019-09-01", "", "2019-08-20"],
                                  "disposal_type": ["youth_caution", "pending", "conviction"],
                                  "offence_group": ["theft", "drug_possession", "robbery"],
                                  "drug_related": ["false", "true", "false"]}),
    }
    tables.update(overrides)
    for name, df in tables.items():
        if fmt == "csv":
            df.to_csv(tmp_path / f"{name}.csv", index=False)
        else:
            out = df.copy()
            for c in out.columns:
                if "date" in c:
                    out[c] = pd.to_datetime(out[c].replace("", None))
            out.to_parquet(tmp_path / f"{name}.parquet", index=False)
    return tmp_path, tables


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_good_world_loads_typed(tmp_path, fmt):
    path, _ = tiny_world(tmp_path, fmt)
    w = load_world(path)
    assert w.offences["offence_date"].dtype == "datetime64[ns]"
    assert w.people["drug_misuse"].tolist() == [False, True, True]
    assert w.referrals["start_date"].isna().tolist() == [False, True]
    assert w.custody is None and w.delivery is None
    assert w.extract_date == pd.Timestamp("2019-09-01").date()  # latest offence/disposal date without meta.json


def test_extract_date_from_meta_and_late_records_are_counted_not_dropped_silently(tmp_path):
    path, t = tiny_world(tmp_path)
    (path / "meta.json").write_text(json.dumps({"extract_date": "2019-07-15"}))
    w = load_world(path)
    assert w.extract_date.isoformat() == "2019-07-15"
    ex = w.exclusions.set_index("table")
    assert ex.loc["offences", "count"] == 1 and len(w.offences) == 2  # O3 (2019-08-01) is after the extract
    assert "contacts" not in ex.index


def _error(tmp_path, **overrides) -> str:
    path, _ = tiny_world(tmp_path, **overrides)
    with pytest.raises(DataError) as exc:
        load_world(path)
    return str(exc.value)


def test_missing_column(tmp_path):
    off = tiny_world(tmp_path)[1]["offences"].drop(columns="disposal_type")
    msg = _error(tmp_path, offences=off)
    assert "offences.csv" in msg and "missing column(s) 'disposal_type'" in msg


def test_wrong_type(tmp_path):
    p = tiny_world(tmp_path)[1]["people"].assign(drug_misuse=["False", "maybe", "1"])
    msg = _error(tmp_path, people=p)
    assert "people.csv" in msg and "column 'drug_misuse'" in msg and "line 3 ('maybe')" in msg


def test_unparseable_date(tmp_path):
    o = tiny_world(tmp_path)[1]["offences"].assign(offence_date=["2019-06-01", "2019-13-01", "01/08/2019"])
    msg = _error(tmp_path, offences=o)
    assert "offences.csv" in msg and "column 'offence_date'" in msg and "unparseable date" in msg
    assert "line 3 ('2019-13-01')" in msg and "line 4 ('01/08/2019')" in msg and "2 row(s)" in msg


def test_duplicate_person_in_a_programme_cohort(tmp_path):
    r = tiny_world(tmp_path)[1]["referrals"]
    r = pd.concat([r, r.iloc[[0]].assign(referral_id="R9")], ignore_index=True)
    msg = _error(tmp_path, referrals=r)
    assert "referrals.csv" in msg and "column 'person_id'" in msg and "duplicate person" in msg
    assert "line 2 ('P1 in pathways-out')" in msg and "line 4" in msg


def test_disposal_before_offence(tmp_path):
    o = tiny_world(tmp_path)[1]["offences"].assign(disposal_date=["2019-05-01", "", "2019-08-20"])
    msg = _error(tmp_path, offences=o)
    assert "offences.csv" in msg and "column 'disposal_date'" in msg and "disposal before offence" in msg
    assert "line 2 ('2019-05-01 < 2019-06-01')" in msg


def test_referral_outside_programme_dates(tmp_path):
    r = tiny_world(tmp_path)[1]["referrals"].assign(referral_date=["2021-01-05", "2019-06-01"],
                                                   start_date=["2021-01-10", ""], end_date=["2021-02-10", ""])
    msg = _error(tmp_path, referrals=r)
    assert "column 'referral_date'" in msg and "outside the programme's dates" in msg
    assert "line 2 ('2021-01-05 not in pathways-out 2019-04-01..2020-03-31')" in msg


def test_unknown_disposal_type_lists_the_allowed_ones(tmp_path):
    o = tiny_world(tmp_path)[1]["offences"].assign(disposal_type=["youth_caution", "fine", "conviction"])
    msg = _error(tmp_path, offences=o)
    assert "column 'disposal_type'" in msg and "unknown value" in msg and "line 3 ('fine')" in msg
    assert "conviction" in msg and "community_resolution" in msg


def test_empty_table(tmp_path):
    c = tiny_world(tmp_path)[1]["contacts"].iloc[0:0]
    msg = _error(tmp_path, contacts=c)
    assert "contacts.csv" in msg and "empty" in msg


def test_unknown_programme(tmp_path):
    r = tiny_world(tmp_path)[1]["referrals"].assign(programme_id=["pathways-out", "wonder"])
    msg = _error(tmp_path, referrals=r)
    assert "column 'programme_id'" in msg and "line 3 ('wonder')" in msg


def test_person_not_in_people(tmp_path):
    o = tiny_world(tmp_path)[1]["offences"].assign(person_id=["P1", "P7", "P3"])
    msg = _error(tmp_path, offences=o)
    assert "offences" in msg and "column 'person_id'" in msg and "not in the people table" in msg and "'P7'" in msg


def test_start_before_referral_and_end_before_start(tmp_path):
    r = tiny_world(tmp_path)[1]["referrals"].assign(start_date=["2019-04-20", ""])
    assert "start_date before referral_date" in _error(tmp_path, referrals=r)
    r = tiny_world(tmp_path)[1]["referrals"].assign(end_date=["2019-05-02", ""])
    assert "end_date before start_date" in _error(tmp_path, referrals=r)


def test_duplicate_ids_and_missing_required_values(tmp_path):
    p = tiny_world(tmp_path)[1]["people"].assign(person_id=["P1", "P2", "P2"])
    msg = _error(tmp_path, people=p)
    assert "column 'person_id'" in msg and "duplicate" in msg


def test_missing_table_and_folder(tmp_path):
    path, _ = tiny_world(tmp_path)
    (path / "contacts.csv").unlink()
    with pytest.raises(DataError, match="missing required table 'contacts'"):
        load_world(path)
    with pytest.raises(DataError, match="no such world folder"):
        load_world(tmp_path / "nowhere")


def test_load_table_on_a_file_and_parquet_rows_are_one_based(tmp_path):
    path, t = tiny_world(tmp_path, "parquet")
    o = pd.read_parquet(path / "offences.parquet")
    o.loc[2, "disposal_type"] = "fine"
    o.to_parquet(path / "offences.parquet")
    with pytest.raises(DataError, match=r"row 3 \('fine'\).*1-based data rows"):
        load_table(path / "offences.parquet", "offences")


def test_synthetic_world_validates(small_world):
    w = load_world(small_world)
    assert w.synthetic and w.extract_date.isoformat() == "2024-12-31"
    assert w.referrals["programme_id"].nunique() == 7  # every programme with individual participants


# ------------------------------------------------------------------------------------------ validated cache
def test_cached_world_equals_a_fresh_load_and_keeps_exclusions(tmp_path):
    path, _ = tiny_world(tmp_path / "w")
    (path / "meta.json").write_text(json.dumps({"extract_date": "2019-07-15"}))
    fresh = load_world(path)
    first = load_world(path, cache=tmp_path / "cache")
    (entry,) = [p for p in (tmp_path / "cache").iterdir()]
    assert (entry / "world.json").exists() and (entry / "offences.parquet").exists()
    again = load_world(path, cache=tmp_path / "cache")
    for w in (first, again):
        assert w.path == path and w.extract_date == fresh.extract_date and w.synthetic == fresh.synthetic
        assert w.custody is None and w.delivery is None
        for name, df in fresh.tables().items():
            pd.testing.assert_frame_equal(df, w.tables()[name])
        pd.testing.assert_frame_equal(w.exclusions, fresh.exclusions, check_dtype=False)


def test_cache_never_hides_a_changed_or_bad_raw_file(tmp_path):
    path, t = tiny_world(tmp_path / "w")
    load_world(path, cache=tmp_path / "cache")
    bad = t["offences"].copy()
    bad.loc[0, "disposal_date"] = "2019-01-01"  # before the offence
    bad.to_csv(path / "offences.csv", index=False)
    with pytest.raises(DataError, match="disposal before offence"):
        load_world(path, cache=tmp_path / "cache")
    t["offences"].iloc[:2].to_csv(path / "offences.csv", index=False)  # a valid change
    assert len(load_world(path, cache=tmp_path / "cache").offences) == 2
    assert len(list((tmp_path / "cache").iterdir())) == 1  # the stale entry was replaced, not kept


def test_half_written_cache_is_ignored(tmp_path):
    path, _ = tiny_world(tmp_path / "w")
    load_world(path, cache=tmp_path / "cache")
    (entry,) = list((tmp_path / "cache").iterdir())
    (entry / "world.json").write_text("{not json")
    assert len(load_world(path, cache=tmp_path / "cache").people) == 3
