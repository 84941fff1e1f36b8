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

import logging
import os
import signal
import sys
import time

import numpy as np

from hpcneuro import config as configuration
from hpcneuro import protocols as prot
from hpcneuro.allocator import BlockCounter, plan_blocks
from hpcneuro.errors import EnvironmentProblem, UserError
from hpcneuro.sampling import Sampler
from hpcneuro.simulation import evaluate_block, make_batch
from hpcneuro.store import (DONE, FAILED, PENDING, NotAResultsFile, ResultsStore,
                            require_parallel_hdf5)

log = logging.getLogger("hpcneuro.campaign")

# exit status of a campaign stopped by SIGTERM/SIGUSR1 (EX_TEMPFAIL: rerun to resume)
EXIT_INTERRUPTED = 75


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
    mcmc = cfg["sampling"]["method"] == "mcmc"
    if mcmc and retry_failed:
        raise UserError("--retry-failed does not apply to sampling.method mcmc: a failed "
                        "proposal is part of its chain's path (it was rejected)")

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
        counter = BlockCounter(comm)
        protocols = prot.from_config(cfg)
        progress = _Progress(pending.size, counter, rank == 0)
        try:
            if mcmc:  # blocks of chains, one batched run per step (hpcneuro.mcmc.chains)
                from hpcneuro.mcmc import chains

                mine = chains.run(cfg, store, counter, lambda: signals.received is not None,
                                  pending, rank, protocols, progress)
            else:
                mine = _run_samples(cfg, store, counter, signals, pending, rank, protocols,
                                    progress)
        finally:
            progress.close()
            if comm is not None:
                comm.Barrier()
            interrupted = counter.stop_requested()
            counter.free()
            store.close()
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


def _run_samples(cfg: dict, store: ResultsStore, counter: BlockCounter, signals: _StopSignals,
                 pending: np.ndarray, rank: int, protocols: list, progress: _Progress) -> dict:
    """Claim blocks of samples until none is left or a stop is asked; this rank's counts."""
    blocks = plan_blocks(pending, cfg["simulation"]["batch_size"])
    sampler = Sampler(cfg)
    batch = make_batch(cfg, pending.size)
    mine = {"done": 0, "failed": 0, "valid": 0, "blocks": 0}
    done = failed = 0
    while True:
        b, stop = counter.sync(done, failed, signals.received is not None)
        if stop or b >= len(blocks):
            return mine
        claimed = time.time()
        indices = blocks[b]
        params = sampler.sample(indices)
        result = evaluate_block(batch, protocols, cfg, params, counter.poke)
        store.write_block(indices, params, result, rank, claimed)
        failed = int(np.sum(result.status != DONE))
        done = indices.size - failed
        mine["done"] += done
        mine["failed"] += failed
        mine["valid"] += int(result.valid.sum())
        mine["blocks"] += 1
        progress.update()


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
