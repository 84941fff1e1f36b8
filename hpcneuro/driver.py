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
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hpcneuro import config as configuration
from hpcneuro import features as feat
from hpcneuro import protocols as prot
from hpcneuro.errors import EnvironmentProblem, UserError
from hpcneuro.model import CellBatch
from hpcneuro.sampling import Sampler
from hpcneuro.store import (DONE, FEATURE_FAILED, PENDING, SIM_FAILED, ResultsStore,
                            require_parallel_hdf5)

log = logging.getLogger("hpcneuro.driver")

# slots of the shared counter window
_NEXT_BLOCK, _DONE, _FAILED = 0, 1, 2


class BlockCounter:
    """Atomic counters shared by all ranks: next block to claim, samples done, failed."""

    def __init__(self, comm):
        self.comm = comm
        if comm is None or comm.size == 1:
            self._local = np.zeros(3, dtype=np.int64)
            self.win = None
            return
        from mpi4py import MPI

        self._mpi = MPI
        size = 3 * 8 if comm.rank == 0 else 0
        self.win = MPI.Win.Allocate(size, 8, comm=comm)
        if comm.rank == 0:
            self.win.Lock(0)
            self.win.Put(np.zeros(3, dtype=np.int64), 0)
            self.win.Unlock(0)
        comm.Barrier()

    def _fetch_add(self, slot: int, value: int) -> int:
        if self.win is None:
            old = int(self._local[slot])
            self._local[slot] += value
            return old
        MPI = self._mpi
        result = np.zeros(1, dtype=np.int64)
        self.win.Lock(0, MPI.LOCK_SHARED)
        self.win.Fetch_and_op(np.array([value], dtype=np.int64), result, 0, slot, MPI.SUM)
        self.win.Unlock(0)
        return int(result[0])

    @property
    def poke(self) -> Callable[[], object] | None:
        """A cheap MPI call that drives progress of other ranks' requests to rank 0.

        MPI one-sided requests to rank 0 complete only while rank 0 is inside MPI;
        NEURON and eFEL call this between steps so that no rank waits for rank 0's
        whole block to finish (MPICH's async progress thread would cost a core).
        """
        if self.win is None or self.comm.rank != 0:
            return None
        return self.comm.Iprobe

    def claim(self) -> int:
        """Index of the next unclaimed block (may be past the last block)."""
        return self._fetch_add(_NEXT_BLOCK, 1)

    def add_finished(self, done: int, failed: int) -> None:
        self._fetch_add(_DONE, done)
        self._fetch_add(_FAILED, failed)

    def finished(self) -> tuple[int, int]:
        return self._fetch_add(_DONE, 0), self._fetch_add(_FAILED, 0)

    def free(self) -> None:
        if self.win is not None:
            self.win.Free()


@dataclass
class BlockResult:
    features: np.ndarray  # (n, F)
    status: np.ndarray    # (n,) int8
    valid: np.ndarray     # (n,) bool
    errors: list          # n strings, "" where fine


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
    except Exception as exc:  # noqa: BLE001 - isolate the sample that broke the batch
        if n == 1:
            out.status[:] = SIM_FAILED
            out.errors[0] = f"simulation error: {exc}"
            return out
        log.warning("batch of %d raised (%s); re-running its samples one by one", n, exc)
        return _concat([evaluate_block(batch, protocols, cfg, params[i:i + 1], poke)
                        for i in range(n)])
    for protocol, result in outputs:
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
    return BlockResult(np.vstack([p.features for p in parts]),
                       np.concatenate([p.status for p in parts]),
                       np.concatenate([p.valid for p in parts]),
                       [e for p in parts for e in p.errors])


def make_batch(cfg: dict, n_pending: int) -> CellBatch:
    """The cells a rank reuses for every block (one cell in single mode)."""
    size = 1 if cfg["simulation"]["mode"] == "single" else cfg["simulation"]["batch_size"]
    return CellBatch(cfg["model"], max(1, min(size, n_pending)), cfg["parameters"])


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


def simulate(cfg: dict, output: str, *, resume: bool = False, retry_failed: bool = False,
             overwrite: bool = False, comm=None) -> dict:
    """Run (or resume) a campaign into ``output``; every rank calls this.

    Returns a summary dict on every rank (counts are global on rank 0).
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
    store = (ResultsStore.create if mode == "create" else ResultsStore.open)(
        output, *((cfg, comm) if mode == "create" else (comm,)))
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
    last_report = time.time()
    try:
        while True:
            b = counter.claim()
            if b >= len(blocks):
                break
            indices = blocks[b]
            params = sampler.sample(indices)
            result = evaluate_block(batch, protocols, cfg, params, counter.poke)
            store.write_block(indices, params, result.features, result.status, result.valid,
                              result.errors, rank)
            n_failed = int(np.sum(result.status != DONE))
            mine["done"] += indices.size - n_failed
            mine["failed"] += n_failed
            mine["valid"] += int(result.valid.sum())
            mine["blocks"] += 1
            counter.add_finished(indices.size - n_failed, n_failed)
            if rank == 0 and time.time() - last_report > 5:
                last_report = time.time()
                _report_progress(counter, pending.size, started)
    finally:
        if comm is not None:
            comm.Barrier()
        counter.free()
        store.close()
    totals = mine
    if comm is not None:
        totals = {k: comm.reduce(v, root=0) for k, v in mine.items()}
    elapsed = time.time() - started
    if rank == 0:
        ran = totals["done"] + totals["failed"]
        log.info("finished %d samples in %.1f s (%.1f samples/s): %d done, %d failed, "
                 "%d valid", ran, elapsed, ran / elapsed if elapsed else 0.0, totals["done"],
                 totals["failed"], totals["valid"])
    return {**totals, "elapsed": elapsed, "n_ranks": n_ranks}


def _report_progress(counter: BlockCounter, total: int, started: float) -> None:
    done, failed = counter.finished()
    elapsed = time.time() - started
    rate = (done + failed) / elapsed if elapsed > 0 else 0.0
    eta = (total - done - failed) / rate if rate > 0 else float("nan")
    log.info("%d/%d samples (%d failed), %.1f samples/s, ETA %.0f s", done + failed, total,
             failed, rate, eta)


def mpi_world():
    """COMM_WORLD when mpi4py is importable (also for a single process), else None."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise EnvironmentProblem(f"mpi4py is not importable ({exc}); run scripts/install.sh") \
            from None
    return MPI.COMM_WORLD
