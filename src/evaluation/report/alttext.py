"""Report figures that read in print and to a screen reader: alternative text from the data, print-size text,
a colour-blind-safe palette.

Every matplotlib figure a report notebook shows goes through :func:`figure_svg` (registered as IPython's SVG
formatter by :func:`install`, which :func:`evaluation.report.content.configure_figures` calls). It

* sizes the figure for the printed page: a figure wider than the A4 text width (:data:`PRINT_WIDTH_IN`) is
  narrowed to it, and any text that would print smaller than :data:`MIN_FONT_PT` is enlarged (the SVG is drawn at
  its natural size in the PDF, so points in the figure are points on paper);
* writes the alternative text beside the SVG, in the output's metadata (``{"image/svg+xml": {"alt": …}}``),
  where ``templates/body.html.j2`` reads it into the ``<img alt>`` of the HTML and, through WeasyPrint, the
  ``/Alt`` of the PDF's ``/Figure`` structure element.

The alternative text is either set by the code that draws the figure (:func:`set_alt`, for a description that
needs figures the chart does not hold, such as confidence intervals) or generated from what the figure plots
(:func:`describe_figure`): for each panel its title and axes, and for each labelled series, bar group or point set
the key numbers (first, last, highest, lowest) and the direction. It never says more than the chart shows.

Palette: Okabe & Ito (2008), distinguishable with the common colour-vision deficiencies, cycled together with
line styles so colour is never the only cue.
"""
from __future__ import annotations

import math
import re
from typing import Any

#: Okabe–Ito colours (blue, vermillion, bluish green, orange, reddish purple, sky blue, yellow, black).
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
#: Line styles cycled with the colours (a second cue besides colour).
LINE_STYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (6, 2))]
#: Text width of an A4 report page (210 mm less 2 × 17 mm margins), inches.
PRINT_WIDTH_IN = (210 - 34) / 25.4
#: Tallest figure on a printed page (templates/report.css caps images at 225 mm), inches.
PRINT_HEIGHT_IN = 225 / 25.4
#: Smallest text in a printed figure, points.
MIN_FONT_PT = 7.0

_ALT_ATTR = "_evaluation_alt"


def rc_params() -> dict:
    """matplotlib settings for report figures: the Okabe–Ito palette cycled with line styles."""
    from cycler import cycler

    return {"axes.prop_cycle": cycler(color=OKABE_ITO) + cycler(linestyle=LINE_STYLES)}


def set_alt(fig, text: str):
    """Attach alternative text to a figure (used instead of the generated description); returns ``fig``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    text : str
        What the figure shows, its key numbers and the direction, in plain sentences.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig`` (so a function can ``return set_alt(fig, ...)``).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig = set_alt(plt.figure(), "Bar chart of sessions delivered: 40 against a target of 50.")
    >>> figure_alt(fig)
    'Bar chart of sessions delivered: 40 against a target of 50.'
    """
    setattr(fig, _ALT_ATTR, " ".join(str(text).split()))
    return fig


def figure_alt(fig) -> str:
    """The figure's alternative text: the one set with :func:`set_alt`, else :func:`describe_figure`."""
    text = getattr(fig, _ALT_ATTR, None)
    if text:
        return text
    try:
        return describe_figure(fig)
    except Exception:  # noqa: BLE001 - a description must never sink a report; say what kind of chart it is
        titles = [_clean(t) for t in _titles(fig)]
        return "Chart" + (f": {'; '.join(t for t in titles if t)}." if any(titles) else ".") + \
            " The figures it shows are in the text and tables of this section."


# ------------------------------------------------------------------------------------------- describing
def _clean(text: Any) -> str:
    """Matplotlib text as plain words: mathtext dollars and backslashes dropped, whitespace collapsed."""
    t = str(text or "").replace("$", "").replace("\\", "")
    return " ".join(t.split())


