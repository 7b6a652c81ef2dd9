"""Delivery monitoring: progress against targets over time, reach and referral funnels.

Data: the ``delivery`` table of ``data/README.md`` (``programme_id``, ``date``, ``activity``, ``audience``,
``sessions``, ``attendees``, ``referrals_to``, ``organisations``); targets from ``programmes/<id>.yaml``
(``targets: {audience: {sessions: N, attendees: N}}``; ``null`` = no published target).

Conventions: progress is counted by **calendar month** (month = first day); cumulative figures are totals
from the programme start to the end of each month; "% of target" is cumulative / target × 100 (per cent);
the projection to the programme end assumes the average monthly pace so far continues for the remaining
whole calendar months (``projected = cumulative + pace × remaining months``). ``attendees`` counts
attendances (people at each session record), not different people: the same person attending twice is counted
twice, as in the logs. Published attendee targets count people to reach, so "% of target" for attendees compares
attendances with a count of people and is worded that way in the text and tables.
For ``activity == "referral"`` rows ``attendees`` is the number of young people referred to
``referrals_to``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evaluation.errors import EvaluationError
from evaluation.schemas import ACTIVITIES, AUDIENCES  # noqa: E402 - code lists are defined once, in schemas
_COLUMNS = ("programme_id", "date", "activity", "audience", "sessions", "attendees", "referrals_to", "organisations")
AUDIENCE_LABELS = {"pupils": "pupils", "teachers": "teachers", "parents": "parents",
                   "professionals": "frontline professionals", "vcse_organisations": "VCSE organisations' staff",
                   "young_people": "young people", "families": "families"}


class DeliveryError(EvaluationError):
    """Delivery log unusable; the message names the argument/file, column and first offending rows."""


def _rows(idx) -> str:
    idx = list(idx)
    return ", ".join(map(str, idx[:5])) + (f" and {len(idx) - 5} more" if len(idx) > 5 else "")


def _months_between(a: pd.Timestamp, b: pd.Timestamp) -> int:
    """Whole calendar months from month of a to month of b (inclusive count)."""
    return (b.year - a.year) * 12 + (b.month - a.month) + 1


def programme_delivery(delivery: pd.DataFrame, programme) -> pd.DataFrame:
    """The checked delivery rows of one programme.

    Raises :class:`DeliveryError` for a missing column, an unknown audience or activity, negative counts, or
    records dated outside the programme's ``start``–``end`` (naming the rows and dates). Rows of other
    programmes are ignored (not an error).
    """
    from evaluation.config import load_programme

    if isinstance(programme, str):
        programme = load_programme(programme)
    if not isinstance(delivery, pd.DataFrame):
        raise DeliveryError(f"delivery: expected a DataFrame, got {type(delivery).__name__}")
    missing = [c for c in ("programme_id", "date", "activity", "audience", "sessions", "attendees")
               if c not in delivery.columns]
    if missing:
        raise DeliveryError(f"delivery: missing column(s) {', '.join(missing)}")
    d = delivery[delivery["programme_id"].astype(str) == programme.id].copy()
    for c in ("referrals_to", "organisations"):
        if c not in d.columns:
            d[c] = pd.NA
    d["date"] = pd.to_datetime(d["date"], errors="coerce")
    bad = d.index[d["date"].isna()]
    if len(bad):
        raise DeliveryError(f"delivery: column 'date': missing or invalid dates for {programme.id} in rows {_rows(bad)}")
    aud = d["audience"].astype(str)
    bad = d.index[~aud.isin(AUDIENCES)]
    if len(bad):
        raise DeliveryError(f"delivery: column 'audience': unknown audience "
                            f"{', '.join(sorted(set(aud[bad])))} in rows {_rows(bad)} (known: {', '.join(AUDIENCES)})")
    act = d["activity"].astype(str)
    bad = d.index[~act.isin(ACTIVITIES)]
    if len(bad):
        raise DeliveryError(f"delivery: column 'activity': unknown activity "
                            f"{', '.join(sorted(set(act[bad])))} in rows {_rows(bad)} (known: {', '.join(ACTIVITIES)})")
    for c in ("sessions", "attendees", "organisations"):
        v = pd.to_numeric(d[c], errors="coerce")
        bad = d.index[(v < 0).fillna(False) | (v.isna() & d[c].notna())]
        if len(bad):
            raise DeliveryError(f"delivery: column '{c}': negative or non-numeric values in rows {_rows(bad)}")
    start, end = pd.Timestamp(programme.start), pd.Timestamp(programme.end)
    out = d.index[(d["date"] < start) | (d["date"] > end)]
    if len(out):
        dates = ", ".join(f"{x:%Y-%m-%d}" for x in d.loc[out, "date"][:5])
        raise DeliveryError(
            f"delivery: column 'date': {len(out)} record(s) of {programme.id} outside the programme dates "
            f"{start:%Y-%m-%d} to {end:%Y-%m-%d} (config {programme.path}): rows {_rows(out)} ({dates})")
    d["audience"] = aud
    d["activity"] = act
    d["sessions"] = pd.to_numeric(d["sessions"]).astype("int64")
    d["attendees"] = pd.to_numeric(d["attendees"]).astype("int64")
    d["organisations"] = pd.to_numeric(d["organisations"], errors="coerce").astype("Int64")
    return d.sort_values("date")


def _targets(programme) -> dict[str, dict[str, float | None]]:
    targets = programme.get("targets") or {}
    out = {}
    for aud, t in targets.items():
        if aud not in AUDIENCES and not isinstance(t, dict):
            continue  # a programme-level target (e.g. 'participants: 40'), not a delivery audience
        if aud not in AUDIENCES:
            raise DeliveryError(f"{programme.path}: key 'targets.{aud}': unknown audience (known: {', '.join(AUDIENCES)})")
        t = t or {}
        out[aud] = {k: (float(t[k]) if t.get(k) is not None else None) for k in ("sessions", "attendees")}
    return out


@dataclass
class DeliveryResult:
    """Delivery against targets for one programme (see module docstring for conventions)."""

    programme_id: str
    programme_name: str
    start: pd.Timestamp
    end: pd.Timestamp
    asof: pd.Timestamp
    progress: pd.DataFrame  # audience, month, sessions, attendees, cum_*, target_*, pct_*
    table: pd.DataFrame  # one row per audience: totals, targets, % of target, projection
    reach: pd.DataFrame  # activity x audience totals
    funnel: pd.DataFrame | None  # stage, destination, count
    records: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"programme_id": self.programme_id, "asof": self.asof.date().isoformat(), "records": self.records,
                "targets": _records(self.table), "reach": _records(self.reach),
                "funnel": _records(self.funnel) if self.funnel is not None else None}

    def summary(self) -> pd.DataFrame:
        return self.table.copy()

    def text(self) -> str:
        """Plain-English summary of delivery against targets (one sentence per audience with a target)."""
        parts = []
        attendee_targets = []
        for _, r in self.table.iterrows():
            label = AUDIENCE_LABELS.get(r["audience"], r["audience"])
            s = f"{int(r['sessions']):,} sessions recorded {int(r['attendees']):,} attendances by {label}"
            bits = []
            if pd.notna(r["target_sessions"]):
                bits.append(f"{r['pct_sessions']:.0f}% of the target of {r['target_sessions']:,.0f} sessions")
            if pd.notna(r["target_attendees"]):
                # the published aim counts people; the log counts attendances, so say which is compared with which
                bits.append(f"attendances equal to {r['pct_attendees']:.0f}% of the aim of reaching "
                            f"{r['target_attendees']:,.0f} {label}")
                attendee_targets.append(label)
            if bits:
                s += " (" + "; ".join(bits) + ")"
            elif r["audience"] in self._target_audiences:
                s += " (no published target)"
            parts.append(s)
        text = ""
        if parts:
            text = (f"By {self.asof:%B %Y}, " + "; ".join(parts) + ". Someone who came to several sessions is "
                    "counted each time, so attendances are not a count of different people")
            if attendee_targets:
                text += ("; the aims count people, so these percentages compare attendances with them and do not "
                         "show how many different people were reached")
            text += "."
        orgs = self.reach["organisations"].sum(min_count=1) if "organisations" in self.reach else pd.NA
        if pd.notna(orgs) and orgs:
            text += (f" Counting organisations rather than their staff, the sessions recorded {int(orgs):,} "
                     "organisation attendances (each organisation counted once at each session it sent staff to, "
                     "so an organisation at several sessions is counted each time).")
        if self.funnel is not None and not self.funnel.empty:
            contacts = int(self.funnel.loc[self.funnel["stage"] == "contacts", "count"].sum())
            refs = self.funnel[self.funnel["stage"] == "referred_to"]
            total = int(self.funnel.loc[self.funnel["stage"] == "referrals", "count"].sum())
            top = refs.sort_values("count", ascending=False).head(3)
            names = [f"{destination_label(r.destination)} {int(r.count)}" for r in top.itertuples()]
            dest = (", ".join(names[:-1]) + " and " + names[-1]) if len(names) > 1 else "".join(names)
            most = "most often " if len(refs) > len(top) else ""
            text += (f"{' ' if text else ''}By {self.asof:%B %Y}, workers recorded {contacts:,} contacts and made "
                     f"{total:,} onward referrals" + (f" ({most}{dest})" if dest else "") + ".")
        return text or f"No delivery was recorded for {self.programme_name}."

    @property
    def _target_audiences(self) -> set[str]:
        return set(self.table.loc[self.table["has_target"], "audience"])

    def plot(self, measure: str = "attendees"):
        """Cumulative ``measure`` (``"sessions"`` or ``"attendees"``) by audience against target, with the
        projection to the programme end at the current pace (dashed)."""
        import matplotlib.pyplot as plt

        auds = list(self.table["audience"])
        fig, axes = plt.subplots(1, max(1, len(auds)), figsize=(3.6 * max(1, len(auds)), 3.2), squeeze=False,
                                 constrained_layout=True)
        for ax, aud in zip(axes[0], auds):
            p = self.progress[self.progress["audience"] == aud]
            ax.step(p["month"], p[f"cum_{measure}"], where="post", color="C0", label="delivered")
            row = self.table.set_index("audience").loc[aud]
            target = row[f"target_{measure}"]
            if pd.notna(target):
                # in the words and unit of the tables: an attendee target is an aim of reaching people (the
                # series counts attendances), a session target counts sessions
                what = f"aim: reach {target:,.0f} people" if measure == "attendees" else f"target: {target:,.0f} sessions"
                ax.axhline(target, color="C3", ls="--", lw=1, label=what)
            if pd.notna(row[f"projected_{measure}"]) and self.asof < self.end:
                ax.plot([self.asof, self.end], [row[measure], row[f"projected_{measure}"]], ls=":", color="C0",
                        label="projection at current pace")
            ax.set_title(AUDIENCE_LABELS.get(aud, aud), fontsize=10)
            ax.set_xlim(self.start, self.end)
            _date_axis(ax)
            # below the panel: inside, the key sat on the line it describes (SOS+, pupils)
            ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14))
        axes[0][0].set_ylabel("cumulative sessions" if measure == "sessions" else "cumulative attendances")
        return fig

    def plot_funnel(self, ax=None):
        """Contacts → referrals → by destination (horizontal bars)."""
        import matplotlib.pyplot as plt

        if self.funnel is None or self.funnel.empty:
            raise DeliveryError(f"{self.programme_id}: no contacts or referrals recorded, so there is no funnel to plot")
        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 0.4 * len(self.funnel) + 1.2), constrained_layout=True)
        labels = [s if s != "referred_to" else f"  → {d}" for s, d in
                  zip(self.funnel["stage"], self.funnel["destination"])]
        y = np.arange(len(labels))[::-1]
        ax.barh(y, self.funnel["count"], color=["C0" if s == "contacts" else "C1" for s in self.funnel["stage"]])
        ax.set_yticks(y, labels)
        ax.set_xlabel("number")
        ax.set_title("Contacts and onward referrals")
        return fig if fig is not None else ax.figure


def _date_axis(ax, max_ticks: int = 4) -> None:
    """At most ``max_ticks`` date ticks on ``ax``'s x axis, labelled concisely (years, or months within a year with
    the year once), unrotated: the delivery panels are narrow, and 2019-05 ... 2022-01 every few months overlapped."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=2, maxticks=max_ticks)
    formatter = mdates.ConciseDateFormatter(locator, show_offset=False)
    # every label carries its year (no offset text to look for): "May 2019", "Sep 2019", "2020" (a January)
    formatter.formats = ["%Y", "%b %Y", "%d %b %Y", "%H:%M", "%H:%M", "%S.%f"]
    formatter.zero_formats = ["", "%Y", "%b %Y", "%d %b", "%H:%M", "%H:%M"]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    ax.tick_params(axis="x", labelrotation=0, labelsize=8)


