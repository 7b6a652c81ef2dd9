"""The register of published figures: every number a report shows, once, with a stable id.

A report (PDF, HTML), its ``results.json`` and the portfolio read figures from a :class:`Register` only, so they
cannot disagree, and disclosure control (:func:`evaluation.disclosure.protect_register`) sees every published
figure *and every linear relation between them* at once.

Ids are dotted, lower case and stable across builds, e.g. ``n.participants``, ``rate.difference``,
``attrition.matched.participants``, ``profile.sex.unknown.participants``, ``risk.comparison.day180``. Labels are
for people and may change; code looks figures up by id, never by label.

Units: ``people`` (a count of people: disclosure-controlled), ``proportion`` (0–1), ``pp`` (difference of two
proportions, 0–1 scale), ``per_person`` (reoffences per person), ``days``, ``ratio``, ``smd``, ``gbp``, ``number``
(anything else numeric, e.g. sessions delivered), ``text``.

Statuses: ``shown`` (published exactly), ``rounded`` (published rounded to ``base``), ``suppressed`` (shown as
``[c]``), ``withheld`` (a non-count figure not published because it would reveal a suppressed count) and ``hidden``
(a quantity a reader could try to derive — e.g. the people lost between two attrition steps — registered so the
disclosure check can prove it cannot be derived; never published).

Examples
--------
>>> reg = Register(threshold=5)
>>> reg.count("n.participants", "Participants analysed", 41, section="headline")
>>> reg["n.participants"].value
41
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PEOPLE = "people"
STATUSES = ("shown", "rounded", "suppressed", "withheld", "hidden")


def slug(text: Any) -> str:
    """A stable id part from a label: ``"Excluded: no follow-up" -> "excluded_no_follow_up"``."""
    s = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")
    return s or "blank"


@dataclass
class Figure:
    """One published figure (see the module docstring for units and statuses)."""

    id: str
    label: str
    value: Any
    unit: str
    section: str
    denominator: str | None = None
    lower: float | None = None
    upper: float | None = None
    p_value: float | None = None
    significant: bool | None = None
    status: str = "shown"
    shown: Any = None  # the value as published after disclosure control (rounded int, "[c]", or the value)
    note: str | None = None
    exact: bool = False  # a count that must be published exactly (the analysed N): never rounded
    meta: dict = field(default_factory=dict)  # structure for tables (e.g. characteristic and category)

    def __repr__(self) -> str:
        return f"Figure({self.id}={self.shown if self.status != 'hidden' else '<hidden>'!s}, {self.unit}, {self.status})"

    @property
    def published(self) -> bool:
        return self.status in ("shown", "rounded", "suppressed")

    def to_json(self) -> dict:
        """The published form: a suppressed or withheld figure carries no value, CI or p-value."""
        out: dict[str, Any] = {"label": self.label, "unit": self.unit, "section": self.section,
                               "status": self.status}
        visible = self.status in ("shown", "rounded")
        out["value"] = _plain(self.shown if visible else None)
        if self.denominator:
            out["denominator"] = self.denominator
        for k in ("lower", "upper", "p_value"):
            v = getattr(self, k)
            if v is not None:
                out[k] = _plain(v) if visible else None
        if self.significant is not None:
            out["significant"] = bool(self.significant) if visible else None
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Relation:
    """A linear equation a reader can form from published figures: ``sum(coef * value) == rhs``.

    ``via`` lists non-count figures the equation needs (e.g. a rate, for ``reoffenders = rate × N``): when one
    of them is withheld the relation is gone.
    """

    terms: dict[str, float]
    rhs: float = 0.0
    why: str = ""
    via: tuple = ()


@dataclass
class Register:
    """Every figure one build publishes, and the relations among them (see the module docstring)."""

    threshold: int = 5
    base: int = 5
    synthetic: bool | None = None
    figures: dict[str, Figure] = field(default_factory=dict)
    relations: list[Relation] = field(default_factory=list)
    checked: bool = False
    meta: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        n = sum(f.published for f in self.figures.values())
        return (f"Register({n} published figures, {len(self.relations)} relations, threshold={self.threshold}, "
                f"checked={self.checked})")

    def __getitem__(self, key: str) -> Figure:
        return self.figures[key]

    def __contains__(self, key: str) -> bool:
        return key in self.figures

    def get(self, key: str, default=None):
        return self.figures.get(key, default)

    # ------------------------------------------------------------------------------------------------ adding
    def add(self, id: str, label: str, value, unit: str, section: str, **kw) -> Figure:
        """Add one figure; ids are unique (a second add of the same id is an error, not an overwrite)."""
        if id in self.figures:
            raise ValueError(f"register: figure id '{id}' added twice")
        if isinstance(value, (np.integer,)):
            value = int(value)
        elif isinstance(value, (np.floating, float)):
            value = None if not math.isfinite(float(value)) else float(value)
        fig = Figure(id=id, label=label, value=value, unit=unit, section=section, **kw)
        fig.shown = fig.value
        self.figures[id] = fig
        return fig

    def count(self, id: str, label: str, value, section: str, *, hidden: bool = False, exact: bool = False,
              **kw) -> Figure:
        """Add a count of people (``hidden=True``: derivable but never published)."""
        v = None if value is None or (isinstance(value, float) and math.isnan(value)) else int(round(float(value)))
        return self.add(id, label, v, PEOPLE, section, status="hidden" if hidden else "shown", exact=exact, **kw)

    def relate(self, terms: dict[str, float], rhs: float = 0.0, why: str = "", via=()) -> None:
        """Record a linear relation among counts (ids must exist)."""
        missing = [k for k in list(terms) + list(via) if k not in self.figures]
        if missing:
            raise KeyError(f"register: relation '{why}' names unknown figures {missing}")
        self.relations.append(Relation(dict(terms), float(rhs), why, tuple(via)))

    def difference(self, a: str, b: str, id: str, label: str, section: str, why: str) -> None:
        """Register ``a − b`` as a hidden count with the relation ``a − b − id = 0`` (a step a reader can take)."""
        va, vb = self.figures[a].value, self.figures[b].value
        if va is None or vb is None:
            return
        self.count(id, label, va - vb, section, hidden=True)
        self.relate({a: 1.0, b: -1.0, id: -1.0}, 0.0, why)

    # ------------------------------------------------------------------------------------------------ reading
    def section(self, name: str, *, published_only: bool = True) -> list[Figure]:
        """Figures of one section, in the order added (a sub-analysis's figures, merged under a prefix, are left
        out: read them through :meth:`view`)."""
        prefixes = tuple(p + "." for p in self.meta.get("prefixes", ()))
        return [f for k, f in self.figures.items() if f.section == name and (f.published or not published_only)
                and not (prefixes and k.startswith(prefixes))]

    def together(self, ids) -> None:
        """Figures withheld together: when one is withheld, so are the rest (e.g. a rate, and the difference and
        ratios that would give it back from the other group's rate)."""
        ids = [i for i in ids if i in self.figures]
        if len(ids) > 1:
            self.meta.setdefault("together", []).append(ids)

    def value(self, id: str, default=None):
        """The published value of a figure (``None`` when suppressed, withheld or absent)."""
        f = self.figures.get(id)
        if f is None or f.status not in ("shown", "rounded"):
            return default
        return f.shown

    def display(self, id: str, fmt=None, *, missing: str = "–") -> str:
        """The figure as printed: ``[c]`` when suppressed, ``–`` when absent or withheld, else ``fmt(value)``."""
        from evaluation.disclosure import SUPPRESSED

        f = self.figures.get(id)
        if f is None or f.status in ("withheld", "hidden") or f.shown is None:
            return SUPPRESSED if f is not None and f.status == "suppressed" else missing
        if f.status == "suppressed":
            return SUPPRESSED
        if fmt is not None:
            return fmt(f.shown)
        return f"{f.shown:,}" if isinstance(f.shown, int) else str(f.shown)

    def to_json(self) -> dict:
        """``{id: figure}`` for every published figure (hidden ones are never written)."""
        return {k: f.to_json() for k, f in self.figures.items() if f.status != "hidden"}

    def merged(self, other: "Register", prefix: str) -> None:
        """Add ``other``'s figures and relations under ``prefix.`` (a sub-analysis joins its parent's register)."""
        for k, f in other.figures.items():
            g = Figure(**{**f.__dict__, "id": f"{prefix}.{k}", "meta": dict(f.meta)})
            self.figures[g.id] = g
        self.meta.setdefault("prefixes", []).append(prefix)
        for grp in other.meta.get("together", []):
            self.meta.setdefault("together", []).append([f"{prefix}.{i}" for i in grp])
        for r in other.relations:
            self.relations.append(Relation({f"{prefix}.{k}": c for k, c in r.terms.items()}, r.rhs, r.why,
                                           tuple(f"{prefix}.{v}" for v in r.via)))


    def view(self, prefix: str) -> "Register":
        """The figures under ``prefix.`` as a register of their own (the same Figure objects, so disclosure
        decisions are shared; relations stay with the parent)."""
        cut = len(prefix) + 1
        figs = {k[cut:]: f for k, f in self.figures.items() if k.startswith(prefix + ".")}
        return Register(threshold=self.threshold, base=self.base, synthetic=self.synthetic, figures=figs,
                        relations=[], checked=self.checked, meta={"view_of": prefix})


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        v = float(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v
