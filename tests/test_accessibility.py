"""Accessible outputs (issue 15): tagged PDF/UA-1, alternative text from the data, charts that read in print, and
the HTML checked in a real browser with axe-core.

* Structural PDF checks (:func:`evaluation.report.render.pdf_accessibility`): tagged, marked, en-GB, title shown,
  bookmarks, every ``/Figure`` with real ``/Alt`` — on a fixture report, on the portfolio and (slow) on reports
  built from the real templates.
* Alt text and print size (:mod:`evaluation.report.alttext`): numbers and direction read from the figure; text no
  smaller than 7 pt at the A4 text width; Okabe–Ito colours cycled with line styles.
* The browser test (``tests/browser``): headless Chromium (Debian's ``chromium``) driven over the DevTools pipe,
  axe-core 4 injected, zero serious or critical violations. ``make test`` installs both first
  (``make browser-setup``); the test skips only when neither is installed *and* ``EVALUATION_BROWSER_TESTS`` is
  unset — CI sets it (through the Makefile), so there a missing browser fails.
"""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from evaluation.report import alttext, render

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ helpers
def _figure_notebook(svg: str, alt: str | None, *, extra_html: str = "") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("display(x)")
    meta = {"image/svg+xml": {"alt": alt}} if alt is not None else {}
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/markdown": "# Test Programme\n\n## Results\n\nText."}),
        nbformat.v4.new_output("display_data", data={"image/svg+xml": svg, "text/plain": "<Figure>"},
                               metadata=meta),
        nbformat.v4.new_output("display_data", data={"text/html": extra_html or (
            "<table class='dataframe'><thead><tr><th></th><th>Participants</th></tr></thead>"
            "<tbody><tr><th>Reoffended</th><td>22%</td></tr></tbody></table>")}),
    ]
    nb.cells = [cell]
    return nb


def _chart(width=7.0, height=4.0, fontsize=10):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.plot([0, 180, 365], [0.0, 0.12, 0.22], label="participants")
    ax.plot([0, 180, 365], [0.0, 0.15, 0.25], label="comparison")
    ax.set_ylabel("Proportion proven to have reoffended")
    ax.set_xlabel("Days since programme start")
    ax.set_title("Proportion proven to have reoffended by day t")
    ax.legend(fontsize=fontsize)
    ax.tick_params(labelsize=fontsize)
    return fig


def _cover(title="Test Programme"):
    return render.Cover(title=title, provider="Provider Ltd", funders="A, B", period="April 2019 – March 2020",
                        extract_date="31 December 2024", threshold=5)


def _outline_titles(items) -> list[str]:
    out = []
    for o in items:
        out += _outline_titles(o) if isinstance(o, list) else [o.title]
    return out


def _struct(path):
    """(structure types, figure alts) of a tagged PDF."""
    import pypdf

    reader = pypdf.PdfReader(str(path))
    elems = list(render._struct_elements(reader.trailer["/Root"].get("/StructTreeRoot")))
    return [str(e.get("/S")) for e in elems], [str(e.get("/Alt")) for e in elems if e.get("/S") == "/Figure"]


# ------------------------------------------------------------------------------------------------ the PDF
def test_report_pdf_is_tagged_pdf_ua_with_figure_alt_text(tmp_path):
    fig = _chart()
    svg, meta = alttext.figure_svg(fig)
    out = render.render_notebook(_figure_notebook(svg, meta["alt"]), tmp_path, _cover(), synthetic=True)
    pdf = out["pdf"]
    assert render.pdf_accessibility(pdf) == []
    import pypdf

    reader = pypdf.PdfReader(str(pdf))
    root = reader.trailer["/Root"]
    assert str(root["/Lang"]) == "en-GB"
    assert bool(root["/MarkInfo"]["/Marked"]) and bool(root["/ViewerPreferences"]["/DisplayDocTitle"])
    assert reader.metadata["/Title"] == "Test Programme (synthetic data)"
    assert b"pdfuaid" in reader.trailer["/Root"]["/Metadata"].get_object().get_data()  # PDF/UA-1 in the XMP
    bookmarks = _outline_titles(reader.outline)  # from the headings; the cover's title is not repeated
    assert {"Test Programme", "Results"} <= set(bookmarks) and bookmarks.count("Test Programme") == 1
    kinds, alts = _struct(pdf)
    assert {"/H1", "/H2", "/Table", "/TH", "/TD", "/Figure"} <= set(kinds)
    assert alts == [meta["alt"]]
    # the same text is the HTML alt
    html = out["html"].read_text()
    assert f'alt="{meta["alt"]}"' in html.replace("&#x27;", "'")
    # header cells are scoped: the corner and column headers are col, the row's index is row
    assert '<th scope="row">Reoffended</th>' in html and '<th scope="col">Participants</th>' in html


