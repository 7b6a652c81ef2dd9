"""evaluation.power: which outcomes it supports, and its figures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.matching import match
from evaluation.power import design_power, minimum_detectable_difference
from evaluation.sensitivity import rosenbaum_bounds

HERE = Path(__file__).parent / "results" / "matchit"


@pytest.fixture(scope="module")
def design():
    d = pd.read_csv(HERE / "lalonde.csv").set_index("id")
    return match(d, "treat", ["age", "educ", "race", "married", "nodegree", "re74", "re75"])


def test_power_refuses_continuous_and_count_outcomes(design):
    for outcome in ("re78", "re78_k"):
        with pytest.raises(ValueError, match="0/1 outcomes only"):
            design_power(design, outcome)


def test_power_on_binary_outcome(design):
    p = design_power(design, "re78_pos")
    assert 0 < p.p_control < 1 and 0 < p.mdd < 1 and "%" in p.message
    assert repr(p).startswith("<DesignPower") and "\n" not in repr(p)
    assert p.mdd == pytest.approx(minimum_detectable_difference(p.n_treated, p.n_control_effective, p.p_control))


def test_sensitivity_refuses_non_binary_outcome(design):
    with pytest.raises(ValueError, match="0/1 outcomes only"):
        rosenbaum_bounds(design, "re78")
    assert len(rosenbaum_bounds(design, "re78_pos")) > 0


def test_sensitivity_refuses_subclass_designs():
    d = pd.read_csv(HERE / "lalonde.csv").set_index("id")
    m = match(d, "treat", ["race", "married"], method="exact")
    with pytest.raises(ValueError, match="1:1 matched pairs"):
        rosenbaum_bounds(m, "re78_pos")
    _ = np
