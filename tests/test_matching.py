"""evaluation.matching against R MatchIt 4.7.2 (fixtures in tests/results/matchit/, made by the R scripts there)."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.matching import MatchingError, match, weight

HERE = Path(__file__).parent / "results" / "matchit"
REF = json.loads((HERE / "reference.json").read_text())
MORE = json.loads((HERE / "more_reference.json").read_text())
FULL = ["age", "male", "prior", "drug", "norwich", "yarmouth"]


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return pd.read_csv(HERE / "synthetic_cohort.csv").set_index("id")


def _vars(formula: str) -> list[str]:
    rhs = formula.split("~")[-1]
    return [v.strip() for v in rhs.split("+") if v.strip()]


# With link="linear.logit" and integer age the linear predictor is equally spaced, so some treated units are
# exactly half-way between two controls; MatchIt's choice then rests on the last bit of its glm coefficients,
# which no other fit reproduces. Our fitted distances agree with MatchIt's to 1e-13 and the algorithm agrees
# exactly on MatchIt's own distances (test_algorithm_on_matchit_distances), but the full pipeline can differ
# in such float-rounding ties.
FLOAT_TIE_SPECS = {"linear_caliper_ratio_2"}


def _specs(more_only=False):
    if not more_only:
        for name in [k for k in REF if isinstance(REF[k], dict)]:
            yield pytest.param(REF[name], FULL, id=f"ref-{name}")
    for name in [k for k in MORE if isinstance(MORE[k], dict)]:
        marks = ()
        if name in FLOAT_TIE_SPECS and not more_only:
            # Not strict: whether we break this exact tie as MatchIt does depends on the last bit of both sides'
            # propensity scores (ours agree with R's to ~1e-15 here), so it may pass or fail with the summation order.
            marks = pytest.mark.xfail(reason="MatchIt breaks an exact tie in distance differences by float "
                                      "rounding of its own distances", strict=False)
        yield pytest.param(MORE[name], _vars(MORE[name]["formula"]), id=f"more-{name}", marks=marks)


def _run(cohort, spec, covs, distance=None):
    a = spec["args"] if isinstance(spec["args"], dict) else {}
    return match(cohort, "treat", covs, ratio=a.get("ratio", 1), replace=a.get("replace", False),
                 caliper=a.get("caliper"), std_caliper=a.get("std.caliper", True), link=a.get("link", "logit"),
                 order=a.get("m.order", "largest"), exact=_vars(a["exact"]) if "exact" in a else None,
                 distance=distance)


@pytest.mark.filterwarnings("ignore:exact=")
@pytest.mark.parametrize("spec,covs", list(_specs(more_only=True)))
def test_algorithm_on_matchit_distances(cohort, spec, covs):
    """Matching, weights, subclasses, balance and effect on MatchIt's exact distances (bit for bit)."""
    dist = np.array([float.fromhex(x) for x in spec["distance_hex"]])
    _check(_run(cohort, spec, covs, distance=dist), spec)


@pytest.mark.filterwarnings("ignore:exact=")
@pytest.mark.parametrize("spec,covs", list(_specs()))
def test_agrees_with_matchit(cohort, spec, covs):
    """Full pipeline: our propensity score (statsmodels), matching, balance, effect."""
    m = _run(cohort, spec, covs)
    _check(m, spec)


def _check(m, spec):
    # distance (propensity score or its logit)
    ref_d = pd.Series(spec["distance"])[m.data.index]
    np.testing.assert_allclose(m.distance.to_numpy(), ref_d.to_numpy(), rtol=0, atol=1e-8)
    # matched set, weights, subclasses (MatchIt's own labels)
    md = m.matched
    ref_w = pd.Series(spec["weights"], dtype=float)
    assert sorted(md.index) == sorted(ref_w.index)
    np.testing.assert_allclose(md["weight"].to_numpy(), ref_w[md.index].to_numpy(), rtol=0, atol=1e-12)
    if spec.get("subclass"):
        ref_s = pd.Series(spec["subclass"]).astype(int)
        assert (md["subclass"] == ref_s[md.index]).all()
    else:
        assert "subclass" not in md.columns
    if "match_matrix" in spec:
        ours = {t: sorted(c) for t, c in m.match_matrix.items() if c}
        theirs = {t: sorted(c) for t, c in spec["match_matrix"].items() if c}
        assert ours == theirs
    # balance
    bal = m.balance()
    for col, key in [("smd_before", "smd_before"), ("smd_after", "smd_after"), ("var_ratio_after", "var_ratio_after")]:
        ref = pd.Series({k: (np.nan if v is None else v) for k, v in spec[key].items()}, dtype=float)
        ours = bal.loc[ref.index, col]
        np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-6, equal_nan=True)
    if "nn" in spec:
        nn = m.sample_sizes()
        for lab, i in [("All", 1), ("Matched", 3), ("Unmatched", 4), ("Discarded", 5)]:
            assert nn.loc[lab, "control"] == spec["nn"]["Control"][i]
            assert nn.loc[lab, "treated"] == spec["nn"]["Treated"][i]
        assert nn.loc["Matched (ESS)", "control"] == pytest.approx(spec["nn"]["Control"][2], abs=1e-8)
    # effect: estimate 1e-6, SE 1e-4 (in fact both agree to ~1e-12)
    e = m.effect("reoffended")
    assert abs(e.estimate - spec["effect"]["estimate"]) < 1e-6
    assert abs(e.se - spec["effect"]["se"]) < 1e-4


