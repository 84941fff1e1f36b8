"""O-information over every multiplet of every order, exact, on threads or Dask.

``compute_oinfo`` is the face; one module per concern behind it:

- estimators: copula scores, correlation matrix, entropy-bias offsets;
- reference: slogdet reference and direct Cholesky of given multiplets;
- kernel: the numba depth-first walk over one work unit;
- tiny: jobs of a few thousand multiplets in numpy (no numba import);
- plan: work units with closed-form sizes, worker-independent;
- engine: threads / Dask submission, exact merges, open_client (Dask clusters);
- inputs: checks of options and data, degenerate columns;
- stats: histogram ranges, gradient, bootstrap, permutations, BH-FDR;
- result: OInfoResult / OrderResult and OINFO.h5 (write and read).

Results are bit-identical for any number of workers: the cut into units
depends only on the problem, and every merge is exact or exactly rounded.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from typing import Any, Sequence

import numpy as np

from ..errors import UserError
from .estimators import (LN2, bias_offsets, copula_normalize, correlation_matrix,
                         entropy_bias, sinfo_offsets)
from .inputs import (MAX_MULTIPLETS, MIN_EIGENVALUE, check_conditioning, check_job_size,
                     check_options, check_search, check_sizes,
                     drop_degenerate, normalize_streamed, validate)
from .plan import Unit, combinations_lex, count_multiplets, plan_units, unit_count
from .result import STORE_ALL_MAX, OInfoResult, OrderResult, OrderStats
from .stats import (HIST_BINS, ReportedRows, add_bootstrap, add_gradient, add_permutations,
                    bh_fdr, hist_edges, hist_ranges, oinfo_sets)

# numba (kernel, reference) and Dask (engine's clients) are imported on first use, so
# that a tiny job (tiny.py) never pays for them: these names resolve in __getattr__
_LAZY = {"kernel_oinfo": "kernel", "walk_unit": "kernel", "reference_oinfo": "reference",
         "SMALL_JOB_COST": "engine", "GUIDED_SHARE": "engine", "Partial": "engine",
         "_engine": "engine", "load_slurm_defaults": "engine", "open_client": "engine"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "compute_oinfo", "OInfoResult", "OrderResult", "OrderStats", "open_client",
    "load_slurm_defaults", "reference_oinfo", "oinfo_sets", "kernel_oinfo", "walk_unit",
    "copula_normalize", "correlation_matrix", "entropy_bias", "bias_offsets", "sinfo_offsets",
    "plan_units", "Unit", "unit_count", "count_multiplets", "combinations_lex", "Partial",
    "bh_fdr", "STORE_ALL_MAX", "HIST_BINS", "MIN_EIGENVALUE", "SMALL_JOB_COST",
    "GUIDED_SHARE", "MAX_MULTIPLETS",
]

log = logging.getLogger(__name__)


def compute_oinfo(data: Any, names: Sequence[str], min_order: int = 3,
                  max_order: int | None = None, target: str | None = None,
                  estimator: str = "gc", bias_correct: bool = False, units: str = "nats",
                  bootstrap: int = 0, permutations: int = 0, top: int = 100,
                  gradient: bool = False, scheduler: str = "none", client: Any = None,
                  n_workers: int | None = None, seed: int = 0, progress: bool = False,
                  store_all_max: int = STORE_ALL_MAX, nan_policy: str = "raise",
                  ci: float = 0.95, n_units: int | None = None, search: str = "exhaustive",
                  restarts: int | None = None, beam_width: int | None = None,
                  anneal_steps: int | None = None, objective: str | None = None,
                  max_multiplets: int | None = None) -> OInfoResult:
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
    identical either way. n_workers: single-threaded workers (threads for
    "none", see open_client for the others; default: cores). Exhaustive jobs
    of at most tiny.TINY_JOB_MULTIPLETS multiplets without bootstrap or
    permutations run in numpy in-process (tiny.py), whatever the scheduler:
    values within rounding (1e-12 relative) of the kernel's.
    Orders with at most store_all_max multiplets are stored completely.
    Constant and duplicated columns are dropped with a logged warning.
    n_units: number of work units (default: from the problem size only, so
    results never depend on the number of workers).
    search: "exhaustive" (every multiplet; refused above max_multiplets) or
    "greedy" | "annealing" | "beam" (search/): the `top` best of each sign
    of `objective` (synergy | redundancy | both) among the multiplets the
    search evaluated, with restarts (greedy, annealing), beam_width (beam),
    anneal_steps (annealing); None takes the search's default.
    max_multiplets: refuse exhaustive jobs with more multiplets (default
    MAX_MULTIPLETS), checked with the number of multiplets and a time estimate
    logged before any work.
    """
    t0 = time.perf_counter()
    check_options(estimator, units, nan_policy, bootstrap, permutations, top, n_workers)
    sparams = check_search(search, restarts, beam_width, anneal_steps, objective, target,
                           bootstrap, permutations)
    x, names = validate(data, names, nan_policy)
    if target is not None and target not in names:
        raise UserError(f"unknown target column {target!r}; available: {', '.join(names)}")
    if sparams is None:  # before the copula and the plan, whose cost grows with the job
        check_job_size(len(names), min_order, max_order, target is not None,
                       n_workers or os.cpu_count() or 1, max_multiplets)
    streamed = hasattr(x, "compute")
    if streamed:
        from ..tables import stream_correlation

        cov, n_samples = stream_correlation(x, estimator)
        dropped: list[str] = []
        R = normalize_streamed(cov, names)
        xs = None
    else:
        x, xs, names, dropped = drop_degenerate(x, names, target, estimator)
        n_samples = x.shape[0]
    n = len(names)
    max_order = check_sizes(n, n_samples, min_order, max_order)
    if not streamed:
        R = correlation_matrix(xs, "gauss")
    check_conditioning(R)

    # targeted mode: put the target first so every multiplet starts with it
    perm = list(range(n))
    root: tuple[int, ...] = ()
    if target is not None:
        t = names.index(target)
        perm = [t] + [j for j in range(n) if j != t]
        root = (0,)
    Rp = np.ascontiguousarray(R[np.ix_(perm, perm)])
    scale = 1.0 / LN2 if units == "bits" else 1.0
    offset = bias_offsets(max_order, n_samples, bias_correct)
    orders = list(range(min_order, max_order + 1))
    if sparams is not None:
        return _search_oinfo(Rp, names, dropped, orders, sparams, top, offset, scale,
                             n_samples, gradient, client, scheduler, n_workers, seed, t0,
                             dict(estimator=estimator, bias_correct=bool(bias_correct),
                                  units=units, n_samples=int(n_samples), target=target,
                                  min_order=min_order, max_order=max_order, top=int(top),
                                  store_all_max=int(store_all_max), bootstrap=0,
                                  permutations=0, ci_level=float(ci), seed=int(seed)),
                             bias_correct)
    from . import tiny

    # a pure function of the job: never of the scheduler, the workers or timing
    n_multiplets = sum(count_multiplets(n, k, target is not None) for k in orders)
    is_tiny = (not bootstrap and not permutations
               and n_multiplets <= tiny.TINY_JOB_MULTIPLETS)
    evaluate = tiny.oinfo_sets_np if is_tiny else oinfo_sets
    hist_lo, hist_inv_w = hist_ranges(Rp, orders, root, offset, scale, seed, evaluate)
    stored = tuple(k for k in orders if count_multiplets(n, k, target is not None) <= store_all_max)
    cfg = dict(min_order=min_order, max_order=max_order, offset=offset, scale=scale,
               hist_lo=hist_lo, hist_inv_w=hist_inv_w, top=int(top), nbins=HIST_BINS,
               stored=stored)
    units_ = plan_units(n, max_order, root, n_units)

    if is_tiny:
        log.info("tiny job (%d multiplets): numpy, in-process, no cluster", n_multiplets)
        ctx = contextlib.nullcontext(None)
    else:
        from . import engine

        # hpcneuro.oinfo.SMALL_JOB_COST, when set on this package, wins (tests set it)
        small_cost = globals().get("SMALL_JOB_COST", engine.SMALL_JOB_COST)
        work = sum(u.cost for u in units_) * (1 + int(bootstrap))
        if client is None and scheduler == "local" and work < small_cost:
            log.info("small job (%.2g cost units): running in-process threads instead of a "
                     "LocalCluster", work)
            scheduler = "none"
        ctx = (contextlib.nullcontext(client) if client is not None
               else engine.open_client(scheduler, n_workers))
    cfg["threads"] = n_workers or os.cpu_count() or 1
    with ctx as cl:
        if is_tiny:
            part = tiny.tiny_engine(Rp, root, cfg)
        else:
            part = engine._engine(Rp, units_, cfg, cl, progress)
        t_engine = time.perf_counter() - t0

        soff = sinfo_offsets(max_order, n_samples, bias_correct)
        res_orders: dict[int, OrderResult] = {}
        rows: dict[int, ReportedRows] = {}
        for k in orders:
            res_orders[k], rows[k] = _order_result(
                k, part, Rp, np.array(perm), root, k in stored, offset[k], soff[k], scale,
                hist_edges(hist_lo[k], hist_inv_w[k]), evaluate)
        stats = {k: r.stats for k, r in res_orders.items()}
        if gradient:
            add_gradient(Rp, rows, stats, offset, scale, evaluate)
        rng = np.random.default_rng(seed)
        if bootstrap:
            add_bootstrap(xs, perm, rows, stats, units_, cfg, cl, int(bootstrap), rng, ci,
                          offset, scale)
        if permutations:
            add_permutations(xs, perm, rows, stats, int(permutations), rng, offset, scale)
        n_workers_used = 0 if cl is None else len(cl.scheduler_info().get("workers", {}))
    attrs = dict(estimator=estimator, bias_correct=bool(bias_correct), units=units,
                 n_samples=int(n_samples), target=target, min_order=min_order,
                 max_order=max_order, top=int(top), store_all_max=int(store_all_max),
                 bootstrap=int(bootstrap), permutations=int(permutations),
                 ci_level=float(ci), seed=int(seed), n_units=len(units_),
                 n_workers=n_workers_used, engine_seconds=t_engine,
                 seconds=time.perf_counter() - t0)
    return OInfoResult(variables=list(names), orders=res_orders, attrs=attrs, dropped=dropped)


