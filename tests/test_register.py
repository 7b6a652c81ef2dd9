"""The register of published figures: one N, results.json against its documented schema, no-estimate reports."""
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from evaluation.estimates import evaluate_programme
from evaluation.register import Register, slug

SCHEMA_DOC = Path(__file__).resolve().parents[1] / "docs" / "results-schema.md"


def _schema_validator():
    fastjsonschema = pytest.importorskip("fastjsonschema")  # installed with nbformat
    block = re.search(r"```json\n(.*?)\n```", SCHEMA_DOC.read_text(), re.S).group(1)
    return fastjsonschema.compile(json.loads(block))


@pytest.fixture(scope="module")
def world(small_world_namespace):
    return small_world_namespace


@pytest.fixture(scope="module")
def pathways(world):
    return evaluate_programme(world, "pathways-out")


def test_register_basics():
    reg = Register(threshold=5)
    reg.count("n.participants", "Participants analysed", 41, "headline", exact=True)
    reg.add("rate.participants", "rate", 0.22, "proportion", "headline", denominator="n.participants")
    with pytest.raises(ValueError, match="added twice"):
        reg.count("n.participants", "again", 1, "headline")
    with pytest.raises(KeyError, match="unknown figures"):
        reg.relate({"nope": 1.0})
    assert reg.display("n.participants") == "41" and reg.display("missing") == "–"
    assert "hidden" not in json.dumps(reg.to_json())
    assert slug("Excluded: waiting period not ended") == "excluded_waiting_period_not_ended"
    assert "Register(" in repr(reg)


def test_one_n_everywhere(pathways):
    reg = pathways.register()
    n = pathways.n_analysed
    assert reg.value("n.participants") == n == reg.value("attrition.matched.participants")
    assert reg.value("risk.participants.day0") == n
    from evaluation.report import content as rc

    head = rc.headline(pathways)
    assert head.loc["Group size (people)", "Participants"] == f"{n:,}"
    assert f"{n} participants analysed" in rc.summary(pathways)
    res = pathways.results(synthetic=True)
    assert res["figures"]["n.participants"]["value"] == n


def test_results_validate_against_the_documented_schema(pathways):
    validate = _schema_validator()
    res = pathways.results(synthetic=True)
    validate(res)
    assert res["synthetic"] is True and res["disclosure"]["check_passed"] is True
    # every published count of people is 0, >= threshold, or suppressed (value null)
    for k, f in res["figures"].items():
        if f["unit"] == "people" and f["value"] is not None:
            assert f["value"] == 0 or f["value"] >= res["disclosure"]["threshold"], k
    # the profile, attrition and risk tables the PDF prints are in results.json
    assert any(k.startswith("profile.sex.") for k in res["figures"])
    assert any(k.startswith("risk.comparison.day") for k in res["figures"])
    assert any(k.startswith("attrition.") for k in res["figures"])


def test_report_content_reads_the_register_only(pathways):
    """A figure changed in the register is what the report prints (content does not recompute)."""
    from evaluation.report import content as rc

    reg = pathways.register()
    before = rc.per_100(pathways).iloc[0, 0]
    reg["per100.rate.participants"].shown = 99
    try:
        assert rc.per_100(pathways).iloc[0, 0] == 99
    finally:
        reg["per100.rate.participants"].shown = before


def test_no_estimate_possible_when_no_one_is_eligible(world):
    """A constructed world (the extract date is before anyone's waiting period ends): the report says why no
    estimate was possible instead of crashing (it raised KeyError: 'measure')."""
    from evaluation.report import content as rc

    ev = evaluate_programme(world, "pathways-out", extract_date="2019-07-01")
    assert not ev.effects
    assert "No impact estimate was possible" in rc.summary(ev)
    assert "no participant was eligible" in rc.no_estimate(ev)
    assert rc.headline(ev).empty and ev.headline_table().empty
    res = ev.results(synthetic=True)
    _schema_validator()(res)
    assert res["estimate_possible"] is False
    rc.write_results(res, None)


def test_no_estimate_possible_when_the_pool_is_empty(pathways):
    from evaluation.estimates import _evaluate
    from evaluation.report import content as rc

    full = pathways.analysis.copy()
    full = full[full["treat"] == 1]
    ev = _evaluate(pathways.programme, "all participants (intention to treat)", pathways.extract_date, full,
                   pathways.attrition[pathways.attrition["stage"] != "Matched"], 0)
    assert "comparison pool is empty" in rc.summary(ev)
    rc.write_results(ev.results(), None)


