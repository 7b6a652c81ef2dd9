"""Reader guidance: JDL "What you can say / What you cannot say" boxes, the glossary, facts with assumptions marked."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import numpy as np

from evaluation.config import load_programme, load_programmes
from evaluation.report import guidance as g

ROOT = Path(__file__).resolve().parents[1]


def _boxes(**kw):
    base = dict(difference=-0.05, lower=-0.12, upper=0.02, p=0.17, n=134, reoffenders=40)
    base.update(kw)
    return g.say_boxes_for("Pathway Out", **base)


def test_not_significant_says_no_evidence_and_forbids_no_effect():
    text = _boxes()
    can, cannot = text.split("### What you cannot say")
    assert "### What you can say" in can and "does not provide significant evidence" in can
    assert "as many as 12.0 fewer or as many as 2.0 more" in can
    assert "has no effect on proven reoffending" in cannot and "reduces or increases" in cannot


def test_significant_reduction_gives_the_interval_and_limits():
    text = _boxes(difference=-0.10, lower=-0.16, upper=-0.04, p=0.001, reoffenders=45)
    can, cannot = text.split("### What you cannot say")
    assert "provides evidence" in can and "may decrease" in can and "between 4.0 and 16.0 percentage points" in can
    assert "by exactly 10.0" in cannot and "everyone referred" in cannot


def test_fewer_than_30_reoffenders_is_never_evidence_even_with_small_p():
    text = _boxes(difference=-0.10, lower=-0.16, upper=-0.04, p=0.001, reoffenders=29)
    assert "provides evidence" not in text and "fewer than 30 participants analysed reoffended" in text


def test_small_group_caution_below_60():
    assert "fewer than the 60" in _boxes(n=41)
    assert "fewer than the 60" not in _boxes(n=134)


def test_bad_input():
    with pytest.raises(ValueError, match="outside its interval"):
        _boxes(difference=0.5)
    with pytest.raises(ValueError, match="required"):
        _boxes(p=float("nan"))


def test_boxes_never_claim_more_than_the_numbers():
    """Property test over 2,000 random results (seeded): evidence only under the JDL rule, right direction,
    no bound printed as a bare or signed zero."""
    rng = np.random.default_rng(20190401)
    for _ in range(2000):
        d = float(rng.uniform(-0.5, 0.5))
        w1, w2 = (float(x) for x in rng.uniform(0, 0.3, 2) * rng.choice([1.0, 0.001], 2))
        p = float(rng.choice([rng.uniform(0, 1), rng.uniform(0, 0.06)]))
        n, r = int(rng.integers(1, 2000)), int(rng.integers(0, 80))
        text = g.say_boxes_for("X", difference=d, lower=d - w1, upper=d + w2, p=p, n=n, reoffenders=r)
        significant = p <= 0.05 and r >= 30 and (d + w2 < 0 or d - w1 > 0)
        can = text.split("### What you cannot say")[0]
        assert ("provides evidence" in can) == significant
        if not significant:
            assert "does not provide significant evidence" in can
        assert " 0.0 " not in text and " 0.00 " not in text and "-0" not in text
        if significant:
            assert ("decrease" in can) == (d < 0)


def test_say_boxes_from_an_evaluation_object():
    eff = SimpleNamespace(estimate=-0.04, ci_low=-0.15, ci_high=0.07, p_value=0.47, n_treated=41)
    ev = SimpleNamespace(programme=load_programme("pathways-out"), effects={"reoffended": eff},
                         treated_reoffenders=12, n_treated=43)
    text = g.say_boxes(ev)
    assert "proven offending (first or repeat)" in text and "41 participants" in text
    ev.effects = {}
    assert "No impact estimate" in g.say_boxes(ev)


def test_glossary_terms_and_doc_file_agree():
    text = g.glossary()
    for term in ("SMD", "RMST", "E-value", "Γ", "HAC", "ITT", "ATT", "Caliper", "Proven reoffending",
                 "First-time entrant", "Cumulative incidence"):
        assert f"**{term}" in text or term in text
    assert (ROOT / "docs" / "glossary.md").read_text() == text
    assert g.glossary(["Caliper"]).count("**") == 2
    with pytest.raises(KeyError, match="unknown term"):
        g.glossary(["nope"])


def test_every_programme_marks_its_assumptions_and_cites_public_urls():
    for pid, prog in load_programmes().items():
        sources = prog.get("sources") or []
        assert sources and all(s.startswith("https://") for s in sources), pid
        assert "assumed" in prog.raw, pid
    # the facts the issue names as not in the public pages
    for pid in ("mace", "detached-youth-work", "family-support"):
        t = g.facts_table(load_programme(pid))
        assert t.loc["Provider", "assumed"] and g.ASSUMED in t.loc["Provider", "value"], pid
    adder = g.facts_table(load_programme("project-adder"))
    assert adder.loc["Comparison areas", "assumed"] and not adder.loc["Pilot area", "assumed"]
    assert adder.loc["Programme period", "value"].startswith("January 2021 (assumed for this illustration)")
    assert "March 2023 (assumed" not in adder.loc["Programme period", "value"]  # the end is a published fact
    po = g.facts_table(load_programme("pathways-out"))
    assert not po["assumed"].any()
    md = g.facts_markdown(load_programme("mace"), "2024-12-31")
    assert md.split("\n", 1)[1].startswith("| About the programme | |") and "Data extract date" in md and "must be replaced" in md
    assert "assumed for this illustration" not in g.facts_markdown(load_programme("pathways-out"))
    assert "<https://www.norfolk-pcc.gov.uk/" in g.sources_markdown(load_programme("pathways-out"))


def test_fact_marks_and_escapes():
    prog = load_programme("mace")
    assert g.fact(prog, "provider", "A*B") == "A\\*B (assumed for this illustration)"
    assert g.fact(prog, "funders", "Home Office") == "Home Office"
    assert g.is_assumed(prog, "target_group.min_age")  # a parent key covers its children


def test_area_cover_marks_assumed_start_and_comparison_areas():
    from evaluation.report import content as rc

    text = rc.area_cover(load_programme("project-adder"), "2024-12-31", True)
    assert "January 2021 (assumed for this illustration) – March 2023" in text
    assert "Luton (assumed for this illustration)" in text and "SYNTHETIC DATA" in text
    assert "https://www.norfolk-pcc.gov.uk/" in text and "seeds/" not in text


def _glossary_keys(text: str) -> set[str]:
    return set(re.findall(r"^\*\*(.+?)\.\*\* ", text, re.M))


def test_abbreviations_and_methods_terms_are_in_each_reports_glossary():
    """Funder read: MACE's "MASE and CCE teams", detached youth work's "MASH", "YOT" and "Early Help", "hazard
    ratio" and "cause-specific hazard ratio", Project ADDER's Newey–West (HAC), Ljung–Box, placebo p and pre-trend
    check, and "OPCCN" were used and never explained. Each report's glossary now has the abbreviations in its
    programme's facts and referral destinations, the hazard ratios where a survival analysis is shown, and the area
    report its methods' terms."""
    import pandas as pd

    mace = SimpleNamespace(programme=load_programme("mace"), ete=None, survival=object())
    keys = _glossary_keys(g.glossary_for(mace))
    assert {"MASE", "CCE", "OPCCN", "MACE", "Hazard ratio", "Cause-specific hazard ratio"} <= keys
    assert not keys & set(g.AREA_TERMS)
    no_survival = SimpleNamespace(programme=load_programme("mace"), ete=None, survival=None)
    assert not _glossary_keys(g.glossary_for(no_survival)) & set(g.SURVIVAL_TERMS)
    funnel = pd.DataFrame({"stage": ["contacts", "referrals", "referred_to", "referred_to", "referred_to"],
                           "destination": [None, None, "mash", "early_help", "yot"], "count": [100, 30, 10, 10, 10]})
    dyw = SimpleNamespace(programme=load_programme("detached-youth-work"), ete=None, survival=object())
    keys = _glossary_keys(g.glossary_for(dyw, SimpleNamespace(funnel=funnel)))
    assert {"MASH", "YOT", "Early Help", "OPCCN"} <= keys
    assert "YOT" not in _glossary_keys(g.glossary_for(dyw))  # only what the report shows
    area_keys = _glossary_keys(g.area_glossary(load_programme("project-adder")))
    assert set(g.AREA_TERMS) <= area_keys and "ADDER" in area_keys
    assert "OPCCN" not in area_keys  # a partner the report does not print: nothing to spell out
    assert "Newey–West" in g.GLOSSARY["HAC standard errors"]
    assert {"CCE", "VCSE", "OPCCN"} <= _glossary_keys(g.delivery_glossary(load_programme("capacity-building")))
    assert g.abbreviations_in("the MASHED potato", "non-YOT") == {}


