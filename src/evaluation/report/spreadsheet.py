"""A report's published figures as an accessible spreadsheet: ``reports/<id>/tables.xlsx`` (gptables).

Statisticians and funders re-use tables, and the Justice Data Lab publishes its tables beside the PDF. The
workbook follows the Analysis Function's guidance for releasing statistics in spreadsheets, through its own
package (gptables): a cover sheet, a contents sheet, a notes table, one table per sheet, each with a title, its
units in the column headings, ``[c]`` for a count suppressed by disclosure control and ``[x]`` for a figure not
published because it would reveal one.

The figures come from the report's ``results.json`` — the same disclosure-checked register
(:class:`evaluation.register.Register`) the PDF and HTML are written from — so the three cannot disagree. Numbers
are rounded as the report rounds them (whole percentages and percentage points, frequencies and ratios to 2 dp,
days to whole days, p-values to 2 dp with ``<0.01``). Hidden figures (registered only for the disclosure check)
are never in ``results.json`` and so never here.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from evaluation import wording

#: Sheet order and titles for the register's sections.
SECTIONS = {
    "headline": "Headline measures: participants against the matched comparison group",
    "ratios": "Risk, odds and rate ratios",
    "per100": "For every 100 participants and 100 similar people who did not take part",
    "survival": "Time to first proven reoffence",
    "risk": "Numbers at risk (rounded to the nearest 5)",
    "balance": "Matching quality: standardised mean differences",
    "attrition": "Attrition: from referral to the matched groups (rounded to the nearest 5)",
    "profile": "Who took part (rounded to the nearest 5)",
    "sensitivity": "Sensitivity to hidden bias",
    "power": "Power and the number needed",
    "vfm": "Value for money",
    "delivery": "Delivery against target",
    "funnel": "Contacts and onward referrals (young people)",
}
SUPPRESSED, WITHHELD = "[c]", "[x]"
UNIT_NAMES = {"people": "people", "proportion": "percent", "pp": "percentage points", "per_person": "per person",
              "days": "days", "ratio": "ratio", "smd": "standardised mean difference", "gbp": "pounds",
              "number": "number", "text": ""}


def _round(value: Any, unit: str):
    """A register value as the report shows it (numbers stay numbers)."""
    if value is None:
        return None
    if isinstance(value, str) or unit == "text":
        return str(value)
    v = float(value)
    if unit in ("proportion", "pp"):
        out = round(100 * v, 1)  # percent / percentage points to one decimal, as the report's tables
    elif unit in ("per_person", "ratio", "smd"):
        out = round(v, 2)
    elif unit in ("days", "gbp", "people"):
        return int(round(v))
    elif unit == "number":  # counts stay whole; other numbers (a share, a p-value) keep two decimals
        return int(round(v)) if float(v).is_integer() or abs(v) >= 100 else round(v, 2)
    else:
        out = round(v, 3)
    return 0.0 if out == 0 else out  # never "-0"


def _p(p) -> Any:
    if p is None:
        return None
    return "<0.01" if p < 0.005 else round(float(p), 2) + 0.0


def register_tables(results: dict) -> dict[str, pd.DataFrame]:
    """One table per register section of a report's ``results.json`` (individual and delivery designs).

    Parameters
    ----------
    results : dict
        A report's ``results.json`` (``figures`` keyed by register id).

    Returns
    -------
    dict of str to DataFrame
        Section → table with columns Measure, Value, Unit, Lower/Upper 95% CI and p-value where any figure in
        the section has them; suppressed values are ``[c]``, withheld ``[x]``.
    """
    figures = results.get("figures") or {}
    by_section: dict[str, list[dict]] = {}
    for fid, f in figures.items():
        if f.get("status") == "hidden":
            continue
        unit = f.get("unit") or "number"
        status = f.get("status")
        value = SUPPRESSED if status == "suppressed" else WITHHELD if status == "withheld" else \
            _round(f.get("value"), unit)
        row = {"Measure": _plain_label(f.get("label") or fid), "Value": value,
               "Unit": UNIT_NAMES.get(unit, unit)}
        shown = status in ("shown", "rounded")
        if "lower" in f or "upper" in f:
            row["Lower 95% CI"] = _round(f.get("lower"), unit) if shown else WITHHELD
            row["Upper 95% CI"] = _round(f.get("upper"), unit) if shown else WITHHELD
        if "p_value" in f:
            row["p-value"] = _p(f.get("p_value")) if shown else WITHHELD
        if status == "rounded":
            row["Rounded"] = "yes"
        by_section.setdefault(f.get("section") or "other", []).append(row)
    order = list(SECTIONS) + sorted(set(by_section) - set(SECTIONS))
    out = {}
    for sec in order:
        rows = by_section.get(sec)
        if not rows:
            continue
        df = pd.DataFrame(rows)
        if "Rounded" in df:
            df["Rounded"] = df["Rounded"].fillna("no")
        out[sec] = df.astype(object).where(df.notna(), "[x]")
    return out


def area_tables(results: dict) -> dict[str, pd.DataFrame]:
    """The estimates of an area evaluation (one row per measure): ITS and DiD changes, p-values and checks."""
    rows = []
    for m, r in (results.get("measures") or {}).items():
        its, did = r.get("its") or {}, r.get("did") or {}
        log = did.get("scale") == "log"

        def change(v):
            if v is None:
                return "[x]"
            import math

            return round(100 * (math.exp(v) - 1), 1) if log else round(v, 2)

        rows.append({"Measure": m.replace("_", " ").capitalize(),
                     "Unit of change": "percent" if log else f"rate {its.get('series_unit', '')}".strip(),
                     "Change vs own trend (ITS)": change(its.get("level_change")),
                     "p-value (ITS)": _p(its.get("level_p")),
                     "Change vs comparison areas (DiD)": change(did.get("estimate")),
                     "p-value (DiD)": _p(did.get("p")),
                     "Placebo p-value": round(did["placebo_p"], 2) if did.get("placebo_p") is not None else "[x]",
                     "Pre-trend check p-value": _p(did.get("pretrend_p")),
                     "Areas already moving apart before the pilot": "yes" if did.get("pretrend_failed") else "no"})
    return {"estimates": pd.DataFrame(rows)} if rows else {}


def _plain_label(text: str) -> str:
    return " ".join(str(text).split())


def _sheet_name(section: str, n: int) -> str:
    """Short sheet names without spaces (screen readers read them; the guidance asks for short names)."""
    return f"Table_{n}_{re.sub(r'[^A-Za-z0-9]+', '_', section).strip('_')}"[:31]


def write_tables(report_dir: Path | str, *, programme_name: str | None = None, synthetic: bool | None = None,
                 out: Path | str | None = None) -> Path | None:
    """Write ``tables.xlsx`` beside a report from its ``results.json``.

    Parameters
    ----------
    report_dir : path
        ``reports/<id>``, holding ``results.json``.
    programme_name : str, optional
        For the titles (default: the programme's config name, else the id).
    synthetic : bool, optional
        Marks every title "(synthetic data)" (default: ``results.json``'s ``synthetic``, True when absent).
    out : path, optional
        The workbook (default ``<report_dir>/tables.xlsx``).

    Returns
    -------
    Path
        The workbook.

    Raises
    ------
    FileNotFoundError
        If ``results.json`` is missing.

    Examples
    --------
    >>> write_tables("reports/mace")  # doctest: +SKIP
    PosixPath('reports/mace/tables.xlsx')
    """
    import gptables as gpt

    report_dir = Path(report_dir)
    res_path = report_dir / "results.json"
    if not res_path.exists():
        raise FileNotFoundError(f"{res_path}: no results.json; build the report first")
    results = json.loads(res_path.read_text())
    pid = results.get("programme_id") or report_dir.name
    if programme_name is None:
        try:
            from evaluation.config import load_programme

            programme_name = load_programme(pid).name
        except Exception:  # noqa: BLE001 - the id is a fine title
            programme_name = pid
    if synthetic is None:
        synthetic = bool(results.get("synthetic", True))
    mark = " (synthetic data)" if synthetic else ""
    tables = area_tables(results) if results.get("design") == "area" else register_tables(results)
    if not tables:  # a template that publishes no register of figures (e.g. a custom one): no spreadsheet
        return None
    threshold = (results.get("disclosure") or {}).get("threshold", 5)
    base = (results.get("disclosure") or {}).get("rounding_base", 5)
    sheets = {}
    for n, (sec, df) in enumerate(tables.items(), start=1):
        title = SECTIONS.get(sec, sec.replace("_", " ").capitalize()) if sec != "estimates" else \
            "Estimates: change in each measure during the pilot"
        if results.get("measure", "proven reoffending") != "proven reoffending":  # first or repeat offending
            title = wording.first_or_repeat(title)
        sheets[_sheet_name(sec, n)] = gpt.GPTable(
            table=df, table_name=f"table_{n}_{re.sub(r'[^a-z0-9]+', '_', sec.lower())}",
            title=f"{title}, {programme_name}{mark}" + (" $$note 3$$" if sec == "headline" else ""),
            subtitles=[f"[c]: suppressed, a count of 1 to {threshold - 1} people or one that would reveal it "
                       "$$note 1$$. [x]: not published or not available $$note 2$$."],
            instructions="This worksheet contains one table.",
            source=f"Source: evaluation library, programme report {pid} (results.json)",
            index_columns={2: 0})
    extract = results.get("extract_date", "")
    cover = gpt.Cover(
        title=f"{programme_name}: report tables{mark}",
        intro=[f"The published figures of the programme report for {programme_name}, one table per worksheet, "
               "from the same disclosure-checked figures as the PDF and HTML report."]
        + (["SYNTHETIC DATA — illustrative. Every figure comes from a synthetic world generated by the evaluation "
            "library; none describes the real programme."] if synthetic else []),
        about=[[{"bold": True}, "Data"], f"Data extract date: {extract or 'not stated'}.",
               [{"bold": True}, "Disclosure control"],
               f"Counts of 1 to {threshold - 1} people are suppressed and shown as [c], with further cells "
               "suppressed where totals could reveal them. Counts in the attrition, profile and numbers-at-risk "
               f"tables are rounded to the nearest {base}. [x] marks a figure that is not published.",
               [{"bold": True}, "Units and rounding"],
               "Units are given in each table. Percentages and percentage points are whole numbers, as in the "
               "report; p-values below 0.005 are shown as <0.01."],
        contact=["See the programme report (report.pdf) for methods and wording."])
    notes = {"note 1": f"[c]: suppressed. A count of 1 to {threshold - 1} people, or a figure from which one "
                       "could be worked out.",
             "note 2": "[x]: not published (it would reveal a suppressed count) or not available."}
    if "headline" in tables:
        notes["note 3"] = "Comparison figures are weighted means over the matched comparison group."
    notes = pd.DataFrame({"Note number": list(notes), "Note text": list(notes.values())})
    path = Path(out) if out else report_dir / "tables.xlsx"
    gpt.write_workbook(filename=str(path), sheets=sheets, cover=cover, notes_table=notes,
                       contentsheet_options={"additional_elements": ["subtitles"]}, auto_width=True)
    return path