def _titles(fig) -> list[str]:
    out = []
    if getattr(fig, "_suptitle", None) is not None:
        out.append(fig._suptitle.get_text())
    for ax in fig.axes:
        out += [ax.get_title(loc) for loc in ("left", "center", "right") if ax.get_title(loc)]
    return out


def _num(v: float, span: float | None = None) -> str:
    """A number for reading aloud: to about a thousandth of the axis ``span`` (else 3 significant figures),
    thousands separated, no trailing zeros, a true minus sign."""
    if v is None or not math.isfinite(v):
        return "not available"
    if v == 0:
        return "0"
    ref = abs(span) if span and math.isfinite(span) and span > 0 else abs(v)
    digits = min(6, max(0, 2 - int(math.floor(math.log10(ref)))))
    s = f"{v:,.{digits}f}"
    s = s.rstrip("0").rstrip(".") if "." in s else s
    return "0" if s in ("-0", "0") else s.replace("-", "−")


class _Axis:
    """How to read values on one axis: dates, percentages, categories (tick labels) or plain numbers."""

    def __init__(self, axis, label: str):
        import matplotlib.dates as mdates
        import matplotlib.ticker as mticker

        self.label = label
        fmt = axis.get_major_formatter()
        conv = axis.get_converter() if hasattr(axis, "get_converter") else getattr(axis, "converter", None)
        self.dates = isinstance(fmt, (mdates.DateFormatter, mdates.AutoDateFormatter, mdates.ConciseDateFormatter)) \
            or (conv is not None and "date" in type(conv).__name__.lower())
        self.percent = isinstance(fmt, mticker.PercentFormatter)
        self.percent_max = getattr(fmt, "xmax", 100) if self.percent else None
        # the axes' limits (get_xlim/get_ylim bring a lazy autoscale up to date; the axis's own interval may not)
        lo, hi = sorted(axis.axes.get_xlim() if axis.axis_name == "x" else axis.axes.get_ylim())
        if not self.percent and re.search(r"\b(proportion|share|rate)\b", label, re.I):
            self.percent = -0.06 <= lo and hi <= 1.06 and "%" not in label and "per " not in label
            self.percent_max = 1 if self.percent else None
        self.span = abs(hi - lo) * (100 / self.percent_max if self.percent else 1)
        self.categories = {}
        try:
            ticks = axis.get_ticklocs()
            labels = [t.get_text() for t in axis.get_ticklabels()]
            if labels and any(labels) and not all(_numeric(t) for t in labels if t):
                self.categories = {round(float(p), 6): _clean(t) for p, t in zip(ticks, labels) if t}
        except Exception:  # noqa: BLE001
            self.categories = {}

    def fmt(self, v: float) -> str:
        import matplotlib.dates as mdates

        if v is None or not math.isfinite(v):
            return "not available"
        if self.categories:
            key = round(float(v), 6)
            if key in self.categories:
                return self.categories[key]
        if self.dates:
            try:
                return f"{mdates.num2date(v):%B %Y}"
            except (ValueError, OverflowError):
                return _num(v, self.span)
        if self.percent:
            return f"{_num(100 * v / self.percent_max, self.span)}%"
        return _num(v, self.span)


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[\s−\-+0-9.,%£$]+", text.replace("\u2212", "-")))


def _direction(first: float, last: float, span: float) -> str:
    if not (math.isfinite(first) and math.isfinite(last)):
        return ""
    tol = 0.02 * span if span > 0 else 0.0
    if last > first + tol:
        return "rises"
    if last < first - tol:
        return "falls"
    return "stays about level"


