"""evaluation.survival against R survival 3.5.3 fixtures (tests/results/survival/, made by
make_survival_reference.R there; CI has no R, so the tests read the JSON only)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation import survival as sv

HERE = Path(__file__).parent / "results" / "survival"
R = json.loads((HERE / "survival_reference.json").read_text())
DATA = pd.read_csv(HERE / "reoffence.csv")
LUNG = pd.read_csv(HERE / "lung.csv")
COVS = ["treat", "age", "male", "prior"]

KM_CASES = {
    "unweighted_all": {},
    "unweighted_group": {"groups": "treat"},
    "weighted_all": {"weights": "weight"},
    "weighted_group": {"groups": "treat", "weights": "weight"},
    "cluster_group": {"groups": "treat", "cluster": "subclass"},
    "weighted_cluster_group": {"groups": "treat", "weights": "weight", "cluster": "subclass"},
}
COX_CASES = {
    "efron": {},
    "breslow": {"ties": "breslow"},
    "efron_cluster": {"cluster": "subclass"},
    "breslow_cluster": {"ties": "breslow", "cluster": "subclass"},
    "efron_weighted": {"weights": "weight"},
    "breslow_weighted": {"ties": "breslow", "weights": "weight"},
    "efron_weighted_cluster": {"weights": "weight", "cluster": "subclass"},
    "efron_robust_nocluster": {"robust": True},
}


def arr(x):
    return np.array([np.nan if v is None else v for v in np.atleast_1d(x)], dtype=float)


def close(a, b, tol):
    a, b = np.asarray(a, float), arr(b)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b)), (a, b)
    ok = ~np.isnan(a)
    assert np.max(np.abs(a[ok] - b[ok]), initial=0.0) <= tol, np.max(np.abs(a[ok] - b[ok]))


def km_fit(case):
    kw = {k: DATA[v] for k, v in KM_CASES[case].items()}
    return sv.kaplan_meier(DATA["duration"], DATA["event"], **kw)


def test_data_has_ties_and_noninteger_weights():
    ev = DATA[DATA.event == 1]
    assert ev.duration.value_counts().max() >= 3
    assert (DATA.weight != np.floor(DATA.weight)).any()


@pytest.mark.parametrize("case", KM_CASES)
def test_km_curve_matches_survfit(case):
    km = km_fit(case)
    r = R["km"][case]["curve"]
    tab = km.table
    assert list(tab["group"].astype(str)) == [str(g) for g in r["group"]]
    close(tab["time"], r["time"], 0)
    close(tab["n_risk"], r["n_risk"], 1e-9)
    close(tab["n_event"], r["n_event"], 1e-9)
    close(tab["survival"], r["surv"], 1e-6)
    close(tab["lower"], r["lower"], 1e-6)
    close(tab["upper"], r["upper"], 1e-6)
    # R: robust (IJ) SE when weights are non-integer or a cluster is given
    assert km.robust == ("weight" in KM_CASES[case].values() or "subclass" in KM_CASES[case].values())


@pytest.mark.parametrize("case", KM_CASES)
def test_km_at_matches_summary_times(case):
    at = km_fit(case).at(R["at_times"])
    r = R["km"][case]["at"]
    assert list(at.columns[:6]) == ["group", "time", "n_risk", "n_risk_unweighted", "survival", "lower"]
    close(at["time"], r["time"], 0)
    close(at["n_risk"], r["n_risk"], 1e-9)
    close(at["survival"], r["surv"], 1e-6)
    close(at["lower"], r["lower"], 1e-6)
    close(at["upper"], r["upper"], 1e-6)


@pytest.mark.parametrize("case", KM_CASES)
@pytest.mark.parametrize("tau", [365, 180])
def test_rmst_matches_print_survfit_rmean(case, tau):
    kw = {k: DATA[v] for k, v in KM_CASES[case].items() if k != "cluster"}
    tab = sv.rmst(DATA["duration"], DATA["event"], tau=tau, **kw)
    r = R["km"][case][f"rmean{tau}"]
    close(tab["rmst"], r["rmean"], 1e-4)
    close(tab["se"], r["se"], 1e-4)


@pytest.mark.parametrize("case", KM_CASES)
def test_median_matches_survfit_table(case):
    med = km_fit(case).median
    r = R["km"][case]["median"]
    close(med["median"], r["median"], 0)
    close(med["lower"], r["lower"], 0)
    close(med["upper"], r["upper"], 0)


def test_lung_median_rmst_logrank_cox():
    km = sv.kaplan_meier(LUNG.time, LUNG.event, LUNG.sex)
    L = R["lung"]
    close(km.table["survival"], L["km"]["curve"]["surv"], 1e-6)
    close(km.table["lower"], L["km"]["curve"]["lower"], 1e-6)
    close(km.median["median"], L["km"]["median"]["median"], 0)
    close(km.median["lower"], L["km"]["median"]["lower"], 0)
    close(km.median["upper"], L["km"]["median"]["upper"], 0)
    tab = km.rmst(500)
    close(tab["rmst"], L["km"]["rmean500"]["rmean"], 1e-4)
    close(tab["se"], L["km"]["rmean500"]["se"], 1e-4)
    assert sv.logrank(LUNG.time, LUNG.event, LUNG.sex).statistic == pytest.approx(L["logrank"], abs=1e-6)
    fit = sv.cox(LUNG, "time", "event", ["sex", "age"])
    close(fit.params, L["cox"]["coef"], 1e-5)
    close(fit.se, L["cox"]["se"], 1e-4)
    close(fit.zph()["chisq"], L["cox"]["zph_chisq"], 1e-4)


@pytest.mark.parametrize("which,groups", [("two", "treat"), ("three", "band")])
def test_logrank_matches_survdiff(which, groups):
    g = DATA["treat"] if groups == "treat" else pd.cut(DATA.prior, [-np.inf, 0, 2, np.inf],
                                                       labels=["none", "1-2", "3+"]).astype(str)
    lr = sv.logrank(DATA["duration"], DATA["event"], g)
    r = R["logrank"][which]
    assert lr.statistic == pytest.approx(r["chisq"], abs=1e-6)
    assert lr.df == r["df"]
    assert lr.p_value == pytest.approx(r["p"], abs=1e-6)
    assert sorted(lr.table["expected"]) == pytest.approx(sorted(r["exp"]), abs=1e-6)


@pytest.mark.parametrize("case", COX_CASES)
def test_cox_matches_coxph(case):
    fit = sv.cox(DATA, "duration", "event", COVS, **COX_CASES[case])
    r = R["cox"][case]
    assert list(fit.params.index) == r["names"]
    assert fit.robust == r["robust"]
    close(fit.params, r["coef"], 1e-5)
    close(fit.se, r["se"], 1e-4)
    close(fit.naive_se, r["naive_se"], 1e-4)
    assert fit.loglik[1] == pytest.approx(r["loglik"][1], abs=1e-6)
    assert fit.loglik[0] == pytest.approx(r["loglik"][0], abs=1e-6)
    zph = fit.check_assumptions()
    assert list(zph.index) == [*COVS, "GLOBAL"]
    close(zph["chisq"], r["zph_chisq"], 1e-4)
    close(zph["p"], r["zph_p"], 1e-4)
    sres = fit.schoenfeld_scaled()
    close(sres["time"], r["zph_time"], 0)
    close(sres["transformed_time"], r["zph_x"], 1e-9)
    close(sres[COVS].to_numpy().ravel(), np.asarray(r["zph_y"], float).ravel(), 1e-6)
    summ = fit.summary()
    assert ("robust se" in summ.columns) == r["robust"]
    hr = fit.hazard_ratios
    assert np.allclose(hr["hr"], np.exp(fit.params))
    assert (hr["lower"] < hr["hr"]).all() and (hr["hr"] < hr["upper"]).all()


def test_matched_survival_treat_only_matches_r():
    df = DATA.assign(treat=DATA.treat)
    res = sv.matched_survival(df, "duration", "event", tau=365)
    r = R["cox"]["treat_only_weighted_cluster"]
    close(res.cox.params, r["coef"], 1e-5)
    close(res.cox.se, r["se"], 1e-4)
    rk = R["km"]["weighted_cluster_group"]
    close(res.km.table["lower"], rk["curve"]["lower"], 1e-6)
    close(res.rmst["rmst"], rk["rmean365"]["rmean"], 1e-4)
    d = res.rmst_difference
    assert d["difference"] == pytest.approx(rk["rmean365"]["rmean"][1] - rk["rmean365"]["rmean"][0], abs=1e-4)
    assert d["se"] == pytest.approx(R["rmst_robust"]["tau365"]["weighted_cluster"]["diff_se"], abs=1e-4)
    assert d["se_independent"] == pytest.approx(np.hypot(*rk["rmean365"]["se"]), abs=1e-4)
    assert d["lower"] < d["difference"] < d["upper"]
    summ = res.summary()
    assert len(summ) == 4 and summ["estimate"].notna().all()


def test_matched_survival_accepts_design_object_and_drops_zero_weights():
    class Design:
        matched = DATA.assign(weight=np.where(DATA.id % 17 == 0, 0.0, DATA.weight))

    res = sv.matched_survival(Design(), tau=180)
    assert res.cox.n == int((Design.matched.weight > 0).sum())


def test_bad_input_names_argument_and_rows():
    with pytest.raises(ValueError, match=r"'events'.*rows \[1\]"):
        sv.kaplan_meier([1, 2, 3], [0, 2, 1])
    with pytest.raises(ValueError, match=r"'durations'.*rows \[2\]"):
        sv.kaplan_meier([1, 2, np.nan], [0, 1, 1])
    with pytest.raises(ValueError, match="'weights'.*negative"):
        sv.kaplan_meier([1, 2, 3], [0, 1, 1], weights=[1, -1, 1])
    with pytest.raises(ValueError, match="columns \\['nope'\\]"):
        sv.cox(DATA, "duration", "event", ["nope"])
    with pytest.raises(ValueError, match="'ties'"):
        sv.cox(DATA, "duration", "event", ["treat"], ties="discrete")
    with pytest.raises(ValueError, match="exactly two groups"):
        sv.rmst_difference(DATA.duration, DATA.event, DATA.prior.clip(0, 2), tau=365)


@pytest.mark.parametrize("reoffended", [False, True])
def test_plot_smoke(tmp_path, reoffended):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    km = sv.kaplan_meier(DATA.duration, DATA.event, DATA.treat, DATA.weight, cluster=DATA.subclass)
    fig = km.plot(reoffended=reoffended, labels={0: "Comparison", 1: "Participants"}, suppress_below=5)
    assert len(fig.axes) == 2
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert len(texts) >= 2 * 5
    out = tmp_path / "km.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    assert out.stat().st_size > 10_000


def test_funder_plot_smoke(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = sv.matched_survival(DATA, tau=365)
    fig = res.plot()
    assert len(fig.axes) == 2
    assert "reoffended" in fig.axes[0].get_ylabel()
    out = tmp_path / "funder.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    assert out.stat().st_size > 10_000


# ------------------------------------------------------------------ where lifelines agrees with R and where not
def test_lifelines_agrees_on_km_and_efron_coefficients():
    lifelines = pytest.importorskip("lifelines")
    km = lifelines.KaplanMeierFitter().fit(DATA.duration, DATA.event)
    r = R["km"]["unweighted_all"]["curve"]
    close(km.survival_function_at_times(r["time"]).to_numpy(), r["surv"], 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = lifelines.CoxPHFitter().fit(DATA[[*COVS, "duration", "event"]], "duration", "event")
    close(cph.params_.to_numpy(), R["cox"]["efron"]["coef"], 1e-5)
    close(cph.standard_errors_.to_numpy(), R["cox"]["efron"]["se"], 1e-4)


def test_lifelines_cluster_se_and_rmst_variance_differ_from_r():
    """Why evaluation.survival does these itself: lifelines' cluster-robust Cox SE with tied days is not R's
    (relative differences ~1e-4..5e-4 on this data; larger with heavier ties), and its RMST "variance" is
    not the variance of the RMST estimator (here ~125 days vs R's 6.7)."""
    lifelines = pytest.importorskip("lifelines")
    from lifelines.utils import restricted_mean_survival_time

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = lifelines.CoxPHFitter().fit(DATA[[*COVS, "duration", "event", "subclass"]], "duration", "event",
                                          cluster_col="subclass")
    rel = np.abs(cph.standard_errors_.to_numpy() / np.array(R["cox"]["efron_cluster"]["se"]) - 1)
    assert rel.max() > 1e-4
    ours = sv.cox(DATA, "duration", "event", COVS, cluster="subclass")
    assert np.max(np.abs(ours.se.to_numpy() / np.array(R["cox"]["efron_cluster"]["se"]) - 1)) < 1e-8
    km = lifelines.KaplanMeierFitter().fit(DATA.duration, DATA.event)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean, var = restricted_mean_survival_time(km, t=365, return_variance=True)
    assert mean == pytest.approx(R["km"]["unweighted_all"]["rmean365"]["rmean"], abs=1e-4)
    assert abs(np.sqrt(var) - R["km"]["unweighted_all"]["rmean365"]["se"]) > 1.0


def test_zph_plot_smoke(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = sv.cox(DATA, "duration", "event", COVS).plot_zph("prior")
    out = tmp_path / "zph.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    assert out.stat().st_size > 5_000


@pytest.mark.parametrize("tau", [180, 365])
@pytest.mark.parametrize("case", ["weighted_cluster", "weighted", "unweighted"])
def test_robust_rmst_matches_integrated_r_influence(case, tau):
    r = R["rmst_robust"][f"tau{tau}"][case]
    w = None if case == "unweighted" else DATA.weight
    cl = DATA.subclass if case == "weighted_cluster" else None
    tab = sv.rmst(DATA.duration, DATA.event, DATA.treat, tau=tau, weights=w, cluster=cl, robust=True)
    close(tab["se"], r["se"], 1e-4)
    # the point estimate is R's whichever variance is used
    rk = R["km"]["weighted_group" if w is not None else "unweighted_group"][f"rmean{tau}"]
    close(tab["rmst"], rk["rmean"], 1e-4)
    d = sv.rmst_difference(DATA.duration, DATA.event, DATA.treat, tau=tau, weights=w, cluster=cl, robust=True)
    assert d["se"] == pytest.approx(r["diff_se"], abs=1e-4)
    assert d["se_independent"] == pytest.approx(np.hypot(*rk["se"]), abs=1e-4)


@pytest.mark.parametrize("replace", [False, True])
def test_matched_survival_on_a_matching_design(replace):
    matching = pytest.importorskip("evaluation.matching")
    data = DATA.drop(columns=["weight", "subclass"]).assign(person_id=DATA.id.map("P{:07d}".format))
    design = matching.match(data, "treat", ["age", "male", "prior"], ratio=1, replace=replace, random_state=0)
    res = sv.matched_survival(design, "duration", "event", tau=365)
    md = design.matched
    assert res.cox.n == len(md)
    # clustered on subclass without replacement, on person with replacement (no subclass then)
    expected = md["subclass"].nunique() if "subclass" in md.columns else md["person_id"].nunique()
    assert res.cox.n_clusters == expected
    assert res.km.robust
    assert np.isfinite(res.summary()["estimate"]).all()


# ================================================================== issue 13: R survival 3.5.3 / cmprsk on public data
R2 = json.loads((HERE / "survival_reference2.json").read_text())
MGUS = pd.read_csv(HERE / "mgus2.csv")
LUNGF = pd.read_csv(HERE / "lung_full.csv")
VET = pd.read_csv(HERE / "veteran.csv")
CELLTYPES = ["squamous", "smallcell", "adeno", "large"]  # R's factor levels (not alphabetical)
VET["celltype"] = pd.Categorical(VET["celltype"], CELLTYPES)
ROSSI = pd.read_csv(HERE / "rossi.csv")
VSPLIT = pd.read_csv(HERE / "vet_split.csv")
AJ_CASES = {
    "all": {}, "sex": {"groups": "sex"}, "weighted": {"groups": "sex", "weights": "w"},
    "cluster": {"groups": "sex", "cluster": "cl"}, "weighted_cluster": {"groups": "sex", "weights": "w", "cluster": "cl"},
    "loglog": {"groups": "sex", "conf_type": "log-log"}, "plain": {"groups": "sex", "conf_type": "plain"},
}


@pytest.mark.parametrize("case", AJ_CASES)
def test_cumulative_incidence_matches_survfit_multistate(case):
    ci = sv.cumulative_incidence(MGUS, "etime", "event", **AJ_CASES[case])
    r, tab = R2["aj"][case], ci.table
    assert list(tab["group"].astype(str)) == [str(g) for g in r["group"]]
    close(tab["time"], r["time"], 0)
    # R 3.5.3 reports unweighted numbers at risk for multi-state fits; n_risk here is weighted, as for KM
    close(tab["n_risk_unweighted"], r["n_risk"], 0)
    for k in (1, 2):
        close(tab[f"cif_{k}"], r[f"cif{k}"], 1e-12)
        if "cluster" in case:  # R ignores cluster= here; compare with its influence summed within cluster
            close(tab[f"se_{k}"], R2["aj_cluster_se"][case][f"se{k}"], 1e-12)
        else:
            close(tab[f"se_{k}"], r[f"se{k}"], 1e-12)
            close(tab[f"lower_{k}"], r[f"lower{k}"], 1e-12)
            close(tab[f"upper_{k}"], r[f"upper{k}"], 1e-12)
    if "cluster" not in case:
        at = ci.at(pd.unique(np.asarray(r["at"]["time"])))
        assert list(at.columns[:6]) == ["group", "time", "n_risk", "cif", "lower", "upper"]
        close(at["cif"], r["at"]["cif1"], 1e-12)
        close(at["n_risk_unweighted"], r["at"]["n_risk"], 0)
        close(at["lower"], r["at"]["lower1"], 1e-12)
        close(at["upper"], r["at"]["upper1"], 1e-12)
        close(ci.at(pd.unique(np.asarray(r["at"]["time"])), event=2)["cif"], r["at"]["cif2"], 1e-12)


def test_cumulative_incidence_array_and_data_forms_agree_and_summary():
    a = sv.cumulative_incidence(MGUS.etime, MGUS.event, groups=MGUS.sex, labels={1: "PCM", 2: "death"})
    b = sv.cumulative_incidence(MGUS, "etime", "event", groups="sex", labels={1: "PCM", 2: "death"})
    pd.testing.assert_frame_equal(a.table, b.table)
    assert "\n" not in repr(a)
    s = a.summary(times=[120])
    assert set(s["event"]) == {"PCM", "death"} and len(s) == 4
    close(s["gray_p"].to_numpy()[::2], R2["gray"]["p"], 1e-10)
    # 1 − KM with death as censoring overstates the cumulative proportion with PCM
    km = sv.kaplan_meier(MGUS.etime, (MGUS.event == 1).astype(int))
    assert 1 - km.at([400])["survival"].iloc[0] > a.at([400])["cif"].max()


def test_gray_test_matches_cmprsk_cuminc():
    g = sv.gray_test(MGUS, "etime", "event", "sex")
    close(g["stat"], R2["gray"]["stat"], 1e-9)
    close(g["p"], R2["gray"]["p"], 1e-9)
    assert list(g["df"]) == R2["gray"]["df"]


def test_cumulative_incidence_bad_input():
    with pytest.raises(ValueError, match=r"'events'.*rows \[1\]"):
        sv.cumulative_incidence([1, 2, 3], [0, -1, 1])
    with pytest.raises(ValueError, match="column 'nope'"):
        sv.cumulative_incidence(MGUS, "etime", "nope")
    with pytest.raises(ValueError, match="no data was given"):
        sv.cumulative_incidence("etime", "event")


def test_nelson_aalen_matches_survfit_cumhaz():
    na = sv.nelson_aalen(LUNGF, "time", "event", groups="sex")
    r = R2["nelson_aalen"]
    close(na.table["time"], r["time"], 0)
    close(na.table["cumhaz"], r["cumhaz"], 1e-12)
    close(na.table["se"], r["se"], 1e-12)
    at = na.at(pd.unique(np.asarray(r["at"]["time"])))
    assert list(at.columns) == ["group", "time", "cumhaz", "se"]
    close(at["cumhaz"], r["at"]["cumhaz"], 1e-12)
    close(at["se"], r["at"]["se"], 1e-12)
    assert len(na.summary()) == 2 and "\n" not in repr(na)


@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain"])
def test_km_conf_type_matches_survfit(conf_type):
    km = sv.kaplan_meier(LUNGF, "time", "event", groups="sex", conf_type=conf_type)
    r = R2["km_conf"][conf_type]
    close(km.table["survival"], r["surv"], 1e-12)
    close(km.table["lower"], r["lower"], 1e-12)
    close(km.table["upper"], r["upper"], 1e-12)
    close(km.median["lower"], r["median_lower"], 0)
    close(km.median["upper"], r["median_upper"], 0)
    assert "\n" not in repr(km) and list(km.summary().columns) == ["n", "events", "median", "lower", "upper"]


def test_plots_smoke_cumulative_incidence_nelson_aalen(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ci = sv.cumulative_incidence(MGUS, "etime", "event", groups="sex", labels={1: "PCM", 2: "death"})
    fig = ci.plot(suppress_below=5)
    assert len(fig.axes) == 2 and len(fig.axes[0].get_lines()) == 4
    assert len(fig.axes[1].texts) >= 2 * 5
    fig.savefig(tmp_path / "ci.png", dpi=80)
    fig2 = sv.nelson_aalen(LUNGF, "time", "event", groups="sex").plot()
    fig2.savefig(tmp_path / "na.png", dpi=80)
    plt.close("all")


@pytest.mark.parametrize("case,kw", [("rho0", {"groups": "trt"}), ("rho1", {"groups": "trt", "rho": 1}),
                                     ("rho05_cell", {"groups": "celltype", "rho": 0.5}),
                                     ("strata", {"groups": "trt", "strata": "celltype"}),
                                     ("strata_rho1", {"groups": "trt", "strata": "celltype", "rho": 1})])
def test_logrank_strata_and_rho_match_survdiff(case, kw):
    lr = sv.logrank(VET, "time", "status", **kw)
    r = R2["logrank"][case]
    assert lr.statistic == pytest.approx(r["chisq"], abs=1e-9)
    assert lr.df == r["df"]
    close(lr.table["observed"], r["obs"], 1e-9)
    close(lr.table["expected"], r["exp"], 1e-9)
    assert "\n" not in repr(lr) and len(lr.summary()) == len(r["obs"])


COX2 = {
    "veteran_factor": (VET, "time", "status", ["trt", "celltype", "karno"], {}),
    "rossi": (ROSSI, "week", "arrest", ["fin", "age", "race", "wexp", "mar", "paro", "prio"], {}),
    "rossi_strata": (ROSSI, "week", "arrest", ["fin", "age", "prio"], {"strata": "wexp"}),
    "rossi_strata2": (ROSSI, "week", "arrest", ["fin", "age", "prio"], {"strata": ["wexp", "mar"]}),
    "rossi_breslow": (ROSSI, "week", "arrest", ["fin", "age", "prio"], {"ties": "breslow"}),
    "rossi_exact": (ROSSI, "week", "arrest", ["fin", "age", "prio"], {"ties": "exact"}),
    "lung_na": (LUNGF, "time", "event", ["age", "sex", "ph.ecog", "meal.cal"], {"na_action": "omit"}),
    "counting": (VSPLIT, "time", "status", ["trt", "karno1", "karno2", "karno3"], {"start": "tstart"}),
    "counting_cluster": (VSPLIT, "time", "status", ["trt", "karno1", "karno2", "karno3"],
                         {"start": "tstart", "cluster": "id"}),
}


@pytest.mark.parametrize("case", COX2)
def test_cox_factors_strata_na_counting_exact_match_coxph(case):
    data, dur, ev, covs, kw = COX2[case]
    fit = sv.cox(data, dur, ev, covs, **kw)
    r = R2["cox"][case]
    assert list(fit.params.index) == r["names"]
    close(fit.params, r["coef"], 1e-6)
    close(fit.se, r["se"], 1e-6)
    close(fit.naive_se, r["naive_se"], 1e-6)
    assert fit.loglik[0] == pytest.approx(r["loglik"][0], abs=1e-6)
    assert fit.loglik[1] == pytest.approx(r["loglik"][1], abs=1e-6)
    assert fit.n == r["n"] and fit.n_events == r["nevent"] and fit.n_omitted == r["n_omitted"]
    if "zph_chisq" in r:
        close(fit.zph()["chisq"], r["zph_chisq"], 1e-4)
    assert "\n" not in repr(fit)


def test_cox_missing_values_fail_by_default_naming_columns():
    with pytest.raises(ValueError, match=r"missing values in \{'ph.ecog': 1, 'meal.cal': 47\}.*na_action='omit'"):
        sv.cox(LUNGF, "time", "event", ["age", "sex", "ph.ecog", "meal.cal"])


def test_cox_collinear_covariates_named():
    df = ROSSI.assign(prio2=2 * ROSSI.prio + ROSSI.age)
    with pytest.raises(ValueError, match=r"'prio2' is a linear combination of \['age', 'prio'\]"):
        sv.cox(df, "week", "arrest", ["age", "prio", "prio2"])
    with pytest.raises(ValueError, match=r"constant"):
        sv.cox(ROSSI.assign(one=1.0), "week", "arrest", ["age", "one"])


def test_cox_monotone_likelihood_warns_as_r():
    mono = pd.DataFrame({"time": np.arange(1, 11), "status": 1, "x": np.repeat([1, 0], 5)})
    with pytest.warns(RuntimeWarning) as rec:
        fit = sv.cox(mono, "time", "status", ["x"])
    assert str(rec[0].message) == R2["monotone"]["warning"]
    assert fit.params["x"] > 10 and not fit.converged


def test_cox_reference_level_and_exact_restrictions():
    fit = sv.cox(VET, "time", "status", ["celltype"], reference={"celltype": "large"})
    assert list(fit.params.index) == ["celltypesquamous", "celltypesmallcell", "celltypeadeno"]
    with pytest.raises(ValueError, match="exact"):
        sv.cox(VSPLIT, "time", "status", ["trt"], start="tstart", ties="exact")


def test_zph_smooth_matches_plot_cox_zph():
    fit = sv.cox(ROSSI, "week", "arrest", ["fin", "age", "race", "wexp", "mar", "paro", "prio"])
    r = R2["zph_plot"]
    worst = 0.0
    for name in r["names"]:
        sm = fit.zph_smooth(name)
        close(sm["x"], r["x"], 1e-12)
        for k, rk in (("fit", "yhat"), ("lower", "lower"), ("upper", "upper")):
            close(sm[k], r["smooth"][name][rk], 1e-8)
            worst = max(worst, float(np.max(np.abs(sm[k] - np.asarray(r["smooth"][name][rk])))))
    # issue 13: the smooth for race is flat near the coefficient, not at 1.28-1.47
    race = fit.zph_smooth("race")
    assert race["fit"].max() < 1.0


def test_plot_zph_draws_band(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fit = sv.cox(ROSSI, "week", "arrest", ["fin", "age", "race", "prio"])
    fig = fit.plot_zph("race")
    assert len(fig.axes[0].get_lines()) >= 3
    fig.savefig(tmp_path / "zph.png", dpi=80)
    plt.close(fig)


@pytest.mark.parametrize("cause,key", [(1, "finegray"), (2, "finegray_death")])
def test_fine_gray_matches_finegray_coxph(cause, key):
    fit = sv.fine_gray(MGUS, "etime", "event", ["age", "sex"], cause=cause)
    r = R2[key]
    close(fit.params, r["coef"], 1e-6)
    close(fit.se, r["se"], 1e-6)
    if cause == 1:
        assert list(fit.params.index) == r["names"] and fit.robust == r["robust"] and fit.n == r["n_rows"]
        assert fit.loglik[1] == pytest.approx(r["loglik"][1], abs=1e-6)
        # cmprsk::crr (Breslow ties, its own weights) is close but not equal
        assert np.max(np.abs(fit.params.to_numpy() - np.asarray(r["crr_coef"]))) < 0.01


def test_matched_survival_with_competing_custody():
    rng = np.random.default_rng(3)
    # custody (2) before any reoffence for some people who were censored: the CIF is below 1 − KM
    etype = np.where((DATA.event == 0) & (rng.random(len(DATA)) < 0.5) & (DATA.duration < 365), 2, DATA.event)
    df = DATA.assign(event_type=etype)
    res = sv.matched_survival(df, "duration", "event", tau=365, event_type="event_type")
    plain = sv.matched_survival(DATA, "duration", "event", tau=365)
    summ = res.summary()
    assert len(summ) == 6 and summ["estimate"].notna().all()
    assert any("entering custody before any proven reoffence" in m for m in summ.index)
    assert any(m.startswith("Cause-specific hazard ratio") for m in summ.index)
    # the cause-specific Cox and RMST are unchanged (custody censored, as before)
    close(res.cox.params, plain.cox.params.to_numpy(), 0)
    cif = res.cif.at([365]).set_index("group")["cif"]
    km = plain.km.at([365]).set_index("group")["survival"]
    assert (cif <= 1 - km + 1e-12).all() and (cif < 1 - km).any()
    # the same from an event column coded 0/1/2
    res2 = sv.matched_survival(df.assign(event=etype), "duration", "event", tau=365)
    pd.testing.assert_frame_equal(res2.summary(), summ)
    import matplotlib

    matplotlib.use("Agg")
    fig = res.plot()
    assert len(fig.axes[0].get_lines()) == 4 and "\n" not in repr(res)


# ================================================================== issue 13: reports use the cumulative incidence
@pytest.fixture(scope="module")
def wonder(small_world_tables):
    """WONDER+ (adult women) on the small synthetic world: custody competes with a proven reoffence."""
    import types

    from evaluation.estimates import evaluate_programme

    w = types.SimpleNamespace(**small_world_tables)
    w.extract_date = pd.Timestamp("2024-12-31").date()
    return evaluate_programme(w, "wonder-plus")


def test_report_survival_is_the_cumulative_incidence_with_custody_competing(wonder):
    s = wonder.survival
    assert s.cif is not None and s.cif.causes == [1, 2] and s.cif.label(2) == "custody"
    md = wonder.design.matched
    md = md[md["weight"] > 0]
    # the survival view's event_type: custody first (2) ends follow-up for reoffending (event 0)
    assert set(md["event_type"]) == {0, 1, 2}
    assert (md.loc[md["event_type"] == 2, "event"] == 0).all()
    assert (md["event"] == (md["event_type"] == 1)).all()
    reg = wonder.register()
    ids = ["survival.reoffended_by_365.participants", "survival.reoffended_by_365.comparison",
           "survival.custody_by_365.participants", "survival.custody_by_365.comparison"]
    for fid in ids:
        assert reg[fid].section == "survival" and reg[fid].status == "shown"
    # the registered proportion is the weighted Aalen-Johansen estimate, below 1 - KM with custody censored
    at = s.cif.at([365]).set_index("group")
    km = s.km.at([365]).set_index("group")
    assert reg["survival.reoffended_by_365.participants"].value == pytest.approx(at.loc[1, "cif"], abs=1e-12)
    assert (at["cif"] < 1 - km["survival"]).all()
    # participants' proportion x N is a count of people, registered hidden and related (disclosure control)
    part = md[md["treat"] == 1]
    k = int(((part["event_type"] == 2) & (part["duration"] <= 365)).sum())
    assert reg["hidden.survival.custody_by_365.participants"].value == k
    assert reg["survival.custody_by_365.participants"].value * len(part) == pytest.approx(k, abs=1e-6)
    assert "Cause-specific" in reg["survival.hazard_ratio"].label
    assert reg.checked
    res = wonder.results(synthetic=True)
    assert "survival.custody_by_365.participants" in res["figures"]
    assert not any(k.startswith("hidden.") for k in res["figures"])


def test_report_chart_and_methods_say_cumulative_incidence(wonder):
    import matplotlib

    matplotlib.use("Agg")
    from evaluation.report import content as rc

    fig = rc.survival_figure(wonder)
    ax = fig.axes[0]
    assert "Cumulative incidence" in ax.get_title() and "custody" in ax.get_title()
    assert ax.get_ylabel() == "Cumulative incidence (proportion)"
    assert len(ax.get_lines()) == 4 and len(fig.axes) == 1  # numbers at risk come from the register, not here
    text = rc.methods(wonder) + rc.survival_intro(wonder)
    assert "competing event" in text and "Aalen–Johansen" in text and "cause-specific" in text
    assert "1 − KM" not in text
    tab = rc.survival_table(wonder)
    assert any("entering custody" in m for m in tab.index)


def test_small_custody_proportion_is_withheld_and_its_curve_left_out(wonder):
    """A custody proportion resting on 1-4 people would give the count back (proportion x N): disclosure
    control withholds it and the chart leaves the custody curves out."""
    import copy

    import matplotlib

    matplotlib.use("Agg")
    from evaluation.report import content as rc

    ev = copy.copy(wonder)
    ev.survival = copy.copy(wonder.survival)
    d = copy.copy(wonder.design)
    data = d.data
    part = ((data["treat"] == 1) & (d.weights > 0)).to_numpy()
    custody = part & (data["event_type"] == 2).to_numpy()
    etype = np.where(custody, 0, data["event_type"])
    etype[np.flatnonzero(custody)[:3]] = 2
    d.data = data.assign(event_type=etype, event=(etype == 1).astype(int))
    ev.design = d
    ev.survival = sv.matched_survival(ev.design, "duration", "event", tau=365, event_type="event_type")
    ev._register = None
    reg = ev.register()
    assert reg["hidden.survival.custody_by_365.participants"].value == 3
    assert reg["survival.custody_by_365.participants"].status == "withheld"
    assert reg.checked
    fig = rc.survival_figure(ev)
    assert len(fig.axes[0].get_lines()) == 2  # proven reoffence only


# ================================================================== Cox predict() and concordance() (R survival)
R3 = json.loads((HERE / "survival_reference3.json").read_text())
LUNG3 = pd.read_csv(HERE / "lung.csv").assign(w=lambda d: 1 + (np.arange(1, len(d) + 1) % 3) / 2)
ROSSI3 = pd.read_csv(HERE / "rossi.csv")
NEW_LUNG = pd.DataFrame({"time": [100, 300, 500], "event": [1, 0, 1], "age": [50, 65, 80], "sex": [1, 2, 1]})
PRED_CASES = {
    "lung_efron": lambda: sv.cox(LUNG3, "time", "event", ["age", "sex"]),
    "lung_breslow": lambda: sv.cox(LUNG3, "time", "event", ["age", "sex"], ties="breslow"),
    "lung_strata": lambda: sv.cox(LUNG3, "time", "event", ["age"], strata="sex"),
    "lung_weighted": lambda: sv.cox(LUNG3, "time", "event", ["age", "sex"], weights="w"),
    "rossi": lambda: sv.cox(ROSSI3, "week", "arrest", ["fin", "age", "prio"]),  # fin a factor: centred at 0
}


@pytest.mark.parametrize("case", list(PRED_CASES))
def test_cox_predict_matches_predict_coxph(case):
    fit, r = PRED_CASES[case](), R3[case]
    close(fit.params.to_numpy(), r["coef"], 1e-7)
    for ty in ("lp", "risk", "expected"):
        close(fit.predict(type=ty), r["train"][ty], 1e-7)
        if "new" in r:
            close(fit.predict(NEW_LUNG, type=ty), r["new"][ty], 1e-7)
    # expected = event - martingale residual: over the fitted rows it adds up to the number of events
    data = ROSSI3.rename(columns={"arrest": "event"}) if case == "rossi" else LUNG3
    w = data["w"].to_numpy() if case == "lung_weighted" else np.ones(len(data))
    assert np.sum(w * fit.predict(type="expected")) == pytest.approx(np.sum(w * data["event"]), rel=1e-9)


@pytest.mark.parametrize("case", list(PRED_CASES))
def test_cox_concordance_matches_r(case):
    c, r = PRED_CASES[case]().concordance(), R3[case]["concordance"]
    assert c["concordance"] == pytest.approx(r["concordance"], abs=1e-12)
    assert c["var"] == pytest.approx(r["var"], abs=1e-12)
    counts = r["count"]
    if isinstance(counts, list):  # R's per-stratum matrix, column-major: add the strata up
        counts = dict(zip(["concordant", "discordant", "tied.x", "tied.y", "tied.xy"],
                          np.asarray(counts).reshape(5, -1).sum(1)))
    for k, v in counts.items():
        assert c[k.replace(".", "_")] == pytest.approx(v, abs=1e-9), k
    assert c["n"] == r["n"]


def test_concordance_of_a_score_and_bad_input():
    r = R3["rossi_score"]
    c = sv.concordance(ROSSI3.week, ROSSI3.arrest, ROSSI3.prio)  # more priors, earlier arrest: C < 0.5
    assert c["concordance"] == pytest.approx(r["concordance"], abs=1e-12)
    assert c["var"] == pytest.approx(r["var"], abs=1e-12)
    assert c["tied_xy"] == r["count"]["tied.xy"] and c["tied_x"] == r["count"]["tied.x"]
    rev = sv.concordance(ROSSI3.week, ROSSI3.arrest, ROSSI3.prio, reverse=True)
    assert rev["concordance"] == pytest.approx(1 - c["concordance"])
    with pytest.raises(ValueError, match="score"):
        sv.concordance([1, 2, 3], [1, 0, 1], [1, 2])
    fit = PRED_CASES["rossi"]()
    with pytest.raises(ValueError, match="levels the model was not fitted on"):
        fit.predict(ROSSI3.head(3).assign(fin=["no", "maybe", "yes"]))
    with pytest.raises(ValueError, match="type"):
        fit.predict(type="survival")
    with pytest.raises(ValueError, match="needs column 'week'"):
        fit.predict(ROSSI3.drop(columns="week"), type="expected")


def test_published_curves_are_drawn_in_steps_of_5_people():
    """Issue 11 (funder read): monthly cumulative incidence of a group of ~120 people could be read to the nearest
    person (one person is 0.8 points). Drawn with ``round_to={group: 5 / N}`` every plotted value of the curve is a
    multiple of 5 people of that group, for the cumulative incidence and for 1 − Kaplan-Meier alike."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert sv.coarsened([0.0, 0.0083, 0.025, 0.0417, 0.3], 5 / 120).tolist() == pytest.approx(
        [0.0, 0.0, 5 / 120, 5 / 120, 35 / 120])
    with pytest.raises(ValueError):
        sv.coarsened([0.1], 0)
    ci = sv.cumulative_incidence(MGUS, "etime", "event", groups="sex", labels={1: "PCM", 2: "death"})
    sizes = MGUS["sex"].value_counts().to_dict()
    step = {g: 5 / n for g, n in sizes.items()}
    fig = ci.plot(risk_table=False, step_every=30, round_to=step, ci=False)
    for line, (g, _) in zip(fig.axes[0].get_lines(), [(g, c) for g in ci.groups for c in ci.causes]):
        y = np.asarray(line.get_ydata(), dtype=float) / step[g]
        assert np.allclose(y, np.round(y)), g
        assert np.all(np.diff(y) >= -1e-9)
    plt.close(fig)
    km = sv.kaplan_meier(DATA.duration, DATA.event, DATA.treat)
    sizes = DATA["treat"].value_counts().to_dict()
    step = {g: 5 / n for g, n in sizes.items()}
    fig = km.plot(reoffended=True, risk_table=False, step_every=30, round_to=step, ci=False)
    for line, g in zip(fig.axes[0].get_lines(), km.groups):
        y = np.asarray(line.get_ydata(), dtype=float) / step[g]
        assert np.allclose(y, np.round(y)), g
        assert len(y) <= 2 + int(np.ceil(DATA.duration.max() / 30))  # monthly, not one step per event
    plt.close(fig)


def test_published_bands_are_drawn_in_whole_steps_and_cover_the_exact_band():
    """With ``round_to`` the CI band is drawn at whole steps too (an exact log-type band gives the curve away:
    S = sqrt(lower x upper)), widened outwards so it still covers the exact band; KM in both orientations and the
    cumulative incidence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, up = sv.coarsened_band([0.0, 0.051, np.nan], [0.02, 0.12, 0.5], 0.05)
    assert lo[:2].tolist() == pytest.approx([0.0, 0.05]) and np.isnan(lo[2])
    assert up.tolist() == pytest.approx([0.05, 0.15, 0.5])
    with pytest.raises(ValueError):
        sv.coarsened_band([0.1], [0.2], 0)

    def band_vertices(ax):
        polys = [c for c in ax.collections if hasattr(c, "get_paths") and len(c.get_paths())]
        return [p.vertices[:, 1] for c in polys for p in c.get_paths()]

    km = sv.kaplan_meier(DATA.duration, DATA.event, DATA.treat)
    step = {g: 5 / n for g, n in DATA["treat"].value_counts().to_dict().items()}
    for reoffended in (True, False):
        fig = km.plot(reoffended=reoffended, risk_table=False, step_every=30, round_to=step)
        ys = band_vertices(fig.axes[0])
        assert len(ys) == len(km.groups)
        for y, g in zip(ys, km.groups):
            k = (y if reoffended else 1 - y) / step[g]
            assert np.allclose(k, np.round(k)), (reoffended, g)
        plt.close(fig)
    ci = sv.cumulative_incidence(MGUS, "etime", "event", groups="sex", labels={1: "PCM", 2: "death"})
    step = {g: 5 / n for g, n in MGUS["sex"].value_counts().to_dict().items()}
    fig = ci.plot(risk_table=False, step_every=30, round_to=step)
    groups = [g for g in ci.groups for _ in ci.causes]
    for y, g in zip(band_vertices(fig.axes[0]), groups):
        k = y / step[g]
        assert np.allclose(k, np.round(k)), g
    plt.close(fig)
