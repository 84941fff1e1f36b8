"""Where and how work units run: threads in-process or a Dask cluster, merged exactly.

``_engine`` submits runs of consecutive work units (plan.py) to a
thread pool or a ``distributed.Client`` and fold the per-unit accumulators
(``Partial``) together. Every merge is exact or exactly rounded (math.fsum,
exact top-K selection), so neither the grouping nor the order of completion
can change a result.

``open_client(scheduler, n_workers)`` starts (or connects to) the Dask side:
"none", "local" (LocalCluster), "slurm" (dask-jobqueue SLURMCluster with the
packaged defaults slurm-dask.yaml merged into dask's config) or an address.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import EnvironmentProblem, UserError
from .plan import Unit, unit_count

log = logging.getLogger(__name__)

#: with scheduler "local", jobs whose planned work (cost units of plan_units,
#: ~1.4 ns each on one core here, N = 30, times 1 + bootstrap) is below this run
#: in-process on one thread per core: about 1.4 core-seconds, less than a
#: LocalCluster takes to start (2-3 s) plus its scheduling round trips
SMALL_JOB_COST = 1e9
#: work is submitted in tasks (runs of consecutive units) cut "guided": each task takes
#: about 1/(GUIDED_SHARE x workers) of the work not yet given out, so tasks shrink toward
#: the end and the workers finish within about one unit of each other (with equal
#: tasks of 1/16 per worker, one worker idled up to a task, ~1 s of the full N=30 sweep),
#: while the client handles only ~GUIDED_SHARE x ln(units) results per worker
GUIDED_SHARE = 3
#: top-K candidate pools are cut back to `top` once they exceed this many times `top`
POOL_FACTOR = 16
#: SLURMCluster defaults shipped with the package, merged into dask's config
#: (below the user's ~/.config/dask and DASK_* variables) when a Slurm cluster opens
SLURM_DEFAULTS = Path(__file__).parent / "slurm-dask.yaml"
#: a user file of SLURMCluster settings that overrides dask's config for hpcneuro
SLURM_FILE_ENV = "HPCNEURO_SLURM_DASK"
#: distributed's log level unless the user chose one (its INFO lines drown hpcneuro's)
DASK_LOG_ENV = "DASK_LOGGING__DISTRIBUTED"
#: dask settings of a LocalCluster that hpcneuro starts, where the user's dask config
#: keeps distributed's default. A task is one numba call of 10 ms to seconds, so the
#: worker profiler's stack sample every 10 ms tells nothing, and the memory and system
#: monitors and the event-loop health check need not run 10, 2 and 50 times a second:
#: on the full N=30 sweep these took 1.5 s of CPU in each worker process's event loop
#: and 2 s in the scheduler's (0.35 and 0.75 s without them), on the same 2 cores as
#: the work (a loop blocked for tick.limit, 3 s, is still reported). distributed starts workers
#: with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's mmap threshold at
#: 128 KiB: every work unit's arrays (~2 MB) were then fresh pages, 0.4 s of system
#: time per worker; with these two they are reused from the heap (0.09 s)
LOCAL_CLUSTER_DASK_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.tick.interval": "1s",
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 64 * 2**20,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 16 * 2**20,
}


# --------------------------------------------------------------------------
# Per-unit results and their exact merge
# --------------------------------------------------------------------------

@dataclass
class Partial:
    """Mergeable per-order accumulators of one or more units.

    Per order m (rows of length max_order+1): icount (., 3) int64 n,
    n_synergistic, n_redundant; fmin/fmax (.,); hist (., nbins+2) int64;
    syn_*/red_* lists of top-K candidates (keys (c,), index tuples (c, m)
    int16). sums/sumsq hold one (.,) row of per-order sums per unit; they are
    added with math.fsum at the end, which is exactly rounded and so
    order-independent. stored: {m: (O (M,), log det R (M,))} for completely
    stored orders, in lexicographic order.
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


