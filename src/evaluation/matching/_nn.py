"""Greedy nearest-neighbour matching on a scalar distance, reproducing R MatchIt 4.7.2 exactly.

This is a port of MatchIt 4.7.2's ``nn_matchC_vec`` / ``find_control_vec`` (src/nn_matchC_vec.cpp,
src/internal.cpp) with one change that does not alter any result: MatchIt walks outward from the treated
unit's position in the sorted distance one unit at a time (treated units, used controls and controls of
other exact strata included), which is O(treated x controls) in the worst case. Here each exact stratum keeps
its controls in sorted order with two "next unused" union-find pointers (left and right), so used controls
are skipped in amortised (near) constant time, and the *step count* of MatchIt's alternating left/right walk is
recovered from global sorted positions so that its tie-breaking (which candidate the walk meets first, and
which one ``std::partial_sort`` keeps among equal distances) is reproduced exactly.

All functions are numba-compiled; they work on integer codes and float arrays prepared by
:mod:`evaluation.matching`. The five that the default path calls (``irls_pass``, ``scores``, ``group_minmax``,
``sort_split``, ``nn_match``) are also compiled ahead of time from this same source (:mod:`._kernels`).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _find_root(parent, j):
    """Union-find root with path compression (parent[j] == j means j is a root)."""
    root = j
    while parent[root] != root:
        root = parent[root]
    while parent[j] != root:
        nxt = parent[j]
        parent[j] = root
        j = nxt
    return root


@njit(cache=True)
def _adjust_heap(idx, key, hole, length, value):
    # libstdc++ std::__adjust_heap (which ends with std::__push_heap); comparator key[a] < key[b]
    top = hole
    second = hole
    while second < (length - 1) // 2:
        second = 2 * (second + 1)
        if key[idx[second]] < key[idx[second - 1]]:
            second -= 1
        idx[hole] = idx[second]
        hole = second
    if (length & 1) == 0 and second == (length - 2) // 2:
        second = 2 * (second + 1)
        idx[hole] = idx[second - 1]
        hole = second - 1
    parent = (hole - 1) // 2
    while hole > top and key[idx[parent]] < key[value]:
        idx[hole] = idx[parent]
        hole = parent
        parent = (hole - 1) // 2
    idx[hole] = value


@njit(cache=True)
def _partial_sort(idx, key, middle):
    """libstdc++ ``std::partial_sort(idx, idx + middle, idx + len, key[a] < key[b])`` in place.

    Not stable: reproduced operation by operation because MatchIt relies on it to break ties between
    equally distant candidate controls.
    """
    n = idx.shape[0]
    # make_heap(first, middle)
    if middle >= 2:
        parent = (middle - 2) // 2
        while True:
            value = idx[parent]
            _adjust_heap(idx, key, parent, middle, value)
            if parent == 0:
                break
            parent -= 1
    # heap_select
    for i in range(middle, n):
        if key[idx[i]] < key[idx[0]]:
            value = idx[i]
            idx[i] = idx[0]
            _adjust_heap(idx, key, 0, middle, value)
    # sort_heap(first, middle)
    last = middle
    while last > 1:
        last -= 1
        value = idx[last]
        idx[last] = idx[0]
        _adjust_heap(idx, key, 0, last, value)


@njit(cache=True)
def _order_candidates(pot_dist, npot, k):
    """Indices (into the candidate list) that MatchIt keeps, in its order (find_control_vec's tail)."""
    if npot <= 1:
        return np.arange(npot)
    is_sorted = True
    for i in range(1, npot):
        if pot_dist[i] < pot_dist[i - 1]:
            is_sorted = False
            break
    if npot <= k and is_sorted:
        return np.arange(npot)
    ind = np.arange(npot)
    if npot > k:
        _partial_sort(ind, pot_dist[:npot], k)
        return ind[:k].copy()
    # std::sort on <= 16 elements is an insertion sort, i.e. stable
    return np.argsort(pot_dist[:npot], kind="mergesort")


@njit(cache=True)
def _walk(ii_l, ii_r, di, min_dist, k, caliper, seg_lo, seg_hi, jl, jr, c_rank, c_dist,
          use_uf, par_l, par_r, pot_j, pot_dist):
    """One call of MatchIt's find_control_vec for one treated unit.

    ``jl``/``jr`` are the first candidate indices (into the stratum's sorted control array) left of ``ii_l``
    and right of ``ii_r``; with ``use_uf`` the union-find arrays skip used controls. Candidates are visited
    in the order of MatchIt's alternating walk: a control at sorted position p is reached at step
    2*(ii_l - p) - 1 on the left and 2*(p - ii_r) on the right. Returns the number of potential matches
    written to pot_j / pot_dist (in the order MatchIt pushes them).
    """
    l_stop = False
    r_stop = False
    nl = 0
    nr = 0
    npot = 0
    # current candidates
    if use_uf:
        if jl >= seg_lo:
            jl = _find_root(par_l, jl + 1) - 1  # par_l is shifted by one: index j+1 holds control j
        if jr < seg_hi:
            jr = _find_root(par_r, jr)
    while True:
        if not l_stop and jl < seg_lo:
            l_stop = True
        if not r_stop and jr >= seg_hi:
            r_stop = True
        if l_stop and r_stop:
            break
        if l_stop:
            left = False
        elif r_stop:
            left = True
        else:
            tl = 2 * (ii_l - c_rank[jl]) - 1
            tr = 2 * (c_rank[jr] - ii_r)
            left = tl < tr
        j = jl if left else jr
        dc = abs(di - c_dist[j])
        # advance the cursor of this side
        if left:
            jl -= 1
            if use_uf and jl >= seg_lo:
                jl = _find_root(par_l, jl + 1) - 1
        else:
            jr += 1
            if use_uf and jr < seg_hi:
                jr = _find_root(par_r, jr)
        if dc > caliper:
            if left:
                l_stop = True
            else:
                r_stop = True
            continue
        if dc < min_dist:
            continue
        if npot >= k:
            closer = 0
            for q in range(npot):
                if pot_dist[q] < dc:
                    closer += 1
                    if closer == k:
                        break
            if closer >= k:
                if left:
                    l_stop = True
                else:
                    r_stop = True
                continue
        pot_j[npot] = j
        pot_dist[npot] = dc
        npot += 1
        if left:
            nl += 1
            if nl == k:
                l_stop = True
        else:
            nr += 1
            if nr == k:
                r_stop = True
    return npot


@njit(cache=True)
def nn_match(t_rank, t_dist, t_seg, order, ratio, replace, caliper,
             seg_off, c_rank, c_dist):
    """Greedy NN matching.

    Parameters (all numpy arrays; treated units indexed 0..n1-1 in data order)
    t_rank, t_dist: sorted position (stable order of the distance over all units) and distance of each treated
        unit; t_seg: its exact stratum (-1 when discarded).
    order: treated indices in matching order (MatchIt's ``ord``), discarded ones may be included (skipped).
    seg_off: stratum s's controls are c_rank/c_dist[seg_off[s]:seg_off[s+1]], sorted by position.
    Returns mm (n1 x ratio) of indices into the control arrays, -1 where unmatched.
    """
    n1 = t_rank.shape[0]
    nc = c_rank.shape[0]
    mm = np.full((n1, ratio), -1, dtype=np.int64)
    pot_j = np.empty(2 * ratio + 2, dtype=np.int64)
    pot_dist = np.empty(2 * ratio + 2, dtype=np.float64)
    if not replace:
        # par_r[j]: next unused control at or right of j (nc is a permanent sentinel);
        # par_l[j + 1]: next unused control at or left of j (index 0 is a permanent sentinel).
        par_r = np.arange(nc + 1)
        par_l = np.arange(nc + 1)
        eligible_t = t_seg >= 0
        n_left = nc
        nmatched = np.zeros(n1, dtype=np.int64)
        for r in range(1, ratio + 1):
            for oi in range(order.shape[0]):
                t = order[oi]
                if n_left == 0:
                    break
                if not eligible_t[t]:
                    continue
                s = t_seg[t]
                lo = seg_off[s]
                hi = seg_off[s + 1]
                ii = t_rank[t]
                di = t_dist[t]
                iil = ii
                iir = ii
                min_dist = 0.0
                if r > 1:
                    for q in range(nmatched[t]):
                        p = c_rank[mm[t, q]]
                        if p < iil:
                            iil = p
                        if p > iir:
                            iir = p
                    if iil == ii:
                        min_dist = abs(di - c_dist[_pos_to_j(c_rank, lo, hi, iir)])
                    elif iir == ii:
                        min_dist = abs(di - c_dist[_pos_to_j(c_rank, lo, hi, iil)])
                    else:
                        min_dist = max(abs(di - c_dist[_pos_to_j(c_rank, lo, hi, iil)]),
                                       abs(di - c_dist[_pos_to_j(c_rank, lo, hi, iir)]))
                jl = lo + np.searchsorted(c_rank[lo:hi], iil) - 1
                jr = lo + np.searchsorted(c_rank[lo:hi], iir, side="right")
                npot = _walk(iil, iir, di, min_dist, 1, caliper, lo, hi, jl, jr, c_rank, c_dist,
                             True, par_l, par_r, pot_j, pot_dist)
                if npot == 0:
                    if r == 1:
                        eligible_t[t] = False
                    continue
                keep = _order_candidates(pot_dist, npot, 1)
                j = pot_j[keep[0]]
                mm[t, nmatched[t]] = j
                nmatched[t] += 1
                if nmatched[t] >= ratio:
                    eligible_t[t] = False
                # remove control j
                par_r[j] = j + 1
                par_l[j + 1] = j
                n_left -= 1
    else:
        for oi in range(order.shape[0]):
            t = order[oi]
            if t_seg[t] < 0:
                continue
            s = t_seg[t]
            lo = seg_off[s]
            hi = seg_off[s + 1]
            ii = t_rank[t]
            jl = lo + np.searchsorted(c_rank[lo:hi], ii) - 1
            jr = lo + np.searchsorted(c_rank[lo:hi], ii, side="right")
            npot = _walk(ii, ii, t_dist[t], 0.0, ratio, caliper, lo, hi, jl, jr, c_rank, c_dist,
                         False, pot_j, pot_j, pot_j, pot_dist)
            if npot == 0:
                continue
            keep = _order_candidates(pot_dist, npot, ratio)
            for q in range(keep.shape[0]):
                mm[t, q] = pot_j[keep[q]]
    return mm


@njit(cache=True)
def _pos_to_j(c_rank, lo, hi, p):
    return lo + np.searchsorted(c_rank[lo:hi], p)


@njit(cache=True)
def group_minmax(Xt, t):
    """Minima and maxima of each row of ``Xt`` (k x n: the columns of a design, each contiguous) within t == 0
    and t == 1 (rows 0/1 of the k-column outputs)."""
    k, n = Xt.shape
    lo = np.full((2, k), np.inf)
    hi = np.full((2, k), -np.inf)
    for j in range(k):
        lo0 = np.inf
        lo1 = np.inf
        hi0 = -np.inf
        hi1 = -np.inf
        for i in range(n):
            v = Xt[j, i]
            if t[i] == 0:
                lo0 = min(lo0, v)
                hi0 = max(hi0, v)
            else:
                lo1 = min(lo1, v)
                hi1 = max(hi1, v)
        lo[0, j] = lo0
        lo[1, j] = lo1
        hi[0, j] = hi0
        hi[1, j] = hi1
    return lo, hi


@njit(cache=True)
def sort_split(d, tt, discarded):
    """R's stable ``order(d)`` over all units, and from it what matching needs, in one radix sort.

    Returns (t_rank, c_idx, c_rank, c_dist): the sorted position of each treated unit (``tt == 1``, in data
    order, discarded ones included) and the controls that can be matched (``tt == 0``, not discarded) in sorted
    order with their positions and distances. Why not numpy's ``argsort(kind="stable")`` (a merge sort) and
    then a scatter and gathers: ~3x the CPU on millions of rows. Here the keys (the order-preserving integer map
    of the doubles, minus their minimum) are distributed by the top bits of their range in one pass over memory
    (most significant digit first), then each bucket is sorted in cache on the remaining bits (insertion sort,
    or 8-bit least significant digit passes; both stable), the sorted payload carries the unit's group (so no
    gathers from tt / discarded in random order), treated units carry their ordinal (a rank array over all units
    is not built), and the controls' distances are decoded from the sorted keys. -0.0 and 0.0 tie (c_dist holds
    0.0); no NaN.
    """
    n = d.shape[0]
    sign = np.uint64(1) << np.uint64(63)
    keys = np.empty(n, np.uint64)
    tags = np.empty(n, np.int64)
    bits = (d + 0.0).view(np.uint64)  # + 0.0: -0.0 becomes 0.0, as numpy's comparison sorts treat them equal
    kmin = ~np.uint64(0)
    kmax = np.uint64(0)
    n1 = 0
    nc = 0
    TFLAG = np.int64(1) << np.int64(62)
    for i in range(n):
        b = bits[i]
        k = ~b if (b & sign) != np.uint64(0) else (b | sign)
        keys[i] = k
        if k < kmin:
            kmin = k
        if k > kmax:
            kmax = k
        if tt[i] == 1:
            tags[i] = n1 | TFLAG
            n1 += 1
        elif not discarded[i]:
            tags[i] = i
            nc += 1
        else:
            tags[i] = -1
    span = kmax - kmin
    nbits = 0
    while nbits < 64 and (span >> np.uint64(nbits)) != np.uint64(0):
        nbits += 1
    for i in range(n):
        keys[i] -= kmin
    if nbits > 0:
        # most significant digit first: one stable counting pass over all rows on the top bits of the range
        # (about 2**(log2(n) - 11) buckets, a thousand keys each on average) ...
        nlog = 0
        while (n >> nlog) > 0:
            nlog += 1
        D = min(nbits, max(8, min(16, nlog - 11)))
        sh = np.uint64(nbits - D)
        nb = 1 << D
        off = np.zeros(nb + 1, np.int64)
        for i in range(n):
            off[(keys[i] >> sh) + np.uint64(1)] += 1
        for b in range(nb):
            off[b + 1] += off[b]
        keys2 = np.empty(n, np.uint64)
        tags2 = np.empty(n, np.int64)
        pos = off[:nb].copy()
        for i in range(n):
            k = keys[i]
            q = pos[k >> sh]
            pos[k >> sh] = q + 1
            keys2[q] = k
            tags2[q] = tags[i]
        keys, keys2 = keys2, keys
        tags, tags2 = tags2, tags
        # ... then each bucket on the remaining bits, in cache: insertion sort on a few keys, else 8-bit least
        # significant digit passes (both stable, so equal keys stay in data order)
        rb = nbits - D
        lpasses = (rb + 7) // 8
        hist = np.zeros((max(lpasses, 1), 256), np.int64)
        lmask = np.uint64(255)
        for b in range(nb):
            lo = off[b]
            hi = off[b + 1]
            m = hi - lo
            if m <= 1 or rb == 0:
                continue
            if m <= 32:
                for i in range(lo + 1, hi):
                    k = keys[i]
                    t = tags[i]
                    j = i - 1
                    while j >= lo and keys[j] > k:
                        keys[j + 1] = keys[j]
                        tags[j + 1] = tags[j]
                        j -= 1
                    keys[j + 1] = k
                    tags[j + 1] = t
                continue
            hist[:, :] = 0
            for i in range(lo, hi):
                k = keys[i]
                for p in range(lpasses):
                    hist[p, (k >> np.uint64(8 * p)) & lmask] += 1
            src_k = keys
            src_t = tags
            dst_k = keys2
            dst_t = tags2
            moved = 0
            for p in range(lpasses):
                h = hist[p]
                single = False
                for d8 in range(256):
                    if h[d8] != 0:
                        single = h[d8] == m
                        break
                if single:
                    continue
                sacc = lo
                for d8 in range(256):
                    c = h[d8]
                    h[d8] = sacc
                    sacc += c
                psh = np.uint64(8 * p)
                for i in range(lo, hi):
                    k = src_k[i]
                    q = h[(k >> psh) & lmask]
                    h[(k >> psh) & lmask] = q + 1
                    dst_k[q] = k
                    dst_t[q] = src_t[i]
                src_k, dst_k = dst_k, src_k
                src_t, dst_t = dst_t, src_t
                moved += 1
            if moved % 2 == 1:
                for i in range(lo, hi):
                    keys[i] = keys2[i]
                    tags[i] = tags2[i]
    t_rank = np.empty(n1, np.int64)
    c_idx = np.empty(nc, np.int64)
    c_rank = np.empty(nc, np.int64)
    c_bits = np.empty(nc, np.uint64)
    m = 0
    for p in range(n):
        v = tags[p]
        if v < 0:
            continue
        if v >= TFLAG:
            t_rank[v - TFLAG] = p
        else:
            k = keys[p] + kmin
            c_idx[m] = v
            c_rank[m] = p
            c_bits[m] = (k ^ sign) if (k & sign) != np.uint64(0) else ~k
            m += 1
    return t_rank, c_idx, c_rank, c_bits.view(np.float64)


@njit(cache=True, nogil=True)
def _linkinv(x):
    """R's C_logit_linkinv for one value: exp(x) / (1 + exp(x)), x clamped at +-30 (exp(-30) -> DBL_EPSILON,
    exp(30) -> 1 / DBL_EPSILON)."""
    eps = 2.220446049250313e-16
    if x < -30.0:
        e = eps
    elif x > 30.0:
        e = 1.0 / eps
    else:
        e = np.exp(x)
    return e / (1.0 + e)


# 2**n for n = -64..64 (the scaling step of _exp_block)
_POW2 = np.ldexp(1.0, np.arange(-64, 65))
_INV_FACT = 1.0 / np.cumprod(np.r_[1.0, np.arange(1.0, 14.0)])  # 1/0!, 1/1!, ..., 1/13!


@njit(cache=True, nogil=True)
def _eta_block(Xt, b, a, B, eta):
    """eta[i] = 0 + x0 b0 + x1 b1 + ... for rows a..a+B-1 of the transposed design ``Xt``, summed in column order
    (the reference BLAS ``dgemv`` order, the same for every row whatever its position), written into eta[:B]."""
    for i in range(B):
        eta[i] = 0.0
    for j in range(Xt.shape[0]):
        bj = b[j]
        xj = Xt[j, a:a + B]
        for i in range(B):
            eta[i] += xj[i] * bj


# error_model numpy: no zero-division check, so the loop vectorises. (Not fastmath "contract": fused multiply-adds
# make it 1.6x faster but move the scores by an ulp, enough to flip a float-rounding tie on a MatchIt fixture.)
@njit(cache=True, nogil=True, error_model="numpy")
def _linkinv_block(eta, y, a, B, w, wz, q):
    """R's C_logit_linkinv and the IRLS weights for one block of rows, in a loop that vectorises.

    mu = exp(eta) / (1 + exp(eta)) (eta below -30 / above 30: exp -> DBL_EPSILON / 1 / DBL_EPSILON, as R);
    writes w = mu (1 - mu), wz = w eta + (y - mu) and q = mu or 1 - mu (the likelihood of row ``a + i``).
    Why not ``np.exp``: it is a scalar libm call that does not vectorise (about a third of the pass). Here exp is
    Cody-Waite reduction (x = n log 2 + r, |r| <= log(2) / 2) and the degree-13 Taylor polynomial of exp(r)
    (truncation below 1e-17 relative), scaled by a table of 2**n: within 2 ulp of libm. Only the IRLS
    iterations use it, where it moves the coefficients by ~1e-16 (relative), far inside the 1e-13 at which they
    match R; the published scores use libm's exp as R (:func:`scores`).
    """
    eps = 2.220446049250313e-16
    c = _INV_FACT
    pow2 = _POW2
    for i in range(B):
        x = eta[i]
        xc = min(max(x, -30.0), 30.0)
        nf = np.floor(xc * 1.4426950408889634 + 0.5)
        r = (xc - nf * 6.93147180369123816490e-01) - nf * 1.90821492927058770002e-10
        p = c[13]
        p = p * r + c[12]
        p = p * r + c[11]
        p = p * r + c[10]
        p = p * r + c[9]
        p = p * r + c[8]
        p = p * r + c[7]
        p = p * r + c[6]
        p = p * r + c[5]
        p = p * r + c[4]
        p = p * r + c[3]
        p = p * r + c[2]
        p = p * r + c[1]
        p = p * r + 1.0
        ni = min(max(np.int64(nf) + 64, 0), 128)  # clamped: a NaN eta gives a NaN p, never a wild index
        e = p * pow2[ni]
        e = eps if x < -30.0 else e
        e = 1.0 / eps if x > 30.0 else e
        mu = e / (1.0 + e)
        wi = mu * (1.0 - mu)
        yi = np.float64(y[a + i])
        w[i] = wi
        wz[i] = wi * x + (yi - mu)
        q[i] = mu if yi > 0.0 else 1.0 - mu


@njit(cache=True, nogil=True)
def _minus2_log_lik(q, B):
    """-2 sum(log(q[:B])) with one log per 16 rows: products of 16 likelihoods (each >= DBL_EPSILON / 2, so a
    product stays above 1e-252 and never underflows). Only glm's convergence test (a 1e-8 relative change) reads
    the deviance, and this is within ~1e-15 of the sum of logs."""
    s = 0.0
    G = B // 16
    for g in range(G):
        p = 1.0
        for i in range(16 * g, 16 * g + 16):
            p *= q[i]
        s += np.log(p)
    for i in range(16 * G, B):
        s += np.log(q[i])
    return -2.0 * s


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _dot(x, y, B):
    """sum(x[:B] * y[:B]), vectorised (reassociated into SIMD partial sums)."""
    s = 0.0
    for i in range(B):
        s += x[i] * y[i]
    return s


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _irls_accumulate(Xt, a, B, w, wz, wx, H, rhs):
    """H += X' diag(w) X (lower triangle) and rhs += X' wz over rows a..a+B-1 of X (``Xt`` is X transposed, so
    each covariate's rows are contiguous).

    Why fastmath here (and only here): reassociation lets LLVM vectorise these sums over the block's rows; the
    result is deterministic and within ~1e-14 (relative) of the row-by-row sum, well inside the 1e-13 at which
    the propensity scores match R's glm. (Slices, not ``Xt[m, a + i]``: with the two-dimensional index LLVM
    kept the loops scalar, twice as slow.)
    """
    k = Xt.shape[0]
    for j in range(k):
        xj = Xt[j, a:a + B]
        rhs[j] += _dot(xj, wz, B)
        for i in range(B):
            wx[i] = w[i] * xj[i]
        for m in range(j + 1):
            H[j, m] += _dot(wx, Xt[m, a:a + B], B)


# nogil: the chunks of a large pool are summed in parallel threads
@njit(cache=True, nogil=True, error_model="numpy")
def irls_pass(Xt, y, b, first, a0, a1):
    """One pass of R's glm.fit IRLS for the logit link (binomial family, unit prior weights) over rows a0..a1-1.

    ``Xt`` is the design transposed (k x n, C order: each column of the design contiguous), ``y`` the 0/1 response
    as int8 (one byte a row to read). Returns (H, rhs, dev): the weighted normal equations H beta = rhs of the next
    IRLS step (weights w = mu (1 - mu), working response z = eta + (y - mu) / w) and the deviance at ``b``. With
    ``first`` the current fit is R's starting value mu = (y + 0.5) / 2 instead of ``X b``. Rows are taken in blocks
    of 512: the linear predictor column by column, then mu and the weights (:func:`_linkinv_block`), the deviance
    (:func:`_minus2_log_lik`) and the cross-products (:func:`_irls_accumulate`), each a loop over the block that
    vectorises.
    """
    k = Xt.shape[0]
    H = np.zeros((k, k))
    rhs = np.zeros(k)
    dev = 0.0
    BS = 512
    eta = np.empty(BS)
    w = np.empty(BS)
    wz = np.empty(BS)
    q = np.empty(BS)
    wx = np.empty(BS)
    # R's start: mu = (y + 0.5) / 2, i.e. 3/4 (y = 1) or 1/4 (y = 0), and eta = log(mu / (1 - mu))
    eta1 = np.log(0.75 / 0.25)
    eta0 = np.log(0.25 / 0.75)
    for a in range(a0, a1, BS):
        B = min(BS, a1 - a)
        if first:
            for i in range(B):
                yi = np.float64(y[a + i])
                mu = (yi + 0.5) / 2.0
                e = eta1 if yi > 0.0 else eta0
                wi = mu * (1.0 - mu)
                w[i] = wi
                wz[i] = wi * e + (yi - mu)
                q[i] = mu if yi > 0.0 else 1.0 - mu
        else:
            _eta_block(Xt, b, a, B, eta)
            _linkinv_block(eta, y, a, B, w, wz, q)
        dev += _minus2_log_lik(q, B)
        _irls_accumulate(Xt, a, B, w, wz, wx, H, rhs)
    for j in range(k):
        for m in range(j + 1, k):
            H[j, m] = H[m, j]
    return H, rhs, dev


@njit(cache=True, nogil=True)  # nogil: chunks of a large pool in parallel threads
def scores(Xt, b, eta, p, a0, a1):
    """Linear predictor and propensity score of rows a0..a1-1, as R, written into ``eta`` and ``p``: eta = X b
    summed in column order (0 + x0 b0 + x1 b1 + ..., the reference BLAS ``dgemv`` that R's ``x %*% start`` in
    glm.fit calls) and p = binomial()$linkinv(eta) with libm's exp (R's C_logit_linkinv). ``Xt`` is the design
    transposed.

    Why not ``X @ b``: an optimised BLAS takes the rows in blocks and the last rows through a different kernel
    (other summation order, FMA), so two identical covariate rows could get scores that differ in the last bits
    and tied controls were then broken differently from MatchIt (4 of 185 pairs at ratio 2 on lalonde). Here
    each row's sum depends on that row only (the loop over a block of rows vectorises, the order of each row's
    sum stays).
    """
    BS = 512
    for a in range(a0, a1, BS):
        B = min(BS, a1 - a)
        e = eta[a:a + B]
        _eta_block(Xt, b, a, B, e)
        for i in range(B):
            p[a + i] = _linkinv(e[i])
