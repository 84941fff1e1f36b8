"""Simulated annealing at one order: swap one member for one outsider, Metropolis.

Like THOI's ``simulated_annealing``: a chain at a fixed order k starts from a
random k-multiplet and proposes swaps (a random member out, a random
outsider in), each evaluated in O(k) through the evaluator; a move that
improves the objective (sign * O) is taken, a worse one with probability
exp(delta / T). T falls geometrically from T0 (the mean |delta| of the
first proposals, so the schedule adapts to the data's scale) to
T0 * T_END_FRACTION over `steps` proposals. Every evaluated proposal is
offered to the order's pool. A chain's random numbers come from its own seed
(numba's per-thread generator, seeded at the start of the chain), so the
results depend only on the seed, never on which worker runs the chain.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .evaluator import (REFRESH, ev_add, ev_o, ev_o_swap, ev_remove, ev_reset, pool_offer,
                        sorted_with)

#: the final temperature as a fraction of the initial one
T_END_FRACTION = 1e-4
#: proposals that set the initial temperature
T0_PROBES = 64


@njit(cache=True, nogil=True)
def anneal_chain(R, k, sign, steps, seed, keys, idxs, fill, top, S, P, Bt, E, inS):
    """One annealing chain at order k. Returns the number of O evaluations."""
    n = R.shape[0]
    np.random.seed(seed)
    cand = np.zeros(k + 1, np.int16)
    tmp = np.zeros(k + 1, np.int64)
    # a random k-subset (partial Fisher-Yates)
    perm = np.arange(n)
    for i in range(k):
        j = i + np.random.randint(n - i)
        perm[i], perm[j] = perm[j], perm[i]
        S[i] = perm[i]
    ld = ev_reset(R, S, k, P, Bt, E, inS)
    cur = sign * ev_o(P, ld, k)
    n_eval = 1
    m = sorted_with(S, k, -1, -1, tmp)
    for q in range(m):
        cand[q] = tmp[q]
    pool_offer(keys, idxs, fill, k, cur, cand, top)
    if k >= n:
        return n_eval
    t0 = 0.0
    for i in range(T0_PROBES):
        q = np.random.randint(k)
        v = np.random.randint(n)
        while inS[v]:
            v = np.random.randint(n)
        t0 += abs(sign * ev_o_swap(P, Bt, E, ld, k, q, v) - cur)
        n_eval += 1
    t0 = max(t0 / T0_PROBES, 1e-12)
    cool = math.exp(math.log(T_END_FRACTION) / max(steps, 1))
    temp = t0
    moves = 0
    for step in range(steps):
        q = np.random.randint(k)
        v = np.random.randint(n)
        while inS[v]:
            v = np.random.randint(n)
        o = ev_o_swap(P, Bt, E, ld, k, q, v)
        n_eval += 1
        key = sign * o
        if key > 0.0:
            mm = sorted_with(S, k, q, v, tmp)
            for j in range(mm):
                cand[j] = tmp[j]
            pool_offer(keys, idxs, fill, k, key, cand, top)
        delta = key - cur
        if delta >= 0.0 or np.random.random() < math.exp(delta / temp):
            ld += ev_remove(S, k, P, Bt, E, inS, q)
            ld += ev_add(R, S, k - 1, P, Bt, E, inS, v)
            cur = key
            moves += 1
            if moves % REFRESH == 0:
                ld = ev_reset(R, S, k, P, Bt, E, inS)
                cur = sign * ev_o(P, ld, k)
        temp *= cool
    return n_eval