def _series_sentence(name: str, x, y, xa: _Axis, ya: _Axis) -> str:
    import numpy as np

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(y) == 0:
        return ""
    if len(y) == 1:
        return f"{name}: {ya.fmt(y[0])} at {xa.fmt(x[0])}."
    if len(y) <= 6 and (xa.categories or ya.categories):
        return f"{name}: " + "; ".join(f"{xa.fmt(a)} {ya.fmt(b)}" for a, b in zip(x, y)) + "."
    span = float(np.nanmax(y) - np.nanmin(y))
    hi, lo = int(np.argmax(y)), int(np.argmin(y))
    s = (f"{name} {_direction(y[0], y[-1], span)}, from {ya.fmt(y[0])} at {xa.fmt(x[0])} to {ya.fmt(y[-1])} at "
         f"{xa.fmt(x[-1])}")
    extra = []
    ends = {ya.fmt(y[0]), ya.fmt(y[-1])}
    if ya.fmt(y[hi]) not in ends:
        extra.append(f"highest {ya.fmt(y[hi])} at {xa.fmt(x[hi])}")
    if ya.fmt(y[lo]) not in ends:
        extra.append(f"lowest {ya.fmt(y[lo])} at {xa.fmt(x[lo])}")
    return s + (f" ({'; '.join(extra)})" if extra else "") + "."


def _floats(values):
    """Plotted values as floats (dates as matplotlib date numbers)."""
    import matplotlib.dates as mdates
    import numpy as np

    a = np.asarray(values)
    if a.dtype.kind == "M" or (a.dtype == object and len(a) and hasattr(a.flat[0], "toordinal")):
        return np.asarray(mdates.date2num(a), dtype=float)
    try:
        return np.asarray(a, dtype=float)
    except (TypeError, ValueError):
        return np.full(a.shape, np.nan)


def _label(artist) -> str:
    lab = _clean(artist.get_label())
    return "" if not lab or lab.startswith("_") else lab


def _describe_axes(ax) -> list[str]:
    """Sentences about one panel."""
    import numpy as np
    from matplotlib.collections import PathCollection
    from matplotlib.container import BarContainer, ErrorbarContainer

    xa = _Axis(ax.xaxis, _clean(ax.get_xlabel()))
    ya = _Axis(ax.yaxis, _clean(ax.get_ylabel()))
    out = []
    title = " ".join(_clean(ax.get_title(loc)) for loc in ("left", "center", "right") if ax.get_title(loc))
    axes_words = []
    if xa.label:
        axes_words.append(f"horizontal axis: {xa.label}")
    if ya.label:
        axes_words.append(f"vertical axis: {ya.label}")
    if title or axes_words:
        out.append((f"{title}" if title else "Panel") + (f" ({'; '.join(axes_words)})" if axes_words else "") + ".")
    in_containers = set()
    for c in ax.containers:
        if isinstance(c, BarContainer):
            bars = [p for p in c.patches if p.get_visible()]
            in_containers.update(id(p) for p in c.patches)
            if not bars:
                continue
            horizontal = getattr(c, "orientation", None) == "horizontal"
            items = []
            for p in bars[:12]:
                if horizontal:
                    pos, val = p.get_y() + p.get_height() / 2, p.get_x() + p.get_width()
                    items.append(f"{ya.fmt(pos)} {xa.fmt(val)}")
                else:
                    pos, val = p.get_x() + p.get_width() / 2, p.get_y() + p.get_height()
                    items.append(f"{xa.fmt(pos)} {ya.fmt(val)}")
            name = _label(c) or "Bars"
            more = f" and {len(bars) - 12} more" if len(bars) > 12 else ""
            out.append(f"{name}: {'; '.join(items)}{more}.")
        elif isinstance(c, ErrorbarContainer):
            line, caps, bars = c.lines
            in_containers.add(id(line))
            if line is None:
                continue
            xs, ys = _floats(line.get_xdata(orig=False)), _floats(line.get_ydata(orig=False))
            xerr = c.has_xerr
            items = []
            for i, (x, y) in enumerate(zip(np.atleast_1d(xs), np.atleast_1d(ys))):
                rng = ""
                try:
                    seg = bars[0].get_segments()[i]
                    lo, hi = (seg[0][0], seg[1][0]) if xerr else (seg[0][1], seg[1][1])
                    a = xa if xerr else ya
                    rng = f" (from {a.fmt(min(lo, hi))} to {a.fmt(max(lo, hi))})"
                except Exception:  # noqa: BLE001
                    pass
                items.append(f"{ya.fmt(y)}: {xa.fmt(x)}{rng}" if xerr else f"{xa.fmt(x)}: {ya.fmt(y)}{rng}")
            if items:
                out.append(f"{_label(c) or 'Estimates with intervals'}: {'; '.join(items[:15])}.")
    for line in ax.get_lines():
        if id(line) in in_containers or not line.get_visible():
            continue
        name = _label(line)
        x, y = _floats(line.get_xdata(orig=False)), _floats(line.get_ydata(orig=False))
        if not name:
            # unlabelled reference lines (a zero line, a threshold) are described only when flat and alone
            continue
        if len(x) == 2 and x[0] == x[1] or (len(y) == 2 and y[0] == y[1] and ax.get_xlim()[0] in (x[0],)):
            out.append(f"{name}: a reference line at {xa.fmt(x[0]) if x[0] == x[1] else ya.fmt(y[0])}.")
            continue
        if len(y) == 2 and y[0] == y[1] and np.allclose(x, [0, 1]):  # axhline in axes coordinates
            out.append(f"{name}: a reference line at {ya.fmt(y[0])}.")
            continue
        out.append(_series_sentence(name[:1].upper() + name[1:], x, y, xa, ya))
    for coll in ax.collections:
        if not isinstance(coll, PathCollection) or not coll.get_visible():
            continue
        offs = np.asarray(coll.get_offsets(), dtype=float)
        if offs.ndim != 2 or not len(offs):
            continue
        name = _label(coll) or "Points"
        if ya.categories and len(offs) <= 15:
            out.append(f"{name}: " + "; ".join(f"{ya.fmt(y)} {xa.fmt(x)}" for x, y in offs) + ".")
        elif xa.categories and len(offs) <= 15:
            out.append(f"{name}: " + "; ".join(f"{xa.fmt(x)} {ya.fmt(y)}" for x, y in offs) + ".")
        else:
            out.append(f"{name}: {len(offs)} points, {ya.label or 'values'} from {ya.fmt(np.nanmin(offs[:, 1]))} "
                       f"to {ya.fmt(np.nanmax(offs[:, 1]))}.")
    texts = [_clean(t.get_text()) for t in ax.texts if t.get_visible() and _clean(t.get_text())]
    if texts and len(texts) <= 40:
        out.append("Labels in the panel: " + "; ".join(texts) + ".")
    return out