@dataclass
class Heaps:
    """The top-K heaps of a run of units, shared by its units (one walk after the other).

    A unit's walk starts from the heaps' current thresholds instead of empty ones, so
    the first candidates of every order are not all pushed again in each unit (about
    10% of a unit's time at N=26). The selection stays exact: a threshold is the K-th
    best key among multiplets already seen, never above the K-th best of all of them.
    Shapes (max_order+1, top) keys and (max_order+1, top, max_order) int16 tuples.
    """

    syn_key: np.ndarray
    syn_idx: np.ndarray
    syn_n: np.ndarray
    red_key: np.ndarray
    red_idx: np.ndarray
    red_n: np.ndarray

    @classmethod
    def empty(cls, max_order: int, top: int) -> "Heaps":
        K = max_order
        return cls(np.zeros((K + 1, top)), np.zeros((K + 1, top, K), np.int16),
                   np.zeros(K + 1, np.int64), np.zeros((K + 1, top)),
                   np.zeros((K + 1, top, K), np.int16), np.zeros(K + 1, np.int64))

    def candidates(self) -> tuple[list, list, list, list]:
        """Per order: synergistic keys, tuples, redundant keys, tuples (filled slots)."""
        K1 = len(self.syn_n)
        return ([self.syn_key[m, :self.syn_n[m]].copy() for m in range(K1)],
                [self.syn_idx[m, :self.syn_n[m], :m].copy() for m in range(K1)],
                [self.red_key[m, :self.red_n[m]].copy() for m in range(K1)],
                [self.red_idx[m, :self.red_n[m], :m].copy() for m in range(K1)])