def test_max_differences_are_tiny(cohort):
    """Report-level check: over all 20 specs the estimate and SE agree with MatchIt to 1e-10."""
    import warnings
    worst_est = worst_se = 0.0
    for p in _specs():
        spec, covs = p.values
        if spec.get("formula") and p.id.removeprefix("more-") in FLOAT_TIE_SPECS:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = _run(cohort, spec, covs).effect("reoffended")
        worst_est = max(worst_est, abs(e.estimate - spec["effect"]["estimate"]))
        worst_se = max(worst_se, abs(e.se - spec["effect"]["se"]))
    print(f"max |estimate - MatchIt| = {worst_est:.1e}, max |SE - MatchIt| = {worst_se:.1e}")
    assert worst_est < 1e-10 and worst_se < 1e-10


def test_effect_interface_binary(cohort):
    e = match(cohort, "treat", FULL).effect("reoffended")
    assert e.outcome_type == "binary"
    assert {"risk_ratio", "odds_ratio"} <= set(e.ratios)
    rr, lo, hi, p = e.ratios["risk_ratio"]
    assert lo < rr < hi and rr == pytest.approx(e.mean_treated / e.mean_control)
    assert e.ci_low < e.estimate < e.ci_high
    f = e.to_frame()
    assert list(f.index) == ["difference", "risk_ratio", "odds_ratio"]


def test_count_outcome_gets_rate_ratio(cohort):
    d = cohort.assign(count=(cohort["prior"] + cohort["reoffended"]).astype(int))
    e = match(d, "treat", ["age", "male", "drug"]).effect("count")
    assert e.outcome_type == "count" and "rate_ratio" in e.ratios


def test_summary_and_plots(cohort):
    import matplotlib
    matplotlib.use("Agg")
    m = match(cohort, "treat", FULL, caliper=0.2)
    s = m.summary()
    assert isinstance(s, pd.DataFrame) and {"smd_before", "smd_after", "balanced"} <= set(s.columns)
    assert max(len(line) for line in s.to_string().splitlines()) <= 100
    assert repr(m).startswith("<MatchedDesign nearest 1:1 on glm, ATT:") and "\n" not in repr(m)
    assert m.plot_ecdf("age") is not None and m.plot_qq("age") is not None
    assert m.plot_balance() is not None and m.plot_overlap() is not None
    bal = m.balance()
    assert {"smd_before", "smd_after", "var_ratio_before", "var_ratio_after"} <= set(bal.columns)
    assert "sample_sizes" in bal.attrs
    un = m.unmatched
    assert len(un) + len(m.matched) == len(cohort) and (un["exclusion_reason"] == "not matched").all()


def test_ipw_design_same_interface(cohort):
    w = weight(cohort, "treat", FULL)
    bal = w.balance()
    assert (bal["smd_after"].abs() < 0.05).all()  # ATT odds weights balance the means closely
    e = w.effect("reoffended")
    assert np.isfinite(e.se) and e.se_type == "HC3"
    assert (w.matched["weight"][w.matched["treat"] == 1] == 1).all()


def test_categorical_covariate(cohort):
    d = cohort.assign(area=np.where(cohort["norwich"] == 1, "Norwich", np.where(cohort["yarmouth"] == 1, "Yarmouth", "Other")))
    m = match(d, "treat", ["age", "male", "prior", "drug", "area"])
    ref = match(cohort, "treat", FULL)
    np.testing.assert_allclose(m.distance, ref.distance, atol=1e-8)
    assert {"areaNorwich", "areaOther", "areaYarmouth"} <= set(m.balance().index)


# ---------------------------------------------------------------------------------------------- errors

def test_error_treatment_not_binary(cohort):
    d = cohort.copy()
    d.loc[d.index[:3], "treat"] = 2
    with pytest.raises(MatchingError, match=r"'treat' must be 0/1; 3 row"):
        match(d, "treat", FULL)


def test_error_missing_covariates(cohort):
    d = cohort.copy().astype({"age": float})
    d.loc[d.index[[1, 5]], "age"] = np.nan
    d.loc[d.index[5], "prior"] = np.nan
    with pytest.raises(MatchingError, match=r"2 row\(s\).*\['age', 'prior'\]"):
        match(d, "treat", FULL)


def test_error_constant_in_one_group(cohort):
    d = cohort.copy()
    d.loc[d["treat"] == 1, "drug"] = 1
    with pytest.raises(MatchingError, match=r"'drug' is constant .* treated"):
        match(d, "treat", FULL)


@pytest.mark.filterwarnings("ignore:propensity model")
def test_error_perfect_separation_or_no_overlap(cohort):
    d = cohort.copy()
    d["score"] = np.where(d["treat"] == 1, 10.0, 0.0) + np.random.default_rng(1).normal(size=len(d))
    with pytest.raises(MatchingError, match=r"separat|overlap"):
        match(d, "treat", ["score", "age"])


def test_error_too_few_controls(cohort):
    with pytest.raises(MatchingError, match=r"fewer controls \(1353\) than ratio x treated"):
        match(cohort, "treat", FULL, ratio=4)


def test_error_missing_column(cohort):
    with pytest.raises(MatchingError, match=r"no column"):
        match(cohort, "treat", ["age", "nope"])


# ------------------------------------------------------------------------------ algorithm properties

def _brute_force(d, t, order):
    """O(n1 * n0) reference for 1:1 without replacement, no ties (continuous distance)."""
    used = np.zeros(len(d), bool)
    out = {}
    ti = np.flatnonzero(t == 1)
    for k in order:
        i = ti[k]
        cand = np.flatnonzero((t == 0) & ~used)
        if cand.size == 0:
            break
        j = cand[np.argmin(np.abs(d[cand] - d[i]))]
        used[j] = True
        out[i] = j
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_union_find_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 600
    x = rng.normal(size=n)
    t = (rng.random(n) < 0.3).astype(int)
    dist = rng.random(n)
    data = pd.DataFrame({"treat": t, "x": x})
    m = match(data, "treat", ["x"], distance=dist)
    order = np.argsort(-dist[t == 1], kind="stable")
    bf = _brute_force(dist, t, order)
    ours = {data.index.get_loc(k): data.index.get_loc(v[0]) for k, v in m.match_matrix.items() if v}
    assert ours == bf


