"""The campaign loop: samples -> NEURON batches -> one shared RESULTS.h5.

Every rank runs :func:`simulate`. The three parts it joins are kept apart, as in
libEnsemble:

* generator: :class:`hpcneuro.sampling.Sampler` draws sample i from (seed, i) alone;
* allocator: :mod:`hpcneuro.allocator` plans the blocks and hands them out;
* simulator: :mod:`hpcneuro.simulation` evaluates one block.

This module adds what a campaign needs around them: the resume policy (create, reopen
or refuse an existing file), SIGTERM/SIGUSR1 handling for Slurm's warning before
walltime, and progress. The ``status`` field of the store is the record of what ran and
what failed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from typing import Sequence

import numpy as np

from hpcneuro import config as configuration
from hpcneuro import protocols as prot
from hpcneuro.allocator import BlockCounter, plan_blocks
from hpcneuro.errors import EnvironmentProblem, UserError
from hpcneuro.lock import CampaignLock
from hpcneuro.outputs import (DiskFull, check_output, disk_full, human_bytes, is_disk_error,
                              require_space)
from hpcneuro.sampling import Sampler
from hpcneuro.simulation import evaluate_block, make_batch
from hpcneuro.store import (DONE, FAILED, PENDING, NotAResultsFile, ResultsStore,
                            estimated_bytes, require_parallel_hdf5)

log = logging.getLogger("hpcneuro.campaign")

#: memory of one block's index view in the block plan (numpy array object + list slot)
BLOCK_VIEW_BYTES = 120


def _inspect_existing(output: str, cfg: dict, resume: bool, retry_failed: bool,
                      overwrite: bool) -> tuple[str, np.ndarray]:
    """Decide to create or reopen ``output``; return (mode, pending indices). Rank 0 only."""
    n = cfg["sampling"]["n_samples"]
    if overwrite or not os.path.exists(output):
        if resume and not overwrite:
            raise UserError(f"--resume: {output} does not exist; drop --resume to start "
                            "a new campaign")
        return "create", np.arange(n)
    try:
        with ResultsStore.read(output) as f:
            stored_hash, stored_cfg = f.config_hash(), f.config()
            status = f.status()
            missing = f.missing_fields()
    except NotAResultsFile as exc:
        raise UserError(f"{output} exists but is not a readable hpcneuro results file "
                        f"({exc.reason}); move it away or pass --overwrite") from None
    if stored_hash != configuration.config_hash(cfg):
        changed = configuration.diff(stored_cfg, cfg)
        raise UserError(
            f"{output} was written with a different configuration (changed: "
            f"{', '.join(changed[:8]) or 'unknown'}); resuming would mix two campaigns. "
            "Use a new output file, restore the old config, or pass --overwrite to start over")
    if missing:
        raise UserError(f"{output} lacks the datasets {', '.join(missing)} (written by an "
                        "older hpcneuro): finish it with that version, or pass --overwrite")
    todo = status == PENDING
    if retry_failed:
        todo |= np.isin(status, FAILED)
    if todo.any() and not os.access(output, os.W_OK):
        raise UserError(f"{output} is not writable, so it cannot be resumed: fix its "
                        f"permissions (chmod u+w {output}) or copy it somewhere writable")
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
             overwrite: bool = False, comm=None, inputs: Sequence[str] = ()) -> dict:
    """Run (or resume) a campaign into ``output``; every rank calls this.

    ``inputs``: files the campaign was read from (the config file), which ``output``
    must not be; the config's own files are added. Rank 0 holds the campaign lock
    (``OUTPUT.lock``) for the whole run. Returns a summary dict (counts are global on
    rank 0); ``interrupted`` is True when a SIGTERM/SIGUSR1 stopped the campaign early
    (rerun the same command to resume). Every error is raised on every rank.
    """
    n_ranks = 1 if comm is None else comm.size
    rank = 0 if comm is None else comm.rank
    require_parallel_hdf5(n_ranks)
    mcmc = cfg["sampling"]["method"] == "mcmc"
    if mcmc and retry_failed:
        raise collective(UserError("--retry-failed does not apply to sampling.method "
                                   "mcmc: a failed proposal is part of its chain's path (it "
                                   "was rejected)"))

    lock = None
    ranks_per_node = _ranks_per_node(comm)  # collective: before rank 0 goes its own way
    # rank 0 decides what to do; everyone learns the same answer (or the same error)
    decision: tuple = ()
    if rank == 0:
        try:
            check_output(output, inputs=[*inputs, *configuration.input_files(cfg)],
                         is_own_kind=lambda path: True, kind="results", overwrite=overwrite)
            lock = CampaignLock(output).acquire()
            _check_memory(cfg, ranks_per_node)  # before the plan is allocated
            decision = ("ok",) + _inspect_existing(output, cfg, resume, retry_failed, overwrite)
            if decision[1] == "create":
                require_space(output, estimated_bytes(cfg), "the results file")
        except (UserError, EnvironmentProblem) as exc:
            decision = ("error", type(exc), str(exc))
    if comm is not None:
        decision = comm.bcast(decision, root=0)
    try:
        if decision[0] == "error":
            raise collective(decision[1](decision[2]))
        _, mode, pending = decision
        return _run(cfg, output, mode, pending, comm)
    finally:
        if lock is not None:
            lock.release()


def collective(exc: Exception) -> Exception:
    """Mark an error that every rank raises alike, so only rank 0 prints it."""
    exc.collective = True
    return exc


def _ranks_per_node(comm) -> int:
    if comm is None or comm.size == 1:
        return 1
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    size = node.size
    node.Free()
    return size


def _check_memory(cfg: dict, ranks_per_node: int) -> None:
    """Refuse, before anything is allocated, a campaign whose plan the node cannot hold
    (every sample pending: the most a create or a resume needs)."""
    n = cfg["sampling"]["n_samples"]
    need = ranks_per_node * _rank_bytes(cfg, n)
    available = _available_memory()
    if available is not None and need > available:
        raise UserError(
            f"the campaign's bookkeeping needs about {human_bytes(need)} of memory on this "
            f"node ({ranks_per_node} rank(s) x {n:.3g} samples) but "
            f"{human_bytes(available)} is available; split it into smaller campaigns")


def _rank_bytes(cfg: dict, n_pending: int) -> int:
    """Memory each rank holds for the campaign's plan: the pending indices (and their
    broadcast copy), one array view per block, and a sampler table if any."""
    n_blocks = -(-n_pending // cfg["simulation"]["batch_size"])
    table = (cfg["sampling"]["n_samples"] * len(cfg["parameters"]) * 8
             if cfg["sampling"]["method"] == "table" else 0)
    return 2 * 8 * n_pending + BLOCK_VIEW_BYTES * n_blocks + table


def _available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None where there is no such file)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _run(cfg: dict, output: str, mode: str, pending: np.ndarray, comm) -> dict:
    """The campaign on one rank, once the decision is made (see :func:`simulate`)."""
    n_ranks = 1 if comm is None else comm.size
    rank = 0 if comm is None else comm.rank
    started = time.time()
    # cells and mechanisms first: a .mod file that does not compile stops the run
    # before the results file is touched
    mcmc = cfg["sampling"]["method"] == "mcmc"
    sampler = None if mcmc else Sampler(cfg)
    protocols = prot.from_config(cfg)
    batch = make_batch(cfg, pending.size)
    with _StopSignals() as signals:
        store = _open_store(output, cfg, mode, comm)
        if rank == 0:
            log.info("%s %s: %d samples, %d pending, %d rank(s), batches of %d",
                     "created" if mode == "create" else "resuming", output,
                     cfg["sampling"]["n_samples"], pending.size, n_ranks,
                     cfg["simulation"]["batch_size"])
        counter = BlockCounter(comm)
        progress = _Progress(pending.size, counter, rank == 0)
        disk_error = ""
        try:
            run = _run_chains if mcmc else _run_samples
            mine, disk_error = run(cfg, output, store, counter, signals, pending, rank,
                                   sampler, protocols, batch, progress)
        finally:
            progress.close()
            if comm is not None:
                comm.Barrier()
            interrupted = counter.stop_requested()
            counter.free()
            store.close()
    errors = [disk_error] if comm is None else comm.allgather(disk_error)
    if any(errors):
        raise collective(DiskFull(next(e for e in errors if e)))
    totals = mine
    if comm is not None:
        totals = {k: comm.reduce(v, root=0) for k, v in sorted(mine.items())}
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


def _run_samples(cfg: dict, output: str, store: ResultsStore, counter: BlockCounter,
                 signals: _StopSignals, pending: np.ndarray, rank: int, sampler: Sampler,
                 protocols: list, batch, progress: _Progress) -> tuple[dict, str]:
    """Claim blocks of samples until none is left or a stop is asked; returns this rank's
    counts and the disk error that stopped it ("" if none)."""
    blocks = plan_blocks(pending, cfg["simulation"]["batch_size"])
    mine = {"done": 0, "failed": 0, "valid": 0, "blocks": 0}
    done = failed = 0
    while True:
        b, stop = counter.sync(done, failed, signals.received is not None)
        if stop or b >= len(blocks):
            return mine, ""
        claimed = time.time()
        indices = blocks[b]
        params = sampler.sample(indices)
        result = evaluate_block(batch, protocols, cfg, params, counter.poke)
        try:
            store.write_block(indices, params, result, rank, claimed,
                              sampler.component(indices))
        except OSError as exc:
            if not is_disk_error(exc):
                raise
            # the block stays pending (status is written last); every rank stops
            counter.sync(stop=True, claim=False)
            return mine, str(disk_full(output))
        failed = int(np.sum(result.status != DONE))
        done = indices.size - failed
        mine["done"] += done
        mine["failed"] += failed
        mine["valid"] += int(result.valid.sum())
        mine["blocks"] += 1
        progress.update()


def _run_chains(cfg: dict, output: str, store: ResultsStore, counter: BlockCounter,
                signals: _StopSignals, pending: np.ndarray, rank: int, sampler: None,
                protocols: list, batch, progress: _Progress) -> tuple[dict, str]:
    """MCMC: blocks of chains, one batched run per step (:mod:`hpcneuro.mcmc.chains`)."""
    from hpcneuro.mcmc import chains

    mine: dict = {}
    try:
        chains.run(cfg, store, counter, lambda: signals.received is not None, pending, rank,
                   protocols, batch, progress, mine)
    except OSError as exc:
        if not is_disk_error(exc):
            raise
        # the step's rows stay pending (status is written last); every rank stops
        counter.sync(stop=True, claim=False)
        return mine, str(disk_full(output))
    return mine, ""


def _open_store(output: str, cfg: dict, mode: str, comm) -> ResultsStore:
    """Open ``output``; a new file is built under a temporary name and renamed when
    complete, so a kill during creation never leaves a half-made results file.

    Rank 0 creates it alone (datasets allocated in full) and tells every rank how it went:
    a full disk inside a collective HDF5 call would leave the other ranks waiting forever,
    a serial failure is an ordinary error that all ranks then raise (exit 3).
    """
    if mode != "create":
        return ResultsStore.open(output, comm)
    rank = 0 if comm is None else comm.rank
    partial = f"{output}.creating"
    outcome = ""
    if rank == 0:
        try:
            ResultsStore.create(partial, cfg).close()
            os.replace(partial, output)
        except Exception as exc:
            if not is_disk_error(exc):
                raise
            with contextlib.suppress(OSError):
                os.unlink(partial)  # a partial file would keep the disk full
            outcome = str(disk_full(output, estimated_bytes(cfg)))
    if comm is not None:
        outcome = comm.bcast(outcome, root=0)
    if outcome:
        raise collective(DiskFull(outcome))
    return ResultsStore.open(output, comm)


def mpi_world():
    """COMM_WORLD when mpi4py is importable (also for a single process), else None."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise EnvironmentProblem(f"mpi4py is not importable ({exc}); run scripts/install.sh") \
            from None
    return MPI.COMM_WORLD