def describe_figure(fig) -> str:
    """Alternative text for a figure, generated from what it plots.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A drawn figure.

    Returns
    -------
    str
        Plain sentences: the kind of chart and its number of panels, then for each panel its title and axes and,
        for each labelled line, bar group, interval plot or point set, its key values (first and last, highest
        and lowest) and its direction (rises, falls, stays about level). Values are read on the axis's own
        scale (dates as month and year, proportions as percentages, categories by their tick labels).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([0, 1, 2], [10, 12, 15], label="delivered"); _ = ax.set_title("Sessions")
    >>> describe_figure(fig)
    'Chart. Sessions. Delivered rises, from 10 at 0 to 15 at 2.'
    """
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.has_data() or (ax.get_visible() and ax.texts)]
    head = "Chart" if len(axes) <= 1 else f"Chart in {len(axes)} panels"
    parts = [head + "."]
    if getattr(fig, "_suptitle", None) is not None and _clean(fig._suptitle.get_text()):
        parts.append(_clean(fig._suptitle.get_text()) + ".")
    for ax in axes:
        parts += [s for s in _describe_axes(ax) if s]
    return " ".join(parts)


# ------------------------------------------------------------------------------------------- print size
def fit_to_print(fig, *, width_in: float = PRINT_WIDTH_IN, min_pt: float = MIN_FONT_PT) -> None:
    """Narrow a figure to the printed text width (keeping its aspect) and enlarge any text under ``min_pt``.

    A figure drawn wider than the page is scaled down in print, and its text with it (a 10-inch figure's 8 pt
    labels print at 5.5 pt); drawn at the printed width, its points are points on paper.
    """
    w, h = fig.get_size_inches()
    if w > width_in + 1e-6:
        fig.set_size_inches(width_in, h * width_in / w)
    w, h = fig.get_size_inches()
    if h > PRINT_HEIGHT_IN:
        fig.set_size_inches(w * PRINT_HEIGHT_IN / h, PRINT_HEIGHT_IN)
    _enlarge_text(fig, min_pt)
    engine = fig.get_layout_engine() if hasattr(fig, "get_layout_engine") else None
    if engine is None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fig.tight_layout()
            except Exception:  # noqa: BLE001 - layout is cosmetic
                pass


