"""Tiny exhaustive jobs in plain numpy: no numba import, no JIT set-up.

A job of a few thousand multiplets (a 6-column table: 42) is done in
milliseconds by one batched Cholesky per order, while importing numba (~0.18 s
CPU) and its first call (CPU target set-up, ~0.3 s, even for a cached
function) cost more than everything else of the command's start-up (issue 14).
``compute_oinfo`` takes this path for exhaustive jobs of at most
TINY_JOB_MULTIPLETS multiplets (all orders) without bootstrap or permutations:
a pure function of the job, never of the scheduler, the number of workers or
timing. Such a job runs in-process whatever the scheduler.

What comes out is a ``Partial`` like the kernel's (same accumulators, same
histogram rule, same top-K order: key descending, ties by the smaller tuple),
so the OINFO.h5 written from it has the same layout; values agree with the
kernel's and with the slogdet reference to rounding (tests/test_oinfo.py
holds them to 1e-12 relative on random data, with the same top-K multiplets
and histogram counts).
"""
from __future__ import annotations

import math

import numpy as np

from .engine import Partial, _select_top
from .plan import combinations_lex

#: exhaustive jobs up to this many multiplets (all orders) run here
TINY_JOB_MULTIPLETS = 20_000
#: multiplets per batched factorisation
CHUNK = 4096


def oinfo_sets_np(R: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """(O, TC, DTC) plug-in nats of each row of sets, (M, 3): reference.oinfo_sets
    in numpy (batched Cholesky, W = L^-1, diag(P) = column sums of W^2)."""
    sets = np.asarray(sets, np.int64)
    m, k = sets.shape
    out = np.empty((m, 3))
    for a in range(0, m, CHUNK):
        s = sets[a:a + CHUNK]
        sub = R[s[:, :, None], s[:, None, :]]
        L = np.linalg.cholesky(sub)
        ld = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
        W = np.linalg.inv(L)
        slp = np.log((W * W).sum(axis=1)).sum(axis=1)
        tc = -0.5 * ld
        dtc = 0.5 * (ld + slp)
        out[a:a + CHUNK, 0] = tc - dtc
        out[a:a + CHUNK, 1] = tc
        out[a:a + CHUNK, 2] = dtc
    return out


def tiny_engine(R: np.ndarray, root: tuple[int, ...], cfg: dict) -> Partial:
    """Every multiplet of orders cfg min_order..max_order (containing kernel column 0
    if root) evaluated directly; the accumulators of engine._engine."""
    K = cfg["max_order"]
    top = cfg["top"]
    nb = cfg["nbins"]
    n = R.shape[0]
    icount = np.zeros((K + 1, 3), np.int64)
    sums = np.zeros(K + 1)
    sumsq = np.zeros(K + 1)
    fmin = np.full(K + 1, np.inf)
    fmax = np.full(K + 1, -np.inf)
    hist = np.zeros((K + 1, nb + 2 if nb else 0), np.int64)
    syn_key = [np.zeros(0) for _ in range(K + 1)]
    syn_idx = [np.zeros((0, m), np.int16) for m in range(K + 1)]
    red_key = [np.zeros(0) for _ in range(K + 1)]
    red_idx = [np.zeros((0, m), np.int16) for m in range(K + 1)]
    stored = {}
    for m in range(cfg["min_order"], K + 1):
        sets = combinations_lex(n, m, bool(root))
        vals = oinfo_sets_np(R, sets)
        o = (vals[:, 0] + cfg["offset"][m]) * cfg["scale"]
        if m in cfg.get("stored", ()):
            stored[m] = (o, -2.0 * vals[:, 1])
        icount[m] = (len(o), int((o < 0.0).sum()), int((o > 0.0).sum()))
        sums[m] = math.fsum(o)
        sumsq[m] = math.fsum(o * o)
        if len(o):
            fmin[m], fmax[m] = o.min(), o.max()
        if nb:
            h = np.minimum(np.maximum((o - cfg["hist_lo"][m]) * cfg["hist_inv_w"][m] + 1.0,
                                      0.0), nb + 1.0).astype(np.int64)
            hist[m] = np.bincount(h, minlength=nb + 2)
        if top:
            idx16 = sets.astype(np.int16)
            neg, pos = o < 0.0, o > 0.0
            syn_key[m], syn_idx[m] = _select_top(-o[neg], idx16[neg], top)
            red_key[m], red_idx[m] = _select_top(o[pos], idx16[pos], top)
    return Partial(icount, [sums], [sumsq], fmin, fmax, hist, syn_key, syn_idx, red_key,
                   red_idx, stored)
