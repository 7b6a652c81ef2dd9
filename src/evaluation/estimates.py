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

from statsmodels.tools.sm_exceptions import PerfectSeparationError

from evaluation import wording
from evaluation.config import Programme

OUTCOME_LABELS = {
    "reoffended": "One-year proven reoffending rate",
    "reoffence_count": "Frequency (proven reoffences per person)",
    "days_to_first": "Days to first proven reoffence (reoffenders only)",
    "first_time_entrant": "First-time entrants (no earlier record; first proven offence in the year)",
}
#: register id stem of each headline measure
MEASURE_IDS = {"reoffended": "rate", "reoffence_count": "frequency", "days_to_first": "days_to_first",
               "first_time_entrant": "fte"}
MEASURE_UNITS = {"reoffended": "proportion", "reoffence_count": "per_person", "days_to_first": "days",
                 "first_time_entrant": "proportion"}


def outcome_labels(programme) -> dict:
    """Headline labels for a programme: ``outcome.label`` (e.g. "proven offending (first or repeat)") replaces
    "proven reoffending" where participants include people with no earlier proven offence."""
    label = (programme.outcome.get("label") or "").strip()
    if not label:
        return dict(OUTCOME_LABELS)
    out = dict(OUTCOME_LABELS)
    out["reoffended"] = f"One-year rate of {label}"
    out["reoffence_count"] = "Frequency (proven offences per person, first or repeat)"
    out["days_to_first"] = "Days to first proven offence (people who offended only)"
    return out


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
    ete: Any | None = None  # evaluation.vfm.EteResult when the config sets outcome.ete (descriptive, participants)
    linkage: dict | None = None  # evaluation.linkage.linkage_counts: the provider's list found in police records
    # (its counts are the first attrition stages; precision/recall against the synthetic truth in the methods)

    # ----------------------------------------------------------------------------------------------- helpers
    @property
    def threshold(self) -> int:
        return self.programme.disclosure_threshold

    @property
    def matched(self) -> pd.DataFrame | None:
        return None if self.design is None else self.design.matched

    @property
    def n_treated(self) -> int:
        """Eligible participants before matching (the pre-match group)."""
        return int((self.analysis["treat"] == 1).sum())

    @property
    def n_analysed(self) -> int:
        """Participants analysed: the matched participants (the eligible ones when no matching ran). The one N
        every output publishes."""
        md = self.matched
        if md is None:
            return self.n_treated
        return int(((md["treat"] == 1) & (md["weight"] > 0)).sum())

    @property
    def treated_reoffenders(self) -> int:
        """Reoffenders among the participants analysed (the JDL's 30-reoffender rule counts these)."""
        md = self.matched
        a = self.analysis if md is None else md[md["weight"] > 0]
        return int(a.loc[a["treat"] == 1, "reoffended"].sum())

    @property
    def labels(self) -> dict:
        return outcome_labels(self.programme)

    # ------------------------------------------------------------------------------------------------ tables
    def headline_table(self) -> pd.DataFrame:
        """Participants vs matched comparison for the three JDL measures, with 95% CIs and p-values.

        Columns: ``participants``, ``comparison`` (weighted means), ``difference``, ``lower``, ``upper``,
        ``p_value``, ``significant`` (JDL rule); rows labelled as in :data:`OUTCOME_LABELS`.
        """
        cols = ["participants", "comparison", "difference", "lower", "upper", "p_value", "significant"]
        rows = []
        for key, eff in self.effects.items():
            significant = wording.is_significant(eff.p_value, self.treated_reoffenders)
            if key == "days_to_first" and self.treated_reoffenders < wording.MIN_REOFFENDERS:
                significant = False
            rows.append({"measure": self.labels[key], "participants": eff.mean_treated,
                         "comparison": eff.mean_control, "difference": eff.estimate, "lower": eff.ci_low,
                         "upper": eff.ci_high, "p_value": eff.p_value, "significant": significant})
        if not rows:
            return pd.DataFrame(columns=cols, index=pd.Index([], name="measure"))
        return pd.DataFrame(rows).set_index("measure")

    def register(self, *, synthetic: bool | None = None):
        """Every figure this evaluation publishes (and its sub-analyses', under ``<name>.``), after disclosure
        control over the whole register (:func:`evaluation.disclosure.protect_register`); built once.

        Raises :class:`evaluation.disclosure.DisclosureError` when the figures cannot be made safe: the report
        must not be written.
        """
        from evaluation.disclosure import protect_register

        reg = getattr(self, "_register", None)
        if reg is None:
            reg = build_register(self)
            for name, sub in self.subanalyses.items():
                reg.merged(build_register(sub), name)
                _relate_subanalysis(reg, self, sub, name)
            protect_register(reg)
            self._register = reg
            for name, sub in self.subanalyses.items():
                sub._register = reg.view(name)  # the same figure objects: one disclosure decision
        if synthetic is not None:
            reg.synthetic = bool(synthetic)
        return reg

    def per_100_table(self) -> pd.DataFrame:
        """The JDL "for 100 typical people" table: per 100 participants vs per 100 matched comparison people."""
        reg = self.register()
        rows = []
        off = "offence" if self.programme.outcome.get("label") else "reoffence"
        for key, what in (("rate", f"Number who commit a proven {off} within a year"),
                          ("frequency", f"Number of proven {off}s within a year")):
            if f"per100.{key}.participants" in reg:
                rows.append({"measure": what, "participants": reg.value(f"per100.{key}.participants"),
                             "comparison": reg.value(f"per100.{key}.comparison")})
        return pd.DataFrame(rows).set_index("measure") if rows else pd.DataFrame()

    def attrition_table(self) -> pd.DataFrame:
        """Attrition (people at each stage) as published: rounded to 5 except the analysed N, [c] for 1-4."""
        reg = self.register()
        rows = []
        for stage in self.attrition["stage"]:
            sid = f"attrition.{slug(stage)}"
            rows.append({"stage": stage, "participants": reg.display(f"{sid}.participants"),
                         "comparison": reg.display(f"{sid}.comparison")})
        return pd.DataFrame(rows).set_index("stage")

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
        """Profile (sex, ethnicity, age band) of the participants analysed beside the eligible participants
        before matching and the matched comparison group: counts rounded to 5 ([c] for 1-4) and shares of the
        rounded counts."""
        reg = self.register()
        groups = [("participants", "Participants analysed"), ("prematch", "All eligible participants"),
                  ("comparison", "Matched comparison")]
        rows = []
        for f in reg.section("profile"):
            parts = f.id.split(".")
            if parts[-1] != "participants":
                continue
            char, cat = f.meta.get("characteristic"), f.meta.get("category")
            row = {"Characteristic": char, "Group": cat}
            for g, head in groups:
                fid = ".".join(parts[:-1] + [g])
                if fid not in reg:
                    continue
                # shares of the rounded counts over their own sum (they add to 100%, and a share of an exact
                # total would give the rounded count back)
                sibs = [h for h in reg.section("profile") if h.id.endswith("." + g)
                        and h.meta.get("characteristic") == char]
                tot = sum(reg.value(h.id) or 0 for h in sibs) or reg.value(PROFILE_TOTALS[g])
                v = reg.value(fid)
                # with a [c] in the block the shown counts do not make the whole group: their shares would print
                # "100%" beside a withheld category (a reader takes it as "all male"), so no shares in that block
                hidden = any(reg[h.id].status in ("suppressed", "withheld") for h in sibs)
                row[head] = reg.display(fid) + ("" if v is None or not tot or hidden
                                                else f" ({wording.pct(v / tot)})")
            rows.append(row)
        if not rows:
            return pd.DataFrame()
        return pd.DataFrame(rows).set_index(["Characteristic", "Group"])

    def risk_table(self) -> pd.DataFrame:
        """Numbers at risk (people) under the time-to-reoffence chart, as published (rounded to 5)."""
        reg = self.register()
        figs = reg.section("risk")
        if not figs:
            return pd.DataFrame()
        data: dict = {}
        for f in figs:
            _, group, day = f.id.split(".")
            data.setdefault(f.label.split(":")[0], {})[f"Day {int(day[3:])}"] = reg.display(f.id)
        return pd.DataFrame(data).T

    # ----------------------------------------------------------------------------------------------- results
    def results(self, *, synthetic: bool | None = None) -> dict:
        """Every published figure, keyed by register id, after disclosure control (``results.json``; see
        ``docs/results-schema.md``)."""
        reg = self.register(synthetic=synthetic)
        return {
            "schema": RESULTS_SCHEMA,
            "programme_id": self.programme.id,
            "design": self.programme.design,
            "analysis": self.label,
            "extract_date": self.extract_date.isoformat(),
            "synthetic": reg.synthetic,
            "disclosure": {"threshold": reg.threshold, "rounding_base": reg.base, "check_passed": reg.checked},
            "estimate_possible": bool(self.effects),
            "measure": wording.measure_terms(self.programme.outcome.get("label"))["noun"],
            "figures": reg.to_json(),
            "findings": [f.sentence for f in self.findings],
            "notes": list(self.notes),
            # a sub-analysis (e.g. completers, a selected group) is context, never evidence on its own: its
            # sentences say so wherever they are read (results.json is read without the report around it)
            "subanalyses": {k: {"analysis": v.label, "prefix": k, "status": "secondary (not evidence of the "
                                "programme's effect)",
                                "findings": [f"Secondary analysis ({v.label}), not evidence that the programme "
                                             f"works: {f.sentence[:1].lower() + f.sentence[1:]}" for f in v.findings],
                                "notes": list(v.notes)} for k, v in self.subanalyses.items()},
        }