#: How referral destinations are written for a reader (codes from the data dictionary; others as recorded).
DESTINATION_LABELS = {"mash": "MASH", "mace": "MACE", "yot": "YOT", "early_help": "Early Help",
                      "school": "school", "health": "health services", "camhs": "CAMHS", "police": "police",
                      "community_policing": "community policing", "self": "self-referral"}


def destination_label(code) -> str:
    """A referral destination as a reader should see it (``early_help`` → ``Early Help``)."""
    c = str(code)
    return DESTINATION_LABELS.get(c.strip().lower(), c.replace("_", " "))


def _records(df):
    return [{k: (None if (isinstance(v, float) and np.isnan(v)) or v is pd.NA else
                 (v.isoformat() if isinstance(v, (pd.Timestamp, dt.date)) else (v.item() if hasattr(v, "item") else v)))
             for k, v in row.items()} for row in df.to_dict(orient="records")]


def delivery_progress(delivery: pd.DataFrame, programme, *, asof=None) -> DeliveryResult:
    """Progress against target over time, reach and referral funnel for one programme.

    ``asof``: the date the figures run to (default: the programme end, or the last record if the programme is
    still running — i.e. the last delivery date capped at ``end``). Every audience in the targets or the logs
    gets a row of ``table``: sessions and attendees delivered, targets (NaN when none is published), % of
    target, average monthly pace, projection to the end and whether the target is on track (projection ≥
    target). ``progress``: month-by-month delivered and cumulative figures per audience. ``reach``: totals by
    activity and audience (sessions, attendees, organisations, attendees per session). ``funnel``: contacts →
    referrals → by destination (None when the programme logs neither).
    """
    from evaluation.config import load_programme

    if isinstance(programme, str):
        programme = load_programme(programme)
    d = programme_delivery(delivery, programme)
    targets = _targets(programme)
    start, end = pd.Timestamp(programme.start), pd.Timestamp(programme.end)
    if asof is None:
        asof = min(end, d["date"].max()) if not d.empty else start
        if not d.empty and d["date"].max() >= end - pd.Timedelta(days=31):
            asof = end
    asof = pd.Timestamp(asof)
    if asof < start:
        raise DeliveryError(f"asof: {asof:%Y-%m-%d} is before the programme start {start:%Y-%m-%d}")
    d = d[d["date"] <= asof]
    months = pd.date_range(start.to_period("M").to_timestamp(), asof.to_period("M").to_timestamp(), freq="MS")
    # session/training delivery (not contacts/referrals) counts towards targets
    deliv = d[d["activity"].isin(["session", "training"])]
    audiences = list(dict.fromkeys([*targets, *deliv["audience"].unique()]))
    elapsed = _months_between(start, asof)
    total = _months_between(start, end)
    prog_rows, table_rows = [], []
    for aud in audiences:
        a = deliv[deliv["audience"] == aud]
        m = a.groupby(a["date"].dt.to_period("M").dt.to_timestamp())[["sessions", "attendees"]].sum()
        m = m.reindex(months, fill_value=0)
        m.index.name = "month"
        t = targets.get(aud, {"sessions": None, "attendees": None})
        p = m.reset_index()
        p.insert(0, "audience", aud)
        row = {"audience": aud, "has_target": aud in targets}
        for k in ("sessions", "attendees"):
            p[f"cum_{k}"] = p[k].cumsum()
            tk = t.get(k)
            p[f"target_{k}"] = tk if tk is not None else np.nan
            p[f"pct_{k}"] = 100 * p[f"cum_{k}"] / tk if tk else np.nan
            done = int(m[k].sum())
            pace = done / elapsed
            projected = done + pace * max(0, total - elapsed)
            row.update({k: done, f"target_{k}": tk if tk is not None else np.nan,
                        f"pct_{k}": 100 * done / tk if tk else np.nan, f"pace_{k}_per_month": pace,
                        f"projected_{k}": projected,
                        f"projected_pct_{k}": 100 * projected / tk if tk else np.nan,
                        f"on_track_{k}": (projected >= tk) if tk else None})
        row["attendees_per_session"] = row["attendees"] / row["sessions"] if row["sessions"] else np.nan
        prog_rows.append(p)
        table_rows.append(row)
    progress = pd.concat(prog_rows, ignore_index=True) if prog_rows else pd.DataFrame()
    table = pd.DataFrame(table_rows, columns=None if table_rows else ["audience", "has_target", "sessions",
                                                                        "attendees"])
    reach = (d.groupby(["activity", "audience"], observed=True)
             .agg(records=("sessions", "size"), sessions=("sessions", "sum"), attendees=("attendees", "sum"),
                  organisations=("organisations", lambda s: s.sum(min_count=1)))
             .reset_index())
    reach["attendees_per_session"] = np.where(reach["sessions"] > 0, reach["attendees"] / reach["sessions"].where(
        reach["sessions"] > 0, 1), np.nan)
    funnel = referral_funnel(d)
    return DeliveryResult(programme_id=programme.id, programme_name=programme.name, start=start, end=end,
                          asof=asof, progress=progress, table=table, reach=reach, funnel=funnel, records=len(d))


