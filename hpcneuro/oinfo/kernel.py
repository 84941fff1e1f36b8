"""The depth-first enumeration kernel (numba): O-information of every node of a work unit.

Maths (BRIEF section 2). For a multiplet S of k variables with correlation
sub-matrix R_S (copula-normalised or plain Gaussian data) and P = R_S^-1::

    TC  = 1/2 [ sum_j log R_jj - log det R_S ]
    DTC = 1/2 [ log det R_S + sum_j log P_jj ]
    O   = TC - DTC,    S = TC + DTC          (nats, plug-in)

The kernel works on the correlation matrix (R_jj = 1; O is invariant to scaling)
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
O(k) by one partial-regression step (c = Cov(v, u | S) / e_u). The conditional
covariances Cov(w, x | S) among the candidates are carried too and updated by
the same Schur step, Cov(w, x | S+u) = Cov(w, x | S) - c_w Cov(u, x | S), which
is O(1) per grandchild instead of a fresh O(k) dot product per candidate. A
node therefore costs O(k) flops and a single logarithm (deferred, see below):

    O(S+v) = -log det R_S - 1/2 log( e * prod_j (P_jj + beta_j^2 / e) )
           = -LS - 1/2 log( DM^2 * e * prod_j (...) )

with det R_S = DM * exp(LS) carried as a product (DM renormalised into LS only
below DET_RENORM), so a descent takes no logarithm of its own.

The logarithm is not taken where the product is: a scalar libm call waits on
the product feeding it and cost about 15 ns of the ~42 ns a multiplet took.
Each product goes, with O's additive part, to a batch of LOG_BATCH per order;
_flush takes the batch's logarithms with a branch-free polynomial (_fast_log)
in one loop that LLVM vectorises, folding count, sums, min, max and signs in
the same pass. The top-K heaps need O only for the few multiplets that can
enter them: their thresholds are turned into bounds on the product (one exp
per threshold change), and only products past a bound are marked, with their
tuple, for the exact test in _flush.

What a walk covers is a work unit (plan.py); per-order accumulators and top-K
heaps are updated in place and merged by engine.py. All functions are compiled
with cache=True: numba keeps the machine code in __pycache__ next to this file.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _bits(typingctx, x):
    """The IEEE-754 bits of a float64 as an int64 (a register move, no memory)."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _float(typingctx, x):
    """The float64 whose IEEE-754 bits are the int64 x."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


@njit(cache=True, nogil=True, inline="always", error_model="numpy",
      fastmath={"reassoc", "contract", "arcp"})
def _fast_log(x):
    """Natural logarithm of a positive, finite, normal float64 without a libm
    call or a branch, so that a loop over an array of them vectorises.

    fdlibm's e_log.c: x = 2^k z with z in [sqrt(1/2), sqrt(2)), f = z - 1,
    s = f / (2 + f), log z = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R(s^2)) with
    fdlibm's degree-14 minimax R. Measured against numpy.log on 1e7 random
    values in each of [1e-300, 1e300], [0.1, 10] and 1 +- 1e-6: within 1 ulp.
    Subnormals, zero, infinities and NaN are not handled (callers exclude them).
    """
    ix = _bits(x)
    k = (ix - 0x3FE6A09E667F3BCD) >> 52
    f = _float(ix - (k << 52)) - 1.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01
                                               + w * 1.531383769920937332e-01))
    t2 = z * (6.666666666666735130e-01 + w * (2.857142874366239149e-01 + w * (
        1.818357216161805012e-01 + w * 1.479819860511658591e-01)))
    dk = np.float64(k)
    return dk * _LN2_HI - ((hfsq - (s * (hfsq + t2 + t1) + dk * _LN2_LO)) - f)


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


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "arcp"})
def _log_prod_diag_blocked(DP, B, d, v, inv, e, dm2):
    """log( dm2 * e * prod_{j<d} (DP[d,j] + B[d,v,j]^2 * inv) ) when the plain
    product (walk_unit) is not within [1e-300, 1e300): one that cannot overflow.
    (log(dm2) is taken here, not in walk_unit, where LLVM would hoist it out of
    the loop over children and take it for every node.)

    Four accumulators break the multiply dependency chain. Every factor lies
    in [1, 1/MIN_EIGENVALUE] (inputs.py), so a block of 32 factors is finite unless the
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
    return acc + math.log(prod) + math.log(dm2)