def test_real_world_pdf_without_synthetic_mark_has_plain_title(tmp_path):
    svg, meta = alttext.figure_svg(_chart())
    out = render.render_notebook(_figure_notebook(svg, meta["alt"]), tmp_path, _cover(), synthetic=False,
                                 formats=("pdf",))
    import pypdf

    assert pypdf.PdfReader(str(out["pdf"])).metadata["/Title"] == "Test Programme"


def test_accessibility_check_finds_untagged_pdf_and_placeholder_alt(tmp_path):
    from weasyprint import HTML

    plain = tmp_path / "plain.pdf"
    HTML(string="<html><head><title>x</title></head><body><p>hi</p></body></html>").write_pdf(str(plain))
    problems = render.pdf_accessibility(plain)
    assert any("untagged" in p for p in problems) and any("language" in p for p in problems)
    svg, _ = alttext.figure_svg(_chart())
    with pytest.warns(UserWarning, match="fails the accessibility checks: 1 of 1 figure"):
        out = render.render_notebook(_figure_notebook(svg, None), tmp_path / "noalt", _cover(), synthetic=True,
                                     formats=("pdf",))
    assert out["pdf"].exists()  # reported, not refused
    for placeholder in ("No description has been provided for this image", "figure"):
        assert placeholder.lower().rstrip(".") in render.PLACEHOLDER_ALT


def test_pdf_renders_are_still_safe(tmp_path):
    """The tagged renderer keeps the safety checks: no attachment, nothing fetched from outside the report."""
    hostile = '<p>MASH<a rel="attachment" href="file:///etc/passwd">x</a></p>'
    svg, meta = alttext.figure_svg(_chart())
    nb = _figure_notebook(svg, meta["alt"], extra_html=hostile)
    out = render.render_notebook(nb, tmp_path, _cover(), synthetic=True)
    assert render.pdf_attachments(out["pdf"]) == [] and render.pdf_accessibility(out["pdf"]) == []
    assert 'href="file:' not in out["html"].read_text()


def test_portfolio_pdf_is_tagged_with_language_title_and_alt(tmp_path):
    from evaluation.report.portfolio import build_portfolio

    rep = tmp_path / "reports" / "mace"
    rep.mkdir(parents=True)
    figs = {"rate.difference": {"value": -0.03, "lower": -0.1, "upper": 0.04, "status": "shown"},
            "n.participants": {"value": 249, "status": "shown"}}
    (rep / "results.json").write_text(json.dumps({"programme_id": "mace", "design": "individual",
                                                  "figures": figs, "findings": ["A finding."], "notes": []}))
    pdf = build_portfolio(tmp_path / "reports", synthetic=True)
    assert render.pdf_accessibility(pdf) == []
    import pypdf

    assert pypdf.PdfReader(str(pdf)).metadata["/Title"] == "Portfolio overview (synthetic data)"
    _, alts = _struct(pdf)
    assert len(alts) == 1 and "−3" in alts[0] or "-3" in alts[0]
    html = (pdf.parent / "report.html").read_text()
    assert "lang='en-GB'" in html and "data:image/svg+xml" in html and "data:image/png" not in html
    assert render.figures_without_data(html) == []  # the forest plot's data follows it (screen only)
    from evaluation import wording
    from evaluation.report.guard import pdf_text

    data = html[html.index('<details class="chart-data">'):html.index("</details>")]
    # the published difference, as the overview table and the programme's headline table show it
    assert f"<td>{wording.pp_difference(-0.03)}</td>" in data and f"{wording.pp_difference(-0.03)} pp" in html
    assert f"<td>{wording.signed_num(-10.0)} to {wording.signed_num(4.0)}</td>" in data
    assert "Data for this chart" not in pdf_text(pdf)


