"""O-information over every multiplet of every order, exact, distributed on Dask.

Maths (BRIEF section 2). For a multiplet S of k variables with correlation
sub-matrix R_S (copula-normalised or plain Gaussian data) and P = R_S^-1::

    TC  = 1/2 [ sum_j log R_jj - log det R_S ]
    DTC = 1/2 [ log det R_S + sum_j log P_jj ]
    O   = TC - DTC,    S = TC + DTC          (nats, plug-in)

The engine works on the correlation matrix (R_jj = 1; O is invariant to scaling)
and walks all subsets depth first in lexicographic order. Instead of carrying
L^-1 and recomputing z = W^T y per node (O(k^2)), it carries, for the current
set S and every candidate v that may still be appended, the regression
coefficients beta_S(v) = R_S^-1 R[S, v] and the residual variance
e_S(v) = Var(v | S) = d^2. These are exactly the quantities of the incremental
Cholesky step: with y = W R[S, v], e = R_vv - y.y = d^2 and
z = y^T W / d = beta / d, so for the child S+v::

    log det R_{S+v} = log det R_S + log e
    P'_jj = P_jj + beta_j^2 / e   (j in S),    P'_vv = 1 / e

and, when descending into S+u, every candidate's coefficients are updated in
O(k) by one partial-regression step (c = Cov(v, u | S) / e_u). A node therefore
costs O(k) flops and a single logarithm:

    O(S+v) = -log det R_S - 1/2 log( e * prod_j (P_jj + beta_j^2 / e) ).

Work units are (prefix, lo, hi, shallow): the children prefix+v for lo <= v < hi
and (unless shallow) their whole subtrees up to max_order. Their sizes are
closed-form binomial sums, so the tree is cut into balanced units without index
arrays; the cut depends only on (N, orders, mode), never on the number of
workers, and every merge is exact or exactly rounded (math.fsum), so results
are bit-identical for any number of workers.

Storage threshold: an order whose number of multiplets is at most
``store_all_max`` (default 200,000) is stored completely (every multiplet, in
lexicographic order); larger orders keep the ``top`` most synergistic (O < 0)
and ``top`` most redundant (O > 0) multiplets, exact, sorted by ascending O.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from numba import njit

from .errors import UserError

log = logging.getLogger(__name__)

#: orders with at most this many multiplets are stored completely in OINFO.h5
STORE_ALL_MAX = 200_000
#: histogram bins per order (plus one underflow and one overflow bin)
HIST_BINS = 64
#: R must have smallest eigenvalue above this (all sub-matrices then do too)
MIN_EIGENVALUE = 1e-10
#: with scheduler "local", jobs whose planned work (cost units of plan_units,
#: ~5 ns each on one core of a laptop, times 1 + bootstrap) is below this run
#: in-process on one thread per core: about 5 core-seconds, less than a
#: LocalCluster takes to start (2-3 s) plus its scheduling round trips
SMALL_JOB_COST = 1e9
#: on a Dask cluster, work is submitted in about this many tasks per worker
#: (runs of consecutive units): enough to balance, few enough that the client
#: spends little CPU on results
TASKS_PER_WORKER = 16
#: columns whose copula/gauss correlation magnitude exceeds this are duplicates
DUPLICATE_CORR = 1.0 - 1e-12
LN2 = math.log(2.0)


# --------------------------------------------------------------------------
# Estimators and bias
# --------------------------------------------------------------------------

def _average_ranks(col: np.ndarray) -> np.ndarray:
    """Ranks 1..T of a 1-D array, ties sharing their average rank."""
    order = np.argsort(col, kind="stable")
    sv = col[order]
    # group boundaries of equal values
    starts = np.flatnonzero(np.concatenate(([True], sv[1:] != sv[:-1])))
    ends = np.concatenate((starts[1:], [len(col)]))
    avg = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(len(col))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def copula_normalize(data: np.ndarray) -> np.ndarray:
    """Gaussian-copula transform of each column.

    data: (T, N). Returns (T, N) float64 standard-normal scores
    Phi^-1(rank / (T + 1)); ties get their average rank.
    """
    from scipy.special import ndtri

    x = np.asarray(data, dtype=np.float64)
    ranks = np.empty_like(x)
    for j in range(x.shape[1]):
        ranks[:, j] = _average_ranks(x[:, j])
    return ndtri(ranks / (x.shape[0] + 1.0))


def correlation_matrix(data: np.ndarray, estimator: str = "gc") -> np.ndarray:
    """(N, N) correlation matrix of (T, N) data under estimator "gc" or "gauss"."""
    x = copula_normalize(data) if estimator == "gc" else np.asarray(data, np.float64)
    x = x - x.mean(axis=0)
    c = x.T @ x
    d = np.sqrt(np.diag(c))
    r = c / np.outer(d, d)
    np.fill_diagonal(r, 1.0)
    return r


def entropy_bias(d: int, n_samples: int) -> float:
    """Gaussian plug-in entropy bias b(d, T) in nats (BRIEF section 2)."""
    from scipy.special import digamma

    if d <= 0:
        return 0.0
    t = n_samples
    i = np.arange(1, d + 1)
    return 0.5 * (d * math.log(2.0 / (t - 1)) + float(np.sum(digamma((t - i) / 2.0))))


def bias_offsets(max_order: int, n_samples: int, bias_correct: bool) -> np.ndarray:
    """Additive correction of plug-in O per order, in nats; (max_order+1,).

    O = (k-2) H(X) + sum_j [H(X_j) - H(X_-j)], and corrected H = H - b, so
    O_corrected = O - [(k-2) b(k) + k b(1) - k b(k-1)].  Zero if not asked.
    """
    off = np.zeros(max_order + 1)
    if bias_correct:
        b1 = entropy_bias(1, n_samples)
        for k in range(2, max_order + 1):
            off[k] = -((k - 2) * entropy_bias(k, n_samples) + k * b1
                       - k * entropy_bias(k - 1, n_samples))
    return off


def sinfo_offsets(max_order: int, n_samples: int, bias_correct: bool) -> np.ndarray:
    """Additive correction of plug-in S = TC + DTC per order (nats)."""
    off = np.zeros(max_order + 1)
    if bias_correct:
        b1 = entropy_bias(1, n_samples)
        for k in range(2, max_order + 1):
            off[k] = -(k * b1 - k * entropy_bias(k, n_samples)
                       + k * entropy_bias(k - 1, n_samples))
    return off


# --------------------------------------------------------------------------
# Reference and direct evaluation (pure functions of a correlation matrix)
# --------------------------------------------------------------------------

def reference_oinfo(cov: np.ndarray, subset: Sequence[int]) -> tuple[float, float, float]:
    """Direct, independent reference: (O, TC, DTC) in nats, plug-in.

    cov: (N, N) covariance or correlation; subset: k indices. Uses only
    entropies from slogdet of sub-matrices:
    O = (k-2) H(X) + sum_j [H(X_j) - H(X_-j)], TC = sum_j H(X_j) - H(X),
    DTC = H(X) - sum_j [H(X) - H(X_-j)], with H(A) = 1/2 log det cov_A (the
    2*pi*e constants cancel).
    """
    s = list(subset)
    k = len(s)

    def h(idx: list[int]) -> float:
        if not idx:
            return 0.0
        sign, ld = np.linalg.slogdet(cov[np.ix_(idx, idx)])
        return 0.5 * ld

    hx = h(s)
    h1 = sum(h([j]) for j in s)
    hminus = [h(s[:i] + s[i + 1:]) for i in range(k)]
    tc = h1 - hx
    dtc = hx - sum(hx - hm for hm in hminus)
    return tc - dtc, tc, dtc


@njit(cache=True, nogil=True)
def oinfo_sets(R: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """(O, TC, DTC) plug-in nats of each row of sets; returns (M, 3).

    R: (N, N) correlation matrix (unit diagonal). sets: (M, k) int indices.
    Direct Cholesky per multiplet, O(k^3): for reported multiplets only.
    """
    m, k = sets.shape
    out = np.empty((m, 3))
    L = np.zeros((k, k))
    W = np.zeros((k, k))
    for r in range(m):
        for i in range(k):
            for j in range(i + 1):
                s = R[sets[r, i], sets[r, j]]
                for q in range(j):
                    s -= L[i, q] * L[j, q]
                if i == j:
                    L[i, i] = math.sqrt(s)
                else:
                    L[i, j] = s / L[j, j]
        ld = 0.0
        for i in range(k):
            ld += 2.0 * math.log(L[i, i])
        # W = L^-1 (lower), diag(P) = column sums of W^2
        for i in range(k):
            W[i, i] = 1.0 / L[i, i]
            for j in range(i):
                s = 0.0
                for q in range(j, i):
                    s += L[i, q] * W[q, j]
                W[i, j] = -s / L[i, i]
        slp = 0.0
        for j in range(k):
            p = 0.0
            for i in range(j, k):
                p += W[i, j] * W[i, j]
            slp += math.log(p)
        tc = -0.5 * ld
        dtc = 0.5 * (ld + slp)
        out[r, 0] = tc - dtc
        out[r, 1] = tc
        out[r, 2] = dtc
    return out


# --------------------------------------------------------------------------
# The depth-first kernel
# --------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _better(ka, ia, kb, ib, m):
    """Total order for top-K: larger key first, ties by smaller tuple."""
    if ka != kb:
        return ka > kb
    for q in range(m):
        if ia[q] != ib[q]:
            return ia[q] < ib[q]
    return False


@njit(cache=True, nogil=True)
def _heap_push(keys, idx, n, m, key, cand, top):
    """Keep the `top` best (key, tuple) in a heap whose root is the worst.

    keys: (top,), idx: (top, >=m) int16; n: current fill. Returns new fill.
    """
    if n < top:
        pos = n
        keys[pos] = key
        for q in range(m):
            idx[pos, q] = cand[q]
        # sift up: move while the new item is worse than its parent
        while pos > 0:
            par = (pos - 1) // 2
            if _better(keys[par], idx[par], keys[pos], idx[pos], m):
                keys[par], keys[pos] = keys[pos], keys[par]
                for q in range(m):
                    t = idx[par, q]
                    idx[par, q] = idx[pos, q]
                    idx[pos, q] = t
                pos = par
            else:
                break
        return n + 1
    if not _better(key, cand, keys[0], idx[0], m):
        return n
    keys[0] = key
    for q in range(m):
        idx[0, q] = cand[q]
    pos = 0
    while True:
        a = 2 * pos + 1
        if a >= n:
            break
        b = a + 1
        w = a
        if b < n and _better(keys[a], idx[a], keys[b], idx[b], m):
            w = b
        if _better(keys[pos], idx[pos], keys[w], idx[w], m):
            keys[pos], keys[w] = keys[w], keys[pos]
            for q in range(m):
                t = idx[pos, q]
                idx[pos, q] = idx[w, q]
                idx[w, q] = t
            pos = w
        else:
            break
    return n


@njit(cache=True, nogil=True)
def _offer(keys, idxs, fill, thr, m, key, idx, d, v, cand, top):
    """Offer the multiplet idx[:d] + (v,) with `key` to the top-K heap of order m,
    and raise the heap's admission threshold to its worst key once it is full.
    Called only past the threshold test, which almost always fails."""
    for q in range(d):
        cand[q] = idx[q]
    cand[d] = v
    fill[m] = _heap_push(keys[m], idxs[m], fill[m], m, key, cand, top)
    if fill[m] == top:
        thr[m] = keys[m, 0]


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "arcp"})
def _log_prod_diag(DP, B, d, v, inv, e):
    """log( e * prod_{j<d} (DP[d,j] + B[d,v,j]^2 * inv) ) = log(e prod diag(P')).

    One plain product and one log: every factor is >= 1 and e > 0, so the
    product cannot underflow, and an overflow (only for large, badly
    conditioned multiplets) shows as a product above 1e300 and takes the
    blocked path instead. The plain loop is ~20% faster for the small d of
    most multiplets.
    """
    prod = e
    for j in range(d):
        prod *= DP[d, j] + B[d, v, j] * B[d, v, j] * inv
    if prod < 1e300:
        return math.log(prod)
    return _log_prod_diag_blocked(DP, B, d, v, inv, e)


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "arcp"})
def _log_prod_diag_blocked(DP, B, d, v, inv, e):
    """_log_prod_diag that cannot overflow.

    Four accumulators break the multiply dependency chain. Every factor lies
    in [1, 1/MIN_EIGENVALUE], so a block of 32 factors is finite unless the
    conditioning is extreme; that rare case falls back to logs.
    """
    prod = e
    acc = 0.0
    j0 = 0
    while j0 < d:
        j1 = min(j0 + 32, d)
        a0 = 1.0
        a1 = 1.0
        a2 = 1.0
        a3 = 1.0
        j = j0
        while j + 4 <= j1:
            a0 *= DP[d, j] + B[d, v, j] * B[d, v, j] * inv
            a1 *= DP[d, j + 1] + B[d, v, j + 1] * B[d, v, j + 1] * inv
            a2 *= DP[d, j + 2] + B[d, v, j + 2] * B[d, v, j + 2] * inv
            a3 *= DP[d, j + 3] + B[d, v, j + 3] * B[d, v, j + 3] * inv
            j += 4
        while j < j1:
            a0 *= DP[d, j] + B[d, v, j] * B[d, v, j] * inv
            j += 1
        c = (a0 * a1) * (a2 * a3)
        if c < 1e200:
            prod *= c
            if prod > 1e100:
                acc += math.log(prod)
                prod = 1.0
        else:
            acc += math.log(a0) + math.log(a1) + math.log(a2) + math.log(a3)
        j0 = j1
    return acc + math.log(prod)


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "arcp"})
def walk_unit(R, prefix, lo, hi, shallow, min_order, max_order, offset, scale,
              hist_lo, hist_inv_w, icount, fstats, hist,
              syn_key, syn_idx, syn_n, red_key, red_idx, red_n, store_off, store_buf,
              store_logdet):
    """Enumerate one work unit and accumulate per-order results in place.

    R: (N, N) correlation. prefix: (p,) int64 fixed first elements (ascending).
    Nodes visited: prefix + (v,) for lo <= v < hi and, unless shallow, all
    their descendants up to max_order. Orders >= min_order are recorded, with
    final value (O_plugin + offset[m]) * scale.

    Outputs (indexed by order m, shape (max_order+1, ...)):
    icount (., 3) int64: n, n_synergistic, n_redundant;
    fstats (., 4): sum, sum of squares, min, max;
    hist (., nb+2) int64 with bins of width 1/hist_inv_w[m] from hist_lo[m]
    (bin 0 underflow, bin nb+1 overflow); top-K heaps syn_* (key = -O, O < 0)
    and red_* (key = O, O > 0) with fills syn_n/red_n. top = syn_key.shape[1].
    Orders with store_off[m] >= 0 also write every O, in visiting (=
    lexicographic) order, to store_buf[store_off[m]:], and log det R of the
    multiplet (from which TC and DTC follow) at the same place of store_logdet.
    """
    n = R.shape[0]
    K = max_order
    top = syn_key.shape[1]
    nb = hist.shape[1] - 2
    p = prefix.shape[0]
    # state per depth d (= size of the current set)
    B = np.zeros((K + 1, n, K))       # beta_S(v)
    E = np.ones((K + 1, n))           # Var(v | S)
    DP = np.zeros((K + 1, K))         # diag(P) of S
    LD = np.zeros(K + 1)              # log det R_S
    idx = np.zeros(K + 1, np.int64)   # elements of S
    cur = np.zeros(K + 1, np.int64)
    end = np.zeros(K + 1, np.int64)
    cand = np.zeros(K + 1, np.int16)
    rsu = np.zeros(K)
    # top == 0 disables the heaps: an infinite threshold never admits
    syn_thr = np.full(K + 1, np.inf if top == 0 else 0.0)
    red_thr = np.full(K + 1, np.inf if top == 0 else 0.0)

    # descend along the prefix: state of depth d+1 from depth d with u appended
    for d in range(p):
        u = prefix[d]
        e_u = E[d, u]
        inv = 1.0 / e_u
        LD[d + 1] = LD[d] + math.log(e_u)
        for j in range(d):
            DP[d + 1, j] = DP[d, j] + B[d, u, j] * B[d, u, j] * inv
            rsu[j] = R[idx[j], u]
        DP[d + 1, d] = inv
        idx[d] = u
        for w in range(u + 1, n):
            cov = R[w, u]
            for j in range(d):
                cov -= B[d, w, j] * rsu[j]
            c = cov * inv
            for j in range(d):
                B[d + 1, w, j] = B[d, w, j] - c * B[d, u, j]
            B[d + 1, w, d] = c
            E[d + 1, w] = E[d, w] - c * cov

    d = p
    cur[d] = lo
    end[d] = hi
    while True:
        if cur[d] >= end[d]:
            if d == p:
                break
            d -= 1
            continue
        if d + 1 == K and K >= min_order:
            # the deepest level: every remaining candidate is a leaf. Most
            # multiplets are here, so they get a tight loop whose per-order
            # statistics live in registers instead of the shared arrays
            m = K
            cnt = 0
            n_syn = 0
            n_red = 0
            s1 = 0.0
            s2 = 0.0
            omin = fstats[m, 2]
            omax = fstats[m, 3]
            for v in range(cur[d], end[d]):
                e = E[d, v]
                o = -LD[d] - 0.5 * _log_prod_diag(DP, B, d, v, 1.0 / e, e)
                o = (o + offset[m]) * scale
                if store_off[m] >= 0:
                    store_buf[store_off[m]] = o
                    store_logdet[store_off[m]] = LD[d] + math.log(e)
                    store_off[m] += 1
                cnt += 1
                s1 += o
                s2 += o * o
                omin = min(omin, o)
                omax = max(omax, o)
                if nb > 0:
                    h = min(max((o - hist_lo[m]) * hist_inv_w[m] + 1.0, 0.0), nb + 1.0)
                    hist[m, int(h)] += 1
                n_syn += o < 0.0
                n_red += o > 0.0
                if -o >= syn_thr[m] and o < 0.0:
                    _offer(syn_key, syn_idx, syn_n, syn_thr, m, -o, idx, d, v, cand, top)
                if o >= red_thr[m] and o > 0.0:
                    _offer(red_key, red_idx, red_n, red_thr, m, o, idx, d, v, cand, top)
            icount[m, 0] += cnt
            icount[m, 1] += n_syn
            icount[m, 2] += n_red
            fstats[m, 0] += s1
            fstats[m, 1] += s2
            fstats[m, 2] = omin
            fstats[m, 3] = omax
            cur[d] = end[d]
            continue
        v = cur[d]
        cur[d] += 1
        m = d + 1
        e = E[d, v]
        inv = 1.0 / e
        if m >= min_order:
            o = -LD[d] - 0.5 * _log_prod_diag(DP, B, d, v, inv, e)
            o = (o + offset[m]) * scale
            if store_off[m] >= 0:
                store_buf[store_off[m]] = o
                store_logdet[store_off[m]] = LD[d] + math.log(e)
                store_off[m] += 1
            icount[m, 0] += 1
            fstats[m, 0] += o
            fstats[m, 1] += o * o
            fstats[m, 2] = min(fstats[m, 2], o)
            fstats[m, 3] = max(fstats[m, 3], o)
            if nb > 0:
                h = min(max((o - hist_lo[m]) * hist_inv_w[m] + 1.0, 0.0), nb + 1.0)
                hist[m, int(h)] += 1
            icount[m, 1] += o < 0.0
            icount[m, 2] += o > 0.0
            # thresholds are 0 until a heap is full, then its worst key: the
            # compare is almost always false, so it predicts well
            if -o >= syn_thr[m] and o < 0.0:
                _offer(syn_key, syn_idx, syn_n, syn_thr, m, -o, idx, d, v, cand, top)
            if o >= red_thr[m] and o > 0.0:
                _offer(red_key, red_idx, red_n, red_thr, m, o, idx, d, v, cand, top)
        if m < K and v < n - 1 and not (shallow and d == p):
            # descend into S + v
            LD[d + 1] = LD[d] + math.log(e)
            for j in range(d):
                DP[d + 1, j] = DP[d, j] + B[d, v, j] * B[d, v, j] * inv
                rsu[j] = R[idx[j], v]
            DP[d + 1, d] = inv
            idx[d] = v
            for w in range(v + 1, n):
                cov = R[w, v]
                for j in range(d):
                    cov -= B[d, w, j] * rsu[j]
                c = cov * inv
                for j in range(d):
                    B[d + 1, w, j] = B[d, w, j] - c * B[d, v, j]
                B[d + 1, w, d] = c
                E[d + 1, w] = E[d, w] - c * cov
            d += 1
            cur[d] = v + 1
            end[d] = n


def kernel_oinfo(R: np.ndarray, sets: Sequence[Sequence[int]]) -> np.ndarray:
    """Plug-in O (nats) of given multiplets computed by the enumeration kernel.

    Each multiplet is a one-node work unit (its prefix extended step by step,
    then the node evaluated exactly as in a full walk): for accuracy checks of
    the kernel itself against reference_oinfo. R: (N, N) correlation.
    """
    out = np.empty(len(sets))
    for i, s in enumerate(sets):
        s = sorted(int(v) for v in s)
        k = len(s)
        cfg = dict(min_order=k, max_order=k, offset=np.zeros(k + 1), scale=1.0,
                   hist_lo=np.zeros(k + 1), hist_inv_w=np.ones(k + 1), top=1, nbins=0)
        part = _run_unit(R, Unit(tuple(s[:-1]), s[-1], s[-1] + 1, True, 1.0), cfg)
        out[i] = part.red_key[k][0] if len(part.red_key[k]) else (
            -part.syn_key[k][0] if len(part.syn_key[k]) else 0.0)
    return out


# --------------------------------------------------------------------------
# Work units: closed-form sizes and a worker-independent split
# --------------------------------------------------------------------------

def _comb_table(n: int) -> np.ndarray:
    c = np.zeros((n + 1, n + 1))
    for a in range(n + 1):
        c[a, 0] = 1.0
        for b in range(1, a + 1):
            c[a, b] = c[a - 1, b - 1] + c[a - 1, b]
    return c


@dataclass(frozen=True)
class Unit:
    """Children prefix+(v,) for lo <= v < hi, with subtrees unless shallow."""

    prefix: tuple[int, ...]
    lo: int
    hi: int
    shallow: bool
    cost: float


def plan_units(n: int, max_order: int, root: tuple[int, ...] = (),
               n_units: int | None = None) -> list[Unit]:
    """Cut the enumeration tree below `root` into balanced units, in DFS order.

    Cost of a node of order m is taken as (m + 4) (O(k) work plus overhead).
    The cut depends only on (n, max_order, root), so any number of workers
    sees the same units.
    """
    C = _comb_table(n)

    def sub_cost(depth: int, v: int) -> float:
        # node prefix+(v,) at order depth+1 with all its descendants
        rest = n - 1 - v
        tot = 0.0
        for j in range(0, max_order - depth):
            if j > rest:
                break
            tot += C[rest, j] * (depth + 1 + j + 4)
        return tot

    def cost(prefix: tuple[int, ...], lo: int, hi: int, shallow: bool) -> float:
        d = len(prefix)
        if shallow:
            return float((hi - lo) * (d + 5))
        return sum(sub_cost(d, v) for v in range(lo, hi))

    start = root[-1] + 1 if root else 0
    total = cost(root, start, n, False)
    if n_units is None:
        # one cost unit is ~8 ns here: aim at ~1e7 (~80 ms) per unit so the
        # scheduler round trip stays small, but keep 16 units for mid-size
        # problems so they still spread over workers; never above 512
        n_units = int(min(512, max(total // 1e7, min(16, total // 1e5), 1)))
    target = total / n_units
    out: list[Unit] = []

    def split(prefix: tuple[int, ...], lo: int, hi: int) -> None:
        if lo >= hi:
            return
        c = cost(prefix, lo, hi, False)
        if c <= target * 1.5 or len(prefix) + 1 >= max_order:
            out.append(Unit(prefix, lo, hi, False, c))
            return
        if hi - lo == 1:
            out.append(Unit(prefix, lo, hi, True, cost(prefix, lo, hi, True)))
            split(prefix + (lo,), lo + 1, n)
            return
        # cut where the cumulative cost reaches half
        acc, half, mid = 0.0, c / 2, lo + 1
        for v in range(lo, hi):
            acc += sub_cost(len(prefix), v)
            if acc >= half:
                mid = max(lo + 1, v + (1 if acc - half < half else 0))
                mid = min(mid, hi - 1) if hi - lo > 1 else hi
                break
        split(prefix, lo, mid)
        split(prefix, mid, hi)

    split(root, start, n)
    return out


def count_multiplets(n: int, order: int, targeted: bool) -> int:
    """Number of multiplets of one order (targeted: all contain the target)."""
    return math.comb(n - 1, order - 1) if targeted else math.comb(n, order)


# --------------------------------------------------------------------------
# Per-unit results and their exact merge
# --------------------------------------------------------------------------

@dataclass
class Partial:
    """Mergeable per-order accumulators of one or more units.

    sums holds one row of per-order sums per unit; they are added with
    math.fsum at the end, which is exactly rounded and so order-independent.
    """

    icount: np.ndarray
    sums: list
    sumsq: list
    fmin: np.ndarray
    fmax: np.ndarray
    hist: np.ndarray
    syn_key: np.ndarray
    syn_idx: np.ndarray
    red_key: np.ndarray
    red_idx: np.ndarray
    stored: dict = field(default_factory=dict)


def unit_count(unit: Unit, n: int, order: int) -> int:
    """Number of multiplets of one order inside a work unit (closed form)."""
    p = len(unit.prefix)
    if unit.shallow:
        return (unit.hi - unit.lo) if order == p + 1 else 0
    if order < p + 1:
        return 0
    return sum(math.comb(n - 1 - v, order - p - 1) for v in range(unit.lo, unit.hi))


@njit(cache=True, nogil=True)
def _combinations(n: int, k: int) -> np.ndarray:
    """All k-subsets of range(n) in lexicographic order, (C(n, k), k) int64."""
    total = 1
    for i in range(k):
        total = total * (n - i) // (i + 1)
    out = np.empty((total, k), np.int64)
    c = np.arange(k)
    for r in range(total):
        for q in range(k):
            out[r, q] = c[q]
        i = k - 1
        while i >= 0 and c[i] == n - k + i:
            i -= 1
        if i < 0:
            break
        c[i] += 1
        for j in range(i + 1, k):
            c[j] = c[j - 1] + 1
    return out


def combinations_lex(n: int, k: int, targeted: bool = False) -> np.ndarray:
    """k-subsets of range(n), lexicographic, (M, k) int64; targeted: all contain 0
    (targeted mode puts the target first in kernel space)."""
    if not targeted:
        return _combinations(n, k)
    rest = _combinations(n - 1, k - 1) + 1
    return np.column_stack([np.zeros(len(rest), np.int64), rest]).reshape(-1, k)


def _run_unit(R: np.ndarray, unit: Unit, cfg: dict) -> Partial:
    """Run one work unit with fresh accumulators (executed on workers)."""
    K = cfg["max_order"]
    top = cfg["top"]
    nb = cfg["nbins"]
    icount = np.zeros((K + 1, 3), np.int64)
    fstats = np.zeros((K + 1, 4))
    fstats[:, 2] = np.inf
    fstats[:, 3] = -np.inf
    hist = np.zeros((K + 1, nb + 2 if nb else 0), np.int64)
    syn_key = np.zeros((K + 1, top))
    syn_idx = np.zeros((K + 1, top, K), np.int16)
    red_key = np.zeros((K + 1, top))
    red_idx = np.zeros((K + 1, top, K), np.int16)
    syn_n = np.zeros(K + 1, np.int64)
    red_n = np.zeros(K + 1, np.int64)
    # complete orders: this unit's count of each is closed form
    store_off = np.full(K + 1, -1, np.int64)
    counts = {m: unit_count(unit, R.shape[0], m) for m in cfg.get("stored", ())}
    pos = 0
    for m, c in counts.items():
        store_off[m] = pos
        pos += c
    store_buf = np.empty(pos)
    store_logdet = np.empty(pos)
    walk_unit(R, np.asarray(unit.prefix, np.int64), unit.lo, unit.hi, unit.shallow,
              cfg["min_order"], K, cfg["offset"], cfg["scale"], cfg["hist_lo"],
              cfg["hist_inv_w"], icount, fstats, hist, syn_key, syn_idx, syn_n,
              red_key, red_idx, red_n, store_off, store_buf, store_logdet)
    stored = {}
    pos = 0
    for m, c in counts.items():
        stored[m] = (store_buf[pos:pos + c], store_logdet[pos:pos + c])
        pos += c
    sk, si, rk, ri = [], [], [], []
    # heaps -> candidate lists (unsorted); non-filled slots are dropped
    syn = [(syn_key[m, :syn_n[m]].copy(), syn_idx[m, :syn_n[m], :m].copy()) for m in range(K + 1)]
    red = [(red_key[m, :red_n[m]].copy(), red_idx[m, :red_n[m], :m].copy()) for m in range(K + 1)]
    return Partial(icount, [fstats[:, 0].copy()], [fstats[:, 1].copy()], fstats[:, 2].copy(),
                   fstats[:, 3].copy(), hist, [k for k, _ in syn], [i for _, i in syn],
                   [k for k, _ in red], [i for _, i in red], stored)


def _select_top(keys: np.ndarray, idx: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """The `top` best by (key descending, tuple ascending): exact and deterministic.

    A partition first keeps every candidate tied with or above the top-th
    key, so the full lexicographic sort only sees about `top` rows.
    """
    if len(keys) > top > 0:
        kth = np.partition(keys, len(keys) - top)[len(keys) - top]
        keep = keys >= kth
        keys, idx = keys[keep], idx[keep]
    if len(keys) < 2:
        return keys[:top], idx[:top]
    order = np.argsort(-keys, kind="stable")
    sk = keys[order]
    if np.any(sk[1:] == sk[:-1]):
        # exact ties (rare with real data): break them by the index tuple
        order = np.lexsort(tuple(idx[:, q] for q in range(idx.shape[1] - 1, -1, -1)) + (-keys,))
    order = order[:top]
    return keys[order], idx[order]


def _merge(a: Partial | None, b: Partial, top: int) -> Partial:
    """Fold b into a. Top-K candidates are pooled and cut back to `top` only
    when a pool exceeds 16*top (and by _finish), which keeps the client cheap."""
    if a is None:
        return b
    a.icount += b.icount
    a.sums.extend(b.sums)
    a.sumsq.extend(b.sumsq)
    np.minimum(a.fmin, b.fmin, out=a.fmin)
    np.maximum(a.fmax, b.fmax, out=a.fmax)
    if a.hist.size:
        a.hist += b.hist
    for m in range(len(a.syn_key)):
        for keys, idx in ((a.syn_key, a.syn_idx), (a.red_key, a.red_idx)):
            other_k = b.syn_key[m] if keys is a.syn_key else b.red_key[m]
            other_i = b.syn_idx[m] if keys is a.syn_key else b.red_idx[m]
            if not len(other_k):
                continue
            keys[m] = np.concatenate([keys[m], other_k])
            idx[m] = np.concatenate([idx[m], other_i])
            if len(keys[m]) > 16 * top:
                keys[m], idx[m] = _select_top(keys[m], idx[m], top)
    return a


def _finish(a: Partial, top: int) -> Partial:
    """Cut every pooled top-K list to exactly `top` (exact selection)."""
    for m in range(len(a.syn_key)):
        a.syn_key[m], a.syn_idx[m] = _select_top(a.syn_key[m], a.syn_idx[m], top)
        a.red_key[m], a.red_idx[m] = _select_top(a.red_key[m], a.red_idx[m], top)
    return a


# --------------------------------------------------------------------------
# Result object
# --------------------------------------------------------------------------

@dataclass
class OrderResult:
    """What is reported for one order.

    multiplets: (M, k) int indices into `variables`, ascending within a row.
    oinfo, tc, dtc: (M,) in the result's units (tc/dtc plug-in + bias split).
    complete: True when every multiplet of the order is stored (lexicographic);
    otherwise rows are the top synergistic and redundant ones, ascending O.
    """

    order: int
    n_multiplets: int
    n_synergistic: int
    n_redundant: int
    mean: float
    std: float
    min: float
    max: float
    hist_edges: np.ndarray
    hist_counts: np.ndarray
    multiplets: np.ndarray
    oinfo: np.ndarray
    tc: np.ndarray
    dtc: np.ndarray
    complete: bool
    ci_low: np.ndarray | None = None
    ci_high: np.ndarray | None = None
    mean_ci: tuple[float, float] | None = None
    pvalue: np.ndarray | None = None
    qvalue: np.ndarray | None = None
    gradient: np.ndarray | None = None


@dataclass
class OInfoResult:
    """O-information of every multiplet of the requested orders.

    variables: names in the column order used for all indices.
    orders: {k: OrderResult}. attrs: estimator, bias_correct, units,
    n_samples, target (or None), and run facts (time, workers, units).
    """

    variables: list[str]
    orders: dict[int, OrderResult]
    attrs: dict[str, Any] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def write(self, path: str) -> None:
        """Write OINFO.h5 (layout in the module docstring / README)."""
        import h5py

        with h5py.File(path, "w") as f:
            f.create_dataset("variables", data=np.array(self.variables, dtype=object),
                             dtype=h5py.string_dtype())
            for k, v in self.attrs.items():
                if v is None:
                    continue
                f.attrs[k] = v
            f.attrs["store_all_max"] = self.attrs.get("store_all_max", STORE_ALL_MAX)
            f.attrs["dropped_columns"] = ",".join(self.dropped)
            rows = sorted(self.orders)
            has_ci = any(self.orders[k].mean_ci is not None for k in rows)
            fields = [("order", "i4"), ("n_multiplets", "i8"), ("n_synergistic", "i8"),
                      ("n_redundant", "i8"), ("mean", "f8"), ("min", "f8"), ("max", "f8"),
                      ("std", "f8")]
            if has_ci:
                fields += [("mean_ci_low", "f8"), ("mean_ci_high", "f8")]
            summ = np.zeros(len(rows), dtype=fields)
            for i, k in enumerate(rows):
                r = self.orders[k]
                summ[i]["order"] = k
                summ[i]["n_multiplets"] = r.n_multiplets
                summ[i]["n_synergistic"] = r.n_synergistic
                summ[i]["n_redundant"] = r.n_redundant
                summ[i]["mean"] = r.mean
                summ[i]["min"] = r.min
                summ[i]["max"] = r.max
                summ[i]["std"] = r.std
                if has_ci:
                    lo, hi = r.mean_ci if r.mean_ci is not None else (np.nan, np.nan)
                    summ[i]["mean_ci_low"] = lo
                    summ[i]["mean_ci_high"] = hi
            f.create_dataset("summary", data=summ)
            for k in rows:
                r = self.orders[k]
                g = f.create_group(f"order_{k}")
                g.attrs["complete"] = r.complete
                g.attrs["selection"] = "all" if r.complete else "top"
                g.create_dataset("multiplets", data=r.multiplets.astype(np.int32).reshape(-1, k))
                g.create_dataset("oinfo", data=r.oinfo)
                g.create_dataset("tc", data=r.tc)
                g.create_dataset("dtc", data=r.dtc)
                g.create_dataset("hist_edges", data=r.hist_edges)
                g.create_dataset("hist_counts", data=r.hist_counts)
                for name in ("ci_low", "ci_high", "pvalue", "qvalue", "gradient"):
                    val = getattr(r, name)
                    if val is not None:
                        g.create_dataset(name, data=val)

    def summary_text(self) -> str:
        """A short human table per order (values in the result's units)."""
        u = self.attrs.get("units", "nats")
        head = (f"O-information ({self.attrs.get('estimator')}, {u}"
                f"{', bias-corrected' if self.attrs.get('bias_correct') else ''}"
                f"{', target ' + str(self.attrs['target']) if self.attrs.get('target') else ''}"
                f"), {self.attrs.get('n_samples')} samples, {len(self.variables)} variables")
        lines = [head,
                 f"{'order':>5} {'n':>14} {'synergistic':>12} {'redundant':>12} "
                 f"{'mean':>10} {'min':>10} {'max':>10}  most synergistic | most redundant"]
        for k in sorted(self.orders):
            r = self.orders[k]
            syn = red = "-"
            if len(r.oinfo):
                i = int(np.argmin(r.oinfo))
                if r.oinfo[i] < 0:
                    syn = ",".join(self.variables[j] for j in r.multiplets[i])
                i = int(np.argmax(r.oinfo))
                if r.oinfo[i] > 0:
                    red = ",".join(self.variables[j] for j in r.multiplets[i])
            lines.append(f"{k:>5} {r.n_multiplets:>14,} {r.n_synergistic:>12,} "
                         f"{r.n_redundant:>12,} {r.mean:>10.4g} {r.min:>10.4g} "
                         f"{r.max:>10.4g}  {syn} | {red}")
        if self.dropped:
            lines.append("dropped columns: " + ", ".join(self.dropped))
        return "\n".join(lines)


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------

def _validate(data: Any, names: Sequence[str], nan_policy: str) -> tuple[np.ndarray, list[str]]:
    x = np.asarray(data, dtype=np.float64) if not hasattr(data, "compute") else data
    if x.ndim != 2:
        raise UserError(f"the table must be 2-D (samples x variables); got shape {x.shape}")
    names = [str(s) for s in names]
    if len(names) != x.shape[1]:
        raise UserError(f"{len(names)} names for {x.shape[1]} columns: give one name per column")
    dup = sorted({s for s in names if names.count(s) > 1})
    if dup:
        raise UserError(f"duplicated column names {dup}: rename them so each is unique")
    if hasattr(x, "compute"):
        return x, names
    bad = ~np.isfinite(x)
    if bad.any():
        cols = [f"{names[j]} ({int(bad[:, j].sum())})" for j in np.flatnonzero(bad.any(axis=0))]
        if nan_policy == "drop":
            keep = ~bad.any(axis=1)
            log.warning("dropping %d of %d rows with NaN/inf in %s", int((~keep).sum()),
                        x.shape[0], ", ".join(cols))
            x = x[keep]
        else:
            raise UserError("NaN or infinite values in columns " + ", ".join(cols)
                            + ": remove those rows, or leave those columns out (--columns); "
                            "from Python, nan_policy='drop' drops incomplete rows")
    return x, names


def _drop_degenerate(x: np.ndarray, names: list[str], target: str | None,
                     estimator: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Drop constant columns and exact duplicates (after the estimator's transform).

    Both carry no information the O-information can use (zero variance or a
    singular covariance); they are dropped with a logged warning. The target
    is never dropped: a degenerate target is an error. Returns (x, xs, names,
    dropped) with xs the transformed data (copula scores for "gc").
    """
    dropped: list[str] = []
    const = [j for j in range(x.shape[1]) if np.ptp(x[:, j]) == 0]
    for j in const:
        if names[j] == target:
            raise UserError(f"the target column {target!r} is constant: choose another target")
        dropped.append(names[j])
    if const:
        # one line, not thousands (gene tables have many all-zero genes)
        shown = ", ".join(repr(s) for s in dropped[:10]) + (" ..." if len(dropped) > 10 else "")
        log.warning("dropping %d constant column(s): %s", len(dropped), shown)
    keep = [j for j in range(x.shape[1]) if j not in const]
    x = x[:, keep]
    names = [names[j] for j in keep]
    xs = copula_normalize(x) if estimator == "gc" else x
    if x.shape[1] >= 2 and x.shape[0] >= 2:
        r = np.abs(correlation_matrix(xs, "gauss"))
        gone: set[int] = set()
        for j in range(x.shape[1]):
            if j in gone:
                continue
            for i in np.flatnonzero(r[j, j + 1:] > DUPLICATE_CORR) + j + 1:
                i = int(i)
                if i in gone:
                    continue
                drop = j if names[i] == target else i
                if names[drop] == target:
                    continue
                log.warning("dropping column %r: it duplicates %r", names[drop],
                            names[j if drop == i else i])
                dropped.append(names[drop])
                gone.add(drop)
        keep = [j for j in range(x.shape[1]) if j not in gone]
        x, xs = x[:, keep], xs[:, keep]
        names = [names[j] for j in keep]
    return x, xs, names, dropped


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def _hist_edges(R: np.ndarray, orders: Iterable[int], perm_root: tuple[int, ...],
                offset: np.ndarray, scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed histogram range per order, from a pilot sample drawn before the run.

    The range is the pilot's [min, max] widened by half its span on each side;
    values outside land in the under/overflow bins. Seeded: worker-independent.
    """
    n = R.shape[0]
    K = max(orders)
    lo = np.zeros(K + 1)
    inv_w = np.ones(K + 1)
    rng = np.random.default_rng(seed + 7919)
    free = np.array([v for v in range(n) if v not in perm_root], np.int64)
    for k in orders:
        kk = k - len(perm_root)
        pick = free[np.argsort(rng.random((256, len(free))), axis=1)[:, :kk]]
        if perm_root:
            pick = np.column_stack([np.full(256, perm_root[0]), pick])
        sets = np.ascontiguousarray(np.sort(pick, axis=1))
        o = (oinfo_sets(R, sets)[:, 0] + offset[k]) * scale
        a, b = float(o.min()), float(o.max())
        span = max(b - a, 1e-9 * max(1.0, abs(a)), 1e-12)
        a -= 0.5 * span
        b += 0.5 * span
        lo[k] = a
        inv_w[k] = HIST_BINS / (b - a)
    return lo, inv_w


def _engine(R: np.ndarray, units: list[Unit], cfg: dict, client: Any,
            progress: bool, label: str = "O-information") -> Partial:
    """Run all units in-process or on a Dask client and merge exactly.

    Stored (complete) orders come back per unit and are concatenated in unit
    order, which is lexicographic order within each order.
    """
    top = cfg["top"]
    acc: Partial | None = None
    pieces: dict[int, dict] = {}
    bar = None
    if progress:
        from tqdm import tqdm
        # progress in planned work (closed-form cost), shown as a percentage
        bar = tqdm(total=sum(u.cost for u in units), desc=label,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
    # a task runs a run of consecutive units and merges them where it runs, so the
    # caller (on a LocalCluster also host of the scheduler, on the same cores) handles
    # ~TASKS_PER_WORKER results per worker instead of every unit's. Merging is exact,
    # so neither the grouping nor the order of completion can change the results.
    with contextlib.ExitStack() as stack:
        if client is None:
            # in-process: the kernel releases the GIL, so threads run units in
            # parallel without a cluster's start-up cost
            from concurrent.futures import ThreadPoolExecutor, as_completed

            n_workers = cfg.get("threads") or 1
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=n_workers))

            def submit(group: list[Unit]):
                return pool.submit(_run_units, R, group, cfg)
        else:
            from distributed import as_completed

            n_workers = max(1, len(client.scheduler_info().get("workers", {})))
            # hash=False: a content-hashed key would be shared by back-to-back runs on
            # the same matrix, and the first run's release could delete the second's data
            rf = client.scatter(R, broadcast=True, hash=False)

            def submit(group: list[Unit]):
                return client.submit(_run_units, rf, group, cfg, pure=False)
        per_task = max(1, len(units) // (TASKS_PER_WORKER * n_workers))
        groups = [range(i, min(i + per_task, len(units)))
                  for i in range(0, len(units), per_task)]
        futs = {submit([units[i] for i in g]): g for g in groups}
        for fut in as_completed(list(futs)):
            part = fut.result()
            group = futs[fut]
            pieces[group[0]] = part.stored
            acc = _merge(acc, part, top)
            if bar is not None:
                bar.update(sum(units[i].cost for i in group))
            if client is not None:
                fut.release()
    if bar is not None:
        bar.close()
    assert acc is not None
    acc.stored = _concat_stored([pieces[i] for i in sorted(pieces)], cfg.get("stored", ()))
    return _finish(acc, top)


def _concat_stored(pieces: list[dict], orders: Iterable[int]) -> dict:
    """Per stored order, (O, log det) of consecutive pieces joined in their order."""
    return {m: tuple(np.concatenate([piece[m][j] for piece in pieces]) for j in (0, 1))
            for m in orders}


def _run_units(R: np.ndarray, units: list[Unit], cfg: dict) -> Partial:
    """Run consecutive units and merge them (executed on workers)."""
    acc: Partial | None = None
    stored = []
    for unit in units:
        part = _run_unit(R, unit, cfg)
        stored.append(part.stored)
        acc = _merge(acc, part, cfg["top"])
    assert acc is not None
    acc.stored = _concat_stored(stored, cfg.get("stored", ()))
    return _finish(acc, cfg["top"])


def compute_oinfo(data: Any, names: Sequence[str], min_order: int = 3,
                  max_order: int | None = None, target: str | None = None,
                  estimator: str = "gc", bias_correct: bool = False, units: str = "nats",
                  bootstrap: int = 0, permutations: int = 0, top: int = 100,
                  gradient: bool = False, scheduler: str = "none", client: Any = None,
                  n_workers: int | None = None, seed: int = 0, progress: bool = False,
                  store_all_max: int = STORE_ALL_MAX, nan_policy: str = "raise",
                  ci: float = 0.95, n_units: int | None = None) -> OInfoResult:
    """O-information of every multiplet of orders min_order..max_order.

    data: (T, N) float64, rows are samples. names: N column names.
    target: a column name that every multiplet must contain (targeted mode).
    estimator: "gc" (Gaussian copula) or "gauss". units: "nats" or "bits".
    bootstrap: B row resamples -> percentile CIs (level `ci`) of reported
    multiplets and per-order means. permutations: P column-wise shuffles ->
    two-sided p-values (null pooled over the reported multiplets of each order)
    and Benjamini-Hochberg q-values. gradient: O(X) - O(X without i) for each
    member i of reported multiplets, shape (M, k).
    scheduler: "none" | "local" | "slurm" | "tcp://host:port", or pass client.
    "local" runs small jobs (below SMALL_JOB_COST) in-process; results are
    identical either way.
    Orders with at most store_all_max multiplets are stored completely.
    Constant and duplicated columns are dropped with a logged warning.
    n_units: number of work units (default: from the problem size only, so
    results never depend on the number of workers).
    """
    t0 = time.perf_counter()
    if estimator not in ("gc", "gauss"):
        raise UserError(f"unknown estimator {estimator!r}: use 'gc' or 'gauss'")
    if units not in ("nats", "bits"):
        raise UserError(f"unknown units {units!r}: use 'nats' or 'bits'")
    if nan_policy not in ("raise", "drop"):
        raise UserError(f"unknown nan_policy {nan_policy!r}: use 'raise' or 'drop'")
    for label, val in (("bootstrap", bootstrap), ("permutations", permutations), ("top", top)):
        if int(val) < 0:
            raise UserError(f"{label} must be >= 0, got {val}")
    x, names = _validate(data, names, nan_policy)
    if target is not None and target not in names:
        raise UserError(f"unknown target column {target!r}; available: {', '.join(names)}")
    streamed = hasattr(x, "compute")
    if streamed:
        from .tables import stream_correlation
        R, n_samples = stream_correlation(x, estimator)
        dropped: list[str] = []
        d = np.diag(R)
        if np.any(~np.isfinite(R)):
            raise UserError("NaN or infinite values in the table: remove those rows first")
        const = [names[j] for j in range(len(d)) if not d[j] > 0]
        if const:
            raise UserError(f"constant columns {const}: exclude them with --columns")
        rs = np.sqrt(d)
        R = R / np.outer(rs, rs)
        np.fill_diagonal(R, 1.0)
        xs = None
    else:
        x, xs, names, dropped = _drop_degenerate(x, names, target, estimator)
        n_samples = x.shape[0]
    n = len(names)
    if n < 3:
        raise UserError(f"only {n} usable variables: O-information needs at least 3")
    if n > 32767:
        raise UserError(f"{n} variables: at most 32767 are supported; select columns with --columns")
    if max_order is None:
        max_order = min(n, 5)
    if not (3 <= min_order <= max_order <= n):
        raise UserError(f"orders {min_order}..{max_order} out of range: need "
                        f"3 <= min_order <= max_order <= {n} (number of usable variables)")
    if n_samples <= n:
        raise UserError(f"{n_samples} samples for {n} variables: need more samples than "
                        "variables (add rows or select fewer columns with --columns)")
    if not streamed:
        R = correlation_matrix(xs, "gauss")
    ev = float(np.linalg.eigvalsh(R)[0])
    if ev < MIN_EIGENVALUE:
        raise UserError(f"the variables are (nearly) linearly dependent (smallest "
                        f"correlation eigenvalue {ev:.2e}): drop redundant columns")

    # targeted mode: put the target first so every multiplet starts with it
    perm = list(range(n))
    root: tuple[int, ...] = ()
    if target is not None:
        t = names.index(target)
        perm = [t] + [j for j in range(n) if j != t]
        root = (0,)
    Rp = np.ascontiguousarray(R[np.ix_(perm, perm)])
    perm_arr = np.array(perm)
    scale = 1.0 / LN2 if units == "bits" else 1.0
    offset = bias_offsets(max_order, n_samples, bias_correct)
    soff = sinfo_offsets(max_order, n_samples, bias_correct)
    orders = list(range(min_order, max_order + 1))
    hist_lo, hist_inv_w = _hist_edges(Rp, orders, root, offset, scale, seed)
    stored = tuple(k for k in orders if count_multiplets(n, k, target is not None) <= store_all_max)
    cfg = dict(min_order=min_order, max_order=max_order, offset=offset, scale=scale,
               hist_lo=hist_lo, hist_inv_w=hist_inv_w, top=int(top), nbins=HIST_BINS,
               stored=stored)
    units_ = plan_units(n, max_order, root, n_units)

    from .cluster import open_client

    work = sum(u.cost for u in units_) * (1 + int(bootstrap))
    if client is None and scheduler == "local" and work < SMALL_JOB_COST:
        log.info("small job (%.2g cost units): running in-process threads instead of a "
                 "LocalCluster", work)
        scheduler = "none"
    cfg["threads"] = n_workers or os.cpu_count() or 1
    ctx = contextlib.nullcontext(client) if client is not None else open_client(scheduler, n_workers)
    with ctx as cl:
        part = _engine(Rp, units_, cfg, cl, progress)
        t_engine = time.perf_counter() - t0

        res_orders: dict[int, OrderResult] = {}
        for k in orders:
            cnt = int(part.icount[k, 0])
            mean = math.fsum(s[k] for s in part.sums) / cnt
            var = max(math.fsum(s[k] for s in part.sumsq) / cnt - mean * mean, 0.0)
            edges = hist_lo[k] + np.arange(HIST_BINS + 1) / hist_inv_w[k]
            complete = k in stored
            if complete:
                # O and log det come from the kernel itself, in lexicographic order
                sets = combinations_lex(n, k, bool(root))
                o, logdet = part.stored[k]
                tc_plugin = -0.5 * logdet
                o_plugin = o / scale - offset[k]
            else:
                sets = np.concatenate([part.syn_idx[k], part.red_idx[k]]).astype(np.int64)
                vals = oinfo_sets(Rp, sets) if len(sets) else np.zeros((0, 3))
                o_plugin, tc_plugin = vals[:, 0], vals[:, 1]
                o = (o_plugin + offset[k]) * scale
            # TC + DTC is bias-corrected by soff, TC - DTC (= O) by offset
            tc = 0.5 * (2.0 * tc_plugin - o_plugin + soff[k]) * scale + 0.5 * o
            dtc = tc - o
            # map to original column indices, ascending within each row
            orig = perm_arr[sets]
            if complete and not root:
                # identity permutation: already ascending rows in lexicographic order
                msets, colorder = orig, np.broadcast_to(np.arange(k), orig.shape)
            else:
                colorder = np.argsort(orig, axis=1)
                msets = np.take_along_axis(orig, colorder, axis=1)
                keys = tuple(msets[:, q] for q in range(k - 1, -1, -1))
                order = np.lexsort(keys if complete else keys + (o,))
                msets, o, tc, dtc = msets[order], o[order], tc[order], dtc[order]
                sets, colorder = sets[order], colorder[order]
            r = OrderResult(order=k, n_multiplets=cnt, n_synergistic=int(part.icount[k, 1]),
                            n_redundant=int(part.icount[k, 2]), mean=mean, std=math.sqrt(var),
                            min=float(part.fmin[k]), max=float(part.fmax[k]), hist_edges=edges,
                            hist_counts=part.hist[k].copy(), multiplets=msets, oinfo=o,
                            tc=tc, dtc=dtc, complete=complete)
            r._psets = np.ascontiguousarray(sets)  # kernel-space sets, for statistics
            r._colorder = colorder
            res_orders[k] = r

        if gradient:
            _add_gradient(Rp, res_orders, offset, scale)
        rng = np.random.default_rng(seed)
        if bootstrap:
            _add_bootstrap(xs, perm, res_orders, units_, cfg, cl, int(bootstrap), rng, ci,
                           offset, scale, progress, streamed)
        if permutations:
            _add_permutations(xs, perm, res_orders, int(permutations), rng, offset, scale,
                              streamed)
        n_workers_used = 0 if cl is None else len(cl.scheduler_info().get("workers", {}))
    for r in res_orders.values():
        del r._psets, r._colorder
    attrs = dict(estimator=estimator, bias_correct=bool(bias_correct), units=units,
                 n_samples=int(n_samples), target=target, min_order=min_order,
                 max_order=max_order, top=int(top), store_all_max=int(store_all_max),
                 bootstrap=int(bootstrap), permutations=int(permutations),
                 ci_level=float(ci), seed=int(seed), n_units=len(units_),
                 n_workers=n_workers_used, engine_seconds=t_engine,
                 seconds=time.perf_counter() - t0)
    return OInfoResult(variables=list(names), orders=res_orders, attrs=attrs, dropped=dropped)


def _add_gradient(Rp: np.ndarray, res: dict[int, OrderResult], offset: np.ndarray,
                  scale: float) -> None:
    """Gradient O-information O(X) - O(X without member i): (M, k) per order.

    Column q follows column q of r.multiplets (the sorted original indices).
    """
    for k, r in res.items():
        sets = r._psets
        g = np.zeros((len(sets), k))
        if len(sets):
            full = (oinfo_sets(Rp, sets)[:, 0] + offset[k]) * scale
            for q in range(k):
                sub = np.ascontiguousarray(np.delete(sets, q, axis=1))
                g[:, q] = full - (oinfo_sets(Rp, sub)[:, 0] + offset[k - 1]) * scale
            g = np.take_along_axis(g, r._colorder, axis=1)
        r.gradient = g


def _shuffled_corr(xs: np.ndarray, perm: list[int], rows: np.ndarray | None,
                   rng: np.random.Generator | None) -> np.ndarray:
    """Correlation (kernel column order) of resampled rows or shuffled columns."""
    if rows is not None:
        z = xs[rows]
    else:
        z = np.empty_like(xs)
        for j in range(xs.shape[1]):
            z[:, j] = xs[rng.permutation(xs.shape[0]), j]
    r = correlation_matrix(z, "gauss")
    return np.ascontiguousarray(r[np.ix_(perm, perm)])


def _add_bootstrap(xs: np.ndarray | None, perm: list[int], res: dict[int, OrderResult],
                   units: list[Unit], cfg: dict, client: Any, n_boot: int,
                   rng: np.random.Generator, level: float, offset: np.ndarray, scale: float,
                   progress: bool, streamed: bool) -> None:
    """Percentile bootstrap CIs: rows resampled, same engine on each matrix.

    Per-order means need the whole enumeration again (stats only, no top-K,
    no histogram); reported multiplets are evaluated directly.
    """
    if streamed or xs is None:
        raise UserError("bootstrap needs the table in memory; this table was streamed "
                        "from HDF5 (select fewer columns/rows, or drop --bootstrap)")
    t = xs.shape[0]
    cfg0 = dict(cfg, top=0, nbins=0)
    means = {k: np.zeros(n_boot) for k in res}
    vals = {k: np.zeros((n_boot, len(r._psets))) for k, r in res.items()}
    for b in range(n_boot):
        rb = _shuffled_corr(xs, perm, rng.integers(0, t, t), None)
        part = _engine(rb, units, cfg0, client, False)
        for k, r in res.items():
            means[k][b] = math.fsum(s[k] for s in part.sums) / part.icount[k, 0]
            if len(r._psets):
                vals[k][b] = (oinfo_sets(rb, r._psets)[:, 0] + offset[k]) * scale
    a = 100 * (1 - level) / 2
    for k, r in res.items():
        r.mean_ci = (float(np.percentile(means[k], a)), float(np.percentile(means[k], 100 - a)))
        if len(r._psets):
            r.ci_low = np.percentile(vals[k], a, axis=0)
            r.ci_high = np.percentile(vals[k], 100 - a, axis=0)
        else:
            r.ci_low = r.ci_high = np.zeros(0)


def bh_fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values of p-values (any shape, flattened order kept)."""
    p = np.asarray(p, float).ravel()
    m = len(p)
    if m == 0:
        return p
    o = np.argsort(p)
    q = p[o] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(q[::-1])[::-1]
    out = np.empty(m)
    out[o] = np.minimum(q, 1.0)
    return out


def _add_permutations(xs: np.ndarray | None, perm: list[int], res: dict[int, OrderResult],
                      n_perm: int, rng: np.random.Generator, offset: np.ndarray,
                      scale: float, streamed: bool) -> None:
    """Permutation null (each column shuffled independently).

    Under the null every multiplet of one order has the same distribution of O
    (columns independent, same copula marginals), so the null of an order pools
    the reported multiplets of that order across all permutations. p-values are
    two-sided, (1 + #{|O_null| >= |O|}) / (1 + n_null); q-values are
    Benjamini-Hochberg over every reported multiplet of every order. The
    selection of top multiplets is not corrected for: read p as per-multiplet.
    """
    if streamed or xs is None:
        raise UserError("permutations need the table in memory; this table was streamed "
                        "from HDF5 (select fewer columns/rows, or drop --permutations)")
    nulls = {k: [] for k in res}
    for _ in range(n_perm):
        rn = _shuffled_corr(xs, perm, None, rng)
        for k, r in res.items():
            if len(r._psets):
                nulls[k].append(np.abs((oinfo_sets(rn, r._psets)[:, 0] + offset[k]) * scale))
    allp = []
    for k, r in res.items():
        if not len(r._psets):
            r.pvalue = np.zeros(0)
            continue
        null = np.sort(np.concatenate(nulls[k]))
        ge = len(null) - np.searchsorted(null, np.abs(r.oinfo), side="left")
        r.pvalue = (1.0 + ge) / (1.0 + len(null))
        allp.append(r.pvalue)
    q = bh_fdr(np.concatenate(allp)) if allp else np.zeros(0)
    i = 0
    for k, r in res.items():
        r.qvalue = q[i:i + len(r.pvalue)]
        i += len(r.pvalue)