def test_no_estimate_with_fewer_participants_than_the_disclosure_threshold(pathways):
    """Three eligible participants: no estimate (a rate over so few would identify someone), said plainly."""
    from evaluation.estimates import _evaluate
    from evaluation.report import content as rc

    full = pathways.analysis.copy()
    keep = full.index[full["treat"] == 1][:3].union(full.index[full["treat"] == 0])
    ev = _evaluate(pathways.programme, "all participants (intention to treat)", pathways.extract_date, full.loc[keep],
                   pathways.attrition[pathways.attrition["stage"] != "Matched"], 0)
    assert not ev.effects and ev.design is None
    assert "fewer than 5 participants had a full follow-up" in rc.no_estimate(ev)
    rc.write_results(ev.results(), None)


def test_a_report_whose_register_failed_the_check_is_not_written(tmp_path):
    from evaluation.disclosure import DisclosureError
    from evaluation.report import content as rc

    res = {"figures": {}, "disclosure": {"threshold": 5, "rounding_base": 5, "check_passed": False}}
    with pytest.raises(DisclosureError, match="not written"):
        rc.write_results(res, tmp_path)
    assert not (tmp_path / "results.json").exists()


def test_value_for_money_head_counts_are_disclosure_controlled(pathways):
    reg = pathways.register()
    for k, f in reg.figures.items():
        if k.startswith("vfm.") and k.split(".")[1] in {"participants", "completers"}:
            assert f.unit == "people"


def test_ete_figures_are_registered_rounded_and_small_parts_withheld():
    """ETE (issue 11, item 7): every figure in the register; a small part of 'in ETE at exit' is suppressed and
    cannot be worked out from the total and the other part; the rate that would give it back is withheld."""
    import pandas as pd

    from evaluation.disclosure import check_register, protect_register
    from evaluation.estimates import _register_ete
    from evaluation.register import Register

    rows = [("ete.at_start", "In ETE when they started", 15, 136, "who started"),
            ("ete.at_exit", "In ETE when they left", 48, 127, "who left with a known status"),
            ("ete.at_exit.employment", "  of which employment", 45, 127, "who left with a known status"),
            ("ete.at_exit.education_training", "  of which education or training", 3, 127,
             "who left with a known status")]
    t = pd.DataFrame(rows, columns=["id", "measure", "count", "denominator", "denominator_label"])
    t["rate"] = t["count"] / t["denominator"]

    class Ete:
        table = t
        started = 136

    class Ev:
        ete = Ete

    reg = Register()
    _register_ete(reg, Ev)
    protect_register(reg)
    check_register(reg)
    assert reg["ete.at_exit.education_training.count"].status == "suppressed"
    assert reg.display("ete.at_exit.education_training.rate") == "–"  # withheld: rate × 127 gives 3 back
    # the total and the other part cannot both be exact (48 − 45 = 3)
    assert not (reg["ete.at_exit.count"].status == "shown" and reg["ete.at_exit.employment.count"].status == "shown")
    assert reg["ete.at_start.count"].status == "rounded" and reg.value("ete.at_start.count") == 15
    assert reg.value("ete.at_start.denominator") == 135


def _survival_tail_register(late: int) -> Register:
    """The family-support shape (small world): 51 analysed, 11 reoffended (both published exactly), numbers at
    risk rounded to 5, ``late`` reoffending between day 360 and day 365."""
    reg = Register(threshold=5)
    reg.count("n.participants", "Participants analysed", 51, "headline", exact=True)
    reg.count("reoffenders.participants", "Participants who reoffended", 11, "headline")
    risk = [51, 48, 48, 47, 45, 44, 40 + late]
    prev = None
    for day, v in zip(range(0, 361, 60), risk):
        fid = f"risk.participants.day{day}"
        reg.count(fid, f"at risk on day {day}", v, "risk", exact=prev is None)
        if prev is None:
            reg.relate({fid: 1.0, "n.participants": -1.0}, 0.0, "at risk on day 0 = N")
        else:
            reg.difference(prev, fid, f"hidden.risk_step.participants.day{day}", "step", "risk", "adjacent rows")
        prev = fid
    reg.count("hidden.risk_tail.participants", "reoffended from day 360 to day 365", late, "risk", hidden=True)
    reg.relate({"risk.participants.day360": 1.0, "reoffenders.participants": 1.0,
                "hidden.risk_tail.participants": -1.0, "n.participants": -1.0}, 0.0, "last row")
    return reg


