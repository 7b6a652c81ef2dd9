"""Delivery monitoring: progress against targets by hand, projection, reach, referral funnel, bad input."""
from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from evaluation import delivery as dl  # noqa: E402
from evaluation.delivery import DeliveryError  # noqa: E402


def _log(rows):
    df = pd.DataFrame(rows, columns=["programme_id", "date", "activity", "audience", "sessions", "attendees",
                                     "referrals_to", "organisations"])
    df["date"] = pd.to_datetime(df["date"])
    return df


def _sos():
    return _log([
        ("sos-plus", "2019-04-10", "session", "pupils", 1, 70, None, None),
        ("sos-plus", "2019-04-20", "session", "pupils", 1, 80, None, None),
        ("sos-plus", "2019-06-05", "session", "pupils", 2, 100, None, None),
        ("sos-plus", "2019-05-01", "session", "teachers", 1, 50, None, None),
        ("mace", "2019-05-01", "training", "professionals", 1, 20, None, None),  # other programme: ignored
    ])


def test_progress_against_target_by_hand():
    r = dl.delivery_progress(_sos(), "sos-plus", asof="2019-06-30")
    t = r.table.set_index("audience")
    assert list(t.index) == ["pupils", "teachers", "parents"]
    assert t.loc["pupils", "sessions"] == 4 and t.loc["pupils", "attendees"] == 250
    assert t.loc["pupils", "pct_sessions"] == pytest.approx(100 * 4 / 120)
    assert t.loc["pupils", "pct_attendees"] == pytest.approx(100 * 250 / 8600)
    # 3 months elapsed of 36 (Apr 2019 - Mar 2022): pace 250/3 a month, 33 months to go
    assert t.loc["pupils", "pace_attendees_per_month"] == pytest.approx(250 / 3)
    assert t.loc["pupils", "projected_attendees"] == pytest.approx(250 + 250 / 3 * 33)
    assert t.loc["pupils", "on_track_attendees"] == (250 + 250 / 3 * 33 >= 8600)
    assert t.loc["parents", "sessions"] == 0 and t.loc["parents", "pct_sessions"] == 0
    p = r.progress[r.progress["audience"] == "pupils"].set_index("month")
    assert p["cum_attendees"].tolist() == [150, 150, 250]
    assert p.loc["2019-06-01", "pct_sessions"] == pytest.approx(100 * 4 / 120)
    assert r.funnel is None
    text = r.text()
    assert "By June 2019" in text and "of the aim of reaching 8,600 pupils" in text
    json.dumps(r.to_dict())
    assert isinstance(r.plot(), matplotlib.figure.Figure)
    assert isinstance(r.plot("sessions"), matplotlib.figure.Figure)


def test_referral_funnel_by_hand():
    log = _log([
        ("detached-youth-work", "2019-04-08", "contact", "young_people", 3, 30, None, None),
        ("detached-youth-work", "2019-04-15", "contact", "young_people", 2, 20, None, None),
        ("detached-youth-work", "2019-04-15", "referral", "young_people", 0, 4, "MASH", None),
        ("detached-youth-work", "2019-05-15", "referral", "young_people", 0, 3, "MASH", None),
        ("detached-youth-work", "2019-05-15", "referral", "young_people", 0, 2, "MACE", None),
    ])
    r = dl.delivery_progress(log, "detached-youth-work")
    f = r.funnel
    assert f["stage"].tolist() == ["contacts", "referrals", "referred_to", "referred_to"]
    assert f["count"].tolist() == [50, 9, 7, 2]
    assert f["destination"].tolist()[2:] == ["MASH", "MACE"]
    assert f["share_of_contacts"].iloc[1] == pytest.approx(9 / 50)
    assert "50 contacts" in r.text() and "9 onward referrals" in r.text() and "MASH 7" in r.text()
    assert isinstance(r.plot_funnel(), matplotlib.figure.Figure)
    reach = r.reach.set_index(["activity", "audience"])
    assert reach.loc[("contact", "young_people"), "attendees_per_session"] == pytest.approx(10)


def test_capacity_building_organisations_and_no_target():
    log = _log([("capacity-building", "2019-05-01", "training", "vcse_organisations", 1, 12, None, 4),
                ("capacity-building", "2019-06-01", "training", "vcse_organisations", 1, 8, None, 3)])
    r = dl.delivery_progress(log, "capacity-building")
    row = r.table.iloc[0]
    assert row["sessions"] == 2 and np.isnan(row["target_sessions"]) and row["on_track_sessions"] is None
    assert r.reach["organisations"].iloc[0] == 7
    assert "no published target" in r.text() and "7 organisation attendances" in r.text()


def test_programme_level_targets_are_not_audiences():
    log = _log([("pathways-out", "2019-05-15", "session", "young_people", 30, 20, None, None)])
    r = dl.delivery_progress(log, "pathways-out")  # targets: {participants: 40} is not a delivery audience
    assert r.table["audience"].tolist() == ["young_people"]


def test_delivery_outside_programme_dates():
    log = _sos()
    log.loc[len(log)] = ["sos-plus", pd.Timestamp("2022-05-01"), "session", "pupils", 1, 10, None, None]
    with pytest.raises(DeliveryError, match=r"outside the programme dates 2019-04-01 to 2022-03-31.*rows 5 \(2022-05-01\)"):
        dl.delivery_progress(log, "sos-plus")


