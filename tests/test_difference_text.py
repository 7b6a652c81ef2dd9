"""Headline differences that round to zero print as 0 with no sign (MACE p4 printed "+less than 0.00001" and
"+0.02 days")."""
from __future__ import annotations

import math

from evaluation.report.content import difference_text


def test_tiny_differences_print_as_zero_without_sign():
    assert difference_text(0.000004, 2) == "0.00"
    assert difference_text(-0.000004, 2) == "0.00"
    assert difference_text(0.02) == "0" and difference_text(0.02) + " days" == "0 days"
    assert difference_text(-0.4) == "0"


def test_real_differences_keep_sign_and_fixed_decimals():
    assert difference_text(0.4, 2) == "+0.40"
    assert difference_text(-3.4) == "−3"
    assert difference_text(0.005, 2) == "+0.01"  # half up
    assert difference_text(math.nan) == "–"


def test_covariate_labels_and_love_plot_labels():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from evaluation.matching import balance as bal
    from evaluation.report.content import COVARIATE_LABELS, covariate_label

    assert covariate_label("prior_offences") == "Number of earlier proven offences (2 years)"
    assert covariate_label("distance") == "Propensity score" and covariate_label("other") == "other"

    class _D:
        pass
    frame = pd.DataFrame({"smd_before": [0.3, 0.2], "smd_after": [0.05, 0.01]}, index=["distance", "male"])
    import inspect
    assert "labels" in inspect.signature(bal.love_plot).parameters
    fig, ax = plt.subplots()
    ax.set_yticks(range(2), [COVARIATE_LABELS.get(v, v) for v in frame.index])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Propensity score", "Male"]


def test_property_summary_differences_agree_with_the_table():
    """Issue 11 (funder read, MACE): the summary said "0.6 percentage points" while the headline table showed
    "−1 pp". Over thousands of random results, the number every sentence prints for the observed difference is
    the table's Difference cell without its sign, and the sign agrees with the estimate's."""
    import random
    import re
    from types import SimpleNamespace

    from evaluation import wording
    from evaluation.register import Register
    from evaluation.report import content as rc

    rng = random.Random(11)
    for _ in range(2000):
        d = rng.choice([rng.uniform(-0.3, 0.3), rng.uniform(-0.02, 0.02), rng.uniform(-0.001, 0.001),
                        round(rng.uniform(-0.1, 0.1), 3), 0.005, -0.005, -0.0049, 0.0951])
        lo, hi = d - rng.uniform(0.01, 0.1), d + rng.uniform(0.01, 0.1)
        reg = Register(threshold=5)
        reg.count("n.participants", "N", 200, "headline", exact=True)
        reg.count("n.comparison", "N", 600, "headline", exact=True)
        reg.add("rate.participants", "rate", 0.3 + d, "proportion", "headline")
        reg.add("rate.comparison", "rate", 0.3, "proportion", "headline")
        reg.add("rate.difference", "diff", d, "pp", "headline", lower=lo, upper=hi, p_value=0.5, significant=False)
        reg.add("power.mdd", "mdd", 0.12, "pp", "power")
        reg.add("power.p_control", "p", 0.3, "proportion", "power")
        reg.add("power.number_needed", "nn", rng.choice([1e6, 5000]), "number", "power")
        ev = SimpleNamespace(register=lambda reg=reg: reg, labels={"reoffended": "One-year rate"},
                             treated_reoffenders=40, programme=SimpleNamespace(outcome={}))
        cell = rc.headline(ev).loc["One-year rate", "Difference"].replace("\u00a0", " ")
        number = cell.removesuffix(" pp")
        assert number.lstrip("+−") == wording.pp_size(d)
        assert number[0] == ("+" if d > 0 else "−") if d != 0 else number[0].isdigit()
        texts = [rc.power_text(ev), wording.rate_finding(d, lo, hi, 0.5, 40, number_needed=1e6, n_analysed=200)
                 .sentence]
        for text in texts:
            for said in re.findall(r"observed \(([0-9.]+) percentage points?\)", text):
                assert said == number.lstrip("+−"), (d, cell, text)


def test_equal_rates_through_a_weighted_regression_print_as_zero():
    """10 of 40 participants and 30 of 120 comparison people (weights 1/3) give a WLS difference of 2e-17, which
    printed "+less than 0.0001 pp" in the table and "(less than 0.0001 percentage points)" in the text."""
    import numpy as np
    import statsmodels.api as sm

    from evaluation import wording

    y = np.r_[np.ones(10), np.zeros(30), np.ones(30), np.zeros(90)]
    t = np.r_[np.ones(40), np.zeros(120)]
    d = sm.WLS(y, sm.add_constant(t), weights=np.r_[np.ones(40), np.full(120, 1 / 3)]).fit().params[1]
    assert abs(d) < 1e-15
    assert wording.pp_difference(d) == "0.0" and wording.pp_size(d) == "0.0"
    assert wording.pp_difference(-d) == "0.0"
    assert wording.pp_difference(1e-9).startswith("+")  # tiny but real: never printed as 0
    assert wording.pp_difference(-0.0004) == "−0.04"
