"""Value for money: unit-cost config, uprating, reoffences avoided, benefit-cost ratio, wording, bad input."""
from __future__ import annotations

import json
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml

matplotlib.use("Agg")

from evaluation import vfm  # noqa: E402
from evaluation.vfm import VfmError  # noqa: E402

MIX = pd.Series({"violence_with_injury": 0.2, "theft": 0.5, "criminal_damage": 0.3})


def test_shipped_config_has_rr99_figures_source_and_price_year():
    uc = vfm.load_unit_costs()
    assert uc.price_year == "2015/16"
    assert "Research Report 99" in uc.source and "HM Treasury" in uc.deflator_source
    assert uc.costs == {"violence_with_injury": 14050, "robbery": 11320, "theft_of_vehicle": 10290, "arson": 8420,
                        "other_sexual_offences": 6520, "other_criminal_damage": 1350, "theft_from_vehicle": 870}
    assert set(uc.groups) == set(vfm.OFFENCE_GROUPS)
    # groups with no published figure are 'not valued', never given an invented cost
    gc = uc.group_costs()
    assert not gc.set_index("offence_group").loc["burglary", "valued"]
    assert gc.loc[~gc["valued"], "unit_cost"].isna().all()
    assert uc.factor("2015/16") == 1.0
    assert uc.factor("2021/22") == pytest.approx(uc.deflator["2021/22"] / 100)


def test_costs_and_bcr_by_hand():
    uc = vfm.load_unit_costs()
    f = uc.factor("2021/22")
    r = vfm.value_for_money("pathway-out-adder", effect=-0.3, ci=(-0.5, -0.1), p_value=0.003,
                            eligible_participants=60, mix=MIX, participants=76, completers=38, unit_costs=uc)
    assert r.funding == 95000 and r.price_year == "2021/22"
    assert r.costs["cost_per_participant"] == pytest.approx(95000 / 76)
    assert r.costs["cost_per_completer"] == pytest.approx(95000 / 38)
    assert r.avoided["avoided"] == pytest.approx(18) and (r.avoided["lower"], r.avoided["upper"]) == pytest.approx((6, 30))
    per = (0.2 * 14050 + 0.3 * 1350) * f  # theft is not valued
    assert r.cost_per_reoffence == pytest.approx(per)
    assert r.benefit == pytest.approx(18 * per)
    assert r.bcr == pytest.approx(18 * per / 95000)
    assert r.bcr_ci == pytest.approx((6 * per / 95000, 30 * per / 95000))
    assert r.valued_share == pytest.approx(0.5) and r.not_valued == ["theft"]
    assert r.significant
    text = r.text()
    assert "£95,000" in text and "for every £1 spent" in text and "valued at £0" in text
    d = r.to_dict()
    json.dumps(d)
    assert d["bcr"] == pytest.approx(r.bcr)
    assert r.summary()["figure"].tolist()[-1] == "Benefit–cost ratio"
    assert isinstance(r.plot(), matplotlib.figure.Figure)


def test_not_significant_statement_and_effect_object():
    eff = SimpleNamespace(estimate=-0.1, ci_low=-0.4, ci_high=0.2, p_value=0.5)
    r = vfm.value_for_money("pathway-out-adder", effect=eff, eligible_participants=60, mix=MIX, participants=70)
    assert not r.significant
    assert vfm.NOT_SIGNIFICANT in r.text() and "no benefit–cost ratio can be claimed" in r.text()
    assert r.bcr_ci[0] < 0 < r.bcr_ci[1]
    assert "\u2212£" in r.text() and "-£" not in r.text()  # a true minus sign, never a hyphen


def test_minus_sign_and_range_do_not_break():
    assert vfm.gbp(-92420.4) == "\u2212£92,420" and vfm.gbp(-0.2) == "£0" and vfm.gbp(18000) == "£18,000"
    eff = SimpleNamespace(estimate=-0.1, ci_low=-0.4, ci_high=0.2, p_value=0.5, n_treated=55)
    text = vfm.value_for_money("pathway-out-adder", effect=eff, eligible_participants=60, mix=MIX,
                               participants=70).text()
    # the range is joined by non-breaking spaces: "from −£x to £y" cannot split between sign and amount
    assert "\u00a0to\u00a0" in text and "from \u2212£" in text


