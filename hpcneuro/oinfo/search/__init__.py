"""Search past exhaustive reach: greedy, simulated annealing and beam search.

``run_search`` finds, per order, the ``top`` most synergistic and/or most
redundant multiplets without visiting every multiplet. One module per
algorithm (greedy.py, annealing.py, beam.py) over one incremental evaluator
(evaluator.py: add / remove / swap of one variable in O(k) per evaluated
multiplet, O(kN) per applied move). Work runs as independent tasks (chains,
beam chunks) through engine.run_tasks, the exhaustive engine's submission
path (threads or Dask); each task's randomness comes from its own seed and
every merge is exact, so results depend on the seed only, never on the
number of workers. Reported values are recomputed directly (one Cholesky per
reported multiplet), as for the exhaustive engine's top-K.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...analysis import (DEFAULT_BEAM_WIDTH, DEFAULT_OBJECTIVE, DEFAULT_RESTARTS,  # noqa: F401
                         DEFAULT_STEPS, OBJECTIVES, SEARCHES, search_params)
from ...errors import UserError
from ..engine import _select_top, run_tasks
from ..reference import oinfo_sets
from .annealing import anneal_chain
from .beam import beam_extend
from .evaluator import new_pool, new_state
from .greedy import greedy_chains

#: greedy and beam start from the best multiplets of order 3: found exhaustively
#: when there are at most this many triplets (N <= ~490), else from a random sample
START_EXHAUSTIVE_MAX = 20_000_000
#: triplets drawn when the start order is not enumerated
START_SAMPLE = 200_000
#: beam members per task
BEAM_CHUNK = 16
_SIGNS = {"synergy": (-1.0,), "redundancy": (1.0,), "both": (-1.0, 1.0)}


@dataclass
class SearchResult:
    """Per order k: the reported multiplets (kernel space, ascending rows) and the
    number of O evaluations the search made."""

    sets: dict[int, np.ndarray] = field(default_factory=dict)
    n_evaluations: int = 0
    params: dict[str, Any] = field(default_factory=dict)


def _task_seed(seed: int, *parts: int) -> int:
    """A chain's own seed from the run's seed and the chain's identity."""
    return int(np.random.SeedSequence([int(seed) % 2**63, *parts]).generate_state(1)[0]
               & 0x7FFFFFFF)


def _pool_rows(keys, idxs, fill, orders) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return {m: (keys[m, :fill[m]].copy(), idxs[m, :fill[m], :m].astype(np.int64))
            for m in orders if fill[m]}


def _greedy_task(R, starts, sign, min_order, max_order, top):
    keys, idxs, fill = new_pool(max_order, top)
    n_eval = greedy_chains(R, starts, sign, min_order, max_order, keys, idxs, fill, top,
                           *new_state(R.shape[0], max_order))
    return _pool_rows(keys, idxs, fill, range(min_order, max_order + 1)), n_eval


def _anneal_task(R, k, sign, steps, seed, top):
    keys, idxs, fill = new_pool(k, top)
    n_eval = anneal_chain(R, k, sign, steps, seed, keys, idxs, fill, top,
                          *new_state(R.shape[0], k))
    return _pool_rows(keys, idxs, fill, (k,)), n_eval


def _beam_task(R, members, sign, top):
    k = members.shape[1]
    keys, idxs, fill = new_pool(k + 1, top)
    n_eval = beam_extend(R, members, sign, keys, idxs, fill, top,
                         *new_state(R.shape[0], k + 1))
    return _pool_rows(keys, idxs, fill, (k + 1,)), n_eval