RESULTS_SCHEMA = "evaluation.results/2"
PROFILE_TOTALS = {"participants": "n.participants", "prematch": "profile.total.prematch",
                  "comparison": "n.comparison"}


def slug(text) -> str:
    from evaluation.register import slug as _slug

    return _slug(text)


#: Failures an estimation step may meet on real data (bad or degenerate input, no convergence, a singular model):
#: these become a note in the report. Anything else (a KeyError, a TypeError) is a bug and must fail loudly.
_ESTIMATION_FAILURES = (ValueError, ArithmeticError, np.linalg.LinAlgError, PerfectSeparationError)

_SEX = {"F": "Female", "M": "Male", "U": "Unknown"}
_AGE_BINS = [0, 13, 15, 17, 24, 34, 44, 120]
_AGE_LABELS = ["10-13", "14-15", "16-17", "18-24", "25-34", "35-44", "45+"]


def _profile_columns(frame: pd.DataFrame) -> dict[str, pd.Series]:
    sex = frame["sex"].astype("string").map(_SEX).fillna("Unknown") if "sex" in frame else None
    eth = frame["ethnicity_group"].astype("string").fillna("Not known") if "ethnicity_group" in frame else None
    age = (pd.cut(frame["age"], _AGE_BINS, labels=_AGE_LABELS).astype("string").fillna("Not known")
           if "age" in frame else None)
    return {k: v for k, v in (("Sex", sex), ("Ethnicity", eth), ("Age at start", age)) if v is not None}


