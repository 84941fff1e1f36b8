"""Greedy search: from each start multiplet, add the one variable that helps most.

Like THOI's ``greedy`` (and the single-chain version of the code next to the
paper): a chain starts from one of the best multiplets of the start order and,
at each order, appends the variable whose addition gives the most synergistic
(sign -1) or most redundant (sign +1) multiplet. Every candidate evaluated on
the way (all N - k additions at every order, O(k) each through the evaluator)
is offered to that order's pool, so an order's results are the best of
everything the chains saw, not only the chains themselves. Deterministic:
ties go to the smaller variable index.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .evaluator import ev_add, ev_o_add, ev_reset, pool_offer, sorted_with, REFRESH


@njit(cache=True, nogil=True)
def greedy_chains(R, starts, sign, min_order, max_order, keys, idxs, fill, top,
                  S, P, Bt, E, inS):
    """Run one chain per row of starts (k0 variables each) up to max_order.

    Offers every evaluated multiplet of order >= min_order to the pools
    (keys, idxs, fill). Returns the number of O evaluations.
    """
    n = R.shape[0]
    k0 = starts.shape[1]
    cand = np.zeros(max_order + 1, np.int16)
    tmp = np.zeros(max_order + 1, np.int64)
    n_eval = 0
    for r in range(starts.shape[0]):
        for j in range(k0):
            S[j] = starts[r, j]
        ld = ev_reset(R, S, k0, P, Bt, E, inS)
        moves = 0
        for k in range(k0, max_order):
            best = -np.inf
            bv = -1
            for v in range(n):
                if inS[v]:
                    continue
                o = ev_o_add(P, Bt, E, ld, k, v)
                n_eval += 1
                key = sign * o
                if k + 1 >= min_order and key > 0.0:
                    m = sorted_with(S, k, -1, v, tmp)
                    for q in range(m):
                        cand[q] = tmp[q]
                    pool_offer(keys, idxs, fill, m, key, cand, top)
                if key > best:
                    best = key
                    bv = v
            if bv < 0:
                break
            ld += ev_add(R, S, k, P, Bt, E, inS, bv)
            moves += 1
            if moves % REFRESH == 0:
                ld = ev_reset(R, S, k + 1, P, Bt, E, inS)
    return n_eval
