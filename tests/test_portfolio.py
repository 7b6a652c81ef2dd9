import json

import pytest

from evaluation.report.portfolio import build_portfolio, confidence


def _res(diff, lo, hi, sig, **kw):
    return {"headline": {"One-year proven reoffending rate": {"difference": diff, "lower": lo, "upper": hi,
                                                              "p_value": 0.01, "significant": sig}}, **kw}


def test_confidence_follows_the_jdl_rules():
    assert confidence(_res(-0.06, -0.08, -0.03, True)) == "Evidence of an effect"
    assert confidence(_res(-0.18, -0.30, -0.07, False)) == "Indication only"
    assert confidence(_res(-0.05, -0.13, 0.02, False)) == "Inconclusive"
    assert confidence({"design": "area"}) == "Area-level"
    assert confidence({"design": "delivery"}) == "Delivery only"


@pytest.mark.slow
def test_portfolio_pdf_from_results(tmp_path):
    (tmp_path / "wonder-plus").mkdir()
    (tmp_path / "wonder-plus" / "results.json").write_text(json.dumps(_res(-0.06, -0.08, -0.03, True, findings=["x"],
                                                                           participants_analysed=850)))
    (tmp_path / "capacity-building").mkdir()
    (tmp_path / "capacity-building" / "results.json").write_text(json.dumps({"design": "delivery",
                                                                             "delivery_text": "28 sessions"}))
    pdf = build_portfolio(tmp_path, synthetic=True)
    assert pdf.exists() and pdf.stat().st_size > 10_000
    assert "SYNTHETIC DATA" in (tmp_path / "portfolio" / "report.html").read_text()


def test_no_results_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the build first"):
        build_portfolio(tmp_path)
