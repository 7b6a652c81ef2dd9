"""The hostile-extract corpus: each case writes a tiny world folder with one defect and states the behaviour it
must get. ``tests/test_validate_hostile.py`` runs every case; ``README.md`` here lists them (a test keeps the two
in step). Identifiers have the shapes real extracts use (``AB/1234/56``, ``NFK.004211``, 7 digits, 5 characters)
so that a message quoting one would be caught.

A case is ``Case(name, write, expect)``: ``write(folder, tables)`` changes the good tables (DataFrames of text) or
the files written from them; ``expect`` is ``Error(pattern, column, lines)`` (``load_world`` raises a
``DataError`` matching ``pattern``, naming ``column`` and these line numbers) or ``Loads(check)`` (the world loads
and ``check(world)`` holds). For every error case the message must hold no identifying value of the world.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

PEOPLE_IDS = ["AB/1234/56", "NFK.004211", "4211007", "X9K2Q"]
DATES_OF_BIRTH = ["2004-05-01", "1990-01-31", "1985-12-12", "1979-03-03"]
NAMES = ["Smith", "Jones", "Brown", "Patel"]


def good_tables() -> dict[str, pd.DataFrame]:
    """A valid world of four people, as text (what a CSV holds)."""
    p = PEOPLE_IDS
    return {
        "people": pd.DataFrame({"person_id": p, "date_of_birth": DATES_OF_BIRTH, "sex": ["M", "F", "F", "M"],
                                "ethnicity_group": ["White", "Black", "Unknown", "Asian"],
                                "district": ["Norwich", "Great Yarmouth", "Norwich", "Breckland"],
                                "drug_misuse": ["False", "True", "1", "0"]}),
        "referrals": pd.DataFrame({"referral_id": ["REF/19/0001", "REF/19/0002"], "person_id": p[:2],
                                   "programme_id": ["pathways-out", "wonder-plus"],
                                   "referral_date": ["2019-05-01", "2019-06-01"], "start_date": ["2019-05-10", ""],
                                   "end_date": ["2019-11-10", ""], "completion_status": ["completed", "not_started"],
                                   "referral_source": ["school", "custody"]}),
        "contacts": pd.DataFrame({"person_id": [p[2], p[3]], "contact_date": ["2019-07-01", "2019-07-02"],
                                  "contact_type": ["arrest", "stop_search"]}),
        "offences": pd.DataFrame({"offence_id": ["OFF-000001", "OFF-000002", "OFF-000003", "OFF-000004"],
                                  "person_id": [p[0], p[0], p[2], p[3]],
                                  "offence_date": ["2019-06-01", "2019-07-01", "2019-08-01", "2020-06-01"],
                                  "disposal_date": ["2019-09-01", "", "2019-08-20", "2021-06-30"],
                                  "disposal_type": ["youth_caution", "pending", "conviction", "conviction"],
                                  "offence_group": ["theft", "drug_possession", "robbery", "burglary"],
                                  "drug_related": ["false", "true", "false", "false"]}),
        "custody": pd.DataFrame({"person_id": [p[3]], "custody_start": ["2020-07-01"], "custody_end": ["2020-12-01"]}),
    }


def identifying_values() -> list[str]:
    t = good_tables()
    return PEOPLE_IDS + DATES_OF_BIRTH + NAMES + t["referrals"]["referral_id"].tolist() \
        + t["offences"]["offence_id"].tolist()


def write_world(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    return folder


@dataclass
class Error:
    pattern: str
    column: str | None = None
    lines: tuple[int, ...] | None = None
    load_kw: dict | None = None


@dataclass
class Loads:
    check: Callable
    load_kw: dict | None = None


@dataclass
class Case:
    name: str
    write: Callable[[Path, dict], None]
    expect: Error | Loads


def _set(table, **cols):
    def write(folder, t):
        t[table] = t[table].assign(**cols)
        write_world(folder, t)
    return write


def _then(write_first, after):
    def write(folder, t):
        write_first(folder, t)
        after(folder)
    return write


def _meta(date):
    return lambda folder: (folder / "meta.json").write_text(json.dumps({"extract_date": date}))


def _dup_header(folder):
    f = folder / "people.csv"
    lines = f.read_text().splitlines()
    f.write_text("\n".join([lines[0] + ",sex"] + [line + ",F" for line in lines[1:]]) + "\n")


def _dangling(name):
    def after(folder):
        (folder / f"{name}.csv").unlink(missing_ok=True)
        (folder / f"{name}.csv").symlink_to(folder / "no-such-file.csv")
    return after


def _latin1(folder):
    f = folder / "contacts.csv"
    f.write_bytes(f.read_bytes().replace(b"arrest", "arr\u00e9st".encode("latin-1")))


def _dropped(world):
    return (world.dropped_columns == {"people": ["surname", "address"]}
            and "surname" not in world.people.columns)


ok = _set("people")  # the good world, unchanged

CASES = [
    Case("conviction-without-disposal-date",
         _set("offences", disposal_date=["2019-09-01", "", "", "2021-06-30"]),
         Error(r"counted disposal .* with no disposal date", "disposal_date", (4,))),
    Case("empty-person-id", _set("offences", person_id=["AB/1234/56", "", "NFK.004211", "X9K2Q"]),
         Error(r"missing value \(required", "person_id", (3,))),
    Case("nan-person-id", _set("offences", person_id=["AB/1234/56", "nan", "NFK.004211", "X9K2Q"]),
         Error(r"missing value \(required", "person_id", (3,))),
    Case("empty-referral-source", _set("referrals", referral_source=["school", " "]),
         Error(r"missing value \(required", "referral_source", (3,))),
    Case("extract-date-after-data", _set("people"),
         Error(r"extract date 2030-01-01 is after today", None, None, {"extract_date": "2030-01-01"})),
    Case("extract-date-after-latest-record", _set("people"),
         Error(r"extract date 2022-06-30 is after the latest record in the world \(2021-06-30",
               None, None, {"extract_date": "2022-06-30"})),
    Case("extract-date-after-data-allowed", _set("people"),
         Loads(lambda w: str(w.extract_date) == "2022-06-30",
               {"extract_date": "2022-06-30", "allow_extract_date_after_data": True})),
    Case("meta-extract-date-after-data", _then(_set("people"), _meta("2024-12-31")),
         Error(r"meta.json: key 'extract_date': the extract date 2024-12-31 is after the latest record")),
    Case("meta-not-json", _then(_set("people"), lambda f: (f / "meta.json").write_text("{extract_date: 2019")),
         Error(r"meta.json: not valid JSON")),
    Case("offence-before-birth", _set("offences", offence_date=["2003-06-01", "2019-07-01", "2019-08-01",
                                                                "2020-06-01"],
                                      disposal_date=["2003-07-01", "", "2019-08-20", "2021-06-30"]),
         Error(r"dated before the person's date of birth", "offence_date", (2,))),
    Case("referral-before-birth", _set("people", date_of_birth=["2004-05-01", "2019-07-01", "1985-12-12",
                                                                "1979-03-03"]),
         Error(r"dated before the person's date of birth", "referral_date", (3,))),
    Case("birth-in-2099", _set("people", date_of_birth=["2004-05-01", "2099-01-31", "1985-12-12", "1979-03-03"]),
         Error(r"date of birth after the extract date", "date_of_birth", (3,))),
    Case("birth-implausibly-early", _set("people", date_of_birth=["2004-05-01", "1890-01-31", "1985-12-12",
                                                                  "1979-03-03"]),
         Error(r"implausible date of birth \(older than 110", "date_of_birth", (3,))),
    Case("birth-unparseable", _set("people", date_of_birth=["2004-05-01", "31/01/1990", "1985-12-12",
                                                            "1979-03-03"]),
         Error(r"unparseable date", "date_of_birth", (3,))),
    Case("duplicate-header", _then(_set("people"), _dup_header),
         Error(r"duplicate column name\(s\) in the header \(line 1\): 'sex' in columns 3, 7", "sex", (1,))),
    Case("headerless-csv", _then(_set("people"), lambda f: (f / "people.csv").write_text(
        "\n".join((f / "people.csv").read_text().splitlines()[1:]) + "\n")),
         Error(r"people.csv: missing column\(s\) .*is line 1 a header\?", "person_id", (1,))),
    Case("dangling-symlink-optional-table", _then(_set("people"), _dangling("custody")),
         Error(r"custody.csv: is a symbolic link to a file that does not exist")),
    Case("dangling-symlink-required-table", _then(_set("people"), _dangling("contacts")),
         Error(r"contacts.csv: is a symbolic link to a file that does not exist")),
    Case("not-utf8", _then(_set("people"), _latin1), Error(r"contacts.csv: cannot be read as csv")),
    Case("duplicate-person-id", _set("people", person_id=["AB/1234/56", "NFK.004211", "NFK.004211", "X9K2Q"]),
         Error(r"duplicate values", "person_id", (3, 4))),
    Case("duplicate-offence-id", _set("offences", offence_id=["OFF-000001", "OFF-000001", "OFF-000003",
                                                              "OFF-000004"]),
         Error(r"duplicate values", "offence_id", (2, 3))),
    Case("unknown-person", _set("contacts", person_id=["NFK.004212", "X9K2Q"]),
         Error(r"person not in the people table", "person_id", (2,))),
    Case("duplicate-person-in-cohort", _set("referrals", person_id=["AB/1234/56", "AB/1234/56"],
                                            programme_id=["wonder-plus", "wonder-plus"]),
         Error(r"duplicate person in a programme cohort", "person_id", (2, 3))),
    Case("script-in-disposal-code", _set("offences", disposal_type=["youth_caution", "pending",
                                                                    "<script>alert(1)</script>", "conviction"]),
         Error(r"unknown value .* line 4 \('<script>alert\(1\)</script>'\)", "disposal_type", (4,))),
    Case("extra-identifier-columns", _set("people", surname=NAMES, address=["1 A St", "2 B St", "3 C St", "4 D St"]),
         Loads(_dropped)),
    Case("attachment-link-in-referrals-to",
         _then(_set("people"), lambda f: pd.DataFrame({
             "programme_id": ["wonder-plus"], "date": ["2019-06-01"], "activity": ["referral"],
             "audience": ["families"], "sessions": ["1"], "attendees": ["3"],
             "referrals_to": ['MASH<a rel="attachment" href="file:///etc/passwd"></a>'],
             "organisations": [""]}).to_csv(f / "delivery.csv", index=False)),
         Loads(lambda w: w.delivery["referrals_to"].iloc[0].startswith("MASH<a"))),  # inert text: renderers escape
    Case("good-world", ok, Loads(lambda w: str(w.extract_date) == "2021-06-30" and len(w.offences) == 4)),
]