def _profile_fold(counts: dict[str, pd.Series], cats: list, threshold: int) -> list:
    """The categories of one characteristic to publish as one row, so that no cell of the profile table is a
    small count (1 to ``threshold − 1`` people) in any group.

    Without this, primary suppression of a small category (1 participant of unknown sex) needs a partner, and
    secondary suppression takes the next smallest: "Female [c]" beside "Male 100" of 133, which a reader takes
    for a small group (issue 11). The smallest categories (by people over all groups; a not-known category first
    among equals) are folded into one row until every row is 0 or at least ``threshold`` in every group, or two
    rows are left (disclosure control then suppresses as before).

    Parameters
    ----------
    counts : dict of pandas.Series
        People per category (``value_counts``) for each published group (``participants``, ``prematch``,
        ``comparison``).
    cats : list
        The categories in table order.
    threshold : int
        The disclosure threshold (people).

    Returns
    -------
    list
        The categories to fold, in table order (empty: none).
    """
    groups = list(counts)

    def cells(members):
        # the published cells only: the few unmatched participants (eligible minus analysed) are small in nearly
        # every category, so folding for them merged nearly everything ("18-24, 25-34 or 35-44" of 4 bands, 89%)
        # and still left a cell to suppress; disclosure control protects them by withholding an eligible-column
        # cell instead (evaluation.disclosure._partners prefers the pre-match context to the analysed group)
        return [int(sum(counts[g].get(c, 0) for c in members)) for g in groups]

    def small(members):
        return any(0 < v < threshold for v in cells(members))

    def size(c):
        return sum(cells([c])[:len(groups)])

    fold: list = []
    rest = list(cats)
    while (any(small([c]) for c in rest) or (fold and small(fold))) and len(rest) + bool(fold) > 2:
        pick = [c for c in rest if small([c])] or rest  # only the folded row is small: take the smallest in
        c = min(pick, key=lambda c: (size(c), c not in ("Unknown", "Not known")))
        fold.append(c)
        rest.remove(c)
    if len(fold) < 2:  # nothing to merge (or one category alone): disclosure control suppresses as before
        return []
    return [c for c in cats if c in fold]


def _fold_label(fold: list) -> str:
    """``["Asian", "Black", "Unknown"]`` → ``"Asian, Black or not known"`` (the row says what it holds)."""
    # an ethnicity can hold both "Unknown" (the code) and "Not known" (missing): one "not known" in the name
    names = list(dict.fromkeys("not known" if c in ("Unknown", "Not known") else c for c in fold))
    if names and names[0] == "not known":
        names[0] = "Not known"
    return wording.listing(names, "or")