class _Pools:
    """Candidates per (order, sign) from many tasks; exact, order-independent selection."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, float], list[np.ndarray]] = {}

    def add(self, sign: float, pools: dict) -> None:
        for m, (_, idx) in pools.items():
            self.rows.setdefault((m, sign), []).append(idx)

    def best(self, R: np.ndarray, m: int, sign: float, top: int) -> np.ndarray:
        """The `top` best distinct multiplets by exact O (ties: smaller tuple)."""
        parts = self.rows.get((m, sign))
        if not parts:
            return np.zeros((0, m), np.int64)
        sets = np.unique(np.concatenate(parts), axis=0)  # sorted, distinct
        key = sign * oinfo_sets(R, np.ascontiguousarray(sets))[:, 0]
        keep = key > 0
        k2, s2 = _select_top(key[keep], sets[keep], top)
        return s2


def _start_sets(R: np.ndarray, width: int, sign: float, seed: int, client: Any,
                threads: int) -> tuple[np.ndarray, int]:
    """The `width` best triplets for the sign, exhaustive when affordable, else from a
    random sample; and the number of triplets evaluated."""
    n = R.shape[0]
    if math.comb(n, 3) <= START_EXHAUSTIVE_MAX:
        from ..engine import _engine
        from ..plan import plan_units

        cfg = dict(min_order=3, max_order=3, offset=np.zeros(4), scale=1.0,
                   hist_lo=np.zeros(4), hist_inv_w=np.ones(4), top=int(width), nbins=0,
                   stored=(), threads=threads)
        part = _engine(R, plan_units(n, 3), cfg, client, False)
        idx = part.syn_idx[3] if sign < 0 else part.red_idx[3]
        return np.sort(np.asarray(idx, np.int64), axis=1), math.comb(n, 3)
    rng = np.random.default_rng(_task_seed(seed, 3, 0))
    # three draws per row, rows with a repeat dropped: O(START_SAMPLE) memory, not
    # O(START_SAMPLE * N) (a random permutation per row was 1.6 GB at N = 1000)
    sets = np.sort(rng.integers(0, n, size=(2 * START_SAMPLE, 3)), axis=1)
    sets = sets[(sets[:, 0] < sets[:, 1]) & (sets[:, 1] < sets[:, 2])][:START_SAMPLE]
    sets = np.unique(sets, axis=0)
    key = sign * oinfo_sets(R, sets)[:, 0]
    order = np.lexsort((-key,))[:width]
    return sets[order], len(sets)


def run_search(R: np.ndarray, method: str, min_order: int, max_order: int, top: int,
               params: dict[str, Any], seed: int, client: Any, threads: int) -> SearchResult:
    """Run one search on the (N, N) correlation R for orders min_order..max_order.

    Returns, per order, the reported multiplets (ascending rows): the `top`
    best of each requested sign among everything the search evaluated.
    """
    out = SearchResult(params=dict(params))
    pools = _Pools()
    signs = _SIGNS[params["objective"]]
    top = max(1, int(top))
    n_eval = 0
    if method == "annealing":
        args = [(k, s, params["anneal_steps"], _task_seed(seed, k, int(s > 0), r), top)
                for k in range(min_order, max_order + 1) for s in signs
                for r in range(params["restarts"])]
        for i, (pool, ne) in run_tasks(_anneal_task, R, args, client, threads):
            pools.add(args[i][1], pool)
            n_eval += ne
    elif method == "greedy":
        args = []
        for s in signs:
            starts, ne = _start_sets(R, params["restarts"], s, seed, client, threads)
            n_eval += ne
            args += [(starts[r:r + 1], s, min_order, max_order, top) for r in range(len(starts))]
            pools.add(s, {3: (None, starts)})
        for i, (pool, ne) in run_tasks(_greedy_task, R, args, client, threads):
            pools.add(args[i][1], pool)
            n_eval += ne
    elif method == "beam":
        width = params["beam_width"]
        for s in signs:
            beam, ne = _start_sets(R, max(width, top), s, seed, client, threads)
            n_eval += ne
            pools.add(s, {3: (None, beam)})
            beam = pools.best(R, 3, s, width)
            for k in range(3, max_order):
                if not len(beam):
                    break
                args = [(beam[i:i + BEAM_CHUNK], s, max(width, top))
                        for i in range(0, len(beam), BEAM_CHUNK)]
                for i, (pool, ne) in run_tasks(_beam_task, R, args, client, threads):
                    pools.add(s, pool)
                    n_eval += ne
                beam = pools.best(R, k + 1, s, width)
    else:
        raise UserError(f"unknown search {method!r}")
    for k in range(min_order, max_order + 1):
        parts = [pools.best(R, k, s, top) for s in signs]
        out.sets[k] = np.concatenate(parts) if parts else np.zeros((0, k), np.int64)
    out.n_evaluations = int(n_eval)
    return out
