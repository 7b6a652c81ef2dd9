"""Rendering is safe by construction: text from data or configuration is inert in the HTML and the PDF, WeasyPrint
fetches nothing outside the report, and no PDF carries an attachment.

The hostile strings are the ones that, before this was fixed, attached ``people.csv`` and ``/etc/passwd`` to a
funder PDF and put live ``<script>`` into report.html (issue 10).
"""
from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from evaluation.report import render

HOSTILE = [
    'MASH<a rel="attachment" href="file:///etc/passwd"></a>',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "<link rel=attachment href=file:///etc/passwd>",
    "[click me](file:///etc/passwd)",
    "![logo](file:///etc/passwd)",
    "<svg><a xlink:href=file:///etc/passwd>svg link</a></svg>",
    "<iframe src=file:///etc/passwd></iframe>",
    "<style>body{background:url(file:///etc/passwd)}</style>",
]
DANGEROUS_TAGS = {"script", "a", "img", "link", "iframe", "object", "embed", "style", "svg", "base", "meta", "form",
                  "input", "video", "audio", "source", "frame", "math"}


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.live: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on") or (name == "rel" and "attachment" in (value or "")) or (
                    name in ("href", "src", "xlink:href", "data") and not (value or "").startswith(("data:image/", "#"))):
                self.live.append(f"<{tag} {name}=...>")
        if tag in DANGEROUS_TAGS:
            self.live.append(f"<{tag}>")


def live_tags(html: str) -> list[str]:
    """Real (parsed) tags and attributes that could run, link or fetch; escaped text is not a tag."""
    parser = _Tags()
    parser.feed(html)
    return parser.live


def _pdf_text(path: Path) -> str:
    return "\f".join(p.extract_text() or "" for p in __import__("pypdf").PdfReader(str(path)).pages)


def _live(html: str) -> list[str]:
    """Live tags in the report body (the page's own <style>/<meta> in <head> are ours, not data)."""
    body = "<body" + html.split("<body", 1)[1]
    return [t for t in live_tags(body) if t != "<img>"]  # figures: <img src="data:image/..."> only (checked above)


def _notebook(texts: list[str], people_csv: Path) -> nbformat.NotebookNode:
    """Markdown outputs, a Markdown cell and a pandas table carrying the hostile strings."""
    nb = nbformat.v4.new_notebook()
    attach = f'MASH<a rel="attachment" href="file://{people_csv}"></a>'
    code = nbformat.v4.new_code_cell("display(x)")
    frame = pd.DataFrame({"Referred to": texts + [attach], "People": range(len(texts) + 1)})
    code.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": "## Hostile\n\n" + t})
                    for t in texts + [attach]]
    code.outputs += [
        nbformat.v4.new_output("display_data", data={"text/html": frame.to_html(escape=False)}),  # raw on purpose
        nbformat.v4.new_output("display_data", data={"text/html": frame.to_html()}),
        nbformat.v4.new_output("display_data", data={"application/javascript": "alert(3)"}),
        nbformat.v4.new_output("display_data", data={"image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg'>"
                                                                       "<script>alert(4)</script></svg>"}),
    ]
    md = nbformat.v4.new_markdown_cell("Cell text " + " ".join(texts))
    nb.cells = [md, code]
    return nb


@pytest.fixture()
def people_csv(tmp_path) -> Path:
    p = tmp_path / "people.csv"
    p.write_text("person_id,date_of_birth\nP0000001,1990-01-01\n")
    return p


def test_markdown_is_inert():
    for text in HOSTILE:
        html = render.inert_markdown(text)
        assert not live_tags(html), (text, html)
    assert render.inert_markdown("<script>alert(1)</script>").strip() == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert "click me" in render.inert_markdown("[click me](file:///etc/passwd)")  # the words stay, the link goes
    # ordinary report Markdown is unchanged in kind
    html = render.inert_markdown("# Title\n\n**bold** and *it*\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n> quote\n\n- item")
    for tag in ("<h1>", "<strong>", "<em>", "<table>", "<td", "<blockquote>", "<li>"):
        assert tag in html


def test_html_outputs_are_cut_to_the_allow_list():
    raw = ('<div><style>td{x:url(file:///etc/passwd)}</style><table class="dataframe evaluation-published">'
           '<tr><th colspan="2">h</th><td><a rel="attachment" href="file:///etc/passwd">MASH</a>'
           '<script>alert(1)</script><img src=x onerror=alert(2)><link rel=attachment href=file:///x></td></tr>'
           '</table></div>')
    html = render.inert_html(raw)
    assert not live_tags(html), html
    assert 'class="dataframe evaluation-published"' in html and 'colspan="2"' in html and "MASH" in html


def test_url_fetcher_serves_only_data_and_the_report_folder(tmp_path):
    inside = tmp_path / "report" / "logo.svg"
    inside.parent.mkdir()
    inside.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    fetch = render.safe_url_fetcher(inside.parent)
    got = fetch("data:text/plain,hello")
    assert (got["string"] if isinstance(got, dict) else got.read()) == b"hello"
    assert fetch(inside.as_uri())
    for url in ("file:///etc/passwd", (tmp_path / "outside.txt").as_uri(), "http://example.org/x.png",
                "https://example.org/x.png", f"file://{inside.parent}/../../etc/passwd", "ftp://x/y"):
        with pytest.raises(render.UnsafeOutput):
            fetch(url)