def _run_unit(R: np.ndarray, unit: Unit, cfg: dict, heaps: Heaps | None = None) -> Partial:
    """Run one work unit with fresh accumulators (executed on workers).

    heaps: shared with other units of the same run (its content is then not in the
    returned Partial, whose candidate lists are empty; _run_units adds it once).
    """
    from .kernel import walk_unit  # numba: imported where a unit runs (tiny.py never does)

    K = cfg["max_order"]
    top = cfg["top"]
    nb = cfg["nbins"]
    icount = np.zeros((K + 1, 3), np.int64)
    fstats = np.zeros((K + 1, 4))
    fstats[:, 2] = np.inf
    fstats[:, 3] = -np.inf
    hist = np.zeros((K + 1, nb + 2 if nb else 0), np.int64)
    h = heaps if heaps is not None else Heaps.empty(K, top)
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
              cfg["hist_inv_w"], icount, fstats, hist, h.syn_key, h.syn_idx, h.syn_n,
              h.red_key, h.red_idx, h.red_n, store_off, store_buf, store_logdet)
    stored = {}
    pos = 0
    for m, c in counts.items():
        stored[m] = (store_buf[pos:pos + c], store_logdet[pos:pos + c])
        pos += c
    # heaps -> candidate lists (unsorted, filled slots only); shared heaps give theirs once
    sk, si, rk, ri = (h if heaps is None else Heaps.empty(K, 0)).candidates()
    return Partial(icount, [fstats[:, 0].copy()], [fstats[:, 1].copy()], fstats[:, 2].copy(),
                   fstats[:, 3].copy(), hist, sk, si, rk, ri, stored)


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
    when a pool exceeds POOL_FACTOR*top (and by _finish), which keeps the client cheap."""
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
            if len(keys[m]) > POOL_FACTOR * top:
                keys[m], idx[m] = _select_top(keys[m], idx[m], top)
    return a


def _finish(a: Partial, top: int) -> Partial:
    """Cut every pooled top-K list to exactly `top` (exact selection)."""
    for m in range(len(a.syn_key)):
        a.syn_key[m], a.syn_idx[m] = _select_top(a.syn_key[m], a.syn_idx[m], top)
        a.red_key[m], a.red_idx[m] = _select_top(a.red_key[m], a.red_idx[m], top)
    return a



# --------------------------------------------------------------------------
# Submission: threads or Dask
# --------------------------------------------------------------------------

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
    # a few results per worker instead of every unit's. Merging is exact, so neither
    # the grouping nor the order of completion can change the results.
    groups = task_groups([u.cost for u in units], _n_workers(client, cfg))
    for g, part in run_tasks(_run_units, R, [([units[i] for i in grp], cfg) for grp in groups],
                             client, cfg.get("threads") or 1):
        group = groups[g]
        pieces[group[0]] = part.stored
        acc = _merge(acc, part, top)
        if bar is not None:
            bar.update(sum(units[i].cost for i in group))
    if bar is not None:
        bar.close()
    assert acc is not None
    acc.stored = _concat_stored([pieces[i] for i in sorted(pieces)], cfg.get("stored", ()))
    return _finish(acc, top)


def task_groups(costs: list[float], n_workers: int) -> list[range]:
    """Consecutive units per task, guided (GUIDED_SHARE): the first tasks are large,
    the last ones a unit each. costs: planned cost of each unit, in order."""
    remaining = float(sum(costs))
    groups: list[range] = []
    i = 0
    while i < len(costs):
        want = remaining / (GUIDED_SHARE * max(1, n_workers))
        j, taken = i + 1, costs[i]
        while j < len(costs) and taken + costs[j] <= want:
            taken += costs[j]
            j += 1
        groups.append(range(i, j))
        remaining -= taken
        i = j
    return groups


#: how many times over each work-unit group may be lost with its worker (on average)
#: before the run gives up: a few whole-cluster losses, not a crash loop
MAX_LOST_ROUNDS = 3
#: seconds to wait for a worker to come back (a LocalCluster's nanny restarts it)
WORKER_WAIT_S = 120


class _Scattered:
    """The correlation matrix on the workers, scattered again when its copies are lost."""

    def __init__(self, client: Any, R: np.ndarray):
        self.client, self.R = client, R
        self._future = self._scatter()

    def _scatter(self):
        # hash=False: a content-hashed key would be shared by back-to-back runs on the
        # same matrix, and the first run's release could delete the second's data
        return self.client.scatter(self.R, broadcast=True, hash=False)

    def future(self):
        return self._future

    def ensure(self, timeout: float) -> None:
        """Wait for a worker, then scatter again unless the matrix survived."""
        try:
            self.client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise EnvironmentProblem(f"every Dask worker is gone and none came back within "
                                     f"{timeout:.0f} s; restart the cluster or use "
                                     "--scheduler none") from None
        if self._future.status != "finished":
            self._future = self._scatter()


def _lost_errors() -> tuple[type, ...]:
    """What a future raises when its worker or its input data died with a worker."""
    import asyncio
    import concurrent.futures

    from distributed.scheduler import KilledWorker

    errors: list[type] = [KilledWorker, concurrent.futures.CancelledError,
                          asyncio.CancelledError]
    try:
        from distributed.client import FutureCancelledError
        errors.append(FutureCancelledError)
    except ImportError:  # older distributed: cancellation is CancelledError
        pass
    return tuple(errors)


def _n_workers(client: Any, cfg: dict) -> int:
    """Workers that will run tasks: the client's, or the in-process threads."""
    if client is None:
        return cfg.get("threads") or 1
    return max(1, len(client.scheduler_info().get("workers", {})))