def test_late_reoffenders_cannot_be_narrowed_by_the_last_risk_row():
    """Issue 11 (funder read): 41 at risk on day 360, shown as 40, beside exactly 51 analysed and 11 reoffenders,
    says 0 to 2 people reoffended in the last five days. The relation is declared and the check bounds it."""
    from evaluation.disclosure import count_bounds, narrowed, protect_register

    reg = _survival_tail_register(late=1)
    for f in reg.figures.values():  # rounding alone, as before the fix
        if f.section == "risk" and f.status == "shown" and not f.exact:
            f.status, f.shown = "rounded", 5 * int(f.value / 5 + 0.5)
    assert count_bounds(reg, ["hidden.risk_tail.participants"])["hidden.risk_tail.participants"] == (0, 2)
    assert narrowed(reg) == ["hidden.risk_tail.participants"]
    reg = _survival_tail_register(late=1)
    protect_register(reg)
    assert reg.checked and narrowed(reg) == []
    lo, hi = count_bounds(reg)["hidden.risk_tail.participants"]
    assert hi is None or hi - lo >= reg.threshold - 2
    assert reg.display("risk.participants.day360") == "[c]"  # the row that narrowed it
    assert reg.value("reoffenders.participants") == 11  # the headline count is kept
    # with no one reoffending late there is nothing to protect: the row stays, rounded
    reg = _survival_tail_register(late=0)
    protect_register(reg)
    assert reg.value("risk.participants.day360") == 40


def test_the_register_declares_the_risk_table_tail_and_no_small_count_can_be_narrowed(pathways):
    from evaluation.disclosure import count_bounds, narrowed

    reg = pathways.register()
    assert "hidden.risk_tail.participants" in reg
    rel = [r for r in reg.relations if "hidden.risk_tail.participants" in r.terms]
    assert rel and {"risk.participants.day360", "reoffenders.participants", "n.participants"} <= set(rel[0].terms)
    assert narrowed(reg) == []
    for k, (lo, hi) in count_bounds(reg).items():
        f = reg[k]
        if 0 < f.value < reg.threshold:
            assert lo < hi if hi is not None else True, k


def test_people_lost_between_attrition_stages_may_be_bounded_but_not_worked_out():
    """822 eligible (published as 820) and 821 matched (exact): a reader knows 0 or 1 went unmatched. That count
    carries no outcome, so the range check leaves it (the report is written); the exact check still holds."""
    from evaluation.disclosure import protect_register, recoverable

    reg = Register(threshold=5)
    reg.count("attrition.eligible.participants", "eligible", 822, "attrition")
    reg.count("attrition.matched.participants", "matched", 821, "attrition", exact=True)
    reg.difference("attrition.eligible.participants", "attrition.matched.participants",
                   "hidden.step.matched.participants", "unmatched", "attrition", "consecutive attrition stages")
    protect_register(reg)
    assert reg.checked and reg.display("attrition.eligible.participants") == "820"
    assert not recoverable(reg)


def test_survival_note_flags_a_lone_significant_secondary_measure():
    from types import SimpleNamespace

    from evaluation.report import content as rc

    reg = Register(threshold=5)
    reg.add("rate.difference", "Rate difference", -0.03, "proportion", "headline", significant=False, p_value=0.06)
    reg.add("survival.hr", "Cause-specific hazard ratio", 0.84, "ratio", "survival", lower=0.71, upper=0.99,
            p_value=0.04)
    ev = SimpleNamespace(register=lambda: reg)
    assert "not evidence of an effect on its own" in rc.survival_note(ev)
    reg["rate.difference"].significant = True
    assert rc.survival_note(ev) == ""


def test_headline_note_says_why_a_withheld_row_shows_dashes():
    from types import SimpleNamespace

    from evaluation.report import content as rc

    reg = Register(threshold=5)
    for k, v in (("rate.participants", 0.2), ("rate.comparison", 0.25), ("rate.difference", -0.05)):
        reg.add(k, k, v, "proportion", "headline")
    reg.add("fte.difference", "First-time entrants: difference", 0.01, "proportion", "headline")
    reg["fte.difference"].status = "withheld"
    ev = SimpleNamespace(register=lambda: reg, effects={}, threshold=5)
    assert "First-time entrants: not shown (–), because the figures would reveal a count of 1 to 4" \
        in rc.headline_note(ev)