def test_hostile_text_renders_as_text_and_the_pdf_has_no_attachments(tmp_path, people_csv):
    cover = render.Cover(title=HOSTILE[0], provider=HOSTILE[1], funders=", ".join(HOSTILE[2:4]),
                         period="April 2019 – March 2020")
    out = render.render_notebook(_notebook(HOSTILE, people_csv), tmp_path / "r", cover, synthetic=True)
    html = out["html"].read_text()
    assert not _live(html), _live(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # visible as text
    assert "alert(3)" not in html and "alert(4)" not in html.split("<body", 1)[1].split("base64")[0]
    assert render.pdf_attachments(out["pdf"]) == []
    raw = out["pdf"].read_bytes()
    assert b"/EmbeddedFiles" not in raw and b"/FileAttachment" not in raw
    text = _pdf_text(out["pdf"])
    assert "<script>alert(1)</script>" in text and "MASH<a rel=" in text.replace("\n", "")
    assert "P0000001" not in text and "root:" not in text


def test_the_attachment_check_finds_attachments(tmp_path):
    """The post-check works: a PDF made by WeasyPrint WITHOUT the safe fetcher attaches the file; ours refuses."""
    from weasyprint import HTML

    secret = tmp_path / "people.csv"
    secret.write_text("person_id\nP0000001\n")
    doc = f'<p>MASH<a rel="attachment" href="{secret.as_uri()}">x</a></p>'
    unsafe = tmp_path / "unsafe.pdf"
    HTML(string=doc, base_url=str(tmp_path)).write_pdf(str(unsafe))
    assert render.pdf_attachments(unsafe)
    safe = render.html_to_pdf(doc, tmp_path / "safe" / "report.pdf") if (tmp_path / "safe").mkdir() is None else None
    assert render.pdf_attachments(safe) == []


def test_attachment_in_a_pdf_fails_the_render(tmp_path, monkeypatch):
    """If WeasyPrint ever attached a file anyway, html_to_pdf deletes the PDF and raises."""
    import pypdf

    def leaky_fetcher(root):
        import weasyprint

        return weasyprint.URLFetcher() if hasattr(weasyprint, "URLFetcher") else weasyprint.default_url_fetcher

    secret = tmp_path / "people.csv"
    secret.write_text("person_id\nP0000001\n")
    monkeypatch.setattr(render, "safe_url_fetcher", leaky_fetcher)
    (tmp_path / "r").mkdir()
    with pytest.raises(render.UnsafeOutput, match="attachment"):
        render.html_to_pdf(f'<a rel="attachment" href="{secret.as_uri()}">x</a>', tmp_path / "r" / "report.pdf")
    assert not (tmp_path / "r" / "report.pdf").exists()
    assert pypdf  # imported: a runtime dependency


def test_cover_escapes_programme_facts(tmp_path):
    cover = render.Cover(title="<script>alert(1)</script>", provider='<a rel="attachment" href="file:///etc/passwd">',
                         funders="<img src=x onerror=alert(2)>")
    html = render.page("<p>body</p>", cover, synthetic=False, print_=True)
    assert not _live(html) and "&lt;script&gt;" in html


def test_figures_are_svg_with_text_kept_as_text():
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evaluation.report.content import configure_figures

    configure_figures()
    assert matplotlib.rcParams["svg.fonttype"] == "none"
    fig, ax = plt.subplots()
    ax.set_title("Proportion reoffending")
    ax.plot([0, 1], [0, 1])
    svgs = []
    for _ in range(2):
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
        svgs.append(buf.getvalue())
    plt.close(fig)
    assert "<text" in svgs[0] and "Proportion reoffending" in svgs[0]  # text, not glyph paths
    assert svgs[0] == svgs[1]  # byte-identical (svg.hashsalt, no date)
    html = render.notebook_body(_svg_notebook(svgs[0]))
    assert "data:image/svg+xml;base64," in html and "<svg" not in html  # an <img>, never inline


def _svg_notebook(svg: str):
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("plt.show()")
    code.outputs = [nbformat.v4.new_output("display_data", data={"image/svg+xml": svg, "text/plain": "<Figure>"})]
    nb.cells = [code]
    return nb


def test_tables_from_content_table_are_marked_and_derived_frames_are_not():
    from evaluation.report import guard
    from evaluation.report.content import table

    df = table(pd.DataFrame({"Participants": [10, 20]}, index=pd.Index(["A", "B"], name="group")))
    assert guard.is_published(df)
    assert guard.PUBLISHED_CLASS in guard._published_html(df)
    assert not guard.is_published(df.head(1)) and not guard.is_published(df.assign(x=1))
    assert guard.PUBLISHED_CLASS not in guard._published_html(pd.DataFrame({"age": [31, 42]}))
    nb = nbformat.v4.new_notebook()
    ok, bad = nbformat.v4.new_code_cell("display(t)"), nbformat.v4.new_code_cell("# rows\ndisplay(people.head())")
    ok.outputs = [nbformat.v4.new_output("display_data", data={"text/html": guard._published_html(df)})]
    bad.outputs = [nbformat.v4.new_output("display_data", data={"text/html": pd.DataFrame({"age": [31]})._repr_html_()})]
    nb.cells = [ok, bad]
    assert guard.unpublished_tables(nb) == ["cell 2 [display(people.head())]"]


def test_printed_rows_are_refused_like_displayed_ones():
    """print(df) and a Series' text repr bypass the HTML table formatter: the guard refuses them too (issue 10)."""
    from evaluation.report import guard

    people = pd.DataFrame({"age": [31, 42, 17], "district": ["Norwich", "Breckland", "Norwich"]})
    nb = nbformat.v4.new_notebook()
    printed = nbformat.v4.new_code_cell("print(people)")
    printed.outputs = [nbformat.v4.new_output("stream", name="stdout", text=str(people) + "\n")]
    series = nbformat.v4.new_code_cell("people['age']")
    series.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": str(people["age"])},
                                             execution_count=2)]
    warned = nbformat.v4.new_code_cell("import warnings; warnings.warn('x')")
    warned.outputs = [nbformat.v4.new_output("stream", name="stderr", text="UserWarning: x\n")]
    value = nbformat.v4.new_code_cell("len(people)")
    value.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "3"}, execution_count=4)]
    nb.cells = [printed, series, warned, value]
    assert guard.unpublished_tables(nb) == ["cell 1 (printed output) [print(people)]",
                                            "cell 2 (text table) [people['age']]"]