def _order_result(k: int, part: Any, Rp: np.ndarray, perm: np.ndarray,
                  root: tuple[int, ...], complete: bool, offset: float, soff: float,
                  scale: float, edges: np.ndarray,
                  evaluate=oinfo_sets) -> tuple[OrderResult, ReportedRows]:
    """One order's result from the merged accumulators, and its rows in kernel space.

    perm: (N,) original column of each kernel column. offset/soff: bias
    corrections of O and of S = TC + DTC for order k (nats); scale: 1 or 1/ln 2.
    part: engine.Partial; evaluate: the job's (R, sets) -> (M, 3) evaluator.
    """
    cnt = int(part.icount[k, 0])
    mean = math.fsum(s[k] for s in part.sums) / cnt
    var = max(math.fsum(s[k] for s in part.sumsq) / cnt - mean * mean, 0.0)
    if complete:
        # O and log det come from the kernel itself, in lexicographic order
        sets = combinations_lex(len(perm), k, bool(root))
        o, logdet = part.stored[k]
        tc_plugin = -0.5 * logdet
        o_plugin = o / scale - offset
    else:
        sets = np.concatenate([part.syn_idx[k], part.red_idx[k]]).astype(np.int64)
        vals = evaluate(Rp, sets) if len(sets) else np.zeros((0, 3))
        o_plugin, tc_plugin = vals[:, 0], vals[:, 1]
        o = (o_plugin + offset) * scale
    # TC + DTC is bias-corrected by soff, TC - DTC (= O) by offset
    tc = 0.5 * (2.0 * tc_plugin - o_plugin + soff) * scale + 0.5 * o
    dtc = tc - o
    # map to original column indices, ascending within each row
    orig = perm[sets]
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
    return r, ReportedRows(np.ascontiguousarray(sets), colorder, o)