def test_partial_sort_port_matches_stl_semantics():
    from evaluation.matching._nn import _partial_sort
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = rng.integers(2, 9)
        k = rng.integers(1, n)
        key = rng.integers(0, 3, size=n).astype(float)
        idx = np.arange(n)
        _partial_sort(idx, key, k)
        # the first k are the k smallest keys, in non-decreasing order
        assert list(key[idx[:k]]) == sorted(key)[:k]
        assert sorted(idx) == list(range(n))


def test_partial_sort_port_equals_libstdcxx():
    """Exact permutation of g++'s std::partial_sort (fixture from partial_sort_cases.cpp), ties included."""
    from evaluation.matching._nn import _partial_sort
    cases = json.loads((HERE / "partial_sort_cases.json").read_text())
    for c in cases:
        key = np.array(c["key"], dtype=float)
        idx = np.arange(len(key))
        _partial_sort(idx, key, c["k"])
        assert list(idx) == c["ind"], c


def test_glm_path_equals_statsmodels_and_r(cohort):
    """R's glm.fit path: the MLE up to glm's convergence rule, and R's own coefficients on the fixture data."""
    import statsmodels.api as sm
    from evaluation.matching.distance import _glm_logit
    rng = np.random.default_rng(5)
    n = 300_000
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.random(n) < 0.3, rng.poisson(2, n)]).astype(float)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-4 + 0.5 * X[:, 1] + 0.8 * X[:, 2] - 0.2 * X[:, 3])))).astype(np.int8)
    ours, it = _glm_logit(X, y, chunk=70_000)
    ref = sm.Logit(y.astype(float), X).fit(method="newton", disp=0, tol=1e-12).params
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-7)  # glm stops at a 1e-8 change in deviance
    assert 3 <= it <= 25
    # chunks are summed in parallel threads but in a fixed order: bit-identical run to run
    assert np.array_equal(ours, _glm_logit(X, y, chunk=70_000)[0])
    # on the fixture cohort the distances are MatchIt's to ~1e-15
    spec = MORE["ties_default"]
    m = match(cohort, "treat", _vars(spec["formula"]))
    r = np.array([float.fromhex(x) for x in spec["distance_hex"]])
    assert np.max(np.abs(m.distance.to_numpy() - r)) < 1e-13


# ------------------------------------------------------------------ calibration on the synthetic world

INDIVIDUAL = ["pathways-out", "family-support", "pathway-out-adder", "wonder-plus"]


@pytest.mark.slow
def test_recovers_true_effect_in_synthetic_world(small_world, small_world_tables):
    """Matched ATT on one-year proven reoffending vs the generator's true ATT (truth.json), per individual
    programme, using the programme's matching configuration. Selection in the synthetic world is on observables
    only, so the matched estimate is unbiased: each 95% CI should cover the truth (a fixed seed, so the test is
    deterministic); as a guard against an unlucky draw we require |estimate - truth| < 3 SE for every programme
    and coverage for at least 3 of the 4."""
    cohort_mod = pytest.importorskip("evaluation.cohort")
    from evaluation.config import load_programme
    from evaluation.outcomes import proven_reoffending

    meta = json.loads((small_world / "meta.json").read_text())
    truth = json.loads((small_world / "truth.json").read_text())["programmes"]
    world = small_world_tables  # build_cohort takes the tables as a dict too
    covered = 0
    for pid in INDIVIDUAL:
        prog = load_programme(pid)
        cohort = cohort_mod.build_cohort(world, prog)
        out = proven_reoffending(cohort.data, world["offences"], extract_date=meta["extract_date"])
        data = cohort.data.join(out[["eligible", "reoffended"]])
        data = data[data["eligible"]].astype({"reoffended": int})
        cfg = prog.matching
        # a covariate constant within a group (e.g. fixed by the target group) cannot enter the propensity model
        covs = [c for c in cfg.get("covariates", ["age", "prior_offences", "drug_misuse"])
                if data.groupby("treat")[c].nunique().min() > 1]
        m = match(data, "treat", covs, ratio=int(cfg.get("ratio", 1)), replace=bool(cfg.get("replace", False)),
                  caliper=cfg.get("caliper"))
        e = m.effect("reoffended")
        true = truth[pid]["att_risk_difference"]
        print(f"{pid}: estimate {e.estimate:+.3f} (95% CI {e.ci_low:+.3f} to {e.ci_high:+.3f}), truth {true:+.3f}")
        assert abs(e.estimate - true) < 3 * e.se, pid
        covered += e.ci_low <= true <= e.ci_high
    assert covered >= 3


def test_random_order_is_reproducible_with_seed(cohort):
    a = match(cohort, "treat", FULL, order="random", random_state=7)
    b = match(cohort, "treat", FULL, order="random", random_state=7)
    assert a.match_matrix == b.match_matrix
    assert len(a.matched) == len(match(cohort, "treat", FULL).matched)


def test_error_duplicate_index(cohort):
    d = pd.concat([cohort, cohort.iloc[:2]])
    with pytest.raises(MatchingError, match="unique"):
        match(d, "treat", FULL)


def test_exact_on_string_column_and_discarded_rows(cohort):
    d = cohort.assign(area=np.where(cohort["norwich"] == 1, "Norwich", "Elsewhere"))
    # a stratum with treated but no controls is discarded and reported
    d.loc[(d["area"] == "Elsewhere") & (d["male"] == 0) & (d["treat"] == 0), "treat"] = 1
    d["stratum"] = d["area"] + np.where(d["male"] == 1, "-M", "-F")
    m = match(d, "treat", ["age", "prior", "drug"], exact="stratum")
    un = m.unmatched
    assert (un.loc[un["stratum"] == "Elsewhere-F", "exclusion_reason"].str.startswith("no units")).all()
    md = m.matched
    assert (md.groupby("subclass")["stratum"].nunique() == 1).all()