# ------------------------------------------------------------------------------------------- alt text
def test_alt_text_reads_numbers_axes_and_direction():
    fig = _chart()
    text = alttext.describe_figure(fig)
    assert "Proportion proven to have reoffended by day t" in text
    assert "vertical axis: Proportion proven to have reoffended" in text
    assert "Participants rises, from 0% at 0 to 22% at 365" in text
    assert "Comparison rises, from 0% at 0 to 25% at 365" in text


def test_alt_text_reads_dates_bars_and_categories():
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2)
    a.step(pd.to_datetime(["2019-04-01", "2019-10-01", "2020-03-01"]), [5, 20, 12], label="delivered")
    b.bar(["Schools", "Parents"], [40, 12], label="sessions")
    text = alttext.describe_figure(fig)
    assert text.startswith("Chart in 2 panels.")
    assert "Delivered rises, from 5 at April 2019 to 12 at March 2020 (highest 20 at October 2019)" in text
    assert "sessions: Schools 40; Parents 12." in text
    plt.close(fig)


def test_explicit_alt_text_wins_and_a_failing_description_falls_back():
    import matplotlib.pyplot as plt

    fig = alttext.set_alt(plt.figure(), "  Two   lines. ")
    assert alttext.figure_alt(fig) == "Two lines."
    fig2, ax = plt.subplots()
    ax.set_title("Odd chart")
    ax.plot([0, 1], [0, 1], label="x")
    ax.get_lines()[0].get_xdata = None  # breaks the describer
    assert alttext.figure_alt(fig2).startswith("Chart: Odd chart.")
    plt.close("all")


# ------------------------------------------------------------------------------------------- print size
def _svg_font_sizes(svg: str) -> list[float]:
    """Every text size in an SVG with text kept as text (``font-size: 7px`` or ``font: 7px 'DejaVu Sans'``;
    matplotlib's SVG user unit is the point)."""
    return [float(v) for v in re.findall(r"font(?:-size)?:\s*(?:[a-z]+\s+)*([\d.]+)px", svg)]


def test_wide_figures_print_with_text_of_at_least_7pt():
    import matplotlib as mpl

    with mpl.rc_context({"svg.fonttype": "none"}):
        fig = _chart(width=14, height=4, fontsize=6)  # 6 pt text on a figure twice the page's width
        svg, meta = alttext.figure_svg(fig)
    w, h = alttext._svg_size_pt(svg)
    assert w <= alttext.PRINT_WIDTH_IN * 72 + 0.5 and h <= alttext.PRINT_HEIGHT_IN * 72 + 0.5
    sizes = _svg_font_sizes(svg)
    assert sizes and min(sizes) >= alttext.MIN_FONT_PT - 1e-6
    assert "rises" in meta["alt"]


def test_palette_is_colour_blind_safe_with_line_styles():
    params = alttext.rc_params()
    cyc = list(params["axes.prop_cycle"])
    assert [c["color"] for c in cyc] == alttext.OKABE_ITO
    assert len({str(c["linestyle"]) for c in cyc}) == len(cyc)  # a second cue besides colour


def test_layout_css_keeps_headings_with_content_and_repeats_table_headers():
    css = render.css()
    for rule in (r"h2, h3[^{]*\{[^}]*break-after: avoid", r"thead \{ display: table-header-group",
                 r"tr \{ break-inside: avoid", r"orphans: 3", r"widows: 3", r"table\[data-keep\], \.output_markdown table \{ break-inside: avoid"):
        assert re.search(rule, css), rule


