"""Greedy nearest-neighbour matching on a scalar distance, as MatchIt 4.7.2 ``matchit(method = "nearest")``.

Conventions (MatchIt 4.7.2; checked against its fixtures in ``tests/results/matchit/``)
- order: focal units (treated for the ATT, controls for the ATC) are matched in decreasing (``"largest"``),
  increasing (``"smallest"``), data (``"data"``) or random (``"random"``, seeded by ``random_state``; not
  reproducible across languages) order of the distance; ties keep data order. With ``ratio > 1`` and no
  replacement every focal unit gets its first match before any gets a second. With replacement the order is the
  data order.
- caliper: in standard deviations (``ddof=1``) of the distance over all non-discarded units when
  ``std_caliper`` (else in distance units). Focal units with no match within the caliper are unmatched.
- exact: units are only matched within strata of the ``exact`` columns; strata without both groups are
  discarded (and counted).
- weights: focal 1; matches get 1/(number of matches of their focal unit) (summed with replacement), then each
  group is rescaled so its non-zero weights sum to its number of matched units.
- subclass: the k-th matched focal unit in data order and its matches form subclass ``k``.

The matching kernel is :mod:`evaluation.matching._nn` (numba; a port of MatchIt's C++ with the same
tie-breaking), compiled ahead of time where it can be (:mod:`._kernels`).
"""
from __future__ import annotations

import warnings

import numpy as np

from ._inputs import MatchingError
from ._kernels import kernels

__all__ = ["nearest_on_distance", "nearest_general"]