def test_aliased_covariate_is_dropped_like_glm(cohort):
    """norwich + yarmouth + elsewhere == 1: R's glm gives 'elsewhere' an NA coefficient; so do we (with a warning)."""
    d = cohort.assign(elsewhere=1 - cohort["norwich"] - cohort["yarmouth"])
    with pytest.warns(UserWarning, match="elsewhere"):
        m = match(d, "treat", FULL + ["elsewhere"])
    np.testing.assert_allclose(m.distance, match(cohort, "treat", FULL).distance, atol=1e-12)
    assert "elsewhere" in m.balance().index


@pytest.mark.slow
def test_coverage_over_synthetic_worlds(tmp_path):
    """Small simulation (12 synthetic worlds, scale 0.2): for each individual programme the matched estimate is
    unbiased for the true ATT and its 95% CI covers it in most worlds (measured: coverage 0.83-1.00; bias within
    +-0.021). Pathways Out has ~40 participants, so its cluster-robust SE is a little small (mean SE 0.076 vs
    spread 0.097)."""
    import warnings
    pytest.importorskip("evaluation.cohort")
    from evaluation.cohort import build_cohort
    from evaluation.config import load_programme
    from evaluation.outcomes import proven_reoffending
    from evaluation.synth import generate_world

    res = {p: [] for p in INDIVIDUAL}
    for seed in range(1, 13):
        out = tmp_path / f"w{seed}"
        tabs = generate_world(seed, out=out, scale=0.2)
        meta = json.loads((out / "meta.json").read_text())
        truth = json.loads((out / "truth.json").read_text())["programmes"]
        for pid in INDIVIDUAL:
            prog = load_programme(pid)
            co = build_cohort(tabs, prog)
            o = proven_reoffending(co.data, tabs["offences"], extract_date=meta["extract_date"])
            d = co.data.join(o[["eligible", "reoffended"]])
            d = d[d["eligible"]].astype({"reoffended": int})
            cfg = prog.matching
            covs = [c for c in cfg["covariates"] if d.groupby("treat")[c].nunique().min() > 1]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                e = match(d, "treat", covs, ratio=int(cfg.get("ratio", 1)), replace=bool(cfg.get("replace", False)),
                          caliper=cfg.get("caliper")).effect("reoffended")
            t = truth[pid]["att_risk_difference"]
            res[pid].append((e.estimate - t, e.ci_low <= t <= e.ci_high))
    for pid, v in res.items():
        bias = np.array([b for b, _ in v])
        cover = np.mean([c for _, c in v])
        print(f"{pid}: bias {bias.mean():+.3f} (sd {bias.std():.3f}), coverage {cover:.2f}")
        assert abs(bias.mean()) < 3 * bias.std() / np.sqrt(len(bias)) + 0.01, pid
        assert cover >= 0.75, pid


# ------------------------------------------------------------------ lalonde: methods, estimands, g-computation
METHODS_REF = json.loads((HERE / "methods_reference.json").read_text())
LALONDE_COVS = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]


@pytest.fixture(scope="module")
def lalonde() -> pd.DataFrame:
    return pd.read_csv(HERE / "lalonde.csv").set_index("id")


def _lalonde_design(lalonde, spec):
    a = dict(spec["args"])
    covs = _vars(spec["formula"])
    kw = {k: a[k] for k in ("method", "ratio", "replace", "estimand", "discard", "subclass") if k in a}
    return match(lalonde, "treat", covs, **kw)


@pytest.mark.filterwarnings("ignore:due to discreteness", "ignore:fewer units to match")
@pytest.mark.parametrize("name", [k for k in METHODS_REF if isinstance(METHODS_REF[k], dict)])
def test_methods_agree_with_matchit(lalonde, name):
    """Weights, subclasses, match matrix and balance equal MatchIt 4.7.2's on lalonde (race as a factor)."""
    spec = METHODS_REF[name]
    m = _lalonde_design(lalonde, spec)
    if spec["distance"] is not None:
        np.testing.assert_allclose(m.distance.to_numpy(), spec["distance"], rtol=0, atol=1e-10)
    ref_w = pd.Series(spec["weights"], dtype=float)[m.data.index]
    np.testing.assert_allclose(m.weights.to_numpy(), ref_w.to_numpy(), rtol=0, atol=1e-12)
    if spec.get("subclass") is not None:
        ref_s = pd.Series({k: (np.nan if v is None else float(v)) for k, v in spec["subclass"].items()})[m.data.index]
        np.testing.assert_array_equal(m.subclass.to_numpy(), ref_s.to_numpy())
    if spec.get("match_matrix") is not None:
        ours = {str(t): sorted(map(str, c)) for t, c in m.match_matrix.items() if c}
        theirs = {t: sorted(c.values() if isinstance(c, dict) else c) for t, c in spec["match_matrix"].items() if c}
        assert ours == theirs
    bal = m.balance()
    for col in ("smd_after", "var_ratio_after", "ecdf_max_after", "ecdf_mean_after"):
        ref = pd.Series({k: (np.nan if v is None else v) for k, v in spec[col].items()}, dtype=float)
        ref = ref.drop([k for k in ref.index if k not in bal.index])
        if col.startswith("ecdf"):  # binary rows: MatchIt's bal1var drops the first unit (x[-t1]); cobalt does not
            ref = ref[[k for k in ref.index if bal.loc[k, "var_ratio_after"] == bal.loc[k, "var_ratio_after"]]]
        np.testing.assert_allclose(bal.loc[ref.index, col].to_numpy(), ref.to_numpy(), rtol=0, atol=1e-8,
                                   equal_nan=True, err_msg=col)