#: multiplets of one order whose logarithms are deferred and taken together (_flush)
LOG_BATCH = 512
_MAG = 0x7FFFFFFFFFFFFFFF


@njit(cache=True, nogil=True, error_model="numpy",
      fastmath={"reassoc", "contract", "arcp", "nnan", "nsz"})
def _flush(m, f, nc, PB, BB, OA, HB, CP, CT, scale, icount, fstats, hist, hist_lo,
           hist_inv_w, syn_key, syn_idx, syn_n, syn_thr, red_key, red_idx, red_n, red_thr,
           sbo, store_buf, top):
    """Fold the f deferred multiplets of order m into its statistics and heaps.

    Multiplet i has O = (BB[m, i] - log(PB[m, i]) / 2) * scale; the first loop
    takes every logarithm and folds count, sum, sum of squares, min, max and
    the signs in one branch-free pass that LLVM vectorises (no libm call).
    Then the histogram bins, the stored values (orders with sbo[m] >= 0, in
    visiting order) and the nc candidates that passed walk_unit's product test
    for a heap (CP: their positions, CT: their tuples) against the heaps'
    current thresholds. Top-K content does not depend on the order in which
    candidates are offered (_better is a total order).
    """
    pb = PB[m]
    bb = BB[m]
    s1 = fstats[m, 0]
    s2 = fstats[m, 1]
    # min and max as integers: a floating-point select does not vectorise;
    # x ^ ((x >> 63) & 0x7ff..f) orders the bits x of doubles like the doubles
    ib = _bits(fstats[m, 2])
    kmin = ib ^ ((ib >> 63) & _MAG)
    ib = _bits(fstats[m, 3])
    kmax = ib ^ ((ib >> 63) & _MAG)
    n_syn = 0
    n_red = 0
    for i in range(f):
        o = (bb[i] - 0.5 * _fast_log(pb[i])) * scale
        OA[i] = o
        s1 += o
        s2 += o * o
        ib = _bits(o)
        key = ib ^ ((ib >> 63) & _MAG)
        kmin = key if key < kmin else kmin
        kmax = key if key > kmax else kmax
        n_syn += o < 0.0
        n_red += o > 0.0
    omin = _float(kmin ^ ((kmin >> 63) & _MAG))
    omax = _float(kmax ^ ((kmax >> 63) & _MAG))
    icount[m, 0] += f
    icount[m, 1] += n_syn
    icount[m, 2] += n_red
    fstats[m, 0] = s1
    fstats[m, 1] = s2
    fstats[m, 2] = omin
    fstats[m, 3] = omax
    nb = hist.shape[1] - 2
    if nb > 0:
        hl = hist_lo[m]
        hw = hist_inv_w[m]
        nbf = nb + 1.0
        for i in range(f):
            h = (OA[i] - hl) * hw + 1.0
            h = 0.0 if h < 0.0 else h
            h = nbf if h > nbf else h
            HB[i] = np.int64(h)
        for i in range(f):
            hist[m, HB[i]] += 1
    so = sbo[m]
    if so >= 0:
        for i in range(f):
            store_buf[so + i] = OA[i]
        sbo[m] = so + f
    st = syn_thr[m]
    rt = red_thr[m]
    for c in range(nc):
        o = OA[CP[m, c]]
        if -o >= st and o < 0.0:
            syn_n[m] = _heap_push(syn_key[m], syn_idx[m], syn_n[m], m, -o, CT[m, c], top)
            if syn_n[m] == top:
                syn_thr[m] = syn_key[m, 0]
                st = syn_thr[m]
        if o >= rt and o > 0.0:
            red_n[m] = _heap_push(red_key[m], red_idx[m], red_n[m], m, o, CT[m, c], top)
            if red_n[m] == top:
                red_thr[m] = red_key[m, 0]
                rt = red_thr[m]