def build_register(ev: "ProgrammeEvaluation"):
    """The figures of one analysis and the relations among them, before disclosure control."""
    from evaluation.linkage import REFERRED_ID
    from evaluation.register import Register, slug as _slug
    from evaluation.vfm import range_bounds

    reg = Register(threshold=ev.threshold)
    labels = ev.labels
    # ---- attrition: stages x groups; consecutive steps are hidden differences a reader could take
    for col in ("participants", "comparison"):
        prev = None
        for _, r in ev.attrition.iterrows():
            v = r[col]
            if pd.isna(v):
                continue
            fid = f"attrition.{_slug(r['stage'])}.{col}"
            exact = r["stage"] == "Matched"  # the analysed groups: the same N everywhere
            reg.count(fid, f"{r['stage']}: {col}", v, "attrition", exact=exact)
            if prev is not None:
                reg.difference(prev, fid, f"hidden.step.{_slug(r['stage'])}.{col}",
                               f"change from the previous stage to '{r['stage']}' ({col})", "attrition",
                               "consecutive attrition stages")
            prev = fid
    _register_ete(reg, ev)
    if ev.linkage:
        from evaluation.linkage import register_linkage

        register_linkage(reg, ev.linkage)
    n = ev.n_analysed
    reg.count("n.participants", "Participants analysed (matched)", n, "headline", exact=True)
    if "attrition.matched.participants" in reg:
        reg.relate({"n.participants": 1.0, "attrition.matched.participants": -1.0}, 0.0, "one N")
    if ev.design is None:
        return reg
    md = ev.matched
    md = md[md["weight"] > 0]
    ctrl = md[md["treat"] == 0]
    reg.count("n.comparison", "Matched comparison group (people)", len(ctrl), "headline", exact=True)
    reg.relate({"n.comparison": 1.0, "attrition.matched.comparison": -1.0}, 0.0, "one N") \
        if "attrition.matched.comparison" in reg else None
    reg.count("reoffenders.participants", "Participants analysed who reoffended", ev.treated_reoffenders,
              "headline", denominator="n.participants", exact=True)
    reg.count("hidden.nonreoffenders.participants", "Participants analysed who did not reoffend",
              n - ev.treated_reoffenders, "headline", hidden=True)
    reg.relate({"n.participants": 1.0, "reoffenders.participants": -1.0,
                "hidden.nonreoffenders.participants": -1.0}, 0.0, "reoffenders and non-reoffenders")
    # ---- headline measures
    for key, eff in ev.effects.items():
        if key == "days_to_first" and ev.treated_reoffenders < wording.MIN_REOFFENDERS:
            continue  # JDL: not a headline with fewer than 30 reoffenders, and not published as one
        stem = MEASURE_IDS[key]
        unit = MEASURE_UNITS[key]
        events = ev.treated_reoffenders
        if key == "first_time_entrant":  # the JDL's 30-event rule counts the first-time entrants themselves
            events = int(md.loc[md["treat"] == 1, "first_time_entrant"].fillna(0).sum())
        sig = wording.is_significant(eff.p_value, events)
        reg.add(f"{stem}.participants", f"{labels[key]}: participants", eff.mean_treated, unit, "headline",
                denominator="n.participants")
        reg.add(f"{stem}.comparison", f"{labels[key]}: matched comparison", eff.mean_control, unit, "headline",
                denominator="n.comparison")
        reg.add(f"{stem}.difference", f"{labels[key]}: difference (participants − comparison)", eff.estimate,
                "pp" if unit == "proportion" else unit, "headline", lower=eff.ci_low, upper=eff.ci_high,
                p_value=eff.p_value, significant=bool(sig))
        group = [f"{stem}.participants", f"{stem}.comparison", f"{stem}.difference"]
        for name, vals in (eff.ratios or {}).items():
            est, lo, hi, p = (list(vals) + [None] * 4)[:4]
            reg.add(f"{stem}.{_slug(name)}", f"{labels[key]}: {name.replace('_', ' ')}", est, "ratio", "ratios",
                    lower=_num(lo), upper=_num(hi), p_value=_num(p))
            group.append(f"{stem}.{_slug(name)}")
        reg.together(group)
    if "reoffended" in ev.effects:
        e = ev.effects["reoffended"]
        # the rate and N are both published, so the count behind the rate is known: reoffenders = rate x N
        reg.relate({"reoffenders.participants": 1.0}, e.mean_treated * n, "participants' rate times N",
                   via=("rate.participants",))
        w = ctrl["weight"].to_numpy(dtype=float)
        if len(w) and np.allclose(w, w[0]):
            reg.count("hidden.reoffenders.comparison", "Matched comparison people who reoffended",
                      int(ctrl["reoffended"].sum()), "headline", hidden=True)
            reg.relate({"hidden.reoffenders.comparison": 1.0}, e.mean_control * len(ctrl),
                       "comparison rate times N", via=("rate.comparison",))
        reg.add("per100.rate.participants", "Number who commit a proven reoffence within a year: per 100 "
                "participants", int(wording.round_half_up(100 * e.mean_treated)), "number", "per100")
        reg.add("per100.rate.comparison", "Number who commit a proven reoffence within a year: per 100 "
                "matched comparison people", int(wording.round_half_up(100 * e.mean_control)), "number", "per100")
    if "reoffence_count" in ev.effects:
        e = ev.effects["reoffence_count"]
        reg.add("per100.frequency.participants", "Number of proven reoffences within a year: per 100 "
                "participants", int(wording.round_half_up(100 * e.mean_treated)), "number", "per100")
        reg.add("per100.frequency.comparison", "Number of proven reoffences within a year: per 100 matched "
                "comparison people", int(wording.round_half_up(100 * e.mean_control)), "number", "per100")
    if "first_time_entrant" in ev.effects:
        nop = md[(md["treat"] == 1) & md["no_prior_record"].astype(bool)] if "no_prior_record" in md else md[:0]
        reg.count("fte.no_prior_record.participants", "Participants analysed with no earlier offence record",
                  len(nop), "headline", denominator="n.participants")
        if "fte.participants" in reg:
            k = int(md.loc[md["treat"] == 1, "first_time_entrant"].fillna(0).sum())
            reg.count("hidden.fte.participants", "First-time entrants among participants analysed", k, "headline",
                      hidden=True)
            reg.relate({"hidden.fte.participants": 1.0}, k, "first-time entrant rate times N",
                       via=("fte.participants",))
        if "fte.comparison" in reg:
            # the comparison rate times the group size gives (about) the count back: a rate of 2% of 119 people
            # says 2 people, so the rate is withheld when that count is small
            e = ev.effects["first_time_entrant"]
            kc = int(round(float(e.mean_control) * len(ctrl)))
            reg.count("hidden.fte.comparison", "First-time entrants among the matched comparison group", kc,
                      "headline", hidden=True)
            reg.relate({"hidden.fte.comparison": 1.0}, kc, "first-time entrant rate times N",
                       via=("fte.comparison",))
    # a per-100 figure is the rate again: it gives the same count back
    for key, stem in (("rate", "rate"), ("frequency", "frequency")):
        for g in ("participants", "comparison"):
            if f"per100.{key}.{g}" in reg and f"{stem}.{g}" in reg:
                reg.together([f"{stem}.{g}", f"per100.{key}.{g}"])
    if "per100.rate.participants" in reg:
        reg.relate({"reoffenders.participants": 1.0}, ev.effects["reoffended"].mean_treated * n,
                   "participants' rate per 100 times N", via=("per100.rate.participants",))
    # ---- profile: participants analysed, all eligible participants, matched comparison
    pre = ev.analysis[ev.analysis["treat"] == 1]
    frames = {"participants": md[md["treat"] == 1], "prematch": pre, "comparison": ctrl}
    totals = {"participants": "n.participants", "comparison": "n.comparison"}
    # When fewer than `threshold` eligible participants went unmatched, the pre-match column differs from the
    # analysed one only by those few people: even rounded, its categories would show what they were like
    # (attribute disclosure; no linear check sees it). The column is then not published, and the report says so.
    unmatched = len(pre) - int(n)
    show_prematch = unmatched >= ev.threshold  # none unmatched: the column would repeat the analysed one
    reg.meta["profile_prematch"] = show_prematch
    groups = ("participants", "prematch", "comparison") if show_prematch else ("participants", "comparison")
    if show_prematch:
        reg.count("profile.total.prematch", "All eligible participants (before matching)", len(pre), "profile")
        totals["prematch"] = "profile.total.prematch"
    cols = {g: _profile_columns(f) for g, f in frames.items()}
    for char in cols["prematch"]:
        cats = sorted(set(cols["prematch"][char].dropna()) | set(cols["comparison"].get(char, pd.Series()).dropna()),
                      key=lambda c: (c in ("Unknown", "Not known"), c))
        fold = _profile_fold({g: cols[g][char].value_counts() for g in groups}, cats, ev.threshold)
        if fold:
            merged = _fold_label(fold)
            for g in groups:
                cols[g][char] = cols[g][char].where(~cols[g][char].isin(fold), merged)
            cats = [c for c in cats if c not in fold] + [merged]
        for g in groups:
            counts = cols[g][char].value_counts()
            ids = []
            for cat in cats:
                fid = f"profile.{_slug(char)}.{_slug(cat)}.{g}"
                f = reg.count(fid, f"{char}: {cat} ({g})", int(counts.get(cat, 0)), "profile")
                f.meta.update(characteristic=char, category=cat)
                ids.append(fid)
            reg.relate({**{i: 1.0 for i in ids}, totals[g]: -1.0}, 0.0, f"{char} categories add to the total")
        for cat in cats if show_prematch else ():
            base = f"profile.{_slug(char)}.{_slug(cat)}"
            reg.difference(f"{base}.prematch", f"{base}.participants", f"hidden.unmatched.{_slug(char)}.{_slug(cat)}",
                           f"{char}: {cat} among unmatched participants", "profile", "pre-match minus matched")
    # ---- survival: curves' numbers at risk, proportions reoffended, HR and RMST
    if ev.survival is not None:
        _register_survival(reg, ev)
    # ---- balance
    for cov, r in ev.balance_table().iterrows():
        for k in ("smd_before", "smd_after"):
            reg.add(f"balance.{_slug(cov)}.{k}", f"{cov}: standardised mean difference {k.split('_')[1]} matching",
                    _num(r[k]), "smd", "balance", meta={"covariate": str(cov), "measure": k})
        reg.add(f"balance.{_slug(cov)}.var_ratio_after", f"{cov}: variance ratio after matching",
                _num(r["var_ratio_after"]), "ratio", "balance", meta={"covariate": str(cov),
                                                                      "measure": "var_ratio_after"})
    # ---- sensitivity (published only when the headline is significant: there is nothing to overturn otherwise)
    s = ev.sensitivity or {}
    head_sig = bool(reg.get("rate.difference") and reg["rate.difference"].significant)
    ev_ = s.get("e_value") or {}
    if ev_.get("point") is not None:
        reg.add("sensitivity.e_value", "E-value for the risk ratio", _num(ev_.get("point")), "ratio", "sensitivity")
        reg.add("sensitivity.e_value_ci", "E-value for the confidence limit nearer 1", _num(ev_.get("ci")), "ratio",
                "sensitivity")
    if head_sig and s.get("rosenbaum_gamma_max") is not None and "rosenbaum_design" not in s:
        reg.add("sensitivity.gamma_max", "Largest hidden bias (Γ) at which the difference stays significant",
                _num(s["rosenbaum_gamma_max"]), "ratio", "sensitivity")
    # ---- power
    pw = ev.power or {}
    for k, unit, label in (("mdd", "pp", "Minimum detectable difference at 80% power"),
                           ("number_needed", "number", "Participants needed to detect the observed difference"),
                           ("p_control", "proportion", "Comparison group's one-year rate (power calculation)")):
        if pw.get(k) is not None:
            reg.add(f"power.{k}", label, pw[k], unit, "power")
    # ---- value for money (figures as computed by evaluation.vfm)
    if ev.vfm is not None:
        people = {"participants", "completers", "eligible_participants", "treated_reoffenders", "referred"}
        d = _clean(ev.vfm.to_dict())
        for k, v in d.items():
            if k == "statement":  # prose with counts in it: the report words it from the checked figures
                continue
            # "no benefit–cost ratio can be claimed": no point figure of savings either, only their range (as the
            # statement prints it: vfm.range_bounds), so the printed range is in the register too
            if k == "benefit" and not ev.vfm.significant and isinstance(d.get("benefit_ci"), list):
                lo, hi = d["benefit_ci"]
                if all(isinstance(x, (int, float)) and math.isfinite(x) for x in (lo, hi)):
                    lo, hi = range_bounds(lo, hi)
                    reg.add("vfm.savings_range", "possible savings, 95% interval (the effect is not reliable: no "
                            "point estimate)", None, "gbp", "vfm", lower=lo, upper=hi)
            if k in ("bcr", "bcr_ci", "benefit", "reoffences_avoided", "programme_id") and not ev.vfm.significant:
                continue
            if k in people and isinstance(v, (int, float)):
                # counts of people behind the cost per head: under disclosure control like every other count
                reg.count(f"vfm.{_slug(k)}", k.replace("_", " "), v, "vfm")
                first = REFERRED_ID if REFERRED_ID in reg else "attrition.referred.participants"
                same = {"participants": first,
                        "eligible_participants": "attrition.with_a_full_follow_up_and_waiting_period.participants",
                        }.get(k)
                if same and same in reg and reg[same].value == int(v):
                    reg.relate({f"vfm.{_slug(k)}": 1.0, same: -1.0}, 0.0, "the same people in two places")
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                ci = d.get(f"{k}_ci") if isinstance(d.get(f"{k}_ci"), list) else [None, None]  # the chart's interval
                # a cost per head names the count it divides by: disclosure control publishes it over the
                # published (rounded) count, as funding / cost would otherwise give the exact count back
                per = {"cost_per_participant": "vfm.participants", "cost_per_completer": "vfm.completers"}.get(k)
                f = reg.add(f"vfm.{_slug(k)}", k.replace("_", " "), v, "gbp" if "gbp" in k or "cost" in k or
                            "benefit" in k else "number", "vfm", lower=_num(ci[0]), upper=_num(ci[1]),
                            denominator=per if per in reg else None)
                if per in reg and "vfm.funding" in reg:
                    f.meta["numerator"] = "vfm.funding"
            elif isinstance(v, str):
                reg.add(f"vfm.{_slug(k)}", k.replace("_", " "), v, "text", "vfm")
    if ev.programme.outcome.get("label"):  # children with no earlier offence: results.json and the spreadsheet
        for f in reg.figures.values():       # read these labels without the report's words around them
            f.label = wording.first_or_repeat(f.label)
    return reg


