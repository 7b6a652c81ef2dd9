"""Sensitivity (Rosenbaum bounds, E-value) and power helpers."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluation.matching import match
from evaluation.power import design_power, minimum_detectable_difference, number_needed
from evaluation.sensitivity import e_value, rosenbaum_binary, rosenbaum_bounds

HERE = Path(__file__).parent / "results" / "matchit"


def test_rosenbaum_gamma_one_is_the_exact_sign_test():
    t = np.array([1] * 10 + [0] * 25 + [1] * 40 + [0] * 30)
    c = np.array([0] * 10 + [1] * 25 + [1] * 40 + [0] * 30)
    out = rosenbaum_binary(t, c, gammas=[1.0, 2.0])
    assert out.loc[0, "discordant_pairs"] == 35 and out.loc[0, "treated_only_events"] == 10
    p = stats.binomtest(10, 35, 0.5, alternative="less").pvalue
    assert out.loc[0, "p_lower"] == pytest.approx(p) and out.loc[0, "p_upper"] == pytest.approx(p)
    # bias widens the interval of p-values
    assert out.loc[1, "p_lower"] < p < out.loc[1, "p_upper"]
    assert out.loc[1, "p_upper"] == pytest.approx(stats.binom.cdf(10, 35, 1 / 3))
    g = out.attrs["critical_gamma"]
    assert g > 1  # significant at Gamma=1 (p ~ 0.008)
    assert stats.binom.cdf(10, 35, 1 / (1 + g)) == pytest.approx(0.05, abs=1e-8)


def test_rosenbaum_not_significant_has_nan_critical_gamma():
    out = rosenbaum_binary([1, 0, 1, 0], [0, 1, 0, 1])
    assert math.isnan(out.attrs["critical_gamma"])


def test_rosenbaum_bounds_on_design():
    d = pd.read_csv(HERE / "synthetic_cohort.csv").set_index("id")
    m = match(d, "treat", ["age", "male", "prior", "drug", "norwich", "yarmouth"])
    out = rosenbaum_bounds(m, "reoffended")
    assert (out["p_upper"].diff().dropna() >= 0).all()
    with pytest.raises(ValueError, match="1:1"):
        rosenbaum_bounds(match(d, "treat", ["age", "male", "prior"], ratio=2), "reoffended")


def test_e_value_published_example():
    # VanderWeele & Ding (2017, Ann Intern Med): RR 3.9 (95% CI 1.8 to 8.7) -> E-values 7.26 and 3.0
    e = e_value(3.9, 1.8, 8.7)
    assert e["point"] == pytest.approx(7.26, abs=0.005)
    assert e["ci"] == pytest.approx(3.0, abs=0.005)
    assert e_value(0.8)["point"] == pytest.approx(1.25 + math.sqrt(1.25 * 0.25))
    assert e_value(0.8, 0.6, 1.1)["ci"] == 1.0
    assert e_value(0.5, 0.3, 0.8)["ci"] == pytest.approx(e_value(1 / 0.8)["point"])


def test_mdd_and_number_needed_are_consistent():
    mdd = minimum_detectable_difference(200, 200, 0.4)
    assert 0.12 < mdd < 0.15
    # the observed difference equal to the MDD needs about the same number of people
    assert number_needed(0.4 - mdd, 0.4, ratio=1) == pytest.approx(200, abs=1)
    assert minimum_detectable_difference(46, 460, 0.37) > minimum_detectable_difference(460, 460, 0.37)


def test_design_power_flags_few_reoffenders():
    d = pd.read_csv(HERE / "synthetic_cohort.csv").set_index("id")
    m = match(d, "treat", ["age", "male", "prior", "drug", "norwich", "yarmouth"])
    p = design_power(m, "reoffended")
    assert not p.few_events and p.treated_events >= 30
    small = d[(d.treat == 0) | (d.index.isin(d[d.treat == 1].index[:46]))]
    ps = design_power(match(small, "treat", ["age", "male", "prior", "drug", "norwich", "yarmouth"]), "reoffended")
    assert ps.few_events and "fewer than 30" in ps.message
    assert ps.mdd > p.mdd
