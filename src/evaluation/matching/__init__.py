"""Matching that reproduces R MatchIt 4.7.2, with balance as cobalt shows it and effects as MatchIt's vignette.

``match(data, "treat", covariates, method=..., distance=..., estimand=...)`` checks its arguments and dispatches
to one module per method (:mod:`.nearest`, :mod:`.exact`, :mod:`.subclass`), distance (:mod:`.distance`),
balance (:mod:`.balance`) and effect (:mod:`.effect`); it returns a :class:`MatchedDesign` with
``balance()``, ``summary()``, ``plot()`` and ``effect(outcome, adjust=...)``. ``weight(data, "treat",
covariates)`` is the inverse-probability (ATT odds) weighting alternative with the same interface.

Warm-up: ``python -m evaluation.matching --warm`` compiles (and caches on disk) the numba kernels, so a fresh
environment's first ``match()`` does not wait for the compiler; ``make venv`` runs it.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from ._inputs import MatchingError, check_inputs, covariate_list
from ._weights import normalize, weights_from_subclass
from .design import MatchedDesign, WeightedDesign, weight
from .distance import COVARIATE_DISTANCES, fit_propensity
from .effect import Effect, adjusted_effect, headline_effect
from .effect import effect as _effect  # noqa: F401 - used by evaluation.estimates (days to first reoffence)

# Public name: it is raised from the submodules but documented (and pickled) as evaluation.matching.MatchingError.
MatchingError.__module__ = __name__

__all__ = ["match", "weight", "MatchedDesign", "WeightedDesign", "Effect", "fit_propensity", "MatchingError",
           "adjusted_effect", "headline_effect", "METHODS", "ESTIMANDS"]

METHODS = ("nearest", "exact", "subclass")
ESTIMANDS = {"nearest": ("ATT", "ATC"), "exact": ("ATT", "ATC", "ATE"), "subclass": ("ATT", "ATC", "ATE")}


def _discard(d, tt, how):
    """MatchIt's ``discard``: units outside the other group's range of the distance (common support)."""
    out = np.zeros(len(d), dtype=bool)
    if how == "none":
        return out
    lo1, hi1, lo0, hi0 = d[tt == 1].min(), d[tt == 1].max(), d[tt == 0].min(), d[tt == 0].max()
    if how in ("both", "control"):
        out |= (tt == 0) & ((d < lo1) | (d > hi1))
    if how in ("both", "treated"):
        out |= (tt == 1) & ((d < lo0) | (d > hi0))
    return out


def match(data: pd.DataFrame, treatment: str, covariates: str | Sequence[str], *, method: str = "nearest",
          distance="glm", estimand: str = "ATT", ratio: int = 1, replace: bool = False,
          caliper: float | None = None, std_caliper: bool = True, link: str = "logit", order: str | None = None,
          exact: str | Sequence[str] | None = None, discard: str = "none", subclass: int = 6, min_n: int = 1,
          random_state=None) -> MatchedDesign:
    """Match treated and control units as MatchIt 4.7.2 ``matchit()``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit with a unique index; numeric, boolean or categorical covariates (categorical ones
        become one dummy per level, the first left out of models).
    treatment : str
        0/1 treatment column.
    covariates : str or list of str
        Covariates (a single name is one column). They define the propensity model and the balance table.
    method : {"nearest", "exact", "subclass"}
        Greedy nearest neighbour (:mod:`.nearest`), exact matching on all covariates (:mod:`.exact`) or
        subclassification on the distance (:mod:`.subclass`).
    distance : "glm" or array-like
        ``"glm"``: logistic propensity score fitted as R's glm (:func:`fit_propensity`); or a score vector
        aligned with ``data`` (e.g. from another model).
    estimand : {"ATT", "ATC", "ATE"}
        Target population; nearest neighbour allows ATT and ATC (as MatchIt).
    ratio : int
        Controls per treated unit (nearest; focal units for the ATC).
    replace : bool
        Nearest neighbour with replacement (SE: HC3).
    caliper : float, optional
        Largest distance between matched units, in SDs of the distance when ``std_caliper`` (default).
    link : {"logit", "linear.logit"}
        Propensity score or its linear predictor as the distance.
    order : {"largest", "smallest", "data", "random"}, optional
        Order in which focal units are matched (nearest); MatchIt's default: largest distance first for the ATT,
        smallest first for the ATC.
    exact : str or list of str, optional
        Match only within strata of these columns (nearest).
    discard : {"none", "both", "control", "treated"}
        Drop units outside the common support of the distance before matching (MatchIt's ``discard``).
    subclass : int
        Number of subclasses (method="subclass").
    min_n : int
        Smallest number of each group per subclass (method="subclass").
    random_state : int or numpy Generator, optional
        Seed for ``order="random"``.

    Returns
    -------
    MatchedDesign
        Distance, matching weights (MatchIt's, normalised per group), subclasses, match matrix; ``balance()``,
        ``summary()``, ``plot()``, ``effect()``.

    Raises
    ------
    MatchingError
        Bad arguments (naming the argument), bad data (naming the column and rows), no overlap, too few controls.

    Examples
    --------
    >>> from evaluation.matching import match
    >>> d = match(lalonde, "treat", ["age", "educ", "race", "married", "nodegree", "re74", "re75"])  # doctest: +SKIP
    >>> d  # doctest: +SKIP
    <MatchedDesign nearest 1:1 on glm, ATT: 185 of 185 treated and 185 of 429 controls matched>
    >>> d.effect("re78", adjust=True).estimate  # doctest: +SKIP
    """
    covariates = covariate_list(covariates)
    tt = check_inputs(data, treatment, covariates)
    if method not in METHODS:
        raise MatchingError(f"method must be one of {list(METHODS)}, not {method!r} (optimal and full matching "
                            "are not implemented yet)")
    if estimand not in ("ATT", "ATC", "ATE"):
        raise MatchingError(f"estimand must be ATT, ATC or ATE, not {estimand!r}")
    if estimand not in ESTIMANDS[method]:
        raise MatchingError(f"method={method!r} allows estimand {list(ESTIMANDS[method])}, not {estimand!r} "
                            "(as MatchIt)")
    if not (isinstance(ratio, (int, np.integer)) and ratio >= 1):
        raise MatchingError(f"ratio must be a positive integer, not {ratio!r}")
    if order is None:
        order = "smallest" if estimand == "ATC" else "largest"  # MatchIt's defaults
    if order not in ("largest", "smallest", "data", "random"):
        raise MatchingError(f"order must be largest/smallest/data/random, not {order!r}")
    if caliper is not None and not (caliper > 0):
        raise MatchingError(f"caliper must be positive, not {caliper!r}")
    if discard not in ("none", "both", "control", "treated"):
        raise MatchingError(f"discard must be none/both/control/treated, not {discard!r}")
    index = data.index
    model = None
    if method == "exact":
        dist_s = pd.Series(np.nan, index=index, name="distance")
        dname = "covariates"
    elif distance is None or isinstance(distance, str):
        distance = "glm" if distance is None else distance
        if distance in COVARIATE_DISTANCES:
            raise MatchingError(f"distance={distance!r} is not implemented yet; use 'glm' or a score vector")
        if distance != "glm":
            raise MatchingError(f"distance must be 'glm' or a score vector, not {distance!r}")
        dist_s, model = fit_propensity(data, treatment, covariates, link=link, _tt=tt)
        dname = "glm" if link == "logit" else "glm (linear)"
    else:
        arr = np.asarray(distance, dtype=float)
        if arr.shape != (len(data),) or not np.all(np.isfinite(arr)):
            raise MatchingError(f"distance vector must have one finite value per row ({len(data)}), got shape "
                                f"{arr.shape}")
        dist_s = pd.Series(arr, index=index, name="distance")
        dname = "given scores"
    d = dist_s.to_numpy()
    disc = _discard(d, tt, discard) if method != "exact" else np.zeros(len(d), dtype=bool)
    mmat: dict = {}
    cal = np.inf
    if method == "nearest":
        from .nearest import nearest_on_distance

        focal = tt if estimand == "ATT" else (1 - tt).astype(np.int8)
        w, sub, mm_pos, disc, cal = nearest_on_distance(
            data, focal, d, ratio=ratio, replace=replace, caliper=caliper, std_caliper=std_caliper, order=order,
            exact=exact, random_state=random_state, discarded=disc, short_ok=estimand == "ATC")
        mmat = {index[i]: [index[j] for j in js] for i, js in mm_pos.items()}
        sub = np.asarray(sub, dtype=float)
    else:
        if method == "exact":
            from .exact import exact_subclasses

            codes = exact_subclasses(data, tt, covariates)
            disc = codes < 0
        else:
            from .subclass import subclass_codes

            codes, _ = subclass_codes(d, tt, disc, subclass=subclass, estimand=estimand, min_n=min_n)
        w = weights_from_subclass(codes, tt, estimand)
        sub = np.where(codes >= 0, codes + 1, np.nan).astype(float)
        replace = False
    return MatchedDesign(data, treatment, covariates, dist_s, pd.Series(w, index=index, name="weight"),
                         pd.Series(sub, index=index, name="subclass"), mmat,
                         pd.Series(disc, index=index, name="discarded"), replace, link, cal, model,
                         method_name=method, estimand=estimand, distance_name=dname, ratio=int(ratio))


# sensitivity and power helpers live in their own modules; re-exported here for notebooks
from ..power import design_power, minimum_detectable_difference, number_needed  # noqa: E402
from ..sensitivity import e_value, rosenbaum_binary, rosenbaum_bounds  # noqa: E402

__all__ += ["rosenbaum_binary", "rosenbaum_bounds", "e_value", "design_power", "minimum_detectable_difference",
            "number_needed"]
_ = (normalize, warnings)
