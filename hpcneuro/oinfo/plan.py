"""Work units: closed-form sizes of the enumeration tree and a worker-independent split.

Work units are (prefix, lo, hi, shallow): the children prefix+v for lo <= v < hi
and (unless shallow) their whole subtrees up to max_order. Their sizes are
closed-form binomial sums, so the tree is cut into balanced units without index
arrays; the cut depends only on (N, orders, mode), never on the number of
workers, which is what makes results bit-identical for any number of workers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _comb_table(n: int) -> np.ndarray:
    """(n+1, n+1) float64 binomial coefficients C[a, b] (Pascal's triangle, 0 above a)."""
    c = np.zeros((n + 1, n + 1))
    for a in range(n + 1):
        c[a, 0] = 1.0
        for b in range(1, a + 1):
            c[a, b] = c[a - 1, b - 1] + c[a - 1, b]
    return c


@dataclass(frozen=True)
class Unit:
    """Children prefix+(v,) for lo <= v < hi, with subtrees unless shallow.

    cost: planned work in cost units (see plan_units), for balancing and progress.
    """

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
        # one cost unit is ~1.4 ns here (N = 30: ~26 ns of CPU per multiplet of
        # ~19 units): aim at ~1e7 (~14 ms) per unit, so that the last tasks (one
        # unit each, engine.task_groups) end close together, but keep 16 units for mid-size
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


def unit_count(unit: Unit, n: int, order: int) -> int:
    """Number of multiplets of one order inside a work unit (closed form)."""
    p = len(unit.prefix)
    if unit.shallow:
        return (unit.hi - unit.lo) if order == p + 1 else 0
    if order < p + 1:
        return 0
    return sum(math.comb(n - 1 - v, order - p - 1) for v in range(unit.lo, unit.hi))


def _combinations(n: int, k: int) -> np.ndarray:
    """All k-subsets of range(n) in lexicographic order, (C(n, k), k) int64.

    Built column by column in numpy, not numba: plan.py is on the path of every
    job, and a tiny one (tiny.py) must not pay for numba's import. Each row of
    the first q columns is repeated once per admissible value of column q,
    which keeps lexicographic order.
    """
    if k == 0:
        return np.zeros((1, 0), np.int64)
    if k > n:
        return np.zeros((0, k), np.int64)
    vals = [np.arange(n - k + 1, dtype=np.int64)]  # column q of every (q+1)-prefix
    parents = []                                    # row of its q-prefix
    for q in range(1, k):
        last = vals[-1]
        counts = (n - k + q) - last                 # values last+1 .. n-k+q
        par = np.repeat(np.arange(len(last), dtype=np.int64), counts)
        starts = np.cumsum(counts) - counts
        within = np.arange(len(par), dtype=np.int64) - starts[par]
        vals.append(last[par] + 1 + within)
        parents.append(par)
    out = np.empty((len(vals[-1]), k), np.int64)
    row = np.arange(len(vals[-1]), dtype=np.int64)
    for q in range(k - 1, -1, -1):
        out[:, q] = vals[q][row]
        if q:
            row = parents[q - 1][row]
    return out


def combinations_lex(n: int, k: int, targeted: bool = False) -> np.ndarray:
    """k-subsets of range(n), lexicographic, (M, k) int64; targeted: all contain 0
    (targeted mode puts the target first in kernel space)."""
    if not targeted:
        return _combinations(n, k)
    rest = _combinations(n - 1, k - 1) + 1
    return np.column_stack([np.zeros(len(rest), np.int64), rest]).reshape(-1, k)