def test_table_semantics():
    html = render.inert_html("<table><thead><tr><th></th><th>A</th></tr></thead><tbody>"
                             + "".join(f"<tr><th>r{i}</th><td>{i}</td></tr>" for i in range(20))
                             + "</tbody></table>")
    assert html.count('scope="col"') == 2 and html.count('scope="row"') == 20
    assert "data-keep" not in html  # long tables may break (their header repeats)
    short = render.inert_markdown("| a | b |\n|---|---|\n| 1 | 2 |")
    assert '<th scope="col">a</th>' in short
    assert short.startswith("<table>")  # Markdown tables are kept whole by the stylesheet


@pytest.mark.slow
@pytest.mark.notebooks
def test_notebook_figures_carry_alt_text_into_the_output(tmp_path):
    """Through a real kernel: configure_figures → plt.show() writes the SVG and its alt text into the output."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nfrom evaluation.report.content import configure_figures\n"
        "configure_figures()\nfig, ax = plt.subplots(figsize=(12, 3))\n"
        "ax.plot([1, 2, 3], [3, 2, 1], label='referrals'); ax.set_title('Falling')\nplt.show()")]
    NotebookClient(nb, kernel_name="evaluation", timeout=120).execute()
    outs = [o for o in nb.cells[0].outputs if "image/svg+xml" in o.get("data", {})]
    assert len(outs) == 1 and "image/png" not in outs[0]["data"]
    alt = outs[0]["metadata"]["image/svg+xml"]["alt"]
    assert "Referrals falls, from 3 at 1 to 1 at 3" in alt
    svg = outs[0]["data"]["image/svg+xml"]
    assert min(_svg_font_sizes(svg)) >= 7
    body = render.notebook_body(nb)
    assert 'alt="Chart. Falling.' in body


# ------------------------------------------------------------------------------------------- the browser
def _browser():
    """The axe_check module, or skip — only outside `make test`: there (EVALUATION_BROWSER_TESTS=1, after
    `make browser-setup`) a missing browser or axe-core fails the test instead."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("axe_check", ROOT / "tests" / "browser" / "axe_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    missing = [what for what, ok in (("chromium", mod.chromium_path()), ("axe-core", mod.AXE_JS.exists())) if not ok]
    if missing:
        msg = f"{', '.join(missing)} not installed: run `make browser-setup`"
        if os.environ.get("EVALUATION_BROWSER_TESTS"):
            pytest.fail(msg)
        pytest.skip(msg)
    return mod


def _serious(results: dict) -> list[str]:
    return [f"{Path(page).parent.name}/{Path(page).name}: {v['impact']} {v['id']} ({v['help']}) {v['targets']}"
            for page, vs in results.items() for v in vs if v["impact"] in ("serious", "critical")]


def test_report_and_index_html_have_no_serious_axe_violations(tmp_path):
    """A fixture report (figure with alt text, pandas and Markdown tables, headings, synthetic banner) and the
    build index, in headless Chromium with axe-core."""
    axe = _browser()
    from evaluation.report.build import write_index

    svg, meta = alttext.figure_svg(_chart())
    nb = _figure_notebook(svg, meta["alt"])
    nb.cells[0].outputs.append(nbformat.v4.new_output(
        "display_data", data={"text/markdown": "| About the programme | |\n|---|---|\n| Provider | P |"}))
    from evaluation.report.content import ChartData, table

    data = ChartData([("Proportion by day 365", table(pd.DataFrame(
        {"Participants": ["22% (8% to 34%)"]}, index=pd.Index(["Reoffended"], name="Measure"))))], "time")
    nb.cells[0].outputs.insert(2, nbformat.v4.new_output(  # the data behind the figure, right after it
        "display_data", data={"text/html": data._repr_html_(), "text/plain": repr(data)}))
    out = render.render_notebook(nb, tmp_path / "mace", _cover(), synthetic=True, formats=("html",))
    assert render.figures_without_data(out["html"].read_text()) == []
    manifest = {"built_at": "2026-01-01T00:00:00+00:00", "code": {"commit": "abc", "dirty": False},
                "data_hash": "0" * 64, "synthetic": True,
                "programmes": {"mace": {"status": "ok", "built_at": "2026-01-01"},
                               "sos-plus": {"status": "failed", "error": "a <b>config</b> error"}}}
    index = write_index(tmp_path, manifest)
    bad = tmp_path / "bad.html"  # the check itself works: a page without title, language or alt text fails
    bad.write_text('<html><body><img src="data:image/png;base64,iVBORw0KGgo="></body></html>')
    results = axe.check([out["html"], index, bad])
    assert {v["id"] for v in results.pop(str(bad))} >= {"image-alt", "html-has-lang", "document-title"}
    assert len(results) == 2
    assert not _serious(results), _serious(results)


