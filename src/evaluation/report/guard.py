"""The output guard: nothing person-level or identifying leaves a build.

A report is published only when every output format passes :func:`check_outputs`:

* **identifiers** — every person id of the world, of any shape (``P0001234``, ``AB/1234/56``, ``NFK.004211``,
  7-digit numbers, 5-character codes), and every date of birth, looked for in the text of the executed notebook,
  the HTML, the PDF (pypdf's text extraction), ``results.json``, CSV tables and SVG figures (inline or as data
  URIs). See :class:`Identifiers` for what counts as a match and what is deliberately not looked for;
* **person-level tables** — every table shown in the executed notebook must have been marked as published by
  :func:`evaluation.report.content.table` (:func:`mark_published`; the display formatter installed by
  :func:`install_table_formatter` turns the mark into the CSS class ``evaluation-published``). A table displayed
  any other way (``display(ev.analysis.drop(columns="person_id").head(10))``) is refused, with or without an id
  column, naming the cell: aggregate tables go through ``content.table``; rows of people never do.

Messages are publishable: :class:`GuardError` says how many identifiers were found and in which output, never
which (the values go to the terminal only, :func:`report_to_terminal`); :func:`redact` removes the world's
identifying values from any other message (a failing cell's exception) before it is written to the manifest or
the index.

Public functions others call: :func:`mark_published`, :func:`is_published`, :func:`install_table_formatter`,
:meth:`Identifiers.from_world`, :func:`output_texts`, :func:`find_identifiers`, :func:`unpublished_tables`,
:func:`check_outputs`, :func:`redact`.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from evaluation.errors import EvaluationError

PUBLISHED_CLASS = "evaluation-published"
_ATTR = "evaluation.published"


class GuardError(EvaluationError, RuntimeError):
    """An output holds identifying values or person-level rows. The message is publishable (counts, output names,
    cell numbers; never the values)."""


# ------------------------------------------------------------------------------------------ published tables
def _signature(df) -> tuple:
    """Shape, columns and index of a frame: a frame derived from a marked one (``.head()``, a join, a filter)
    has another signature, so pandas' propagation of ``attrs`` does not carry the mark over to it."""
    return (tuple(df.shape), tuple(map(str, df.columns)), tuple(map(str, df.index)))


def mark_published(df):
    """Mark ``df`` (in place, and return it) as a publishable (aggregate, disclosure-controlled) table.

    Only ``attrs`` is touched; the mark holds the frame's signature, so a later edit of the frame (or a frame derived
    from it) is no longer published.

    Parameters
    ----------
    df : pandas.DataFrame
        The table as it will be shown.

    Returns
    -------
    pandas.DataFrame
        ``df`` itself, with ``attrs["evaluation.published"]`` set to its signature.

    Examples
    --------
    >>> import pandas as pd
    >>> is_published(mark_published(pd.DataFrame({"n": [1]})))
    True
    """
    df.attrs[_ATTR] = _signature(df)
    return df


def is_published(df) -> bool:
    """True when ``df`` itself (not a frame derived from it) was marked by :func:`mark_published`."""
    try:
        return df.attrs.get(_ATTR) == _signature(df)
    except Exception:  # noqa: BLE001 - not a frame
        return False


def _published_html(df):
    """IPython text/html formatter for DataFrames: pandas' own HTML, with the published class when marked."""
    html = df._repr_html_()
    if html is not None and is_published(df):
        html = html.replace('class="dataframe"', f'class="dataframe {PUBLISHED_CLASS}"', 1)
    return html


def install_table_formatter() -> bool:
    """Install the DataFrame HTML formatter in the running IPython kernel (no-op outside IPython).

    Returns
    -------
    bool
        Whether a formatter was installed.
    """
    try:
        from IPython import get_ipython

        import pandas as pd
    except ImportError:  # pragma: no cover
        return False
    ip = get_ipython()
    if ip is None:
        return False
    ip.display_formatter.formatters["text/html"].for_type(pd.DataFrame, _published_html)
    return True


_TABLE = re.compile(r"<table\b[^>]*>", re.I)


