"""The incremental evaluator shared by every search: one multiplet S and its factorisation.

State of a set S of k variables (positions 0..k-1 of ``S``), for a correlation
matrix R (N, N):

- ``P`` (kmax, kmax): R_S^-1 (leading k x k block);
- ``Bt`` (N, kmax): beta_S(v) = R_S^-1 R[S, v] for every variable v (a member's
  row is its unit vector);
- ``E`` (N,): e_S(v) = Var(v | S) = 1 - R[S, v] . beta_S(v) (0 for members);
- ``ld[0]``: log det R_S.

With these, the O-information (plug-in, nats; BRIEF section 2) of a
neighbour of S costs O(k), never a new factorisation:

- add v:      O(S+v)   = -LD - 1/2 log( e prod_j (P_jj + b_j^2 / e) ),  b = beta_S(v), e = e_S(v)
- remove S_q: O(S-S_q) = -(LD + log P_qq) - 1/2 sum_{j != q} log(P_jj - P_jq^2 / P_qq)
- swap S_q for v: the add formula on S-S_q, whose beta and e follow from S's
  in O(k): beta'_j = b_j - P_jq b_q / P_qq, e' = e + b_q^2 / P_qq.

Applying a move (ev_add / ev_remove) updates every candidate's beta and e by
one partial-regression step, O(kN), like the exhaustive kernel's descent.
Rounding accumulates over many applied moves, so callers refactorise
(ev_reset, O(k^2 N)) every REFRESH moves; reported values are recomputed
directly (reference.oinfo_sets) anyway.

The pool (pool_offer) keeps, per order, the `top` best distinct multiplets
seen by a search task: key = sign * O, O of the kept sign only, exact ties
broken by the smaller tuple (the exhaustive heaps' order).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..kernel import _better, _heap_push
from ..reference import cholesky_inverse

#: applied moves between two refactorisations of the evaluator state
REFRESH = 64


@njit(cache=True, nogil=True)
def ev_reset(R, S, k, P, Bt, E, inS):
    """Build the state of S[:k] from scratch (Cholesky, O(k^3 + k^2 N)); returns log det R_S."""
    n = R.shape[0]
    W = np.zeros((k, k))  # L^-1
    ld = cholesky_inverse(R, S[:k], np.zeros((k, k)), W)
    for i in range(k):
        for j in range(k):
            s = 0.0
            for q in range(max(i, j), k):
                s += W[q, i] * W[q, j]
            P[i, j] = s
    inS[:] = False
    for i in range(k):
        inS[S[i]] = True
    y = np.zeros(k)
    for v in range(n):
        for j in range(Bt.shape[1]):
            Bt[v, j] = 0.0
        if inS[v]:
            E[v] = 0.0
            continue
        # y = W r, beta = W^T y, e = 1 - y.y
        ee = 1.0
        for i in range(k):
            s = 0.0
            for q in range(i + 1):
                s += W[i, q] * R[S[q], v]
            y[i] = s
            ee -= s * s
        for j in range(k):
            s = 0.0
            for i in range(j, k):
                s += W[i, j] * y[i]
            Bt[v, j] = s
        E[v] = ee
    for i in range(k):
        Bt[S[i], i] = 1.0
    return ld


@njit(cache=True, nogil=True)
def ev_add(R, S, k, P, Bt, E, inS, u):
    """Append u to S[:k] (O(kN)); returns the change of log det R_S (log e_S(u))."""
    n = R.shape[0]
    e = E[u]
    b = Bt[u, :k].copy()
    rsu = np.empty(k)
    for j in range(k):
        rsu[j] = R[S[j], u]
    for v in range(n):
        if inS[v] or v == u:
            continue
        cov = R[v, u]
        for j in range(k):
            cov -= Bt[v, j] * rsu[j]
        c = cov / e
        for j in range(k):
            Bt[v, j] -= c * b[j]
        Bt[v, k] = c
        E[v] -= c * cov
    inv = 1.0 / e
    for i in range(k):
        for j in range(k):
            P[i, j] += b[i] * b[j] * inv
        P[i, k] = -b[i] * inv
        P[k, i] = -b[i] * inv
    P[k, k] = inv
    S[k] = u
    inS[u] = True
    for j in range(k + 1):
        Bt[u, j] = 0.0
    Bt[u, k] = 1.0
    E[u] = 0.0
    return math.log(e)


@njit(cache=True, nogil=True)
def ev_remove(S, k, P, Bt, E, inS, q):
    """Remove position q of S[:k] (the last member moves to q; O(kN)); returns the
    change of log det R_S (log P_qq)."""
    n = Bt.shape[0]
    last = k - 1
    if q != last:
        S[q], S[last] = S[last], S[q]
        for i in range(k):
            P[i, q], P[i, last] = P[i, last], P[i, q]
        for j in range(k):
            P[q, j], P[last, j] = P[last, j], P[q, j]
        for v in range(n):
            Bt[v, q], Bt[v, last] = Bt[v, last], Bt[v, q]
    u = S[last]
    pkk = P[last, last]
    for i in range(last):
        for j in range(last):
            P[i, j] -= P[i, last] * P[j, last] / pkk
    for v in range(n):
        bq = Bt[v, last]
        if bq == 0.0:
            continue
        f = bq / pkk
        for j in range(last):
            Bt[v, j] -= P[j, last] * f
        E[v] += bq * f
        Bt[v, last] = 0.0
    for i in range(k):
        P[i, last] = 0.0
        P[last, i] = 0.0
    inS[u] = False
    return math.log(pkk)


@njit(cache=True, nogil=True, fastmath={"contract"})
def ev_o_add(P, Bt, E, ld, k, v):
    """Plug-in O (nats) of S[:k] + v, O(k)."""
    e = E[v]
    inv = 1.0 / e
    prod = e
    acc = 0.0
    for j in range(k):
        prod *= P[j, j] + Bt[v, j] * Bt[v, j] * inv
        if prod > 1e280:
            acc += math.log(prod)
            prod = 1.0
    return -ld - 0.5 * (acc + math.log(prod))


@njit(cache=True, nogil=True, fastmath={"contract"})
def ev_o_swap(P, Bt, E, ld, k, q, v):
    """Plug-in O (nats) of S[:k] with position q replaced by v, O(k)."""
    pqq = P[q, q]
    bq = Bt[v, q]
    f = bq / pqq
    e = E[v] + bq * f
    inv = 1.0 / e
    prod = e
    acc = 0.0
    for j in range(k):
        if j == q:
            continue
        pj = P[j, q]
        bj = Bt[v, j] - pj * f
        prod *= (P[j, j] - pj * pj / pqq) + bj * bj * inv
        if prod > 1e280:
            acc += math.log(prod)
            prod = 1.0
    return -(ld + math.log(pqq)) - 0.5 * (acc + math.log(prod))


@njit(cache=True, nogil=True)
def ev_o(P, ld, k):
    """Plug-in O (nats) of S[:k] itself."""
    acc = 0.0
    for j in range(k):
        acc += math.log(P[j, j])
    return -ld - 0.5 * acc


@njit(cache=True, nogil=True)
def pool_offer(keys, idxs, fill, m, key, cand, top):
    """Offer the sorted multiplet cand[:m] with `key` (> 0) to order m's pool of the
    `top` best distinct ones. Returns True if it was admitted."""
    if top == 0 or key <= 0.0:
        return False
    if fill[m] == top and not _better(key, cand, keys[m, 0], idxs[m, 0], m):
        return False
    for r in range(fill[m]):
        same = True
        for q in range(m):
            if idxs[m, r, q] != cand[q]:
                same = False
                break
        if same:
            return False
    fill[m] = _heap_push(keys[m], idxs[m], fill[m], m, key, cand, top)
    return True


@njit(cache=True, nogil=True)
def sorted_with(S, k, skip, add, out):
    """out[:m] = sorted(S[:k] without position skip (-1: none), plus add (-1: none)); returns m."""
    m = 0
    for j in range(k):
        if j != skip:
            out[m] = S[j]
            m += 1
    if add >= 0:
        out[m] = add
        m += 1
    # insertion sort: m is small
    for i in range(1, m):
        x = out[i]
        j = i - 1
        while j >= 0 and out[j] > x:
            out[j + 1] = out[j]
            j -= 1
        out[j + 1] = x
    return m


def new_state(n: int, kmax: int):
    """Fresh evaluator arrays for N variables and sets of up to kmax."""
    return (np.zeros(kmax + 1, np.int64), np.zeros((kmax + 1, kmax + 1)),
            np.zeros((n, kmax + 1)), np.ones(n), np.zeros(n, np.bool_))


def new_pool(kmax: int, top: int):
    """Per-order pools: keys (kmax+1, top), tuples (kmax+1, top, kmax) int16, fill."""
    return (np.zeros((kmax + 1, top)), np.zeros((kmax + 1, top, kmax), np.int16),
            np.zeros(kmax + 1, np.int64))
