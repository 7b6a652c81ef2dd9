"""Executed report notebook → HTML without code → funder PDF (WeasyPrint, A4).

Offline by design: nbconvert renders the cell *outputs* (Markdown, pandas tables, matplotlib figures) into an HTML
body with the template ``templates/body.html.j2`` (no code, no prompts, no stderr), and
``templates/page.html.j2`` + ``templates/report.css`` wrap it into

* ``report.html`` — the screen version (a sticky "SYNTHETIC DATA — illustrative" banner when synthetic);
* ``report.pdf`` — the print version through WeasyPrint: A4, a cover page (programme, provider, funders, period,
  data extract date, build date), "Page X of Y" in the bottom margin of every page (CSS ``counter(page)`` /
  ``counter(pages)`` in an ``@page`` margin box) and, for a synthetic world, the mark in the top margin box of every
  page and on the cover. No TeX and no headless browser are involved.

Figures are embedded as SVG data URIs in ``<img>`` (``evaluation.report.content.configure_figures`` makes matplotlib
emit SVG with its text kept as text, ``svg.fonttype: none``: sharp in print, selectable in the PDF and readable by
the output guard; WeasyPrint draws SVG text as PDF text); PNG outputs still work. They are scaled to the page width with their aspect ratio kept (``max-width: 100%``,
``height: auto``), so a wide figure is shrunk rather than cut.

Safe by construction (every text from data or configuration is inert wherever it is rendered):

* Markdown outputs and cells go through :func:`inert_markdown` (registered as nbconvert's ``markdown2html``
  filter, so no content function can forget): raw HTML in the Markdown is escaped and shows as text, and the
  HTML that Markdown syntax makes is cut to an allow-list (no links, no images, no attributes but alignment);
* ``text/html`` outputs (pandas tables) go through :func:`inert_html`: tables and a few text tags only, no links,
  scripts, styles, images or ``rel``; SVG figures are embedded as ``<img>`` data URIs, never inline; JavaScript,
  LaTeX and widget outputs are not rendered;
* the cover and page templates autoescape (Jinja);
* WeasyPrint fetches through :func:`safe_url_fetcher`: ``data:`` URIs and files inside the report's own folder
  only (no ``file://`` elsewhere, no network); the PDF is then checked with pypdf (:func:`pdf_attachments`) and
  refused if it holds any embedded file or file-attachment annotation.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from evaluation import wording
from evaluation.errors import EvaluationError

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class Cover:
    """The facts on a report's cover page (all plain text; the template escapes them)."""

    title: str
    provider: str = ""
    funders: str = ""
    period: str = ""
    extract_date: str = ""
    build_date: str = field(default_factory=lambda: f"{dt.date.today():%d %B %Y}")
    kind: str = "Programme evaluation report"
    threshold: int = 5
    commit: str = ""
    version: str = ""
    rounded: str = ""  # what the report rounds, in words (:func:`rounded_tables`); set once results.json exists
    base: int = 5

    @classmethod
    def from_programme(cls, programme, *, extract_date=None, build_date: dt.datetime | None = None,
                       commit: str = "") -> "Cover":
        """Cover facts from an :class:`evaluation.config.Programme`."""
        from evaluation.report.guidance import ASSUMED, is_assumed

        label = str((getattr(programme, "outcome", None) or {}).get("label") or "proven reoffending").strip()
        kinds = {"individual": f"Impact evaluation: one-year {label}",
                 "delivery_and_individual": "Delivery and impact evaluation",
                 "area": "Area-level evaluation", "delivery": "Delivery report"}

        def fact(key, text):  # facts not in the programme's public pages are marked, as in the report body
            return f"{text} ({ASSUMED})" if is_assumed(programme, key) else text

        funders = ", ".join(programme.get("funders") or []) or "not stated"
        period = (fact("start", f"{programme.start:%B %Y}") + " – " + fact("end", f"{programme.end:%B %Y}"))
        return cls(
            title=programme.name, provider=fact("provider", programme.provider), funders=fact("funders", funders),
            period=period,
            extract_date=f"{_as_date(extract_date):%d %B %Y}" if extract_date else "",
            build_date=f"{(build_date or dt.datetime.now()):%d %B %Y}",
            kind=kinds.get(programme.design, "Programme evaluation report"),
            threshold=programme.disclosure_threshold, commit=commit[:12], version=_version(),
        )


