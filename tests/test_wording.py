import math

import pytest

from evaluation import wording as w


@pytest.mark.parametrize(
    "share, text",
    [(0.273, "27%"), (0.275, "28%"), (0.004, "<1%"), (0.0, "0%"), (1.0, "100%"), (float("nan"), "–")],
)
def test_pct_whole_percent_and_small_shares(share, text):
    assert w.pct(share) == text


def test_rounding_is_half_up_not_bankers():
    assert w.round_half_up(2.5) == 3
    assert w.round_half_up(-2.5) == -3
    assert w.freq(2.675) == "2.68"  # binary 2.67499.. still rounds as published tables do
    assert w.p_value(0.045) == "0.045" and w.p_value(0.052) == "0.052" and w.p_value(0.06) == "0.06"
    assert w.p_value(0.004) == "<0.01"


def test_significance_needs_p_and_30_reoffenders():
    assert w.is_significant(0.01, 30)
    assert not w.is_significant(0.01, 29)
    assert not w.is_significant(0.051, 100)
    assert not w.is_significant(float("nan"), 100)


def test_significant_reduction_wording():
    f = w.rate_finding(-0.06, -0.10, -0.02, 0.003, 120)
    assert f.significant
    assert "lower by between 2 and 10 percentage points" in f.sentence


def test_not_significant_wording_gives_range_and_number_needed():
    f = w.rate_finding(-0.03, -0.12, 0.06, 0.4, 12, number_needed=1450)
    assert not f.significant
    assert "as many as 12 fewer or as many as 6 more" in f.sentence
    assert "More people would need to be analysed" in f.sentence
    assert "1,500" in f.sentence  # a derived number: two significant figures


def test_p_small_but_too_few_reoffenders_is_explained():
    f = w.rate_finding(-0.2, -0.35, -0.05, 0.01, 10)
    assert not f.significant
    assert "by between 5 and 35 percentage points" in f.sentence
    assert "fewer than 30" in f.sentence and "not called significant" in f.sentence
    g = w.frequency_finding(-0.6, -1.02, -0.17, 0.006, 10)
    assert not g.significant and "between 0.17 and 1.02" in g.sentence


def test_small_sample_note():
    assert "at least 60" in w.small_sample_note(46, 10)
    note = w.small_sample_note(46, 10, verb="offended")
    assert "participants offended" in note and "first offence" in note and "reoffend" not in note
    assert w.small_sample_note(500, 100) is None


# ---------------------------------------------------------------------------------------------------------------
# Property test: wording never contradicts the numbers (seeded random results; hypothesis is not a dependency)
# ---------------------------------------------------------------------------------------------------------------
import math  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402

NEG_ZERO = re.compile(r"(?<![\d.])[-−]0(\.0+)?(?![\d.])")
ONE_PLURAL = re.compile(r"(?<![\d.])1 (more |fewer )?days")
ZERO_BOUND = re.compile(r"as many as 0(\.0+)? (fewer|more)")


def _random_result(rng: random.Random) -> dict:
    scale = rng.choice([0.001, 0.01, 0.05, 0.2])
    diff = rng.uniform(-1, 1) * scale
    half = abs(rng.gauss(0, scale)) + rng.choice([0.0, 1e-4, 0.002, 0.03])
    lower, upper = diff - half, diff + half
    if rng.random() < 0.1:  # bounds that sit just off zero
        lower, upper = (-rng.uniform(0, 0.1), rng.choice([0.0022, 1e-5, 0.004])) if rng.random() < 0.5 else \
            (-rng.choice([0.0022, 1e-5, 0.004]), rng.uniform(0, 0.1))
        diff = (lower + upper) / 2
    p = rng.choice([rng.random(), rng.random() * 0.05, 0.05, 0.0501, 1e-6])
    p_c = rng.uniform(0.01, 0.9)
    p_t = min(1.0, max(0.0, p_c + diff))
    days = rng.uniform(-80, 80) * rng.choice([0.01, 1])
    dhalf = abs(rng.gauss(0, 30)) * rng.choice([0.01, 1])
    return {"diff": p_t - p_c, "lower": lower, "upper": upper, "p": p, "reoffenders": rng.choice([0, 5, 29, 30, 31, 200]),
            "p_t": p_t, "p_c": p_c, "days": days, "dlo": days - dhalf, "dhi": days + dhalf,
            "needed": rng.choice([None, 37, 404473, 1450, 12_345_678]), "gamma": rng.choice([None, 1.0, 1.37, 2.5]),
            "label": rng.choice([None, "proven offending (first or repeat)"]),
            "n": rng.choice([None, 41, 134, 850])}