def referral_funnel(d: pd.DataFrame) -> pd.DataFrame | None:
    """Contacts (attendees of ``contact`` records) → referrals (attendees of ``referral`` records) → one row
    per destination (stage ``referred_to``, ``destination`` = ``referrals_to``). Columns: stage, destination, count, share_of_contacts (0–1).
    None when there are no contacts and no referrals. A referral with no destination is an error."""
    contacts = d[d["activity"] == "contact"]
    refs = d[d["activity"] == "referral"]
    if contacts.empty and refs.empty:
        return None
    bad = refs.index[refs["referrals_to"].isna() | (refs["referrals_to"].astype(str).str.strip() == "")]
    if len(bad):
        raise DeliveryError(f"delivery: column 'referrals_to': referral records with no destination in rows {_rows(bad)}")
    n_contacts = int(contacts["attendees"].sum())
    rows = [{"stage": "contacts", "destination": "all", "count": n_contacts},
            {"stage": "referrals", "destination": "all", "count": int(refs["attendees"].sum())}]
    by = refs.groupby(refs["referrals_to"].astype(str))["attendees"].sum().sort_values(ascending=False)
    rows += [{"stage": "referred_to", "destination": k, "count": int(v)} for k, v in by.items()]
    out = pd.DataFrame(rows)
    out["share_of_contacts"] = out["count"] / n_contacts if n_contacts else np.nan
    return out