#: Register sections whose counts of people a report publishes rounded, in report order, and their names on the
#: cover's disclosure box.
ROUNDED_SECTIONS = {"attrition": "stages", "ete": "education, training or employment (ETE)", "profile": "profile",
                    "risk": "numbers-at-risk"}


def rounded_tables(results: dict) -> str:
    """The tables of one report that hold rounded counts of people, in words for the cover's disclosure box:
    ``"stages, profile and numbers-at-risk tables"``; ``""`` when nothing is rounded (a delivery report). Read
    from the report's own ``results.json``, so the box names only tables the report has (issue 11: the capacity
    building report's box named stages, ETE, profile and numbers-at-risk tables it does not have)."""
    figs = (results or {}).get("figures") or {}
    sections = {f.get("section") for f in figs.values() if isinstance(f, dict) and f.get("unit") == "people"
                and f.get("status") == "rounded"}
    names = [n for k, n in ROUNDED_SECTIONS.items() if k in sections]
    text = ""
    if names:
        text = wording.listing(names) + (" tables" if len(names) > 1 else " table")
    if "vfm" in sections:
        text += (" and " if text else "") + "the value-for-money section"
    return text


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("evaluation")
    except Exception:  # pragma: no cover - not installed
        return ""


@lru_cache(maxsize=1)
def _body_exporter():
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="classic", extra_template_paths=[str(TEMPLATES)],
                            template_file="body.html.j2",
                            # user filters override nbconvert's: every Markdown output and cell is rendered inert
                            filters={"markdown2html": inert_markdown, "inert_html": inert_html,
                                     "svg_data_uri": svg_data_uri, "figure_alt": output_alt,
                                     "clean_base64": clean_base64})
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.exclude_anchor_links = True  # no "¶" after headings (they would also leak into the running title)
    # The classic template's Pygments/CSS header preprocessor only serves code cells, which are not shown.
    exporter.register_preprocessor("nbconvert.preprocessors.CSSHTMLHeaderPreprocessor", enabled=False)
    return exporter


@lru_cache(maxsize=1)
def _page_template():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    return env.get_template("page.html.j2")


def css() -> str:
    """The report stylesheet (screen and print)."""
    return (TEMPLATES / "report.css").read_text()


def notebook_body(nb: Any) -> str:
    """HTML of the notebook's outputs only (no code, prompts or stderr). ``nb``: a NotebookNode or a path."""
    import nbformat

    if not hasattr(nb, "cells"):
        nb = nbformat.read(str(nb), as_version=4)
    body, _ = _body_exporter().from_notebook_node(nb)
    return body


def page(body: str, cover: Cover, *, synthetic: bool, print_: bool) -> str:
    """A whole HTML document around a report body (cover page only when ``print_``)."""
    from markupsafe import Markup

    return _page_template().render(body=Markup(body), cover=cover, synthetic=synthetic, print=print_,
                                   css=Markup(css()))


