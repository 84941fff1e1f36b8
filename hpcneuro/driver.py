"""The campaign driver: samples -> NEURON batches -> one shared RESULTS.h5.

Three parts are kept apart (as in libEnsemble):

* generator: :class:`hpcneuro.sampling.Sampler` draws sample i from (seed, i) alone;
* allocator: :class:`BlockCounter` hands out blocks of pending samples; every rank
  claims its next block with an atomic fetch-and-add on a counter that rank 0 exposes
  through MPI one-sided communication, so fast ranks take more blocks and no rank
  sits idle as a pure manager;
* simulator: :func:`evaluate_block` runs one block as a batch of NEURON cells and
  extracts its features.

The ``status`` dataset of the store is the record of what ran and what failed.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hpcneuro import config as configuration
from hpcneuro import features as feat
from hpcneuro import protocols as prot
from hpcneuro.errors import EnvironmentProblem, UserError
from hpcneuro.model import CellBatch, use_coreneuron_library
from hpcneuro.sampling import Sampler
from hpcneuro.store import (DONE, FEATURE_FAILED, PENDING, SIM_FAILED, ResultsStore,
                            require_parallel_hdf5)

log = logging.getLogger("hpcneuro.driver")

# slots of the shared counter window
_NEXT_BLOCK, _DONE, _FAILED, _STOP = 0, 1, 2, 3
_SLOTS = 4

# exit status of a campaign stopped by SIGTERM/SIGUSR1 (EX_TEMPFAIL: rerun to resume)
EXIT_INTERRUPTED = 75


class BlockCounter:
    """Counters shared by all ranks: next block to claim, samples done and failed, and a
    stop flag any rank can raise.

    Rank 0 holds them in an MPI window; every rank updates and reads all four with one
    atomic ``Get_accumulate`` per block (:meth:`sync`). One-sided requests to rank 0
    complete only while rank 0 is inside MPI, so rank 0 calls :attr:`poke` often while it
    computes (MPICH's asynchronous progress thread would cost a core instead).
    """

    def __init__(self, comm):
        self.comm = comm
        self.totals = (0, 0)  # samples done and failed, campaign-wide, at the last sync
        if comm is None or comm.size == 1:
            self._local = np.zeros(_SLOTS, dtype=np.int64)
            self.win = None
            return
        from mpi4py import MPI

        self._mpi = MPI
        size = _SLOTS * 8 if comm.rank == 0 else 0
        self.win = MPI.Win.Allocate(size, 8, comm=comm)
        if comm.rank == 0:
            self.win.Lock(0)
            self.win.Put(np.zeros(_SLOTS, dtype=np.int64), 0)
            self.win.Unlock(0)
        comm.Barrier()

    def _get_add(self, increment: np.ndarray) -> np.ndarray:
        """Add ``increment`` to all slots atomically; return their previous values."""
        if self.win is None:
            old = self._local.copy()
            self._local += increment
            return old
        MPI = self._mpi
        old = np.zeros(_SLOTS, dtype=np.int64)
        self.win.Lock(0, MPI.LOCK_SHARED)
        self.win.Get_accumulate(increment, old, 0, op=MPI.SUM)
        self.win.Unlock(0)
        return old

    @property
    def poke(self) -> Callable[[], object] | None:
        """A cheap MPI call that serves other ranks' pending requests (rank 0 only)."""
        if self.win is None or self.comm.rank != 0:
            return None
        return self.comm.Iprobe

    def sync(self, done: int = 0, failed: int = 0, stop: bool = False,
             claim: bool = True) -> tuple[int, bool]:
        """Report finished samples, maybe raise the stop flag, and claim the next block.

        Returns (index of the claimed block, whether any rank asked to stop). A block
        claimed while stopping is simply left pending in the file.
        """
        increment = np.array([int(claim), done, failed, int(stop)], dtype=np.int64)
        old = self._get_add(increment)
        self.totals = (int(old[_DONE]) + done, int(old[_FAILED]) + failed)
        return int(old[_NEXT_BLOCK]), bool(old[_STOP] or stop)

    def stop_requested(self) -> bool:
        return self.sync(claim=False)[1]

    def free(self) -> None:
        if self.win is not None:
            self.win.Free()


@dataclass
class BlockResult:
    features: np.ndarray  # (n, F)
    status: np.ndarray    # (n,) int8
    valid: np.ndarray     # (n,) bool
    errors: list          # n strings, "" where fine
    traces: dict = field(default_factory=dict)  # protocol -> (n, T) mV, when stored


def evaluate_block(batch: CellBatch, protocols: list, cfg: dict, params: np.ndarray,
                   poke: Callable[[], object] | None = None) -> BlockResult:
    """Simulate ``params`` (n, P) under every protocol and extract their features.

    In ``simulation.mode: single`` each sample runs alone (the reference); otherwise the
    block is one batch. A sample whose voltage diverges is marked failed (status 2) with
    its reason; if NEURON raises for a batch, its samples are re-run one by one to find
    the culprit.
    """
    n = params.shape[0]
    if n > 1 and (cfg["simulation"]["mode"] == "single"):
        return _concat([evaluate_block(batch, protocols, cfg, params[i:i + 1], poke)
                        for i in range(n)])
    names = configuration.feature_names(cfg)
    groups = feat.group_by_protocol(names)
    out = BlockResult(np.full((n, len(names)), np.nan), np.full(n, DONE, dtype=np.int8),
                      np.zeros(n, dtype=bool), [""] * n)
    try:
        batch.set_parameters(params)
        context: dict = {}
        outputs = [(p, p.run(batch, n, cfg["simulation"], context, poke)) for p in protocols]
    except (UserError, EnvironmentProblem):
        raise  # a problem of the setup, not of these samples
    except Exception as exc:  # noqa: BLE001 - isolate the sample that broke the batch
        if n == 1:
            out.status[:] = SIM_FAILED
            out.errors[0] = f"simulation error: {exc}"
            return out
        log.warning("batch of %d raised (%s); re-running its samples one by one", n, exc)
        return _concat([evaluate_block(batch, protocols, cfg, params[i:i + 1], poke)
                        for i in range(n)])
    for protocol, result in outputs:
        if result.v is not None and cfg["simulation"]["store_traces_every"]:
            out.traces[protocol.name] = result.v
        group = groups.get(protocol.name, [])
        for col, name in group:
            if name in result.values:
                out.features[:, col] = result.values[name]
        if result.v is None:
            continue
        # NaN traces are cells a protocol could not stimulate (e.g. no rheobase): not failures
        not_run = np.all(np.isnan(result.v), axis=1)
        diverged = ~not_run & (~np.all(np.isfinite(result.v), axis=1)
                               | (np.nan_to_num(np.abs(result.v)).max(axis=1) > 1e3))
        for i in np.flatnonzero(diverged & (out.status == DONE)):
            out.status[i] = SIM_FAILED
            out.errors[i] = f"voltage diverged in protocol {protocol.name}"
        efel_group = [(col, name) for col, name in group if name not in result.values]
        run = np.flatnonzero(~not_run & ~diverged)
        values, failed = feat.extract(
            result.t, result.v[run], protocol, [name for _, name in efel_group], poke,
            None if result.stimulus is None else result.stimulus[run])
        for k, (col, _) in enumerate(efel_group):
            out.features[run, col] = values[:, k]
        for i in run[failed]:
            if out.status[i] == DONE:
                out.status[i] = FEATURE_FAILED
                out.errors[i] = f"eFEL failed on protocol {protocol.name}"
    out.features[out.status != DONE] = np.nan
    out.valid = feat.is_valid(out.features, names, cfg["validity"]) & (out.status == DONE)
    return out


def _concat(parts: list[BlockResult]) -> BlockResult:
    names = set().union(*(p.traces for p in parts))
    traces = {}
    for name in names:  # a part that failed early has no trace: pad with NaN
        width = max(p.traces[name].shape[1] for p in parts if name in p.traces)
        traces[name] = np.vstack([
            _pad(p.traces.get(name), len(p.errors), width) for p in parts])
    return BlockResult(np.vstack([p.features for p in parts]),
                       np.concatenate([p.status for p in parts]),
                       np.concatenate([p.valid for p in parts]),
                       [e for p in parts for e in p.errors], traces)


def _pad(v: np.ndarray | None, n: int, width: int) -> np.ndarray:
    out = np.full((n, width), np.nan)
    if v is not None:
        out[:, :v.shape[1]] = v
    return out


def make_batch(cfg: dict, n_pending: int) -> CellBatch:
    """The cells a rank reuses for every block (one cell in single mode)."""
    size = 1 if cfg["simulation"]["mode"] == "single" else cfg["simulation"]["batch_size"]
    batch = CellBatch(cfg["model"], max(1, min(size, n_pending)), cfg["parameters"])
    if cfg["simulation"]["engine"] == "coreneuron":
        # compiled now, so that a .mod file CoreNEURON cannot take stops the run here
        use_coreneuron_library(cfg["model"]["mod_dirs"])
    return batch


def plan_blocks(pending: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split pending sample indices (sorted) into blocks of at most ``batch_size``."""
    return [pending[i:i + batch_size] for i in range(0, pending.size, batch_size)]


def _inspect_existing(output: str, cfg: dict, resume: bool, retry_failed: bool,
                      overwrite: bool) -> tuple[str, np.ndarray]:
    """Decide to create or reopen ``output``; return (mode, pending indices). Rank 0 only."""
    import h5py

    n = cfg["sampling"]["n_samples"]
    if overwrite or not os.path.exists(output):
        if resume and not overwrite:
            raise UserError(f"--resume: {output} does not exist; drop --resume to start "
                            "a new campaign")
        return "create", np.arange(n)
    try:
        with h5py.File(output, "r") as f:
            stored_hash = f.attrs.get("config_hash")
            stored_cfg = f.attrs.get("config")
            status = f["status"][:]
    except (OSError, KeyError) as exc:
        raise UserError(f"{output} exists but is not a readable hpcneuro results file "
                        f"({exc}); move it away or pass --overwrite") from None
    new_hash = configuration.config_hash(cfg)
    if stored_hash != new_hash:
        import json

        changed = configuration.diff(json.loads(stored_cfg), cfg)
        raise UserError(
            f"{output} was written with a different configuration (changed: "
            f"{', '.join(changed[:8]) or 'unknown'}); resuming would mix two campaigns. "
            "Use a new output file, restore the old config, or pass --overwrite to start over")
    todo = status == PENDING
    if retry_failed:
        todo |= (status != PENDING) & (status != DONE)
    return "open", np.flatnonzero(todo)


class _StopSignals:
    """Turns SIGTERM and SIGUSR1 (Slurm's warnings before walltime) into a flag.

    The running block is finished and written; then the rank stops claiming blocks and
    raises the shared stop flag so that ranks the signal did not reach stop too.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def __enter__(self) -> "_StopSignals":
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _Progress:
    """Rank 0's view of the whole campaign: a bar on a terminal, log lines otherwise."""

    def __init__(self, total: int, counter: "BlockCounter", enabled: bool):
        self.total, self.counter, self.enabled = total, counter, enabled
        self.started = self.last = time.time()
        self.bar = None
        if enabled and sys.stderr.isatty() and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="sample", smoothing=0.1, dynamic_ncols=True)
        self.shown = 0

    def update(self) -> None:
        if not self.enabled:
            return
        done, failed = self.counter.totals
        if self.bar is not None:
            self.bar.update(done + failed - self.shown)
            self.bar.set_postfix(failed=failed, refresh=False)
            self.shown = done + failed
        elif time.time() - self.last > 10:
            self.last = time.time()
            elapsed = time.time() - self.started
            rate = (done + failed) / elapsed if elapsed > 0 else 0.0
            eta = (self.total - done - failed) / rate if rate > 0 else float("nan")
            log.info("%d/%d samples (%d failed), %.1f samples/s, ETA %.0f s", done + failed,
                     self.total, failed, rate, eta)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def simulate(cfg: dict, output: str, *, resume: bool = False, retry_failed: bool = False,
             overwrite: bool = False, comm=None) -> dict:
    """Run (or resume) a campaign into ``output``; every rank calls this.

    Returns a summary dict (counts are global on rank 0); ``interrupted`` is True when a
    SIGTERM/SIGUSR1 stopped the campaign early (rerun the same command to resume).
    """
    n_ranks = 1 if comm is None else comm.size
    rank = 0 if comm is None else comm.rank
    require_parallel_hdf5(n_ranks)

    # rank 0 decides what to do; everyone learns the same answer (or the same error)
    decision: tuple = ()
    if rank == 0:
        try:
            decision = ("ok",) + _inspect_existing(output, cfg, resume, retry_failed, overwrite)
        except UserError as exc:
            decision = ("error", str(exc))
    if comm is not None:
        decision = comm.bcast(decision, root=0)
    if decision[0] == "error":
        raise UserError(decision[1])
    _, mode, pending = decision

    started = time.time()
    with _StopSignals() as signals:
        store = _open_store(output, cfg, mode, comm)
        if rank == 0:
            log.info("%s %s: %d samples, %d pending, %d rank(s), batches of %d",
                     "created" if mode == "create" else "resuming", output,
                     cfg["sampling"]["n_samples"], pending.size, n_ranks,
                     cfg["simulation"]["batch_size"])
        blocks = plan_blocks(pending, cfg["simulation"]["batch_size"])
        counter = BlockCounter(comm)
        sampler = Sampler(cfg)
        protocols = prot.from_config(cfg)
        batch = make_batch(cfg, pending.size)
        mine = {"done": 0, "failed": 0, "valid": 0, "blocks": 0}
        progress = _Progress(pending.size, counter, rank == 0)
        try:
            done = failed = 0
            while True:
                b, stop = counter.sync(done, failed, signals.received is not None)
                if stop or b >= len(blocks):
                    break
                indices = blocks[b]
                params = sampler.sample(indices)
                result = evaluate_block(batch, protocols, cfg, params, counter.poke)
                store.write_block(indices, params, result, rank)
                failed = int(np.sum(result.status != DONE))
                done = indices.size - failed
                mine["done"] += done
                mine["failed"] += failed
                mine["valid"] += int(result.valid.sum())
                mine["blocks"] += 1
                progress.update()
        finally:
            progress.close()
            if comm is not None:
                comm.Barrier()
            interrupted = counter.stop_requested()
            counter.free()
            store.close()
    totals = mine
    if comm is not None:
        totals = {k: comm.reduce(v, root=0) for k, v in mine.items()}
    elapsed = time.time() - started
    if rank == 0:
        ran = totals["done"] + totals["failed"]
        log.info("%s %d samples in %.1f s (%.1f samples/s): %d done, %d failed, %d valid",
                 "stopped by a signal after" if interrupted else "finished", ran, elapsed,
                 ran / elapsed if elapsed else 0.0, totals["done"], totals["failed"],
                 totals["valid"])
        if interrupted:
            log.info("the results are saved; rerun the same command to resume")
    return {**totals, "elapsed": elapsed, "n_ranks": n_ranks, "interrupted": interrupted}


def _open_store(output: str, cfg: dict, mode: str, comm) -> ResultsStore:
    """Open ``output``; a new file is built under a temporary name and renamed when
    complete, so a kill during creation never leaves a half-made results file."""
    if mode != "create":
        return ResultsStore.open(output, comm)
    rank = 0 if comm is None else comm.rank
    partial = f"{output}.creating"
    ResultsStore.create(partial, cfg, comm).close()
    if rank == 0:
        os.replace(partial, output)
    if comm is not None:
        comm.Barrier()
    return ResultsStore.open(output, comm)


def mpi_world():
    """COMM_WORLD when mpi4py is importable (also for a single process), else None."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise EnvironmentProblem(f"mpi4py is not importable ({exc}); run scripts/install.sh") \
            from None
    return MPI.COMM_WORLD