def _risk_rows_register(risk: list[int]) -> Register:
    """Numbers at risk every 60 days for one group; day 0 is the exact N (published exactly in the headline)."""
    from evaluation.estimates import register_risk_row

    reg = Register(threshold=5)
    reg.count("n.participants", "Participants analysed", risk[0], "headline", exact=True)
    register_risk_row(reg, "participants", "Participants", range(0, 60 * len(risk), 60), risk)
    return reg


def test_the_exact_day_0_row_cannot_bound_the_people_leaving_before_day_60():
    """Issue 11 (funder read, SOS+): 133 at risk on day 0 (the exact N) and 128 on day 60, shown as 130, tell a
    reader that 1 to 5 people left in the first 60 days, as much as a [c] says. The whole-register check finds it
    and protection withholds the day-60 row; two rounded rows (difference known only to ±4) are left alone."""
    from evaluation.disclosure import count_bounds, narrowed, protect_register

    reg = _risk_rows_register([133, 128, 118, 113])
    for f in reg.figures.values():  # rounding alone
        if f.section == "risk" and f.status == "shown" and not f.exact:
            f.status, f.shown = "rounded", 5 * int(f.value / 5 + 0.5)
    step = "hidden.risk_step.participants.day60"
    assert count_bounds(reg, [step])[step] == (1, 5)
    assert narrowed(reg) == [step]
    reg = _risk_rows_register([133, 128, 118, 113])
    protect_register(reg)
    assert reg.checked and narrowed(reg) == []
    lo, hi = count_bounds(reg, [step])[step]
    assert lo == 0 or hi is None or hi > reg.threshold
    assert reg.display("risk.participants.day60") == "[c]"
    assert reg.display("risk.participants.day0") == "133"
    # 10 left in the first 60 days: 123 shown as 125 bounds it to 6 to 10, which says nothing small
    reg = _risk_rows_register([133, 123, 118])
    protect_register(reg)
    assert reg.value("risk.participants.day60") == 125


def test_the_exact_day_0_row_cannot_bound_the_people_leaving_across_a_withheld_day():
    """Funder read 3 (family support): 48 on day 0, [c] on day 60 and 45 (43 rounded) on day 120 still told "1 to
    5 left" (48 − 45 at face value: 3): the step from day 0 to every later day is checked, not only adjacent
    steps, so the day-120 row is withheld too; a day with at least 8 gone is shown."""
    from evaluation.disclosure import count_bounds, protect_register

    reg = _risk_rows_register([48, 46, 43, 38])
    protect_register(reg)
    assert reg.checked
    assert [reg.display(f"risk.participants.day{d}") for d in (0, 60, 120, 180)] == ["48", "[c]", "[c]", "40"]
    for d in (60, 120, 180):
        lo, hi = count_bounds(reg, [f"hidden.risk_since_start.participants.day{d}"]).get(
            f"hidden.risk_since_start.participants.day{d}", (0, None))
        assert lo == 0 or hi is None or hi > reg.threshold, d


