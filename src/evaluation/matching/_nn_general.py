"""Nearest-neighbour matching with covariate distances, antiexact and covariate calipers (numba).

A literal port of MatchIt 4.7.2's ``nn_matchC_vec`` / ``nn_matchC_mahcovs`` and their ``find_control_vec`` /
``find_control_mahcovs`` (src/internal.cpp): the same scan over units sorted by one variable, alternating left
and right of the focal unit, the same filters (exact, propensity-score caliper, antiexact, covariate calipers)
and the same choice among equally distant candidates, which is what makes the matches MatchIt's. The plain
propensity-score path keeps its faster kernel (:mod:`._nn`); this one serves ``distance="mahalanobis"`` and
friends, ``mahvars``, ``antiexact`` and per-covariate calipers, and agrees with the fast kernel where both apply
(``tests/test_matching.py::test_general_kernel_equals_fast_kernel``).

All indices are 0-based positions over all units; ``treat`` is 1 for the focal group, 0 for the other.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._nn import _order_candidates


@njit(cache=True)
def _filters_ok(t, c, use_exact, exact, aenc, antiexact, ncc, cc_mat, cc):
    if use_exact and exact[t] != exact[c]:
        return False
    for k in range(aenc):
        if antiexact[t, k] == antiexact[c, k]:
            return False
    for k in range(ncc):
        diff = abs(cc_mat[t, k] - cc_mat[c, k])
        if cc[k] >= 0:
            if diff > cc[k]:
                return False
        elif diff <= -cc[k]:
            return False
    return True


@njit(cache=True)
def _in_row(c, mm_row, nrow):
    for q in range(nrow):
        if mm_row[q] == c:
            return True
    return False


@njit(cache=True)
def _find_vec(t, ind_d_ord, match_d_ord, treat, distance, eligible, r, mm_row, nrow, caliper_dist,
              use_exact, exact, aenc, antiexact, ncc, cc_mat, cc, first_c, last_c, ratio, pot_j, pot_d):
    """find_control_vec: up to ``ratio`` controls for focal unit ``t``; returns their count in pot_j."""
    ii = match_d_ord[t]
    iil = ii
    iir = ii
    min_dist = 0.0
    if r > 1 and nrow > 0:
        for q in range(nrow):
            p = match_d_ord[mm_row[q]]
            if p < iil:
                iil = p
            if p > iir:
                iir = p
        if iil == ii:
            min_dist = abs(distance[t] - distance[ind_d_ord[iir]])
        elif iir == ii:
            min_dist = abs(distance[t] - distance[ind_d_ord[iil]])
        else:
            min_dist = max(abs(distance[t] - distance[ind_d_ord[iil]]), abs(distance[t] - distance[ind_d_ord[iir]]))
    di = distance[t]
    l_stop = False
    r_stop = False
    left = False
    nl = 0
    nr = 0
    npot = 0
    while not l_stop or not r_stop:
        if l_stop:
            left = False
        elif r_stop:
            left = True
        else:
            left = not left
        if left:
            if iil <= first_c or nl == ratio:
                l_stop = True
                continue
            iil -= 1
            iz = ind_d_ord[iil]
        else:
            if iir >= last_c or nr == ratio:
                r_stop = True
                continue
            iir += 1
            iz = ind_d_ord[iir]
        if not eligible[iz] or treat[iz] != 0:
            continue
        if r > 1 and _in_row(iz, mm_row, nrow):
            continue
        dist_c = abs(di - distance[iz])
        if dist_c > caliper_dist:
            if left:
                l_stop = True
            else:
                r_stop = True
            continue
        if dist_c < min_dist:
            continue
        if npot >= ratio:
            closer = 0
            for q in range(npot):
                if pot_d[q] < dist_c:
                    closer += 1
                    if closer == ratio:
                        break
            if closer >= ratio:
                if left:
                    l_stop = True
                else:
                    r_stop = True
                continue
        if not _filters_ok(t, iz, use_exact, exact, aenc, antiexact, ncc, cc_mat, cc):
            continue
        pot_j[npot] = iz
        pot_d[npot] = dist_c
        npot += 1
        if left:
            nl += 1
            if nl == ratio:
                l_stop = True
        else:
            nr += 1
            if nr == ratio:
                r_stop = True
    if npot == 0:
        return 0
    keep = _order_candidates(pot_d, npot, ratio)
    tmp = np.empty(keep.shape[0], dtype=np.int64)
    for q in range(keep.shape[0]):
        tmp[q] = pot_j[keep[q]]
    for q in range(keep.shape[0]):
        pot_j[q] = tmp[q]
    return keep.shape[0]


@njit(cache=True)
def _find_mah(t, ind_d_ord, match_d_ord, match_var, mv_caliper, treat, distance, eligible, r, mm_row, nrow,
              mah, use_caliper_dist, caliper_dist, use_exact, exact, aenc, antiexact, ncc, cc_mat, cc, ratio,
              pm_j, pm_d):
    """find_control_mahcovs: the ``ratio`` closest controls in squared Euclidean distance on ``mah``."""
    n = ind_d_ord.shape[0]
    ii = match_d_ord[t]
    iil = ii
    iir = ii
    l_stop = False
    r_stop = False
    left = False
    size = 0
    mv_i = match_var[t]
    k = mah.shape[1]
    while not l_stop or not r_stop:
        if l_stop:
            left = False
        elif r_stop:
            left = True
        else:
            left = not left
        if left:
            if iil <= 0:
                l_stop = True
                continue
            iil -= 1
            iz = ind_d_ord[iil]
        else:
            if iir >= n - 1:
                r_stop = True
                continue
            iir += 1
            iz = ind_d_ord[iir]
        if not eligible[iz] or treat[iz] != 0:
            continue
        if r > 1 and _in_row(iz, mm_row, nrow):
            continue
        mv_dist = abs(mv_i - match_var[iz])
        if mv_caliper >= 0:
            if mv_dist > mv_caliper:
                if left:
                    l_stop = True
                else:
                    r_stop = True
                continue
        elif mv_dist <= -mv_caliper:
            continue
        mv_dist = mv_dist * mv_dist
        if size == ratio and pm_d[size - 1] < mv_dist:
            if left:
                l_stop = True
            else:
                r_stop = True
            continue
        if use_caliper_dist and abs(distance[t] - distance[iz]) > caliper_dist:
            continue
        if not _filters_ok(t, iz, use_exact, exact, aenc, antiexact, ncc, cc_mat, cc):
            continue
        dist_c = 0.0
        for q in range(k):
            tmp = mah[t, q] - mah[iz, q]
            dist_c += tmp * tmp
        if not np.isfinite(dist_c):
            continue
        if size == 0:
            pm_j[0] = iz
            pm_d[0] = dist_c
            size = 1
        elif dist_c > pm_d[size - 1]:
            if size == ratio:
                continue
            pm_j[size] = iz
            pm_d[size] = dist_c
            size += 1
        elif ratio == 1:
            pm_j[0] = iz
            pm_d[0] = dist_c
        else:
            if size == ratio:
                size -= 1
            if dist_c > pm_d[size - 1]:
                pm_j[size] = iz
                pm_d[size] = dist_c
                size += 1
            else:
                pos = 0  # std::lower_bound: first element not less than dist_c
                while pos < size and pm_d[pos] < dist_c:
                    pos += 1
                for q in range(size, pos, -1):
                    pm_j[q] = pm_j[q - 1]
                    pm_d[q] = pm_d[q - 1]
                pm_j[pos] = iz
                pm_d[pos] = dist_c
                size += 1
    return size


@njit(cache=True)
def nn_general(treat, ord_, ratio, reuse_max, discarded, sort_var, distance, use_mah, mah, mv_caliper,
               use_caliper_dist, caliper_dist, use_exact, exact, aenc, antiexact, ncc, cc_mat, cc):
    """MatchIt's nn_matchC_vec (``use_mah`` False: distance on ``distance``, sorted by it) or nn_matchC_mahcovs
    (``use_mah`` True: squared Euclidean on ``mah``, scanned in order of ``sort_var``).

    ``ord_``: focal units (indices among the focal units, 0-based) in matching order. Returns mm (nf x ratio) of
    positions over all units, -1 where unmatched.
    """
    n = treat.shape[0]
    ind_focal = np.flatnonzero(treat == 1)
    nf = ind_focal.shape[0]
    ind_d_ord = np.argsort(sort_var, kind="mergesort")  # R's order(): stable
    match_d_ord = np.empty(n, dtype=np.int64)
    for i in range(n):
        match_d_ord[ind_d_ord[i]] = i
    eligible = ~discarded
    n_elig0 = 0
    n_elig1 = 0
    for i in range(n):
        if eligible[i]:
            if treat[i] == 1:
                n_elig1 += 1
            else:
                n_elig0 += 1
    mm = np.full((nf, ratio), -1, dtype=np.int64)
    nrow = np.zeros(nf, dtype=np.int64)
    pot_j = np.empty(2 * ratio + 2, dtype=np.int64)
    pot_d = np.empty(2 * ratio + 2, dtype=np.float64)
    first_c = 0
    last_c = n - 1
    if reuse_max < nf:
        times = np.zeros(n, dtype=np.int64)
        allowed = np.full(n, reuse_max, dtype=np.int64)
        for i in range(nf):
            allowed[ind_focal[i]] = ratio
        for r in range(1, ratio + 1):
            for oi in range(ord_.shape[0]):
                if n_elig0 == 0:
                    break
                ti = ord_[oi]
                t = ind_focal[ti]
                if not eligible[t]:
                    continue
                if use_mah:
                    cnt = _find_mah(t, ind_d_ord, match_d_ord, sort_var, mv_caliper, treat, distance, eligible, r,
                                    mm[ti], nrow[ti], mah, use_caliper_dist, caliper_dist, use_exact, exact, aenc,
                                    antiexact, ncc, cc_mat, cc, 1, pot_j, pot_d)
                else:
                    # update_first_and_last_control
                    if not eligible[ind_d_ord[first_c]]:
                        for c in range(first_c + 1, last_c + 1):
                            if eligible[ind_d_ord[c]] and treat[ind_d_ord[c]] == 0:
                                first_c = c
                                break
                    if not eligible[ind_d_ord[last_c]]:
                        for c in range(last_c - 1, first_c - 1, -1):
                            if eligible[ind_d_ord[c]] and treat[ind_d_ord[c]] == 0:
                                last_c = c
                                break
                    cnt = _find_vec(t, ind_d_ord, match_d_ord, treat, distance, eligible, r, mm[ti], nrow[ti],
                                    caliper_dist, use_exact, exact, aenc, antiexact, ncc, cc_mat, cc, first_c,
                                    last_c, 1, pot_j, pot_d)
                if cnt == 0:
                    eligible[t] = False
                    n_elig1 -= 1
                    continue
                c = pot_j[0]
                mm[ti, nrow[ti]] = c
                nrow[ti] += 1
                for ck in (c, t):
                    if not eligible[ck]:
                        continue
                    times[ck] += 1
                    if times[ck] >= allowed[ck]:
                        eligible[ck] = False
                        if treat[ck] == 1:
                            n_elig1 -= 1
                        else:
                            n_elig0 -= 1
    else:
        for oi in range(ord_.shape[0]):
            ti = ord_[oi]
            t = ind_focal[ti]
            if not eligible[t]:
                continue
            if use_mah:
                cnt = _find_mah(t, ind_d_ord, match_d_ord, sort_var, mv_caliper, treat, distance, eligible, 1,
                                mm[ti], 0, mah, use_caliper_dist, caliper_dist, use_exact, exact, aenc, antiexact,
                                ncc, cc_mat, cc, ratio, pot_j, pot_d)
            else:
                cnt = _find_vec(t, ind_d_ord, match_d_ord, treat, distance, eligible, 1, mm[ti], 0, caliper_dist,
                                use_exact, exact, aenc, antiexact, ncc, cc_mat, cc, first_c, last_c, ratio, pot_j,
                                pot_d)
            for q in range(cnt):
                mm[ti, q] = pot_j[q]
    return mm


@njit(cache=True)
def rowwise_product(A, B):
    """A @ B.T with each entry summed over the inner index in order (no blocking, no fused multiply-add)."""
    n, k = A.shape
    m = B.shape[0]
    out = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            s = 0.0
            for q in range(k):
                s += A[i, q] * B[j, q]
            out[i, j] = s
    return out
