"""The data behind each chart (issue 15): a captioned table after every figure, with values from the published
register (never raw or unrounded counts), made through the output guard's formatter; sub-rows of tables
indented visibly and worded to stand alone (issue 11)."""
from __future__ import annotations

import types
import warnings

import nbformat
import pandas as pd
import pytest

from evaluation.report import content as rc
from evaluation.report import guard, render


@pytest.fixture(scope="module")
def world(small_world_tables):
    w = types.SimpleNamespace(**small_world_tables)
    w.extract_date = pd.Timestamp("2024-12-31").date()
    return w


@pytest.fixture(scope="module")
def adder_out(world):
    """Pathway Out (ADDER): competing risks (custody), ETE, value for money."""
    from evaluation.estimates import evaluate_programme

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_programme(world, "pathway-out-adder")


def _cells(df: pd.DataFrame) -> dict:
    return {(str(i), str(c)): v for i, row in df.iterrows() for c, v in row.items()}


# ------------------------------------------------------------------------------------------- the block
def test_chart_data_html_is_a_captioned_published_table_in_details():
    df = rc.table(pd.DataFrame({"Participants": ["28%"]}, index=pd.Index(["Proportion"], name="Measure")))
    d = rc.ChartData([("What the chart shows", df)], "time to reoffence")
    html = render.inert_html(d._repr_html_())  # what the report keeps of it
    assert html.startswith('<details class="chart-data"><summary>Data for this chart: time to reoffence</summary>')
    assert "<caption>What the chart shows</caption>" in html and guard.PUBLISHED_CLASS in html
    assert '<th scope="col">Measure</th>' in html and '<th scope="row">Proportion</th>' in html
    assert "<style" not in html and html.rstrip().endswith("</details>")
    assert render.figures_without_data('<img alt="x">' + html) == []
    assert not rc.ChartData() and rc.ChartData()._repr_html_() == ""
    assert 'class="chart-data chart-data-print"' in rc.ChartData([("c", df)], printed=True)._repr_html_()
    # never cut: long tables and long cells come out whole
    long = rc.table(pd.DataFrame({"v": ["x" * 80] * 70}, index=pd.Index(range(70), name="Row")))
    out = rc.ChartData([("c", long)])._repr_html_()
    assert out.count("<tr") == 71 and "x" * 80 in out and "..." not in out


def test_an_unpublished_table_in_chart_data_is_refused_by_the_guard():
    """ChartData goes through the guard: a frame not made by content.table() has no published class, and the
    build's check (guard.unpublished_tables) names the cell."""
    raw = pd.DataFrame({"person": ["P0001"], "days": [12]})
    html = rc.ChartData([("rows of people", raw)])._repr_html_()
    assert guard.PUBLISHED_CLASS not in html
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("display(rc.ChartData(...))")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": html, "text/plain": "ChartData"})]
    nb.cells = [cell]
    assert guard.unpublished_tables(nb) == ["cell 1 [display(rc.ChartData(...))]"]


def test_figures_without_data_finds_each_figure_missing_its_table():
    block = '<details class="chart-data"><summary>Data</summary><table><caption>c</caption></table></details>'
    assert render.figures_without_data(f'<img alt="a">{block}<h2>x</h2><img alt="b">{block}') == []
    assert render.figures_without_data(f'<img alt="a"><table></table>{block}') == [1]  # a table in between
    assert render.figures_without_data(f'<img alt="a"><h3>Next</h3>{block}') == [1]  # under another heading
    assert render.figures_without_data('<img alt="a"><details class="chart-data"><table></table></details>') == [1]
    assert render.figures_without_data("<p>no figures</p>") == []


# ------------------------------------------------------------------------------------ values = register
@pytest.fixture(scope="module")
def wonder_out(world):
    """WONDER+: competing risks (custody), a survival chart that is drawn."""
    from evaluation.estimates import evaluate_programme

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_programme(world, "wonder-plus")