def _register_ete(reg, ev) -> None:
    """Education, training and employment (descriptive, participants only): each measure's count of people and
    its denominator, with the relations a reader can form (the rate gives the count back; employment plus
    education or training is everyone in ETE at exit; a denominator less its count is the people not in ETE)."""
    ete = getattr(ev, "ete", None)
    if ete is None:
        return
    from evaluation.register import slug as _slug

    t = ete.table
    for r in t.itertuples(index=False):
        stem = r.id
        reg.count(f"{stem}.count", f"{r.measure.strip()}: people", r.count, "ete", denominator=f"{stem}.denominator")
        if f"{stem}.denominator" not in reg:
            reg.count(f"{stem}.denominator", f"{r.measure.strip()}: out of ({r.denominator_label})", r.denominator,
                      "ete")
        reg.add(f"{stem}.rate", f"{r.measure.strip()}: rate", None if not r.denominator else float(r.rate),
                "proportion", "ete", denominator=f"{stem}.denominator")
        reg.difference(f"{stem}.denominator", f"{stem}.count", f"hidden.{stem}.not", f"{r.measure.strip()}: not "
                       "in ETE", "ete", "denominator less the people in ETE")
        if r.denominator:
            reg.relate({f"{stem}.count": 1.0}, float(r.rate) * int(r.denominator), "rate times its denominator",
                       via=(f"{stem}.rate",))
        reg.meta.setdefault("ete_rows", []).append((stem, r.measure, r.denominator_label))
    same = {}
    for r in t.itertuples(index=False):  # rows over the same people: one denominator a reader sees several times
        first = same.setdefault((r.denominator_label, int(r.denominator)), r.id)
        if first != r.id:
            reg.relate({f"{first}.denominator": 1.0, f"{r.id}.denominator": -1.0}, 0.0, "the same denominator")
    parts = [f"ete.at_exit.{k}.count" for k in ("employment", "education_training")]
    if "ete.at_exit.count" in reg and all(p in reg for p in parts):
        reg.relate({"ete.at_exit.count": 1.0, parts[0]: -1.0, parts[1]: -1.0}, 0.0,
                   "employment plus education or training is everyone in ETE at exit")
    started = "attrition." + _slug("Started (index date = start date)") + ".participants"
    if "ete.at_start.denominator" in reg and started in reg and reg[started].value == ete.started:
        reg.relate({"ete.at_start.denominator": 1.0, started: -1.0}, 0.0, "the same people in two places")


