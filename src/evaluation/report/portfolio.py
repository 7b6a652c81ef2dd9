"""The commissioner's portfolio overview: one page per programme and a forest plot of effects.

``python -m evaluation portfolio`` (run by ``make reports`` after the programme builds) reads every
``reports/<id>/results.json`` — the published, disclosure-controlled figures — and writes
``reports/portfolio/report.pdf`` (and ``report.html``). It never reads person-level data, so it cannot publish
any: everything on it has already passed :mod:`evaluation.disclosure`.

Each programme page gives its headline, how much confidence the evidence deserves, and its data quality. The
confidence rating is the lab's plain summary of the Justice Data Lab rules, not a new test:

* **Evidence of an effect** — the one-year reoffending difference is significant by the JDL rule (p ≤ 0.05 and at
  least 30 participants reoffended);
* **Indication only** — the 95% CI lies wholly on one side of zero but the difference is not significant by the
  JDL rule (fewer than 30 participants reoffended, or p above 0.05);
* **Inconclusive** — the CI includes no difference;
* **Delivery only** / **Area-level** — no individual comparison is possible; see the programme report.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path

import pandas as pd

from evaluation import wording
from evaluation.report import guidance



def _load(reports: Path) -> dict[str, dict]:
    from evaluation.config import PROGRAMME_IDS

    out = {}
    for pid in PROGRAMME_IDS:
        f = reports / pid / "results.json"
        if f.exists():
            out[pid] = json.loads(f.read_text())
    return out


def synthetic_truth(reports: Path) -> dict[str, float]:
    """True one-year effects (risk differences, proportions) of a synthetic build, by forest-plot key.

    Read from the ``truth.json`` of the world named in ``reports/manifest.json``; empty for a real extract (no
    truth exists) or when the world is gone. Keys: programme id, and ``"<id>:completers"`` for a completers
    sub-analysis (the completers' own ATT). Showing the truth beside the estimates lets a reader of a synthetic
    build see calibration at work: about one 95% interval in twenty should miss it.
    """
    manifest = reports / "manifest.json"
    try:
        m = json.loads(manifest.read_text())
        if not m.get("synthetic"):
            return {}
        truth = json.loads((Path(m["world"]) / "truth.json").read_text())["programmes"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    out = {}
    for pid, t in truth.items():
        if isinstance(t, dict) and t.get("att_risk_difference") is not None:
            out[pid] = float(t["att_risk_difference"])
            completed = (t.get("by_status") or {}).get("completed") or {}
            if completed.get("att_risk_difference") is not None:
                out[f"{pid}:completers"] = float(completed["att_risk_difference"])
    return out


def _fig(res: dict, fid: str) -> dict | None:
    """A published figure of a programme's ``results.json`` by register id (``None`` when absent or withheld)."""
    f = (res.get("figures") or {}).get(fid)
    if not f or f.get("status") not in ("shown", "rounded") or f.get("value") is None:
        return None
    return f


def confidence(res: dict, prefix: str = "") -> str:
    """The confidence rating of one programme's results (see the module docstring); ``prefix`` names a
    sub-analysis (e.g. ``"completers."``), which is never rated as evidence when the main result is not."""
    design = res.get("design")
    if design == "area":
        return "Area-level"
    if design == "delivery":
        return "Delivery only"
    h = _fig(res, f"{prefix}rate.difference")
    if not h:
        return "No estimate"
    if prefix and confidence(res) != "Evidence of an effect":
        return "Secondary (not evidence)"
    if h.get("significant"):
        return "Evidence of an effect"
    if h.get("lower") is not None and h.get("upper") is not None and (h["upper"] < 0 or h["lower"] > 0):
        return "Indication only"
    return "Inconclusive"


def measure_of(res: dict) -> str:
    """The programme's one-year measure in words, from its published headline: ``"proven offending (first or
    repeat)"`` for children's programmes that count first offences too, else ``"proven reoffending"``. Read from
    results.json's ``measure``; a file written before that key existed is read from its headline label."""
    if res.get("measure"):
        return str(res["measure"])
    h = (res.get("figures") or {}).get("rate.difference") or {}
    label = str(h.get("label", ""))
    if label.startswith("One-year rate of ") and ":" in label:
        return label[len("One-year rate of "):].split(":", 1)[0]
    return "proven reoffending"


def data_quality(res: dict) -> list[str]:
    """Short data-quality notes: size, reoffenders, balance after matching, exclusions (all from the figures)."""
    notes = []
    offended = "reoffended" if measure_of(res) == "proven reoffending" else "offended"
    n = _fig(res, "n.participants")
    if n is not None:
        v = n["value"]
        notes.append(f"Participants analysed: {v:,}" + (" (fewer than the 60 the Justice Data Lab asks for)"
                                                       if v < 60 else ""))
    r = _fig(res, "reoffenders.participants")
    if r is not None and r["value"] < wording.MIN_REOFFENDERS:
        notes.append(f"Fewer than 30 participants {offended}: no significance is claimed.")
    figs = res.get("figures") or {}
    smd = [abs(f["value"]) for k, f in figs.items() if k.startswith("balance.") and k.endswith(".smd_after")
           and f.get("value") is not None]
    if smd:
        worst = max(smd)
        notes.append(f"Largest standardised difference after matching: {worst:.2f}"
                     + (" (balanced)" if worst <= 0.1 else " (above 0.1: residual imbalance)"))
    for k, f in figs.items():
        if k.startswith("attrition.excluded") and k.endswith(".participants"):
            shown = f["value"] if f.get("value") is not None else "[c]"
            notes.append(f"{f['label'].rsplit(':', 1)[0]}: {shown} participants"
                         + (" (rounded to 5)" if f.get("status") == "rounded" else ""))
    if res.get("estimate_possible") is False:
        notes.append("No impact estimate was possible: see the programme report for the reason.")
    if res.get("design") == "area":  # an area report's checks, from its own results
        measures = res.get("measures") or {}
        label = (lambda m: str(m).replace("_", " "))
        drift = [label(m) for m, r in measures.items() if (r.get("did") or {}).get("pretrend_failed")]
        if drift:
            notes.append("Already moving apart from the comparison areas before the pilot (pre-trend check failed): "
                         + ", ".join(drift) + "; their comparison-area results are not evidence of a change.")
        auto = [label(m) for m, r in measures.items()
                if any(isinstance(p, (int, float)) and p < 0.05 for p in
                       ((((r.get("its") or {}).get("autocorrelation") or {}).get(k)) for k in
                        ("ljung_box_p", "breusch_godfrey_p")))]
        if auto:
            notes.append("Correlation between months left in the area-alone model: " + ", ".join(auto)
                         + " (intervals may be somewhat too narrow).")
        notes.append("One pilot area against a few comparison areas: the placebo test can never reach p < 0.05.")
    return notes


def _fact(programme, key: str, text: str) -> str:
    """A cover fact, marked "assumed for this illustration" when the programme's YAML lists it under ``assumed``
    (as in the programme reports)."""
    from evaluation.report.guidance import ASSUMED, is_assumed

    return f"{text} ({ASSUMED})" if is_assumed(programme, key) else text


def forest_plot(results: dict[str, dict], names: dict[str, str], truth: dict[str, float] | None = None):
    """Differences in each programme's one-year rate (proven reoffending, or proven offending (first or repeat)
    for children's programmes; percentage points, 95% CI) across programmes.

    ``truth`` (synthetic builds only, see :func:`synthetic_truth`) adds the world's true effect as a cross."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    truth = truth or {}
    rows = []
    for pid, res in results.items():
        h = _fig(res, "rate.difference")
        if h:
            rows.append((names.get(pid, pid), h["value"], h, confidence(res), truth.get(pid), measure_of(res)))
        # sub-analyses (e.g. completers, a selected group) are not drawn beside the programmes' headlines: an
        # interval that alone excludes zero would draw the eye to the one result that is not evidence
    fig, ax = plt.subplots(figsize=(6.9, 0.42 * len(rows) + 2.0), layout="constrained")  # the printed width
    # Okabe-Ito colours (colour-blind safe) and a marker per rating, so colour is never the only cue
    colours = {"Evidence of an effect": "#009E73", "Indication only": "#E69F00", "Inconclusive": "0.45"}
    markers = {"Evidence of an effect": "o", "Indication only": "s", "Inconclusive": "^"}
    shown_truth = False
    for k, (label, est, h, conf, true, _) in enumerate(rows[::-1]):
        ax.errorbar(100 * est, k, xerr=[[100 * (est - h["lower"])], [100 * (h["upper"] - est)]],
                    fmt=markers.get(conf, "^"), color=colours.get(conf, "0.3"), capsize=3)
        if true is not None:
            ax.plot(100 * true, k, marker="x", color="#b00020", ms=8, mew=2, ls="none",
                    label=None if shown_truth else "true effect (synthetic world)")
            shown_truth = True
    if shown_truth:
        from matplotlib.transforms import ScaledTranslation

        # below the axes, under the tick labels and the two-line axis label (never on a row or on the label)
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.0), fontsize=8, frameon=False,
                  bbox_transform=ax.transAxes + ScaledTranslation(0, -0.62, fig.dpi_scale_trans))
    ax.axvline(0, color="k", lw=0.8)
    # the programmes do not all count the same thing (children's programmes count first offences too): each
    # row says its measure under its name, and the axis says so
    ax.set_yticks(range(len(rows)), [f"{r[0]}\n{_measure_short(r[5])}" for r in rows[::-1]], fontsize=8.5)
    measures = sorted({r[5] for r in rows})
    what = (f"one-year {measures[0]} rate" if len(measures) == 1
            else "one-year rate of each programme's measure (under its name)")
    ax.set_xlabel(f"Difference in the {what},\nparticipants − matched comparison "
                  "(percentage points, 95% CI)", fontsize=9)
    ax.set_title("Effects across programmes\n(green circle: evidence; orange square: indication only;\ngrey "
                 "triangle: inconclusive or secondary)", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig._evaluation_data = _forest_data(rows, bool(shown_truth))  # the chart's data, shown after it (issue 15)
    return fig


def _measure_short(measure: str) -> str:
    """``"proven offending (first or repeat)"`` → ``"proven offending, first or repeat"`` (a tick label line)."""
    return measure.replace(" (first or repeat)", ", first or repeat")


def _forest_data(rows, truth: bool) -> str:
    """The forest plot's data as a captioned table in ``<details>`` (the published figures it draws)."""
    head = (["Programme", "Measure", "Difference (pp)", "95% CI (pp)", "Confidence"]
            + (["True effect (pp)"] if truth else []))
    body = []
    for label, est, h, conf, true, measure in rows:
        cells = [measure, wording.pp_difference(est),
                 f"{wording.signed_num(100 * h['lower'])} to {wording.signed_num(100 * h['upper'])}", conf]
        cells += [("–" if true is None else wording.signed_num(100 * true))] if truth else []
        body.append(f'<tr><th scope="row">{html.escape(label)}</th>'
                    + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return ('<details class="chart-data"><summary>Data for this chart: effects across programmes</summary><table>'
            "<caption>Difference in the one-year rate of each programme's measure, participants − matched "
            "comparison</caption>"
            "<thead><tr>" + "".join(f'<th scope="col">{c}</th>' for c in head) + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table></details>")


def _figure_img(fig) -> str:
    """The figure as an ``<img>`` of vector SVG (sized for print, text at least 7 pt) with alt text from the
    data (:mod:`evaluation.report.alttext`)."""
    import matplotlib.pyplot as plt

    from evaluation.report.alttext import figure_svg
    from evaluation.report.render import svg_data_uri

    svg, meta = figure_svg(fig)
    plt.close(fig)
    data = getattr(fig, "_evaluation_data", "")  # closes the <p> around the image (details is a block)
    return f'<img src="{svg_data_uri(svg)}" alt="{html.escape(meta["alt"], quote=True)}"></p>{data}<p>'


def _short_name(name: str) -> str:
    """A programme's name for a chart row: ``"WONDER+ (Women of Norfolk ...)"`` → ``"WONDER+"``, but a short
    qualifier that tells two programmes apart stays (``"Pathway Out (Project ADDER)"``)."""
    head = name.split(",")[0]
    if " (" in head and len(head) > 28:
        head = head.split(" (")[0]
    return head


def _provider_short(provider: str) -> str:
    """``"Mancroft Advice Project (MAP)"`` → ``"MAP"``; ``"Norfolk County Council (with the MACE team)"`` →
    ``"Norfolk County Council"``."""
    provider = str(provider)
    if " (" in provider:
        inner = provider.split(" (", 1)[1].rstrip(")")
        return inner if inner.isupper() and len(inner) <= 8 else provider.split(" (")[0]
    return provider


def _headline_html(res: dict) -> str:
    design = res.get("design")
    if design == "area":
        from evaluation.area import AREA_CAVEAT
        from evaluation.report.content import ENFORCEMENT_NOTES

        items = []
        for m, r in (res.get("measures") or {}).items():
            # the attribution caveat once, under the list, not after every measure
            text = str(r["did_text"]).replace(AREA_CAVEAT, "").strip()
            if m in ENFORCEMENT_NOTES:  # arrests and seizures rise with enforcement itself: said beside them
                text += " " + ENFORCEMENT_NOTES[m]
            items.append(f"<li>{html.escape(text)}</li>")
        return "<ul>" + "".join(items) + f"</ul><p>{html.escape(AREA_CAVEAT)}</p>"
    if design == "delivery":
        return f"<p>{html.escape(' '.join(res.get('findings') or [res.get('delivery_text', '')]))}</p>"
    parts = [f"<li>{html.escape(s)}</li>" for s in res.get("findings") or []]
    v = _fig(res, "vfm.statement")
    if v:
        parts.append(f"<li>{html.escape(str(v['value']))}</li>")
    if res.get("estimate_possible") is False:
        parts += [f"<li>{html.escape(n)}</li>" for n in res.get("notes") or [] if n.startswith("No impact")]
    return "<ul>" + "".join(parts) + "</ul>"


CSS = """
@page { size: A4; margin: 18mm 16mm 20mm 16mm;
        @bottom-right { content: "Page " counter(page) " of " counter(pages); font-size: 8pt; color: #555; font-family: "DejaVu Sans", sans-serif; }
        @bottom-left { content: "Portfolio overview — Police and Crime Commissioner's programmes"; font-size: 8pt; color: #555; font-family: "DejaVu Sans", sans-serif; } }
@page synthetic { @top-center { content: "SYNTHETIC DATA — illustrative"; color: #b00; font-weight: bold; font-size: 9pt; font-family: "DejaVu Sans", sans-serif; } }
body { font-family: "DejaVu Sans", sans-serif; font-size: 10pt; line-height: 1.4; color: #111; }
body.synthetic { page: synthetic; }
h1 { font-size: 20pt; margin-bottom: 4pt; } h2 { font-size: 14pt; border-bottom: 1px solid #999; padding-bottom: 2pt; }
h2, h3 { break-after: avoid; page-break-after: avoid; }
p, li { orphans: 3; widows: 3; }
.programme { margin-top: 18pt; }
.programmes-start { break-before: page; page-break-before: always; }
thead { display: table-header-group; } tr { break-inside: avoid; page-break-inside: avoid; }
.badge { display: inline-block; padding: 2pt 6pt; border-radius: 3pt; color: white; font-weight: bold; font-size: 9pt; }
.b-evidence { background: #2a7d2a; } .b-indication { background: #c77700; } .b-inconclusive { background: #666; }
.b-other { background: #2a5d9f; }
table { border-collapse: collapse; font-size: 9pt; } td, th { border: 1px solid #bbb; padding: 3pt 5pt; text-align: left; }
img { max-width: 100%; height: auto; }
.note { font-size: 8pt; }
details.chart-data { display: none; } @media screen { details.chart-data { display: block; } }
.mark { border: 2px solid #b00; color: #b00; padding: 6pt; font-weight: bold; }
"""


def _badge(conf: str) -> str:
    cls = {"Evidence of an effect": "b-evidence", "Indication only": "b-indication",
           "Inconclusive": "b-inconclusive"}.get(conf, "b-other")
    return f'<span class="badge {cls}">{html.escape(conf)}</span>'


#: Where a programme's full report sits in the published reports folder (as ``evaluation build`` writes it and
#: ``index.html`` links it), relative to that folder.
REPORT_PATH = "{pid}/report.pdf"


def report_path(pid: str) -> str:
    """The published path of a programme's full report, relative to the reports folder (``"mace/report.pdf"``)."""
    return REPORT_PATH.format(pid=pid)


def build_portfolio(reports: str | Path, *, synthetic: bool | None = None) -> Path:
    """Write ``<reports>/portfolio/report.html`` and ``report.pdf`` from the programmes' ``results.json``."""
    from evaluation.report.render import html_to_pdf

    reports = Path(reports)
    doc = portfolio_html(reports, synthetic=synthetic)
    out = reports / "portfolio"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.html").write_text(doc, encoding="utf-8")
    # tagged PDF/UA-1, offline fetcher, attachment refusal and the accessibility checks: the reports' own path
    html_to_pdf(doc, out / "report.pdf", base_url=str(out))
    return out / "report.pdf"


def portfolio_html(reports: str | Path, *, synthetic: bool | None = None) -> str:
    """The portfolio document (HTML) from ``<reports>/<id>/results.json``; :func:`build_portfolio` renders it.

    Every file it names is a path relative to the reports folder (:func:`report_path`), as published.
    """
    from evaluation.config import load_programmes

    reports = Path(reports)
    results = _load(reports)
    if not results:
        raise FileNotFoundError(f"{reports}: no reports/<programme>/results.json found; run the build first")
    programmes = load_programmes()
    names = {pid: programmes[pid].name for pid in results}
    # "Pathways Out" and "Pathway Out (Project ADDER)" side by side read as one programme: the provider says
    # which is which (issue 11)
    providers = {pid: _provider_short(programmes[pid].provider) for pid in results}
    if synthetic is None:
        manifest = reports / "manifest.json"
        synthetic = True
        if manifest.exists():
            synthetic = bool(json.loads(manifest.read_text()).get("synthetic", True))
    truth = synthetic_truth(reports) if synthetic else {}
    rows = []
    for pid, res in results.items():
        h = _fig(res, "rate.difference")
        n = _fig(res, "n.participants")
        effect = (f"{wording.pp_difference(h['value'])} pp ({wording.signed_num(100 * h['lower'])} to "
                  f"{wording.signed_num(100 * h['upper'])})" if h else "–")
        size = f"{n['value']:,}" if n else "–"
        true = (f"<td>{wording.signed_num(100 * truth[pid])} pp</td>" if pid in truth and h else "<td>–</td>") \
            if truth else ""
        rows.append(f"<tr><td>{html.escape(names[pid])}<br><span class='note'>{html.escape(providers[pid])}"
                    f"</span></td><td>{_badge(confidence(res))}</td><td>{size}</td>"
                    f"<td>{html.escape(measure_of(res)) if h else '–'}</td><td>{effect}</td>{true}</tr>")
    forest = forest_plot(results, {pid: _short_name(n) + (f" – {providers[pid]}" if len(providers[pid]) <= 16 else "")
                                   for pid, n in names.items()}, truth)
    truth_head = '<th scope="col">True effect in the synthetic world</th>' if truth else ""
    truth_note = (" <b>×</b> marks the synthetic world's known true effect (the effect built into the made-up "
                  "data, which no real evaluation knows): an honest 95% interval misses it about one time in "
                  "twenty, so an interval that misses it now and then is expected, not a fault.") if truth else ""
    mark = ('<p class="mark">SYNTHETIC DATA — illustrative. Every figure comes from the synthetic world the '
            'evaluation library generates; none describes the real programmes.</p>') if synthetic else ""
    pages = [f"""<h1>Portfolio overview</h1>
<p>Programmes funded by the Police and Crime Commissioner against County Lines exploitation, drug-related crime and
reoffending. Built {dt.date.today():%d %B %Y} from the published figures of each programme report.</p>{mark}
<table><thead><tr><th scope="col">Programme</th><th scope="col">Confidence</th><th scope="col">Participants analysed</th><th scope="col">Measure (one year)</th><th scope="col">Difference, participants − comparison (95% CI)</th>{truth_head}</tr></thead>
<tbody>{''.join(rows)}</tbody></table>
<p>{_figure_img(forest)}</p>
<p class="note">Confidence: <b>evidence</b> — significant by the Justice Data Lab rule (p ≤ 0.05 and at
least 30 participants offended again, or for a first time where the measure counts first offences); <b>indication</b>
— the 95% interval lies wholly on one side of zero, but the difference is not significant by that rule (too few
participants offended, or p is above 0.05); <b>inconclusive</b>
— the interval includes zero, so the data allow no difference as well as a rise or a fall. Area-level and delivery-only programmes are described in
their own reports.{truth_note}</p>"""]
    first = True
    for pid, res in results.items():
        p = programmes[pid]
        start = " programmes-start" if first else ""  # the programmes follow the overview on a new page
        first = False
        dq = "".join(f"<li>{html.escape(str(n))}</li>" for n in data_quality(res)) or "<li>No data-quality notes.</li>"
        pages.append(f"""<section class="programme{start}"><h2>{html.escape(p.name)}</h2>
<p>{html.escape(_fact(p, "provider", p.provider))} · {html.escape(_fact(p, "start", f"{p.start:%B %Y}"))} – {html.escape(_fact(p, "end", f"{p.end:%B %Y}"))} · {_badge(confidence(res))}</p>
<h3>Headline</h3>{_headline_html(res)}
<h3>Data quality</h3><ul>{dq}</ul>
<p class="note">Full report: {html.escape(report_path(pid))} in the published reports folder (listed on its
index.html page).</p></section>""")
    # a glossary of the terms and abbreviations the portfolio itself uses (a funder reads it on its own)
    words = re.sub(r"<[^>]+>", " ", "".join(pages))
    entries = guidance.portfolio_glossary(html.unescape(words))
    keys = sorted(entries, key=lambda k: k.lower().lstrip("0123456789% "))
    pages.append('<section class="glossary"><h2>Glossary</h2>' + "".join(
        f"<p><b>{html.escape(k)}.</b> {html.escape(entries[k])}</p>" for k in keys) + "</section>")
    body_class = "synthetic" if synthetic else ""
    title = "Portfolio overview" + (" (synthetic data)" if synthetic else "")
    doc = (f"<!doctype html><html lang='en-GB'><head><meta charset='utf-8'>"
           "<meta name='viewport' content='width=device-width, initial-scale=1.0'>"
           f"<title>{title}</title><style>{CSS}</style>"
           f"</head><body class='{body_class}'><main>{''.join(pages)}</main></body></html>")
    return doc


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("portfolio", help="build reports/portfolio/report.pdf from the programme reports")
    p.add_argument("--out", default=None, help="reports folder (default: <repo>/reports)")
    p.set_defaults(func=_run_cli)


def _run_cli(args) -> int:
    from evaluation.config import repo_root

    path = build_portfolio(Path(args.out) if args.out else repo_root() / "reports")
    print(f"Portfolio written to {path}")
    return 0
