"""Matching that reproduces R MatchIt 4.7.2, with balance as cobalt shows it and effects as MatchIt's vignette.

``match(data, "treat", covariates, method=..., distance=..., estimand=...)`` checks its arguments and dispatches
to one module per method (:mod:`.nearest`, :mod:`.exact`, :mod:`.subclass`), distance (:mod:`.distance`),
balance (:mod:`.balance`) and effect (:mod:`.effect`); it returns a :class:`MatchedDesign` with
``balance()``, ``summary()``, ``plot()`` and ``effect(outcome, adjust=...)``. ``weight(data, "treat",
covariates)`` is the inverse-probability (ATT odds) weighting alternative with the same interface.

Warm-up: ``python -m evaluation.matching --warm`` compiles (and caches on disk) the numba kernels and builds the
ahead-of-time module of the default path's kernels (:mod:`._kernels`), so a fresh environment's first ``match()``
does not wait for the compiler, and a fresh process's first nearest-neighbour match on a propensity score or a
given distance does not load numba at all (covariate distances, ``mahvars``, ``antiexact`` and covariate
calipers still do); ``make`` runs it.
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

METHODS = ("nearest", "exact", "subclass", "cem", "optimal", "full")
ESTIMANDS = {"nearest": ("ATT", "ATC"), "exact": ("ATT", "ATC", "ATE"), "subclass": ("ATT", "ATC", "ATE"),
             "cem": ("ATT", "ATC", "ATE"), "optimal": ("ATT", "ATC"), "full": ("ATT", "ATC", "ATE")}


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


def _labelled(mm_pos: dict, index: pd.Index) -> dict:
    """The match matrix with index labels instead of row positions (as it is when the index is 0..n-1)."""
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return mm_pos  # labels are the positions (Python ints): no second dict of ten thousand lists
    return {index[i]: [index[j] for j in js] for i, js in mm_pos.items()}


def match(data: pd.DataFrame, treatment: str, covariates: str | Sequence[str], *, method: str = "nearest",
          distance="glm", estimand: str = "ATT", ratio: int = 1, replace: bool = False,
          caliper: float | dict | None = None, std_caliper: bool | dict = True, link: str = "logit",
          order: str | None = None, exact: str | Sequence[str] | None = None, discard: str = "none",
          subclass: int = 6, min_n: int = 1, mahvars: str | Sequence[str] | None = None,
          antiexact: str | Sequence[str] | None = None, cutpoints=None, k2k: bool = False,
          k2k_method: str = "mahalanobis", random_state=None) -> MatchedDesign:
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
    method : {"nearest", "exact", "subclass", "cem", "optimal", "full"}
        Greedy nearest neighbour (:mod:`.nearest`), exact matching on all covariates (:mod:`.exact`),
        subclassification on the distance (:mod:`.subclass`), coarsened exact matching (:mod:`.cem`), optimal
        k:1 or optimal full matching (:mod:`.optimal`: exact optima by SciPy's assignment solver, where MatchIt
        calls optmatch).
    distance : "glm", "mahalanobis", "robust_mahalanobis", "euclidean", "scaled_euclidean" or array-like
        ``"glm"``: logistic propensity score fitted as R's glm (:func:`fit_propensity`); a covariate distance
        (nearest only; MatchIt's ``dist_functions.R``, see :func:`.distance.scaled_covariates`): matching on
        the covariates themselves, in data order by default; or a score vector aligned with ``data``.
    estimand : {"ATT", "ATC", "ATE"}
        Target population; nearest neighbour allows ATT and ATC (as MatchIt).
    ratio : int
        Controls per treated unit (nearest; focal units for the ATC).
    replace : bool
        Nearest neighbour with replacement (SE: HC3).
    caliper : float or dict, optional
        Largest distance between matched units, in SDs of the distance when ``std_caliper`` (default). A dict
        gives calipers per covariate, ``{"age": 5, "distance": 0.2}`` ("distance": the propensity score), each
        in SDs of the covariate (over non-discarded units) unless ``std_caliper`` says otherwise.
    std_caliper : bool or dict
        Whether calipers are in SDs; a dict per caliper name (as MatchIt's named ``std.caliper``).
    link : {"logit", "linear.logit"}
        Propensity score or its linear predictor as the distance.
    order : {"largest", "smallest", "data", "random"}, optional
        Order in which focal units are matched (nearest); MatchIt's default: largest distance first for the ATT,
        smallest first for the ATC.
    exact : str or list of str, optional
        Match only within strata of these columns (nearest).
    mahvars : str or list of str, optional
        Nearest neighbour on the Mahalanobis distance of these covariates, with the propensity score used for
        the caliper and the matching order (MatchIt's ``mahvars``).
    antiexact : str or list of str, optional
        Matched units must differ on each of these columns (MatchIt's ``antiexact``).
    discard : {"none", "both", "control", "treated"}
        Drop units outside the common support of the distance before matching (MatchIt's ``discard``).
    subclass : int
        Number of subclasses (method="subclass").
    min_n : int
        Smallest number of each group per subclass (method="subclass").
    cutpoints : None, str, int or dict
        Coarsening for method="cem" (:mod:`.cem`): Sturges bins by default; a rule or number of bins for every
        numeric covariate, or ``{column: rule}``.
    k2k : bool
        method="cem": match one control to each treated unit within the strata (MatchIt's ``k2k``), by
        nearest neighbour on ``k2k_method`` ("mahalanobis", "robust_mahalanobis", "euclidean",
        "scaled_euclidean").
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
    if not (isinstance(ratio, (int, np.integer)) and not isinstance(ratio, (bool, np.bool_)) and ratio >= 1):
        raise MatchingError(f"ratio must be a positive integer, not {ratio!r}")
    if ratio > len(data):  # (each focal unit's row of matches is allocated: 2**40 would exhaust memory)
        raise MatchingError(f"ratio={ratio} is more than the number of rows ({len(data)})")
    order_given = order
    if order is None:
        order = "smallest" if estimand == "ATC" else "largest"  # MatchIt's defaults
    if order not in ("largest", "smallest", "data", "random"):
        raise MatchingError(f"order must be largest/smallest/data/random, not {order!r}")
    mahvars = covariate_list(mahvars, "mahvars")
    antiexact = covariate_list(antiexact, "antiexact")
    cal_covs: dict = {}
    if isinstance(caliper, dict):
        cal_covs = dict(caliper)
        caliper = cal_covs.pop("distance", None)
        bad = [c for c in cal_covs if c not in data.columns]
        if bad:
            raise MatchingError(f"caliper: no column(s) {bad} in data")
        for c, v in cal_covs.items():
            if not (isinstance(v, (int, float, np.number)) and v > 0):
                raise MatchingError(f"caliper[{c!r}] must be a positive number, not {v!r}")
            if not pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c]):
                raise MatchingError(f"caliper[{c!r}]: calipers need a numeric column (as MatchIt)")
    if caliper is not None and not (caliper > 0):
        raise MatchingError(f"caliper must be positive, not {caliper!r}")
    for arg, cols in (("mahvars", mahvars), ("antiexact", antiexact)):
        miss = [c for c in cols if c not in data.columns]
        if miss:
            raise MatchingError(f"{arg}: no column(s) {miss} in data")
    cov_distance = isinstance(distance, str) and distance in COVARIATE_DISTANCES
    general = cov_distance or bool(mahvars) or bool(antiexact) or bool(cal_covs)
    if (bool(mahvars) or bool(antiexact) or bool(cal_covs)) and method != "nearest" or (
            cov_distance and method not in ("nearest", "optimal", "full")):
        raise MatchingError("covariate distances, mahvars, antiexact and covariate calipers are for "
                            f"method='nearest' (covariate distances also 'optimal' and 'full'), not {method!r}")
    if method in ("optimal", "full") and (caliper is not None or replace):
        raise MatchingError(f"method={method!r}: calipers and replacement are not supported; use method='nearest'")
    if cov_distance and mahvars:
        raise MatchingError(f"mahvars needs a propensity score distance, not distance={distance!r} (as MatchIt)")
    if cov_distance and caliper is not None:
        raise MatchingError(f"distance={distance!r}: a caliper must name a covariate, e.g. caliper={{'age': 5}} "
                            "(there is no propensity score)")
    if cov_distance and discard != "none":
        raise MatchingError(f"discard needs a propensity score, not distance={distance!r}")
    if discard not in ("none", "both", "control", "treated"):
        raise MatchingError(f"discard must be none/both/control/treated, not {discard!r}")
    index = data.index
    model = None
    if method in ("exact", "cem"):
        dist_s = pd.Series(np.nan, index=index, name="distance")
        dname = "covariates" if method == "exact" else "coarsened covariates"
    elif cov_distance:
        dist_s = pd.Series(np.nan, index=index, name="distance")
        dname = distance
    elif distance is None or isinstance(distance, str):
        distance = "glm" if distance is None else distance
        if distance != "glm":
            raise MatchingError(f"distance must be 'glm', one of {list(COVARIATE_DISTANCES)} or a score vector, "
                                f"not {distance!r}")
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
    disc = (_discard(d, tt, discard) if method not in ("exact", "cem") and not cov_distance
            else np.zeros(len(d), dtype=bool))
    mmat: dict = {}
    cal = np.inf
    if isinstance(std_caliper, dict) and not general:
        std_caliper = bool(std_caliper.get("distance", True))
    if method == "nearest" and general:
        from .distance import scaled_covariates
        from .nearest import nearest_general

        focal = tt if estimand == "ATT" else (1 - tt).astype(np.int8)
        std = std_caliper if isinstance(std_caliper, dict) else {}
        default_std = std_caliper if isinstance(std_caliper, bool) else True
        cal_raw = {c: v * (float(np.std(data.loc[~disc, c].to_numpy(dtype=float), ddof=1))
                           if std.get(c, default_std) else 1.0) for c, v in cal_covs.items()}
        cal_d = None
        if caliper is not None:
            cal_d = caliper * (float(np.std(d[~disc], ddof=1)) if std.get("distance", default_std) else 1.0)
        mah = None
        if cov_distance:
            mah = scaled_covariates(data, covariates, distance, focal, disc)
        elif mahvars:
            mah = scaled_covariates(data, mahvars, "mahalanobis", focal, disc)
        w, sub, mm_pos, disc, cal = nearest_general(
            data, focal, None if cov_distance else d, mah=mah, ratio=ratio, replace=replace, caliper_dist=cal_d,
            caliper_covs=cal_raw, order=order_given if cov_distance else order,  # no score: MatchIt's "data"
            exact=covariate_list(exact, "exact") or None,
            antiexact=antiexact or None, random_state=random_state, discarded=disc)
        mmat = _labelled(mm_pos, index)
        sub = np.asarray(sub, dtype=float)
        if mahvars:
            dname = f"{dname}; Mahalanobis on {', '.join(mahvars)}"
    elif method == "cem" and k2k:
        from .cem import cem_subclasses, k2k_match
        from .nearest import _weights_from_mm

        if estimand == "ATE":
            raise MatchingError("k2k matching allows estimand ATT or ATC, not ATE")
        focal = tt if estimand == "ATT" else (1 - tt).astype(np.int8)
        strata = cem_subclasses(data, tt, covariates, cutpoints)
        mm_f = k2k_match(data, focal, covariates, strata, k2k_method,
                         order="data" if order_given is None else order_given, random_state=random_state)
        w, sub, mm_pos = _weights_from_mm(len(tt), focal, np.flatnonzero(focal == 1), mm_f, False)
        mmat = _labelled(mm_pos, index)
        disc = strata < 0
        dname = f"coarsened strata; {k2k_method} within"
    elif method in ("optimal", "full"):
        from .distance import scaled_covariates
        from .nearest import _weights_from_mm
        from .optimal import full_matching, optimal_pairs

        focal = tt if estimand in ("ATT", "ATE") else (1 - tt).astype(np.int8)
        X = scaled_covariates(data, covariates, distance, focal, disc) if cov_distance else None
        ex_cols = covariate_list(exact, "exact")
        strata = None
        if ex_cols:
            from .exact import exact_subclasses

            strata = exact_subclasses(data, tt, ex_cols)
            disc = disc | (strata < 0)
        if method == "optimal":
            mm_f = optimal_pairs(focal, None if cov_distance else d, X, ratio=int(ratio), strata=strata,
                                 discarded=disc)
            w, sub, mm_pos = _weights_from_mm(len(tt), focal, np.flatnonzero(focal == 1), mm_f, False)
            mmat = _labelled(mm_pos, index)
        else:
            codes = full_matching(tt, None if cov_distance else d, X, strata=strata, discarded=disc)
            w = weights_from_subclass(codes, tt, estimand)
            sub = np.where(codes >= 0, codes + 1, np.nan).astype(float)
        sub = np.asarray(sub, dtype=float)
    elif method == "nearest":
        from .nearest import nearest_on_distance

        focal = tt if estimand == "ATT" else (1 - tt).astype(np.int8)
        w, sub, mm_pos, disc, cal = nearest_on_distance(
            data, focal, d, ratio=ratio, replace=replace, caliper=caliper, std_caliper=std_caliper, order=order,
            exact=exact, random_state=random_state, discarded=disc, short_ok=estimand == "ATC")
        mmat = _labelled(mm_pos, index)
        sub = np.asarray(sub, dtype=float)
    else:
        if method == "exact":
            from .exact import exact_subclasses

            codes = exact_subclasses(data, tt, covariates)
            disc = codes < 0
        elif method == "cem":
            from .cem import cem_subclasses

            codes = cem_subclasses(data, tt, covariates, cutpoints)
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