def test_one_denominator_chain_named_in_the_text():
    """Cost per head uses everyone referred; the effect and the benefit use the matched N; the text says so."""
    eff = SimpleNamespace(estimate=-0.3, ci_low=-0.5, ci_high=-0.1, p_value=0.003, n_treated=134)
    r = vfm.value_for_money("pathway-out-adder", effect=eff, eligible_participants=136, mix=MIX, participants=160)
    assert r.denominators == {"referred": 160, "analysed": 136, "matched": 134}
    assert r.costs["cost_per_participant"] == pytest.approx(95000 / 160)
    assert r.avoided["avoided"] == pytest.approx(0.3 * 134)  # effect × matched N, not × 136
    assert r.benefit == pytest.approx(0.3 * 134 * r.cost_per_reoffence)
    text = r.text()
    assert "160 people referred" in text and "per person referred" in text
    assert "134 participants who could be matched" in text and "of 136 with a full follow-up" in text
    assert "other referrals add cost but no counted benefit" in text
    assert r.to_dict()["denominators"]["matched"] == 134
    # an explicit matched N wins over the effect object's
    r2 = vfm.value_for_money("pathway-out-adder", effect=eff, eligible_participants=136, mix=MIX, participants=160,
                             matched_participants=130)
    assert r2.denominators["matched"] == 130


def test_unit_cost_caveat_is_kept_in_the_statement():
    r = vfm.value_for_money("pathway-out-adder", effect=-0.3, ci=(-0.5, -0.1), p_value=0.003,
                            eligible_participants=60, mix=MIX, participants=76)
    # said once: the statement gives the figures, the caveat where the unit costs come from and how far checked
    assert "a press summary only" not in r.text() and "a press summary only" in r.caveat()
    assert "provisional" in r.to_dict()["caveat"] and "a press summary only" in r.to_dict()["caveat"]

    from evaluation.register import Register

    class Ev:  # the report's value-for-money section prints both, the caveat once
        vfm = r

        @staticmethod
        def register():
            return Register()
    from evaluation.report.content import vfm_text

    assert vfm_text(Ev).count("a press summary only") == 1
    assert "VfmResult(" in repr(r) and "\n" not in repr(r)


def test_jdl_rule_fewer_than_30_reoffenders_is_not_significant():
    r = vfm.value_for_money("pathway-out-adder", effect=-0.3, ci=(-0.5, -0.1), p_value=0.01,
                            eligible_participants=40, mix=MIX, participants=40, treated_reoffenders=12)
    assert not r.significant and vfm.NOT_SIGNIFICANT in r.text()


def test_offence_mix_from_offences_and_unknown_group():
    off = pd.DataFrame({"offence_group": ["theft", "theft", "robbery", "arson"]})
    mix = vfm.offence_mix(off)
    assert mix.to_dict() == {"theft": 0.5, "robbery": 0.25, "arson": 0.25}
    bad = pd.DataFrame({"offence_group": ["theft", "shoplifting"]}, index=[10, 11])
    with pytest.raises(VfmError, match="unknown offence group.*shoplifting.*rows 11"):
        vfm.offence_mix(bad)
    with pytest.raises(VfmError, match="unknown offence group.*shoplifting"):
        vfm.value_for_money("pathway-out-adder", effect=-0.1, ci=(-0.2, 0.0), p_value=0.05,
                            eligible_participants=10, mix=pd.Series({"shoplifting": 1.0}), participants=10)


def test_funding_not_published():
    with pytest.raises(VfmError, match="funding not published for 'sos-plus'"):
        vfm.value_for_money("sos-plus", effect=-0.1, ci=(-0.2, 0.0), p_value=0.05, eligible_participants=10,
                            mix=MIX, participants=10)


