"""Reader guidance for funder reports: "What you can say / What you cannot say" boxes, a glossary, and the
programme facts with assumptions marked.

* :func:`say_boxes` writes the Justice Data Lab's two boxes from the headline result. The boxes never claim more
  than the numbers: a difference is evidence only under the JDL rule (p ≤ 0.05 **and** at least 30 participants
  who reoffended, :func:`evaluation.wording.is_significant`); otherwise the box says what range the data allow and
  that "no effect" may not be claimed either.
* :func:`glossary` returns the glossary (Markdown) from :data:`GLOSSARY`; ``docs/glossary.md`` is the same text.
* :func:`facts_table`, :func:`fact` and :func:`facts_markdown` print the programme facts of the cover. A value
  listed under ``assumed`` in ``programmes/<id>.yaml`` (dotted keys, e.g. ``[provider, start, area.comparison]``)
  was chosen for the synthetic world and is printed as "assumed for this illustration"; everything else comes
  from the public pages listed under ``sources``.

Text from configuration (programme names, providers) is escaped for Markdown before it is printed.
"""
from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

from evaluation import wording
from evaluation.outcomes import first_time_entrant_definition, proven_offence_definition

ASSUMED = "assumed for this illustration"

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|])")


def md_escape(text: Any) -> str:
    """Escape Markdown and HTML specials in text from data or configuration (``'a*b' -> 'a\\*b'``)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


# --------------------------------------------------------------------------------------------------- say boxes
def _bound_pp(x: float) -> str:
    """Percentage points to 1 dp for a bound, never a bare "0" that hides the sign."""
    v = 100 * abs(x)
    return f"{v:.1f}" if round(v, 1) > 0 else f"{v:.2f}"


def say_boxes_for(name: str, *, difference: float, lower: float, upper: float, p: float, n: int,
                  reoffenders: int, measure: str = "proven reoffending", min_people: int = 60,
                  number_needed: float | None = None) -> str:
    """The two JDL boxes (Markdown) from the headline numbers; see :func:`say_boxes`.

    Parameters
    ----------
    name : str
        Programme name (escaped here).
    difference, lower, upper : float
        Participants minus matched comparison in the one-year rate, and its 95% CI (proportions, 0–1).
    p : float
        Two-sided p-value of the difference.
    n : int
        Participants analysed (matched).
    reoffenders : int
        Participants analysed who reoffended (the JDL rule needs at least 30).
    measure : str
        What the rate counts, e.g. ``"proven reoffending"`` or ``"proven offending (first or repeat)"``.
    min_people : int
        Below this many participants the boxes add the JDL's small-group caution (default 60).
    number_needed : float, optional
        Participants needed to detect the observed difference (:func:`evaluation.power.number_needed`): when it is
        beyond any realistic study (:func:`evaluation.wording.too_small_to_detect`) the boxes do not ask for more
        people, they say an effect this small could not be detected.

    Returns
    -------
    str
        Markdown: two level-3 headings, "What you can say" and "What you cannot say", each with bullets.

    Raises
    ------
    ValueError
        If the CI does not contain the difference or a count is negative.

    Examples
    --------
    >>> text = say_boxes_for("X", difference=-0.05, lower=-0.12, upper=0.02, p=0.17, n=134, reoffenders=40)
    >>> "does not provide significant evidence" in text
    True
    """
    vals = (difference, lower, upper, p)
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals):
        raise ValueError("say_boxes: difference, lower, upper and p are required")
    if not (lower - 1e-12 <= difference <= upper + 1e-12):
        raise ValueError(f"say_boxes: the difference {difference} is outside its interval ({lower}, {upper})")
    if n < 0 or reoffenders < 0:
        raise ValueError("say_boxes: n and reoffenders must be ≥ 0")
    who = md_escape(name)
    measure = md_escape(measure)
    # the JDL rule, and an interval on one side of zero (a p-value and an interval from different methods
    # could disagree at the margin: the words then follow the interval, never the larger claim)
    significant = wording.is_significant(p, reoffenders) and (upper < 0 or lower > 0)
    can, cannot = [], []
    rate = f"the one-year rate of {measure}"
    if significant:
        verb = "decrease" if difference < 0 else "increase"
        lo, hi = sorted((abs(lower), abs(upper)))
        can.append(f"This analysis provides evidence that taking part in {who} may {verb} {rate}, by between "
                   f"{_bound_pp(lo)} and {_bound_pp(hi)} percentage points, for people like the {n:,} participants "
                   "analysed.")
        cannot.append(f"This analysis shows that {who} {verb}d {rate} by exactly {_bound_pp(abs(difference))} "
                      "percentage points: the true difference lies anywhere in the interval.")
        cannot.append(f"This result applies to everyone referred to {who}, or to people unlike those analysed "
                      "(it is the average effect on the participants who could be matched).")
    else:
        fewer, more = -lower, upper  # reductions are negative differences
        rng = []
        if fewer > 0:
            rng.append(f"as many as {_bound_pp(fewer)} fewer")
        if more > 0:
            rng.append(f"as many as {_bound_pp(more)} more")
        verb = "reoffended" if measure == "proven reoffending" else "offended"
        why = (f"fewer than 30 participants analysed {verb}, so the Justice Data Lab rule does not allow a "
               "difference to be called significant" if reoffenders < wording.MIN_REOFFENDERS and p <= wording.ALPHA
               else f"the difference is not statistically significant (p = {wording.p_value(p)})")
        can.append(f"This analysis does not provide significant evidence that taking part in {who} changes {rate}: "
                   f"{why}.")
        if rng:
            can.append("The true difference could be " + " or ".join(rng) + " people in every 100 participants "
                       f"with {measure} within a year than in the comparison group (95% confidence interval).")
        if wording.crosses_zero(lower, upper) and wording.too_small_to_detect(difference, number_needed, n):
            can.append(wording.consistent_with_no_effect(lower, upper, bound=_bound_pp)
                       + " More people would narrow the range, but an effect as small as the one estimated could not "
                       "be detected with any realistic number of participants.")
        else:
            can.append(f"More people would need to be analysed to say whether the programme affects {measure}.")
        cannot.append(f"This analysis shows that {who} reduces or increases {rate}.")
        cannot.append(f"This analysis shows that {who} has no effect on {measure} (a result that is not "
                      "significant is not evidence of no effect).")
    if n < min_people:
        can.append(f"The analysis is based on {n:,} participants, fewer than the {min_people} the Justice Data Lab "
                   "asks for; treat every figure as a rough guide.")
    return ("### What you can say\n\n" + "\n".join(f"- {x}" for x in can)
            + "\n\n### What you cannot say\n\n" + "\n".join(f"- {x}" for x in cannot))


def say_boxes(ev) -> str:
    """The JDL "What you can say / What you cannot say" boxes (Markdown) for a programme evaluation.

    Driven by the headline (one-year rate) result of ``ev`` (:class:`evaluation.estimates.ProgrammeEvaluation`):
    its difference and 95% CI, p-value, the matched N and the number of participants analysed who reoffended.

    Parameters
    ----------
    ev : ProgrammeEvaluation
        With ``effects["reoffended"]`` (an ATT effect: ``estimate``, ``ci_low``, ``ci_high``, ``p_value``,
        ``n_treated``), ``treated_reoffenders`` and ``programme``.

    Returns
    -------
    str
        Markdown; when there is no headline result, one "What you cannot say" box saying no estimate was made.

    Examples
    --------
    >>> display(Markdown(say_boxes(ev)))  # doctest: +SKIP
    """
    name = ev.programme.name
    e = (ev.effects or {}).get("reoffended")
    if e is None:
        what = "offending" if ev.programme.outcome.get("label") else "reoffending"
        return ("### What you can say\n\n- No impact estimate could be made for "
                f"{md_escape(name)}, so nothing can be said about its effect on {what}.\n\n"
                f"### What you cannot say\n\n- Anything about the programme's effect on {what}.")
    measure = str(ev.programme.outcome.get("label") or "proven reoffending").strip()
    return say_boxes_for(name, difference=e.estimate, lower=e.ci_low, upper=e.ci_high, p=e.p_value,
                         n=int(getattr(e, "n_treated", ev.n_treated)), reoffenders=int(ev.treated_reoffenders),
                         measure=measure, number_needed=(getattr(ev, "power", None) or {}).get("number_needed"))


# ---------------------------------------------------------------------------------------------------- glossary
def _proven_entry(follow_up_months: int = 12, waiting_months: int = 6) -> str:
    """The glossary's "Proven reoffending": the definition the code counts (as in every report's Methods)."""
    return (f"The Ministry of Justice definition: {proven_offence_definition(follow_up_months, waiting_months)}. "
            "The index date is when a person's follow-up starts (for participants, their "
            "referral or start date).")


def _fte_entry() -> str:
    """The glossary's "First-time entrant": who the code counts (as in every report's Methods)."""
    return (f"{wording.first_upper(first_time_entrant_definition())}. For children with no earlier offence record, "
            "a proven offence in the follow-up is a first entry into the justice system, not a reoffence. This is "
            "stricter than the national first-time entrant figures (which also count a child whose earlier offence "
            "was dealt with in another way, such as a community resolution), so the two cannot be compared.")


GLOSSARY: dict[str, str] = {
    "ATT (average effect on the treated)": "The difference the programme made, on average, to the people who took "
    "part: their outcome minus the outcome of matched comparison people like them. It says nothing directly about "
    "people unlike the participants.",
    "Caliper": "The largest difference in propensity score allowed between a participant and a comparison person "
    "for them to be matched, in standard deviations of the score (0.2 here). Participants with no comparison person "
    "inside the caliper are left unmatched and are counted in the attrition table.",
    "Cumulative incidence": "The share of a group who have had the event (a proven reoffence) by a given day, "
    "allowing for people followed for different lengths of time.",
    "E-value": "How strongly an unmeasured factor would have to be linked both to taking part and to reoffending "
    "(as a risk ratio) to explain the observed difference away. Larger values mean a more robust result.",
    "ETE (education, training or employment)": "Whether a person is in education, training or employment. "
    "Reported from the provider's records for participants only: there are no such records for people who did "
    "not take part, so ETE figures describe participants and do not show what the programme changed.",
    "First-time entrant": _fte_entry(),
    "Γ (Rosenbaum bound)": "Gamma: how much more likely one of two matched people could be to take part because of "
    "something the data do not record before the result would stop being significant. Γ = 1 means no hidden bias; "
    "a result that survives only up to Γ = 1.1 is fragile.",
    "Cause-specific hazard ratio": "A hazard ratio in which people who enter custody before the event stop being "
    "followed at that point (custody is a competing event). It compares the rates among people still in the "
    "community, so it need not move with the proportions who have the event by day 365.",
    "Difference-in-differences (DiD)": "The change in the pilot area's figures from before to during the pilot, "
    "minus the same change in the average of similar comparison areas. Changes the areas shared (such as national "
    "trends) cancel out.",
    "HAC standard errors": "Heteroskedasticity- and autocorrelation-consistent (Newey–West) standard errors: they "
    "allow neighbouring months of an area series to be correlated, which ordinary standard errors ignore.",
    "Hazard ratio": "The rate at which participants have the event (a proven reoffence) among those who have not yet "
    "had it, divided by the same rate in the comparison group, over the follow-up. Below 1: a lower rate among "
    "participants; 1: the same rate.",
    "Interrupted time series (ITS)": "A model of one area's monthly figures before the pilot (trend and seasonal "
    "pattern) carried forward as what would have happened without it; the change is the difference from that line.",
    "Ljung–Box test": "A test of whether the errors of a time-series model are still correlated from month to month. "
    "A small p-value (below 0.05) means they are, and the model's intervals may be too narrow.",
    "Placebo test (placebo p)": "Each comparison area in turn is treated as if it had had the pilot. The placebo p is "
    "the share of all areas whose difference is at least as large as the pilot area's (either direction): a sense "
    "check, not a significance test, because with few areas it cannot be small.",
    "Pre-trend check": "A check that the pilot area and the comparison areas moved in parallel before the pilot: a "
    "test that their difference was the same in every period before it, and a test of a steady drift in it. If "
    "either gives p < 0.05 the check fails, and a difference during the pilot is not read as the pilot's effect.",
    "ITT (intention to treat)": "Participants are analysed whether or not they completed the programme (everyone "
    "with a full follow-up who could be matched; the attrition table shows who that is). It answers 'what happened "
    "to the people the programme set out to help' and avoids the bias of analysing only completers.",
    "Proven reoffending": _proven_entry(),
    "RMST (restricted mean survival time)": "The average number of days, out of the first 365, that people spent "
    "without a proven reoffence. The difference between groups is in days.",
    "SMD (standardised mean difference)": "The difference between the groups' averages of a characteristic, divided "
    "by its standard deviation. After matching, values within ±0.1 show the groups are well balanced on it.",
    "95% confidence interval (CI)": "The range of values the data are consistent with. Intervals made this way "
    "contain the true value in 95 of every 100 evaluations like this one. An interval for a difference that "
    "includes 0 means the data allow no difference as well as a rise or a fall.",
    "p-value": "How often a difference at least as large as the one seen would arise by chance alone if the "
    "programme made no difference. A small value (0.05 or less) is evidence against 'no difference'; a large value "
    "does not show that there is no effect.",
    "Percentage points (pp)": "The difference between two percentages: 22% against 25% is a difference of 3 "
    "percentage points (which is 12% of 25%, not 3%).",
    "Statistically significant": "A difference with a p-value of 0.05 or less: unlikely to be chance alone. A "
    "difference that is not significant is not shown to be zero; the confidence interval says what it could be.",
    "Propensity score": "Each person's estimated chance of taking part, given the characteristics the data record "
    "(such as age, sex and earlier offences), from a logistic regression. Participants are matched to comparison "
    "people with similar scores.",
    "Variance ratio": "The spread (variance) of a characteristic among participants divided by its spread among the "
    "matched comparison people. Between 0.5 and 2 counts as balanced.",
}


#: Terms only an area (time-series) evaluation uses; the individual reports leave them out.
AREA_TERMS = ("Difference-in-differences (DiD)", "HAC standard errors", "Interrupted time series (ITS)",
              "Ljung–Box test", "Placebo test (placebo p)", "Pre-trend check")
#: Terms of the time-to-event analysis; left out of a report without it.
SURVIVAL_TERMS = ("Hazard ratio", "Cause-specific hazard ratio")
#: Terms of every report with a statistical comparison (people and area designs, and the portfolio).
STATS_TERMS = ("95% confidence interval (CI)", "p-value", "Percentage points (pp)", "Statistically significant")
#: Terms of a matched comparison; left out of a report without one.
MATCHING_TERMS = ("Propensity score", "Variance ratio", "SMD (standardised mean difference)", "Caliper",
                  "ATT (average effect on the treated)")

#: Abbreviations and local service names that programme pages and referral records use, spelled out in the glossary
#: of every report whose text has them (:func:`abbreviations_in`). Plain descriptions, nothing from outside the
#: repository beyond the names themselves.
ABBREVIATIONS: dict[str, str] = {
    "ADDER": "Addiction, Diversion, Disruption, Enforcement and Recovery: the Home Office's project against drug "
    "misuse and drug-related crime in a few pilot areas.",
    "CAMHS": "Child and Adolescent Mental Health Services.",
    "CCE": "Child criminal exploitation: children used by others to commit crime, such as carrying drugs for "
    "County Lines.",
    "DWP": "Department for Work and Pensions.",
    "Early Help": "Support from the council and its partners for a child or family as soon as problems emerge, "
    "before children's social care is needed.",
    "MACE": "Multi-Agency Child Exploitation: the police and council team for children at risk of exploitation.",
    "MASE": "Multi-Agency Sexual Exploitation: the police and council arrangements for children at risk of sexual "
    "exploitation.",
    "MASH": "Multi-Agency Safeguarding Hub: where police, children's services, health and education share "
    "information to decide how to respond to a concern about a child.",
    "OHID": "Office for Health Improvement and Disparities.",
    "OPCCN": "Office of the Police and Crime Commissioner for Norfolk.",
    "PCC": "Police and Crime Commissioner.",
    "VCSE": "Voluntary, community and social enterprise (organisations).",
    "YOT": "Youth Offending Team: the council's multi-agency team working with children who offend.",
}


def abbreviations_in(*texts: str) -> dict[str, str]:
    """The entries of :data:`ABBREVIATIONS` whose abbreviation appears (as a whole word, same case) in ``texts``."""
    joined = " ".join(str(t) for t in texts)
    return {k: v for k, v in ABBREVIATIONS.items() if re.search(rf"(?<![\w-]){re.escape(k)}(?![\w-])", joined)}


def _programme_text(programme) -> str:
    """What a report prints about the programme as one text: its name, the cover's facts (:func:`facts_table`) and
    the description its summary opens with (so the glossary spells out only what the report uses)."""
    raw = getattr(programme, "raw", None) or {}
    return " ".join([str(raw.get("name", "")), *map(str, facts_table(programme)["value"]),
                     str(raw.get("description", ""))])


def glossary(terms: list[str] | None = None, definitions: dict[str, str] | None = None) -> str:
    """The glossary as Markdown (a heading, then one bold term and its definition per paragraph).

    Parameters
    ----------
    terms : list of str, optional
        Keys of :data:`GLOSSARY` (or of ``definitions``) to include (default all of :data:`GLOSSARY`, in
        alphabetical order).
    definitions : dict of str to str, optional
        Texts that replace those of :data:`GLOSSARY` for some of its keys (a report's own follow-up months), or add
        terms (abbreviations, :func:`abbreviations_in`); added terms are always included.

    Returns
    -------
    str
        Markdown text; with no arguments, the same as ``docs/glossary.md``.

    Raises
    ------
    KeyError
        If a term is not in :data:`GLOSSARY` (the message lists the known terms).

    Examples
    --------
    >>> "RMST" in glossary()
    True
    """
    text = {**GLOSSARY, **(definitions or {})}
    if terms is not None:
        unknown = [t for t in terms if t not in text]
        if unknown:
            raise KeyError(f"glossary: unknown term(s) {', '.join(unknown)}; known: {', '.join(GLOSSARY)}")
    chosen = set(GLOSSARY if terms is None else terms) | (set(definitions or {}) - set(GLOSSARY))
    keys = sorted(chosen, key=lambda k: k.lstrip("Γ").lower() if not k.startswith("Γ") else "gamma")
    return "## Glossary\n\n" + "\n\n".join(f"**{k}.** {text[k]}" for k in keys) + "\n"


def glossary_for(ev, delivery=None) -> str:
    """The glossary for one report: every term except those its measures do not use (first-time entrants only
    where the programme reports them; the time-to-event terms only with a survival analysis; no area terms), and
    every abbreviation of :data:`ABBREVIATIONS` in the programme's facts or, with ``delivery`` (its
    :class:`~evaluation.delivery.DeliveryResult`), in its referral destinations."""
    skip = set(AREA_TERMS)  # area (time-series) designs only; matched comparisons do not use them
    if not ev.programme.outcome.get("first_time_entrants"):
        skip.add("First-time entrant")
    if getattr(ev, "ete", None) is None:
        skip.add("ETE (education, training or employment)")
    if getattr(ev, "survival", None) is None:
        skip.update(SURVIVAL_TERMS)
    if getattr(ev, "design", None) is None:
        skip.update(MATCHING_TERMS)
    oc = ev.programme.outcome
    own = {"Proven reoffending": _proven_entry(oc.get("follow_up_months", 12), oc.get("waiting_months", 6)),
           **abbreviations_in(_programme_text(ev.programme), _destinations(delivery))}
    text = glossary([k for k in GLOSSARY if k not in skip], own)
    if ev.programme.outcome.get("label"):  # the event is a proven offence, first or repeat (issue 11)
        text = (text.replace("(a proven reoffence)", "(a proven offence, first or repeat)")
                .replace("without a proven reoffence", "without a proven offence")
                .replace("taking part and to reoffending", "taking part and to offending"))
    return text


def _destinations(delivery) -> str:
    """The referral destinations of a delivery result as a reader sees them (empty without one)."""
    funnel = getattr(delivery, "funnel", None)
    if funnel is None or funnel.empty or "destination" not in funnel:
        return ""
    from evaluation.delivery import destination_label

    return " ".join(destination_label(d) for d in funnel["destination"].dropna())


def area_glossary(programme) -> str:
    """The glossary of an area (time-series) evaluation: its methods' terms (:data:`AREA_TERMS`) and the
    abbreviations in the programme's facts."""
    return glossary(list(AREA_TERMS) + list(STATS_TERMS), abbreviations_in(_programme_text(programme)))