def _enlarge_text(fig, min_pt: float) -> bool:
    """Raise every text below ``min_pt`` to it; True when anything changed."""
    from matplotlib.text import Text

    changed = False
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text() and t.get_fontsize() < min_pt - 1e-6:
            t.set_fontsize(min_pt)
            changed = True
    for ax in fig.axes:  # tick labels not yet created are set through the axis
        for axis in (ax.xaxis, ax.yaxis):
            for which in ("major", "minor"):
                kw = axis._major_tick_kw if which == "major" else axis._minor_tick_kw
                size = kw.get("labelsize")
                if size is not None and _pt(size) < min_pt - 1e-6:
                    axis.set_tick_params(which=which, labelsize=min_pt)
                    changed = True
        leg = ax.get_legend()
        if leg is not None:
            for t in leg.get_texts():
                if t.get_fontsize() < min_pt - 1e-6:
                    t.set_fontsize(min_pt)
                    changed = True
    return changed


def _pt(size) -> float:
    from matplotlib.font_manager import FontProperties

    return FontProperties(size=size).get_size_in_points()


def _svg_size_pt(svg: str) -> tuple[float, float]:
    m = re.search(r'<svg[^>]*\swidth="([\d.]+)pt"[^>]*\sheight="([\d.]+)pt"', svg)
    return (float(m.group(1)), float(m.group(2))) if m else (0.0, 0.0)


def figure_svg(fig, **savefig) -> tuple[str, dict]:
    """IPython's SVG formatter for report figures: ``(svg, {"alt": text})`` with the figure sized for print.

    The SVG keeps its text as text (``svg.fonttype: none``) and carries no date (byte-identical rebuilds). After
    ``bbox_inches="tight"`` the saved SVG can still be wider than the page (labels beyond the axes); then the
    text is enlarged once more by the factor the page will shrink it.
    """
    import io

    if not fig.axes:
        return None
    alt = figure_alt(fig)  # before resizing: the description reads the data, not the layout
    fit_to_print(fig)
    kw = {"format": "svg", "bbox_inches": "tight", "metadata": {"Date": None}}
    kw.update(savefig)
    svg = ""
    for _ in range(3):
        buf = io.StringIO()
        fig.canvas.print_figure(buf, **kw)
        svg = buf.getvalue()
        w, h = _svg_size_pt(svg)
        scale = min(1.0, PRINT_WIDTH_IN * 72 / w if w else 1.0, PRINT_HEIGHT_IN * 72 / h if h else 1.0)
        if scale >= 0.999 or not _enlarge_text(fig, MIN_FONT_PT / scale):
            break
    return svg, {"alt": alt}


def install() -> None:
    """Make report figures SVG with alt text and print-size text (the IPython display formatter), and set the
    palette. Does nothing outside IPython except the palette."""
    import matplotlib as mpl

    mpl.rcParams.update(rc_params())
    try:
        from IPython import get_ipython
        from matplotlib.figure import Figure
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover
        return
    ip = get_ipython()
    if ip is None:
        return
    set_matplotlib_formats("svg", metadata={"Date": None})  # no PNG copy beside the SVG
    ip.display_formatter.formatters["image/svg+xml"].for_type(Figure, figure_svg)


# ------------------------------------------------------------------------------------------- survival chart
def _pct(v) -> str:
    return f"{100 * v:.0f}%"


