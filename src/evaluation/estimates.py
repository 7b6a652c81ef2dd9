"""Estimates: one call turns a validated world and a programme config into every figure a report publishes.

This is the stage between the matched design and the report::

    world (validated) --cohort--> participants + comparison pool --outcomes--> proven reoffending per person
        --matching--> matched design --> effects, survival, sensitivity, power --> ProgrammeEvaluation

:func:`evaluate_programme` runs the whole chain for an individual-impact programme with the options in its
``programmes/<id>.yaml``; the report notebooks call it and only display what it returns. Figures meant for
publication come from :meth:`ProgrammeEvaluation.results`, which applies disclosure control
(:mod:`evaluation.disclosure`) to every count, so a notebook cannot publish an unsuppressed count by accident.

Conventions: rates and differences of rates are proportions (0-1; the wording layer shows % and percentage
points); differences are participants minus matched comparison; frequencies are proven reoffences per person
over the 12-month follow-up; durations are days since the index date.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaluation import wording
from evaluation.config import Programme

OUTCOME_LABELS = {
    "reoffended": "One-year proven reoffending rate",
    "reoffence_count": "Frequency (proven reoffences per person)",
    "days_to_first": "Days to first proven reoffence (reoffenders only)",
}


@dataclass
class ProgrammeEvaluation:
    """Everything estimated for one programme (or one analysis of it, e.g. WONDER+ completers).

    Attributes hold person-level frames (``analysis``, ``design``) for researchers; only :meth:`results` and
    the ``*_table`` methods are meant for publication, and they apply disclosure control.
    """

    programme: Programme
    label: str
    extract_date: dt.date
    analysis: pd.DataFrame  # one row per eligible cohort member, with outcomes and survival columns
    attrition: pd.DataFrame  # stage, participants, comparison (counts)
    design: Any | None
    effects: dict = field(default_factory=dict)
    survival: Any | None = None
    sensitivity: dict = field(default_factory=dict)
    power: dict = field(default_factory=dict)
    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    subanalyses: dict = field(default_factory=dict)
    vfm: Any | None = None  # evaluation.vfm.VfmResult when the config publishes the programme's funding

    # ----------------------------------------------------------------------------------------------- helpers
    @property
    def threshold(self) -> int:
        return self.programme.disclosure_threshold

    @property
    def matched(self) -> pd.DataFrame | None:
        return None if self.design is None else self.design.matched

    @property
    def n_treated(self) -> int:
        return int((self.analysis["treat"] == 1).sum())

    @property
    def treated_reoffenders(self) -> int:
        a = self.analysis
        return int(a.loc[a["treat"] == 1, "reoffended"].sum())

    # ------------------------------------------------------------------------------------------------ tables
    def headline_table(self) -> pd.DataFrame:
        """Participants vs matched comparison for the three JDL measures, with 95% CIs and p-values.

        Columns: ``participants``, ``comparison`` (weighted means), ``difference``, ``lower``, ``upper``,
        ``p_value``, ``significant`` (JDL rule); rows labelled as in :data:`OUTCOME_LABELS`.
        """
        rows = []
        for key, eff in self.effects.items():
            significant = wording.is_significant(eff.p_value, self.treated_reoffenders)
            if key == "days_to_first" and self.treated_reoffenders < wording.MIN_REOFFENDERS:
                significant = False
            rows.append({"measure": OUTCOME_LABELS[key], "participants": eff.mean_treated,
                         "comparison": eff.mean_control, "difference": eff.estimate, "lower": eff.ci_low,
                         "upper": eff.ci_high, "p_value": eff.p_value, "significant": significant})
        return pd.DataFrame(rows).set_index("measure")

    def per_100_table(self) -> pd.DataFrame:
        """The JDL "for 100 typical people" table: per 100 participants vs per 100 matched comparison people."""
        rows = []
        if "reoffended" in self.effects:
            e = self.effects["reoffended"]
            rows.append({"measure": "Number who commit a proven reoffence within a year",
                         "participants": round(100 * e.mean_treated), "comparison": round(100 * e.mean_control)})
        if "reoffence_count" in self.effects:
            e = self.effects["reoffence_count"]
            rows.append({"measure": "Number of proven reoffences within a year",
                         "participants": round(100 * e.mean_treated), "comparison": round(100 * e.mean_control)})
        return pd.DataFrame(rows).set_index("measure") if rows else pd.DataFrame()

    def attrition_table(self) -> pd.DataFrame:
        """Attrition (people at each stage) with disclosure control applied to the counts."""
        from evaluation.disclosure import suppress

        table = self.attrition.set_index("stage")[["participants", "comparison"]]
        return suppress(table, threshold=self.threshold).display

    def balance_table(self) -> pd.DataFrame:
        """Standardised mean differences and variance ratios before and after matching (no counts)."""
        if self.design is None:
            return pd.DataFrame()
        bal = self.design.balance()
        cols = ["smd_before", "smd_after", "var_ratio_before", "var_ratio_after"]
        out = bal[cols].copy()
        out["balanced"] = out["smd_after"].abs() <= 0.1
        return out

    def profile_table(self) -> pd.DataFrame:
        """Treatment-group profile (sex, ethnicity, age band) as counts and shares, disclosure-controlled.

        Secondary suppression works within each characteristic, whose categories add up to the group total.
        """
        from evaluation.disclosure import suppress

        a = self.analysis[self.analysis["treat"] == 1]
        age_band = pd.cut(a["age"], [0, 13, 15, 17, 24, 34, 44, 120],
                          labels=["10-13", "14-15", "16-17", "18-24", "25-34", "35-44", "45+"])
        parts = []
        for name, values in (("Sex", a["sex"].map({"F": "Female", "M": "Male", "U": "Unknown"}).fillna("Unknown")),
                             ("Ethnicity", a["ethnicity_group"].astype(str)), ("Age at start", age_band.astype(str))):
            counts = values.value_counts().sort_index()
            counts = counts[counts.index != "nan"]
            t = counts.to_frame("participants")
            shown = suppress(t, threshold=self.threshold, total_row=False).display
            shown["share"] = [("–" if str(s).startswith("[") or str(s).startswith("<") else wording.pct(int(s) / len(a)))
                              for s in shown["participants"]]
            shown.index = pd.MultiIndex.from_product([[name], shown.index], names=["characteristic", "group"])
            parts.append(shown)
        return pd.concat(parts)

    # ----------------------------------------------------------------------------------------------- results
    def results(self) -> dict:
        """Every published figure, machine-readable, after disclosure control (for ``results.json``)."""
        from evaluation.disclosure import safe_count

        t = self.threshold
        head = self.headline_table()
        out: dict[str, Any] = {
            "programme_id": self.programme.id,
            "analysis": self.label,
            "extract_date": self.extract_date.isoformat(),
            "disclosure_threshold": t,
            "participants_analysed": safe_count(self.n_treated, t),
            "participant_reoffenders": safe_count(self.treated_reoffenders, t),
            "attrition": _records(self.attrition_table()),
            "headline": {k: _clean(v) for k, v in head.to_dict(orient="index").items()},
            "per_100": [{"measure": m, "per_100_participants": _num(r["participants"]),
                         "per_100_comparison": _num(r["comparison"])}
                        for m, r in self.per_100_table().iterrows()],
            "findings": [f.sentence for f in self.findings],
            "notes": list(self.notes),
        }
        if self.design is not None:
            ss = self.design.sample_sizes()
            out["matched"] = {"participants": safe_count(int(ss.loc["Matched", "treated"]), t),
                              "comparison": safe_count(int(ss.loc["Matched", "control"]), t),
                              "comparison_ess": round(float(ss.loc["Matched (ESS)", "control"]), 1)}
            out["balance"] = {k: _clean(v) for k, v in self.balance_table().to_dict(orient="index").items()}
        for key, eff in self.effects.items():
            out.setdefault("ratios", {})[key] = {name: dict(zip(("estimate", "lower", "upper", "p_value"),
                                                                map(_num, vals)))
                                                 for name, vals in eff.ratios.items()}
        if self.survival is not None:
            out["survival"] = {k: _clean(v) for k, v in self.survival.summary().to_dict(orient="index").items()}
        if self.sensitivity:
            out["sensitivity"] = _clean(self.sensitivity)
        if self.power:
            out["power"] = _clean(self.power)
        if self.vfm is not None:
            out["value_for_money"] = _clean(self.vfm.to_dict())
        if self.subanalyses:
            out["subanalyses"] = {k: v.results() for k, v in self.subanalyses.items()}
        return out


# --------------------------------------------------------------------------------------------------- chain
def evaluate_programme(world, programme: Programme | str, *, extract_date=None, seed: int = 0,
                       cohort=None, progress: bool = False) -> ProgrammeEvaluation:
    """Run cohort → outcomes → matching → effects → survival → sensitivity → power for one programme.

    Parameters
    ----------
    world : a validated world (:func:`evaluation.validate.load_world`).
    programme : a :class:`~evaluation.config.Programme` or its id.
    extract_date : the data extract date (default: the world's).
    seed : used where the design needs randomness (none for the default ``order="largest"``).
    cohort : a prebuilt :class:`evaluation.cohort.Cohort` (default: built from the world).

    Returns the intention-to-treat analysis; when the config sets ``completers_analysis: true`` (WONDER+), the
    analysis of completers against the same pool is in ``.subanalyses["completers"]``.
    """
    from evaluation.cohort import build_cohort
    from evaluation.config import load_programme
    from evaluation.outcomes import _world_extract_date

    if isinstance(programme, str):
        programme = load_programme(programme)
    if not programme.is_individual:
        raise ValueError(f"programme '{programme.id}': design '{programme.design}' has no individual participants; "
                         "use evaluation.area or evaluation.delivery")
    extract = pd.Timestamp(extract_date).date() if extract_date is not None else _world_extract_date(world)
    if cohort is None:
        cohort = build_cohort(world, programme, seed=seed)
    full = _with_outcomes(cohort, world, programme, extract)
    result = _evaluate(programme, "all participants (intention to treat)", extract, full,
                       _attrition(cohort, full), seed)
    if programme.get("funding_gbp") and result.design is not None:
        result.vfm = _value_for_money(result, world)
    if programme.get("completers_analysis"):
        treated = full["treat"] == 1
        keep = ~treated | (full["completion_status"].astype("string") == "completed")
        sub = full[keep]
        att = result.attrition.copy()
        att.loc[len(att)] = {"stage": "Completed the programme", "participants": int((sub["treat"] == 1).sum()),
                             "comparison": np.nan}
        result.subanalyses["completers"] = _evaluate(programme, "completers only", extract, sub, att, seed)
        result.subanalyses["completers"].notes.append(
            "Completers are a selected group: people who finish a programme usually differ from those who do not "
            "in ways the data cannot show (motivation, stability). Matching cannot remove that, so this comparison "
            "overstates the programme's effect; the intention-to-treat result is the headline.")
    return result


def _with_outcomes(cohort, world, programme: Programme, extract: dt.date) -> pd.DataFrame:
    from evaluation.outcomes import proven_reoffending, survival_view

    data = cohort.data
    oc = programme.outcome
    kw = dict(extract_date=extract, follow_up_months=int(oc["follow_up_months"]),
              waiting_months=int(oc["waiting_months"]))
    out = proven_reoffending(data[["person_id", "index_date"]], world.offences, **kw)
    sv = survival_view(data[["person_id", "index_date"]], world.offences, **kw)
    full = data.merge(out, on="person_id", how="left", validate="one_to_one")
    full = full.merge(sv, on="person_id", how="left", validate="one_to_one")
    return full


def _attrition(cohort, full: pd.DataFrame) -> pd.DataFrame:
    """Attrition as stages × (participants, comparison): the cohort's stages, then eligibility.

    :attr:`Cohort.attrition` is long (group, stage, n); stages that only apply to one group are blank for the
    other. The final cohort stage is replaced by the eligibility stages computed here.
    """
    rows: dict[str, dict] = {}
    att = cohort.attrition
    if att is not None and len(att):
        # participants' stages first, then the comparison pool's; a stage both share stays one row
        order = {"participants": 0}
        att = att.assign(_g=att["group"].map(lambda g: order.get(g, 1)), _i=range(len(att)))
        for r in att.sort_values(["_g", "_i"]).itertuples(index=False):
            if r.stage == "in cohort":
                continue
            col = "participants" if r.group == "participants" else "comparison"
            rows.setdefault(str(r.stage)[:1].upper() + str(r.stage)[1:], {})[col] = int(r.n)
    for reason, part in full[~full["eligible"].astype(bool)].groupby("exclusion_reason", observed=True):
        rows[f"Excluded: {reason}"] = {"participants": int((part["treat"] == 1).sum()),
                                       "comparison": int((part["treat"] == 0).sum())}
    el = full[full["eligible"].astype(bool)]
    rows["With a full follow-up and waiting period"] = {"participants": int((el["treat"] == 1).sum()),
                                                        "comparison": int((el["treat"] == 0).sum())}
    out = pd.DataFrame([{"stage": k, **v} for k, v in rows.items()]).set_index("stage")
    out = out.reindex(columns=["participants", "comparison"])
    out.index.name = "stage"
    return out.reset_index()


def _evaluate(programme: Programme, label: str, extract: dt.date, full: pd.DataFrame, attrition: pd.DataFrame,
              seed: int) -> ProgrammeEvaluation:
    from evaluation.matching import MatchingError, match
    from evaluation.survival import matched_survival

    analysis = full[full["eligible"].astype(bool)].reset_index(drop=True).copy()
    analysis["reoffended"] = analysis["reoffended"].astype(int)
    analysis["reoffence_count"] = analysis["reoffence_count"].astype(int)
    ev = ProgrammeEvaluation(programme=programme, label=label, extract_date=extract, analysis=analysis,
                             attrition=attrition.copy(), design=None)
    opts = programme.matching
    covariates = [c for c in opts.get("covariates", []) if c in analysis.columns]
    # a covariate that does not vary (e.g. 'yarmouth' for a Norwich-only programme) carries no information and
    # would make the propensity model singular: drop it and say so.
    # MatchIt/glm cannot use a covariate that is constant within a group (it separates the groups or is aliased)
    constant = [c for c in covariates if analysis.groupby("treat")[c].nunique().min() <= 1]
    if constant:
        ev.notes.append("Not used for matching because they do not vary among participants or among the "
                        f"comparison pool: {', '.join(constant)}.")
        covariates = [c for c in covariates if c not in constant]
    try:
        design = match(analysis, "treat", covariates, ratio=int(opts.get("ratio", 1)),
                       replace=bool(opts.get("replace", False)), caliper=opts.get("caliper"),
                       exact=opts.get("exact") or None, random_state=seed)
    except MatchingError as exc:
        ev.notes.append(f"Matching was not possible: {exc}")
        return ev
    ev.design = design
    ss = design.sample_sizes()
    ev.attrition.loc[len(ev.attrition)] = {"stage": "Matched", "participants": int(ss.loc["Matched", "treated"]),
                                           "comparison": int(ss.loc["Matched", "control"])}
    ev.effects["reoffended"] = design.effect("reoffended", outcome_type="binary")
    ev.effects["reoffence_count"] = design.effect("reoffence_count", outcome_type="count")
    ev.effects.update(_days_effect(design))
    try:
        ev.survival = matched_survival(design, "duration", "event", tau=365)
    except Exception as exc:  # noqa: BLE001 - a survival failure must not sink the report; it is reported
        ev.notes.append(f"Time-to-reoffence analysis not possible: {exc}")
    ev.sensitivity = _sensitivity(design, ev.effects["reoffended"], analysis, covariates, opts, seed)
    ev.power = _power(design)
    e = ev.effects["reoffended"]
    ev.findings.append(wording.rate_finding(e.estimate, e.ci_low, e.ci_high, e.p_value, ev.treated_reoffenders,
                                            number_needed=ev.power.get("number_needed")))
    f = ev.effects["reoffence_count"]
    ev.findings.append(wording.frequency_finding(f.estimate, f.ci_low, f.ci_high, f.p_value,
                                                 ev.treated_reoffenders))
    note = wording.small_sample_note(int(ss.loc["Matched", "treated"]), ev.treated_reoffenders)
    if note:
        ev.notes.append(note)
    return ev


def _value_for_money(ev: ProgrammeEvaluation, world):
    """Value for money (:mod:`evaluation.vfm`) from the matched effect on the number of proven reoffences.

    The offence mix is that of the matched comparison group's proven reoffences in their follow-up year (what
    the avoided reoffences would have been). Failures are noted, never fatal.
    """
    from evaluation.errors import EvaluationError
    from evaluation.outcomes import proven_offences
    from evaluation.vfm import VfmError, value_for_money

    try:
        md = ev.design.matched
        controls = md.loc[md["treat"] == 0, ["person_id", "index_date"]]
        # the one definition of a proven reoffence (outcomes' SQL); a control matched more than once keeps
        # each of its matches' weight in the mix, as before
        proven = proven_offences(controls.drop_duplicates("person_id"), world.offences,
                                 follow_up_months=int(ev.programme.outcome["follow_up_months"]),
                                 waiting_months=int(ev.programme.outcome["waiting_months"]))
        proven = controls[["person_id"]].merge(proven, on="person_id")
        treated = ev.analysis[ev.analysis["treat"] == 1]
        completers = int((treated["completion_status"].astype("string") == "completed").sum())
        att = ev.attrition.set_index("stage")["participants"]
        referred = int(att.get("Referred", ev.n_treated))  # the money was spent on everyone referred
        return value_for_money(ev.programme, effect=ev.effects["reoffence_count"],
                               eligible_participants=ev.n_treated, participants=referred,
                               completers=completers or None, mix=proven,
                               treated_reoffenders=ev.treated_reoffenders)
    except (EvaluationError, VfmError, ArithmeticError, np.linalg.LinAlgError) as exc:  # anything else is a bug
        ev.notes.append(f"Value for money not computed: {exc}")
        return None


def _days_effect(design) -> dict:
    """Days to first proven reoffence among reoffenders (as the JDL reports it), on the matched sample.

    The matching weights are kept; subclasses lose members when only reoffenders are kept, so the SE is
    cluster-robust by subclass over what remains (a descriptive comparison, not a causal one: the JDL shows
    it for context and never as a headline with fewer than 30 reoffenders).
    """
    from evaluation.matching import _effect

    md = design.matched
    sub = md[(md["reoffended"] == 1) & md["days_to_first"].notna()]
    if sub["treat"].nunique() < 2 or (sub["treat"] == 1).sum() < 2 or (sub["treat"] == 0).sum() < 2:
        return {}

    class _View:  # the matched design restricted to reoffenders, with the same SE convention
        matched = sub
        treatment = design.treatment
        se_type = "HC1" if design.se_type == "cluster" and "subclass" not in sub.columns else design.se_type

    try:
        return {"days_to_first": _effect(_View, "days_to_first", outcome_type="continuous")}
    except Exception:  # noqa: BLE001 - too few reoffenders to estimate a spread
        return {}


def _sensitivity(design, effect, analysis: pd.DataFrame, covariates: list, opts: dict, seed: int) -> dict:
    """E-value for the risk ratio and Rosenbaum bounds for hidden bias.

    Rosenbaum bounds need 1:1 pairs; when the main design matches several controls per participant, the bounds
    come from a 1:1 match of the same cohort with the same options (said in ``rosenbaum_design``).
    """
    from evaluation import sensitivity as sens
    from evaluation.matching import match

    out: dict[str, Any] = {}
    rr = effect.ratios.get("risk_ratio")
    if rr is not None:
        out["e_value"] = _clean(sens.e_value(rr[0], rr[1], rr[2]))
    try:
        pairs = design
        if getattr(design, "replace", True) or any(len(c) > 1 for c in design.match_matrix.values()):
            pairs = match(analysis, "treat", covariates, ratio=1, replace=False, caliper=opts.get("caliper"),
                          exact=opts.get("exact") or None, random_state=seed)
            out["rosenbaum_design"] = "1:1 match of the same cohort (the main design has several controls each)"
        rb = sens.rosenbaum_bounds(pairs, "reoffended")
        # only Gamma and the p-value bounds are published: the pair counts are small counts of people
        out["rosenbaum"] = rb[[c for c in ("gamma", "p_lower", "p_upper") if c in rb.columns]].to_dict(orient="records")
        # the largest Gamma at which the one-sided upper p-value stays at or below 0.05
        ok = rb[rb["p_upper"] <= 0.05]
        out["rosenbaum_gamma_max"] = float(ok["gamma"].max()) if len(ok) else None
    except Exception as exc:  # noqa: BLE001 - reported, never fatal
        out["rosenbaum_error"] = str(exc)
    return out


def _power(design) -> dict:
    """Minimum detectable difference at 80% power and the JDL number needed (see :mod:`evaluation.power`).

    Only rates and derived sizes are kept: the person counts stay out of the text so disclosure control applies
    to them in one place.
    """
    from evaluation.power import design_power

    try:
        dp = design_power(design, "reoffended")
    except Exception as exc:  # noqa: BLE001
        return {"power_error": str(exc)}
    nn = dp.number_needed
    return {"mdd": _num(dp.mdd), "number_needed": None if nn is None or not np.isfinite(nn) else int(nn),
            "comparison_effective_n": round(dp.n_control_effective, 1), "few_events": bool(dp.few_events),
            "p_control": _num(dp.p_control), "p_treated": _num(dp.p_treated)}


# ------------------------------------------------------------------------------------------------- json helpers
def _num(x):
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return x
    return None if math.isnan(f) or math.isinf(f) else f


def _clean(obj):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return {str(k): _clean(v) for k, v in obj.to_dict(orient="index").items()}
    if isinstance(obj, pd.Series):
        return _clean(obj.to_dict())
    if hasattr(obj, "__dataclass_fields__"):
        return _clean(obj.__dict__)
    if isinstance(obj, str):
        return obj
    return _num(obj)


def _records(df: pd.DataFrame) -> list[dict]:
    if df is None or df.empty:
        return []
    return [_clean(r) for r in df.reset_index().to_dict(orient="records")]