def _check_common(text: str) -> None:
    assert not NEG_ZERO.search(text), text
    assert not ONE_PLURAL.search(text), text
    assert "nan" not in text.lower().split(), text


def test_wording_never_contradicts_the_numbers_over_thousands_of_random_results():
    rng = random.Random(20190401)
    for _ in range(5000):
        r = _random_result(rng)
        crosses = r["lower"] <= 0 <= r["upper"]
        sig = w.is_significant(r["p"], r["reoffenders"])
        words = w.measure_words(r["label"])
        f = w.rate_finding(r["diff"], r["lower"], r["upper"], r["p"], r["reoffenders"],
                           number_needed=r["needed"], n_analysed=r["n"], **words)
        s = f.sentence
        _check_common(s)
        # a near-zero estimate is described honestly: no absurd number needed, no call for "more people"
        absurd = r["n"] is not None and r["needed"] is not None and r["needed"] > w.REALISTIC_MULTIPLE * r["n"]
        if crosses and not sig and absurd:
            assert "consistent with no effect" in s and "any realistic number" in s, s
            assert "More people would need" not in s and "About" not in s, s
        if r["n"] is not None:
            for m in re.findall(r"About ([\d,]+)", s):
                assert int(m.replace(",", "")) <= w.REALISTIC_MULTIPLE * r["n"] * 1.05, s
                # a large number needed says how many times those analysed it is
                assert ("times the" in s) == (r["needed"] >= w.LARGE_MULTIPLE * r["n"]), s
        if "consistent with no effect" in s:
            assert crosses and not sig, s
        p_s = w.power_sentence(r["diff"], r["lower"], r["upper"], sig, r["needed"], r["n"])
        _check_common(p_s)
        if sig or not crosses:
            assert p_s == ""
        # an uncertain result is never stated as a finding; a finding only when significant
        if crosses:
            assert "does not show a reliable effect" in s, s
            assert "lower by" not in s and "higher by" not in s and "evidence shows" not in s
            # bounds keep enough decimals: a non-zero bound never prints as 0
            assert not ZERO_BOUND.search(s) or (r["lower"] == 0 or r["upper"] == 0), s
        if "The evidence shows" in s:
            assert sig and not crosses
        if not sig:
            assert "The evidence shows" not in s
        if r["label"]:
            assert "reoffend" not in s, s
        # derived quantities carry no false precision (two significant figures)
        for m in re.findall(r"About ([\d,]+)", s):
            assert len(m.replace(",", "").rstrip("0")) <= 2, s
        g = w.frequency_finding(r["diff"], r["lower"], r["upper"], r["p"], r["reoffenders"],
                                offences=words["offences"])
        _check_common(g.sentence)
        if crosses:
            assert "does not show a reliable difference" in g.sentence
            assert not ZERO_BOUND.search(g.sentence) or r["lower"] == 0 or r["upper"] == 0, g.sentence
        # days free of reoffending: a finding only when the CI excludes 0 and >= 30 reoffenders
        d = w.days_finding(r["days"], r["dlo"], r["dhi"], r["reoffenders"])
        _check_common(d)
        if r["dlo"] <= 0 <= r["dhi"] or r["reoffenders"] < w.MIN_REOFFENDERS:
            assert "no reliable difference" in d and "spent on average" not in d, d
        else:
            word = "more" if r["days"] > 0 else "fewer"
            assert f" {word} day" in d
        # differences agree with the shown rounded rates, or say they come from unrounded rates
        shown = w.round_half_up(100 * r["p_t"]) - w.round_half_up(100 * r["p_c"])
        note = w.difference_note(r["p_t"], r["p_c"], r["diff"])
        assert (w.round_half_up(100 * r["diff"]) == shown) == (note is None)
        # sensitivity: only for a significant headline, and 'reduction' only for a reduction
        sens = w.sensitivity_sentence(sig, r["gamma"], r["diff"])
        if not sig or r["gamma"] is None:
            assert sens is None
        else:
            assert ("reduction" in sens) == (r["diff"] < 0)