def test_bad_inputs():
    with pytest.raises(VfmError, match="participants"):
        vfm.cost_per_participant(95000, 0)
    with pytest.raises(VfmError, match="completers"):
        vfm.cost_per_participant(95000, 10, 11)
    with pytest.raises(VfmError, match="not inside its confidence interval"):
        vfm.reoffences_avoided(0.5, (-0.2, 0.1), 10)
    with pytest.raises(VfmError, match="sum to 1"):
        vfm.value_for_money("pathway-out-adder", effect=-0.1, ci=(-0.2, 0.0), p_value=0.05,
                            eligible_participants=10, mix=pd.Series({"theft": 0.5}), participants=10)


def test_edited_config_errors(tmp_path):
    raw = yaml.safe_load(vfm.default_unit_costs_path().read_text())
    raw["offence_groups"]["burglary"] = "domestic_burglary"
    p = tmp_path / "uc.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(VfmError, match="offence_groups.burglary.*domestic_burglary"):
        vfm.load_unit_costs(p)
    raw["unit_costs"]["domestic_burglary"] = 5930
    p.write_text(yaml.safe_dump(raw))
    uc = vfm.load_unit_costs(p)
    assert uc.group_costs().set_index("offence_group").loc["burglary", "unit_cost"] == 5930
    with pytest.raises(VfmError, match="no value for price year '2031/32'"):
        uc.factor("2031/32")
    assert vfm.financial_year(2021) == "2021/22" and vfm.financial_year("2019/20") == "2019/20"


# ------------------------------------------------------------------------- ETE (Pathway Out (ADDER), issue 11)
def _ete_world(small_world, small_world_tables):
    return SimpleNamespace(referrals=small_world_tables["referrals"], path=small_world)


def test_ete_outcomes_on_the_synthetic_world_agree_with_truth(small_world, small_world_tables):
    truth = json.loads((small_world / "truth.json").read_text())["programmes"]["pathway-out-adder"]["ete"]
    res = vfm.ete_outcomes(_ete_world(small_world, small_world_tables), "pathway-out-adder")
    t = res.table.set_index("id")
    assert res.referred == 160 and res.started == truth["n_started"] == t.loc["ete.at_start", "denominator"]
    # the recorded exit rate is within sampling error of the generator's expected rate (binomial, 3 SE)
    p, n = truth["expected_ete_at_exit_rate_started"], t.loc["ete.at_exit", "denominator"]
    assert abs(t.loc["ete.at_exit", "rate"] - p) < 3 * np.sqrt(p * (1 - p) / n)
    assert abs(t.loc["ete.at_start", "rate"] - truth["p_ete_at_start"]) < 3 * np.sqrt(0.12 * 0.88 / res.started)
    assert t.loc["ete.at_exit.employment", "count"] + t.loc["ete.at_exit.education_training", "count"] == \
        t.loc["ete.at_exit", "count"]
    assert (t["count"] <= t["denominator"]).all()
    text = res.text()
    assert "cannot show what the programme changed" in text and "160 people referred" in text
    d = res.to_dict()
    json.dumps(d)
    assert d["design"].startswith("descriptive")
    assert res.summary().shape == (6, 4) and "EteResult(" in repr(res)
    assert isinstance(res.plot(), matplotlib.figure.Figure)


def _fake_ete(n_in=20, n_out=100, n_unknown=10, emp=12):
    ids = [f"P{i:05d}" for i in range(n_in + n_out + n_unknown)]
    refs = pd.DataFrame({"person_id": ids, "programme_id": "pathway-out-adder",
                         "start_date": pd.Timestamp("2021-06-01")})
    status = ["employment"] * emp + ["education_training"] * (n_in - emp) + ["not_in_ete"] * n_out + ["unknown"] * n_unknown
    ete = pd.DataFrame({"person_id": ids, "programme_id": "pathway-out-adder", "ete_at_start": False,
                        "status_at_exit": status,
                        "sustained_3m": pd.array([1] * n_in + [0] * n_out + [None] * n_unknown, dtype="Int64"),
                        "sustained_6m": pd.array([1] * n_in + [0] * n_out + [None] * n_unknown, dtype="Int64")})
    return SimpleNamespace(referrals=refs, ete=ete)