@pytest.mark.filterwarnings("ignore:due to discreteness", "ignore:fewer units to match")
@pytest.mark.parametrize("name", [k for k in METHODS_REF if isinstance(METHODS_REF[k], dict)
                                  and METHODS_REF[k]["effects"]])
def test_gcomputation_agrees_with_r(lalonde, name):
    """design.effect(outcome, adjust=...) equals lm/glm + sandwich + delta method in R (linear, logistic, Poisson)."""
    spec = METHODS_REF[name]
    m = _lalonde_design(lalonde, spec)
    for outcome, ref in spec["effects"].items():
        e = m.effect(outcome, adjust=LALONDE_COVS)
        assert e.estimate == pytest.approx(ref["estimate"], rel=1e-8, abs=1e-9)
        assert e.se == pytest.approx(ref["se"], rel=1e-6)
        assert e.mean_treated == pytest.approx(ref["mean_treated"], rel=1e-8)
        if "log_rr" in ref:
            name_rr = "risk_ratio" if outcome == "re78_pos" else "rate_ratio"
            rr, lo, hi, _ = e.ratios[name_rr]
            assert math.log(rr) == pytest.approx(ref["log_rr"], rel=1e-7, abs=1e-10)
            assert (math.log(hi) - math.log(lo)) / (2 * 1.959963984540054) == pytest.approx(ref["log_rr_se"], rel=1e-6)
        if "log_or" in ref:
            orr, lo, hi, _ = e.ratios["odds_ratio"]
            assert math.log(orr) == pytest.approx(ref["log_or"], rel=1e-7, abs=1e-10)
            assert (math.log(hi) - math.log(lo)) / (2 * 1.959963984540054) == pytest.approx(ref["log_or_se"], rel=1e-6)


def test_identical_rows_get_identical_scores(lalonde):
    m = match(lalonde, "treat", LALONDE_COVS, ratio=2)
    key = lalonde[LALONDE_COVS].astype(str).agg("|".join, axis=1)
    spread = m.distance.groupby(key.to_numpy()).agg(lambda s: s.max() - s.min())
    assert (spread == 0).all()


def test_single_covariate_string_is_one_column(lalonde):
    m = match(lalonde, "treat", "age")
    assert m.covariates == ["age"] and list(m.balance().index) == ["distance", "age"]


def test_method_and_estimand_errors(lalonde):
    with pytest.raises(MatchingError, match="estimand"):
        match(lalonde, "treat", LALONDE_COVS, estimand="ATE")
    with pytest.raises(MatchingError, match="method must be one of"):
        match(lalonde, "treat", LALONDE_COVS, method="genetic")
    for bad in (True, 0, 2.0):
        with pytest.raises(MatchingError, match="ratio must be a positive integer"):
            match(lalonde, "treat", LALONDE_COVS, ratio=bad)
    with pytest.raises(MatchingError, match="more than the number of rows"):
        match(lalonde, "treat", LALONDE_COVS, ratio=2 ** 63, replace=True)


def test_balance_thresholds_interactions_and_flags(lalonde):
    m = match(lalonde, "treat", LALONDE_COVS)
    b = m.balance(squares=True, interactions=True)
    assert "age²" in b.index and "age * educ" in b.index
    assert "racehispan * racewhite" not in b.index  # two levels of one factor
    assert (b["smd_balanced"] == (b["smd_after"].abs() <= 0.1)).all()
    assert b.loc["married", "var_ratio_balanced"] is pd.NA
    assert b.attrs["thresholds"] == {"smd": 0.1, "var_ratio": (0.5, 2.0)}


def test_adjusted_effect_repr_and_errors(lalonde):
    m = match(lalonde, "treat", LALONDE_COVS)
    e = m.effect("re78", adjust=True)
    assert e.adjusted_for == tuple(LALONDE_COVS) and "adjusted for 7" in repr(e)
    with pytest.raises(MatchingError, match="not in the data"):
        m.effect("re78", adjust=["nope"])
    with pytest.raises(MatchingError, match="outcome_type"):
        m.effect("re78", adjust=True, outcome_type="binary")


def test_warm_up_runs():
    from evaluation.matching.__main__ import warm
    assert warm() >= 0


# ---------------------------------------------------------------------------------------------------------------
# matching.adjust in a programme config: the headline effects are the g-computation ones
# ---------------------------------------------------------------------------------------------------------------
def _programme_with(adjust):
    import yaml

    from evaluation.config import parse_programme

    root = Path(__file__).parents[1] / "programmes"
    raw = yaml.safe_load((root / "wonder-plus.yaml").read_text())
    raw["matching"]["adjust"] = adjust
    raw["completers_analysis"] = False
    return parse_programme(raw, root / "wonder-plus.yaml")


def test_config_adjust_key_is_checked():
    from evaluation.config import ConfigError

    assert _programme_with("all").matching["adjust"] == "all"
    assert _programme_with(["age", "prior_offences"]).matching["adjust"] == ("age", "prior_offences")
    assert _programme_with(None).matching["adjust"] is None
    with pytest.raises(ConfigError, match=r"matching\.adjust.*'agee'.*did you mean 'age'"):
        _programme_with(["agee"])
    with pytest.raises(ConfigError, match=r"matching\.adjust"):
        _programme_with(True)


@pytest.fixture(scope="module")
def adjusted_evaluation(small_world_tables):
    import types

    from evaluation.estimates import evaluate_programme

    w = types.SimpleNamespace(**small_world_tables)
    w.extract_date = pd.Timestamp("2024-12-31").date()
    return evaluate_programme(w, _programme_with("all"))