def html_to_pdf(html: str, path: Path | str, base_url: str | None = None) -> Path:
    """Render a print HTML document to PDF with WeasyPrint, offline and without attachments.

    Parameters
    ----------
    html : str
        The print document (:func:`page` with ``print_=True``).
    path : path
        The PDF to write.
    base_url : str, optional
        The report's own folder (default: the PDF's folder); the only place files may be read from.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    UnsafeOutput
        If the PDF holds an embedded file or a file-attachment annotation (it is deleted).

    Warns
    -----
    UserWarning
        "<folder>/<file>: fails the accessibility checks: …" if the PDF fails :func:`pdf_accessibility` (it is
        kept: safe, but less usable).
    """
    from weasyprint import HTML

    path = Path(path)
    root = Path(base_url or path.parent).resolve()
    # PDF/UA-1: a tagged PDF (structure tree from the HTML: headings, lists, tables with TH cells, figures with
    # their alt text), /MarkInfo Marked, /Lang from <html lang>, the <title> shown in the window, bookmarks from
    # the headings (WeasyPrint's default bookmark-level for h1-h6).
    HTML(string=html, base_url=str(root), url_fetcher=safe_url_fetcher(root)).write_pdf(
        str(path), pdf_variant=PDF_VARIANT)
    found = pdf_attachments(path)
    if found:
        path.unlink()
        raise UnsafeOutput(f"{path.name}: the PDF holds {len(found)} attachment(s); refused")
    problems = pdf_accessibility(path)
    if problems:  # reported, not refused: the PDF is safe, only less usable (the tests hold reports to zero)
        import warnings

        # a plain UserWarning (the library's exception family is for errors); the message names the file and
        # the failed checks, never the content
        warnings.warn(f"{path.parent.name}/{path.name}: fails the accessibility checks: {'; '.join(problems)}",
                      UserWarning, stacklevel=2)
    return path


#: The PDF flavour every report is written in (WeasyPrint >= 59): tagged, PDF/UA-1 metadata.
PDF_VARIANT = "pdf/ua-1"
#: Alternative text that says nothing (nbconvert's and Jupyter's defaults, and our own old one).
PLACEHOLDER_ALT = {"", "figure", "image", "no description has been provided for this image", "chart", "plot",
                   "output", "png", "svg"}


def pdf_accessibility(path: Path | str, *, lang: str = "en-GB") -> list[str]:
    """Structural accessibility checks of a PDF (pypdf); empty when it passes.

    Checks what a screen reader and PDF/UA-1 need and a machine can see: a structure tree (tagged),
    ``/MarkInfo /Marked true``, the document language, a title that the viewer shows (``DisplayDocTitle``),
    bookmarks (outlines), and every ``/Figure`` structure element with alternative text that is not a
    placeholder (such as "No description has been provided for this image"). It cannot judge whether the alt
    text is *good*; the text comes from :func:`evaluation.report.alttext.describe_figure`.

    Parameters
    ----------
    path : path
        The PDF.
    lang : str
        The expected document language (BCP 47).

    Returns
    -------
    list of str
        One short sentence per failed check (no content quoted).

    Examples
    --------
    >>> pdf_accessibility("reports/mace/report.pdf")  # doctest: +SKIP
    []
    """
    import pypdf

    reader = pypdf.PdfReader(str(path))
    root = reader.trailer["/Root"]
    problems = []
    tree = root.get("/StructTreeRoot")
    if tree is None:
        problems.append("untagged (no structure tree)")
    mark = root.get("/MarkInfo")
    if mark is None or not bool(mark.get_object().get("/Marked")):
        problems.append("not marked (/MarkInfo /Marked is not true)")
    if str(root.get("/Lang") or "") != lang:
        problems.append(f"document language is not {lang}")
    prefs = root.get("/ViewerPreferences")
    if prefs is None or not bool(prefs.get_object().get("/DisplayDocTitle")):
        problems.append("the title is not displayed (no DisplayDocTitle)")
    title = (reader.metadata or {}).get("/Title")
    if not title or not str(title).strip():
        problems.append("no document title")
    if root.get("/Outlines") is None:
        problems.append("no bookmarks")
    figures = missing = 0
    for elem in _struct_elements(tree):
        if elem.get("/S") == "/Figure":
            figures += 1
            alt = str(elem.get("/Alt") or "").strip().rstrip(".").lower()
            if alt in PLACEHOLDER_ALT:
                missing += 1
    if missing:
        problems.append(f"{missing} of {figures} figure(s) without real alternative text")
    return problems