def unpublished_tables(nb: Any) -> list[str]:
    """Where the executed notebook shows a table not marked as published.

    Parameters
    ----------
    nb : nbformat.NotebookNode or path
        The executed notebook.

    Returns
    -------
    list of str
        One description per offending cell: its number in the executed notebook (papermill's injected parameters
        cell counts) and its last line of code, e.g. ``"cell 5 [display(ev.analysis.head(10))]"``; empty when all
        tables are marked.
    """
    import nbformat

    if not hasattr(nb, "cells"):
        nb = nbformat.read(str(nb), as_version=4)
    bad = []
    for i, cell in enumerate(nb.cells, start=1):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            html = (out.get("data") or {}).get("text/html")
            if html is None:
                continue
            html = "".join(html) if isinstance(html, list) else str(html)
            # each table: its opening tag and what follows up to the next table (an empty frame has no <td>: no
            # rows, nothing person-level, e.g. content functions returning pd.DataFrame() when there is no data)
            starts = [m for m in _TABLE.finditer(html)]
            for k, m in enumerate(starts):
                rest = html[m.end(): starts[k + 1].start() if k + 1 < len(starts) else len(html)]
                if PUBLISHED_CLASS not in m.group(0) and re.search(r"<td\b", rest, re.I):
                    code = [ln.strip() for ln in str(cell.source).splitlines() if ln.strip()
                            and not ln.strip().startswith("#")]
                    bad.append(f"cell {i} [{code[-1][:70] if code else ''}]")
                    break
    return list(dict.fromkeys(bad))


# ----------------------------------------------------------------------------------------------- identifiers
_SEP = r"[./\\\-_:]"
_COMPOUND = re.compile(rf"[A-Za-z0-9]+(?:{_SEP}[A-Za-z0-9]+)*")
_PARTS = re.compile(rf"({_SEP})")
_MONTHS = {m: i for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                       "september", "october", "november", "december"], start=1)}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_DATE_PATTERNS = (
    (re.compile(r"(?<![\d])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d])"), ("y", "m", "d")),
    (re.compile(r"(?<![\d/])(\d{1,2})[/.](\d{1,2})[/.](\d{4})(?![\d])"), ("d", "m", "y")),
    (re.compile(r"(?<![\d])(\d{1,2})(?:st|nd|rd|th)?\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})(?![\d])"), ("d", "mon", "y")),
    (re.compile(r"\b([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?![\d])"), ("mon", "d", "y")),
)


def searchable(person_id: str) -> bool:
    """Whether an id can be told apart from ordinary text and figures, so it is looked for.

    Ids with a letter, a separator or a leading zero are looked for from two characters up when they mix letters
    and digits (``AB/1234/56``, ``NFK.004211``, ``X1234``, ``004211``), from three otherwise. Plain numbers are
    looked for from five digits (7-digit ids, 5-digit ids): four digits and fewer collide with years and counts.
    A count written the house way (``1,234``, ``12.5``) never matches: the comma is not part of a token. Ids that
    are not searchable are still caught when shown in a table (every table must be marked as published).
    """
    s = person_id.strip()
    if len(s) < 2:
        return False
    if s.isdigit():
        return len(s) >= 5 or (s.startswith("0") and len(s) >= 3)
    has_letter, has_digit = any(c.isalpha() for c in s), any(c.isdigit() for c in s)
    return len(s) >= 3 or (has_letter and has_digit)


@dataclass
class Identifiers:
    """The identifying values of a world: person ids (normalised upper-case) and dates of birth."""

    ids: frozenset[str] = frozenset()
    dates_of_birth: frozenset[dt.date] = frozenset()
    unsearchable: int = 0  # ids too short to tell from figures (see :func:`searchable`)

    def __repr__(self) -> str:
        return (f"Identifiers({len(self.ids)} person ids, {len(self.dates_of_birth)} dates of birth, "
                f"{self.unsearchable} ids too short to look for)")

    def __bool__(self) -> bool:
        return bool(self.ids or self.dates_of_birth)

    @classmethod
    def from_values(cls, ids: Iterable[Any] = (), dates_of_birth: Iterable[Any] = ()) -> "Identifiers":
        """From raw values (strings, numbers; dates as dates, timestamps or ISO strings)."""
        import pandas as pd

        keep, skipped = set(), 0
        for v in ids:
            if v is None or (isinstance(v, float) and v != v):
                continue
            s = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip()
            if searchable(s):
                keep.add(s.upper())
            else:
                skipped += 1
        dobs = set()
        for v in pd.to_datetime(pd.Series(list(dates_of_birth), dtype=object), errors="coerce").dropna():
            dobs.add(v.date())
        return cls(frozenset(keep), frozenset(dobs), skipped)

    @classmethod
    def from_world(cls, world: Path | str) -> "Identifiers":
        """Person ids and dates of birth of a world folder.

        Ids come from every ``*person_id*`` column of the world's tables (people, referrals, offences, …: an id
        present anywhere in the world is identifying), dates of birth from the people table.

        Parameters
        ----------
        world : path
            The world folder (``people.csv``/``.parquet`` and the other tables).

        Returns
        -------
        Identifiers
        """
        import pandas as pd

        world = Path(world)
        ids: set = set()
        dobs: list = []
        for p in sorted(world.glob("*.parquet")) + sorted(world.glob("*.csv")):
            try:
                if p.suffix == ".parquet":
                    import pyarrow.parquet as pq

                    names = pq.read_schema(p).names
                else:
                    names = list(pd.read_csv(p, nrows=0).columns)
                cols = [c for c in names if "person_id" in str(c).lower()
                        or str(c).lower() in ("date_of_birth", "dob", "birth_date")]
                if not cols:
                    continue
                frame = (pd.read_parquet(p, columns=cols) if p.suffix == ".parquet"
                         else pd.read_csv(p, usecols=cols, dtype=str))
            except Exception:  # noqa: BLE001 - an unreadable table is the validator's business, not the guard's
                continue
            for c in cols:
                if "person_id" in str(c).lower():
                    ids.update(frame[c].dropna().astype(str).str.strip())
                else:
                    dobs.extend(frame[c].dropna().tolist())
        return cls.from_values(ids, dobs)