def test_config_adjust_makes_the_headline_the_g_computation_estimate(adjusted_evaluation):
    ev = adjusted_evaluation
    covs = list(ev.effects["reoffended"].adjusted_for)
    assert covs and set(covs) <= set(ev.programme.matching["covariates"])
    for outcome, kind in (("reoffended", "binary"), ("reoffence_count", "count")):
        direct = ev.design.effect(outcome, adjust=covs, outcome_type=kind)
        got = ev.effects[outcome]
        assert got.adjusted_for == tuple(covs)
        assert got.estimate == pytest.approx(direct.estimate, abs=1e-12)
        assert got.se == pytest.approx(direct.se, abs=1e-12)
    assert sum("adjusted for" in n for n in ev.notes) == 1
    head = ev.headline_table()
    r = head.iloc[0]
    assert r["difference"] == pytest.approx(r["participants"] - r["comparison"])
    ev.results()  # publishable as before


def test_headline_effect_falls_back_to_unadjusted_with_a_note(cohort):
    from evaluation.matching import headline_effect

    d = match(cohort, "treat", FULL)
    plain = d.effect("reoffended")
    e, notes = headline_effect(d, "reoffended", adjust=None)  # no adjustment: the difference in means, no notes
    assert e.adjusted_for == () and notes == [] and e.estimate == plain.estimate
    e, notes = headline_effect(d, "reoffended", adjust=["age", "prior"])
    assert e.adjusted_for == ("age", "prior") and len(notes) == 1
    assert e.estimate == d.effect("reoffended", adjust=["age", "prior"]).estimate
    e, notes = headline_effect(d, "reoffended", adjust=["no_such_column"])
    assert e.adjusted_for == () and e.estimate == plain.estimate
    assert any("could not be fitted" in n and "unadjusted" in n for n in notes)


# ------------------------------------------------- lalonde: covariate distances, mahvars, antiexact, calipers
DIST_REF = json.loads((HERE / "distance_reference.json").read_text())
# mahvars with ratio 2: NSW79 is exactly as far from PSID412 as from PSID423 (ages 40 +/- 13, education 11 +/- 1);
# MatchIt's choice rests on the last bit of its transformed covariates (its scale(), solve() and chol()), which no
# other implementation reproduces. On MatchIt's own transformed covariates the algorithm agrees exactly
# (test_general_kernel_on_matchit_covariates).
DIST_FLOAT_TIES = {"mahvars_ratio_2"}


def _as_list(v):
    return [v] if isinstance(v, str) else list(v)


def _dist_kwargs(spec):
    a = spec["args"]
    kw = {k: a[k] for k in ("distance", "ratio", "replace", "estimand") if k in a}
    if "m.order" in a:
        kw["order"] = a["m.order"]
    for k in ("mahvars", "exact", "antiexact"):
        if k in a:
            kw[k] = _as_list(a[k])
    if "caliper" in a:
        kw["caliper"] = a["caliper"]["distance"] if set(a["caliper"]) == {"distance"} else a["caliper"]
    if "std.caliper" in a:
        kw["std_caliper"] = a["std.caliper"]
    return kw


def _same_matches(m, spec):
    ours = {str(t): sorted(map(str, c)) for t, c in m.match_matrix.items() if c}
    theirs = {t: sorted(x for x in c if x is not None) for t, c in spec["match_matrix"].items()}
    return ours, {t: c for t, c in theirs.items() if c}


@pytest.mark.filterwarnings("ignore:not all treated units", "ignore:fewer control units")
@pytest.mark.parametrize("name", [
    pytest.param(k, marks=pytest.mark.xfail(reason="float-rounding tie in MatchIt's transformed covariates",
                                            strict=False)) if k in DIST_FLOAT_TIES else k
    for k in DIST_REF if isinstance(DIST_REF[k], dict)])
def test_covariate_distances_agree_with_matchit(lalonde, name):
    """distance='mahalanobis'|'robust_mahalanobis'|'euclidean'|'scaled_euclidean', mahvars, antiexact and
    per-covariate calipers: match matrix, weights and subclasses equal MatchIt 4.7.2's on lalonde."""
    spec = DIST_REF[name]
    m = match(lalonde, "treat", _vars(spec["formula"]), **_dist_kwargs(spec))
    ours, theirs = _same_matches(m, spec)
    assert ours == theirs
    ref_w = pd.Series(spec["weights"], dtype=float)[m.data.index]
    np.testing.assert_allclose(m.weights.to_numpy(), ref_w.to_numpy(), rtol=0, atol=1e-12)
    if spec.get("subclass") is not None:
        ref_s = pd.Series({k: (np.nan if v is None else float(v)) for k, v in spec["subclass"].items()})[m.data.index]
        np.testing.assert_array_equal(m.subclass.to_numpy(), ref_s.to_numpy())
    if spec["args"].get("distance") in ("mahalanobis", "robust_mahalanobis", "euclidean", "scaled_euclidean"):
        assert spec["args"]["distance"] in repr(m)
        m.balance()  # no propensity score: the balance table still works