def _curves_relation(fig, first: str, second: str) -> str:
    """How two plotted step curves compare over the follow-up: one below the other, close, or crossing."""
    import numpy as np

    if not fig.axes:
        return ""
    lines = {(_label(ln) or "").lower(): ln for ln in fig.axes[0].get_lines()}
    a, b = lines.get(first.lower()), lines.get(second.lower())
    if a is None or b is None:
        return ""
    xa, ya = _floats(a.get_xdata(orig=False)), _floats(a.get_ydata(orig=False))
    xb, yb = _floats(b.get_xdata(orig=False)), _floats(b.get_ydata(orig=False))
    grid = np.linspace(0, min(xa.max(), xb.max()), 366)[1:]
    step = lambda x, y: y[np.clip(np.searchsorted(x, grid, side="right") - 1, 0, len(y) - 1)]  # noqa: E731
    d = step(xa, ya) - step(xb, yb)
    if np.all(np.abs(d) < 0.02):
        return "The two curves stay within 2 percentage points of each other throughout."
    sign = np.sign(np.where(np.abs(d) < 0.005, 0, d))
    nz = sign[sign != 0]
    crossings = int(np.sum(nz[1:] != nz[:-1])) if len(nz) > 1 else 0
    below, above = float(np.mean(sign < 0)), float(np.mean(sign > 0))
    if crossings == 0:
        return (f"Where the curves differ, the {first.lower()} curve is {'below' if nz[0] < 0 else 'above'} the "
                f"{second.lower()} curve.")
    most, share = ("below", below) if below >= above else ("above", above)
    return (f"The curves cross{' ' + str(crossings) + ' times' if crossings > 1 else ''}; the {first.lower()} curve "
            f"is {most} the {second.lower()} curve for {share:.0%} of the follow-up.")


def survival_alt(fig, register, *, offence: str = "reoffended") -> str:
    """Alternative text for the time-to-reoffence chart from the published register (with the plotted curves
    for their direction): the proportions by the end of follow-up with 95% CIs, and how the curves compare.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The chart (its first axes hold one labelled step line per group).
    register : evaluation.register.Register
        The report's register (``survival.reoffended_by_<tau>.participants`` / ``.comparison``).
    offence : str
        The event in words ("reoffended", or "offended (first or repeat)").

    Returns
    -------
    str
        E.g. "Chart of the proportion of each group proven to have reoffended by each day after the start, with
        95% confidence bands. By day 365: participants 28% (95% CI 22% to 33%), comparison 29% (25% to 33%). The
        curves cross; …". Falls back to :func:`describe_figure` when the register has no such figures.
    """
    figs = {f.id: f for f in register.section("survival")} if register is not None else {}
    part = next((f for i, f in figs.items() if i.startswith("survival.reoffended_by_") and i.endswith(".participants")
                 and f.status in ("shown", "rounded") and f.value is not None), None)
    comp = next((f for i, f in figs.items() if i.startswith("survival.reoffended_by_") and i.endswith(".comparison")
                 and f.status in ("shown", "rounded") and f.value is not None), None)
    if part is None or comp is None:
        return describe_figure(fig)
    day = part.id.split("survival.reoffended_by_")[1].split(".")[0]

    def ci(f):
        return f" (95% CI {_pct(f.lower)} to {_pct(f.upper)})" if f.lower is not None and f.upper is not None else ""

    labels = [_label(ln) for ln in fig.axes[0].get_lines() if _label(ln)] if fig.axes else []
    pl = next((lab for lab in labels if lab.lower().startswith("particip")), "Participants")
    cl = next((lab for lab in labels if lab.lower().startswith("compar")), "Comparison")
    return " ".join(s for s in (
        f"Chart of the proportion of each group proven to have {offence} by each day after the start, up to day "
        f"{day}, with 95% confidence bands.",
        f"By day {day}: participants {_pct(part.value)}{ci(part)}, comparison {_pct(comp.value)}{ci(comp)}.",
        _curves_relation(fig, pl, cl)) if s)