def _struct_elements(tree):
    """Every structure element under a structure tree root (depth first, cycles guarded)."""
    if tree is None:
        return
    seen = set()
    stack = [tree.get_object()]
    while stack:
        node = stack.pop()
        kids = node.get("/K")
        if kids is None:
            continue
        kids = kids.get_object()
        for kid in (kids if isinstance(kids, list) else [kids]):
            ref = getattr(kid, "idnum", None)
            obj = kid.get_object() if hasattr(kid, "get_object") else kid
            if not hasattr(obj, "get") or (ref is not None and ref in seen):
                continue
            if ref is not None:
                seen.add(ref)
            if obj.get("/Type") in (None, "/StructElem") and "/S" in obj:
                yield obj
                stack.append(obj)


# ------------------------------------------------------------------------------------------------- safety
class UnsafeOutput(EvaluationError, RuntimeError):
    """A rendered output would carry something live (an attachment, a fetched file); the message names the
    output, never the content."""


#: Tags that Markdown may produce and the report keeps (no a, img, raw HTML blocks).
MARKDOWN_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote", "ul", "ol", "li", "strong", "em",
                 "b", "i", "code", "pre", "del", "sup", "sub", "table", "thead", "tbody", "tr", "th", "td"}
#: Tags kept in text/html outputs (pandas tables and simple text); no links, scripts, styles or images.
HTML_TAGS = {"table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "colgroup", "col", "div", "span", "p",
             "br", "b", "i", "strong", "em", "small", "sup", "sub", "code", "pre", "ul", "ol", "li", "h1", "h2",
             "h3", "h4", "h5", "h6", "blockquote", "hr", "details", "summary"}
_CELL_ATTRS = {"class", "colspan", "rowspan", "align", "valign"}


@lru_cache(maxsize=1)
def _markdown():
    import mistune

    # escape=True: raw HTML in the Markdown (inline and block) is written as text (&lt;a …&gt;), not passed through
    return mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])


def inert_markdown(text: Any) -> str:
    """Markdown → HTML in which nothing from the text is live.

    Raw HTML is escaped (it reads as the characters typed), and the HTML that Markdown syntax makes is cut to
    :data:`MARKDOWN_TAGS`: a ``[link](file:///…)`` keeps its words but not its target, an image is dropped.

    Parameters
    ----------
    text : str
        Markdown from a report (which may hold values from the data or the programme configuration).

    Returns
    -------
    str
        Safe HTML.

    Examples
    --------
    >>> inert_markdown('MASH<a rel="attachment" href="file:///x">')
    '<p>MASH&lt;a rel="attachment" href="file:///x"&gt;</p>\n'
    """
    import nh3

    # HTML comments (template notes) are never content: drop them rather than show them escaped
    html = _markdown()(re.sub(r"<!--.*?-->", "", str(text or ""), flags=re.S))
    return table_semantics(nh3.clean(html, tags=MARKDOWN_TAGS,
                                     attributes={"th": {"align", "style"}, "td": {"align", "style"},
                                                 "ol": {"start"}},
                                     url_schemes=set(), link_rel=None, strip_comments=True,
                                     filter_style_properties={"text-align"}), keep=False)


def inert_html(html: Any) -> str:
    """A text/html cell output (a pandas table) cut to :data:`HTML_TAGS` with class and span attributes only."""
    import nh3

    return table_semantics(nh3.clean(str(html or ""), tags=HTML_TAGS, attributes={"*": _CELL_ATTRS},
                                     url_schemes=set(), link_rel=None, strip_comments=True))


#: Tables with at most this many body rows are never split across pages (no one-row orphans).
KEEP_TABLE_ROWS = 14