def test_survival_chart_withheld_says_so_and_has_no_data(adder_out):
    """Pathway Out (ADDER) in the small world: the reoffenders of the year against the curve by day 365 would
    reveal the few who reoffended only after custody, so the curve's figures are withheld: no chart, no chart
    data, and the lead-in says why instead of describing a chart."""
    ev = adder_out
    assert not rc.survival_drawn(ev) and rc.survival_figure(ev) is None and not rc.survival_data(ev)
    intro = rc.survival_intro(ev)
    assert "are not drawn" in intro and "drawn as the value" not in intro and "custody" in intro


def test_survival_chart_data_equals_the_register(wonder_out):
    ev = wonder_out
    reg = ev.register()
    assert rc.survival_drawn(ev) == (rc.survival_figure(ev) is not None)
    import matplotlib.pyplot as plt

    plt.close("all")
    d = rc.survival_data(ev)
    assert d, "the chart is drawn for WONDER+, so its data is shown"
    (caption, t), = d.tables
    assert "rounded to the nearest 5" in caption and guard.is_published(t)
    cells = _cells(t)
    seen = 0
    for f in reg.section("survival"):
        if f.unit != "proportion":
            continue
        col = {"participants": "Participants", "comparison": "Matched comparison"}[f.meta["group"]]
        row = f.label.rsplit(":", 1)[0] + " (95% CI)"
        want = f"{reg.display(f.id, lambda v: f'{100 * v:.0f}%')} ({100 * f.lower:.0f}% to {100 * f.upper:.0f}%)"
        assert cells[(row, col)] == want
        seen += 1
    assert seen == 4  # reoffence and custody, both groups
    for f in reg.section("risk"):  # numbers at risk exactly as published (rounded to 5, the N exact)
        _, group, day = f.id.split(".")
        col = {"participants": "Participants", "comparison": "Matched comparison"}[group]
        assert cells[(f"Number still at risk on day {int(day[3:])}", col)] == reg.display(f.id)
        assert f.status in ("shown", "rounded", "suppressed")
    rounded = [v for (r, _), v in cells.items() if r.startswith("Number still at risk on day") and
               not r.endswith(" 0")]
    assert rounded and all(v == "[c]" or int(v.replace(",", "")) % 5 == 0 for v in rounded)


def test_balance_chart_data_equals_the_register(adder_out):
    ev = adder_out
    reg = ev.register()
    (caption, t), = rc.balance_data(ev).tables
    for f in reg.section("balance"):
        m = f.meta["measure"]
        if m in ("smd_before", "smd_after"):
            col = "Absolute SMD before matching" if m == "smd_before" else "Absolute SMD after matching"
            assert t.loc[rc.covariate_label(f.meta["covariate"]), col] == f"{abs(f.shown):.2f}"
    assert "0.1" in caption
    # reader labels, the same as the balance table's (no raw variable names)
    assert "distance" not in t.index and "Propensity score" in t.index
    assert list(t.index) == list(rc.balance(ev).index)


def test_vfm_chart_data_only_with_the_chart(adder_out):
    ev = adder_out
    assert not rc.vfm_data(ev) if not rc.vfm_figure(ev) else rc.vfm_data(ev)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_delivery_chart_data_equals_the_register(world):
    from evaluation.delivery import delivery_progress

    import matplotlib.pyplot as plt

    result = delivery_progress(world.delivery, "sos-plus")
    reg = rc.delivery_register(None, result)
    d = rc.delivery_data(result)
    (caption, t), = d.tables
    assert "not people" in caption
    figs = reg.section("delivery_progress")
    assert figs and all(f.unit == "number" for f in figs)
    for f in figs:
        if f.meta.get("month"):
            col = rc._first_upper(__import__("evaluation.delivery", fromlist=["x"]).AUDIENCE_LABELS
                                  .get(f.meta["audience"], f.meta["audience"]))
            assert t.loc[f"{pd.Timestamp(f.meta['month']):%B %Y}", col] == f"{f.shown:,.0f}"
    for aud, p in result.progress.groupby("audience"):  # the last month is the audience's published total
        last = reg[f"delivery.{aud}.attendees_by.{pd.Timestamp(p['month'].iloc[-1]):%Y_%m}"]
        assert last.value == reg[f"delivery.{aud}.attendees"].value
    assert d.printed == (len(t) <= render.KEEP_TABLE_ROWS)
    # the chart plots exactly these cumulative values
    fig = rc.delivery_figure(result)
    for ax in fig.axes:
        line = next(ln for ln in ax.get_lines() if ln.get_label() == "delivered")
        col = next(c for c in t.columns if c.lower() == ax.get_title().lower())
        months = [m for m in t.index if m[0].isupper() and m.split()[-1].isdigit()]
        assert [float(v.replace(",", "")) for v in t.loc[months, col]] == list(map(float, line.get_ydata()))
    plt.close("all")


