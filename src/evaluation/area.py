"""Area-level evaluation (Project ADDER): interrupted time series and difference-in-differences.

Data: the ``area_monthly`` table (``area``, ``month`` = first day of the month, ``measure``, ``value``) of
``data/README.md``; the programme config ``programmes/project-adder.yaml`` names the treated area
(``area.treated``), the comparison areas (``area.comparison``), the measures and the intervention month
(``start``).

Conventions
-----------
* Time is counted in **calendar months**; ``t`` is months since the first month of the series and
  ``months_since`` is months since the intervention month (0 in the intervention month, 0 before it).
* Scale of every estimate is stated in the result's ``scale``:

  - ``"log"``: natural log of the monthly count (or rate). A level change ``b`` is a log ratio: the series
    jumped by ``exp(b) - 1`` (e.g. ``0.14 -> +15%``); a slope change is the change in the monthly growth
    rate (log points per month; ``0.003 -> +0.3% a month``).
  - ``"rate"``: monthly count per 100,000 population (the ``population`` measure). Level change is in
    rate units (per 100,000 per month); slope change in rate units per month.
  - ``"count"``: the raw monthly count.

  ``scale="auto"`` takes ``"log"`` of the rate per 100,000 when every value is positive, else ``"rate"``
  (a log of zero is undefined; small series such as drug deaths have zero months).
* Confidence intervals are 95% (``alpha=0.05``) unless stated.

Inference
---------
*Interrupted time series*: segmented OLS (level, trend, level change, slope change, calendar-month dummies
for seasonality) with Newey–West (HAC, Bartlett kernel) standard errors, ``statsmodels`` ``cov_type="HAC"``.
The autocorrelation left in the residuals is reported (Durbin–Watson, Ljung–Box, Breusch–Godfrey) so a
reader can judge whether HAC errors are needed.

*Difference-in-differences*: see :func:`difference_in_differences` for why the inference is HAC on the
treated-minus-comparison series (plus a placebo-in-space check), not cluster-robust.

Both analyses estimate the change in an **area** series: it cannot be attributed to one service, since many
things (other services, policing, national trends) act on the same area at once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.diagnostic import acorr_breusch_godfrey, acorr_ljungbox
from statsmodels.stats.stattools import durbin_watson

from evaluation.errors import EvaluationError
from evaluation.wording import p_value as _pv, signed


def _p(p: float) -> str:
    """``'p = 0.39'`` or ``'p < 0.01'`` (never ``'p = <0.01'``)."""
    text = _pv(p)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"

MIN_PRE_MONTHS = 24
MIN_POST_MONTHS = 3
SCALES = ("auto", "log", "rate", "count")
#: the unit of a difference on the ``rate`` and ``count`` scales (log differences are ratios: see the docstring)
SCALE_UNITS = {"rate": "per 100,000 a month", "count": "a month"}
AREA_CAVEAT = (
    "These are changes in whole-area figures: many services, policing and national trends act on an area at "
    "the same time, so a change cannot be attributed to one service."
)
MEASURE_LABELS = {
    "drug_offences": "drug-related offences", "drug_deaths": "drug-related deaths",
    "treatment_starts": "treatment starts", "treatment_completions": "treatment completions",
    "arrests": "drug-related arrests", "seizures": "drug seizures",
}


class AreaDataError(EvaluationError):
    """Area series unusable for the analysis; the message names the argument, area, measure and months."""


# ----------------------------------------------------------------------------------------------- helpers
def _month(x, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(x)
    except (ValueError, TypeError):
        raise AreaDataError(f"{name}: {x!r} is not a date") from None
    if ts.day != 1:
        raise AreaDataError(f"{name}: {ts.date()} is not the first day of a month")
    return ts


def _fmt_months(months: Iterable[pd.Timestamp], limit: int = 12) -> str:
    months = list(months)
    text = ", ".join(m.strftime("%Y-%m") for m in months[:limit])
    return text + (f" and {len(months) - limit} more" if len(months) > limit else "")


def check_monthly(series: pd.Series, name: str = "series") -> pd.Series:
    """Check a monthly series (index = first days of months): sorted, no duplicates, no gaps, no missing values.

    Returns the series sorted by month with a ``DatetimeIndex``. Raises :class:`AreaDataError` naming the
    missing months, duplicated months or months with missing values.
    """
    if not isinstance(series, pd.Series):
        raise AreaDataError(f"{name}: expected a pandas Series indexed by month, got {type(series).__name__}")
    if series.empty:
        raise AreaDataError(f"{name}: the series is empty")
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(series.index))
    except (ValueError, TypeError):
        raise AreaDataError(f"{name}: the index must hold months (dates), got {series.index[:3].tolist()}") from None
    s = pd.Series(pd.to_numeric(series.to_numpy(), errors="coerce"), index=idx, name=series.name).sort_index()
    not_first = s.index[s.index.day != 1]
    if len(not_first):
        raise AreaDataError(f"{name}: months must be the first day of the month; found {_fmt_months(not_first)}")
    dup = s.index[s.index.duplicated()].unique()
    if len(dup):
        raise AreaDataError(f"{name}: duplicated months {_fmt_months(dup)}")
    full = pd.date_range(s.index[0], s.index[-1], freq="MS")
    missing = full.difference(s.index)
    if len(missing):
        raise AreaDataError(
            f"{name}: the series has gaps: {len(missing)} missing month(s) {_fmt_months(missing)} between "
            f"{s.index[0]:%Y-%m} and {s.index[-1]:%Y-%m}; fill them (with 0 if nothing happened) or shorten the series"
        )
    nan = s.index[s.isna().to_numpy()]
    if len(nan):
        raise AreaDataError(f"{name}: missing or non-numeric values in month(s) {_fmt_months(nan)}")
    s.index.name = "month"
    return s


def area_series(area_monthly: pd.DataFrame, area: str, measure: str, *, per: float | None = 100_000) -> pd.Series:
    """One area's monthly series of ``measure`` from the long ``area_monthly`` table.

    ``per=100_000`` divides by the area's ``population`` measure (monthly count per 100,000 people);
    ``per=None`` returns the raw counts. Errors name the missing area, measure or months.
    """
    _check_columns(area_monthly, ("area", "month", "measure", "value"), "area_monthly")
    sub = area_monthly[area_monthly["area"] == area]
    if sub.empty:
        raise AreaDataError(f"area_monthly: area '{area}' is not in the table (areas: "
                            f"{', '.join(sorted(map(str, area_monthly['area'].unique())))})")
    values = sub[sub["measure"] == measure]
    if values.empty:
        raise AreaDataError(f"area_monthly: measure '{measure}' has no rows for area '{area}'")
    s = check_monthly(pd.Series(values["value"].to_numpy(dtype=float), index=pd.to_datetime(values["month"]),
                                name=measure), f"area_monthly[{area}, {measure}]")
    if per is None:
        return s
    pop = sub[sub["measure"] == "population"]
    if pop.empty:
        raise AreaDataError(f"area_monthly: no 'population' rows for area '{area}' (needed for a rate per {per:,.0f});"
                            " pass per=None for counts")
    p = pd.Series(pop["value"].to_numpy(dtype=float), index=pd.to_datetime(pop["month"])).sort_index()
    p = p.reindex(s.index)
    if p.isna().any() or (p <= 0).any():
        bad = s.index[(p.isna() | (p <= 0)).to_numpy()]
        raise AreaDataError(f"area_monthly: population missing or zero for area '{area}' in {_fmt_months(bad)}")
    return (s / p * per).rename(measure)


def _check_columns(df, cols, name):
    if not isinstance(df, pd.DataFrame):
        raise AreaDataError(f"{name}: expected a DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise AreaDataError(f"{name}: missing column(s) {', '.join(missing)} (have {', '.join(map(str, df.columns))})")


def _resolve_scale(scale: str, values: np.ndarray, per_rate: bool) -> str:
    if scale not in SCALES:
        raise AreaDataError(f"scale: '{scale}' is not one of {', '.join(SCALES)}")
    if scale == "auto":
        return "log" if np.all(values > 0) else ("rate" if per_rate else "count")
    if scale == "log" and np.any(values <= 0):
        raise AreaDataError("scale='log' needs every value > 0 (a log of zero is undefined); "
                            "use scale='rate' or 'count'")
    return scale


def _transform(values: np.ndarray, scale: str) -> np.ndarray:
    return np.log(values) if scale == "log" else values


def _untransform(values, scale: str):
    return np.exp(values) if scale == "log" else values


def newey_west_lags(n: int) -> int:
    """Newey–West (1994) rule-of-thumb lag length ``floor(4 (n/100)^(2/9))`` (n = number of months)."""
    return int(math.floor(4 * (n / 100.0) ** (2.0 / 9.0)))


def _split_check(index: pd.DatetimeIndex, intervention: pd.Timestamp, min_pre: int, name: str) -> tuple[int, int]:
    if intervention <= index[0] or intervention > index[-1]:
        raise AreaDataError(
            f"intervention: {intervention:%Y-%m} is outside the {name} ({index[0]:%Y-%m} to {index[-1]:%Y-%m}); "
            "it must fall after the first month and within the series")
    n_pre = int((index < intervention).sum())
    n_post = int((index >= intervention).sum())
    if n_pre < min_pre:
        raise AreaDataError(
            f"{name}: only {n_pre} month(s) before the intervention ({intervention:%Y-%m}); at least {min_pre} are "
            "needed to estimate the pre-intervention trend and seasonality (min_pre)")
    if n_post < MIN_POST_MONTHS:
        raise AreaDataError(f"{name}: only {n_post} month(s) from the intervention ({intervention:%Y-%m}); at least "
                            f"{MIN_POST_MONTHS} are needed")
    return n_pre, n_post


def _shock_columns(index: pd.DatetimeIndex, shocks) -> dict[str, np.ndarray]:
    cols = {}
    for i, shock in enumerate(shocks or ()):
        a, b = (shock, shock) if not isinstance(shock, (tuple, list)) else shock
        a, b = _month(a, f"shocks[{i}]"), _month(b, f"shocks[{i}]")
        cols[f"shock_{a:%Y%m}_{b:%Y%m}"] = ((index >= a) & (index <= b)).astype(float)
    return cols


def its_design(index: pd.DatetimeIndex, intervention, *, seasonality: str | None = "month",
               shocks: Sequence | None = None) -> pd.DataFrame:
    """The segmented-regression design matrix used by :func:`interrupted_time_series`.

    Columns: ``const``; ``t`` (months since the first month); ``post`` (1 from the intervention month);
    ``months_since`` (months since the intervention, 0 before); seasonality: ``"month"`` adds 11 calendar-month
    dummies ``m2``..``m12`` (January is the reference), ``"fourier"`` adds ``sin1, cos1, sin2, cos2`` (annual and
    half-yearly harmonics), ``None`` adds nothing; one 0/1 column per ``shocks`` entry (a month or a
    ``(first, last)`` range, e.g. the spring-2020 lockdown).
    """
    index = pd.DatetimeIndex(index)
    t0 = _month(intervention, "intervention")
    t = (index.year - index[0].year) * 12 + (index.month - index[0].month)
    since = (index.year - t0.year) * 12 + (index.month - t0.month)
    post = (index >= t0).astype(float)
    X = pd.DataFrame({"const": 1.0, "t": t.astype(float), "post": post,
                      "months_since": np.where(post > 0, since, 0).astype(float)}, index=index)
    moy = index.month.to_numpy()
    if seasonality == "month":
        for m in range(2, 13):
            X[f"m{m}"] = (moy == m).astype(float)
    elif seasonality == "fourier":
        for k in (1, 2):
            X[f"sin{k}"] = np.sin(2 * np.pi * k * moy / 12)
            X[f"cos{k}"] = np.cos(2 * np.pi * k * moy / 12)
    elif seasonality is not None:
        raise AreaDataError(f"seasonality: '{seasonality}' is not one of 'month', 'fourier', None")
    for name, col in _shock_columns(index, shocks).items():
        X[name] = col
    # drop columns constant at zero (a calendar month absent from a short series)
    keep = [c for c in X.columns if c == "const" or X[c].abs().sum() > 0]
    return X[keep]


def _ci(est, se, alpha, df=None):
    z = stats.norm.ppf(1 - alpha / 2) if df is None else stats.t.ppf(1 - alpha / 2, df)
    return est - z * se, est + z * se


def _pcts(values, decimals: int = 0) -> list[str]:
    """Signed percentages with enough decimals (up to 3) that no CI bound (values[1:]) reads as a signless 0:
    "−1.1% to 0.0%" cannot say whether the interval excludes no change."""
    d = decimals
    while d < 3 and any(v != 0 and round(abs(v), d) == 0 for v in values[1:]):
        d += 1
    return [signed(v, f"+.{d}f") for v in values]


def _change_text(est: float, lo: float, hi: float, scale: str, what: str) -> str:
    if scale == "log":
        pct = _pcts([100 * (math.exp(v) - 1) for v in (est, lo, hi)])
        return f"{what} {pct[0]}% (95% CI {pct[1]}% to {pct[2]}%)"
    unit = SCALE_UNITS["rate" if scale == "rate" else "count"]
    return f"{what} {signed(est, '+.2f')} {unit} (95% CI {signed(lo, '+.2f')} to {signed(hi, '+.2f')})"


# -------------------------------------------------------------------------------- interrupted time series
@dataclass
class ITSResult:
    """Interrupted time series fit. Estimates on ``scale`` (see module docstring); 95% CIs from HAC errors."""

    measure: str
    area: str | None
    intervention: pd.Timestamp
    scale: str
    level_change: float
    level_ci: tuple[float, float]
    level_p: float
    slope_change: float
    slope_ci: tuple[float, float]
    slope_p: float
    pre_slope: float
    n_pre: int
    n_post: int
    hac_lags: int
    seasonality: str | None
    autocorrelation: dict[str, float]
    frame: pd.DataFrame = field(repr=False)  # month, observed, fitted, counterfactual (original scale)
    fit: Any = field(repr=False)  # statsmodels results (HAC)
    alpha: float = 0.05
    per_rate: bool = True  # the series is a rate per 100,000 (labels)
    end: pd.Timestamp | None = None  # last month in the estimate (the end of the pilot); None: the whole series
    later: pd.Series | None = field(default=None, repr=False)  # months after ``end`` (shown, not estimated)
    counts: pd.Series | None = field(default=None, repr=False)  # raw monthly counts (disclosure of chart points)

    @property
    def level_ratio(self) -> tuple[float, float, float] | None:
        """On the log scale: (ratio, lower, upper) of the level change; else None."""
        if self.scale != "log":
            return None
        return (math.exp(self.level_change), math.exp(self.level_ci[0]), math.exp(self.level_ci[1]))

    def effect_at(self, months_after: int) -> tuple[float, float, float]:
        """Level + slope change ``months_after`` months after the intervention month (scale units, 95% CI)."""
        c = np.zeros(len(self.fit.params))
        names = list(self.fit.model.exog_names)
        c[names.index("post")] = 1.0
        c[names.index("months_since")] = months_after
        est = float(c @ self.fit.params)
        se = float(np.sqrt(c @ self.fit.cov_params() @ c))
        lo, hi = _ci(est, se, self.alpha)
        return est, lo, hi

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": "interrupted_time_series", "measure": self.measure, "area": self.area,
            "intervention": self.intervention.date().isoformat(), "scale": self.scale,
            "level_change": self.level_change, "level_ci": list(self.level_ci), "level_p": self.level_p,
            "slope_change": self.slope_change, "slope_ci": list(self.slope_ci), "slope_p": self.slope_p,
            "pre_slope": self.pre_slope, "n_pre": self.n_pre, "n_post": self.n_post, "hac_lags": self.hac_lags,
            "seasonality": self.seasonality, "autocorrelation": dict(self.autocorrelation),
            "series_unit": "per 100,000 residents per month" if self.per_rate else "count per month",
            "se_type": f"HAC (Newey-West, Bartlett kernel, {self.hac_lags} lags)",
        }

    def summary(self) -> pd.DataFrame:
        rows = [("level change", self.level_change, *self.level_ci, self.level_p),
                ("slope change (per month)", self.slope_change, *self.slope_ci, self.slope_p)]
        df = pd.DataFrame(rows, columns=["term", "estimate", "lower", "upper", "p"])
        df.insert(1, "scale", self.scale)
        if self.scale == "log":
            df["ratio"] = np.exp(df["estimate"])
            df["ratio_lower"] = np.exp(df["lower"])
            df["ratio_upper"] = np.exp(df["upper"])
        return df

    def text(self) -> str:
        """One or two plain-English sentences for a funder."""
        label = MEASURE_LABELS.get(self.measure, self.measure.replace("_", " "))
        where = f" in {self.area}" if self.area else ""
        sig = self.level_p <= self.alpha
        lvl = _change_text(self.level_change, *self.level_ci, self.scale, "a change of")
        when = (f"From {self.intervention:%B %Y} to {self.end:%B %Y} (the pilot)" if self.end is not None
                else f"After {self.intervention:%B %Y}")
        first = (f"{when}, monthly {label}{where} "
                 + (f"changed beyond the earlier trend and seasonal pattern: {lvl}; {_p(self.level_p)}." if sig
                    else f"showed no reliable change beyond the earlier trend and seasonal pattern ({lvl}; "
                         f"{_p(self.level_p)})."))
        if self.scale == "log":
            pct = _pcts([100 * (math.exp(v) - 1) for v in (self.slope_change, *self.slope_ci)], 1)
            slo = f"{pct[0]}% a month (95% CI {pct[1]}% to {pct[2]}%)"
        else:
            slo = (f"{signed(self.slope_change, '+.3f')} a month (95% CI {signed(self.slope_ci[0], '+.3f')} to "
                   f"{signed(self.slope_ci[1], '+.3f')})")
        second = (f" During that period the month-on-month trend "
                  f"{'changed' if self.slope_p <= self.alpha else 'did not change reliably'}: "
                  f"{slo}; {_p(self.slope_p)}. {AREA_CAVEAT}")
        return first + second

    def chart_data(self, threshold: int = 5) -> pd.DataFrame:
        """The observed points a chart or table may publish, aggregated so no count from 1 to ``threshold - 1`` shows.

        A rate per 100,000 gives its count away (population is public: one drug death in Greater Norwich is
        0.24 per 100,000), so the points are aggregated to the finest of months, quarters or years at which every
        period's count is 0 or at least ``threshold`` (primary suppression, :mod:`evaluation.disclosure`). The
        value is the average monthly figure over the period (same units as the monthly series), rounded to 2 dp.
        Without ``counts`` (a series passed in without them) the months are shown as they are.

        Parameters
        ----------
        threshold : int
            Counts from 1 to ``threshold - 1`` may not be readable from the published points (default 5).

        Returns
        -------
        DataFrame
            ``period_start`` (first month), ``period`` (label), ``months``, ``value`` (average monthly value,
            series units), ``in_estimate`` (False for months after ``end``), ``aggregation`` (``"month"``,
            ``"quarter"`` or ``"year"``).

        Raises
        ------
        AreaDataError
            If even yearly counts include a value from 1 to ``threshold - 1`` (nothing is published then).

        Examples
        --------
        >>> pts = result.chart_data(threshold=5)  # doctest: +SKIP
        >>> pts["aggregation"].iloc[0]  # doctest: +SKIP
        'quarter'
        """
        obs = self.frame["observed"]
        if self.later is not None and len(self.later):
            obs = pd.concat([obs, self.later])
        counts = None if self.counts is None else self.counts.reindex(obs.index).fillna(0)
        last = self.end if self.end is not None else obs.index[-1]
        for freq, label in (("M", "month"), ("Q", "quarter"), ("Y", "year")):
            key = obs.index.to_period(freq)
            if counts is not None:
                total = counts.groupby(key).sum()
                if ((total > 0) & (total < threshold)).any():
                    continue
            g = obs.groupby(key)
            out = pd.DataFrame({"period_start": [grp.index[0] for _, grp in g], "months": g.size().to_numpy(),
                                "value": g.mean().round(2).to_numpy()})
            out["period"] = [f"{k.year} Q{k.quarter}" if label == "quarter" else str(k) for k in g.size().index]
            out["in_estimate"] = out["period_start"] <= last
            out["aggregation"] = label
            return out[["period_start", "period", "months", "value", "in_estimate", "aggregation"]]
        raise AreaDataError(f"series '{self.measure}': yearly counts still include values from 1 to {threshold - 1}; "
                            "the observed series cannot be published")

    def later_text(self) -> str | None:
        """One sentence on the months after ``end`` (after the pilot): shown, not estimated; None if there are none."""
        if self.later is None or not len(self.later):
            return None
        label = MEASURE_LABELS.get(self.measure, self.measure.replace("_", " "))
        unit = "per 100,000 residents a month" if self.per_rate else "a month"
        post = self.frame["observed"][self.frame.index >= self.intervention]
        return (f"After the pilot ended ({self.later.index[0]:%B %Y} to {self.later.index[-1]:%B %Y}) monthly {label} "
                f"averaged {self.later.mean():.2f} {unit}, against {post.mean():.2f} during the pilot; these months "
                "are shown in the chart but are not part of the estimates.")

    def plot(self, ax=None, threshold: int = 5):
        """Observed (disclosure-safe, :meth:`chart_data`), fitted and counterfactual series on the original scale.

        Months after ``end`` (after the pilot) are drawn as open grey points and are not part of the fit.
        """
        import matplotlib.pyplot as plt

        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
        f = self.frame
        pts = self.chart_data(threshold)
        agg = pts["aggregation"].iloc[0]
        x = pts["period_start"] + pd.to_timedelta(15 * (pts["months"] - 1), unit="D")  # middle of the period
        inside = pts["in_estimate"].to_numpy()
        ms = 3 if agg == "month" else 4
        what = "observed" if agg == "month" else f"observed ({agg}ly average)"
        ax.plot(x[inside], pts["value"][inside], "o", ms=ms, color="0.35", label=what)
        if (~inside).any():
            ax.plot(x[~inside], pts["value"][~inside], "o", ms=ms, mfc="none", color="0.55",
                    label="after the pilot (not in the estimate)")
        ax.plot(f.index, f["fitted"], "-", color="C0", label="fitted")
        post = f.index >= self.intervention
        ax.plot(f.index[post], f["counterfactual"][post], "--", color="C1", label="counterfactual (no change)")
        ax.axvline(self.intervention, color="k", lw=0.8, ls=":")
        if (~inside).any():
            ax.axvline(f.index[-1] + pd.offsets.MonthBegin(1), color="0.5", lw=0.8, ls="--")
        unit = " per 100,000" if (self.per_rate or self.scale == "rate") else ""
        ax.set_ylabel(f"{MEASURE_LABELS.get(self.measure, self.measure)}{unit} per month", fontsize=8)
        ax.set_title(f"{self.area + ': ' if self.area else ''}{MEASURE_LABELS.get(self.measure, self.measure)}")
        # below the axes: inside, the legend covered the last years' points
        ax.legend(frameon=False, fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12))
        return fig if fig is not None else ax.figure


def interrupted_time_series(
    series: pd.Series,
    intervention,
    *,
    seasonality: str | None = "month",
    hac_lags: int | None = None,
    scale: str = "auto",
    shocks: Sequence | None = None,
    min_pre: int = MIN_PRE_MONTHS,
    autocorrelation_lags: int = 12,
    alpha: float = 0.05,
    measure: str | None = None,
    area: str | None = None,
    per_rate: bool = True,
    end=None,
    counts: pd.Series | None = None,
) -> ITSResult:
    """Segmented regression of a monthly series on level, trend, level change and slope change.

    ``y_t = b0 + b1 t + b2 post_t + b3 months_since_t + seasonality + e_t`` fitted by OLS; standard errors are
    Newey–West HAC with ``hac_lags`` lags (default :func:`newey_west_lags`, 4 for 108 months), Bartlett kernel,
    small-sample correction on (statsmodels ``cov_type="HAC"``, ``use_correction=True``); CIs use the normal
    distribution, as statsmodels does for HAC.

    ``series``: monthly values indexed by the first day of each month (e.g. :func:`area_series`), with no gaps.
    ``intervention``: the first month of the intervention (level change from this month). ``scale``: see the
    module docstring (``"auto"``: log when all values > 0). ``shocks``: months or (first, last) ranges that get
    their own dummy (e.g. ``[("2020-04-01", "2020-06-01")]`` for the first lockdown). ``per_rate``: whether the
    series is a rate per 100,000 (labels only). ``end``: the last month in the estimate (e.g. the end of a pilot);
    later months are kept in ``later`` for charts and never enter the fit. ``counts``: the raw monthly counts
    behind a rate, used only by :meth:`ITSResult.chart_data` to keep small counts out of charts.

    Autocorrelation check (on OLS residuals): Durbin–Watson (≈2 means none), Ljung–Box and Breusch–Godfrey
    p-values at ``autocorrelation_lags`` lags (small p: residuals autocorrelated, HAC errors needed).

    Raises :class:`AreaDataError` for gaps (names the missing months), fewer than ``min_pre`` months before the
    intervention (says how many), an intervention outside the series, and zeros on the log scale.
    """
    name = f"series '{measure or getattr(series, 'name', None) or 'series'}'" + (f" ({area})" if area else "")
    s = check_monthly(series, name)
    t0 = _month(intervention, "intervention")
    last = None if end is None else pd.Timestamp(end).to_period("M").to_timestamp()
    later = None
    if last is not None:
        if last < t0:
            raise AreaDataError(f"end: {last:%Y-%m} is before the intervention ({t0:%Y-%m})")
        later, s = s[s.index > last], s[s.index <= last]
    n_pre, n_post = _split_check(s.index, t0, min_pre, name)
    scale = _resolve_scale(scale, s.to_numpy(), per_rate)
    y = pd.Series(_transform(s.to_numpy(dtype=float), scale), index=s.index, name="y")
    X = its_design(s.index, t0, seasonality=seasonality, shocks=shocks)
    lags = newey_west_lags(len(y)) if hac_lags is None else int(hac_lags)
    if lags < 0:
        raise AreaDataError(f"hac_lags: must be ≥ 0, got {hac_lags}")
    model = sm.OLS(y, X)
    ols = model.fit()
    fit = model.fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True})
    ci = fit.conf_int(alpha)
    lb = acorr_ljungbox(ols.resid, lags=[autocorrelation_lags])
    bg = acorr_breusch_godfrey(ols, nlags=autocorrelation_lags, result_object=False)
    auto = {"durbin_watson": float(durbin_watson(ols.resid)),
            "ljung_box_stat": float(lb["lb_stat"].iloc[0]), "ljung_box_p": float(lb["lb_pvalue"].iloc[0]),
            "breusch_godfrey_stat": float(bg[0]), "breusch_godfrey_p": float(bg[1]),
            "lags": int(autocorrelation_lags), "lag1_autocorrelation": float(ols.resid.autocorr(1))}
    Xcf = X.copy()
    Xcf["post"] = 0.0
    Xcf["months_since"] = 0.0
    frame = pd.DataFrame({"observed": s.to_numpy(), "fitted": _untransform(fit.fittedvalues.to_numpy(), scale),
                          "counterfactual": _untransform(Xcf.to_numpy() @ fit.params.to_numpy(), scale)},
                         index=s.index)
    return ITSResult(
        measure=measure or (s.name if isinstance(s.name, str) else "series"), area=area, intervention=t0,
        scale=scale,
        level_change=float(fit.params["post"]), level_ci=(float(ci.loc["post", 0]), float(ci.loc["post", 1])),
        level_p=float(fit.pvalues["post"]),
        slope_change=float(fit.params["months_since"]),
        slope_ci=(float(ci.loc["months_since", 0]), float(ci.loc["months_since", 1])),
        slope_p=float(fit.pvalues["months_since"]), pre_slope=float(fit.params["t"]),
        n_pre=n_pre, n_post=n_post, hac_lags=lags, seasonality=seasonality, autocorrelation=auto,
        frame=frame, fit=fit, alpha=alpha, per_rate=per_rate, end=last if later is not None and len(later) else None,
        later=later if later is not None and len(later) else None,
        counts=None if counts is None else check_monthly(counts, f"{name} counts"),
    )


# ----------------------------------------------------------------------------- difference-in-differences
@dataclass
class DiDResult:
    """Difference-in-differences of one treated area against comparison areas (see
    :func:`difference_in_differences`). Estimates on ``scale``; 95% CIs from HAC errors."""

    measure: str
    treated: str
    comparison: list[str]
    intervention: pd.Timestamp
    scale: str
    estimate: float
    ci: tuple[float, float]
    p: float
    se_type: str
    hac_lags: int
    trend: str
    twfe_estimate: float
    placebo: pd.DataFrame
    placebo_p: float
    pretrend_stat: float
    pretrend_df: int
    pretrend_p: float
    pre_slope: float
    pre_slope_ci: tuple[float, float]
    pre_slope_p: float
    event_study: pd.DataFrame
    event_rho: float
    difference: pd.DataFrame = field(repr=False)  # month, treated, comparison (mean), difference
    fit: Any = field(repr=False)
    event_bin: int = 6
    alpha: float = 0.05
    end: pd.Timestamp | None = None  # last month in the estimate (the end of the pilot)
    later: pd.DataFrame | None = field(default=None, repr=False)  # treated, comparison, difference after ``end``
    trend_adjusted: "DiDResult | None" = field(default=None, repr=False)  # trend="linear" refit when pre-trends fail

    @property
    def pretrend_check_p(self) -> float:
        """The pre-trend check's p-value: the smaller of the event-study test (all pre-period coefficients zero,
        ``pretrend_p``) and the test of a linear pre-period slope in the difference (``pre_slope_p``).

        Why both: the event-study F test spreads its power over every pre-period and misses a steady drift that
        the slope test sees (arrests in the synthetic ADDER world: event study p = 0.44, slope p = 0.014, and the
        drift shows on the chart); a claim that rests on parallel paths must survive both. Taking the smaller is
        the conservative reading (no correction for two tests: a failed check only qualifies a claim)."""
        ps = [p for p in (self.pretrend_p, self.pre_slope_p) if not math.isnan(p)]
        return min(ps) if ps else float("nan")

    @property
    def pretrend_failed(self) -> bool:
        """True when the pre-trend check (:attr:`pretrend_check_p`) rejects parallel paths before the intervention
        (p < 0.05)."""
        p = self.pretrend_check_p
        return bool(p < 0.05) if not math.isnan(p) else False

    def placebo_text(self) -> str:
        """The placebo-in-space result in words, with its p-value and the smallest p-value it could have had."""
        n = len(self.placebo)
        k = int(round(self.placebo_p * n))
        others = k - 1
        lead = (f"Placebo test: treating each comparison area in turn as if it had had the pilot, "
                f"{self.treated}'s difference was ")
        if others <= 0:
            mid = f"the largest of the {n} areas"
        else:
            mid = (f"matched or exceeded by {others} of the {n - 1} comparison area{'s' if n - 1 != 1 else ''}, "
                   "so a difference of this size is not unusual among these areas")
        return (f"{lead}{mid} (placebo p = {self.placebo_p:.2f}; with {n} areas the smallest possible value is "
                f"{1 / n:.2f}, so this is a sense check, not a significance test).")

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": "difference_in_differences", "measure": self.measure, "treated": self.treated,
            "comparison": list(self.comparison), "intervention": self.intervention.date().isoformat(),
            "scale": self.scale, "estimate": self.estimate, "ci": list(self.ci), "p": self.p,
            "se_type": self.se_type, "hac_lags": self.hac_lags, "trend": self.trend, "twfe_estimate": self.twfe_estimate,
            "placebo_p": self.placebo_p, "pretrend_stat": self.pretrend_stat, "pretrend_df": self.pretrend_df,
            "pretrend_p": self.pretrend_p, "pre_slope": self.pre_slope, "pre_slope_ci": list(self.pre_slope_ci),
            "pre_slope_p": self.pre_slope_p, "event_bin_months": self.event_bin,
            "event_study_se": f"AR(1) feasible GLS (rho = {self.event_rho:.2f})",
            # months per event-study period, renamed so a 3-month last period is not read as a count of people
            "event_study": self.event_study.rename(columns={"n_months": "months_in_period"}).to_dict(orient="records"),
            "placebo": self.placebo.to_dict(orient="records"),
            "pretrend_check_p": self.pretrend_check_p, "pretrend_failed": self.pretrend_failed,
            "estimate_end": None if self.end is None else self.end.date().isoformat(),
            "trend_adjusted": None if self.trend_adjusted is None else {
                "estimate": self.trend_adjusted.estimate, "ci": list(self.trend_adjusted.ci),
                "p": self.trend_adjusted.p},
        }

    def summary(self) -> pd.DataFrame:
        out = pd.DataFrame([{
            "measure": self.measure, "scale": self.scale, "estimate": self.estimate, "lower": self.ci[0],
            "upper": self.ci[1], "p": self.p, "placebo_p": self.placebo_p, "pretrend_p": self.pretrend_p,
        }])
        if self.scale == "log":
            out["ratio"] = np.exp(out["estimate"])
            out["ratio_lower"] = np.exp(out["lower"])
            out["ratio_upper"] = np.exp(out["upper"])
        return out

    def text(self, placebo: bool = False) -> str:
        """Plain-English DiD result. A failed pre-trend check (p < 0.05) qualifies the claim: the difference is then
        not read as a change after the pilot began, and the trend-adjusted estimate is given when available.
        ``placebo=True`` adds :meth:`placebo_text`."""
        label = MEASURE_LABELS.get(self.measure, self.measure.replace("_", " "))
        sig = self.p <= self.alpha
        change = _change_text(self.estimate, *self.ci, self.scale, "a difference of")
        when = (f"during the pilot ({self.intervention:%B %Y} to {self.end:%B %Y})" if self.end is not None
                else f"after {self.intervention:%B %Y}")
        head = f"Compared with {len(self.comparison)} similar areas, monthly {label} in {self.treated} {when} "
        if self.pretrend_failed:
            s = (head + f"moved differently ({change}; {_p(self.p)}), but the areas were already moving apart "
                 f"before the pilot (pre-trend check {_p(self.pretrend_check_p)}), so this difference cannot be read "
                 "as a change that came with the pilot.")
            ta = self.trend_adjusted
            if ta is not None:
                tch = _change_text(ta.estimate, *ta.ci, ta.scale, "a difference of")
                s += (" Allowing the earlier divergence to continue, the difference "
                      + (f"is {tch.removeprefix('a difference of ')}; {_p(ta.p)}. That estimate assumes the "
                         "drift would have gone on in a straight line, which nothing here can check: an indication, "
                         "not evidence of what the pilot changed."
                         if ta.p <= ta.alpha else f"is not reliable ({tch}; {_p(ta.p)})."))
        else:
            s = head + (f"changed more than expected: {change}; {_p(self.p)}." if sig else
                        f"did not change reliably differently ({change}; {_p(self.p)}).")
            n = len(self.placebo) if self.placebo is not None else 0
            others = int(round(self.placebo_p * n)) - 1 if n and not math.isnan(self.placebo_p) else 0
            if sig and others == 0 and n and not placebo and 1 / n > self.alpha:
                s += (f" Its difference was the largest of the {n} areas, but with so few areas a placebo test cannot "
                      f"confirm it (the smallest possible placebo p-value is {1 / n:.2f}).")
            if sig and others > 0 and not placebo:
                # the p-value assumes the areas' differences are independent noise; when comparison areas given
                # the pilot in turn show differences as large, the claim must not stand alone
                s += (f" But {others} of the {n - 1} comparison areas showed a difference at least as large (in "
                      "either direction) when each was treated in turn as if it had had the pilot (placebo test), "
                      "so this difference may not be due to the pilot.")
        if placebo:
            s += " " + self.placebo_text()
        return s + " " + AREA_CAVEAT

    def plot(self, ax=None):
        """Event-study plot: treated − comparison difference by period from the start of the intervention, minus
        its pre-intervention average, with 95% CIs and a key (:func:`plot_event_study`)."""
        return plot_event_study(self.event_study, self, ax=ax)

    def plot_series(self, ax=None):
        """Treated series and comparison-area mean over time."""
        import matplotlib.pyplot as plt

        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
        d = self.difference
        ax.plot(d.index, _untransform(d["treated"], self.scale), color="C0", label=self.treated)
        ax.plot(d.index, _untransform(d["comparison"], self.scale), color="C1",
                label=f"comparison areas ({'geometric ' if self.scale == 'log' else ''}mean)")
        ax.axvline(self.intervention, color="k", lw=0.8, ls=":")
        ax.set_title(MEASURE_LABELS.get(self.measure, self.measure))
        ax.legend(frameon=False, fontsize=8)
        return fig if fig is not None else ax.figure


def plot_event_study(es: pd.DataFrame, result: DiDResult | None = None, ax=None):
    """Event-study chart of the treated-minus-comparison difference by period.

    Each point is one ``event_bin``-month period, drawn at its first month counted from the start of the
    intervention (x = 0: the intervention's first period; negative: before it). On a centred frame
    (``estimate_vs_pre``) the y value is the period's difference (treated minus the comparison-area mean; log
    units when ``result.scale == "log"``, where 0.1 is about +11%) minus the average difference over all the
    periods before the intervention, so y = 0 is that pre-intervention average. Bars: the ``1 - alpha``
    confidence interval of each period (95% by default; feasible GLS with AR(1) errors, see
    :func:`difference_in_differences`). The dotted vertical line marks the start of the intervention. The
    key names all three, so the chart explains itself.
    """
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
    x = es["period_start"].to_numpy()
    centred = "estimate_vs_pre" in es  # centred on the pre-period average (see did()); older frames: last period
    est, lo, hi = (es[c] for c in (("estimate_vs_pre", "lower_vs_pre", "upper_vs_pre") if centred
                                   else ("estimate", "lower", "upper")))
    what = "the pilot" if result is not None and getattr(result, "end", None) is not None else "the intervention"
    level = round(100 * (1 - (result.alpha if result is not None else 0.05)))
    ref = f"average before {what}" if centred else f"last period before {what}"
    ax.errorbar(x, est, yerr=[est - lo, hi - est], fmt="o", color="C0", capsize=2,
                label=f"each period's difference minus its {ref} (dot), with {level}% confidence interval (bar)")
    ax.axhline(0, color="0.5", lw=0.8, label=f"0: the difference as it was on average before {what}")
    ax.axvline(-0.5, color="k", lw=0.8, ls=":", label=f"dotted line: start of {what}")
    bin_ = result.event_bin if result is not None else int(es["period_start"].diff().dropna().min() or 1)
    ax.set_xlabel(f"months from the start of {what} (each point: a {bin_}-month period, at its first month)")
    scale = result.scale if result is not None else ""
    units = {"log": "\n(log scale: +0.1 ≈ +11%)", "rate": f"\n({SCALE_UNITS['rate']})",
             "count": f"\n({SCALE_UNITS['count']})"}
    ax.set_ylabel(f"difference from comparison areas,\nminus its {ref}" + units.get(scale, ""))
    # below the axes and the x label: inside, the key covered points
    ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    if result is not None:
        ax.set_title(f"{MEASURE_LABELS.get(result.measure, result.measure)}: {result.treated} vs comparison areas")
    return fig if fig is not None else ax.figure


def _panel_wide(panel: pd.DataFrame, areas: list[str], measure: str, per: float | None) -> pd.DataFrame:
    _check_columns(panel, ("area", "month", "measure", "value"), "panel")
    present = set(map(str, panel["area"].unique()))
    missing = [a for a in areas if a not in present]
    if missing:
        raise AreaDataError(f"panel: area(s) {', '.join(repr(a) for a in missing)} not in the panel "
                            f"(areas present: {', '.join(sorted(present))})")
    for a in areas:
        if not ((panel["area"] == a) & (panel["measure"] == measure)).any():
            raise AreaDataError(f"panel: area '{a}' has no rows for measure '{measure}'")
    cols = {a: area_series(panel, a, measure, per=per) for a in areas}
    idx = cols[areas[0]].index
    for a, s in cols.items():
        if not s.index.equals(idx):
            raise AreaDataError(
                f"panel: area '{a}' covers {s.index[0]:%Y-%m}..{s.index[-1]:%Y-%m} but '{areas[0]}' covers "
                f"{idx[0]:%Y-%m}..{idx[-1]:%Y-%m}; every area needs the same months")
    return pd.DataFrame(cols)


def _did_on_difference(d: pd.Series, t0: pd.Timestamp, lags: int, trend: str = "none"):
    X = pd.DataFrame({"const": 1.0, "post": (d.index >= t0).astype(float)}, index=d.index)
    if trend == "linear":
        X["t"] = np.arange(len(d), dtype=float)
    return sm.OLS(d, X).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True})


def difference_in_differences(
    panel: pd.DataFrame,
    treated: str,
    comparison: Sequence[str],
    intervention,
    measure: str,
    *,
    scale: str = "auto",
    per: float | None = 100_000,
    hac_lags: int | None = None,
    min_pre: int = MIN_PRE_MONTHS,
    event_bin: int = 6,
    trend: str = "none",
    alpha: float = 0.05,
    end=None,
) -> DiDResult:
    """Difference-in-differences of ``treated`` against the ``comparison`` areas on one ``measure``.

    Model: two-way fixed effects ``y_at = area_a + month_t + beta * (treated_a * post_t) + e_at`` on the
    monthly rate per 100,000 (``per``; ``per=None``: counts), on the log scale when every value is positive
    (``scale="auto"``). With a balanced panel and one treated area, the TWFE ``beta`` equals exactly the
    change in the treated-minus-comparison-mean series ``d_t = y_treated,t - mean_c y_c,t``:
    ``mean(d | post) - mean(d | pre)``; both are reported (``twfe_estimate`` from statsmodels on the full panel,
    ``estimate`` from the difference series; they agree to rounding).

    Why HAC on the difference series and not cluster-robust errors: cluster-robust (by area) standard errors
    need many clusters, and are known to be badly anti-conservative with one treated cluster and a handful of
    controls (Conley & Taber 2011; MacKinnon & Webb 2017) — here 1 treated and ~5 comparison areas. The monthly
    difference series carries the whole identifying variation; its serial correlation is handled by Newey–West
    (HAC) errors (``hac_lags``, default :func:`newey_west_lags`). As a design-based check we add
    placebo-in-space inference: each comparison area in turn is treated as if it had the intervention (against
    the other comparison areas), and ``placebo_p`` is the share of all areas (treated included) whose
    |estimate| is at least the treated area's. With 6 areas its smallest possible value is 1/6, so it can
    never be below 0.05: read it as a sense check, not a significance test.

    Pre-trend check: an event study on ``d_t`` with one indicator per ``event_bin``-month period relative to
    the intervention (the last pre-period is the reference), fitted by feasible GLS with AR(1) errors
    (``statsmodels`` ``GLSAR``, rho from the DiD residuals; ``event_rho``) because HAC errors with one dummy
    per period over-reject badly (see the comment in the code); ``pretrend_p`` is the F test that all
    pre-period (lead) coefficients are zero (small p: the areas were not moving in parallel before); the
    linear pre-period slope of ``d_t`` (``pre_slope``, scale units per month, HAC test ``pre_slope_p``) is the
    second half of the check: ``pretrend_failed`` when either p is below 0.05 (``pretrend_check_p``).

    Errors (:class:`AreaDataError`): a comparison area missing from the panel (named), gaps in any area's
    series, areas covering different months, fewer than ``min_pre`` pre-intervention months, intervention
    outside the series, treated area listed among the comparisons.

    ``trend="linear"`` adds a linear trend to the difference series (area-specific linear trends in the
    TWFE model): use it when the pre-trend check fails because the areas drift apart steadily; the estimate
    is then the level shift beyond the continued pre-period divergence. ``twfe_estimate`` is always the
    plain TWFE (no trends) for reference.

    ``end``: the last month in the estimate (the end of a pilot); later months never enter any fit and are
    kept in ``later`` (treated, comparison mean and difference) for the reader. The placebo table holds each
    area's estimate and its own HAC p-value (``p``).
    """
    if trend not in ("none", "linear"):
        raise AreaDataError(f"trend: '{trend}' is not 'none' or 'linear'")
    comparison = list(comparison)
    if not comparison:
        raise AreaDataError("comparison: at least one comparison area is needed")
    if treated in comparison:
        raise AreaDataError(f"comparison: the treated area '{treated}' is also listed as a comparison area")
    if event_bin < 1:
        raise AreaDataError(f"event_bin: must be ≥ 1 month, got {event_bin}")
    areas = [treated, *comparison]
    wide = _panel_wide(panel, areas, measure, per)
    t0 = _month(intervention, "intervention")
    last = None if end is None else pd.Timestamp(end).to_period("M").to_timestamp()
    later_wide = None
    if last is not None:
        if last < t0:
            raise AreaDataError(f"end: {last:%Y-%m} is before the intervention ({t0:%Y-%m})")
        later_wide, wide = wide[wide.index > last], wide[wide.index <= last]
    n_pre, _ = _split_check(wide.index, t0, min_pre, f"panel[{measure}]")
    scale = _resolve_scale(scale, wide.to_numpy().ravel(), per is not None)
    Y = pd.DataFrame(_transform(wide.to_numpy(dtype=float), scale), index=wide.index, columns=wide.columns)
    lags = newey_west_lags(len(Y)) if hac_lags is None else int(hac_lags)

    comp_mean = Y[comparison].mean(axis=1)
    d = (Y[treated] - comp_mean).rename("difference")
    fit = _did_on_difference(d, t0, lags, trend)
    ci = fit.conf_int(alpha).loc["post"]

    # two-way fixed effects on the long panel (point estimate; equals the difference-series estimate)
    long = Y.stack().rename("y").reset_index()
    long.columns = ["month", "area", "y"]
    long["did"] = ((long["area"] == treated) & (long["month"] >= t0)).astype(float)
    Xa = pd.get_dummies(long["area"], prefix="a", drop_first=True, dtype=float)
    Xm = pd.get_dummies(long["month"].dt.strftime("%Y%m"), prefix="m", drop_first=True, dtype=float)
    Xtw = pd.concat([pd.Series(1.0, index=long.index, name="const"), long["did"], Xa, Xm], axis=1)
    twfe = sm.OLS(long["y"], Xtw).fit()

    # placebo in space
    rows = [{"area": treated, "treated": True, "estimate": float(fit.params["post"]), "p": float(fit.pvalues["post"])}]
    for a in comparison:
        others = [c for c in comparison if c != a]
        if not others:
            continue
        dp = Y[a] - Y[others].mean(axis=1)
        pf = _did_on_difference(dp, t0, lags, trend)
        rows.append({"area": a, "treated": False, "estimate": float(pf.params["post"]), "p": float(pf.pvalues["post"])})
    placebo = pd.DataFrame(rows)
    placebo_p = float((placebo["estimate"].abs() >= abs(rows[0]["estimate"]) - 1e-12).mean())

    # event study on the difference series
    since = (d.index.year - t0.year) * 12 + (d.index.month - t0.month)
    period = np.floor_divide(since, event_bin)
    ref = -1
    periods = sorted(set(period.tolist()) - {ref})
    Xe = pd.DataFrame({"const": 1.0}, index=d.index)
    for k in periods:
        Xe[f"p{k}"] = (period == k).astype(float)
    # Event study by feasible GLS with AR(1) errors, rho estimated from the residuals of the (unsaturated) DiD
    # model. Not HAC: with one dummy per period the OLS residuals are demeaned within each period, which hides
    # their autocorrelation from a HAC estimator; in our simulation (AR(1) errors, phi = 0.3, 6-month periods)
    # the HAC joint lead test rejected a true null 92% of the time at the 5% level, the AR(1)-GLS test 3%.
    # rho from a segmented-trend fit of d (const, trend, level and slope change): a steady pre-period divergence
    # left in the residuals would inflate rho and hide the very pre-trend the test looks for.
    tt = np.arange(len(d), dtype=float)
    pst = (d.index >= t0).astype(float)
    r0 = sm.OLS(d.to_numpy(), np.column_stack([np.ones_like(tt), tt, pst, pst * (tt - n_pre)])).fit().resid
    rho = float(np.clip(np.dot(r0[1:], r0[:-1]) / np.dot(r0[:-1], r0[:-1]), -0.95, 0.95))
    es_fit = sm.GLSAR(d, Xe, rho=[rho]).fit()
    es_ci = es_fit.conf_int(alpha)
    es_rows = [{"period": ref, "period_start": ref * event_bin, "estimate": 0.0, "lower": 0.0, "upper": 0.0,
                "p": np.nan, "n_months": int((period == ref).sum()), "reference": True}]
    for k in periods:
        c = f"p{k}"
        es_rows.append({"period": k, "period_start": k * event_bin, "estimate": float(es_fit.params[c]),
                        "lower": float(es_ci.loc[c, 0]), "upper": float(es_ci.loc[c, 1]),
                        "p": float(es_fit.pvalues[c]), "n_months": int((period == k).sum()), "reference": False})
    es = pd.DataFrame(es_rows).sort_values("period").reset_index(drop=True)
    # The same contrasts re-centred on the average of all pre-periods (reference included), for the plot: against
    # one 6-month reference period, that period's own noise shifts every point (with AR(1) area noise the plot
    # could show all the pre-periods above zero). The pre-trend F test below is unchanged by the centring (it
    # tests that all pre-periods are equal, whichever is the reference).
    cols = list(Xe.columns)
    pre_ks = [k for k in periods if k < 0]
    n_pre_periods = len(pre_ks) + 1
    cov = es_fit.cov_params().to_numpy()
    crit = float(stats.t.ppf(1 - alpha / 2, es_fit.df_resid))
    centred = []
    for k in es["period"]:
        a = np.zeros(len(cols))
        if k != ref:
            a[cols.index(f"p{k}")] += 1.0
        for j in pre_ks:
            a[cols.index(f"p{j}")] -= 1.0 / n_pre_periods
        est_c = float(a @ es_fit.params.to_numpy())
        se_c = float(np.sqrt(max(a @ cov @ a, 0.0)))
        centred.append((est_c, est_c - crit * se_c, est_c + crit * se_c))
    es[["estimate_vs_pre", "lower_vs_pre", "upper_vs_pre"]] = np.array(centred)
    leads = [f"p{k}" for k in periods if k < ref]
    if leads:
        R = np.zeros((len(leads), len(Xe.columns)))
        for i, c in enumerate(leads):
            R[i, list(Xe.columns).index(c)] = 1.0
        w = es_fit.f_test(R)
        pre_stat, pre_p = float(np.squeeze(w.fvalue)), float(w.pvalue)
    else:
        pre_stat, pre_p = float("nan"), float("nan")

    pre = d[d.index < t0]
    tp = np.arange(len(pre), dtype=float)
    pre_fit = sm.OLS(pre, sm.add_constant(pd.Series(tp, index=pre.index, name="t"))).fit(
        cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True})
    pci = pre_fit.conf_int(alpha).loc["t"]

    diff_frame = pd.DataFrame({"treated": Y[treated], "comparison": comp_mean, "difference": d})
    later = None
    if later_wide is not None and len(later_wide):
        Yl = pd.DataFrame(_transform(later_wide.to_numpy(dtype=float), scale) if scale != "log" or
                          (later_wide.to_numpy() > 0).all() else np.log(later_wide.clip(lower=1e-9).to_numpy()),
                          index=later_wide.index, columns=later_wide.columns)
        cl = Yl[comparison].mean(axis=1)
        later = pd.DataFrame({"treated": Yl[treated], "comparison": cl, "difference": Yl[treated] - cl})
    return DiDResult(
        measure=measure, treated=treated, comparison=comparison, intervention=t0, scale=scale,
        estimate=float(fit.params["post"]), ci=(float(ci[0]), float(ci[1])), p=float(fit.pvalues["post"]),
        se_type=f"HAC (Newey-West, Bartlett kernel, {lags} lags) on the treated - comparison-mean monthly series",
        hac_lags=lags, trend=trend, twfe_estimate=float(twfe.params["did"]), placebo=placebo, placebo_p=placebo_p,
        pretrend_stat=pre_stat, pretrend_df=len(leads), pretrend_p=pre_p,
        pre_slope=float(pre_fit.params["t"]), pre_slope_ci=(float(pci[0]), float(pci[1])),
        pre_slope_p=float(pre_fit.pvalues["t"]), event_study=es, event_rho=rho, difference=diff_frame, fit=fit,
        event_bin=event_bin, alpha=alpha, end=last if later is not None else None, later=later,
    )


# ------------------------------------------------------------------------------------- programme-level
def evaluate_area(area_monthly: pd.DataFrame, programme, *, measures: Sequence[str] | None = None,
                  shocks: Sequence | None = (("2020-04-01", "2020-06-01"),), did_trend: str = "none",
                  end="programme", **kwargs) -> dict[str, dict[str, Any]]:
    """ITS (treated area) and DiD (vs comparison areas) for each measure of an area programme's config.

    Parameters
    ----------
    area_monthly : DataFrame
        The long ``area_monthly`` table (``area``, ``month``, ``measure``, ``value``; ``population`` rows).
    programme : Programme or str
        A :class:`evaluation.config.Programme` (or its id) with ``area.treated``, ``area.comparison``,
        ``measures``, ``start`` (the intervention month) and ``end``.
    measures : list of str, optional
        Default: the config's ``measures``.
    shocks : sequence
        Months or ranges with their own ITS dummy; default the spring-2020 lockdown (April–June 2020).
    did_trend : {"none", "linear"}
        Trend option of the headline DiD.
    end : "programme", date or None
        Last month in the estimates: by default the programme's ``end`` (the pilot), so later months are shown
        separately and never estimated; ``None`` uses the whole series.

    Returns
    -------
    dict
        ``{measure: {"its": ITSResult, "did": DiDResult}}``. When a DiD's pre-trend check fails (p < 0.05) and
        ``did_trend="none"``, ``did.trend_adjusted`` holds the ``trend="linear"`` refit for the wording.

    Raises
    ------
    AreaDataError
        Missing ``area.treated``, or any error of :func:`interrupted_time_series` /
        :func:`difference_in_differences`.
    """
    from evaluation.config import load_programme

    if isinstance(programme, str):
        programme = load_programme(programme)
    area_cfg = programme.get("area") or {}
    treated, comparison = area_cfg.get("treated"), area_cfg.get("comparison") or []
    if not treated:
        raise AreaDataError(f"{programme.path}: key 'area.treated' is required for an area evaluation")
    start = pd.Timestamp(programme.start).to_period("M").to_timestamp()
    if isinstance(end, str) and end == "programme":
        end = pd.Timestamp(programme.end).to_period("M").to_timestamp()
    out = {}
    did_kw = {k: v for k, v in kwargs.items() if k in ("hac_lags", "min_pre", "alpha")}
    for m in measures or programme.get("measures") or []:
        its = interrupted_time_series(area_series(area_monthly, treated, m), start, shocks=shocks, measure=m,
                                      area=treated, end=end, counts=area_series(area_monthly, treated, m, per=None),
                                      **kwargs)
        did = difference_in_differences(area_monthly, treated, comparison, start, m, **did_kw, trend=did_trend,
                                        end=end)
        if did.pretrend_failed and did_trend == "none":
            did.trend_adjusted = difference_in_differences(area_monthly, treated, comparison, start, m, **did_kw,
                                                           trend="linear", end=end)
        out[m] = {"its": its, "did": did}
    return out


def area_table(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per measure: ITS level/slope change and DiD estimate with 95% CIs (scale column says which)."""
    rows = []
    for m, r in results.items():
        its, did = r["its"], r["did"]
        rows.append({"measure": m, "its_scale": its.scale, "its_level": its.level_change,
                     "its_level_lower": its.level_ci[0], "its_level_upper": its.level_ci[1], "its_level_p": its.level_p,
                     "its_slope": its.slope_change, "its_slope_p": its.slope_p,
                     "did_scale": did.scale, "did": did.estimate, "did_lower": did.ci[0], "did_upper": did.ci[1],
                     "did_p": did.p, "placebo_p": did.placebo_p, "pretrend_p": did.pretrend_check_p,
                     "pretrend_failed": did.pretrend_failed})
    return pd.DataFrame(rows)
