"""Every kind of bad input gets a clear error naming the file, the column and the rows."""
import datetime as dt
import json
import os
import stat

import pandas as pd
import pytest

from evaluation.schemas import SCHEMAS, TABLES
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
    assert "line 2, line 4" in msg and "P1" not in msg  # ids never in the message


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
    assert "offences" in msg and "column 'person_id'" in msg and "not in the people table" in msg
    assert "line 3" in msg and "P7" not in msg


def test_start_before_referral_and_end_before_start(tmp_path):
    r = tiny_world(tmp_path)[1]["referrals"].assign(start_date=["2019-04-20", ""])
    assert "start_date before referral_date" in _error(tmp_path, referrals=r)
    r = tiny_world(tmp_path)[1]["referrals"].assign(end_date=["2019-05-02", ""])
    assert "end_date before start_date" in _error(tmp_path, referrals=r)


def test_duplicate_ids_and_missing_required_values(tmp_path):
    p = tiny_world(tmp_path)[1]["people"].assign(person_id=["P1", "P2", "P2"])
    msg = _error(tmp_path, people=p)
    assert "column 'person_id'" in msg and "duplicate" in msg and "line 3, line 4" in msg and "P2" not in msg


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


# ------------------------------------------------------------------------------ safe messages (issue 10)
def _exc(tmp_path, **overrides) -> DataError:
    path, _ = tiny_world(tmp_path, **overrides)
    with pytest.raises(DataError) as exc:
        load_world(path)
    return exc.value


def test_identifying_values_are_in_detail_only(tmp_path):
    p = tiny_world(tmp_path)[1]["people"].assign(date_of_birth=["2004-05-01", "31/01/1990", "1985-12-12"])
    exc = _exc(tmp_path, people=p)
    assert "column 'date_of_birth'" in str(exc) and "line 3" in str(exc) and "31/01/1990" not in str(exc)
    assert "31/01/1990" in exc.detail and exc.lines == [3] and exc.column == "date_of_birth"
    assert exc.file.endswith("people.csv") and exc.n_rows == 1


def test_non_identifying_values_are_quoted_escaped_and_truncated(tmp_path):
    code = "<script>alert(1)</script>\n" + "x" * 200
    o = tiny_world(tmp_path)[1]["offences"].assign(disposal_type=["youth_caution", code, "conviction"])
    msg = str(_exc(tmp_path, offences=o))
    assert "line 3 ('<script>alert(1)</script>\\n" in msg and "x" * 100 not in msg and "\n" not in msg


# ---------------------------------------------------------------------------------------- new rules
def test_counted_disposal_without_a_disposal_date_is_an_error(tmp_path):
    o = tiny_world(tmp_path)[1]["offences"].assign(disposal_date=["2019-09-01", "", ""])
    exc = _exc(tmp_path, offences=o)
    assert "column 'disposal_date'" in str(exc) and "counted disposal" in str(exc)
    assert "line 4 ('conviction')" in str(exc) and exc.n_rows == 1  # line 3 is 'pending' without a date: fine


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("blank", ["", "  ", "nan", "NaN", "NULL"])
def test_missing_required_text_is_an_error_never_the_string_nan(tmp_path, fmt, blank):
    o = tiny_world(tmp_path)[1]["offences"].assign(person_id=["P1", blank, "P3"])
    path, _ = tiny_world(tmp_path, fmt, offences=o)
    with pytest.raises(DataError, match=r"column 'person_id': missing value \(required.*(line 3|row 2)") as exc:
        load_world(path)
    assert exc.value.lines == [3 if fmt == "csv" else 2]


def test_missing_referral_source_is_an_error_not_nan(tmp_path):
    r = tiny_world(tmp_path)[1]["referrals"].assign(referral_source=["school", ""])
    assert "column 'referral_source': missing value" in str(_exc(tmp_path, referrals=r))


def test_optional_text_stays_missing_not_nan(tmp_path):
    path, _ = tiny_world(tmp_path)
    pd.DataFrame({"programme_id": ["wonder-plus"], "date": ["2019-06-01"], "activity": ["session"],
                  "audience": ["families"], "sessions": ["1"], "attendees": ["3"], "referrals_to": [""],
                  "organisations": [""]}).to_csv(path / "delivery.csv", index=False)
    w = load_world(path)
    assert w.delivery["referrals_to"].tolist() == [None]