def test_bounds_keep_their_sign_and_decimals():
    f = w.rate_finding(-0.04, -0.09, 0.0022, 0.07, 100)
    assert "as many as a fraction of one more" in f.sentence  # 0.22 per 100: people come whole
    assert w.signed_num(-0.001, 2) == "−0.001" and w.signed_num(0.0) == "0"
    assert w.approx(404473) == "400,000" and w.approx(37) == "37"
    assert "1 fewer day " in w.days_finding(-1.2, -3, -0.5, 40)
    assert "21 fewer days" not in w.days_finding(-21, -60, 18, 40)


def test_a_near_zero_estimate_is_not_given_an_absurd_number_needed():
    """Issue 11 (funder read): "about 400,000 participants would be needed" then "more people would need to be
    analysed" for an estimate of about 0. The words now say what the data allow."""
    f = w.rate_finding(-0.001, -0.12, 0.118, 0.98, 12, number_needed=404473, n_analysed=41)
    assert "400,000" not in f.sentence and "More people would need" not in f.sentence
    assert "consistent with no effect" in f.sentence and "0.1 percentage points" in f.sentence
    # a realistic number needed is still given, to two significant figures
    g = w.rate_finding(-0.03, -0.12, 0.06, 0.4, 12, number_needed=367, n_analysed=41)
    assert "About 370 participants" in g.sentence and "More people would need" in g.sentence
    assert "times the" not in g.sentence
    h = w.rate_finding(-0.03, -0.18, 0.12, 0.7, 9, number_needed=2300, n_analysed=41)
    assert "About 2,300 participants" in h.sentence and "about 56 times the 41 analysed here" in h.sentence
    assert not w.too_small_to_detect(-0.03, 367, 41) and w.too_small_to_detect(-0.001, 404473, 41)
    assert w.too_small_to_detect(0.0, None, 41) and not w.too_small_to_detect(-0.001, 404473, None)


def test_say_boxes_do_not_ask_for_more_people_when_no_realistic_study_would_do():
    from evaluation.report.guidance import say_boxes_for

    text = say_boxes_for("X", difference=-0.001, lower=-0.12, upper=0.118, p=0.98, n=41, reoffenders=9,
                         number_needed=404473)
    assert "More people would need" not in text and "consistent with no effect" in text
    assert "not evidence of no effect" in text  # and the cannot-say box still guards against over-reading
    text = say_boxes_for("X", difference=-0.05, lower=-0.12, upper=0.02, p=0.17, n=134, reoffenders=40,
                         number_needed=900)
    assert "More people would need to be analysed" in text


def test_power_section_describes_a_near_zero_estimate_honestly():
    from evaluation.register import Register
    from evaluation.report.content import power_text

    def ev(diff, lo, hi, nn):
        reg = Register()
        reg.count("n.participants", "Participants analysed", 41, "headline", exact=True)
        reg.add("rate.difference", "difference", diff, "pp", "headline", lower=lo, upper=hi, p_value=0.9,
                significant=False)
        reg.add("power.mdd", "mdd", 0.27, "pp", "power")
        reg.add("power.p_control", "p", 0.27, "proportion", "power")
        reg.add("power.number_needed", "nn", nn, "number", "power")
        prog = type("P", (), {"outcome": {"label": "proven offending (first or repeat)"}})()
        return type("Ev", (), {"register": lambda self: reg, "treated_reoffenders": 9, "programme": prog})()

    text = power_text(ev(-0.001, -0.12, 0.118, 404473))
    assert "400,000" not in text and "would be needed" not in text
    assert "consistent with no effect" in text and "27 percentage points" in text  # the MDD for the actual N
    assert "Fewer than 30 participants offended" in text and "reoffend" not in text  # children: first or repeat
    text = power_text(ev(-0.05, -0.2, 0.1, 367))
    assert "about **370** participants would be needed" in text and "consistent with no effect" not in text