def portfolio_glossary(text: str) -> dict[str, str]:
    """The portfolio's glossary entries ({term: definition}): the statistical terms its table and notes use, the
    area terms of its area rows, and every abbreviation of :data:`ABBREVIATIONS` in ``text`` (its own words)."""
    keys = list(STATS_TERMS) + ["Difference-in-differences (DiD)", "Placebo test (placebo p)", "Pre-trend check"]
    return {**{k: GLOSSARY[k] for k in keys}, **abbreviations_in(text)}


def delivery_glossary(programme, result=None) -> str:
    """The glossary of a delivery report: the abbreviations in the programme's facts and referral destinations
    (empty text when there are none)."""
    found = abbreviations_in(_programme_text(programme), _destinations(result))
    return glossary([], found) if found else ""


# ------------------------------------------------------------------------------------------------------- facts
def assumed_keys(programme) -> set[str]:
    """The dotted config keys the programme's YAML lists under ``assumed`` (values chosen for the synthetic world)."""
    raw = programme.get("assumed") or []
    if isinstance(raw, str):
        raw = [raw]
    return {str(k) for k in raw}


def is_assumed(programme, key: str) -> bool:
    """True when ``key`` (or a parent key, e.g. ``target_group`` for ``target_group.min_age``) is assumed."""
    keys = assumed_keys(programme)
    parts = key.split(".")
    return any(".".join(parts[:i]) in keys for i in range(1, len(parts) + 1))