def test_date_of_birth_in_the_future_or_implausible(tmp_path):
    p = tiny_world(tmp_path)[1]["people"].assign(date_of_birth=["2004-05-01", "2099-01-31", "1985-12-12"])
    exc = _exc(tmp_path, people=p)
    assert "date of birth after the extract date" in str(exc) and "line 3" in str(exc) and "2099" not in str(exc)
    p = tiny_world(tmp_path)[1]["people"].assign(date_of_birth=["2004-05-01", "1890-01-31", "1985-12-12"])
    assert "implausible date of birth (older than 110" in str(_exc(tmp_path, people=p))


@pytest.mark.parametrize("table,col,value,line", [("offences", "offence_date", ["2003-06-01", "2019-07-01",
                                                   "2019-08-01"], 2),
                                                  ("contacts", "contact_date", ["1980-07-01"], 2)])
def test_events_before_birth(tmp_path, table, col, value, line):
    t = tiny_world(tmp_path)[1][table].assign(**{col: value})
    if table == "offences":
        t = t.assign(disposal_date=["2003-07-01", "", "2019-08-20"])
    exc = _exc(tmp_path, **{table: t})
    assert f"column '{col}': dated before the person's date of birth" in str(exc) and f"line {line}" in str(exc)
    assert "born" not in str(exc) and "born" in exc.detail  # the date of birth is in the detail only


def test_duplicate_header_column_is_an_error(tmp_path):
    path, _ = tiny_world(tmp_path)
    text = (path / "people.csv").read_text().splitlines()
    text = [text[0] + ",sex"] + [line + ",F" for line in text[1:]]
    (path / "people.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"people.csv: duplicate column name\(s\) in the header \(line 1\): 'sex' "
                                        r"in columns 3, 7"):
        load_world(path)