def test_a_large_profile_group_is_never_hidden_beside_a_small_one():
    """Issue 11 (funder read, SOS+): 1 participant of unknown sex made secondary suppression hide 33 women,
    printed "Female [c]" beside "Male 100" of 133, which a reader takes for a small group. The smallest
    categories are folded into one row instead, named for what it holds, and nothing in the sex rows is [c]."""
    from evaluation.estimates import _fold_label, _profile_fold

    counts = {"participants": pd.Series({"Female": 33, "Male": 99, "Unknown": 1}),
              "comparison": pd.Series({"Female": 101, "Male": 288, "Unknown": 4})}
    fold = _profile_fold(counts, ["Female", "Male", "Unknown"], 5)
    assert fold == ["Female", "Unknown"] and _fold_label(fold) == "Female or not known"
    # ethnicity: the small groups go together (smallest first) until the merged row is safe
    eth = {"participants": pd.Series({"Asian": 2, "Black": 3, "Mixed": 1, "Other": 1, "White": 110, "Unknown": 16}),
           "comparison": pd.Series({"Asian": 10, "Black": 15, "Mixed": 10, "Other": 5, "White": 338, "Unknown": 15})}
    cats = ["Asian", "Black", "Mixed", "Other", "White", "Unknown"]
    fold = _profile_fold(eth, cats, 5)
    assert set(fold) == {"Asian", "Black", "Mixed", "Other"}
    for g in eth:
        assert eth[g][fold].sum() >= 5
    # nothing small: nothing folded; a table of two categories is left to suppression
    assert _profile_fold({"participants": pd.Series({"Female": 30, "Male": 100})}, ["Female", "Male"], 5) == []
    assert _profile_fold({"participants": pd.Series({"Female": 3, "Male": 100})}, ["Female", "Male"], 5) == []
    # the few unmatched (eligible minus analysed) do not drive folding: they are small in nearly every category,
    # and folding for them merged 3 of 4 age bands (hostile review, seed 7); disclosure control protects them
    pre = {"participants": pd.Series({"A": 40, "B": 50, "C": 20}), "prematch": pd.Series({"A": 42, "B": 60, "C": 30})}
    assert _profile_fold(pre, ["A", "B", "C"], 5) == []


def test_no_large_profile_group_is_suppressed(pathways):
    """Built through the register: every [c] left in the analysed or comparison columns of the profile table is a
    group of fewer than 10 people."""
    reg = pathways.register()
    big = [k for k, f in reg.figures.items() if f.section == "profile" and f.status == "suppressed"
           and f.value >= 2 * reg.threshold and not k.endswith(".prematch")]
    assert big == []


def test_the_unmatched_few_are_protected_in_the_eligible_column_not_the_analysed_one():
    """Hostile review (seed 23, detached youth work): "Female or not known" 41 analysed and 42 eligible were both
    [c], because 1 unmatched participant in that row had to be protected. The eligible (pre-match) cell is given
    up first: the analysed group's row is shown."""
    from evaluation.disclosure import protect_register

    reg = Register(threshold=5)
    reg.count("n.participants", "Participants analysed", 123, "headline", exact=True)
    reg.count("profile.total.prematch", "All eligible", 134, "profile", exact=True)  # as known from elsewhere
    for g, vals, total in (("participants", (82, 41), "n.participants"), ("prematch", (92, 42),
                                                                            "profile.total.prematch")):
        ids = []
        for cat, v in zip(("male", "female_or_not_known"), vals):
            ids.append(f"profile.sex.{cat}.{g}")
            reg.count(ids[-1], f"Sex: {cat} ({g})", v, "profile")
        reg.relate({**{i: 1.0 for i in ids}, total: -1.0}, 0.0, "categories add to the total")
    for cat in ("male", "female_or_not_known"):
        reg.difference(f"profile.sex.{cat}.prematch", f"profile.sex.{cat}.participants", f"hidden.unmatched.{cat}",
                       "unmatched", "profile", "pre-match minus matched")
    protect_register(reg)
    assert reg.checked
    assert reg.display("profile.sex.female_or_not_known.participants") == "40"
    assert reg.display("profile.sex.male.participants") == "80"


def test_headline_interval_and_difference_do_not_wrap(pathways):
    """Issue 11 (funder read): "−34 to +28 days" wrapped over three lines in the headline table; intervals and
    differences are printed with non-breaking spaces, so each stays on one line."""
    from evaluation.report import content as rc

    head = rc.headline(pathways)
    cells = [v for c in ("95% CI", "Difference") for v in head[c] if v not in ("", "–")]
    assert cells and all(" " not in v for v in cells)
    assert any("\u00a0to\u00a0" in v for v in head["95% CI"])


def test_a_first_or_repeat_offending_report_never_says_reoffended(pathways):
    """Issue 11 (funder read): Pathways Out measures proven offending (first or repeat), yet its report said
    "fewer than 30 participants reoffended". No sentence of the report's text about the measure says reoffend,
    except the ones contrasting first offending with reoffending."""
    from evaluation.report import content as rc
    from evaluation.report import guidance

    assert pathways.programme.outcome.get("label")
    texts = [rc.summary(pathways), rc.headline_note(pathways), rc.methods(pathways), rc.limitations(pathways),
             rc.power_text(pathways), rc.sensitivity_text(pathways), guidance.say_boxes(pathways),
             guidance.glossary_for(pathways)]
    if pathways.survival is not None:
        texts.append(rc.survival_intro(pathways))
    allowed = ("first offending for them and reoffending for the others", "first offending, not reoffending",
               "not a reoffence", "**Proven reoffending.**", "definition of proven reoffending",
               "Some participants had no proven offence")
    for text in texts:
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            if re.search(r"reoffend|reoffence", sentence, re.I) and not any(a in sentence for a in allowed):
                raise AssertionError(sentence)