@pytest.mark.parametrize("name", ["mahalanobis", "robust_mahalanobis", "mahvars_ratio_2"])
def test_covariate_transform_equals_matchit(lalonde, name):
    from evaluation.matching.distance import scaled_covariates

    spec = DIST_REF[name]
    a = spec["args"]
    covs = _as_list(a["mahvars"]) if "mahvars" in a else _vars(spec["formula"])
    ours = scaled_covariates(lalonde, covs, a.get("distance", "mahalanobis"), lalonde["treat"].to_numpy())
    theirs = np.array(spec["mahcovs"], dtype=float)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_general_kernel_on_matchit_covariates(lalonde):
    """On MatchIt's own transformed covariates the matches are MatchIt's, float ties included."""
    from evaluation.matching import fit_propensity
    from evaluation.matching.nearest import nearest_general

    spec = DIST_REF["mahvars_ratio_2"]
    ps, _ = fit_propensity(lalonde, "treat", LALONDE_COVS)
    d = ps.to_numpy()
    tt = lalonde["treat"].to_numpy().astype(np.int8)
    _, _, mm, _, _ = nearest_general(lalonde, tt, d, mah=np.array(spec["mahcovs"]), ratio=2,
                                     caliper_dist=0.25 * np.std(d, ddof=1))
    idx = lalonde.index
    ours = {idx[t]: sorted(idx[j] for j in js) for t, js in mm.items() if js}
    theirs = {t: sorted(x for x in c if x is not None) for t, c in spec["match_matrix"].items()}
    assert ours == {t: c for t, c in theirs.items() if c}


@pytest.mark.filterwarnings("ignore:fewer control units", "ignore:not all treated units")
@pytest.mark.parametrize("ratio, replace, caliper", [(1, False, None), (2, False, 0.2), (1, True, 0.1),
                                                     (3, True, None), (2, False, None)])
def test_general_kernel_equals_fast_kernel(cohort, ratio, replace, caliper):
    """The literal port (used for covariate distances, antiexact, covariate calipers) and the fast propensity-score
    kernel give the same matches where both apply."""
    from evaluation.matching.nearest import nearest_general, nearest_on_distance

    d = match(cohort, "treat", FULL).distance.to_numpy()
    tt = cohort["treat"].to_numpy().astype(np.int8)
    cal = None if caliper is None else caliper * np.std(d, ddof=1)
    a = nearest_on_distance(cohort, tt, d, ratio=ratio, replace=replace, caliper=cal, std_caliper=False)
    b = nearest_general(cohort, tt, d, ratio=ratio, replace=replace, caliper_dist=cal)
    assert {k: sorted(v) for k, v in a[2].items()} == {k: sorted(v) for k, v in b[2].items()}
    np.testing.assert_allclose(a[0], b[0], rtol=0, atol=1e-12)


def test_covariate_distance_arguments_are_checked(lalonde):
    covs = ["age", "educ", "re74"]
    with pytest.raises(MatchingError, match="caliper must name a covariate"):
        match(lalonde, "treat", covs, distance="mahalanobis", caliper=0.2)
    with pytest.raises(MatchingError, match="mahvars needs a propensity score"):
        match(lalonde, "treat", covs, distance="mahalanobis", mahvars=["age"])
    with pytest.raises(MatchingError, match="order='largest' needs a propensity score"):
        match(lalonde, "treat", covs, distance="mahalanobis", order="largest")
    with pytest.raises(MatchingError, match=r"caliper\['race'\]: calipers need a numeric column"):
        match(lalonde, "treat", covs, caliper={"race": 1})
    with pytest.raises(MatchingError, match=r"antiexact: no column"):
        match(lalonde, "treat", covs, antiexact=["nope"])
    with pytest.raises(MatchingError, match="for method='nearest'"):
        match(lalonde, "treat", covs, method="subclass", distance="mahalanobis")
    with pytest.raises(MatchingError, match="distance must be"):
        match(lalonde, "treat", covs, distance="manhattan")


# ------------------------------------------------------------------------- lalonde: coarsened exact matching
CEM_REF = json.loads((HERE / "cem_reference.json").read_text())


def _cem_kwargs(spec):
    a = spec["args"] if isinstance(spec["args"], dict) else {}
    kw = {k: a[k] for k in ("estimand", "k2k") if k in a}
    if "k2k.method" in a:
        kw["k2k_method"] = a["k2k.method"]
    if "cutpoints" in a:
        c = a["cutpoints"]
        kw["cutpoints"] = {k: (v[0] if len(v) == 1 else v) for k, v in c.items()} if isinstance(c, dict) else c
    return kw


@pytest.mark.parametrize("name", [k for k in CEM_REF if isinstance(CEM_REF[k], dict)])
def test_cem_agrees_with_matchit(lalonde, name):
    """method='cem': strata (subclasses), weights and, with k2k, the match matrix equal MatchIt 4.7.2's."""
    spec = CEM_REF[name]
    m = match(lalonde, "treat", LALONDE_COVS, method="cem", **_cem_kwargs(spec))
    ref_w = pd.Series(spec["weights"], dtype=float)[m.data.index]
    np.testing.assert_allclose(m.weights.to_numpy(), ref_w.to_numpy(), rtol=0, atol=1e-12)
    ref_s = pd.Series({k: (np.nan if v is None else float(v)) for k, v in spec["subclass"].items()})[m.data.index]
    np.testing.assert_array_equal(m.subclass.to_numpy(), ref_s.to_numpy())
    if spec.get("match_matrix") is not None:
        ours, theirs = _same_matches(m, spec)
        assert ours == theirs
    assert "cem" in repr(m)
    m.balance()


def test_cem_arguments_are_checked(lalonde):
    with pytest.raises(MatchingError, match="binning rule"):
        match(lalonde, "treat", LALONDE_COVS, method="cem", cutpoints="nope")
    with pytest.raises(MatchingError, match="not among the covariates"):
        match(lalonde, "treat", LALONDE_COVS, method="cem", cutpoints={"re78": 3})
    with pytest.raises(MatchingError, match="no stratum has both"):
        match(lalonde.assign(re78=np.arange(len(lalonde))), "treat", ["re78"], method="cem", cutpoints=0)
    with pytest.raises(MatchingError, match="ATT or ATC"):
        match(lalonde, "treat", LALONDE_COVS, method="cem", k2k=True, estimand="ATE")