def test_single_audience_delivery_chart_is_full_width(world):
    import matplotlib.pyplot as plt

    from evaluation.delivery import delivery_progress
    from evaluation.report.alttext import PRINT_WIDTH_IN

    fig = rc.delivery_figure(delivery_progress(world.delivery, "capacity-building"))
    w, h = fig.get_size_inches()
    assert len(fig.axes) == 1 and w == pytest.approx(PRINT_WIDTH_IN) and h < 3.2
    plt.close("all")


def test_area_chart_data_equals_the_published_results(world):
    import math

    from evaluation.area import evaluate_area
    from evaluation.config import load_programme

    prog = load_programme("project-adder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate_area(world.area_monthly, prog)
    out = rc.area_results(prog, "2024-12-31", res)
    for m, r in res.items():
        d = rc.area_chart_data(r)
        (c1, obs), (c2, es) = d.tables
        pub = out["measures"][m]["chart_observed"]
        assert len(obs) == len(pub)
        for (_, row), p in zip(obs.iterrows(), pub):
            assert row["Observed"] == f"{p['value']:,.2f}"
            assert row["Fitted"] == ("–" if p["fitted"] is None else f"{p['fitted']:,.2f}")
            assert row["Counterfactual (no change)"] == ("–" if p["counterfactual"] is None
                                                         else f"{p['counterfactual']:,.2f}")
        ev_pub = out["measures"][m]["did"]["event_study"]
        assert len(es) == len(ev_pub)
        for (_, row), p in zip(es.iterrows(), ev_pub):
            v = float(row["Difference"].replace("\u2212", "-"))
            assert math.isclose(v, p["estimate_vs_pre"], abs_tol=0.00051 if r["did"].scale == "log" else 0.0051)
        if pub[0]["aggregation"] != "month":
            assert f"{pub[0]['aggregation']}ly averages" in c1


# ------------------------------------------------------------------------------------------ sub-rows
def test_ete_sub_rows_are_indented_and_read_on_their_own(adder_out):
    t = rc.ete_table(adder_out)
    labels = list(t.index)
    assert "In ETE when they left" in labels
    subs = [x for x in labels if x.startswith(rc.SUB_ROW_INDENT)]
    assert [s.removeprefix(rc.SUB_ROW_INDENT) for s in subs] == ["In employment when they left", "In education or training when they left"]
    html = render.inert_html(guard._published_html(t))
    assert f'<th scope="row">{rc.SUB_ROW_INDENT}In employment when they left</th>' in html
    assert "of which" not in html


def test_funnel_destinations_are_indented_sub_rows(world):
    from evaluation.delivery import delivery_progress

    t = rc.funnel_table(delivery_progress(world.delivery, "detached-youth-work"))
    subs = [x for x in t.index if x.startswith(rc.SUB_ROW_INDENT)]
    assert subs and all(s.removeprefix(rc.SUB_ROW_INDENT).startswith("Referred to ") for s in subs) and "→" not in "".join(t.index)


def test_love_plot_takes_reader_labels(adder_out):
    import matplotlib.pyplot as plt

    ax = adder_out.design.plot_balance(labels=rc.COVARIATE_LABELS)
    ax = ax if hasattr(ax, "get_yticklabels") else ax.axes[0]
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert "Propensity score" in shown and "distance" not in shown
    default = adder_out.design.plot_balance()  # researchers' default: the variable names
    default = default if hasattr(default, "get_yticklabels") else default.axes[0]
    assert "distance" in [t.get_text() for t in default.get_yticklabels()]
    plt.close("all")