@dataclass
class Finding:
    """One identifying value found in one output (the value is for the terminal only)."""

    output: str
    kind: str  # "person id" | "date of birth"
    value: str = field(repr=False)


def _candidates(token: str) -> Iterable[str]:
    """The token and each run of its parts (``x/AB/1234/56`` → ``AB/1234/56``, ``AB``, ``1234``, …)."""
    pieces = _PARTS.split(token)  # part, sep, part, sep, ...
    parts = pieces[0::2]
    if len(parts) == 1:
        yield token
        return
    n = len(parts)
    width = n if n <= 12 else 6
    for i in range(n):
        for j in range(i + 1, min(n, i + width) + 1):
            yield "".join(pieces[2 * i: 2 * j - 1])


def _dates(text: str) -> Iterable[tuple[str, dt.date]]:
    for pattern, order in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            parts = dict(zip(order, m.groups()))
            try:
                month = int(parts["m"]) if "m" in parts else _MONTHS.get(parts["mon"].lower().rstrip("."))
                if month is None:
                    continue
                yield m.group(0), dt.date(int(parts["y"]), month, int(parts["d"]))
            except (ValueError, TypeError):
                continue


def find_identifiers(texts: Mapping[str, str], identifiers: Identifiers) -> list[Finding]:
    """Every identifying value of ``identifiers`` in each text.

    Parameters
    ----------
    texts : mapping of output name to text
    identifiers : Identifiers

    Returns
    -------
    list of Finding
        Distinct (output, value) pairs, in output order.
    """
    found: list[Finding] = []
    for name, text in texts.items():
        seen: set[str] = set()
        if identifiers.ids:
            for token in set(_COMPOUND.findall(text)):
                for cand in _candidates(token):
                    key = cand.upper()
                    if key in identifiers.ids and key not in seen:
                        seen.add(key)
                        found.append(Finding(name, "person id", cand))
        if identifiers.dates_of_birth:
            for raw, day in _dates(text):
                if day in identifiers.dates_of_birth and raw not in seen:
                    seen.add(raw)
                    found.append(Finding(name, "date of birth", raw))
    return found


def redact(text: str, identifiers: Identifiers | None) -> str:
    """``text`` with every person id and date of birth of the world replaced by ``[person id]`` /
    ``[date of birth]`` (for messages that reach the manifest, the index or a summary)."""
    if not text or not identifiers:
        return text
    out = text
    for f in sorted(find_identifiers({"": text}, identifiers), key=lambda f: -len(f.value)):
        label = "[person id]" if f.kind == "person id" else "[date of birth]"
        if f.kind == "person id":
            out = re.sub(rf"(?<![A-Za-z0-9]){re.escape(f.value)}(?![A-Za-z0-9])", label, out, flags=re.I)
        else:
            out = out.replace(f.value, label)
    return out


# ---------------------------------------------------------------------------------------------- output texts
_DATA_URI = re.compile(r"data:image/svg\+xml(;base64)?,([A-Za-z0-9+/=%._\-]+)")