@pytest.mark.slow
@pytest.mark.notebooks
def test_built_reports_pass_the_pdf_checks_and_axe(small_world, tmp_path):
    """The real templates (individual, delivery, area), the index and the portfolio: every PDF passes the
    structural checks and every HTML page has no serious or critical axe violation."""
    from evaluation.report import build as b
    from evaluation.report.portfolio import build_portfolio

    out = tmp_path / "reports"
    ids = ["mace", "capacity-building", "project-adder"]
    s = b.build(b.BuildOptions(world=small_world, programmes=ids, jobs=2, out=out, progress=False))
    assert s.exit_code == 0, s.table() + "\n".join(r.traceback for r in s.results)
    build_portfolio(out, synthetic=True)
    pdfs = sorted(out.glob("*/report.pdf"))
    assert len(pdfs) == len(ids) + 1
    failures = {p.parent.name: render.pdf_accessibility(p) for p in pdfs}
    assert not any(failures.values()), failures
    for p in pdfs:
        import pypdf

        title = pypdf.PdfReader(str(p)).metadata["/Title"]
        assert title.endswith("(synthetic data)"), title
        _, alts = _struct(p)
        assert all("No description" not in a and len(a) > 40 for a in alts), alts
    for nb_path in sorted(out.glob("*/report.ipynb")):  # every chart's text is at least 7 pt on the A4 page
        for cell in nbformat.read(str(nb_path), as_version=4).cells:
            for o in cell.get("outputs", []):
                svg = o.get("data", {}).get("image/svg+xml")
                if not svg:
                    continue
                w, _ = alttext._svg_size_pt(svg)
                printed = min(_svg_font_sizes(svg)) * min(1.0, alttext.PRINT_WIDTH_IN * 72 / w)
                assert printed >= alttext.MIN_FONT_PT - 0.05, (nb_path.parent.name, printed)
    from evaluation.report.spreadsheet import write_tables

    for pid in ids:  # the spreadsheet from each real results.json (individual, delivery, area)
        sheets, strings = _xlsx(write_tables(out / pid))
        assert sheets[:3] == ["Cover", "Contents", "Notes"] and len(sheets) > 3
        assert any(s.endswith("(synthetic data)") for s in strings)
    for page in sorted(out.glob("*/report.html")):  # every figure is followed by the data behind it (a table)
        assert render.figures_without_data(page.read_text()) == [], page.parent.name
    axe = _browser()
    pages = [out / "index.html", *sorted(out.glob("*/report.html"))]
    results = axe.check(pages)
    assert len(results) == len(ids) + 2
    assert not _serious(results), _serious(results)