def test_ete_small_counts_are_withheld_with_their_complements():
    w = _fake_ete(emp=18)  # 18 employment, 2 education or training: the 2 and its partner are withheld
    t = vfm.ete_outcomes(w, "pathway-out-adder").table.set_index("id")
    assert t.loc["ete.at_exit", "shown"]
    assert not t.loc["ete.at_exit.employment", "shown"] and not t.loc["ete.at_exit.education_training", "shown"]
    assert not t.loc["ete.at_start", "shown"] or t.loc["ete.at_start", "count"] == 0
    res = vfm.ete_outcomes(_fake_ete(emp=18), "pathway-out-adder")
    assert "[c]" in res.summary().to_string() and None in [m["count"] for m in res.to_dict()["measures"]]
    # a small number of unknown exits cannot be recovered as started minus the known-status denominator
    t2 = vfm.ete_outcomes(_fake_ete(n_unknown=3), "pathway-out-adder").table.set_index("id")
    assert t2.loc["ete.at_exit", "denominator"] == t2.loc["ete.at_start", "denominator"]


def test_ete_bad_input_is_named_without_ids():
    w = _fake_ete()
    w.ete = pd.concat([w.ete, w.ete.iloc[[0]]])
    with pytest.raises(vfm.EteError, match="duplicated") as exc:
        vfm.ete_outcomes(w, "pathway-out-adder")
    assert "P0" not in str(exc.value)
    w = _fake_ete()
    w.referrals = w.referrals.iloc[5:]
    with pytest.raises(vfm.EteError, match="5 row\\(s\\) for people with no referral") as exc:
        vfm.ete_outcomes(w, "pathway-out-adder")
    assert "P0" not in str(exc.value)
    with pytest.raises(vfm.EteError, match="ETE records"):
        vfm.ete_outcomes(SimpleNamespace(referrals=w.referrals, path="/nonexistent"), "pathway-out-adder")


def test_ete_rows_of_referrals_not_found_in_police_records_are_left_out_and_counted():
    """With referrals from a linked provider list, ETE records of referrals that were not found have no person in
    the cohort: left out and counted (the report built an error into its text before)."""
    w = _fake_ete()
    w.referrals = w.referrals.iloc[5:]
    w.linked = "data/processed/linked"
    res = vfm.ete_outcomes(w, "pathway-out-adder")
    assert res.excluded["ete rows for referrals not found in police records"] == 5


def test_statement_prints_counts_as_the_report_publishes_them():
    """An exact "134 of 136" in the prose would undo the rounding that hides 2 unmatched people (issue 11)."""
    eff = vfm.value_for_money("pathway-out-adder", effect=-0.3, ci=(-0.5, -0.1), p_value=0.003,
                              eligible_participants=136, matched_participants=134, mix=MIX, participants=160)
    assert "of 136 with a full follow-up" in eff.text()
    t = eff.text(shown={"analysed": "135", "matched": "134", "referred": "160"})
    assert "of 135 with a full follow-up" in t and "136" not in t


def test_statement_with_rounded_referrals_says_about_and_per_referral():
    """Linked lists: the attrition table shows referrals rounded (175 for 173); the statement follows it."""
    eff = vfm.value_for_money("pathway-out-adder", effect=-0.3, ci=(-0.5, -0.1), p_value=0.003,
                              eligible_participants=136, matched_participants=134, mix=MIX, participants=173)
    t = eff.text(shown={"referred": "175", "matched": "134", "analysed": ""})
    assert "for about 175 referrals" in t and "per referral" in t and "173" not in t


