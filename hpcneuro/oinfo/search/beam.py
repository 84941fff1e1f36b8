"""Beam search: extend the `width` best multiplets of each order by one variable.

The method of the code next to the paper (its ``compute_higher_orders`` keeps
the 100 lowest and 100 highest tuples per order and extends them): the beam
of order k holds the `width` best distinct multiplets found at k; each member
is extended by every outsider (O(k) each through the evaluator, after one
O(k^2 N) factorisation of the member), and the best `width` distinct
extensions become the beam of order k+1. Members are split into fixed chunks
(tasks) whatever the number of workers, and the per-order selection is exact
(key, then smaller tuple), so the beam depends on nothing but the data.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .evaluator import ev_o_add, ev_reset, pool_offer, sorted_with


@njit(cache=True, nogil=True)
def beam_extend(R, members, sign, keys, idxs, fill, top, S, P, Bt, E, inS):
    """Offer every one-variable extension of every row of members (k variables) to
    the pool of order k+1. Returns the number of O evaluations."""
    n = R.shape[0]
    k = members.shape[1]
    cand = np.zeros(k + 1, np.int16)
    tmp = np.zeros(k + 1, np.int64)
    n_eval = 0
    for r in range(members.shape[0]):
        for j in range(k):
            S[j] = members[r, j]
        ld = ev_reset(R, S, k, P, Bt, E, inS)
        for v in range(n):
            if inS[v]:
                continue
            key = sign * ev_o_add(P, Bt, E, ld, k, v)
            n_eval += 1
            if key > 0.0:
                m = sorted_with(S, k, -1, v, tmp)
                for q in range(m):
                    cand[q] = tmp[q]
                pool_offer(keys, idxs, fill, m, key, cand, top)
    return n_eval