#: det R_S is carried as a plain product while above this (a product of
#: residual variances in [MIN_EIGENVALUE, 1], squared in the children's product)
DET_RENORM = 1e-100


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

    Structure (profiled, issue 14): a node is entered once; the products of
    its children S+v are taken inside the loop that descends into it (each
    child's new coefficients are used as they are written), then appended to
    their order's log batch (module docstring), then the walk descends into
    each child that has children, except S+(n-2) and S+(n-3): their
    descendants, G = S+(n-2)+(n-1) and H1..H3 = S+(n-3)+(n-2), S+(n-3)+(n-1),
    S+(n-3)+(n-2)+(n-1), are evaluated by S itself from its coefficients and
    queued, to be appended as the walk leaves S, which keeps every order's
    multiplets in lexicographic order. A descent costs more than the two
    children a typical node has: without three in four of them, N=26 went
    from 29 to 24.0 (G) and 22.9 ns per multiplet (H; its products are
    formed in another order than a descent would, so values moved by
    rounding, <= 5e-15 relative on top-K keys). Apart from _flush, once per
    LOG_BATCH multiplets of an order, everything is in this one function: a call to
    another numba function with array arguments costs NRT reference-count
    atomics per array (about 10 ns per call here). Products over j run over
    whole 4-lane vectors (B is 0 and DP is 1 in the padding lanes, exact
    factors of 1). No logarithm may sit in a branch of the per-multiplet
    loops, nor in a per-node loop on a loop-invariant argument: LLVM
    speculates or hoists fast-math logarithms (that cost a libm call per node
    before log(dm2) moved into _log_prod_diag_blocked). Values differ from a
    libm logarithm per multiplet by rounding only (<= 4e-14 relative on sums
    at N = 22, <= 4e-16 on top-K keys at N = 26, same counts, histograms and
    top-K tuples); sums are folded per batch in a vectorised order that
    depends only on the work unit, which does not depend on the number of
    workers, so results stay identical for any number of workers. scale must
    be > 0 (nats or bits), for the product bounds of the heap thresholds.
    The tail of every batch is flushed before returning.
    """
    n = R.shape[0]
    K = max_order
    KP = (K + 3) // 4 * 4             # j padded to whole 4-lane vectors
    top = syn_key.shape[1]
    p = prefix.shape[0]
    # state per depth d (= size of the current set). Beyond j = d, B is 0 and
    # DP is 1, so padded lanes contribute exact factors of 1 to the product.
    B = np.zeros((K + 1, n, KP))      # beta_S(v)
    C = np.empty((K + 1, n, n))       # Cov(w, x | S), candidates w <= x; E = diagonal
    C[0] = R
    DP = np.ones((K + 1, KP))         # diag(P) of S
    # det R_S = DM[d] * exp(LS[d]): a product of residual variances, renormalised
    # into LS (one logarithm) only when it falls below DET_RENORM, so a descent
    # needs no logarithm and a child's one logarithm also covers log det R_S
    DM = np.ones(K + 1)
    LS = np.zeros(K + 1)
    idx = np.zeros(K + 1, np.int64)   # elements of S
    cur = np.zeros(K + 1, np.int64)   # next child to descend into, per depth
    end = np.zeros(K + 1, np.int64)
    tmp = np.zeros(n)                 # e prod diag P' of the children (-1: see tml)
    tml = np.zeros(n)                 # its logarithm, where it is outside [1e-300, 1e300)
    # heaps may come filled from earlier units (engine.Heaps): a full heap's root is
    # its threshold; an empty top-K admits nothing
    syn_thr = np.full(K + 1, np.inf if top == 0 else 0.0)
    red_thr = np.full(K + 1, np.inf if top == 0 else 0.0)
    for m in range(K + 1):
        if top > 0 and syn_n[m] == top:
            syn_thr[m] = syn_key[m, 0]
        if top > 0 and red_n[m] == top:
            red_thr[m] = red_key[m, 0]
    # deferred logarithms, per order: product and O's additive part per multiplet,
    # positions and tuples of the heap candidates among them (_flush)
    PB = np.empty((K + 1, LOG_BATCH))
    BB = np.empty((K + 1, LOG_BATCH))
    FB = np.zeros(K + 1, np.int64)
    CP = np.zeros((K + 1, LOG_BATCH), np.int64)
    CT = np.zeros((K + 1, LOG_BATCH, K), np.int16)
    NC = np.zeros(K + 1, np.int64)
    OA = np.empty(LOG_BATCH)
    HB = np.empty(LOG_BATCH, np.int64)
    sbo = store_off.copy()            # next stored O (store_off: next log det)
    # product bounds equivalent to the heaps' thresholds for O's additive part
    # CB[m] (scale > 0): O <= -syn_thr iff prod >= exp(2 (CB + syn_thr / scale)),
    # O >= red_thr iff prod <= exp(2 (CB - red_thr / scale)); widened by 1e-9 so
    # that rounding can only let a few more through to the exact test in _flush
    PS = np.zeros(K + 1)
    PR = np.zeros(K + 1)
    CB = np.full(K + 1, np.nan)
    # descend along the prefix: state of depth d+1 from depth d with v appended.
    # The walk below repeats this step inline (as one inline="always" numba
    # function it ran 25-34% slower) and also evaluates the new node's children
    # in it; here the conditional covariances are always updated completely.
    for d in range(p):
        v = prefix[d]
        e = C[d, v, v]
        inv = 1.0 / e
        dm = DM[d] * e
        if dm < DET_RENORM:
            LS[d + 1] = LS[d] + math.log(dm)
            DM[d + 1] = 1.0
        else:
            LS[d + 1] = LS[d]
            DM[d + 1] = dm
        for j in range(d):
            DP[d + 1, j] = DP[d, j] + B[d, v, j] * B[d, v, j] * inv
        DP[d + 1, d] = inv
        idx[d] = v
        dp = (d + 4) // 4 * 4
        for w in range(v + 1, n):
            c = C[d, v, w] * inv
            for j in range(dp):
                B[d + 1, w, j] = B[d, w, j] - c * B[d, v, j]
            B[d + 1, w, d] = c
            for x in range(w, n):
                C[d + 1, w, x] = C[d, w, x] - c * C[d, v, x]
    # elo..ehi: the children of the node just entered at depth d, not yet evaluated
    d = p
    elo = lo
    ehi = hi
    pending = True
    fused = False  # the children's products were already taken during the descent
    # the node just entered evaluated the descendants of S+(n-2) (gskip) and of
    # S+(n-3) (hskip) itself; they wait in its queue until the walk leaves it
    gskip = False
    hskip = False
    QN = np.zeros(K + 2, np.int64)          # queued multiplets per depth
    QM = np.zeros((K + 2, 4), np.int64)     # order
    QX = np.zeros((K + 2, 4))               # product, or -1 (then QL is its log)
    QL = np.zeros((K + 2, 4))
    QB = np.zeros((K + 2, 4))               # O's additive part
    QS = np.zeros((K + 2, 4))               # log det R of the multiplet (stored orders)
    QT = np.zeros((K + 2, 4, 3), np.int64)  # its elements after the node's
    while True:
        if pending:
            pending = False
            if d + 1 >= min_order and not fused:
                dq = (d + 3) // 4 * 4
                dm2 = DM[d] * DM[d]
                for v in range(elo, ehi):
                    e = C[d, v, v]
                    inv = 1.0 / e
                    prod = dm2 * e
                    for j in range(dq):
                        prod *= DP[d, j] + B[d, v, j] * B[d, v, j] * inv
                    if prod < 1e300 and prod >= 1e-300:
                        tmp[v] = prod
                    else:
                        tmp[v] = -1.0
                        tml[v] = _log_prod_diag_blocked(DP, B, d, v, inv, e, dm2)
            if d + 1 >= min_order:
                # the logarithms are deferred: each product goes to its order's
                # batch; only a product that may pass a heap's threshold is marked
                m = d + 1
                base = offset[m] - LS[d]
                if base != CB[m]:
                    CB[m] = base
                    PS[m] = math.exp(2.0 * (base + syn_thr[m] / scale)) * (1.0 - 1e-9)
                    PR[m] = math.exp(2.0 * (base - red_thr[m] / scale)) * (1.0 + 1e-9)
                ps = PS[m]
                pr = PR[m]
                f = FB[m]
                nc = NC[m]
                for v in range(elo, ehi):
                    x = tmp[v]
                    if x > 0.0:
                        PB[m, f] = x
                        BB[m, f] = base
                        mark = x >= ps or x <= pr
                    else:
                        # a product outside [1e-300, 1e300): its logarithm, taken exactly
                        PB[m, f] = 1.0
                        BB[m, f] = base - 0.5 * tml[v]
                        mark = True
                    if mark:
                        CP[m, nc] = f
                        for q in range(d):
                            CT[m, nc, q] = idx[q]
                        CT[m, nc, d] = v
                        nc += 1
                    f += 1
                    if f == LOG_BATCH:
                        _flush(m, f, nc, PB, BB, OA, HB, CP, CT, scale, icount, fstats, hist,
                               hist_lo, hist_inv_w, syn_key, syn_idx, syn_n, syn_thr,
                               red_key, red_idx, red_n, red_thr, sbo, store_buf, top)
                        f = 0
                        nc = 0
                        PS[m] = math.exp(2.0 * (base + syn_thr[m] / scale)) * (1.0 - 1e-9)
                        PR[m] = math.exp(2.0 * (base - red_thr[m] / scale)) * (1.0 + 1e-9)
                        ps = PS[m]
                        pr = PR[m]
                FB[m] = f
                NC[m] = nc
                so = store_off[m]
                if so >= 0:
                    for v in range(elo, ehi):
                        store_logdet[so] = LS[d] + math.log(DM[d] * C[d, v, v])
                        so += 1
                    store_off[m] = so
            if d + 1 >= K or (shallow and d == p):
                if d == p:
                    break
                d -= 1
                continue
            cur[d] = elo
            end[d] = n - 3 if hskip else (n - 2 if gskip else (ehi if ehi < n - 1 else n - 1))
        if cur[d] >= end[d]:
            if d == p:
                break
            for qi in range(QN[d]):
                # the queued multiplets are the last of their orders below this node in
                # lexicographic order: they go to their batches as the walk leaves it
                m = QM[d, qi]
                base = QB[d, qi]
                if base != CB[m]:
                    CB[m] = base
                    PS[m] = math.exp(2.0 * (base + syn_thr[m] / scale)) * (1.0 - 1e-9)
                    PR[m] = math.exp(2.0 * (base - red_thr[m] / scale)) * (1.0 + 1e-9)
                f = FB[m]
                nc = NC[m]
                x = QX[d, qi]
                if x > 0.0:
                    PB[m, f] = x
                    BB[m, f] = base
                    mark = x >= PS[m] or x <= PR[m]
                else:
                    PB[m, f] = 1.0
                    BB[m, f] = base - 0.5 * QL[d, qi]
                    mark = True
                if mark:
                    CP[m, nc] = f
                    for q in range(d):
                        CT[m, nc, q] = idx[q]
                    for q in range(m - d):
                        CT[m, nc, d + q] = QT[d, qi, q]
                    nc += 1
                f += 1
                if f == LOG_BATCH:
                    _flush(m, f, nc, PB, BB, OA, HB, CP, CT, scale, icount, fstats, hist,
                           hist_lo, hist_inv_w, syn_key, syn_idx, syn_n, syn_thr,
                           red_key, red_idx, red_n, red_thr, sbo, store_buf, top)
                    f = 0
                    nc = 0
                    PS[m] = math.exp(2.0 * (base + syn_thr[m] / scale)) * (1.0 - 1e-9)
                    PR[m] = math.exp(2.0 * (base - red_thr[m] / scale)) * (1.0 + 1e-9)
                FB[m] = f
                NC[m] = nc
                so = store_off[m]
                if so >= 0:
                    store_logdet[so] = QS[d, qi]
                    store_off[m] = so + 1
            d -= 1
            continue
        v = cur[d]
        cur[d] += 1
        e = C[d, v, v]
        inv = 1.0 / e
        dm = DM[d] * e
        if dm < DET_RENORM:
            LS[d + 1] = LS[d] + math.log(dm)
            DM[d + 1] = 1.0
        else:
            LS[d + 1] = LS[d]
            DM[d + 1] = dm
        for j in range(d):
            DP[d + 1, j] = DP[d, j] + B[d, v, j] * B[d, v, j] * inv
        DP[d + 1, d] = inv
        idx[d] = v
        dp = (d + 4) // 4 * 4
        full = d + 2 < K          # the new node will descend: all its covariances
        fused = d + 2 >= min_order
        dm2 = DM[d + 1] * DM[d + 1]
        # lane d of the update below then yields B[d+1, w, d] = c (restored after)
        B[d, v, d] = -1.0
        for w in range(v + 1, n):
            c = C[d, v, w] * inv
            ew = C[d, w, w] - c * C[d, v, w]
            C[d + 1, w, w] = ew
            if full:
                for x in range(w + 1, n):
                    C[d + 1, w, x] = C[d, w, x] - c * C[d, v, x]
            if fused:
                # the child S+v+w is evaluated here, from its new coefficients
                iw = 1.0 / ew
                prod = dm2 * ew
                for j in range(dp):
                    bn = B[d, w, j] - c * B[d, v, j]
                    B[d + 1, w, j] = bn
                    prod *= DP[d + 1, j] + bn * bn * iw
                if prod < 1e300 and prod >= 1e-300:
                    tmp[w] = prod
                else:
                    tmp[w] = -1.0
                    tml[w] = _log_prod_diag_blocked(DP, B, d + 1, w, iw, ew, dm2)
            else:
                for j in range(dp):
                    B[d + 1, w, j] = B[d, w, j] - c * B[d, v, j]
        B[d, v, d] = 0.0
        # S+v+(n-3) and S+v+(n-2) have 3 and 1 descendants: S+v evaluates them from
        # its own coefficients (H1 H2 H3 and G below) and does not descend into them,
        # which saves three in four descents
        qn = 0
        gskip = full and v + 2 < n
        hskip = full and v + 3 < n
        if hskip and d + 4 >= min_order:
            u = n - 3
            a = n - 2
            b = n - 1
            eu = C[d + 1, u, u]
            iu = 1.0 / eu
            ca = C[d + 1, u, a] * iu
            cb = C[d + 1, u, b] * iu
            ea = C[d + 1, a, a] - ca * C[d + 1, u, a]
            eb = C[d + 1, b, b] - cb * C[d + 1, u, b]
            cab = C[d + 1, a, b] - ca * C[d + 1, u, b]
            ia = 1.0 / ea
            ib = 1.0 / eb
            dmu = DM[d + 1] * eu
            lsu = LS[d + 1]
            if dmu < DET_RENORM:
                lsu += math.log(dmu)
                dmu = 1.0
            dq = (d + 5) // 4 * 4
            # state of S+v+u at depth d+2 (written: H3 and the rare paths read it);
            # lane d+1 gets diag P = 1/e_u and coefficients on u as in the descent
            DP[d + 1, d + 1] = 0.0
            B[d + 1, u, d + 1] = -1.0
            pa = dmu * dmu * ea
            pb = dmu * dmu * eb
            for j in range(dq):
                bu = B[d + 1, u, j]
                p2 = DP[d + 1, j] + bu * bu * iu
                ba = B[d + 1, a, j] - ca * bu
                bb = B[d + 1, b, j] - cb * bu
                DP[d + 2, j] = p2
                B[d + 2, a, j] = ba
                B[d + 2, b, j] = bb
                pa *= p2 + ba * ba * ia
                pb *= p2 + bb * bb * ib
            DP[d + 1, d + 1] = 1.0
            B[d + 1, u, d + 1] = 0.0
            if d + 3 >= min_order:
                # H1 = S+v+u+a, H2 = S+v+u+b
                for h in range(2):
                    x = pa if h == 0 else pb
                    eh = ea if h == 0 else eb
                    ih = ia if h == 0 else ib
                    QM[d + 1, qn] = d + 3
                    QB[d + 1, qn] = offset[d + 3] - lsu
                    if x < 1e300 and x >= 1e-300:
                        QX[d + 1, qn] = x
                    else:
                        QX[d + 1, qn] = -1.0
                        QL[d + 1, qn] = _log_prod_diag_blocked(DP, B, d + 2, a + h, ih, eh,
                                                               dmu * dmu)
                    if store_off[d + 3] >= 0:
                        QS[d + 1, qn] = lsu + math.log(dmu * eh)
                    QT[d + 1, qn, 0] = u
                    QT[d + 1, qn, 1] = a + h
                    qn += 1
            if d + 3 < K:
                # H3 = S+v+u+a+b: b appended to S+v+u+a
                c2 = cab * ia
                eb2 = eb - c2 * cab
                ib2 = 1.0 / eb2
                dma = dmu * ea
                lsa = lsu
                if dma < DET_RENORM:
                    lsa += math.log(dma)
                    dma = 1.0
                dr = (d + 6) // 4 * 4
                DP[d + 2, d + 2] = 0.0
                B[d + 2, a, d + 2] = -1.0
                p3 = dma * dma * eb2
                for j in range(dr):
                    ba = B[d + 2, a, j]
                    bb2 = B[d + 2, b, j] - c2 * ba
                    p3 *= (DP[d + 2, j] + ba * ba * ia) + bb2 * bb2 * ib2
                DP[d + 2, d + 2] = 1.0
                B[d + 2, a, d + 2] = 0.0
                QM[d + 1, qn] = d + 4
                QB[d + 1, qn] = offset[d + 4] - lsa
                if p3 < 1e300 and p3 >= 1e-300:
                    QX[d + 1, qn] = p3
                else:
                    for j in range(d + 2):
                        DP[d + 3, j] = DP[d + 2, j] + B[d + 2, a, j] * B[d + 2, a, j] * ia
                        B[d + 3, b, j] = B[d + 2, b, j] - c2 * B[d + 2, a, j]
                    DP[d + 3, d + 2] = ia
                    B[d + 3, b, d + 2] = c2
                    QX[d + 1, qn] = -1.0
                    QL[d + 1, qn] = _log_prod_diag_blocked(DP, B, d + 3, b, ib2, eb2, dma * dma)
                if store_off[d + 4] >= 0:
                    QS[d + 1, qn] = lsa + math.log(dma * eb2)
                QT[d + 1, qn, 0] = u
                QT[d + 1, qn, 1] = a
                QT[d + 1, qn, 2] = b
                qn += 1
        if gskip and d + 3 >= min_order:
            # G = S+v+(n-2)+(n-1), after H1 and H2 in lexicographic order
            u = n - 2
            t = n - 1
            eu = C[d + 1, u, u]
            iu = 1.0 / eu
            cg = C[d + 1, u, t] * iu
            et = C[d + 1, t, t] - cg * C[d + 1, u, t]
            it = 1.0 / et
            dmu = DM[d + 1] * eu
            lsg = LS[d + 1]
            if dmu < DET_RENORM:
                lsg += math.log(dmu)
                dmu = 1.0
            dq = (d + 5) // 4 * 4
            # lane d+1: diag P of S+v+u gets 1/e_u, t's coefficient on u gets cg
            DP[d + 1, d + 1] = 0.0
            B[d + 1, u, d + 1] = -1.0
            prod = dmu * dmu * et
            for j in range(dq):
                bu = B[d + 1, u, j]
                bt = B[d + 1, t, j] - cg * bu
                prod *= (DP[d + 1, j] + bu * bu * iu) + bt * bt * it
            DP[d + 1, d + 1] = 1.0
            B[d + 1, u, d + 1] = 0.0
            QM[d + 1, qn] = d + 3
            QB[d + 1, qn] = offset[d + 3] - lsg
            if prod < 1e300 and prod >= 1e-300:
                QX[d + 1, qn] = prod
            else:
                for j in range(d + 1):
                    DP[d + 2, j] = DP[d + 1, j] + B[d + 1, u, j] * B[d + 1, u, j] * iu
                    B[d + 2, t, j] = B[d + 1, t, j] - cg * B[d + 1, u, j]
                DP[d + 2, d + 1] = iu
                B[d + 2, t, d + 1] = cg
                QX[d + 1, qn] = -1.0
                QL[d + 1, qn] = _log_prod_diag_blocked(DP, B, d + 2, t, it, et, dmu * dmu)
            if store_off[d + 3] >= 0:
                QS[d + 1, qn] = lsg + math.log(dmu * et)
            QT[d + 1, qn, 0] = u
            QT[d + 1, qn, 1] = t
            qn += 1
        QN[d + 1] = qn
        d += 1
        elo = v + 1
        ehi = n
        pending = True
    for m in range(min_order, K + 1):
        if FB[m] > 0:
            _flush(m, FB[m], NC[m], PB, BB, OA, HB, CP, CT, scale, icount, fstats, hist,
                   hist_lo, hist_inv_w, syn_key, syn_idx, syn_n, syn_thr,
                   red_key, red_idx, red_n, red_thr, sbo, store_buf, top)
            FB[m] = 0


def kernel_oinfo(R: np.ndarray, sets: Sequence[Sequence[int]]) -> np.ndarray:
    """Plug-in O (nats) of given multiplets computed by the enumeration kernel.

    Each multiplet is a one-node work unit (its prefix extended step by step,
    then the node evaluated exactly as in a full walk): for accuracy checks of
    the kernel itself against reference_oinfo. R: (N, N) correlation.
    """
    # engine.py builds on this module, so its unit runner is imported here
    from .engine import _run_unit
    from .plan import Unit

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
