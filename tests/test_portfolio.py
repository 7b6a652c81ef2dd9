import json

import pytest

from evaluation.report.portfolio import build_portfolio, confidence


def _fig(value, **kw):
    return {"label": "x", "unit": "pp", "section": "headline", "status": "shown", "value": value, **kw}


def _res(diff, lo, hi, sig, n=850, **kw):
    figures = {"rate.difference": _fig(diff, lower=lo, upper=hi, p_value=0.01, significant=sig),
               "n.participants": _fig(n, unit="people")}
    figures.update(kw.pop("figures", {}))
    return {"design": "individual", "figures": figures, **kw}


def test_confidence_follows_the_jdl_rules():
    assert confidence(_res(-0.06, -0.08, -0.03, True)) == "Evidence of an effect"
    assert confidence(_res(-0.18, -0.30, -0.07, False)) == "Indication only"
    assert confidence(_res(-0.05, -0.13, 0.02, False)) == "Inconclusive"
    assert confidence({"design": "area"}) == "Area-level"
    assert confidence({"design": "delivery"}) == "Delivery only"


@pytest.mark.slow
def test_portfolio_pdf_from_results(tmp_path):
    (tmp_path / "wonder-plus").mkdir()
    (tmp_path / "wonder-plus" / "results.json").write_text(json.dumps(_res(-0.06, -0.08, -0.03, True, findings=["x"])))
    (tmp_path / "capacity-building").mkdir()
    (tmp_path / "capacity-building" / "results.json").write_text(json.dumps({"design": "delivery",
                                                                             "findings": ["28 sessions"]}))
    pdf = build_portfolio(tmp_path, synthetic=True)
    assert pdf.exists() and pdf.stat().st_size > 10_000
    assert "SYNTHETIC DATA" in (tmp_path / "portfolio" / "report.html").read_text()


def test_no_results_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the build first"):
        build_portfolio(tmp_path)


def test_synthetic_truth_is_shown_only_for_a_synthetic_world(tmp_path):
    from evaluation.report.portfolio import synthetic_truth

    world = tmp_path / "world"
    world.mkdir()
    (world / "truth.json").write_text(json.dumps({"programmes": {
        "wonder-plus": {"att_risk_difference": -0.02, "by_status": {"completed": {"att_risk_difference": -0.035}}},
        "project-adder": {"measures": {}}}}))
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "manifest.json").write_text(json.dumps({"synthetic": True, "world": str(world)}))
    assert synthetic_truth(reports) == {"wonder-plus": -0.02, "wonder-plus:completers": -0.035}
    (reports / "manifest.json").write_text(json.dumps({"synthetic": False, "world": str(world)}))
    assert synthetic_truth(reports) == {}
    (reports / "manifest.json").write_text(json.dumps({"synthetic": True, "world": str(tmp_path / "gone")}))
    assert synthetic_truth(reports) == {}


def test_forest_plot_marks_the_truth():
    from evaluation.report.portfolio import forest_plot

    fig = forest_plot({"wonder-plus": _res(-0.06, -0.08, -0.03, True)}, {"wonder-plus": "WONDER+"},
                      {"wonder-plus": -0.02})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["true effect (synthetic world)"]
    fig_real = forest_plot({"wonder-plus": _res(-0.06, -0.08, -0.03, True)}, {"wonder-plus": "WONDER+"})
    assert fig_real.axes[0].get_legend() is None


def test_a_subgroup_is_never_evidence_when_the_intention_to_treat_result_is_not():
    sub = {"completers.rate.difference": _fig(-0.06, lower=-0.10, upper=-0.01, p_value=0.01, significant=True)}
    res = _res(-0.03, -0.06, 0.002, False, figures=sub, subanalyses={"completers": {}})
    assert confidence(res) == "Inconclusive"
    assert confidence(res, "completers.") == "Secondary (not evidence)"
    res_sig = _res(-0.05, -0.08, -0.02, True, figures=sub, subanalyses={"completers": {}})
    assert confidence(res_sig, "completers.") == "Evidence of an effect"


def test_portfolio_reads_the_same_n_as_the_report():
    from evaluation.report.portfolio import data_quality

    res = _res(-0.03, -0.06, 0.002, False, n=41)
    assert data_quality(res)[0].startswith("Participants analysed: 41 ")
    res["figures"]["n.participants"]["status"] = "suppressed"
    res["figures"]["n.participants"]["value"] = None
    assert not any(n.startswith("Participants analysed") for n in data_quality(res))


def _fake_build(tmp_path):
    """A reports folder laid out as `evaluation build` writes it: <id>/results.json beside <id>/report.pdf."""
    from evaluation.report.portfolio import report_path

    reports = tmp_path / "reports"
    for pid, res in (("wonder-plus", _res(-0.06, -0.08, -0.03, True, findings=["x"])),
                     ("pathways-out", _res(-0.001, -0.12, 0.118, False, n=41)),
                     ("capacity-building", {"design": "delivery", "findings": ["28 sessions"]})):
        (reports / pid).mkdir(parents=True)
        (reports / pid / "results.json").write_text(json.dumps(res))
        (reports / report_path(pid)).write_bytes(b"%PDF-1.7 stand-in")
    world = tmp_path / "world"
    world.mkdir()
    (world / "truth.json").write_text(json.dumps({"programmes": {"wonder-plus": {"att_risk_difference": -0.02}}}))
    (reports / "manifest.json").write_text(json.dumps({"synthetic": True, "world": str(world)}))
    (reports / "index.html").write_text("<!doctype html>")  # the build's index (evaluation.report.build)
    return reports