def nearest_on_distance(data, tt, d, *, ratio=1, replace=False, caliper=None, std_caliper=True,
                        order="largest", exact=None, random_state=None, discarded=None, short_ok=False):
    """Match focal units (``tt == 1``) to others (``tt == 0``) on the scalar distance ``d``.

    Returns (weights, subclass, match matrix as {focal position: [positions]}, discarded, caliper in distance
    units). ``discarded`` (bool array) marks units removed beforehand (``discard=``); exact strata without both
    groups add to it.
    """
    n = len(d)
    pre = np.zeros(n, dtype=bool) if discarded is None else np.asarray(discarded, dtype=bool)
    n = len(d)
    # exact strata and discarding
    if exact is not None:
        ex_cols = [exact] if isinstance(exact, str) else list(exact)
        miss = [c for c in ex_cols if c not in data.columns]
        if miss:
            raise MatchingError(f"exact: no column(s) {miss} in data")
        codes = data.groupby(ex_cols, sort=True, observed=True, dropna=False).ngroup().to_numpy()
        has1 = np.bincount(codes[tt == 1], minlength=codes.max() + 1) > 0
        has0 = np.bincount(codes[tt == 0], minlength=codes.max() + 1) > 0
        discarded = ~(has1 & has0)[codes] | pre
        if discarded[tt == 1].all():  # noqa: SIM102
            raise MatchingError(f"exact={ex_cols}: no stratum has both treated and control units")
    else:
        codes = None  # one stratum
        discarded = pre.copy()
    n1 = int((tt == 1).sum())
    n0 = n - n1
    if not replace:
        if n0 < ratio * n1 and short_ok:
            warnings.warn(f"fewer units to match ({n0}) than ratio x focal units ({ratio} x {n1}); not all focal "
                          "units will get a match (as MatchIt)", stacklevel=3)
        elif n0 < ratio * n1:
            raise MatchingError(f"fewer controls ({n0}) than ratio x treated ({ratio} x {n1} = {ratio * n1}); "
                                "lower ratio, use replace=True or enlarge the comparison pool")
        if exact is not None:
            c1 = np.bincount(codes[tt == 1], minlength=codes.max() + 1)
            c0 = np.bincount(codes[tt == 0], minlength=codes.max() + 1)
            short = (c1 > 0) & (c0 > 0) & (c0 < ratio * c1)
            if short.any():
                warnings.warn(f"exact={ex_cols}: {int(short.sum())} stratum/strata have fewer controls than "
                              f"ratio x treated; not all treated units will get {ratio} match(es)", stacklevel=2)
    cal = np.inf
    if caliper is not None:
        kept = d[~discarded] if discarded.any() else d  # (no copy of millions of scores when none is discarded)
        cal = caliper * (np.std(kept, ddof=1) if std_caliper else 1.0)
    # sorted positions (R's stable order() over all units) of the treated, and the controls in sorted order: one
    # radix sort of the doubles, stable by construction (see _nn.sort_split)
    d64 = np.ascontiguousarray(d, dtype=np.float64)
    K = kernels()
    t_rank, c_idx, c_rank, c_dist = K.sort_split(d64, np.ascontiguousarray(tt, dtype=np.int8),
                                               np.ascontiguousarray(discarded, dtype=np.bool_))
    t_idx = np.flatnonzero(tt == 1)
    # controls grouped by stratum, sorted by position (c_idx is already in position order)
    if exact is not None:
        _, seg_code = np.unique(codes, return_inverse=True)
        seg_code = seg_code.astype(np.int64)
        if seg_code.max() > 0:
            perm = np.argsort(seg_code[c_idx], kind="stable")
            c_idx, c_rank, c_dist = c_idx[perm], c_rank[perm], c_dist[perm]
        n_seg = int(seg_code.max()) + 1
        seg_off = np.zeros(n_seg + 1, dtype=np.int64)
        np.cumsum(np.bincount(seg_code[c_idx], minlength=n_seg), out=seg_off[1:])
        t_seg = np.where(discarded[t_idx], -1, seg_code[t_idx]).astype(np.int64)
    else:
        seg_off = np.array([0, len(c_idx)], dtype=np.int64)
        t_seg = np.where(discarded[t_idx], -1, 0).astype(np.int64)
    td = d[t_idx]
    if replace:
        mord = np.flatnonzero(t_seg >= 0)  # MatchIt sets m.order = "data" with unlimited reuse
    elif order == "largest":
        mord = np.argsort(-td, kind="stable")
    elif order == "smallest":
        mord = np.argsort(td, kind="stable")
    elif order == "data":
        mord = np.flatnonzero(t_seg >= 0)
    else:
        rng = np.random.default_rng(random_state)
        mord = rng.permutation(np.flatnonzero(t_seg >= 0))
    mm = K.nn_match(t_rank, td.astype(np.float64), t_seg, mord.astype(np.int64), int(ratio), bool(replace),
                  float(cal), seg_off, c_rank, c_dist)
    matched_t = mm[:, 0] >= 0
    if not matched_t.any():
        raise MatchingError("no treated unit found a control" + (f" within the caliper ({caliper} "
                            f"{'SD' if std_caliper else 'distance units'})" if caliper is not None else ""))
    mm_pos = np.where(mm >= 0, c_idx[np.maximum(mm, 0)], -1)
    w, subclass, mmat = _weights_from_mm(n, tt, t_idx, mm_pos, replace)
    return w, subclass, mmat, discarded, cal


def _weights_from_mm(n, tt, t_idx, mm_pos, replace):
    """Weights, subclasses and the match matrix from matched positions (MatchIt's mm2subclass /
    get_weights_from_subclass / get_weights_from_mm). ``mm_pos``: focal x ratio positions over all units, -1
    where unmatched."""
    valid = mm_pos >= 0
    matched_t = valid.any(axis=1)
    w = np.zeros(n)
    subclass = np.full(n, np.nan)
    n_ctrl = valid.sum(axis=1)
    rows, cols = np.nonzero(valid)
    if not replace:
        sub_of_t = np.cumsum(matched_t)  # k-th matched focal unit in data order -> subclass k
        subclass[t_idx[matched_t]] = sub_of_t[matched_t]
        subclass[mm_pos[rows, cols]] = sub_of_t[rows]
        w[t_idx[matched_t]] = 1.0
        w[mm_pos[rows, cols]] = 1.0 / n_ctrl[rows]
    else:
        np.add.at(w, mm_pos[rows, cols], 1.0 / n_ctrl[rows])
        w[t_idx[matched_t]] += 1.0
    # each group's matched units rescaled to sum to their number (the sums in index order, as over a mask)
    for pos in (np.unique(mm_pos[rows, cols]), np.unique(t_idx[matched_t])):
        wg = w[pos]
        w[pos] = wg * len(pos) / wg.sum()
    mmat = {t: [j for j in js if j >= 0] for t, js in zip(t_idx.tolist(), mm_pos.tolist())}  # Python ints
    return w, subclass, mmat