def register_risk_row(reg, name: str, label: str, days, at_risk) -> None:
    """One group's numbers at risk (``risk.<name>.day<t>``) and the relations a reader can use: day 0 is the
    group's N (``n.<name>``, exact), each step between adjacent days is a hidden count of the people who left
    (events and censorings), and so is the step from day 0 to each later day.

    Why the steps from day 0 as well: day 0 is exact, so against any later (rounded) day it bounds the people who
    left since the start, also across a withheld day between them (48, [c], 45 tells "1 to 5 left"; issue 11).
    Between two rounded days the difference is known only to ±4, so those pairs need no figure of their own.
    """
    prev = start = None
    for t, v in zip(days, at_risk):
        fid = f"risk.{name}.day{int(t)}"
        reg.count(fid, f"{label}: number at risk on day {int(t)}", int(v), "risk", exact=prev is None)
        if prev is None:
            reg.relate({fid: 1.0, f"n.{name}": -1.0}, 0.0, "at risk on day 0 = N")
            start = fid
        else:
            reg.difference(prev, fid, f"hidden.risk_step.{name}.day{int(t)}",
                           "events and censorings between adjacent risk-table times", "risk", "adjacent rows")
            if prev != start:
                reg.difference(start, fid, f"hidden.risk_since_start.{name}.day{int(t)}",
                               "events and censorings since the start", "risk", "the exact day 0 and a later day")
        prev = fid


def _register_survival(reg, ev) -> None:
    from evaluation.register import slug as _slug

    sv = ev.survival
    tau = sv.tau
    times = np.arange(0, tau + 1, 60 if tau > 240 else 30)
    at = sv.km.at(times)
    names = {1: "participants", 0: "comparison"}
    for g in sv.km.groups:
        sub = at[at["group"] == g]
        register_risk_row(reg, names.get(g, _slug(g)), str(sv.labels.get(g, g)), sub["time"],
                          sub["n_risk_unweighted"])
    summ = sv.summary()
    first = bool(ev.programme.outcome.get("label"))
    # summary() lists the proportions by cause (1 = proven reoffence, then competing events), then by group
    causes = sv.cif.causes if sv.cif is not None else [1]
    keys = [(c, g) for c in causes for g in sv.km.groups]
    props = {}
    for i, (m, r) in enumerate(summ.iterrows()):
        if first:  # children with no earlier offence: the event is first or repeat proven offending
            m = (m.replace("reoffended", "offended (first or repeat)").replace("reoffending", "offending")
                 .replace("reoffence", "offence"))
        if m.startswith("Proportion"):
            c, g = keys[i]
            what = "reoffended" if c == 1 else _slug(sv.cif.label(c))
            fid, unit = f"survival.{what}_by_{int(tau)}.{names.get(g, _slug(g))}", "proportion"
            props[fid] = (c, g)
        elif "hazard ratio" in m.lower():
            fid, unit = "survival.hazard_ratio", "ratio"
        else:
            fid, unit = "survival.rmst_difference", "days"
        f = reg.add(fid, m, _num(r["estimate"]), unit, "survival", lower=_num(r["lower"]), upper=_num(r["upper"]),
                    p_value=_num(r["p_value"]))
        if fid in props:
            f.meta.update(cause=int(props[fid][0]), group=names.get(props[fid][1], str(props[fid][1])))
    # a cumulative proportion by day tau times N is the number of people with that event by then: a reader can
    # form it, so it is a count under disclosure control (a small one withholds the proportion, and the chart
    # then leaves that curve out)
    md = ev.design.matched if ev.design is not None else None
    if md is None or not {"treat", "weight", "duration"} <= set(md.columns):
        return
    md = md[md["weight"] > 0]
    et = md["event_type"] if "event_type" in md.columns else md["event"]
    for fid, (c, g) in props.items():
        sub = md["treat"] == g
        w = md.loc[sub, "weight"].to_numpy(dtype=float)
        if not len(w) or not np.allclose(w, w[0]) or reg[fid].value is None:
            continue
        k = int(((et[sub] == c) & (md.loc[sub, "duration"] <= tau)).sum())
        hid = "hidden." + fid
        reg.count(hid, f"{reg[fid].label} (people)", k, "survival", hidden=True)
        reg.relate({hid: 1.0}, reg[fid].value * len(w), "cumulative proportion times N", via=(fid,))
        # the published reoffenders of the year minus those by day tau on the curve are the people whose proven
        # reoffence came after a competing event (custody) ended their follow-up for the curve: 52 reoffenders
        # beside 37% of 133 (49) by day 365 told a reader "3 reoffended after a spell in custody" (funder read 3)
        name = names.get(g, _slug(g))
        rid = {"participants": "reoffenders.participants", "comparison": "hidden.reoffenders.comparison"}.get(name)
        n_fig = reg.figures.get(f"n.{name}")
        if c == 1 and rid in reg and reg[rid].value is not None and reg[rid].value >= k \
                and n_fig is not None and n_fig.value == len(w):
            reg.difference(rid, hid, f"hidden.survival.after_competing.{name}",
                           f"{reg[fid].label}: proven reoffence only after a competing event (people)", "survival",
                           "reoffenders in the year minus those on the curve by its last day")
    # a competing event's curve is shown for both groups or neither: one group's proportion beside the other's
    # withheld one, with the numbers at risk, narrows the withheld count
    for c in causes:
        reg.together([fid for fid, (cc, _) in props.items() if cc == c])
    # the tail of the risk table: the people at risk on the last day shown are everyone who had not left by then,
    # so  at risk(last day) = N − reoffenders + (reoffended from the last day shown to day tau)
    #                         − (left for another reason before the last day shown).
    # With N and the reoffenders published exactly, the last row, even rounded, narrows the late reoffenders;
    # declared here so the register-wide check (evaluation.disclosure.narrowed) bounds them
    last = int(times[-1])
    for g in sv.km.groups:
        name = names.get(g, _slug(g))
        sub = md["treat"] == g
        rid = {"participants": "reoffenders.participants"}.get(name, f"hidden.reoffenders.{name}")
        risk_id, n_id = f"risk.{name}.day{last}", f"n.{name}"
        if rid not in reg or risk_id not in reg or n_id not in reg or reg[n_id].value != int(sub.sum()):
            continue
        d = md.loc[sub, "duration"].to_numpy(dtype=float)
        e1 = (et[sub] == 1).to_numpy()
        k = int((e1 & (d <= tau)).sum())
        if reg[rid].value != k:  # the published count is not the curve's event count: no such subtraction
            continue
        late = int((e1 & (d >= last) & (d <= tau)).sum())
        left = int((~e1 & (d < last)).sum())  # competing events and censoring before the last day shown
        reg.count(f"hidden.risk_tail.{name}", f"{sv.labels.get(g, g)}: reoffended from day {last} to day {int(tau)}",
                  late, "risk", hidden=True)
        terms = {risk_id: 1.0, rid: 1.0, f"hidden.risk_tail.{name}": -1.0, n_id: -1.0}
        if left or len(causes) > 1:  # else a reader takes it as zero (everyone is followed for a full year)
            reg.count(f"hidden.risk_left.{name}", f"{sv.labels.get(g, g)}: left before day {last} without "
                      "reoffending", left, "risk", hidden=True)
            terms[f"hidden.risk_left.{name}"] = 1.0
        reg.relate(terms, 0.0, "last risk-table row against N and the reoffenders")