def _search_oinfo(Rp, names, dropped, orders, sparams, top, offset, scale, n_samples,
                  gradient, client, scheduler, n_workers, seed, t0, attrs, bias_correct):
    """compute_oinfo for a search: reported rows per order, statistics over them only."""
    from .search import run_search

    threads = n_workers or os.cpu_count() or 1
    # searches are many small tasks: a LocalCluster only pays off for big jobs, so
    # "local" runs in-process threads unless a client is given (results are identical)
    if client is None and scheduler == "local":
        scheduler = "none"
    from .engine import open_client

    ctx = contextlib.nullcontext(client) if client is not None else open_client(scheduler, n_workers)
    soff = sinfo_offsets(max(orders), n_samples, bias_correct)
    with ctx as cl:
        found = run_search(Rp, sparams["search"], orders[0], orders[-1], int(top), sparams,
                           seed, cl, threads)
        t_engine = time.perf_counter() - t0
        res_orders: dict[int, OrderResult] = {}
        rows: dict[int, ReportedRows] = {}
        for k in orders:
            sets = np.ascontiguousarray(found.sets[k], dtype=np.int64).reshape(-1, k)
            vals = oinfo_sets(Rp, sets) if len(sets) else np.zeros((0, 3))
            o_plugin, tc_plugin = vals[:, 0], vals[:, 1]
            o = (o_plugin + offset[k]) * scale
            tc = 0.5 * (2.0 * tc_plugin - o_plugin + soff[k]) * scale + 0.5 * o
            dtc = tc - o
            order = np.lexsort(tuple(sets[:, q] for q in range(k - 1, -1, -1)) + (o,))
            sets, o, tc, dtc = sets[order], o[order], tc[order], dtc[order]
            if len(o):
                lo, hi = float(o.min()), float(o.max())
                span = max(hi - lo, 1e-12)
                edges = np.linspace(lo - 1e-9 * span, hi + 1e-9 * span, HIST_BINS + 1)
                counts = np.concatenate([[0], np.histogram(o, edges)[0], [0]]).astype(np.int64)
            else:
                edges, counts = np.zeros(HIST_BINS + 1), np.zeros(HIST_BINS + 2, np.int64)
            res_orders[k] = OrderResult(
                order=k, n_multiplets=len(o), n_synergistic=int((o < 0).sum()),
                n_redundant=int((o > 0).sum()), mean=float(o.mean()) if len(o) else math.nan,
                std=float(o.std()) if len(o) else math.nan,
                min=float(o.min()) if len(o) else math.nan,
                max=float(o.max()) if len(o) else math.nan, hist_edges=edges,
                hist_counts=counts, multiplets=sets, oinfo=o, tc=tc, dtc=dtc, complete=False,
                selection=sparams["search"])
            rows[k] = ReportedRows(sets, np.broadcast_to(np.arange(k), sets.shape), o)
        if gradient:
            add_gradient(Rp, rows, {k: r.stats for k, r in res_orders.items()}, offset, scale)
        n_workers_used = 0 if cl is None else len(cl.scheduler_info().get("workers", {}))
    attrs = dict(attrs, **{k: v for k, v in sparams.items()}, exhaustive=False,
                 n_evaluations=found.n_evaluations, n_workers=n_workers_used,
                 engine_seconds=t_engine, seconds=time.perf_counter() - t0)
    return OInfoResult(variables=list(names), orders=res_orders, attrs=attrs, dropped=dropped)