# base64 payloads (PNG figures in ipynb and HTML): random letters that could spell a short id by chance
_BINARY = re.compile(r'(?:data:[a-z/+.\-]+;base64,|"image/(?:png|jpeg|gif)":\s*")[A-Za-z0-9+/=\\n\s]+')


def _svg_texts(text: str) -> str:
    """Decoded SVG documents embedded as data URIs (their text would otherwise hide in base64)."""
    from urllib.parse import unquote

    out = []
    for m in _DATA_URI.finditer(text):
        try:
            out.append(base64.b64decode(m.group(2)).decode("utf-8", "replace") if m.group(1)
                       else unquote(m.group(2)))
        except ValueError:
            continue
    return "\n".join(out)


def _json_text(obj: Any, key: str = "") -> Iterable[str]:
    """Strings, keys, and numbers under id-like keys of a JSON document (other numbers are figures)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from _json_text(v, str(k))
    elif isinstance(obj, list):
        for v in obj:
            yield from _json_text(v, key)
    elif isinstance(obj, str):
        yield obj
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool) and re.search(r"(^|_)id(s)?$|person", key, re.I):
        yield str(obj)


def pdf_text(path: Path | str) -> str:
    """Text of every page of a PDF (pypdf), pages separated by form feeds."""
    import pypdf

    return "\f".join(page.extract_text() or "" for page in pypdf.PdfReader(str(path)).pages)


def output_texts(folder: Path | str) -> dict[str, str]:
    """The scannable text of every output in ``folder`` (recursively), by file name relative to it.

    ipynb, HTML, SVG, CSV/TSV and text as text (plus decoded SVG data URIs), JSON as its strings and id-like
    values, PDF as pypdf's extracted text. Other files (PNG) have no text to scan.
    """
    folder = Path(folder)
    texts: dict[str, str] = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        name = str(p.relative_to(folder))
        suffix = p.suffix.lower()
        if suffix == ".pdf":
            texts[name] = pdf_text(p)
        elif suffix == ".json":
            raw = p.read_text(encoding="utf-8", errors="replace")
            try:
                texts[name] = "\n".join(_json_text(json.loads(raw)))
            except ValueError:
                texts[name] = raw
        elif suffix in (".ipynb", ".html", ".htm", ".svg", ".csv", ".tsv", ".txt", ".md"):
            raw = p.read_text(encoding="utf-8", errors="replace")
            texts[name] = _BINARY.sub("", raw) + "\n" + _svg_texts(raw)
    return texts


def report_to_terminal(findings: list[Finding], stream=None) -> None:
    """Print the values found (terminal only: never written to an output)."""
    stream = stream or sys.stderr
    for f in findings[:20]:
        print(f"guard: {f.kind} {f.value!r} in {f.output}", file=stream)
    if len(findings) > 20:
        print(f"guard: … and {len(findings) - 20} more", file=stream)


def describe(findings: list[Finding]) -> str:
    """A publishable summary: how many of each kind in each output (no values)."""
    counts: dict[tuple[str, str], int] = {}
    for f in findings:
        counts[(f.kind, f.output)] = counts.get((f.kind, f.output), 0) + 1
    return "; ".join(f"{n} {kind}{'s' if n > 1 else ''} in {out}" for (kind, out), n in counts.items())


def check_outputs(folder: Path | str, identifiers: Identifiers, notebook: Path | str | None = None) -> None:
    """Refuse a report folder that holds identifying values or person-level tables.

    Parameters
    ----------
    folder : path
        The staging folder with every output of one report.
    identifiers : Identifiers
        The world's identifying values (:meth:`Identifiers.from_world`).
    notebook : path, optional
        The executed notebook whose table outputs must all be marked (default ``folder/report.ipynb`` if present).

    Raises
    ------
    GuardError
        Naming the outputs and cells, with counts only; the values are printed to stderr.
    """
    folder = Path(folder)
    problems = []
    nb = Path(notebook) if notebook else folder / "report.ipynb"
    if nb.exists():
        cells = unpublished_tables(nb)
        if cells:
            problems.append("unpublished table (not from evaluation.report.content.table(); it may show rows of "
                            f"people) in {', '.join(cells)}")
    findings = find_identifiers(output_texts(folder), identifiers) if identifiers else []
    if findings:
        report_to_terminal(findings)
        problems.append(f"person-level identifiers in the outputs ({describe(findings)}); a template displays "
                        "person rows (details on the terminal)")
    if problems:
        raise GuardError("; ".join(problems))