def test_dangling_symlink_is_an_error_not_an_absent_table(tmp_path):
    path, _ = tiny_world(tmp_path)
    (path / "custody.csv").symlink_to(tmp_path / "gone.csv")
    with pytest.raises(DataError, match="custody.csv: is a symbolic link to a file that does not exist"):
        load_world(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_an_error(tmp_path):
    path, _ = tiny_world(tmp_path)
    (path / "contacts.csv").chmod(0)
    with pytest.raises(DataError, match="contacts.csv: cannot be read"):
        load_world(path)


def test_extra_columns_are_dropped_and_reported(tmp_path):
    p = tiny_world(tmp_path)[1]["people"].assign(surname=["Smith", "Jones", "Brown"], nhs_number=["1", "2", "3"])
    path, _ = tiny_world(tmp_path, people=p)
    w = load_world(path)
    assert "surname" not in w.people.columns and w.dropped_columns == {"people": ["surname", "nhs_number"]}


# ------------------------------------------------------------------------------------------ extract date
def test_extract_date_rule_is_one_function(tmp_path, small_world):
    from evaluation.validate import extract_date

    path, _ = tiny_world(tmp_path / "w")
    w = load_world(path)
    assert extract_date(w) == extract_date(path) == w.latest_record == dt.date(2019, 9, 1)
    assert w.extract_date_source == "latest offence or disposal date"
    assert extract_date(small_world) == dt.date(2024, 12, 31)
    assert set(load_world(small_world, cache=True).table_names) == set(TABLES)


def test_extract_date_after_the_data_or_today_is_refused_unless_allowed(tmp_path):
    from evaluation.validate import check_extract_date

    path, _ = tiny_world(tmp_path)
    w = load_world(path)
    with pytest.raises(DataError, match=r"2030-01-01 is after today"):
        check_extract_date(w, "2030-01-01")
    with pytest.raises(DataError, match=r"2020-01-01 is after the latest record in the world \(2019-09-01"):
        check_extract_date(w, "2020-01-01")
    assert check_extract_date(w, "2020-01-01", allow_after_data=True) == dt.date(2020, 1, 1)
    assert check_extract_date(w, dt.date(2019, 8, 1)) == dt.date(2019, 8, 1)
    with pytest.raises(DataError, match="not a date"):
        check_extract_date(w, "2019-13-01")
    with pytest.raises(DataError, match="after the latest record"):
        load_world(path, extract_date="2020-06-30")
    assert load_world(path, extract_date="2020-06-30", allow_extract_date_after_data=True).extract_date.year == 2020
    (path / "meta.json").write_text(json.dumps({"extract_date": "2021-06-30"}))
    with pytest.raises(DataError, match="meta.json: key 'extract_date': the extract date 2021-06-30 is after"):
        load_world(path)


# ---------------------------------------------------------------------------------------------- the cache
def test_default_cache_dir_is_outside_the_repository(monkeypatch, tmp_path):
    from evaluation.validate import default_cache_dir

    for var in ("EVALUATION_CACHE_DIR", "EVALUATION_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "evaluation"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "evaluation"
    monkeypatch.setenv("EVALUATION_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_cache_is_owner_only_and_holds_schema_columns_only(tmp_path):
    p = tiny_world(tmp_path / "w")[1]["people"].assign(forename=["A", "B", "C"])
    path, _ = tiny_world(tmp_path / "w", people=p)
    w = load_world(path, cache=tmp_path / "cache")
    (entry,) = list((tmp_path / "cache").iterdir())
    assert stat.S_IMODE(entry.stat().st_mode) == 0o700
    for f in entry.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert list(pd.read_parquet(entry / "people.parquet").columns) == list(SCHEMAS["people"].columns)
    assert "forename" not in (entry / "world.json").read_text().replace('"forename"', "")
    assert load_world(path, cache=tmp_path / "cache").dropped_columns == w.dropped_columns == {"people": ["forename"]}


def test_cache_key_is_content_not_size_and_mtime(tmp_path):
    path, t = tiny_world(tmp_path / "w")
    load_world(path, cache=tmp_path / "cache")
    f = path / "offences.csv"
    st = f.stat()
    f.write_text(f.read_text().replace("robbery", "burglar"))  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(DataError, match="unknown value"):  # 'burglar' is not an offence group: re-validated
        load_world(path, cache=tmp_path / "cache")


# -------------------------------------------------------------------------------------------------- CLI
def test_cli_validate_reports_and_exits(tmp_path, capsys):
    from evaluation.__main__ import main

    path, t = tiny_world(tmp_path)
    assert main(["validate", "--world", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Problems: none" in out and "offences.csv" in out and "pending" in out
    o = t["offences"].assign(person_id=["P1", "P7", "P3"])
    o.to_csv(path / "offences.csv", index=False)
    assert main(["validate", "--world", str(path)]) == 2
    cap = capsys.readouterr()
    assert "not in the people table" in cap.out and "P7" not in cap.out + cap.err
    assert main(["validate", "--world", str(path), "--show-values"]) == 2
    cap = capsys.readouterr()
    assert "P7" not in cap.out and "P7" in cap.err
    o = t["offences"]
    o.to_csv(path / "offences.csv", index=False)
    assert main(["validate", "--world", str(path), "--extract-date", "2020-01-01"]) == 2
    assert "after the latest record" in capsys.readouterr().out
    assert main(["validate", "--world", str(path), "--extract-date", "2020-01-01",
                 "--allow-extract-date-after-data"]) == 0


def test_validate_world_collects_problems_from_several_tables(tmp_path):
    from evaluation.validate import validate_world

    t = tiny_world(tmp_path)[1]
    path, _ = tiny_world(tmp_path, people=t["people"].assign(sex=["M", "X", "F"]),
                         contacts=t["contacts"].assign(contact_type=["phone"]))
    rep = validate_world(path)
    assert not rep.ok and len(rep.problems) == 2 and "problem(s)" in repr(rep)
    assert rep.summary().set_index("table").loc["people", "status"] == "problem"


def test_extract_date_of_a_dict_of_tables_and_reprs(tmp_path):
    from evaluation.validate import extract_date, validate_world

    path, _ = tiny_world(tmp_path)
    w = load_world(path)
    assert extract_date(w.tables()) == dt.date(2019, 9, 1)
    assert repr(w).count("\n") == 0 and "offences 3" in repr(w)
    rep = validate_world(path)
    assert rep.ok and repr(rep).count("\n") == 0 and "valid" in repr(rep)
    assert list(rep.summary().columns) == ["table", "file", "rows", "dropped columns", "status"]