# -------------------------------------------------------------- optimal k:1 and full matching (brute force)
def _small(seed, n1, n0):
    rng = np.random.default_rng(seed)
    return rng.random(n1), rng.random(n0)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("ratio", [1, 2])
def test_optimal_pairs_are_optimal_by_brute_force(seed, ratio):
    import itertools

    from evaluation.matching.optimal import optimal_pairs

    n1, n0 = (3, 6) if ratio == 1 else (2, 5)
    a, b = _small(seed, n1, n0)
    d = np.concatenate([a, b])
    focal = np.r_[np.ones(n1, int), np.zeros(n0, int)]
    mm = optimal_pairs(focal, d, None, ratio=ratio)
    assert (mm >= n1).all() and len(set(mm.ravel())) == n1 * ratio  # each focal unit gets ratio distinct controls
    ours = sum(abs(d[i] - d[j]) for i in range(n1) for j in mm[i])
    best = min(sum(abs(a[i // ratio] - b[j]) for i, j in enumerate(perm))
               for perm in itertools.permutations(range(n0), n1 * ratio))
    assert ours == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_full_matching_is_optimal_by_brute_force(seed):
    import itertools

    from evaluation.matching.optimal import full_matching

    n1, n0 = (3, 4) if seed % 2 else (4, 3)
    a, b = _small(seed, n1, n0)
    d = np.concatenate([a, b])
    tt = np.r_[np.ones(n1, int), np.zeros(n0, int)]
    codes = full_matching(tt, d, None)
    assert (codes >= 0).all()  # every unit is matched
    ours = 0.0
    for s in np.unique(codes):
        t, c = np.flatnonzero((codes == s) & (tt == 1)), np.flatnonzero((codes == s) & (tt == 0))
        assert len(t) >= 1 and len(c) >= 1 and min(len(t), len(c)) == 1  # one of one group, >= 1 of the other
        ours += sum(abs(d[i] - d[j]) for i in t for j in c)
    # brute force: the cheapest set of treated-control edges covering every unit (stars are such covers)
    edges = [(i, j) for i in range(n1) for j in range(n0)]
    best = np.inf
    for k in range(max(n1, n0), len(edges) + 1):
        for sub in itertools.combinations(edges, k):
            if {i for i, _ in sub} == set(range(n1)) and {j for _, j in sub} == set(range(n0)):
                best = min(best, sum(abs(a[i] - b[j]) for i, j in sub))
    assert ours == pytest.approx(best, abs=1e-12)


@pytest.mark.filterwarnings("ignore:fewer units to match")
def test_optimal_and_full_on_lalonde(lalonde):
    near = match(lalonde, "treat", LALONDE_COVS)
    opt = match(lalonde, "treat", LALONDE_COVS, method="optimal")
    d = opt.distance
    total = (lambda m: sum(abs(d[t] - d[c]) for t, cs in m.match_matrix.items() for c in cs))
    assert total(opt) <= total(near) + 1e-12
    assert len(opt.match_matrix) == 185 and all(len(c) == 1 for c in opt.match_matrix.values())
    full = match(lalonde, "treat", LALONDE_COVS, method="full")
    assert (full.weights > 0).all()  # full matching keeps every unit
    assert "full" in repr(full) and full.se_type == "cluster"
    e = full.effect("re78")
    assert np.isfinite(e.estimate) and e.se > 0
    mah = match(lalonde, "treat", LALONDE_COVS, method="optimal", distance="mahalanobis", ratio=2)
    assert all(len(c) == 2 for c in mah.match_matrix.values())
    ate = match(lalonde, "treat", LALONDE_COVS, method="full", estimand="ATE", exact="married")
    assert ate.estimand == "ATE"
    with pytest.raises(MatchingError, match="calipers and replacement"):
        match(lalonde, "treat", LALONDE_COVS, method="optimal", caliper=0.1)
    with pytest.raises(MatchingError, match="lower ratio"):
        match(lalonde, "treat", LALONDE_COVS, method="optimal", ratio=3)


def test_sort_split_is_numpy_stable_sort():
    """The radix sort behind nearest-neighbour matching gives R's order(): increasing, ties in data order
    (-0.0 and 0.0 tie), infinities at the ends; sort_split gives numpy's ranks of the treated and the sorted
    controls."""
    from evaluation.matching._nn import sort_split

    rng = np.random.default_rng(7)
    cases = [rng.normal(size=1000) * 10.0 ** rng.integers(-300, 300, size=1000),
             rng.choice(np.array([-1.5, -0.0, 0.0, 5e-324, -5e-324, 2.0, np.inf, -np.inf]), 2000),
             np.round(rng.random(5000), 2), np.round(rng.random(3000), 3), rng.random(4000) * 1e-3,
             np.zeros(3), np.array([1.0]), np.array([0.5, 0.25]),
             np.r_[np.round(rng.random(20000), 3), 1e300, np.round(rng.random(5000), 1)],  # large buckets
             rng.random(300_000) * 1e-3]
    for d in cases:
        n = len(d)
        for tt, disc in (((rng.random(n) < 0.2).astype(np.int8), rng.random(n) < 0.1),
                         ((np.arange(n) % 2).astype(np.int8), np.zeros(n, dtype=bool))):
            t_rank, c_idx, c_rank, c_dist = sort_split(d, tt, disc)
            order = np.argsort(d, kind="stable")
            expected_rank = np.empty(n, dtype=np.int64)
            expected_rank[order] = np.arange(n)
            np.testing.assert_array_equal(t_rank, expected_rank[tt == 1])
            np.testing.assert_array_equal(c_idx, order[((tt == 0) & ~disc)[order]])
            np.testing.assert_array_equal(c_rank, expected_rank[c_idx])
            np.testing.assert_array_equal(c_dist, d[c_idx])
