"""Value for money: cost per participant, reoffences avoided, monetised benefit and benefit–cost ratio.

Inputs
------
* Funding from the programme config (``funding_gbp``, ``funding_price_year``; e.g. Pathway Out (ADDER)
  £95,000 in 2021). A programme with no published funding raises :class:`VfmError` ("funding not published").
* The matched effect on the **number of proven reoffences per person** over the one-year follow-up
  (participants − comparison; negative = fewer reoffences), its 95% CI and p-value, e.g. from
  ``design.effect("reoffence_count")``.
* The offence-group mix of the **comparison group's** proven reoffences (what the avoided reoffences would
  have been), from ``offences.offence_group``.
* Unit costs per offence from ``config/unit_costs.yaml`` (Home Office RR99, 2nd ed. 2018, 2015/16 prices,
  editable, with source and price year), uprated to the funding's price year with the GDP deflator table in
  the same file. Offence groups with no published unit cost in the config are **not valued** (count £0 and
  are listed), never invented.

Conventions: money in GBP at the stated price year (financial year ``"YYYY/YY"``); a calendar funding year
``Y`` is taken as financial year ``Y/Y+1`` (the programme's funding started in that year).

One denominator chain, said in the text: the cost per head divides the funding by everyone **referred** (the
money was spent on all of them); the effect is estimated for the **matched** participants (the average effect
on those treated, ATT), so reoffences avoided = ``-(effect per person) × matched participants`` and the
benefit is for those people only; the interval is the effect's 95% CI scaled the same way. Referred people who
were not analysed (no full follow-up, never started, unmatched) add cost but no counted benefit, so the
benefit–cost ratio is conservative. The statement names each N.
The benefit is linear in the effect, so the benefit–cost ratio interval is the effect's CI mapped through
it. Only benefits from reoffences avoided in the one-year follow-up are counted (no later years, no
discounting, no other outcomes): a partial, conservative benefit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import yaml

from evaluation.errors import EvaluationError
from evaluation.schemas import OFFENCE_GROUPS  # noqa: E402 - the code list is defined once, in schemas
NOT_SIGNIFICANT = "no reliable evidence of savings"


MINUS = "\u2212"  # a true minus sign: a hyphen can be read as a dash and lets a line break after it
NBSP = "\u00a0"


def gbp(x: float) -> str:
    """Money for a funder, with a true minus sign: ``-43788.2 -> '−£43,788'`` (U+2212).

    A hyphen-minus lets a PDF break the line between the sign and the amount ("from -⏎£92,420") and reads as a
    dash; the minus sign (U+2212) does not break from the figure that follows it.

    Examples
    --------
    >>> gbp(-43788.2)
    '−£43,788'
    >>> gbp(1500)
    '£1,500'
    """
    text = f"£{abs(x):,.0f}"
    return MINUS + text if x < 0 and text != "£0" else text


def range_bounds(lo: float, hi: float) -> tuple[float, float]:
    """The bounds of an interval in GBP as published: to the nearest £1,000 (£100 when both are below £10,000);
    more digits would be false precision."""
    step = 1000 if max(abs(lo), abs(hi)) >= 10_000 else 100
    return float(step * round(lo / step)), float(step * round(hi / step))


def _range(lo: float, hi: float) -> str:
    """``'−£92,000 to £18,000'`` (:func:`range_bounds`) with non-breaking spaces, so a range never splits across
    lines."""
    a, b = range_bounds(lo, hi)
    return f"{gbp(a)}{NBSP}to{NBSP}{gbp(b)}"


class VfmError(EvaluationError):
    """Value-for-money inputs are unusable; the message names the file/argument and key."""


def default_unit_costs_path() -> Path:
    from evaluation.config import repo_root

    return repo_root() / "config" / "unit_costs.yaml"


@dataclass(frozen=True)
class UnitCosts:
    """Unit costs per offence (``costs`` by RR99 category at ``price_year``), the project group mapping
    (``groups``: project group -> category or None = not valued) and the deflator index (financial year ->
    index, base = 100)."""

    costs: dict[str, float]
    groups: dict[str, str | None]
    price_year: str
    deflator: dict[str, float]
    source: str
    deflator_source: str
    path: Path | None = None
    checked: str = ""  # how far the figures were checked (``source_checked``), said in every statement

    def factor(self, to_year: str) -> float:
        """Uprating factor from ``price_year`` to ``to_year`` (ratio of GDP deflators)."""
        for y in (self.price_year, to_year):
            if y not in self.deflator:
                raise VfmError(f"{self.path or 'unit costs'}: key 'deflator.index': no value for price year '{y}' "
                               f"(have {', '.join(self.deflator)})")
        return self.deflator[to_year] / self.deflator[self.price_year]

    def group_costs(self, price_year: str | None = None) -> pd.DataFrame:
        """One row per project offence group: RR99 category, unit cost at ``price_year`` (NaN = not valued)."""
        f = self.factor(price_year) if price_year else 1.0
        rows = []
        for g, cat in self.groups.items():
            base = self.costs.get(cat) if cat else None
            rows.append({"offence_group": g, "rr99_category": cat,
                         "unit_cost_base": float(base) if base is not None else np.nan,
                         "unit_cost": float(base) * f if base is not None else np.nan,
                         "valued": base is not None})
        return pd.DataFrame(rows)


def load_unit_costs(path: str | Path | None = None) -> UnitCosts:
    """Read ``config/unit_costs.yaml`` (or ``path``) and check it; errors name the file and key."""
    path = Path(path) if path else default_unit_costs_path()
    if not path.exists():
        raise VfmError(f"{path}: unit cost configuration not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise VfmError(f"{path}: not valid YAML: {exc}") from None
    for key in ("unit_costs", "offence_groups", "price_year", "deflator", "source"):
        if not raw or key not in raw:
            raise VfmError(f"{path}: key '{key}' is required")
    costs = {}
    for k, v in (raw["unit_costs"] or {}).items():
        if not isinstance(v, (int, float)) or v < 0:
            raise VfmError(f"{path}: key 'unit_costs.{k}': must be a number ≥ 0, got {v!r}")
        costs[str(k)] = float(v)
    groups = {}
    for g, cat in (raw["offence_groups"] or {}).items():
        if g not in OFFENCE_GROUPS:
            raise VfmError(f"{path}: key 'offence_groups.{g}': unknown offence group (known: {', '.join(OFFENCE_GROUPS)})")
        if cat is not None and cat not in costs:
            raise VfmError(f"{path}: key 'offence_groups.{g}': category '{cat}' has no entry under unit_costs")
        groups[g] = cat
    defl = raw["deflator"] or {}
    index = {str(k): float(v) for k, v in (defl.get("index") or {}).items()}
    price_year = str(raw["price_year"])
    if price_year not in index:
        raise VfmError(f"{path}: key 'deflator.index': needs the unit costs' price year '{price_year}'")
    return UnitCosts(costs=costs, groups=groups, price_year=price_year, deflator=index, source=str(raw["source"]),
                     deflator_source=str(defl.get("source", "")), path=path,
                     checked=str(raw.get("source_checked") or ""))


def financial_year(year: int | str) -> str:
    """``2021 -> '2021/22'``; a string already in ``'YYYY/YY'`` form is returned unchanged."""
    if isinstance(year, str) and "/" in year:
        return year
    y = int(year)
    return f"{y}/{(y + 1) % 100:02d}"


def programme_funding(programme) -> tuple[float, str | None]:
    """(funding in GBP, price year) from the programme config; :class:`VfmError` when it is not published."""
    from evaluation.config import load_programme

    if isinstance(programme, str):
        programme = load_programme(programme)
    amount = programme.get("funding_gbp")
    if amount is None:
        raise VfmError(f"{programme.path}: key 'funding_gbp': funding not published for '{programme.id}', so cost "
                       "per participant and value for money cannot be calculated")
    # YAML reads ".nan" and ".inf" as floats, and NaN <= 0 is False: finite, and not a bool (True is an int)
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount) or amount <= 0:
        raise VfmError(f"{programme.path}: key 'funding_gbp': must be a positive amount in GBP, got {amount!r}")
    year = programme.get("funding_price_year")
    return float(amount), (financial_year(year) if year is not None else None)


def cost_per_participant(funding: float, participants: int, completers: int | None = None) -> dict[str, float]:
    """Funding divided by participants (people who started) and by completers (GBP per person)."""
    if participants is None or participants <= 0:
        raise VfmError(f"participants: must be a positive number of people, got {participants!r}")
    out = {"funding": float(funding), "participants": int(participants),
           "cost_per_participant": float(funding) / participants}
    if completers is not None:
        if completers < 0 or completers > participants:
            raise VfmError(f"completers: must be between 0 and participants ({participants}), got {completers}")
        out["completers"] = int(completers)
        out["cost_per_completer"] = float(funding) / completers if completers else float("nan")
    return out


def reoffences_avoided(effect: float, ci: tuple[float, float], eligible_participants: int) -> dict[str, float]:
    """Reoffences avoided over the follow-up year: ``-effect × n`` with the CI scaled the same way.

    ``effect``: matched difference in proven reoffences per person (participants − comparison); ``ci``: its
    95% CI; ``eligible_participants``: participants with a full follow-up. Positive = reoffences avoided.
    """
    if eligible_participants is None or eligible_participants < 0:
        raise VfmError(f"eligible_participants: must be ≥ 0, got {eligible_participants!r}")
    lo, hi = sorted(ci)
    if not (lo <= effect <= hi):
        raise VfmError(f"ci: the effect {effect} is not inside its confidence interval {ci}")
    n = int(eligible_participants)
    return {"avoided": -effect * n, "lower": -hi * n, "upper": -lo * n, "eligible_participants": n,
            "effect_per_person": float(effect)}


def offence_mix(offences: pd.DataFrame | pd.Series, *, column: str = "offence_group") -> pd.Series:
    """Share of reoffences by offence group (sums to 1) from the comparison group's proven reoffences.

    ``offences``: rows of the canonical offences table (or a Series of offence groups). Unknown groups raise
    :class:`VfmError` naming the group and the first rows.
    """
    groups = offences if isinstance(offences, pd.Series) else offences.get(column)
    if groups is None:
        raise VfmError(f"offences: no column '{column}'")
    groups = groups.astype("string")
    bad = groups[~groups.isin(OFFENCE_GROUPS) | groups.isna()]
    if len(bad):
        raise VfmError(f"offences: column '{column}': unknown offence group(s) "
                       f"{', '.join(sorted(map(str, bad.dropna().unique()))) or '<missing>'} in rows "
                       f"{', '.join(map(str, bad.index[:5].tolist()))} (known: {', '.join(OFFENCE_GROUPS)})")
    if groups.empty:
        raise VfmError("offences: no reoffences to take the offence mix from")
    return groups.value_counts(normalize=True).rename("share")


@dataclass
class VfmResult:
    """Value-for-money figures (GBP at ``price_year``); see the module docstring for conventions."""

    programme_id: str
    price_year: str
    funding: float
    costs: dict[str, float]
    avoided: dict[str, float]
    cost_per_reoffence: float
    valued_share: float
    not_valued: list[str]
    benefit: float
    benefit_ci: tuple[float, float]
    bcr: float
    bcr_ci: tuple[float, float]
    p_value: float
    significant: bool
    mix: pd.DataFrame = field(repr=False)
    unit_cost_source: str = ""
    deflator_source: str = ""
    unit_cost_checked: str = ""  # how far the unit costs were checked (config ``source_checked``)
    denominators: dict = field(default_factory=dict)  # referred, analysed, matched: the N each figure uses

    def __repr__(self) -> str:
        return (f"VfmResult({self.programme_id!r}, funding={self.funding:,.0f}, bcr={self.bcr:.2f} "
                f"[{self.bcr_ci[0]:.2f}, {self.bcr_ci[1]:.2f}], significant={self.significant}, "
                f"N={self.denominators})")

    def caveat(self) -> str:
        """Where the unit costs come from, how far they were checked, and what the benefit leaves out."""
        checked = (f" Unit costs checked: {self.unit_cost_checked}; the money figures are provisional until they "
                   "are verified." if self.unit_cost_checked else "")
        return (f"Unit costs: {self.unit_cost_source}.{checked} Uprated with {self.deflator_source}. Only "
                "reoffences avoided in the one-year follow-up are counted.")

    def to_dict(self) -> dict[str, Any]:
        return {"programme_id": self.programme_id, "price_year": self.price_year, "funding": self.funding,
                **self.costs, "reoffences_avoided": self.avoided["avoided"],
                "reoffences_avoided_ci": [self.avoided["lower"], self.avoided["upper"]],
                "cost_per_reoffence": self.cost_per_reoffence, "valued_share": self.valued_share,
                "not_valued": list(self.not_valued), "benefit": self.benefit, "benefit_ci": list(self.benefit_ci),
                "bcr": self.bcr, "bcr_ci": list(self.bcr_ci), "p_value": self.p_value,
                "significant": self.significant, "statement": self.text(),
                "unit_cost_source": self.unit_cost_source, "deflator_source": self.deflator_source,
                "unit_cost_checked": self.unit_cost_checked, "caveat": self.caveat(),
                "denominators": dict(self.denominators)}

    def summary(self) -> pd.DataFrame:
        rows = [("Funding", self.funding, np.nan, np.nan),
                ("Cost per participant", self.costs.get("cost_per_participant"), np.nan, np.nan),
                ("Cost per completer", self.costs.get("cost_per_completer", np.nan), np.nan, np.nan),
                ("Reoffences avoided (1 year)", self.avoided["avoided"], self.avoided["lower"], self.avoided["upper"]),
                ("Average cost of a reoffence", self.cost_per_reoffence, np.nan, np.nan),
                ("Benefit (reoffences avoided × cost)", self.benefit, *self.benefit_ci),
                ("Benefit–cost ratio", self.bcr, *self.bcr_ci)]
        return pd.DataFrame(rows, columns=["figure", "value", "lower", "upper"]).assign(price_year=self.price_year)

    def text(self, shown: Mapping[str, str] | None = None) -> str:
        """Plain-English statement for a funder, naming the N behind each figure (one denominator chain).

        Parameters
        ----------
        shown : mapping, optional
            The counts as the report publishes them (``referred``, ``matched``, ``analysed``, ``completers`` → text,
            e.g. a rounded or suppressed figure from the report's register), so the statement never prints a count more
            exactly than the report's own tables do (an exact "134 of 136" would undo the rounding that hides a
            small number of unmatched people). Default: the exact counts (library use, not a report).
        """
        cpp = self.costs.get("cost_per_participant")
        n = self.denominators
        referred = n.get("referred", self.costs.get("participants"))
        matched = n.get("matched", self.avoided.get("eligible_participants"))
        shown = dict(shown or {})
        # a count given as "" in `shown` is left out of the prose (e.g. a rounded count beside an exact one would
        # give back their small difference)
        fmt = {k: shown[k] if k in shown else (f"{v:,}" if isinstance(v, (int, np.integer)) else str(v))
               for k, v in (("referred", referred), ("matched", matched), ("analysed", n.get("analysed")))}
        from evaluation.disclosure import per_head_amount

        def per_head(text):
            """The funding over a published (rounded) count, to £10: never more exact than the count."""
            try:
                k = int(str(text).replace(",", ""))
            except ValueError:
                return None
            return per_head_amount(self.funding, k) if k > 0 else None

        if "referred" in shown:
            # the report's count is rounded: "about", and the cost per referral no more exact than it (£10), from
            # the rounded count (from the exact one, funding / cost would give the exact count back). Always so in
            # a report, also when the rounding leaves the count as it was: "the 175 people referred" only then
            # would tell a reader which rounded counts are exact
            cost = per_head(shown["referred"])
            s = f"The programme cost £{self.funding:,.0f} for about {fmt['referred']} referrals"
            if cost is not None:
                s += f", about £{cost:,.0f} per referral"
        else:
            s = (f"The programme cost £{self.funding:,.0f} for the {fmt['referred']} people referred, about "
                 f"£{cpp:,.0f} per person referred")
        if "cost_per_completer" in self.costs and not math.isnan(self.costs["cost_per_completer"]):
            if "completers" in shown:  # as the report publishes the count: rounded (about), or [c] (no cost)
                cost = per_head(shown["completers"])
                if cost is not None:
                    s += f" and about £{cost:,.0f} per person who completed it (about {shown['completers']} people)"
            else:
                s += f" and £{self.costs['cost_per_completer']:,.0f} per person who completed it"
        s += f" ({self.price_year} prices). "
        chain = f"The effect on reoffending was estimated for the {fmt['matched']} participants who could be matched"
        if n.get("analysed") and n["analysed"] != matched and fmt["analysed"]:
            chain += f" (of {fmt['analysed']} with a full follow-up)"
        chain += (", so any saving below is for those people only; the other referrals add cost but no counted "
                  "benefit. ") if referred and matched and referred != matched else ". "
        s += chain
        if not self.significant:
            s += (f"The analysis found {NOT_SIGNIFICANT}: the effect on the number of proven reoffences was not "
                  f"statistically reliable (p{NBSP}={NBSP}{self.p_value:.2f}), so the savings could be anywhere from "
                  f"{_range(*self.benefit_ci)} (a figure below zero is extra cost) and no benefit–cost ratio can be "
                  "claimed.")
        else:
            s += (f"Compared with similar people, they committed an estimated {self.avoided['avoided']:.0f} "
                  f"fewer proven reoffences in a year (between {self.avoided['lower']:.0f} and "
                  f"{self.avoided['upper']:.0f}), worth about £{self.benefit:,.0f} in "
                  f"costs of crime: £{self.bcr:.2f} for every £1 spent on the whole programme (between "
                  f"£{self.bcr_ci[0]:.2f}{NBSP}and{NBSP}£{self.bcr_ci[1]:.2f}).")
        if self.not_valued:
            s += (f" {100 * (1 - self.valued_share):.0f}% of reoffences are in offence groups with no published unit "
                  "cost here and are valued at £0, so the money figures understate the size of any effect, "
                  "whichever way it goes.")
        return s  # where the unit costs come from and how far they were checked: :meth:`caveat`, said once

    def plot(self, ax=None):
        """Benefit–cost ratio with its 95% interval against the break-even line (ratio 1)."""
        import matplotlib.pyplot as plt

        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 2.2), constrained_layout=True)
        ax.errorbar([self.bcr], [0], xerr=[[self.bcr - self.bcr_ci[0]], [self.bcr_ci[1] - self.bcr]], fmt="o",
                    color="C0" if self.significant else "0.5", capsize=4)
        ax.axvline(1.0, color="k", ls="--", lw=0.8, label="break-even (£1 back per £1)")
        ax.axvline(0.0, color="0.6", lw=0.6)
        ax.set_yticks([])
        ax.set_xlabel(f"benefit–cost ratio (£ benefit per £1 spent, {self.price_year} prices)")
        ax.legend(frameon=False, fontsize=8, loc="upper right")
        ax.set_title("Value for money" + ("" if self.significant else f" ({NOT_SIGNIFICANT})"))
        return fig if fig is not None else ax.figure


def value_for_money(
    programme,
    *,
    effect: float | Any,
    ci: tuple[float, float] | None = None,
    p_value: float | None = None,
    eligible_participants: int,
    mix: pd.Series | pd.DataFrame,
    participants: int,
    completers: int | None = None,
    treated_reoffenders: int | None = None,
    matched_participants: int | None = None,
    unit_costs: UnitCosts | str | Path | None = None,
    price_year: str | int | None = None,
    alpha: float = 0.05,
) -> VfmResult:
    """Cost per participant/completer, reoffences avoided, monetised benefit and benefit–cost ratio.

    ``effect``: matched difference in proven reoffences per person (participants − comparison), or an object
    with ``estimate``, ``ci_low``, ``ci_high``, ``p_value`` (``design.effect("reoffence_count")``).
    ``mix``: offence-group shares of the comparison group's reoffences (:func:`offence_mix`) or the offences
    themselves. ``price_year``: default the funding's price year (else the latest deflator year).
    Significance: ``p <= alpha`` and, when ``treated_reoffenders`` is given, at least 30 of them (Justice
    Data Lab convention, :mod:`evaluation.wording`); otherwise the statement says "no reliable evidence of
    savings".

    Denominators (one chain, named in the text): ``participants`` (everyone referred) for the cost per head;
    the matched participants for reoffences avoided and the benefit: ``matched_participants``, else the
    effect object's ``n_treated``, else ``eligible_participants`` (``eligible_participants`` is then only
    reported as the number analysed).
    """
    from evaluation.config import load_programme
    from evaluation.wording import MIN_REOFFENDERS

    if isinstance(programme, str):
        programme = load_programme(programme)
    matched = None
    if hasattr(effect, "estimate"):
        ci = (effect.ci_low, effect.ci_high) if ci is None else ci
        p_value = getattr(effect, "p_value", None) if p_value is None else p_value
        matched = getattr(effect, "n_treated", None)
        effect = effect.estimate
    if matched_participants is not None:
        matched = int(matched_participants)
    if ci is None or p_value is None:
        raise VfmError("effect: needs its confidence interval (ci) and p_value")
    uc = unit_costs if isinstance(unit_costs, UnitCosts) else load_unit_costs(unit_costs)
    funding, funding_year = programme_funding(programme)
    year = financial_year(price_year) if price_year is not None else (funding_year or max(uc.deflator))
    if isinstance(mix, pd.DataFrame):
        mix = offence_mix(mix)
    else:
        offence_mix(pd.Series(mix.index, dtype="string"))  # checks the group names
    if not math.isclose(float(mix.sum()), 1.0, abs_tol=1e-6):
        raise VfmError(f"mix: offence-group shares must sum to 1, got {float(mix.sum()):.4f}")
    gc = uc.group_costs(year).set_index("offence_group")
    unmapped = [g for g in mix.index if g not in gc.index]
    if unmapped:
        raise VfmError(f"{uc.path}: key 'offence_groups': no entry for offence group(s) {', '.join(unmapped)}")
    table = pd.DataFrame({"share": mix}).join(gc)
    table["unit_cost"] = table["unit_cost"].fillna(0.0)
    table["contribution"] = table["share"] * table["unit_cost"]
    cost_per_reoffence = float(table["contribution"].sum())
    valued_share = float(table.loc[table["valued"], "share"].sum())
    not_valued = [g for g in table.index if not table.loc[g, "valued"]]

    costs = cost_per_participant(funding, participants, completers)
    n_effect = matched if matched is not None else eligible_participants
    avoided = reoffences_avoided(effect, ci, n_effect)
    denominators = {"referred": int(participants), "analysed": int(eligible_participants), "matched": int(n_effect)}
    benefit = avoided["avoided"] * cost_per_reoffence
    b_ci = (avoided["lower"] * cost_per_reoffence, avoided["upper"] * cost_per_reoffence)
    significant = (p_value <= alpha) and (treated_reoffenders is None or treated_reoffenders >= MIN_REOFFENDERS)
    return VfmResult(
        programme_id=programme.id, price_year=year, funding=funding, costs=costs, avoided=avoided,
        cost_per_reoffence=cost_per_reoffence, valued_share=valued_share, not_valued=not_valued,
        benefit=benefit, benefit_ci=b_ci, bcr=benefit / funding, bcr_ci=(b_ci[0] / funding, b_ci[1] / funding),
        p_value=float(p_value), significant=bool(significant), mix=table.reset_index(names="offence_group"),
        unit_cost_source=uc.source, deflator_source=uc.deflator_source, unit_cost_checked=uc.checked,
        denominators=denominators,
    )


# -------------------------------------------------------------------------- education, training and employment
ETE_STATUSES = ("employment", "education_training", "not_in_ete", "unknown")


class EteError(EvaluationError):
    """ETE records missing or unusable; the message names the file/table, column and how many rows."""


@dataclass
class EteResult:
    """Education, training and employment (ETE) outcomes of a programme's participants (descriptive).

    ``table``: one row per measure with ``count``, ``denominator`` (people), ``rate`` (0–1), ``shown`` (False
    when disclosure control withholds the row) and ``denominator_label``. There is no comparison group (no ETE
    records exist for non-participants), so nothing here is an effect of the programme.
    """

    programme_id: str
    programme_name: str
    table: pd.DataFrame
    referred: int
    started: int
    threshold: int
    excluded: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"EteResult({self.programme_id!r}, referred={self.referred}, started={self.started}, rows={len(self.table)})"

    def summary(self) -> pd.DataFrame:
        """The published table: counts and rates with withheld rows shown as ``[c]`` (strings, ready to print)."""
        t = self.table
        out = pd.DataFrame({
            "People": [f"{int(c):,}" if s else "[c]" for c, s in zip(t["count"], t["shown"])],
            "Out of": [f"{int(d):,}" for d in t["denominator"]],
            "Rate": [f"{100 * r:.0f}%" if s and d else ("[c]" if not s else "–")
                     for r, s, d in zip(t["rate"], t["shown"], t["denominator"])],
            "Out of whom": t["denominator_label"].tolist(),
        }, index=t["measure"].tolist())
        out.index.name = "Education, training and employment"
        return out

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for r in self.table.itertuples(index=False):
            rows.append({"id": r.id, "measure": r.measure, "denominator": int(r.denominator),
                         "denominator_label": r.denominator_label,
                         "count": int(r.count) if r.shown else None, "rate": float(r.rate) if r.shown else None,
                         "suppressed": not bool(r.shown)})
        return {"programme_id": self.programme_id, "referred": self.referred, "started": self.started,
                "design": "descriptive (no comparison group)", "threshold": self.threshold, "measures": rows,
                "statement": self.text()}

    def _row(self, key: str):
        t = self.table.set_index("id")
        return t.loc[key] if key in t.index else None

    def text(self) -> str:
        """Plain-English statement; says that the figures are descriptive and which N each uses."""
        s = (f"Of the {self.referred:,} people referred to {self.programme_name}, {self.started:,} started. "
             "These figures describe participants only: no education, training or employment records exist for "
             "similar people who did not take part, so they cannot show what the programme changed.")
        parts = []
        for key, what in (("ete.at_start", "were in education, training or employment when they started"),
                          ("ete.at_exit", "were in education, training or employment when they left"),
                          ("ete.sustained_3m", "were still in it three months after leaving"),
                          ("ete.sustained_6m", "were still in it six months after leaving")):
            r = self._row(key)
            if r is None or not r["denominator"]:
                continue
            if r["shown"]:
                parts.append(f"{100 * r['rate']:.0f}% ({int(r['count']):,} of {int(r['denominator']):,} "
                             f"{r['denominator_label']}) {what}")
            else:
                parts.append(f"the number who {what} is withheld (fewer than {self.threshold} people, or too few "
                             "not to be)")
        if parts:
            s += " " + "; ".join(p[:1].upper() + p[1:] if i == 0 else p for i, p in enumerate(parts)) + "."
        return s

    def plot(self, ax=None):
        """Rates of the shown measures as horizontal bars (withheld rows are left out and named in the title)."""
        import matplotlib.pyplot as plt

        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 2.4), constrained_layout=True)
        t = self.table[self.table["shown"] & (self.table["denominator"] > 0)]
        ax.barh(t["measure"], 100 * t["rate"], color="C0")
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of participants (descriptive; no comparison group)")
        return fig if fig is not None else ax.figure


def _ete_table(world) -> pd.DataFrame:
    df = getattr(world, "ete", None)
    if df is not None:
        return df
    from evaluation.validate import DataError, load_table

    path = getattr(world, "path", None)
    if path is None:
        raise EteError("world: no 'ete' table and no world folder to read it from")
    try:
        return load_table(path, "ete")
    except DataError as exc:
        raise EteError(f"ete outcomes need the provider's ETE records (table 'ete', data/README.md): {exc}") from None


def ete_outcomes(world, programme, ev=None, *, threshold: int | None = None) -> EteResult:
    """Education, training and employment outcomes of a programme's participants, disclosure-ready.

    Parameters
    ----------
    world : World
        A loaded world (``referrals``; the ``ete`` table is read from ``world.ete`` or ``<world.path>/ete.csv``).
    programme : Programme or str
        The programme (e.g. ``"pathway-out-adder"``).
    ev : ProgrammeEvaluation, optional
        Not needed for the figures; accepted so a report can pass its evaluation (the referred N is taken from
        the referrals table, the same source as the evaluation's attrition).
    threshold : int, optional
        Disclosure threshold (default: the programme's ``disclosure.threshold``). A row is withheld when its count,
        or the denominator minus it, is from 1 to ``threshold - 1`` (either would reveal a small group).

    Returns
    -------
    EteResult
        Rows (``id``): ``ete.at_start`` (of those who started), ``ete.at_exit`` (of those who started with a
        known exit status), ``ete.at_exit.employment`` and ``ete.at_exit.education_training`` (same denominator),
        ``ete.sustained_3m`` and ``ete.sustained_6m`` (of those due, with a known status). Rates are 0–1.

    Raises
    ------
    EteError
        No ETE records; ETE rows for people not referred to the programme (count given, no ids); duplicate
        people.

    Examples
    --------
    >>> res = ete_outcomes(world, "pathway-out-adder")  # doctest: +SKIP
    >>> res.summary()  # doctest: +SKIP
    """
    from evaluation.config import load_programme
    from evaluation.report.guidance import md_escape

    if isinstance(programme, str):
        programme = load_programme(programme)
    thr = int(threshold if threshold is not None else programme.disclosure_threshold)
    ete = _ete_table(world)
    ete = ete[ete["programme_id"] == programme.id]
    refs = world.referrals[world.referrals["programme_id"] == programme.id]
    if ete.empty:
        raise EteError(f"ete: no rows for programme '{programme.id}'")
    unknown = ~ete["person_id"].isin(refs["person_id"])
    linked_away = 0
    if unknown.any() and getattr(world, "linked", None) is not None:
        # referrals from a provider's list linked to police records: the records of a referral that was not found
        # (or of a repeat referral) have no person in the cohort; they are left out and counted, never an error
        linked_away = int(unknown.sum())
        ete, unknown = ete[~unknown], unknown[~unknown]
    if unknown.any():
        raise EteError(f"ete: {int(unknown.sum())} row(s) for people with no referral to '{programme.id}' "
                       "(column person_id)")
    dup = ete["person_id"].duplicated()
    if dup.any():
        raise EteError(f"ete: {int(dup.sum())} duplicated person(s) for '{programme.id}' (column person_id)")
    started_ids = refs.loc[refs["start_date"].notna(), "person_id"]
    excluded = {"ete rows for people with no start date": int((~ete["person_id"].isin(started_ids)).sum()),
                "ete rows for referrals not found in police records": linked_away}
    e = ete[ete["person_id"].isin(started_ids)]
    started = int(len(started_ids))
    # people still on the programme have no exit status (empty): they are in no exit measure's denominator
    left = e[e["status_at_exit"].notna()]
    excluded["still on the programme (no exit status yet)"] = int(len(e) - len(left))
    n_unknown = int((left["status_at_exit"] == "unknown").sum())
    if 0 < n_unknown < thr:
        # those who left minus the known-status denominator would reveal a small group: count the few unknown
        # exits as not known to be in ETE, over everyone who left (and say so in the label)
        known, exit_label = left, "who left (exit status unknown counted as not in ETE)"
    else:
        known, exit_label = left[left["status_at_exit"] != "unknown"], "who left with a known status"
    in_exit = known["status_at_exit"].isin(["employment", "education_training"])
    rows = [
        ("ete.at_start", "In ETE when they started", int(e["ete_at_start"].sum()), started, "who started"),
        ("ete.at_exit", "In ETE when they left", int(in_exit.sum()), len(known), exit_label),
        ("ete.at_exit.employment", "  of which employment", int((known["status_at_exit"] == "employment").sum()),
         len(known), exit_label),
        ("ete.at_exit.education_training", "  of which education or training",
         int((known["status_at_exit"] == "education_training").sum()), len(known), exit_label),
    ]
    for col, key, label in (("sustained_3m", "ete.sustained_3m", "Still in ETE 3 months after leaving"),
                            ("sustained_6m", "ete.sustained_6m", "Still in ETE 6 months after leaving")):
        v = known[col].fillna(0) if known is left else known[col].dropna()
        rows.append((key, label, int(v.sum()), int(len(v)), "due, with a known status" if known is not left
                     else exit_label))
    t = pd.DataFrame(rows, columns=["id", "measure", "count", "denominator", "denominator_label"])
    t["rate"] = np.where(t["denominator"] > 0, t["count"] / t["denominator"].clip(lower=1), np.nan)
    small = lambda x: (x > 0) & (x < thr)  # noqa: E731
    t["shown"] = ~(small(t["count"]) | small(t["denominator"] - t["count"]) | small(t["denominator"]))
    # employment + education/training = in ETE at exit: if one part is withheld, withhold the other too
    parts = t["id"].isin(["ete.at_exit.employment", "ete.at_exit.education_training"])
    if (~t.loc[parts, "shown"]).any():
        t.loc[parts, "shown"] = False
    return EteResult(programme_id=programme.id, programme_name=md_escape(programme.name), table=t,
                     referred=int(len(refs)), started=started, threshold=thr, excluded=excluded)
