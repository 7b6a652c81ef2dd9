"""The design objects returned by :func:`evaluation.matching.match` and :func:`evaluation.matching.weight`.

A design holds the data, the distance, the matching weights (0 for unmatched rows) and, for methods that form
them, subclasses; balance, plots and effects are methods on it (MatchIt's ``summary``, ``plot`` and the
vignette's effect estimation in one place).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from . import balance as _bal
from ._inputs import covariate_list
from .distance import fit_propensity
from .effect import Effect, adjusted_effect, effect as _plain_effect

__all__ = ["MatchedDesign", "WeightedDesign", "weight"]


class _Design:
    data: pd.DataFrame
    treatment: str
    covariates: list
    distance: pd.Series
    weights: pd.Series  # on data.index, 0 for unmatched
    se_type: str
    method: str
    discarded: pd.Series
    estimand: str = "ATT"

    @property
    def matched(self) -> pd.DataFrame:
        raise NotImplementedError

    def balance(self, *, squares: bool = False, interactions: bool = False, ecdf: bool = True,
                smd_threshold: float = _bal.SMD_THRESHOLD,
                var_ratio_range: tuple[float, float] = _bal.VAR_RATIO_RANGE) -> pd.DataFrame:
        """Balance table before and after matching (MatchIt ``summary()`` statistics, cobalt thresholds).

        Parameters
        ----------
        squares, interactions : bool
            Also show squares of the continuous covariates and pairwise products (cobalt's ``poly = 2``,
            ``int = TRUE``).
        ecdf : bool
            Add eCDF mean and max distances (``ecdf_mean_*``, ``ecdf_max_*``; 0-1 scale).
        smd_threshold, var_ratio_range : float, (float, float)
            Balance thresholds: |SMD| <= 0.1 and variance ratio within 0.5-2 by default.

        Returns
        -------
        pandas.DataFrame
            One row per balance column (``distance`` first; every level of a categorical covariate):
            ``mean_treated_before/_after``, ``mean_control_*``, ``smd_*`` (standardised mean difference, see
            :mod:`evaluation.matching.balance` for the denominator), ``var_ratio_*`` (treated / control; NaN for
            binary), ``ecdf_*``, and the flags ``smd_balanced`` and ``var_ratio_balanced`` (NA for binary).
            ``.attrs["sample_sizes"]`` holds :meth:`sample_sizes`.

        Examples
        --------
        >>> design.balance().loc["age", ["smd_before", "smd_after"]]  # doctest: +SKIP
        """
        out = _bal.balance_table(self, squares=squares, interactions=interactions, ecdf=ecdf,
                                 smd_threshold=smd_threshold, var_ratio_range=var_ratio_range)
        out.attrs["sample_sizes"] = self.sample_sizes()
        return out

    def sample_sizes(self) -> pd.DataFrame:
        """MatchIt's sample-size table: All, All (ESS), Matched, Matched (ESS), Unmatched, Discarded (people)."""
        t = self.data[self.treatment].to_numpy()
        w = self.weights.to_numpy(dtype=float)
        disc = self.discarded.to_numpy()
        out = {}
        for g, name in ((0, "control"), (1, "treated")):
            gi = t == g
            out[name] = {"All (ESS)": float(gi.sum()), "All": int(gi.sum()), "Matched (ESS)": _bal._ess(w[gi]),
                         "Matched": int((w[gi] > 0).sum()), "Unmatched": int(((w == 0) & gi & ~disc).sum()),
                         "Discarded": int((gi & disc).sum())}
        return pd.DataFrame(out)

    def effect(self, outcome: str, *, adjust=None, alpha: float = 0.05, outcome_type: str | None = None) -> Effect:
        """Effect of treatment on ``outcome`` for the design's estimand.

        Parameters
        ----------
        outcome : str
            Outcome column (0/1 binary, non-negative whole numbers for counts, else continuous).
        adjust : None, True, str or list of str
            None: weighted difference in means. A covariate name or list (True: the matching covariates):
            g-computation with a weighted outcome model with treatment x covariate interactions, as MatchIt's
            vignette (see :mod:`evaluation.matching.effect`).
        alpha : float
            1 - confidence level.
        outcome_type : {"binary", "count", "continuous"}, optional
            Inferred from the values when not given.

        Returns
        -------
        Effect
            ``estimate`` (difference in outcome units: proportions for binary outcomes), ``se``, ``ci_low``,
            ``ci_high``, ``p_value``; ``ratios`` holds risk and odds ratios (binary) or the rate ratio (counts)
            as (estimate, ci_low, ci_high, p_value).

        Raises
        ------
        MatchingError
            Missing outcome values, unknown columns, or an outcome model that cannot be fitted.

        Examples
        --------
        >>> design.effect("re78", adjust=["age", "educ"])  # doctest: +SKIP
        <Effect ATT on 're78' (continuous, adjusted for 2 covariate(s)): ...>
        """
        if adjust is None or adjust is False:
            return _plain_effect(self, outcome, alpha=alpha, outcome_type=outcome_type)
        cols = self.covariates if adjust is True else covariate_list(adjust, "adjust")
        return adjusted_effect(self, outcome, cols, alpha=alpha, outcome_type=outcome_type)

    def plot(self, kind: str = "balance", variable: str | None = None, ax=None, **kwargs):
        """``kind="balance"`` (love plot), ``"overlap"``, ``"ecdf"`` or ``"qq"`` (the last two need ``variable``)."""
        if kind == "balance":
            return self.plot_balance(ax=ax, **kwargs)
        if kind == "overlap":
            return self.plot_overlap(ax=ax, **kwargs)
        if kind == "ecdf":
            return _bal.ecdf_plot(self, variable or "distance", ax=ax)
        if kind == "qq":
            return _bal.qq_plot(self, variable or "distance", ax=ax, **kwargs)
        raise ValueError(f"kind must be balance/overlap/ecdf/qq, not {kind!r}")

    def plot_balance(self, ax=None, threshold: float = _bal.SMD_THRESHOLD, *, absolute: bool = True,
                     squares: bool = False, interactions: bool = False, labels: dict | None = None):
        """Love plot: (absolute) SMD before and after for each covariate, with threshold line(s); ``labels`` maps
        variable names to the names shown (default: the variable names)."""
        return _bal.love_plot(self, ax=ax, absolute=absolute, threshold=threshold, squares=squares,
                              interactions=interactions, labels=labels)

    def plot_ecdf(self, variable: str, ax=None):
        """Weighted eCDFs of ``variable`` by group before and after matching."""
        return _bal.ecdf_plot(self, variable, ax=ax)

    def plot_qq(self, variable: str, ax=None):
        """Weighted QQ plot (control vs treated quantiles) of ``variable`` before and after matching."""
        return _bal.qq_plot(self, variable, ax=ax)

    def plot_overlap(self, ax=None, bins: int = 30):
        """Distribution of the distance (propensity score) by group, before and after matching; the shaded band
        is the common support (overlap of the two groups' ranges)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        t = self.data[self.treatment].to_numpy()
        d = self.distance.to_numpy()
        w = self.weights.to_numpy(dtype=float)
        edges = np.histogram_bin_edges(d[np.isfinite(d)], bins=bins)
        ax.hist(d[t == 0], bins=edges, density=True, alpha=0.35, color="tab:blue", label="Control (all)")
        ax.hist(d[t == 0], bins=edges, weights=w[t == 0], density=True, histtype="step", color="tab:blue",
                lw=1.5, label="Control (matched)")
        ax.hist(d[t == 1], bins=edges, density=True, alpha=0.35, color="tab:orange", label="Treated")
        lo, hi = max(d[t == 1].min(), d[t == 0].min()), min(d[t == 1].max(), d[t == 0].max())
        ax.axvspan(lo, hi, color="grey", alpha=0.08, label="Common support")
        ax.set_xlabel("Propensity score" if getattr(self, "link", "logit") == "logit" else "Distance")
        ax.set_ylabel("Density")
        ax.legend(frameon=False, fontsize=8)
        return ax

    def summary(self) -> pd.DataFrame:
        """Compact balance table (fits 100 columns): SMD before/after, variance ratio and eCDF max after, and
        whether the covariate meets both thresholds. The full table is :meth:`balance`; sample sizes are
        :meth:`sample_sizes` (also in ``.attrs``)."""
        b = self.balance()
        out = b[["smd_before", "smd_after", "var_ratio_after", "ecdf_max_after"]].round(3)
        out.columns = ["smd_before", "smd_after", "vr_after", "ecdf_max"]
        out["balanced"] = b["smd_balanced"] & b["var_ratio_balanced"].fillna(True)
        out.attrs = dict(b.attrs)
        return out

    def to_dict(self) -> dict:
        """Method, estimand, sample sizes and balance as plain data (no person-level values)."""
        return {"method": self.method, "estimand": self.estimand, "covariates": list(self.covariates),
                "sample_sizes": self.sample_sizes().to_dict(), "balance": self.summary().to_dict(orient="index")}


class MatchedDesign(_Design):
    """Result of :func:`evaluation.matching.match`.

    Attributes: ``distance`` (all rows; NaN for covariate distances), ``weights`` and ``subclass`` (all rows),
    ``matched`` (matched rows + ``weight``, ``subclass``), ``match_matrix`` (treated index -> matched control
    indices, MatchIt's match.matrix; empty for subclass-based methods), ``discarded``.
    """

    def __init__(self, data, treatment, covariates, distance, weights, subclass, match_matrix, discarded,
                 replace, link, caliper, model, *, method_name: str = "nearest", estimand: str = "ATT",
                 distance_name: str = "glm", ratio: int = 1):
        self.data, self.treatment, self.covariates = data, treatment, list(covariates)
        self.distance, self.weights, self.subclass = distance, weights, subclass
        self.match_matrix, self.discarded, self.replace, self.link = match_matrix, discarded, replace, link
        self.caliper, self.model = caliper, model
        self.method_name, self.estimand, self.distance_name, self.ratio = method_name, estimand, distance_name, ratio
        self.se_type = "HC3" if replace or method_name == "subclass" else "cluster"
        self.method = {"nearest": "Nearest-neighbour matching" + (" with replacement" if replace else ""),
                       "optimal": "Optimal pair matching", "full": "Optimal full matching",
                       "exact": "Exact matching", "cem": "Coarsened exact matching",
                       "subclass": "Subclassification"}[method_name]

    def __repr__(self) -> str:
        t = self.data[self.treatment].to_numpy() == 1
        w = self.weights.to_numpy() > 0
        extra = f" {self.ratio}:1" if self.method_name in ("nearest", "optimal") else ""
        return (f"<MatchedDesign {self.method_name}{extra} on {self.distance_name}, {self.estimand}: "
                f"{int((w & t).sum())} of {int(t.sum())} treated and {int((w & ~t).sum())} of {int((~t).sum())} "
                f"controls matched>")

    @property
    def matched(self) -> pd.DataFrame:
        keep = self.weights.to_numpy() > 0
        md = self.data.loc[keep].copy()
        md["weight"] = self.weights.to_numpy()[keep]
        if not (self.replace and self.method_name == "nearest"):
            md["subclass"] = self.subclass.loc[keep].astype("int64").to_numpy()
        return md

    @property
    def unmatched(self) -> pd.DataFrame:
        """Rows not in the matched sample with a reason (``discarded`` or ``not matched``)."""
        keep = self.weights.to_numpy() > 0
        out = self.data.loc[~keep].copy()
        out["exclusion_reason"] = np.where(self.discarded.to_numpy()[~keep], "no units of the other group in "
                                           "its exact stratum, or outside the common support", "not matched")
        return out

    def pairs(self) -> pd.DataFrame:
        """1:1 matched pairs (treated index, control index) for sensitivity analysis (first control of each)."""
        mm = self.match_matrix
        rows = [(t, c[0]) for t, c in mm.items() if len(c)]
        return pd.DataFrame(rows, columns=["treated", "control"])


class WeightedDesign(_Design):
    """Inverse probability of treatment weighting for the ATT: treated weight 1, control weight ps/(1-ps),
    controls rescaled to sum to their number. SE: HC3 (ignores estimation of the propensity score, which is
    conservative for the ATT)."""

    def __init__(self, data, treatment, covariates, distance, weights, link, model):
        self.data, self.treatment, self.covariates = data, treatment, list(covariates)
        self.distance, self.weights, self.link, self.model = distance, weights, link, model
        self.discarded = pd.Series(False, index=data.index)
        self.se_type = "HC3"
        self.method = "Inverse probability (ATT odds) weighting"
        self.estimand = "ATT"

    def __repr__(self) -> str:
        t = self.data[self.treatment].to_numpy() == 1
        return f"<WeightedDesign ATT odds weights: {int(t.sum())} treated, {int((~t).sum())} controls>"

    @property
    def matched(self) -> pd.DataFrame:
        md = self.data.copy()
        md["weight"] = self.weights.to_numpy()
        return md


def weight(data: pd.DataFrame, treatment: str, covariates: str | Sequence[str]) -> WeightedDesign:
    """ATT odds weighting design with the same balance / effect interface as :func:`match`.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per person, unique index.
    treatment : str
        0/1 treatment column.
    covariates : str or list of str
        Propensity-model covariates (a single name is one column).

    Returns
    -------
    WeightedDesign
        Treated weight 1; control weight ps / (1 - ps), rescaled to sum to the number of controls.

    Raises
    ------
    MatchingError
        As :func:`evaluation.matching.fit_propensity`.

    Examples
    --------
    >>> w = weight(lalonde, "treat", ["age", "educ", "re74"])  # doctest: +SKIP
    >>> w.effect("re78")  # doctest: +SKIP
    """
    covariates = covariate_list(covariates)
    ps, res = fit_propensity(data, treatment, covariates, link="logit")
    t = data[treatment].to_numpy()
    p = ps.to_numpy()
    w = np.where(t == 1, 1.0, p / (1 - p))
    w[t == 0] *= (t == 0).sum() / w[t == 0].sum()
    return WeightedDesign(data, treatment, covariates, ps, pd.Series(w, index=data.index, name="weight"),
                          "logit", res)
