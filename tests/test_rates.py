"""Rates: Wilson, Newcombe hybrid score (Newcombe 1998 worked examples), two-proportion test, quasi-Poisson frequency."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from evaluation.rates import frequency_per_100, newcombe_diff_ci, two_proportion_pvalue, wilson_ci

# Newcombe RG (1998) Stat Med 17:873-890, Table II, method 10 (hybrid score), 95% limits to 4 dp.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize("counts,limits", NEWCOMBE_TABLE_II)
def test_newcombe_paper_examples(counts, limits):
    d, lo, hi = newcombe_diff_ci(*counts)
    k1, n1, k2, n2 = counts
    assert d == pytest.approx(k1 / n1 - k2 / n2)
    assert round(lo, 4) == pytest.approx(limits[0], abs=1e-12)
    assert round(hi, 4) == pytest.approx(limits[1], abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_newcombe_agrees_with_statsmodels(seed):
    rng = np.random.default_rng(seed)
    for _ in range(30):
        n1, n2 = rng.integers(1, 300, 2)
        k1, k2 = rng.integers(0, n1 + 1), rng.integers(0, n2 + 1)
        _, lo, hi = newcombe_diff_ci(k1, n1, k2, n2)
        slo, shi = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
        assert lo == pytest.approx(slo, abs=1e-12) and hi == pytest.approx(shi, abs=1e-12)


def test_newcombe_vectorised_and_alpha():
    d, lo, hi = newcombe_diff_ci(np.array([56, 9]), np.array([70, 10]), np.array([48, 3]), np.array([80, 10]))
    assert np.round(lo, 4).tolist() == [0.0524, 0.1705]
    _, lo90, hi90 = newcombe_diff_ci(56, 70, 48, 80, alpha=0.10)
    assert 0.0524 < lo90 < hi90 < 0.3339


def test_wilson_known_values_and_statsmodels():
    # Newcombe (1998, Stat Med 17:857-872) Table I: 81/263 -> 0.2553 to 0.3662 (Wilson score)
    lo, hi = wilson_ci(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    lo, hi = wilson_ci(0, 20)
    assert lo == 0 and hi == pytest.approx(0.1611, abs=1e-4)
    k, n = np.array([0, 3, 10, 50]), np.array([10, 17, 10, 400])
    lo, hi = wilson_ci(k, n, alpha=0.1)
    slo, shi = proportion_confint(k, n, alpha=0.1, method="wilson")
    np.testing.assert_allclose(lo, slo, atol=1e-12)
    np.testing.assert_allclose(hi, shi, atol=1e-12)
    assert all(np.isnan(wilson_ci(0, 0)))


def test_bad_counts():
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_ci(5, 3)
    with pytest.raises(ValueError, match="k1, n1"):
        newcombe_diff_ci(-1, 3, 1, 3)


def test_two_proportion_pvalue_is_pearson_chi_square():
    from scipy.stats import chi2_contingency

    for k1, n1, k2, n2 in [(56, 70, 48, 80), (30, 100, 45, 110), (5, 46, 20, 138)]:
        table = np.array([[k1, n1 - k1], [k2, n2 - k2]])
        p = chi2_contingency(table, correction=False)[1]
        assert two_proportion_pvalue(k1, n1, k2, n2) == pytest.approx(p, rel=1e-10)
    assert two_proportion_pvalue(0, 10, 0, 20) == 1.0
    assert np.isnan(two_proportion_pvalue(0, 0, 1, 2))


def test_frequency_matches_statsmodels_quasi_poisson():
    rng = np.random.default_rng(4)
    y = rng.negative_binomial(0.5, 0.5 / (0.5 + 0.8), size=400)  # mean 0.8, over-dispersed
    rate, lo, hi = frequency_per_100(y)
    fit = sm.GLM(y, np.ones((y.size, 1)), family=sm.families.Poisson()).fit(scale="X2")
    assert fit.scale > 1
    ci = np.exp(fit.conf_int()[0]) * 100
    assert rate == pytest.approx(100 * y.mean())
    assert lo == pytest.approx(ci[0], rel=1e-6) and hi == pytest.approx(ci[1], rel=1e-6)
    # wider than the plain Poisson interval
    pois = sm.GLM(y, np.ones((y.size, 1)), family=sm.families.Poisson()).fit()
    assert hi - lo > np.diff(np.exp(pois.conf_int()[0]) * 100)[0]


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.PerfectSeparationWarning")
def test_frequency_edge_cases():
    rate, lo, hi = frequency_per_100(np.zeros(50))
    assert rate == 0 and lo == 0 and hi == pytest.approx(100 * 3.6889 / 50, rel=1e-4)
    # under-dispersed data: dispersion floored at 1 (plain Poisson interval)
    y = np.ones(100)
    rate, lo, hi = frequency_per_100(y)
    pois = sm.GLM(y, np.ones((100, 1)), family=sm.families.Poisson()).fit()
    np.testing.assert_allclose([lo, hi], np.exp(pois.conf_int()[0]) * 100, rtol=1e-6)
    assert all(np.isnan(frequency_per_100([])))
    assert frequency_per_100(pd.Series([1.0, np.nan, 3.0]))[0] == pytest.approx(200.0)