def fact(programme, key: str, text: str) -> str:
    """``text`` (escaped) with " (assumed for this illustration)" when ``key`` is listed under ``assumed``.

    Examples
    --------
    >>> fact(programme, "provider", programme.provider)  # doctest: +SKIP
    'Norfolk County Council (assumed for this illustration)'
    """
    out = md_escape(text)
    return f"{out} ({ASSUMED})" if is_assumed(programme, key) else out


def facts_table(programme) -> pd.DataFrame:
    """The cover facts: one row per fact, its printed value and whether it was assumed for the synthetic world.

    Parameters
    ----------
    programme : Programme
        A programme config (``programmes/<id>.yaml``), optionally with ``assumed: [dotted keys]``.

    Returns
    -------
    DataFrame
        Index ``fact`` (Provider, Funders, Funding, Programme period and, for area designs, Pilot area and
        Comparison areas); columns ``value`` (escaped Markdown, assumed values marked "assumed for this
        illustration") and ``assumed`` (bool).

    Examples
    --------
    >>> facts_table(load_programme("mace")).loc["Provider", "assumed"]  # doctest: +SKIP
    True
    """
    rows = []

    def add(label, key, text, assumed=None):
        a = is_assumed(programme, key) if assumed is None else assumed
        rows.append({"fact": label, "value": md_escape(text) + (f" ({ASSUMED})" if a else ""), "assumed": a})

    add("Provider", "provider", programme.provider)
    add("Funders", "funders", ", ".join(programme.get("funders") or []) or "not stated")
    funding = programme.get("funding_gbp")
    add("Funding", "funding_gbp", f"£{funding:,.0f}" if funding else "not published")
    start = f"{programme.start:%B %Y}" + (f" ({ASSUMED})" if is_assumed(programme, "start") else "")
    end = f"{programme.end:%B %Y}" + (f" ({ASSUMED})" if is_assumed(programme, "end") else "")
    rows.append({"fact": "Programme period", "value": f"{start} – {end}",
                 "assumed": is_assumed(programme, "start") or is_assumed(programme, "end")})
    area = programme.get("area") or {}
    if area:
        add("Pilot area", "area.treated", area.get("treated", ""))
        add("Comparison areas", "area.comparison", ", ".join(area.get("comparison") or []))
    return pd.DataFrame(rows).set_index("fact")


def facts_markdown(programme, extract_date=None) -> str:
    """The cover's facts table as Markdown (header 'About the programme'), with the data extract date when given,
    followed by a note on what "assumed for this illustration" means when any fact is assumed."""
    t = facts_table(programme)
    from evaluation.report.guard import MD_PUBLISHED

    # marked: the build refuses Markdown tables that did not come from a content function
    lines = [MD_PUBLISHED, "| About the programme | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in t["value"].items()]
    if extract_date is not None:
        lines.append(f"| Data extract date | {pd.Timestamp(extract_date):%d %B %Y} |")
    text = "\n".join(lines)
    if t["assumed"].any():
        text += ("\n\n*Values marked “" + ASSUMED + "” are not in the programme's public pages: they were chosen "
                 "to build the synthetic data and must be replaced with the programme's own records.*")
    return text


def sources_markdown(programme) -> str:
    """The public pages the programme facts come from (``sources`` in the YAML), as a Markdown list."""
    items = []
    for s in programme.get("sources") or []:
        s = str(s)
        items.append(f"- <{s}>" if s.startswith(("http://", "https://")) else f"- {md_escape(s)}")
    return "**Sources.**\n\n" + "\n".join(items) if items else ""