def test_cost_per_completer_never_gives_the_exact_number_of_completers():
    """Issue 11 (funder read): "£1,284 per person who completed it" of £95,000 is exactly 74 completers, where
    the register rounds counts to 5. The statement and the register divide by the published (rounded) count."""
    from evaluation.disclosure import protect_register
    from evaluation.register import Register

    eff = vfm.value_for_money("pathway-out-adder", effect=-0.3, ci=(-0.5, -0.1), p_value=0.003,
                              eligible_participants=136, matched_participants=134, mix=MIX, participants=173,
                              completers=74)
    t = eff.text(shown={"referred": "175", "matched": "134", "analysed": "", "completers": "75"})
    assert "about £1,270 per person who completed it (about 75 people)" in t  # 95,000 / 75, to £10
    assert "1,284" not in t and "1,280" not in t and "£550" not in t and "about £540 per referral" in t
    t = eff.text(shown={"referred": "175", "matched": "134", "analysed": "", "completers": "[c]"})
    assert "completed" not in t.split("(2021/22 prices)")[0]
    # in the register: the counts are rounded and the cost per head is over the rounded count
    reg = Register(threshold=5)
    reg.add("vfm.funding", "funding", 95000.0, "gbp", "vfm")
    reg.count("vfm.completers", "completers", 74, "vfm")
    f = reg.add("vfm.cost_per_completer", "cost per completer", 95000 / 74, "gbp", "vfm",
                denominator="vfm.completers")
    f.meta["numerator"] = "vfm.funding"
    protect_register(reg)
    assert reg.value("vfm.completers") == 75 and reg.value("vfm.cost_per_completer") == 1270
    assert round(95000 / reg.value("vfm.cost_per_completer")) != 74
    # a suppressed count takes its cost per head with it
    reg = Register(threshold=5)
    reg.add("vfm.funding", "funding", 95000.0, "gbp", "vfm")
    reg.count("vfm.completers", "completers", 3, "vfm")
    f = reg.add("vfm.cost_per_completer", "cost", 95000 / 3, "gbp", "vfm", denominator="vfm.completers")
    f.meta["numerator"] = "vfm.funding"
    protect_register(reg)
    assert reg["vfm.cost_per_completer"].status == "withheld" and reg.value("vfm.cost_per_completer") is None



def test_statement_words_do_not_tell_which_rounded_referral_counts_are_exact():
    """A report's referral count is rounded; 175 referrals shown as 175 must read as 173 shown as 175 does ("about",
    cost per referral over the published count). "the 175 people referred, about £543" only when the rounding
    left the count unchanged would tell a reader the exact count (and its cost to the pound differs from the
    table's £540)."""
    texts = []
    for exact in (173, 175):
        eff = vfm.value_for_money("pathway-out-adder", effect=-0.3, ci=(-0.5, -0.1), p_value=0.003,
                                  eligible_participants=136, matched_participants=134, mix=MIX, participants=exact)
        texts.append(eff.text(shown={"referred": "175", "matched": "134", "analysed": ""}))
    assert texts[0] == texts[1]
    assert "for about 175 referrals, about £540 per referral" in texts[1] and "£543" not in texts[1]


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), True, 0, -5000.0, "95000"])
def test_funding_must_be_a_finite_positive_amount(amount):
    """YAML's .nan and .inf are floats, and NaN <= 0 is False: they passed the check and crashed later (a cost per
    head of NaN cannot be rounded); true (an int in Python) passed as £1."""
    class Prog(dict):
        path, id = "programmes/x.yaml", "x"

    with pytest.raises(VfmError, match="key 'funding_gbp': must be a positive amount"):
        vfm.programme_funding(Prog(funding_gbp=amount))
    assert vfm.programme_funding(Prog(funding_gbp=95000)) == (95000.0, None)


def test_the_printed_savings_range_is_a_register_figure(small_world_namespace):
    """Funder read 4: a non-significant value-for-money statement prints "the savings could be anywhere from
    −£104,000 to £61,000", but the range was not in results.json. It is now the figure vfm.savings_range, with
    the bounds as printed (nearest £1,000 or £100)."""
    import warnings

    from evaluation.estimates import evaluate_programme
    from evaluation.vfm import NBSP, gbp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = evaluate_programme(small_world_namespace, "pathway-out-adder")
    if ev.vfm is None or ev.vfm.significant:
        pytest.skip("value for money significant in this world: the point estimate is published instead")
    f = ev.register()["vfm.savings_range"]
    assert f.status == "shown" and f.unit == "gbp" and f.lower < f.upper
    assert f"{gbp(f.lower)}{NBSP}to{NBSP}{gbp(f.upper)}" in ev.vfm.text()
    assert "vfm.benefit" not in ev.register() and "vfm.savings_range" in ev.results(synthetic=True)["figures"]