def test_first_or_repeat_programme_labels_say_offended(pathways, tmp_path):
    """Funder read 3: results.json and tables.xlsx of the children's programmes said "who reoffended" and "Time to
    first proven reoffence" where the measure is proven offending, first or repeat; labels now use the measure's
    words, and results.json says which measure it is."""
    from evaluation.report.spreadsheet import SECTIONS
    from evaluation.wording import first_or_repeat

    res = pathways.results(synthetic=True)
    assert res["measure"] == "proven offending (first or repeat)"
    labels = [f["label"] for f in res["figures"].values()]
    assert labels and not [x for x in labels if "reoffend" in x.lower()]
    assert "offended" in res["figures"]["reoffenders.participants"]["label"]
    assert first_or_repeat(SECTIONS["survival"]) == "Time to first proven offence"


def test_reoffenders_of_the_year_against_the_curve_by_its_last_day_withholds_the_curve_figure():
    """Funder read 3 (Pathway Out (ADDER)): 52 reoffenders of 133 (exact, the headline) beside 37% by day 365 on
    the curve (49 people) told a reader that 3 reoffended only after a spell in custody. The relation is declared
    and protection withholds the curve's proportion, never the headline's exact count."""
    from evaluation.disclosure import protect_register, recoverable

    reg = Register(threshold=5)
    reg.count("n.participants", "Participants analysed", 133, "headline", exact=True)
    reg.count("reoffenders.participants", "Participants analysed who reoffended", 52, "headline",
              denominator="n.participants", exact=True)
    fid = "survival.reoffended_by_365.participants"
    reg.add(fid, "Proportion reoffended by day 365", 49 / 133, "proportion", "survival")
    reg.count("hidden." + fid, "by day 365 (people)", 49, "survival", hidden=True)
    reg.relate({"hidden." + fid: 1.0}, 49.0, "cumulative proportion times N", via=(fid,))
    reg.difference("reoffenders.participants", "hidden." + fid, "hidden.survival.after_competing.participants",
                   "after custody", "survival", "reoffenders minus the curve")
    assert "hidden.survival.after_competing.participants" in recoverable(reg)
    protect_register(reg)
    assert reg.checked and reg[fid].status == "withheld"
    assert reg.display("reoffenders.participants") == "52" and reg.display("n.participants") == "133"


def test_a_hidden_count_known_to_be_exactly_the_threshold_is_not_narrowed():
    """Seed 7, SOS+: 5 first-time entrants among 135 participants, the rate (3.7%) shown and N exact, give the
    hidden count back as exactly 5: a publishable count, not "1 to 5". The range rule for hidden counts flagged it,
    found no count to suppress (the partner is a rate) and the report failed to build."""
    from evaluation.disclosure import count_bounds, narrowed, protect_register

    reg = Register(threshold=5)
    reg.count("n.participants", "Participants analysed", 135, "headline", exact=True)
    reg.add("fte.participants", "First-time entrant rate", 5 / 135, "proportion", "headline")
    reg.count("hidden.fte.participants", "First-time entrants", 5, "headline", hidden=True)
    reg.relate({"hidden.fte.participants": 1.0}, 5, "rate times N", via=("fte.participants",))
    assert count_bounds(reg, ["hidden.fte.participants"])["hidden.fte.participants"] == (5, 5)
    assert narrowed(reg) == []
    protect_register(reg)
    assert reg.checked
    # 4 of them, or a range reaching below 5, is still caught
    reg = _risk_rows_register([133, 128, 118, 113])
    for f in reg.figures.values():
        if f.section == "risk" and f.status == "shown" and not f.exact:
            f.status, f.shown = "rounded", 5 * int(f.value / 5 + 0.5)
    assert narrowed(reg) == ["hidden.risk_step.participants.day60"]