def _affine(x, y, tol=1e-9):
    """MatchIt's get_affine_transformation: a with y = a x + b (to ``tol``), else 0."""
    if len(x) < 2:
        return 0.0
    xd, yd = x - x.mean(), y - y.mean()
    num, den = float(np.sum(xd * yd)), float(np.sum(xd * xd))
    if abs(den) < tol or abs(num) < tol:
        return 0.0
    a = num / den
    b = y.mean() - a * x.mean()
    return a if np.all(np.abs(a * x + b - y) <= tol) else 0.0


def _codes(data, cols):
    return data.groupby(list(cols), sort=True, observed=True, dropna=False).ngroup().to_numpy().astype(np.int64)


def nearest_general(data, tt, d, *, mah=None, ratio=1, replace=False, caliper_dist=None, caliper_covs=None,
                    order=None, exact=None, antiexact=None, random_state=None, discarded=None):
    """Nearest-neighbour matching as MatchIt's ``matchit2nearest`` with covariate distances (``mah``: transformed
    covariates, from :func:`.distance.scaled_covariates`; with ``d`` given too this is ``mahvars``), ``antiexact``
    and calipers on covariates (``caliper_covs``: {column: width in the column's units}).

    Parameters
    ----------
    data : pandas.DataFrame
    tt : numpy.ndarray
        1 for the focal group (treated for the ATT), 0 for the other.
    d : numpy.ndarray or None
        Propensity score (the scanned distance without ``mah``; the caliper and matching order with it).
    mah : numpy.ndarray or None
        n x k transformed covariates (squared Euclidean distances between rows are matched on).
    caliper_dist : float or None
        Caliper on ``d`` in its units.
    order : {"largest", "smallest", "data", "random"} or None
        Matching order; MatchIt's default: "data" without a score, else "largest".

    Returns
    -------
    (weights, subclass, match matrix {focal position: [positions]}, discarded, caliper)
    """
    from ._nn_general import nn_general

    n = len(tt)
    disc = np.zeros(n, dtype=bool) if discarded is None else np.asarray(discarded, dtype=bool).copy()
    n1 = int((tt == 1).sum())
    reuse_max = np.iinfo(np.int32).max if replace else 1
    if d is None and order not in (None, "data", "random"):
        raise MatchingError(f"order={order!r} needs a propensity score; with a covariate distance use 'data' or "
                            "'random' (as MatchIt)")
    if order is None:
        order = "data" if d is None else "largest"
    if reuse_max >= n1:
        order = "data"
    # covariate calipers (raw units)
    cc_names = list(caliper_covs or {})
    cc = np.array([float(caliper_covs[c]) for c in cc_names], dtype=float)
    cc_mat = (np.column_stack([data[c].to_numpy(dtype=float) for c in cc_names]) if cc_names
              else np.zeros((n, 0)))
    ae = (np.column_stack([_codes(data, [c]) for c in antiexact]) if antiexact else np.zeros((n, 0), dtype=np.int64))
    ex = _codes(data, exact) if exact else None
    if ex is not None:
        both = np.intersect1d(ex[tt == 1], ex[tt == 0])
        if both.size == 0:
            raise MatchingError(f"exact={list(exact)}: no stratum has both treated and control units")
        disc |= ~np.isin(ex, both)
    if not replace:
        n0 = int((tt == 0).sum())
        if n0 < n1:
            warnings.warn("fewer control units than treated units; not all treated units will get a match",
                          stacklevel=3)
        elif n0 < ratio * n1:
            warnings.warn(f"not all treated units will get {ratio} matches", stacklevel=3)
    # one covariate and no score: MatchIt matches on it as a scalar distance
    if mah is not None and d is None and caliper_dist is None and mah.shape[1] == 1:
        d, mah = mah[:, 0].copy(), None
    use_mah = mah is not None
    dist = np.zeros(n) if d is None else np.asarray(d, dtype=float)
    cal = np.inf if caliper_dist is None else float(caliper_dist)
    cc_work = cc.copy()
    cc_mat_work = cc_mat.copy()
    if use_mah:
        sort_var, mv_cal = mah[:, 0], np.inf
        found = False
        for mci in range(mah.shape[1]):  # a caliper on a covariate that is a scanned column bounds the scan
            for cci in range(len(cc_names)):
                if cc_work[cci] < 0:
                    continue
                a = _affine(cc_mat_work[:, cci], mah[:, mci])
                if abs(a) > 1e-10:
                    cc_mat_work[:, cci] = mah[:, mci]
                    cc_work[cci] *= a
                    sort_var, mv_cal = mah[:, mci], cc_work[cci]
                    found = True
                    break
            if found:
                break
    else:
        sort_var, mv_cal = dist, np.inf
        for cci in range(len(cc_names)):  # a caliper on a covariate that is the distance itself
            a = _affine(cc_mat_work[:, cci], dist)
            if abs(a) > 1e-10 and (caliper_dist is None or cal > a * cc_work[cci]):
                cal = a * cc_work[cci]
    focal_idx = np.flatnonzero(tt == 1)
    t_idx = focal_idx

    def _ord(sub_tt, sub_d, sub_disc):
        df = sub_d[sub_tt == 1]
        if order == "largest":
            return np.argsort(-df, kind="stable")
        if order == "smallest":
            return np.argsort(df, kind="stable")
        if order == "data":
            return np.flatnonzero(~sub_disc[sub_tt == 1])
        rng = np.random.default_rng(random_state)
        return rng.permutation(np.flatnonzero(~sub_disc[sub_tt == 1]))

    def _run(sel):
        stt = tt[sel].astype(np.int64)
        sd = dist[sel]
        sdisc = disc[sel]
        sv = (mah[sel] if use_mah else np.zeros((len(sel), 1)))
        svar = sort_var[sel]
        return nn_general(stt, _ord(stt, sd, sdisc).astype(np.int64), int(ratio), int(reuse_max), sdisc,
                          np.ascontiguousarray(svar), np.ascontiguousarray(sd), use_mah, np.ascontiguousarray(sv),
                          float(mv_cal), caliper_dist is not None and use_mah, float(cal),
                          ex is not None and not use_mah, (ex[sel] if ex is not None else np.zeros(len(sel),
                                                                                                     np.int64)),
                          ae.shape[1], np.ascontiguousarray(ae[sel]), len(cc_names),
                          np.ascontiguousarray(cc_mat_work[sel]), cc_work)

    mm_pos = np.full((n1, int(ratio)), -1, dtype=np.int64)
    if ex is not None and use_mah:
        # MatchIt matches each exact stratum on its own (which also decides ties among equally distant controls)
        focal_pos = np.full(n, -1, dtype=np.int64)
        focal_pos[focal_idx] = np.arange(n1)
        for e in np.unique(ex[~disc]):
            sel = np.flatnonzero(ex == e)
            sub = _run(sel)
            rows = focal_pos[sel[tt[sel] == 1]]
            mm_pos[rows] = np.where(sub >= 0, sel[np.maximum(sub, 0)], -1)
    else:
        mm_pos = _run(np.arange(n))
    if not (mm_pos[:, 0] >= 0).any():
        raise MatchingError("no focal unit found a match (calipers, exact or antiexact too strict)")
    w, subclass, mmat = _weights_from_mm(n, tt, t_idx, mm_pos, replace)
    return w, subclass, mmat, disc, cal