def test_guard_refuses_every_other_way_of_showing_rows():
    """Hostile review (issue 10): a Markdown table, LaTeX, JSON, a PNG and a long one-line list are refused; a
    Markdown table from a content function (marked) and a short value are not."""
    from evaluation.report import guard
    from evaluation.report.guidance import facts_markdown
    from evaluation.config import load_programme

    rows = pd.DataFrame({"age": [31, 42], "district": ["Norwich", "Breckland"]})
    nb = nbformat.v4.new_notebook()

    def cell(src, data):
        c = nbformat.v4.new_code_cell(src)
        c.outputs = [nbformat.v4.new_output("display_data", data=data)]
        return c

    md_rows = "| age | district |\n|---|---|\n" + "\n".join(f"| {a} | {d} |" for a, d in rows.values)
    nb.cells = [cell("md", {"text/markdown": md_rows, "text/plain": "<Markdown>"}),
                cell("latex", {"text/latex": rows.to_latex(), "text/plain": "<Latex>"}),
                cell("json", {"application/json": rows.to_dict("records"), "text/plain": "<JSON>"}),
                cell("png", {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}),
                cell("str(rows.values.tolist())", {"text/plain": str(rows.values.tolist() * 5)}),
                cell("facts", {"text/markdown": facts_markdown(load_programme("mace")), "text/plain": "<Markdown>"}),
                cell("len", {"text/plain": "2"})]
    bad = guard.unpublished_tables(nb)
    assert [b.split(" [")[0] for b in bad] == [
        "cell 1 (Markdown table)", "cell 2 (output type text/latex)", "cell 3 (output type application/json)",
        "cell 4 (output type image/png)", "cell 5 (text table)"]


def test_guard_reads_ids_and_dates_however_they_are_written():
    from evaluation.report import guard

    ids = guard.Identifiers(ids=frozenset({"P0004211"}), dates_of_birth=frozenset({dt.date(1999, 1, 31)}))
    for text in ("P\u200b0004211", "P 0 0 0 4 2 1 1", "31-01-1999", "1999/01/31", "19990131", "31-Jan-1999"):
        assert guard.find_identifiers({"x": f"a {text} b"}, ids), text
    assert not guard.find_identifiers({"x": "In 2019 there were 1,999 cases; 31 of 1999"}, ids)


def test_svg_namespace_uris_are_not_dates_of_birth():
    from evaluation.report import guard

    ids = guard.Identifiers(ids=frozenset({"P0004211"}), dates_of_birth=frozenset({dt.date(1999, 2, 22)}))
    svg = '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    assert not guard.find_identifiers({"x": svg}, ids)
    assert guard.find_identifiers({"x": svg + " born 1999/02/22"}, ids)


def test_measure_label_from_config_is_inert_markdown():
    """Hostile review: the programme's outcome label (config) went into the methods and limitations as Markdown
    ("**Outcome.** {label} ..."), so `*x*` or `[a](b)` in it would render. The measure words are escaped."""
    import types

    from evaluation.report import content as rc

    ev = types.SimpleNamespace(programme=types.SimpleNamespace(outcome={"label": "*bold* [x](http://e.com) <b>"}))
    w = rc._words(ev)
    assert w["noun"] == "\\*bold\\* \\[x\\](http://e.com) &lt;b&gt;"
    assert "*" not in w["measure"].replace("\\*", "")