def run_tasks(fn: Any, R: np.ndarray, args: list[tuple], client: Any,
              threads: int = 1) -> Iterator[tuple[int, Any]]:
    """Run fn(R, *args[i]) for every i on `threads` in-process threads (client None)
    or on a Dask client, yielding (i, result) as they complete.

    The one submission path of the package: the exhaustive engine and the
    searches both go through it. R is scattered once to every worker; results
    are released as soon as they are yielded. Callers merge exactly, so the
    order of completion never changes a result. A task lost with its worker
    (KilledWorker, cancelled with its input data) runs again, with R scattered
    again if its copies are gone.
    """
    if client is None:
        # in-process: the kernels release the GIL, so threads run in parallel without a
        # cluster's start-up cost
        from concurrent.futures import ThreadPoolExecutor, as_completed

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            futs = {pool.submit(fn, R, *a): i for i, a in enumerate(args)}
            for fut in as_completed(list(futs)):
                yield futs[fut], fut.result()
        return
    from distributed import as_completed

    scattered = _Scattered(client, R)

    def submit(i: int):
        return client.submit(fn, scattered.future(), *args[i], pure=False)

    futs = {submit(i): i for i in range(len(args))}
    lost, resubmits = _lost_errors(), 0
    completed = as_completed(list(futs))
    for fut in completed:
        try:
            res = fut.result()
        except lost as exc:
            # the worker (and maybe the scattered matrix) is gone; tasks are pure, so
            # run this one again on whatever workers there are now
            i = futs.pop(fut)
            resubmits += 1
            if resubmits > MAX_LOST_ROUNDS * len(args):
                raise EnvironmentProblem(
                    f"Dask lost workers {resubmits} times during the O-information run "
                    f"(last: {type(exc).__name__}); check the workers' memory and logs, "
                    "or use --scheduler none") from None
            log.warning("a Dask worker was lost (%s); running its task again",
                        type(exc).__name__)
            scattered.ensure(WORKER_WAIT_S)
            new = submit(i)
            futs[new] = i
            completed.add(new)
            continue
        fut.release()
        yield futs[fut], res


def _concat_stored(pieces: list[dict], orders: Iterable[int]) -> dict:
    """Per stored order, (O, log det) of consecutive pieces joined in their order."""
    return {m: tuple(np.concatenate([piece[m][j] for piece in pieces]) for j in (0, 1))
            for m in orders}


def _run_units(R: np.ndarray, units: list[Unit], cfg: dict) -> Partial:
    """Run consecutive units and merge them (executed on workers)."""
    acc: Partial | None = None
    stored = []
    heaps = Heaps.empty(cfg["max_order"], cfg["top"])
    for unit in units:
        part = _run_unit(R, unit, cfg, heaps)
        stored.append(part.stored)
        acc = _merge(acc, part, cfg["top"])
    assert acc is not None
    acc.syn_key, acc.syn_idx, acc.red_key, acc.red_idx = heaps.candidates()
    acc.stored = _concat_stored(stored, cfg.get("stored", ()))
    return _finish(acc, cfg["top"])




# --------------------------------------------------------------------------
# Dask: in-process, LocalCluster, Slurm, or an address
# --------------------------------------------------------------------------

_slurm_defaults_loaded = False


def load_slurm_defaults() -> None:
    """Merge the packaged SLURMCluster defaults into dask's config (once per process).

    As dask-jobqueue does with its own jobqueue.yaml, the file becomes a layer
    of dask's *defaults*: the user's ~/.config/dask/*.yaml and DASK_JOBQUEUE__*
    environment variables override it, and dask-jobqueue's built-in values
    apply to keys it leaves out. Not done at import: only a Slurm run needs it.
    """
    global _slurm_defaults_loaded
    if _slurm_defaults_loaded:
        return
    import dask
    import dask_jobqueue  # noqa: F401 - its defaults first, so ours layer above them
    import yaml

    dask.config.update_defaults(yaml.safe_load(SLURM_DEFAULTS.read_text()) or {})
    _slurm_defaults_loaded = True


def slurm_user_settings() -> dict[str, Any]:
    """SLURMCluster keywords from the file named by HPCNEURO_SLURM_DASK ({} if unset).

    The file holds ``jobqueue: slurm:`` settings like dask's own config. It is
    the user's explicit choice for hpcneuro, so they are passed as keywords
    and override dask's config (including ~/.config/dask) for every job.
    """
    import yaml

    name = os.environ.get(SLURM_FILE_ENV)
    if not name:
        return {}
    path = Path(name)
    if not path.is_file():
        raise UserError(f"{SLURM_FILE_ENV}={name}: no such file; point it at a YAML file "
                        "with jobqueue: slurm: settings, or unset it")
    doc = yaml.safe_load(path.read_text()) or {}
    slurm = (doc.get("jobqueue", {}) or {}).get("slurm", {}) or {}
    # dask's config spells keys either way (job-extra-directives); keywords need "_"
    return {str(k).replace("-", "_"): v for k, v in slurm.items()}


