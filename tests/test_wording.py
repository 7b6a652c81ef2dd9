import math

import pytest

from evaluation import wording as w


@pytest.mark.parametrize(
    "share, text",
    [(0.273, "27%"), (0.275, "28%"), (0.004, "<1%"), (0.0, "0%"), (1.0, "100%"), (float("nan"), "–")],
)
def test_pct_whole_percent_and_small_shares(share, text):
    assert w.pct(share) == text


def test_rounding_is_half_up_not_bankers():
    assert w.round_half_up(2.5) == 3
    assert w.round_half_up(-2.5) == -3
    assert w.freq(2.675) == "2.68"  # binary 2.67499.. still rounds as published tables do
    assert w.p_value(0.045) == "0.05"
    assert w.p_value(0.004) == "<0.01"


def test_significance_needs_p_and_30_reoffenders():
    assert w.is_significant(0.01, 30)
    assert not w.is_significant(0.01, 29)
    assert not w.is_significant(0.051, 100)
    assert not w.is_significant(float("nan"), 100)


def test_significant_reduction_wording():
    f = w.rate_finding(-0.06, -0.10, -0.02, 0.003, 120)
    assert f.significant
    assert "lower by between 2 and 10 percentage points" in f.sentence


def test_not_significant_wording_gives_range_and_number_needed():
    f = w.rate_finding(-0.03, -0.12, 0.06, 0.4, 12, number_needed=1450)
    assert not f.significant
    assert "as many as 12 fewer or as many as 6 more" in f.sentence
    assert "More people would need to be analysed" in f.sentence
    assert "1,450" in f.sentence


def test_p_small_but_too_few_reoffenders_is_explained():
    f = w.rate_finding(-0.2, -0.35, -0.05, 0.01, 10)
    assert not f.significant
    assert "by between 5 and 35 percentage points" in f.sentence
    assert "fewer than 30" in f.sentence and "not called significant" in f.sentence
    g = w.frequency_finding(-0.6, -1.02, -0.17, 0.006, 10)
    assert not g.significant and "between 0.17 and 1.02" in g.sentence


def test_small_sample_note():
    assert "at least 60" in w.small_sample_note(46, 10)
    assert w.small_sample_note(500, 100) is None