# ------------------------------------------------------------------------------------------- spreadsheet
def _xlsx(path):
    """(sheet names, shared strings) of an .xlsx (read as the zip it is; no Excel reader needed)."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        sheets = re.findall(r'<sheet name="([^"]+)"', z.read("xl/workbook.xml").decode())
        strings = re.findall(r"<t[^>]*>([^<]*)</t>", z.read("xl/sharedStrings.xml").decode())
    return sheets, strings


def test_tables_xlsx_from_the_published_register(tmp_path):
    import html as _html
    import warnings

    from evaluation.report.spreadsheet import register_tables, write_tables

    figures = {
        "n.participants": {"label": "Participants analysed", "unit": "people", "section": "headline",
                           "status": "shown", "value": 249},
        "rate.difference": {"label": "One-year rate: difference", "unit": "pp", "section": "headline",
                            "status": "shown", "value": -0.012, "lower": -0.071, "upper": 0.046,
                            "p_value": 0.7, "significant": False},
        "profile.ethnicity.other.participants": {"label": "Ethnicity: Other (participants)", "unit": "people",
                                                 "section": "profile", "status": "suppressed", "value": None},
        "profile.sex.female.participants": {"label": "Sex: Female (participants)", "unit": "people",
                                            "section": "profile", "status": "rounded", "value": 100},
        "fte.difference": {"label": "First-time entrants: difference", "unit": "pp", "section": "headline",
                           "status": "withheld", "value": None, "lower": None, "upper": None, "p_value": None},
    }
    res = {"programme_id": "mace", "design": "individual", "synthetic": True, "extract_date": "2024-12-31",
           "disclosure": {"threshold": 5, "rounding_base": 5, "check_passed": True}, "figures": figures}
    tables = register_tables(res)
    assert list(tables) == ["headline", "profile"]
    head = tables["headline"].set_index("Measure")
    assert head.loc["One-year rate: difference", "Value"] == -1.2  # percentage points to one decimal, as in the PDF
    assert head.loc["One-year rate: difference", "Lower 95% CI"] == -7.1
    assert head.loc["First-time entrants: difference", "Value"] == "[x]"
    assert tables["profile"].set_index("Measure").loc["Ethnicity: Other (participants)", "Value"] == "[c]"
    rep = tmp_path / "mace"
    rep.mkdir()
    (rep / "results.json").write_text(json.dumps(res))
    import gptables  # noqa: F401 - imported outside the block below (its import leaves a file open)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gptables warns about unreferenced notes and the like
        path = write_tables(rep, programme_name="MACE <team>")
    assert path == rep / "tables.xlsx"
    sheets, strings = _xlsx(path)
    assert sheets[:3] == ["Cover", "Contents", "Notes"] and sheets[3:] == ["Table_1_headline", "Table_2_profile"]
    text = _html.unescape(" ".join(strings))
    assert "MACE <team>: report tables (synthetic data)" in text
    assert "[c]" in strings and "[x]" in strings
    assert "Profile" not in sheets and "Who took part (rounded to the nearest 5), MACE <team> (synthetic data)" in text


def test_tables_xlsx_for_an_area_report(tmp_path):
    from evaluation.report.spreadsheet import write_tables

    res = {"programme_id": "project-adder", "design": "area", "extract_date": "2024-12-31", "measures": {
        "drug_deaths": {"its": {"level_change": 0.1, "level_p": 0.2, "series_unit": "per 100,000"},
                        "did": {"scale": "log", "estimate": -0.05, "p": 0.001, "placebo_p": 1 / 6,
                                "pretrend_p": 0.5, "pretrend_failed": False}}}}
    rep = tmp_path / "project-adder"
    rep.mkdir()
    (rep / "results.json").write_text(json.dumps(res))
    sheets, strings = _xlsx(write_tables(rep, programme_name="Project ADDER", synthetic=False))
    assert sheets[3:] == ["Table_1_estimates"] and "<0.01" in " ".join(strings).replace("&lt;", "<")
    assert not any("synthetic" in s for s in strings)


def test_survival_alt_text_from_the_register_with_intervals_and_direction():
    import matplotlib.pyplot as plt

    from evaluation.register import Register

    reg = Register(threshold=5)
    reg.add("survival.reoffended_by_365.comparison", "Proportion reoffended by day 365: Comparison", 0.25,
            "proportion", "survival", lower=0.21, upper=0.29)
    reg.add("survival.reoffended_by_365.participants", "Proportion reoffended by day 365: Participants", 0.22,
            "proportion", "survival", lower=0.08, upper=0.34)
    fig, ax = plt.subplots()
    ax.step([0, 100, 200, 366], [0, 0.05, 0.15, 0.25], where="post", label="Comparison")
    ax.step([0, 100, 200, 366], [0, 0.08, 0.12, 0.22], where="post", label="Participants")
    text = alttext.survival_alt(fig, reg)
    assert "By day 365: participants 22% (95% CI 8% to 34%), comparison 25% (95% CI 21% to 29%)." in text
    assert "The curves cross" in text and "below the comparison curve" in text
    empty = alttext.survival_alt(fig, Register(threshold=5))  # no register figures: the generic description
    assert empty.startswith("Chart.")
    plt.close(fig)