def table_semantics(html: str, *, keep: bool = True) -> str:
    """Header cells marked for assistive technology, and short tables kept on one page.

    Runs on HTML already cut to the allow-list (so its tags are well formed). Every ``<th>`` gets a ``scope``:
    ``col`` in a table head, ``row`` in a body (pandas writes each row's index as a ``<th>``); a tagged PDF makes
    them ``/TH`` cells with the data cells pointing at their headers. A table with few body rows gets the
    attribute ``data-keep`` (``break-inside: avoid`` in print) so no page holds one stray row of it (``keep=False``
    for Markdown: its tables are short and the stylesheet keeps them whole).

    Examples
    --------
    >>> table_semantics('<table class="t"><thead><tr><th>A</th></tr></thead><tbody><tr><th>x</th><td>1</td></tr></tbody></table>')
    '<table data-keep class="t"><thead><tr><th scope="col">A</th></tr></thead><tbody><tr><th scope="row">x</th><td>1</td></tr></tbody></table>'
    """
    out, section = [], None
    tokens = re.split(r"(<[^>]*>)", html)
    for i, tok in enumerate(tokens):
        m = re.match(r"<(/?)(thead|tbody|tfoot)\b", tok)
        if m:
            section = None if m.group(1) else m.group(2)
        elif re.match(r"<th[\s>]", tok) and "scope=" not in tok:
            tok = tok.replace("<th", f'<th scope="{"col" if section in ("thead", None) else "row"}"', 1)
        elif keep and re.match(r"<table[\s>]", tok):
            rest = "".join(tokens[i:])
            end = rest.find("</table>")
            body = rest[:end if end >= 0 else len(rest)]
            rows = len(re.findall(r"<tr[\s>]", body.split("<tbody", 1)[1] if "<tbody" in body else body))
            if rows <= KEEP_TABLE_ROWS:
                tok = tok.replace("<table", "<table data-keep", 1)
        out.append(tok)
    return "".join(out)


def figures_without_data(html: str) -> list[int]:
    """The figures of a report's HTML that are not followed by the data behind them.

    Each ``<img>`` must be followed by a ``<details class="chart-data">`` block (made by
    :class:`evaluation.report.content.ChartData`) holding at least one ``<table>`` with a ``<caption>``, with no
    heading, table or other figure in between.

    Parameters
    ----------
    html : str
        A report's HTML.

    Returns
    -------
    list of int
        The 1-based positions of the figures without their data (empty when every figure has it).

    Examples
    --------
    >>> figures_without_data('<img alt="a"><details class="chart-data"><summary>Data</summary>'
    ...                      '<table><caption>c</caption></table></details><img alt="b"><h2>Next</h2>')
    [2]
    """
    missing = []
    chunks = re.split(r"<img\b", html)[1:]
    for i, rest in enumerate(chunks, start=1):
        m = re.search(r'<details\b[^>]*class="[^"]*\bchart-data\b', rest)
        before = rest[:m.start()] if m else rest
        if m is None or re.search(r"<(table|h[1-6]|svg)\b", before):
            missing.append(i)
            continue
        block = rest[m.start(): rest.find("</details>", m.start())]
        if not re.search(r"<table\b[^>]*>\s*<caption>", block):
            missing.append(i)
    return missing


def svg_data_uri(svg: Any) -> str:
    """An SVG figure as a ``data:`` URI for an ``<img>``: inside an image nothing in it can run or link."""
    import base64

    text = "".join(svg) if isinstance(svg, list) else str(svg)
    return "data:image/svg+xml;base64," + base64.b64encode(text.encode("utf-8")).decode("ascii")