def _relate_subanalysis(reg, ev, sub, name: str) -> None:
    """When a sub-analysis's matched participants are a subset of the main analysis's, the difference of their
    Ns and of their reoffenders are people a reader can count (e.g. non-completers who reoffended)."""
    same = f"{name}.attrition.completed_the_programme.participants"
    if "vfm.completers" in reg and same in reg and reg["vfm.completers"].value == reg[same].value:
        reg.relate({"vfm.completers": 1.0, same: -1.0}, 0.0, "the same people in two places")
    if ev.design is None or sub.design is None:
        return
    a = ev.matched[(ev.matched["treat"] == 1) & (ev.matched["weight"] > 0)]["person_id"]
    b = sub.matched[(sub.matched["treat"] == 1) & (sub.matched["weight"] > 0)]["person_id"]
    if not set(b) <= set(a):
        return
    for stem in ("n", "reoffenders"):
        x, y = f"{stem}.participants", f"{name}.{stem}.participants"
        if x in reg and y in reg:
            reg.difference(x, y, f"hidden.{name}.{stem}.rest", f"{stem} outside '{name}'", "headline",
                           f"main analysis minus '{name}'")


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
    from evaluation.validate import extract_date as world_extract_date

    if isinstance(programme, str):
        programme = load_programme(programme)
    if not programme.is_individual:
        raise ValueError(f"programme '{programme.id}': design '{programme.design}' has no individual participants; "
                         "use evaluation.area or evaluation.delivery")
    # the one extract-date rule (validate.extract_date); a date given by the caller is checked by the loader/CLI
    extract = pd.Timestamp(extract_date).date() if extract_date is not None else world_extract_date(world)
    if extract is None:
        from evaluation.outcomes import OutcomeInputError

        raise OutcomeInputError("world: cannot tell the extract date (no dated offence records); pass extract_date")
    if cohort is None:
        cohort = build_cohort(world, programme, seed=seed)
    full = _with_outcomes(cohort, world, programme, extract)
    result = _evaluate(programme, "all participants (intention to treat)", extract, full,
                       _attrition(cohort, full), seed)
    if getattr(world, "linkage", None) is not None:  # referrals from the providers' lists, linked (make reports)
        from evaluation.linkage import linkage_counts

        result.linkage = linkage_counts(world.linkage, programme.id)
    if programme.get("funding_gbp") and result.design is not None:
        result.vfm = _value_for_money(result, world)
    if programme.outcome.get("ete"):
        from evaluation.vfm import EteError, ete_outcomes

        try:
            result.ete = ete_outcomes(world, programme, result)
        except EteError as exc:
            result.notes.append(f"Education, training and employment outcomes not reported: {exc}")
    if programme.get("completers_analysis"):
        treated = full["treat"] == 1
        keep = ~treated | (full["completion_status"].astype("string") == "completed")
        sub = full[keep]
        att = result.attrition[result.attrition["stage"] != "Matched"].reset_index(drop=True)
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
    if oc.get("first_time_entrants"):
        # children with no earlier proven offence: the measure is first *or* repeat proven offending, and
        # first-time entrants are reported separately (outcomes.first_time_entrant_definition: no earlier record)
        from evaluation.outcomes import first_time_entry

        out = first_time_entry(data[["person_id", "index_date"]], world.offences, **kw)
    else:
        out = proven_reoffending(data[["person_id", "index_date"]], world.offences, **kw)
    # custody is a competing event for time to reoffence (event_type 2), where the world records it
    sv = survival_view(data[["person_id", "index_date"]], world.offences, custody=getattr(world, "custody", None),
                       **kw)
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
    from evaluation.matching import MatchingError, headline_effect, match
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
    reason = no_estimate_reason(analysis, min_participants=programme.disclosure_threshold)
    if reason:
        ev.notes.append(f"No impact estimate was possible: {reason}")
        return ev
    try:
        design = match(analysis, "treat", covariates, ratio=int(opts.get("ratio", 1)),
                       replace=bool(opts.get("replace", False)), caliper=opts.get("caliper"),
                       exact=opts.get("exact") or None, random_state=seed)
        matched = int(design.sample_sizes().loc["Matched", "treated"])
        if matched == 0:
            raise MatchingError("no participant had a comparison person close enough in propensity score "
                                "(no overlap within the caliper)")
        if matched < programme.disclosure_threshold:
            raise MatchingError(f"fewer than {programme.disclosure_threshold} participants had a comparison person "
                                "close enough in propensity score: too few to compare without identifying someone")
    except (MatchingError, ValueError, np.linalg.LinAlgError) as exc:
        ev.notes.append(f"No impact estimate was possible: matching could not run ({exc}).")
        return ev
    ev.design = design
    ss = design.sample_sizes()
    ev.attrition.loc[len(ev.attrition)] = {"stage": "Matched", "participants": int(ss.loc["Matched", "treated"]),
                                           "comparison": int(ss.loc["Matched", "control"])}
    adjust = covariates if opts.get("adjust") == "all" else list(opts.get("adjust") or ())  # matching.adjust
    for outcome, kind in (("reoffended", "binary"), ("reoffence_count", "count")):
        ev.effects[outcome], notes = headline_effect(design, outcome, adjust=adjust, outcome_type=kind)
        ev.notes.extend(n for n in notes if n not in ev.notes)
    ev.effects.update(_days_effect(design))
    if "first_time_entrant" in analysis.columns and programme.outcome.get("first_time_entrants"):
        md = design.matched
        if md["no_prior_record"].astype(bool).any():
            design.data["first_time_entrant"] = design.data["first_time_entrant"].fillna(0).astype(int)
            try:
                ev.effects["first_time_entrant"] = design.effect("first_time_entrant", outcome_type="binary")
            except _ESTIMATION_FAILURES as exc:  # reported
                ev.notes.append(f"First-time entrants not estimated: {exc}")
    try:
        ev.survival = matched_survival(design, "duration", "event", tau=365,
                                       event_type="event_type" if "event_type" in design.matched else None)
    except _ESTIMATION_FAILURES as exc:  # a survival failure must not sink the report; it is reported
        ev.notes.append(f"Time-to-reoffence analysis not possible: {exc}")
    ev.sensitivity = _sensitivity(design, ev.effects["reoffended"], analysis, covariates, opts, seed)
    ev.power = _power(design)
    e = ev.effects["reoffended"]
    words = wording.measure_words(programme.outcome.get("label"))
    ev.findings.append(wording.rate_finding(e.estimate, e.ci_low, e.ci_high, e.p_value, ev.treated_reoffenders,
                                            number_needed=ev.power.get("number_needed"), n_analysed=e.n_treated,
                                            **words))
    f = ev.effects["reoffence_count"]
    ev.findings.append(wording.frequency_finding(f.estimate, f.ci_low, f.ci_high, f.p_value,
                                                 ev.treated_reoffenders, offences=words["offences"]))
    note = wording.small_sample_note(int(ss.loc["Matched", "treated"]), ev.treated_reoffenders, verb=words["verb"])
    if note:
        ev.notes.append(note)
    return ev