def test_every_abbreviation_a_report_prints_is_spelled_out():
    """Every capitalised abbreviation in the programmes' printed facts and the referral destinations is in
    guidance.ABBREVIATIONS, or spelled out where it stands ("Mancroft Advice Project (MAP)"), or a project's name."""
    from evaluation.delivery import DESTINATION_LABELS

    names = {"SOS"}  # SOS+ is the project's name, not an abbreviation it spells out
    for pid, prog in load_programmes().items():
        text = g._programme_text(prog)
        for tok in set(re.findall(r"(?<![\w-])[A-Z]{2,}(?![\w-])", text)):
            assert tok in g.ABBREVIATIONS or f"({tok})" in text or tok in names or \
                re.search(rf"{tok}\W*\(", text), (pid, tok)
    for label in DESTINATION_LABELS.values():
        if label.isupper() or label[:1].isupper():
            assert label in g.ABBREVIATIONS, label


def test_outcome_sentence_names_the_measure_once():
    from evaluation.report import content as rc

    assert rc._outcome_lead("proven reoffending") == "Proven reoffending, as the Ministry of Justice defines it:"
    lead = rc._outcome_lead("proven offending (first or repeat)")
    assert lead.startswith("Proven offending (first or repeat) follows") and lead.count("reoffending") == 1


def test_statistical_terms_are_in_every_glossary_and_matching_terms_only_with_a_design():
    from types import SimpleNamespace

    prog = load_programme("pathways-out")
    with_design = g.glossary_for(SimpleNamespace(programme=prog, design=object(), survival=None, ete=None))
    without = g.glossary_for(SimpleNamespace(programme=prog, design=None, survival=None, ete=None))
    for term in g.STATS_TERMS:
        assert f"**{term}.**" in with_design and f"**{term}.**" in without
        assert f"**{term}.**" in g.area_glossary(load_programme("project-adder"))
    assert "**Propensity score.**" in with_design and "**Variance ratio.**" in with_design
    assert "**Propensity score.**" not in without