def output_alt(output: Any, mime: str) -> str:
    """The alternative text of a figure output (escaped for an HTML attribute).

    Written by :func:`evaluation.report.alttext.figure_svg` into the output's metadata (``{mime: {"alt": …}}``);
    a figure without one (drawn outside the report's formatter) gets ``"figure"``, which
    :func:`pdf_accessibility` refuses as a placeholder.
    """
    import html as _html

    meta = (output.get("metadata") or {}) if hasattr(output, "get") else {}
    alt = ((meta.get(mime) or {}).get("alt") if hasattr(meta.get(mime) or {}, "get") else None) or meta.get("alt")
    return _html.escape(" ".join(str(alt or "figure").split()), quote=True)


def clean_base64(data: Any) -> str:
    """A base64 PNG payload with anything outside the base64 alphabet removed (it goes into a data: URI)."""
    return re.sub(r"[^A-Za-z0-9+/=]", "", "".join(data) if isinstance(data, list) else str(data))


def _refuse_outside(root: Path):
    """A check that lets ``data:`` URIs and files inside ``root`` through and raises for anything else."""
    from urllib.parse import unquote, urlparse

    def check(url: str) -> None:
        if url.startswith("data:"):
            return
        parsed = urlparse(url)
        if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
            target = Path(unquote(parsed.path)).resolve()
            if target.is_relative_to(root) and target.is_file():
                return
        raise UnsafeOutput(f"refused to fetch a resource outside the report ({parsed.scheme or 'relative'} URL)")

    return check


def safe_url_fetcher(root: Path | str):
    """A WeasyPrint URL fetcher that serves ``data:`` URIs and files inside ``root`` only.

    Everything else (``file://`` outside the report's folder, ``http(s)``, any other scheme) raises
    :class:`UnsafeOutput`, so WeasyPrint leaves the resource out (an image is not drawn, an attachment is not made).
    Works with WeasyPrint 70's ``URLFetcher`` class (no redirects) and with the older ``default_url_fetcher``.

    Parameters
    ----------
    root : path
        The report's own folder.

    Returns
    -------
    callable
        A ``url_fetcher`` for :class:`weasyprint.HTML`.
    """
    import weasyprint

    check = _refuse_outside(Path(root).resolve())
    if hasattr(weasyprint, "URLFetcher"):
        class SafeURLFetcher(weasyprint.URLFetcher):
            def fetch(self, url, headers=None):
                check(url)
                return super().fetch(url, headers)

        return SafeURLFetcher(allowed_protocols={"data", "file"}, allow_redirects=False)
    from weasyprint import default_url_fetcher  # WeasyPrint < 70

    def fetch(url: str, *args, **kwargs):
        check(url)
        return default_url_fetcher(url, *args, **kwargs)

    return fetch


def pdf_attachments(path: Path | str) -> list[str]:
    """Embedded files and file-attachment annotations in a PDF (pypdf); empty for a clean PDF."""
    import pypdf

    reader = pypdf.PdfReader(str(path))
    found = [f"embedded file #{i + 1}" for i, _ in enumerate(reader.attachments)]
    names = reader.trailer["/Root"].get("/Names")
    if names is not None and "/EmbeddedFiles" in names.get_object() and not found:
        found.append("/EmbeddedFiles name tree")
    for n, page in enumerate(reader.pages, start=1):
        for annot in page.get("/Annots") or []:
            if annot.get_object().get("/Subtype") == "/FileAttachment":
                found.append(f"file attachment on page {n}")
    return found


def render_notebook(nb: Any, out_dir: Path | str, cover: Cover, *, synthetic: bool,
                    formats=("html", "pdf"), stem: str = "report") -> dict[str, Path]:
    """Write ``<stem>.html`` and/or ``<stem>.pdf`` for an executed notebook; returns the paths by format."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    body = notebook_body(nb)
    written = {}
    if "html" in formats:
        p = out_dir / f"{stem}.html"
        p.write_text(page(body, cover, synthetic=synthetic, print_=False), encoding="utf-8")
        written["html"] = p
    if "pdf" in formats:
        written["pdf"] = html_to_pdf(page(body, cover, synthetic=synthetic, print_=True), out_dir / f"{stem}.pdf")
    return written