def no_estimate_reason(analysis: pd.DataFrame, min_participants: int = 2) -> str | None:
    """Why no matched comparison can be made (``None`` when one can): no eligible participants, an empty
    comparison pool, too few people to fit a propensity model, or fewer eligible participants than
    ``min_participants`` (the disclosure threshold: any figure about so few people could identify one of them)."""
    n1 = int((analysis["treat"] == 1).sum()) if len(analysis) else 0
    n0 = int((analysis["treat"] == 0).sum()) if len(analysis) else 0
    if n1 == 0:
        return ("no participant was eligible (none had a full follow-up and waiting period by the extract date, "
                "or none was referred in the programme period).")
    if n0 == 0:
        return "the comparison pool is empty: no one outside the programme met the target-group rules."
    if n1 < 2 or n0 < 2:
        return "too few people to fit a propensity model (fewer than two participants or comparison people)."
    if n1 < min_participants:
        return (f"fewer than {min_participants} participants had a full follow-up and waiting period: too few to "
                "compare, and any result about so few people could identify one of them.")
    return None


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
        # the money was spent on everyone referred: the provider's list when it was linked, else the referrals
        referred = int(att.get("Referrals on the provider's list", att.get("Referred", ev.n_treated)))
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
    except _ESTIMATION_FAILURES:  # too few reoffenders to estimate a spread
        return {}


def _sensitivity(design, effect, analysis: pd.DataFrame, covariates: list, opts: dict, seed: int) -> dict:
    """E-value for the risk ratio and Rosenbaum bounds for hidden bias, on the headline's own design only.

    Rosenbaum bounds need 1:1 pairs. When the headline design matches several comparison people per participant
    (or with replacement), no bounds are computed: bounds from a different (1:1) design would describe a result
    the report does not publish (``rosenbaum_error`` says why).
    """
    from evaluation import sensitivity as sens

    out: dict[str, Any] = {}
    rr = effect.ratios.get("risk_ratio")
    if rr is not None:
        out["e_value"] = _clean(sens.e_value(rr[0], rr[1], rr[2]))
    if getattr(design, "replace", True) or any(len(c) > 1 for c in design.match_matrix.values()):
        out["rosenbaum_error"] = ("they need 1:1 matched pairs, and this design matches several comparison people "
                                  "per participant")
        return out
    try:
        rb = sens.rosenbaum_bounds(design, "reoffended")
        out["rosenbaum"] = rb[[c for c in ("gamma", "p_lower", "p_upper") if c in rb.columns]].to_dict(orient="records")
        ok = rb[rb["p_upper"] <= 0.05]
        out["rosenbaum_gamma_max"] = float(ok["gamma"].max()) if len(ok) else None
    except _ESTIMATION_FAILURES as exc:  # reported, never fatal
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
    except _ESTIMATION_FAILURES as exc:
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