def test_a_folded_row_says_not_known_once():
    """Ethnicity holds both the code "Unknown" and "Not known" (missing): folded together with a small group
    they read "Asian or not known", not "Asian, not known or not known"."""
    from evaluation.estimates import _fold_label, _profile_fold

    counts = {"participants": pd.Series({"Asian": 1, "White": 50, "Not known": 2, "Unknown": 1}),
              "comparison": pd.Series({"Asian": 10, "White": 200, "Not known": 20, "Unknown": 20})}
    fold = _profile_fold(counts, ["Asian", "White", "Not known", "Unknown"], 5)
    assert fold == ["Asian", "Not known", "Unknown"]
    assert _fold_label(fold) == "Asian or not known"
    assert _fold_label(["Not known", "Unknown"]) == "Not known"


def test_methods_and_glossary_define_proven_reoffending_and_first_time_entrants_alike(pathways):
    """Funder read (Pathways Out pp8-9, MACE pp9-10): Methods said first-time entrants receive a "caution,
    conviction or youth caution", the Glossary "caution, reprimand, warning or conviction", and the Glossary's proven
    reoffending left out youth cautions. Both now print the one definition of what the code counts
    (outcomes.proven_offence_definition: schemas.COUNTED_DISPOSALS; outcomes.first_time_entrant_definition: no
    offence record before the index date, PRIOR_RECORD_SQL, and a proven offence in the follow-up)."""
    from evaluation.outcomes import first_time_entrant_definition, proven_offence_definition
    from evaluation.report import content as rc
    from evaluation.report import guidance
    from evaluation.schemas import COUNTED_DISPOSALS, DISPOSAL_LABELS, NOT_COUNTED_DISPOSALS

    oc = pathways.programme.outcome
    proven = proven_offence_definition(oc["follow_up_months"], oc["waiting_months"])
    fte = first_time_entrant_definition()
    methods, glossary = rc.methods(pathways), guidance.glossary_for(pathways)
    for text in (methods, glossary):
        assert proven in text and fte[1:] in text  # the Glossary's entry starts with a capital
        # nothing else in either lists disposals: no second, different definition can creep back
        rest = text.replace(proven, "")
        assert not any(w in rest for w in ("caution", "reprimand", "warning", "conviction")), rest
    assert guidance.glossary().count(proven_offence_definition()) == 1
    counted, _, excluded = proven.partition("(an offence dealt with by")
    assert all(DISPOSAL_LABELS[d] in counted for d in COUNTED_DISPOSALS)
    assert all(DISPOSAL_LABELS[d] in excluded for d in NOT_COUNTED_DISPOSALS)
    assert not any(DISPOSAL_LABELS[d] in counted for d in ("penalty_notice", "community_resolution", "nfa"))
    assert "no offence record of any kind" in fte and "before the index date" in fte


def test_a_rate_and_days_pointing_different_ways_are_explained():
    """Funder read (Pathways Out pp4-5): the rate favoured participants (22% against 25%) while the extra days
    without proven offending were −21 (−60 to +18), and no sentence said why. A note, driven by the register's
    figures, says the two measures summarise different things and whether either is significant."""
    from types import SimpleNamespace

    from evaluation.report import content as rc

    def ev(rate, days, lo, hi, sig=False, label="proven offending (first or repeat)"):
        reg = Register(threshold=5)
        reg.add("rate.difference", "Rate difference", rate, "proportion", "headline", significant=sig, p_value=0.7)
        reg.add("survival.rmst_difference", "Extra days", days, "days", "survival", lower=lo, upper=hi,
                p_value=0.28)
        return SimpleNamespace(register=lambda: reg, programme=SimpleNamespace(outcome={"label": label}))

    note = rc.survival_note(ev(-0.028, -21, -60, 18))
    assert "point in different directions" in note and "less likely" in note and "fewer of the first 365" in note
    assert "whether someone offended within the year, and how soon" in note
    assert "Neither difference is statistically significant" in note and "reoffen" not in note
    up = rc.directions_note(ev(0.05, 30, 5, 55, label=None))
    assert "more likely" in up and "more of the first 365" in up and "a proven reoffence" in up
    assert "Only the difference in days is statistically significant" in up
    assert rc.directions_note(ev(-0.05, 12, -20, 44)) == ""  # both favour participants: nothing to explain
    assert rc.directions_note(ev(0.0, -5, -20, 10)) == ""