def _quiet_distributed() -> None:
    """distributed logs at WARNING unless DASK_LOGGING__DISTRIBUTED says otherwise.

    Set where a cluster starts, not at import: worker processes read the
    variable when they import distributed, and this process's distributed
    loggers (possibly set up by an earlier import) get the level directly.
    """
    level = os.environ.setdefault(DASK_LOG_ENV, "warning")
    import distributed  # noqa: F401 - sets up its loggers on first import

    logging.getLogger("distributed").setLevel(int(level) if level.isdigit() else level.upper())


def slurm_jobs(n_workers: int | None, kw: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(number of SLURMCluster jobs, their keywords) that start exactly ``n_workers``
    single-threaded Dask workers (None: one job as configured).

    A job runs ``processes`` workers on ``cores`` cores, so scaling to whole jobs
    would start up to ``processes - 1`` workers too many. Each job here runs the
    largest divisor of ``n_workers`` not above ``processes`` workers, with cores and
    memory cut in proportion.
    """
    processes = int(kw.get("processes") or 1)
    if n_workers is None or n_workers < 1:
        return 1, kw
    per_job = max(d for d in range(1, min(processes, n_workers) + 1) if n_workers % d == 0)
    if per_job == processes:
        return n_workers // per_job, kw
    from dask.utils import parse_bytes

    kw = dict(kw, processes=per_job)
    if kw.get("cores"):
        kw["cores"] = max(per_job, int(kw["cores"]) * per_job // processes)
    if kw.get("memory"):
        kw["memory"] = f"{parse_bytes(kw['memory']) * per_job // processes}B"  # exact
    return n_workers // per_job, kw


def _slurm_job_settings(kw: dict[str, Any]) -> dict[str, Any]:
    """``kw`` plus the job shape (processes, cores, memory) from dask's merged config,
    which :func:`slurm_jobs` needs to split workers into jobs."""
    import dask

    shape = {key: dask.config.get(f"jobqueue.slurm.{key}", None)
             for key in ("processes", "cores", "memory")}
    return {**{k: v for k, v in shape.items() if v is not None}, **kw}


#: the dask config of the environment variables a nanny sets before it spawns a worker
PRE_SPAWN_ENVIRON = "distributed.nanny.pre-spawn-environ"


def _local_cluster_settings() -> dict[str, Any]:
    """LOCAL_CLUSTER_DASK_CONFIG without the keys the user has changed from
    distributed's defaults: in dask's config (file or DASK_* variable), or, for the
    worker environment, as an environment variable of that name: theirs wins."""
    import dask

    shipped = dask.config.merge(*dask.config.defaults)
    out = {}
    for key, value in LOCAL_CLUSTER_DASK_CONFIG.items():
        default = dask.config.get(key, None, config=shipped)
        if dask.config.get(key, None) != default:
            continue
        if key.startswith(PRE_SPAWN_ENVIRON + "."):
            env = os.environ.get(key[len(PRE_SPAWN_ENVIRON) + 1:])
            if env is not None and env != str(default):
                continue
        out[key] = value
    return out


@contextlib.contextmanager
def _pre_spawn_environ(settings: dict[str, Any]) -> Iterator[None]:
    """The worker environment variables of `settings` in os.environ while a cluster
    starts, and as they were afterwards. A nanny takes a variable in os.environ over
    its dask config, and leaves its own there when it spawns a worker: without this,
    the 64 KiB trim threshold left by any earlier default LocalCluster in the process
    would win over hpcneuro's, and hpcneuro's would leak into later clusters and
    commands."""
    prefix = PRE_SPAWN_ENVIRON + "."
    ours = {key[len(prefix):]: str(value) for key, value in settings.items()
            if key.startswith(prefix)}
    before = {name: os.environ.get(name) for name in ours}
    os.environ.update(ours)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Start worker processes with SIGINT ignored (inherited through exec; Python and
    asyncio leave an ignored SIGINT alone): Ctrl-C then reaches only this process, which
    closes the cluster, instead of every worker printing its own KeyboardInterrupt.

    The price: a Ctrl-C during the few seconds the cluster starts is ignored (the log's
    "cluster ... up" line says when it is heard again). Blocking SIGINT instead does not
    work: the spawned workers start with an empty signal mask and then get it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be set from the main thread
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def open_client(scheduler: str = "none", n_workers: int | None = None,
                **kw: Any) -> Iterator[Any]:
    """Yield a Dask client for `scheduler` (None for "none").

    n_workers always counts single-threaded workers (default: the number of
    cores, 1 for Slurm): "none" runs in-process (compute_oinfo then uses
    n_workers threads); "local" starts a LocalCluster of n_workers processes
    with one thread each; "slurm" starts a dask-jobqueue SLURMCluster with
    exactly n_workers Dask workers in all (see :func:`slurm_jobs`: jobs of at
    most `processes` workers, never rounded up). Slurm settings, later ones
    winning: dask-jobqueue's defaults, the packaged slurm-dask.yaml, the
    user's dask config (~/.config/dask, DASK_JOBQUEUE__SLURM__*), the file
    named by HPCNEURO_SLURM_DASK, then keywords given here. Anything else:
    the address of a running scheduler, e.g. tcp://host:8786 (n_workers is
    then whatever that cluster has). Extra keywords go to the cluster
    constructor; "slurm" also takes wait_timeout (seconds to wait for the
    first worker, default: no limit), an address takes timeout.
    """
    if scheduler in (None, "none"):
        yield None
        return
    _quiet_distributed()
    from distributed import Client

    if scheduler == "local":
        import dask
        from distributed import LocalCluster

        n = n_workers or os.cpu_count() or 1
        # any free port: several clusters (or users) on one node must not clash on 8787
        kw.setdefault("dashboard_address", ":0")
        # each worker drops the heartbeat traceback of the cluster's own shutdown
        kw.setdefault("preload", [f"{__package__}.local_workers"])
        settings = _local_cluster_settings()
        with dask.config.set(settings), _pre_spawn_environ(settings), _workers_ignore_sigint():
            # the nannies hand this config to the worker processes they start
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, **kw)
        with cluster as cl, Client(cl) as client:
            log.info("local Dask cluster of %d workers up (dashboard %s); Ctrl-C stops it",
                     n, cl.dashboard_link)
            yield client
        return
    if scheduler == "slurm":
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError as exc:  # pragma: no cover - dependency listed in setup.cfg
            raise UserError("scheduler 'slurm' needs dask-jobqueue: pip install dask-jobqueue") from exc
        load_slurm_defaults()
        # None: wait as long as the queue takes; jobs are cancelled on exit
        wait_timeout = kw.pop("wait_timeout", None)
        jobs, job_kw = slurm_jobs(n_workers, _slurm_job_settings({**slurm_user_settings(), **kw}))
        with SLURMCluster(**job_kw) as cl:
            cl.scale(jobs=jobs)
            with Client(cl) as client:
                try:
                    client.wait_for_workers(1, timeout=wait_timeout)
                except TimeoutError as exc:
                    raise UserError(f"no Slurm job of Dask workers started within {wait_timeout} s "
                                    "(see squeue): lower cores/memory in the Slurm/Dask settings "
                                    f"({SLURM_FILE_ENV} or ~/.config/dask) or wait longer") from exc
                yield client
        return
    if "://" not in scheduler and ":" not in scheduler:
        raise UserError(f"unknown scheduler {scheduler!r}: use none, local, slurm or a "
                        "scheduler address like tcp://host:8786")
    try:
        client = Client(scheduler, timeout=kw.get("timeout", "20s"))
    except (OSError, TimeoutError) as exc:
        raise UserError(f"cannot reach the Dask scheduler at {scheduler}: {exc}; start it "
                        "with `dask scheduler` or use --scheduler local") from exc
    with client:
        yield client
