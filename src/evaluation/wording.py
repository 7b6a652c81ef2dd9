"""Plain-English wording and rounding in the Justice Data Lab (JDL) style.

The funder reports follow the conventions of the Ministry of Justice Justice Data Lab reports
(see ``EVALUATION-NOTES.md``):

* rates are shown as whole percentages, with ``"<1%"`` for a small non-zero share;
* frequencies (reoffences per person) to 2 decimal places; p-values to 2 decimal places (``"<0.01"`` below);
* a difference is called *significant* only when ``p <= 0.05`` **and** the treatment group has at least
  30 reoffenders (:data:`MIN_REOFFENDERS`); time to first reoffence is not a headline with fewer than 30;
* a significant result is worded "by between X and Y percentage points"; a non-significant one as
  "as many as X fewer or as many as Y more ... more people would need to be analysed".

Conventions: differences are *participants minus comparison*, so a negative difference means participants
reoffended less. Percentage points (pp) are used for differences of rates, never per cent.
"""
from __future__ import annotations

import math
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
    return f"{round_half_up(p, 2):.2f}"


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


def rate_finding(
    difference: float,
    lower: float,
    upper: float,
    p: float,
    treated_reoffenders: int,
    *,
    who: str = "participants",
    measure: str = "one-year proven reoffending rate",
    number_needed: int | None = None,
) -> Finding:
    """JDL wording for a difference of two rates (participants − comparison, 0–1 scale, 95% CI)."""
    significant = is_significant(p, treated_reoffenders)
    lo, hi = sorted((lower, upper))
    if significant:
        direction = "less" if difference < 0 else "more"
        sentence = (
            f"The evidence shows that {who} reoffended {direction} than similar people who did not take part: "
            f"the {measure} was lower by between {abs(round_half_up(100 * hi)):.0f} and "
            f"{abs(round_half_up(100 * lo)):.0f} percentage points."
            if difference < 0
            else f"The evidence shows that {who} reoffended {direction} than similar people who did not take part: "
            f"the {measure} was higher by between {round_half_up(100 * lo):.0f} and "
            f"{round_half_up(100 * hi):.0f} percentage points."
        )
    elif hi < 0 or lo > 0:
        # the interval excludes no difference, but the JDL rule (>= 30 reoffenders) withholds "significant"
        word = "lower" if hi < 0 else "higher"
        a, b = sorted((abs(round_half_up(100 * lo)), abs(round_half_up(100 * hi))))
        sentence = (
            f"The {measure} of {who} was {word} than that of similar people who did not take part, by between "
            f"{a:.0f} and {b:.0f} percentage points, but fewer than {MIN_REOFFENDERS} {who} reoffended, so by "
            "Justice Data Lab convention the difference is not called significant: it is an indication, "
            "not evidence."
        )
    else:
        fewer = max(0.0, -lo)
        more = max(0.0, hi)
        sentence = (
            f"The analysis does not show a reliable effect on the {measure}. For every 100 {who}, "
            f"as many as {round_half_up(100 * fewer):.0f} fewer or as many as {round_half_up(100 * more):.0f} more "
            f"may have reoffended. More people would need to be analysed to be confident of the effect."
        )
        if number_needed:
            sentence += (
                f" About {number_needed:,} {who} (with a matched comparison group) would be needed to detect a "
                "difference of the size observed."
            )
    return Finding(measure, difference, lower, upper, p, significant, sentence)


def frequency_finding(
    difference: float, lower: float, upper: float, p: float, treated_reoffenders: int, *, who: str = "participants"
) -> Finding:
    """JDL wording for a difference in reoffences per person (participants − comparison)."""
    significant = is_significant(p, treated_reoffenders)
    if significant:
        word = "fewer" if difference < 0 else "more"
        a, b = sorted((abs(lower), abs(upper)))
        sentence = (
            f"{who.capitalize()} committed {word} proven reoffences: between {freq(a)} and {freq(b)} {word} "
            "reoffences per person over the year."
        )
    elif upper < 0 or lower > 0:
        word = "fewer" if upper < 0 else "more"
        a, b = sorted((abs(lower), abs(upper)))
        sentence = (
            f"{who.capitalize()} committed {word} proven reoffences (between {freq(a)} and {freq(b)} per person), "
            f"but fewer than {MIN_REOFFENDERS} {who} reoffended, so the difference is not called significant."
        )
    else:
        sentence = (
            f"The analysis does not show a reliable difference in the number of proven reoffences: {who} may have "
            f"committed as many as {freq(max(0.0, -lower))} fewer or {freq(max(0.0, upper))} more per person."
        )
    return Finding("frequency of proven reoffending", difference, lower, upper, p, significant, sentence)


def per_100(rate: float | None) -> str:
    """A rate (0–1) as 'N in 100' for the 'for 100 typical people' table."""
    if _is_missing(rate):
        return "–"
    return f"{round_half_up(100 * rate):.0f}"


def small_sample_note(n_treated: int, treated_reoffenders: int | None, *, minimum_people: int = 60) -> str | None:
    """The honest caveat for small programmes (JDL asks for at least 60 people), or ``None``."""
    notes = []
    if n_treated < minimum_people:
        notes.append(
            f"Only {n_treated} participants could be analysed; the Justice Data Lab asks for at least "
            f"{minimum_people}. The estimates are imprecise and a real effect of a plausible size could go undetected."
        )
    if treated_reoffenders is not None and treated_reoffenders < MIN_REOFFENDERS:
        notes.append(
            f"Fewer than {MIN_REOFFENDERS} participants reoffended, so no difference is called significant and time "
            "to first reoffence is not a headline measure."
        )
    return " ".join(notes) or None


def signed(value: float, spec: str) -> str:
    """``format(value, spec)`` with a sign, except that a value that rounds to zero has none ("0.0%", not "-0.0%")."""
    text = format(value, spec)
    return text.lstrip("+-") if float(text) == 0 else text
