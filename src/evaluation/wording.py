"""Plain-English wording and rounding in the Justice Data Lab (JDL) style.

The funder reports follow the conventions of the Ministry of Justice Justice Data Lab reports
(see docs/methodology.md and https://www.gov.uk/government/collections/justice-data-lab-pilot-statistics):

* rates are shown as whole percentages, with ``"<1%"`` for a small non-zero share;
* frequencies (reoffences per person) to 2 decimal places; p-values to 2 decimal places (``"<0.01"`` below);
* a difference is called *significant* only when ``p <= 0.05`` **and** the treatment group has at least
  30 reoffenders (:data:`MIN_REOFFENDERS`); time to first reoffence is not a headline with fewer than 30;
* a significant result is worded "by between X and Y percentage points"; a non-significant one as
  "as many as X fewer or as many as Y more ... more people would need to be analysed", or, when the estimate is
  too small for any realistic number of people to detect, "the data are consistent with no effect" (no absurd
  number needed is printed).

Conventions: differences are *participants minus comparison*, so a negative difference means participants
reoffended less. Percentage points (pp) are used for differences of rates, never per cent.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

MIN_REOFFENDERS = 30
ALPHA = 0.05


def _is_missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(share: float | None, *, small: str = "<1%") -> str:
    """A share (0–1) as a whole percentage: ``0.273 -> '27%'``; ``0.004 -> '<1%'``; ``0 -> '0%'``."""
    if _is_missing(share):
        return "–"
    value = 100.0 * share
    if 0 < abs(value) < 0.5:
        return small if value > 0 else "-" + small
    return f"{round_half_up(value):.0f}%"


def pp(diff: float | None, *, signed: bool = True) -> str:
    """A difference of two shares (0–1 scale) in whole percentage points: ``-0.052 -> '-5 pp'``."""
    if _is_missing(diff):
        return "–"
    value = round_half_up(100.0 * diff)
    if value == 0 and diff != 0:
        return "<1 pp"
    return f"{value:+.0f} pp" if signed else f"{abs(value):.0f} pp"


def freq(value: float | None) -> str:
    """A frequency (reoffences per person) to 2 decimal places."""
    if _is_missing(value):
        return "–"
    return f"{round_half_up(value, 2):.2f}"


def p_value(p: float | None) -> str:
    """A p-value to 2 decimal places; ``'<0.01'`` below 0.005."""
    if _is_missing(p):
        return "–"
    if p < 0.005:
        return "<0.01"
    text = f"{round_half_up(p, 2):.2f}"
    if text == "0.05" and p != 0.05:  # 0.052 printed as 0.05 reads as significant (the rule is p <= 0.05)
        return f"{round_half_up(p, 3):.3f}"
    return text


def round_half_up(x: float, ndigits: int = 0) -> float:
    """Round half away from zero, as published statistics do (Python's ``round`` rounds half to even)."""
    factor = 10.0**ndigits
    scaled = abs(x) * factor
    # a tiny epsilon guards against binary representation (2.675 is stored as 2.67499999...)
    rounded = math.floor(scaled + 0.5 + 1e-9) / factor
    return math.copysign(rounded, x)


def is_significant(p: float | None, treated_reoffenders: int | None) -> bool:
    """The JDL rule: ``p <= 0.05`` and at least :data:`MIN_REOFFENDERS` reoffenders among participants."""
    if _is_missing(p) or treated_reoffenders is None:
        return False
    return p <= ALPHA and treated_reoffenders >= MIN_REOFFENDERS


@dataclass(frozen=True)
class Finding:
    """A headline finding with its wording. ``difference``, ``lower``, ``upper`` are on the 0–1 scale."""

    measure: str
    difference: float
    lower: float
    upper: float
    p: float
    significant: bool
    sentence: str


def measure_words(label: str | None = None) -> dict:
    """Words for the measure: ``measure`` (for sentences), ``verb`` ("reoffended" / "offended") and
    ``offences`` ("reoffences" / "offences"), as :func:`rate_finding` takes them. ``label`` is the programme's
    ``outcome.label`` (e.g. "proven offending (first or repeat)" for children, some with no earlier offence).
    More forms: :func:`measure_terms`."""
    t = measure_terms(label)
    return {k: t[k] for k in ("measure", "verb", "offences")}


def measure_terms(label: str | None = None) -> dict:
    """Every form of the measure's words: those of :func:`measure_words`, and ``offence`` (singular), ``noun``
    ("proven reoffending" / the label), ``first`` ("first reoffence" / "first offence"), ``offending``
    ("reoffending" / "offending") and ``people`` ("reoffenders" / "people who offended"). Every sentence about
    the measure takes its words from here, so a children's report never says "reoffended" of a first offence."""
    if label and label.strip():
        return {"measure": f"one-year rate of {label.strip()}", "verb": "offended", "offences": "proven offences",
                "offence": "proven offence", "noun": label.strip(), "first": "first offence",
                "offending": "offending", "people": "people who offended"}
    return {"measure": "one-year proven reoffending rate", "verb": "reoffended", "offences": "proven reoffences",
            "offence": "proven reoffence", "noun": "proven reoffending", "first": "first reoffence",
            "offending": "reoffending", "people": "reoffenders"}


_FIRST_OR_REPEAT = [(r"\bdid not reoffend\b", "did not offend"), (r"\breoffenders\b", "people who offended"),
                    (r"\breoffended\b", "offended"), (r"\breoffences\b", "offences"),
                    (r"\breoffence\b", "offence"), (r"\breoffending\b", "offending"), (r"\breoffend\b", "offend")]


def first_or_repeat(text: str) -> str:
    """A label written for proven reoffending, in the words of a measure of proven offending, first or repeat
    (children with no earlier proven offence): "Participants analysed who reoffended" -> "... who offended",
    "Time to first proven reoffence" -> "Time to first proven offence". A capital letter stays a capital.

    >>> first_or_repeat("Reoffenders: number of proven reoffences")
    'People who offended: number of proven offences'
    """
    for pattern, repl in _FIRST_OR_REPEAT:
        text = re.sub(pattern, repl, text)
        text = re.sub(pattern.replace("\\br", "\\bR", 1), repl[:1].upper() + repl[1:], text)
    return text


def first_upper(text: str) -> str:
    """Capitalise the first letter only (``str.capitalize`` would turn "VCSE" into "Vcse").

    >>> first_upper("proven reoffending (MoJ)")
    'Proven reoffending (MoJ)'
    """
    return text[:1].upper() + text[1:]


def listing(items, last: str = "and") -> str:
    """``["a", "b", "c"]`` → ``"a, b and c"`` (``last="or"``: ``"a, b or c"``); one item as it is, none ``""``.

    >>> listing(["arrests"]), listing(["a", "b", "c"], "or")
    ('arrests', 'a, b or c')
    """
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else (", ".join(items[:-1]) + f" {last} " + items[-1]) if items else ""


def magnitude(x: float, *, scale: float = 1.0, decimals: int = 0) -> str:
    """``|x| * scale`` with enough decimals that a non-zero value never prints as 0 (``0.0022 pp -> '0.2'``)."""
    v = abs(x) * scale
    for d in range(decimals, decimals + 4):
        text = f"{round_half_up(v, d):.{d}f}"
        if float(text) != 0 or v == 0:
            return text
    return f"less than {10 ** -(decimals + 3):.{decimals + 3}f}"


def signed_num(x: float, decimals: int = 0) -> str:
    """A signed number for intervals: ``+0.4``, ``−21`` (Unicode minus, which never breaks from its number),
    ``0`` only for an exact zero; enough decimals that a non-zero value never prints as 0."""
    if _is_missing(x):
        return "–"
    sign = "+" if x > 0 else "−" if x < 0 else ""
    return sign + magnitude(x, decimals=decimals)


#: A difference of two proportions smaller than this is floating-point noise, not a difference (a real one between
#: groups of up to a million people is at least about 1e-12).
NOISE = 1e-13


def pp_size(difference: float) -> str:
    """The size of a difference of two proportions in percentage points, as every sentence and table prints it
    (one decimal, more only when it would print as 0): ``-0.006 -> '0.6'``. The headline table's signed value
    (:func:`pp_difference`) is this with its sign, so a summary's "0.6 percentage points" never meets "−1 pp"
    in the table (issue 11). A difference below :data:`NOISE` is floating-point noise (equal rates through a
    weighted regression give 2e-17), printed ``'0.0'``, not "less than 0.0001"."""
    return magnitude(0.0 if abs(difference) < NOISE else difference, scale=100, decimals=1)


def pp_difference(difference: float) -> str:
    """A signed difference of two proportions in percentage points for a table: ``-0.006 -> '−0.6'``; ``'0.0'``
    (no sign) for an exact zero."""
    if _is_missing(difference):
        return "–"
    size = pp_size(difference)
    return ("+" if difference >= NOISE else "−" if difference <= -NOISE else "") + size


def pp_bound(x: float) -> str:
    """A bound of a difference of rates in percentage points, without sign, never '0' for a non-zero value."""
    return magnitude(x, scale=100.0)


def _per_100_bound(x: float, word: str) -> str:
    """One end of an interval of a difference in rates, as people per 100: ``'6 fewer'``; an end under half a
    person per 100 is ``'a fraction of one more'`` (not ``'0.02 more'``: people come whole, and the point is only
    that the interval reaches across no difference)."""
    v = abs(min(0.0, x) if word == "fewer" else max(0.0, x)) * 100
    if 0 < v < 0.5:
        return f"a fraction of one {word}"
    return f"{pp_bound(v / 100)} {word}"


def plural(n_text: str, word: str) -> str:
    """``'1' day``, ``'2' days`` (the word follows the printed number)."""
    return f"{n_text} {word}" if n_text.lstrip("+−-") == "1" else f"{n_text} {word}s"


def crosses_zero(lower: float, upper: float) -> bool:
    return not (upper < 0 or lower > 0)


#: A number needed above this many times the people analysed is not a realistic study of the programme: the
#: report then says the effect is too small to detect instead of printing an absurd head count (a difference of
#: a fifth of a point "needs" some 400,000 participants, 3,000 times the 134 analysed). The number needed grows
#: with the square of (smallest detectable difference / estimate), so 100 times is an estimate below about a
#: tenth of what the design can detect.
REALISTIC_MULTIPLE = 100
#: Above this many times the people analysed, the number needed is given with that multiple, so its size is plain.
LARGE_MULTIPLE = 10


def too_small_to_detect(difference: float, number_needed: float | None, n_analysed: int | None) -> bool:
    """Whether a difference is too small for any realistic study to detect: the participants needed to detect it
    (:func:`evaluation.power.number_needed`) exceed :data:`REALISTIC_MULTIPLE` times those analysed, or none
    would do (an exact zero). ``False`` when the number analysed is not known (nothing to compare with)."""
    if n_analysed is None or n_analysed <= 0:
        return False
    if number_needed is None or (isinstance(number_needed, float) and not math.isfinite(number_needed)):
        return not _is_missing(difference) and difference == 0
    return number_needed > REALISTIC_MULTIPLE * n_analysed


def consistent_with_no_effect(lower: float, upper: float, *, who: str = "participants", harm: bool = True,
                              bound=None) -> str:
    """"The data are consistent with no effect" with what the same interval allows on each side, so the words never
    read as "the programme does not work" while the interval still allows a benefit.

    ``lower`` and ``upper`` are the 95% interval of a difference of two rates (participants − comparison, 0–1
    scale; a reduction is negative), as the register publishes them; the sizes are people per 100 ``who``
    (:func:`_per_100_bound`; ``bound``: another formatter of a bound's size, e.g. to match the precision of a
    sentence beside it). ``harm=False`` leaves out the increase where the text beside it already gives it. An
    interval not crossing 0 gives ``""`` (the data are then not consistent with no effect).

    >>> consistent_with_no_effect(-0.07, 0.05)
    'The data are consistent with no effect, but also with a reduction of up to 7 per 100 participants (or an increase of up to 5 per 100).'
    """
    if _is_missing(lower) or _is_missing(upper):
        return ""
    lo, hi = sorted((lower, upper))
    if not crosses_zero(lo, hi):
        return ""
    if bound is None:
        fewer = _per_100_bound(lo, "fewer").removesuffix(" fewer")
        more = _per_100_bound(hi, "more").removesuffix(" more")
    else:
        fewer, more = bound(abs(lo)), bound(abs(hi))
    text = "The data are consistent with no effect"
    if lo < 0:
        text += f", but also with a reduction of up to {fewer} per 100 {who}"
        if hi > 0 and harm:
            text += f" (or an increase of up to {more} per 100)"
    elif hi > 0:
        text += f", but also with an increase of up to {more} per 100 {who}"
    return text + "."


def power_sentence(difference: float, lower: float, upper: float, significant: bool,
                   number_needed: float | None, n_analysed: int | None, *, who: str = "participants") -> str:
    """What more data could do for a headline that is not significant (empty for a significant one).

    * interval including 0, effect too small to detect (:func:`too_small_to_detect`): the data are consistent with
      no effect, and no realistic number of participants would detect one this small (no head count is given);
    * interval including 0 otherwise: more people would be needed, with the number needed to two significant
      figures when known;
    * interval on one side of 0 but not significant (fewer than 30 reoffenders, or p above 0.05): nothing here.
    """
    if significant or _is_missing(lower) or _is_missing(upper) or not crosses_zero(*sorted((lower, upper))):
        return ""
    if too_small_to_detect(difference, number_needed, n_analysed):
        return (consistent_with_no_effect(lower, upper, who=who, harm=False)
                + " Analysing more people would narrow this range, but a "
                f"difference as small as the one observed ({pp_size(difference)} percentage "
                f"points) could not be detected with any realistic number of {who}.")
    text = "More people would need to be analysed to be confident of the effect."
    if number_needed and not (isinstance(number_needed, float) and not math.isfinite(number_needed)):
        times = ""
        if n_analysed and number_needed >= LARGE_MULTIPLE * n_analysed:
            times = f", about {approx(number_needed / n_analysed)} times the {n_analysed:,} analysed here"
        text += (f" About {approx(number_needed)} {who} (with a matched comparison group) would be needed to detect "
                 f"a difference of the size observed{times}.")
    return text


def rate_finding(
    difference: float,
    lower: float,
    upper: float,
    p: float,
    treated_reoffenders: int,
    *,
    who: str = "participants",
    measure: str = "one-year proven reoffending rate",
    verb: str = "reoffended",
    offences: str = "proven reoffences",
    number_needed: int | None = None,
    n_analysed: int | None = None,
) -> Finding:
    """JDL wording for a difference of two rates (participants − comparison, 0–1 scale, 95% CI).

    Never states an uncertain result (CI including 0) as a finding; bounds keep their sign and enough decimals.
    ``n_analysed`` (participants analysed) lets a near-zero estimate be described as too small to detect rather
    than with an absurd number needed (:func:`power_sentence`).
    """
    significant = is_significant(p, treated_reoffenders)
    lo, hi = sorted((lower, upper))
    if not crosses_zero(lo, hi):
        word = "lower" if hi < 0 else "higher"
        a, b = sorted((abs(lo), abs(hi)))
        between = f"by between {pp_bound(a)} and {pp_bound(b)} percentage points"
        if significant:
            direction = "less" if hi < 0 else "more"
            sentence = (f"The evidence shows that {who} {verb} {direction} than similar people who did not take "
                        f"part: the {measure} was {word} {between}.")
        else:
            why = (f"fewer than {MIN_REOFFENDERS} {who} {verb}" if treated_reoffenders < MIN_REOFFENDERS
                   else "the p-value is above 0.05")
            sentence = (f"The {measure} of {who} was {word} than that of similar people who did not take part, "
                        f"{between}, but {why}, so by Justice Data Lab convention the difference is not called "
                        "significant: it is an indication, not evidence.")
    else:
        sentence = (
            f"The analysis does not show a reliable effect on the {measure}. For every 100 {who}, "
            f"as many as {_per_100_bound(lo, 'fewer')} or as many as {_per_100_bound(hi, 'more')} "
            f"may have {verb}. " + power_sentence(difference, lo, hi, significant, number_needed, n_analysed, who=who)
        ).strip()
    return Finding(measure, difference, lower, upper, p, significant, sentence)


def approx(n: float) -> str:
    """A derived quantity without false precision: two significant figures, grouped (404,473 -> '400,000')."""
    n = float(n)
    if n < 100:
        return f"{round_half_up(n):,.0f}"
    digits = int(math.floor(math.log10(abs(n)))) - 1
    return f"{round_half_up(n, -digits):,.0f}"


def frequency_finding(
    difference: float, lower: float, upper: float, p: float, treated_reoffenders: int, *, who: str = "participants",
    offences: str = "proven reoffences",
) -> Finding:
    """JDL wording for a difference in reoffences per person (participants − comparison)."""
    significant = is_significant(p, treated_reoffenders)
    a, b = sorted((abs(lower), abs(upper)))
    if not crosses_zero(lower, upper):
        word = "fewer" if upper < 0 else "more"
        if significant:
            sentence = (f"{who.capitalize()} committed {word} {offences}: between {magnitude(a, decimals=2)} and "
                        f"{magnitude(b, decimals=2)} {word} per person over the year.")
        else:
            sentence = (f"{who.capitalize()} committed {word} {offences} (between {magnitude(a, decimals=2)} and "
                        f"{magnitude(b, decimals=2)} per person), but the difference is not called significant "
                        "by Justice Data Lab convention.")
    else:
        sentence = (
            f"The analysis does not show a reliable difference in the number of {offences}: {who} may have "
            f"committed as many as {magnitude(min(0.0, lower), decimals=2)} fewer or "
            f"{magnitude(max(0.0, upper), decimals=2)} more per person."
        )
    return Finding("frequency", difference, lower, upper, p, significant, sentence)


def days_finding(difference: float, lower: float, upper: float, treated_reoffenders: int, *, tau: float = 365,
                 who: str = "participants", offence: str = "proven reoffence", verb: str = "reoffended") -> str:
    """Restricted mean time free of a proven reoffence (participants − comparison, days): a finding only when the
    interval excludes 0 *and* at least :data:`MIN_REOFFENDERS` participants reoffended; otherwise said to be
    uncertain."""
    lo, hi = sorted((lower, upper))
    ci = f"95% CI in days {signed_num(lo)} to {signed_num(hi)}"
    if crosses_zero(lo, hi) or treated_reoffenders < MIN_REOFFENDERS:
        why = ("the interval includes no difference" if crosses_zero(lo, hi)
               else f"fewer than {MIN_REOFFENDERS} {who} {verb}")
        return (f"Time free of a {offence} over the first {tau:g} days: no reliable difference ({why}; "
                f"estimate {signed_num(difference)} {'day' if magnitude(difference) == '1' else 'days'}, {ci}).")
    word = "more" if difference > 0 else "fewer"
    n = magnitude(difference)
    return (f"Over the first {tau:g} days, {who} spent on average {n} {word} {'day' if n == '1' else 'days'} "
            f"without a {offence} than the comparison group ({ci}).")


def difference_note(p_treated: float, p_control: float, difference: float) -> str | None:
    """``None`` when the shown difference equals the difference of the shown (rounded) rates; otherwise the
    note that must accompany it."""
    shown = round_half_up(100 * p_treated) - round_half_up(100 * p_control)
    if round_half_up(100 * difference) == shown:
        return None
    return "Differences are calculated from unrounded rates, so they may differ by 1 from the rounded rates shown."


def sensitivity_sentence(significant: bool, gamma_max: float | None, direction: float) -> str | None:
    """The Rosenbaum sentence, only for a significant headline whose own 1:1 design gave the bounds."""
    if not significant or gamma_max is None:
        return None
    what = "reduction" if direction < 0 else "increase"
    return (f"The {what} stays significant unless hidden bias makes some people up to {gamma_max:.2f} times as "
            "likely to take part as their matched comparison" + (" (very slight hidden bias would overturn it)."
                                                                  if gamma_max < 1.2 else "."))


def per_100(rate: float | None) -> str:
    """A rate (0–1) as 'N in 100' for the 'for 100 typical people' table."""
    if _is_missing(rate):
        return "–"
    return f"{round_half_up(100 * rate):.0f}"


def small_sample_note(n_treated: int, treated_reoffenders: int | None, *, minimum_people: int = 60,
                      verb: str = "reoffended") -> str | None:
    """The honest caveat for small programmes (JDL asks for at least 60 people), or ``None``. ``verb``: what the
    measure counts (``measure_words(label)["verb"]``: "offended" where participants include children with no
    earlier offence)."""
    notes = []
    if n_treated < minimum_people:
        notes.append(
            f"Only {n_treated} participants could be analysed; the Justice Data Lab asks for at least "
            f"{minimum_people}. The estimates are imprecise and a real effect of a plausible size could go undetected."
        )
    if treated_reoffenders is not None and treated_reoffenders < MIN_REOFFENDERS:
        first = "first offence" if verb == "offended" else "first reoffence"
        notes.append(
            f"Fewer than {MIN_REOFFENDERS} participants {verb}, so no difference is called significant and time "
            f"to {first} is not a headline measure."
        )
    return " ".join(notes) or None


def signed(value: float, spec: str) -> str:
    """``format(value, spec)`` with a sign, except that a value that rounds to zero has none ("0.0%", not "-0.0%");
    a negative value takes the true minus sign (U+2212), which never breaks from its number and reads as a minus,
    not a hyphen."""
    text = format(value, spec)
    if float(text) == 0:
        return text.lstrip("+-")
    return "\u2212" + text[1:] if text.startswith("-") else text