def test_every_path_the_portfolio_names_exists_in_the_published_folder(tmp_path):
    """Issue 11 (funder read): "Full report: reports/<id>/report.pdf" matched no published path. Every file name
    in the portfolio is relative to the reports folder and exists there after a build."""
    import re

    from evaluation.report.portfolio import portfolio_html

    reports = _fake_build(tmp_path)
    doc = portfolio_html(reports)
    named = re.findall(r"[\w.-]+(?:/[\w.-]+)*\.(?:pdf|html|json|xlsx)\b", re.sub(r"<[^>]+>", " ", doc))
    assert {"wonder-plus/report.pdf", "pathways-out/report.pdf"} <= set(named)
    for path in named:
        assert (reports / path).exists(), path
    assert "reports/wonder-plus" not in doc


def test_portfolio_speaks_to_a_funder_not_to_the_code(tmp_path):
    from evaluation.report.portfolio import portfolio_html

    doc = portfolio_html(_fake_build(tmp_path))
    assert "truth.json" not in doc and "python -m" not in doc and "<code>" not in doc
    assert "known true effect" in doc


def test_area_headline_says_the_caveat_once_and_that_arrests_reflect_police_activity():
    from evaluation.area import AREA_CAVEAT
    from evaluation.report.portfolio import _headline_html

    res = {"design": "area", "measures": {m: {"did_text": f"{m} changed. {AREA_CAVEAT}"}
                                          for m in ("drug_deaths", "arrests", "seizures")}}
    out = _headline_html(res)
    assert out.count("cannot be attributed to one service") == 1
    assert out.count("police activity") == 2 and "a rise is not evidence of more drug crime" in out


def test_portfolio_says_each_programmes_measure_and_tells_similar_names_apart():
    """Issue 11 (funder read): the forest plot's axis said "reoffending" for children's programmes that count
    proven offending (first or repeat), and "Pathways Out" sat beside "Pathway Out" with nothing to tell them
    apart. Each row names its measure, the axis says measures differ, and names keep a short qualifier."""
    from evaluation.report.portfolio import _provider_short, _short_name, data_quality, forest_plot, measure_of

    child = _res(-0.05, -0.12, 0.02, False, n=41)
    child["figures"]["rate.difference"]["label"] = ("One-year rate of proven offending (first or repeat): "
                                                    "difference (participants − comparison)")
    child["figures"]["reoffenders.participants"] = _fig(9)
    adult = _res(-0.02, -0.1, 0.06, False, n=133)
    adult["figures"]["rate.difference"]["label"] = "One-year rate of proven reoffending: difference"
    assert measure_of(child) == "proven offending (first or repeat)" and measure_of(adult) == "proven reoffending"
    assert "Fewer than 30 participants offended: no significance is claimed." in data_quality(child)
    fig = forest_plot({"pathways-out": child, "pathway-out-adder": adult},
                      {"pathways-out": "Pathways Out – MAP", "pathway-out-adder": "Pathway Out (Project ADDER)"})
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert any("proven offending, first or repeat" in t and "Pathways Out" in t for t in ticks)
    assert any("proven reoffending" in t and "ADDER" in t for t in ticks)
    assert "each programme's measure" in ax.get_xlabel() and "reoffending rate" not in ax.get_xlabel()
    assert _short_name("Pathway Out (Project ADDER)") == "Pathway Out (Project ADDER)"
    assert _short_name("WONDER+ (Women of Norfolk Diversion, Engagement and Rehabilitation)") == "WONDER+"
    assert _provider_short("Mancroft Advice Project (MAP)") == "MAP"
    assert _provider_short("Norfolk County Council (with the MACE team)") == "Norfolk County Council"


def test_area_report_data_quality_names_its_failed_checks():
    """Funder read 4: the portfolio said "No data-quality notes." for Project ADDER although its arrests failed the
    pre-trend check and two series kept correlation between months."""
    from evaluation.report.portfolio import data_quality

    res = {"design": "area", "measures": {
        "arrests": {"did": {"pretrend_failed": True}, "its": {"autocorrelation": {"ljung_box_p": 0.019}}},
        "drug_deaths": {"did": {"pretrend_failed": False}, "its": {"autocorrelation": {"ljung_box_p": 0.6,
                                                                                       "breusch_godfrey_p": None}}}}}
    notes = data_quality(res)
    assert any("pre-trend check failed): arrests;" in n for n in notes)
    assert any("area-alone model: arrests (" in n for n in notes)
    assert not any("drug deaths" in n for n in notes)


def test_portfolio_ends_with_a_glossary_of_the_terms_it_uses(tmp_path):
    from evaluation.report.portfolio import portfolio_html

    doc = portfolio_html(_fake_build(tmp_path))
    gloss = doc[doc.index("<h2>Glossary</h2>"):]
    for term in ("95% confidence interval (CI)", "p-value", "Percentage points (pp)", "Statistically significant",
                 "Placebo test (placebo p)", "Pre-trend check"):
        assert f"<b>{term}.</b>" in gloss
