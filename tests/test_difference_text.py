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
