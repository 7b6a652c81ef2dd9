"""Executed report notebook → HTML without code → funder PDF (WeasyPrint, A4).

Offline by design: nbconvert renders the cell *outputs* (Markdown, pandas tables, matplotlib PNGs) into an HTML
body with the template ``templates/body.html.j2`` (no code, no prompts, no stderr), and
``templates/page.html.j2`` + ``templates/report.css`` wrap it into

* ``report.html`` — the screen version (a sticky "SYNTHETIC DATA — illustrative" banner when synthetic);
* ``report.pdf`` — the print version through WeasyPrint: A4, a cover page (programme, provider, funders, period,
  data extract date, build date), "Page X of Y" in the bottom margin of every page (CSS ``counter(page)`` /
  ``counter(pages)`` in an ``@page`` margin box) and, for a synthetic world, the mark in the top margin box of every
  page and on the cover. No TeX and no headless browser are involved.

Figures are embedded as PNG data URIs (``evaluation.report.content.configure_figures`` makes matplotlib emit PNG at
print resolution) and are scaled to the page width with their aspect ratio kept (``max-width: 100%``,
``height: auto``), so a wide figure is shrunk rather than cut.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

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

    @classmethod
    def from_programme(cls, programme, *, extract_date=None, build_date: dt.datetime | None = None,
                       commit: str = "") -> "Cover":
        """Cover facts from an :class:`evaluation.config.Programme`."""
        kinds = {"individual": "Impact evaluation: one-year proven reoffending",
                 "delivery_and_individual": "Delivery and impact evaluation",
                 "area": "Area-level evaluation", "delivery": "Delivery report"}
        funders = ", ".join(programme.get("funders") or []) or "not stated"
        return cls(
            title=programme.name, provider=programme.provider, funders=funders,
            period=f"{programme.start:%B %Y} – {programme.end:%B %Y}",
            extract_date=f"{_as_date(extract_date):%d %B %Y}" if extract_date else "",
            build_date=f"{(build_date or dt.datetime.now()):%d %B %Y}",
            kind=kinds.get(programme.design, "Programme evaluation report"),
            threshold=programme.disclosure_threshold, commit=commit[:12], version=_version(),
        )


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
                            template_file="body.html.j2")
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
    """Render a print HTML document to PDF with WeasyPrint (offline: images are data URIs)."""
    from weasyprint import HTML

    path = Path(path)
    HTML(string=html, base_url=base_url or str(path.parent)).write_pdf(str(path))
    return path


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