def test_e_value_is_not_worded_as_robustness_for_a_result_that_is_not_significant():
    from evaluation.register import Register
    from evaluation.report.content import sensitivity_text

    def ev(sig, e, eci):
        reg = Register()
        reg.add("rate.difference", "difference", -0.06, "pp", "headline", lower=-0.1, upper=-0.02 if sig else 0.01,
                p_value=0.01 if sig else 0.07, significant=sig)
        reg.add("sensitivity.e_value", "E", e, "ratio", "sensitivity")
        reg.add("sensitivity.e_value_ci", "E ci", eci, "ratio", "sensitivity")
        return type("Ev", (), {"register": lambda self: reg, "sensitivity": {}})()

    text = sensitivity_text(ev(False, 1.5, 1.0))
    assert "not significant, so no unmeasured factor is needed" in text and "1 means" not in text
    text = sensitivity_text(ev(True, 1.9, 1.3))
    assert "at least 1.30 each to move the interval" in text and "1.90 to explain the estimate away" in text


def test_measure_words_for_first_or_repeat_offending():
    """Issue 11 (funder read): children's programmes measure proven offending (first or repeat), yet sentences
    said "fewer than 30 participants reoffended". Every sentence about the measure takes its words from
    wording.measure_words; only sentences that contrast the two words may use "reoffend"."""
    from evaluation import wording

    w = wording.measure_terms("proven offending (first or repeat)")
    assert (w["verb"], w["offence"], w["first"], w["offending"]) == ("offended", "proven offence", "first offence",
                                                                     "offending")
    assert "reoffend" not in " ".join(str(v) for v in w.values())
    assert "fewer than 30 participants reoffended" in wording.days_finding(-3, -2, -1, 12)
    s = wording.days_finding(-3, -2, -1, 12, offence="proven offence", verb="offended")
    assert "fewer than 30 participants offended" in s and "reoffend" not in s


def test_consistent_with_no_effect_also_says_what_the_interval_allows():
    """Funder read (MACE p2, p7, portfolio p4): "The data are consistent with no effect ... could not be detected"
    read as "MACE doesn't work" while the interval still allowed 7 fewer per 100. Wherever that sentence is written
    (findings, say boxes, power section) it now says, from the interval's bounds, what it allows on the side of
    benefit (and of harm)."""
    from evaluation.register import Register
    from evaluation.report.content import power_text
    from evaluation.report.guidance import say_boxes_for

    assert w.consistent_with_no_effect(-0.07, 0.05) == (
        "The data are consistent with no effect, but also with a reduction of up to 7 per 100 participants (or an "
        "increase of up to 5 per 100).")
    assert w.consistent_with_no_effect(0.0, 0.04).endswith("an increase of up to 4 per 100 participants.")
    assert w.consistent_with_no_effect(0.01, 0.04) == "" and w.consistent_with_no_effect(float("nan"), 0.1) == ""
    f = w.rate_finding(-0.003, -0.071, 0.065, 0.93, 12, number_needed=404473, n_analysed=41)
    assert "consistent with no effect, but also with a reduction of up to 7 per 100 participants." in f.sentence
    box = say_boxes_for("X", difference=-0.003, lower=-0.071, upper=0.065, p=0.93, n=41, reoffenders=9,
                        number_needed=404473)
    assert "a reduction of up to 7.1 per 100 participants (or an increase of up to 6.5 per 100)" in box
    reg = Register()
    reg.count("n.participants", "Participants analysed", 41, "headline", exact=True)
    reg.add("rate.difference", "difference", -0.003, "pp", "headline", lower=-0.071, upper=0.065, p_value=0.9,
            significant=False)
    reg.add("power.mdd", "mdd", 0.27, "pp", "power")
    reg.add("power.p_control", "p", 0.27, "proportion", "power")
    reg.add("power.number_needed", "nn", 404473, "number", "power")
    prog = type("P", (), {"outcome": {}})()
    ev = type("Ev", (), {"register": lambda self: reg, "treated_reoffenders": 40, "programme": prog})()
    assert "a reduction of up to 7 per 100 participants (or an increase of up to 7 per 100)" in power_text(ev)
    rng = random.Random(7)
    for _ in range(2000):
        r = _random_result(rng)
        s = w.rate_finding(r["diff"], r["lower"], r["upper"], r["p"], r["reoffenders"],
                           number_needed=r["needed"], n_analysed=r["n"], **w.measure_words(r["label"])).sentence
        if "consistent with no effect" in s and min(r["lower"], r["upper"]) < 0:
            assert "a reduction of up to" in s, s