def test_unknown_audience_and_activity():
    log = _sos()
    log.loc[1, "audience"] = "governors"
    with pytest.raises(DeliveryError, match="unknown audience governors in rows 1"):
        dl.delivery_progress(log, "sos-plus")
    log = _sos()
    log.loc[2, "activity"] = "assembly"
    with pytest.raises(DeliveryError, match="unknown activity assembly in rows 2"):
        dl.delivery_progress(log, "sos-plus")


def test_bad_counts_missing_columns_and_destination():
    log = _sos()
    log.loc[0, "attendees"] = -3
    with pytest.raises(DeliveryError, match="column 'attendees'.*rows 0"):
        dl.delivery_progress(log, "sos-plus")
    with pytest.raises(DeliveryError, match="missing column"):
        dl.delivery_progress(_sos().drop(columns="audience"), "sos-plus")
    log = _log([("detached-youth-work", "2019-04-15", "referral", "young_people", 0, 4, None, None)])
    with pytest.raises(DeliveryError, match="no destination in rows 0"):
        dl.delivery_progress(log, "detached-youth-work")


def test_synthetic_world_delivery(small_world_tables):
    d = small_world_tables["delivery"]
    sos = dl.delivery_progress(d, "sos-plus")
    t = sos.table.set_index("audience")
    assert (t["pct_sessions"] > 85).all() and (t["pct_sessions"] < 110).all()
    for pid in ("mace", "detached-youth-work", "capacity-building", "family-support"):
        r = dl.delivery_progress(d, pid)
        assert r.records > 0 and r.text()
        json.dumps(r.to_dict())
    matplotlib.pyplot.close("all")


def test_no_delivery_rows():
    r = dl.delivery_progress(_sos(), "family-support")
    assert r.records == 0 and r.table.empty and r.funnel is None
    assert "No delivery was recorded" in r.text()


def test_attendances_are_not_called_people_reached():
    """Funder's reading: attendances were reported as people "reached"; the text, table and chart data must say
    attendances, and say that the attendee aim counts people."""
    from evaluation.report import content

    r = dl.delivery_progress(_sos(), "sos-plus", asof="2019-06-30")
    text = r.text()
    assert "reached 250" not in text and "sessions reached" not in text
    assert "4 sessions recorded 250 attendances by pupils" in text
    assert "attendances equal to 3% of the aim of reaching 8,600 pupils" in text
    assert "not a count of different people" in text and "do not show how many different people" in text
    t = content.delivery_table(r)
    assert "Reached" not in " ".join(t.columns)
    assert {"Attendances", "Aim: people to reach", "Attendances as % of the aim"} <= set(t.columns)
    assert t.loc["Pupils", "Attendances"] == "250" and t.loc["Pupils", "Attendances as % of the aim"] == "3%"
    data = content.delivery_data(r)
    title, frame = data.tables[0]
    assert "attendances" in title.lower() and "Aim: people to reach" in frame.index


def test_capacity_building_says_what_each_number_counts():
    log = _log([("capacity-building", "2019-05-01", "training", "vcse_organisations", 1, 12, None, 4),
                ("capacity-building", "2019-06-01", "training", "vcse_organisations", 1, 8, None, 3)])
    text = dl.delivery_progress(log, "capacity-building", asof="2019-06-30").text()
    assert "2 sessions recorded 20 attendances by VCSE organisations' staff" in text
    assert "Counting organisations rather than their staff" in text and "7 organisation attendances" in text


def test_chart_target_lines_say_aim_in_people_and_target_in_sessions():
    """Issue 11 (funder read, SOS+): the attendances chart labelled its line "target 8,600", a count of people
    beside a series of attendances. The line says what it is and its unit, as the table does."""
    r = dl.delivery_progress(_sos(), "sos-plus", asof="2019-06-30")
    fig = r.plot()
    labels = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    assert "aim: reach 8,600 people" in labels and not any(t.startswith("target") for t in labels)
    fig = r.plot("sessions")
    labels = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    assert "target: 120 sessions" in labels


@pytest.mark.parametrize("pid", ["sos-plus", "capacity-building"])
def test_delivery_chart_dates_do_not_overlap_and_the_key_is_off_the_lines(small_world_tables, pid):
    """Funder read (SOS+ p8): the date labels (2019-05 ... 2022-01) overlapped in all three panels and the pupils'
    line ran through the key. Each panel now has at most 4 unrotated date labels, each with its year, none
    overlapping at the printed size, and the key sits below the panel."""
    from evaluation.report import content as rc
    from evaluation.report.alttext import fit_to_print

    rc.configure_figures()
    r = dl.delivery_progress(small_world_tables["delivery"], pid)
    fig = rc.delivery_figure(r)
    fit_to_print(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t, v in zip(ax.get_xticklabels(), ax.get_xticks()) if lo <= v <= hi and t.get_text()]
        assert 2 <= len(ticks) <= 4, [t.get_text() for t in ticks]
        assert all(t.get_rotation() == 0 for t in ticks)
        assert all(any(str(y) in t.get_text() for y in range(2015, 2031)) for t in ticks), [t.get_text() for t in ticks]
        boxes = sorted((t.get_window_extent(renderer) for t in ticks), key=lambda b: b.x0)
        assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), "date labels overlap"
        key = ax.get_legend().get_window_extent(renderer)
        assert key.y1 <= ax.get_window_extent(renderer).y0, "the key overlaps the panel"
    matplotlib.pyplot.close("all")
