"""The allocator: which rank runs which samples.

:func:`plan_blocks` cuts the pending samples into blocks; :class:`BlockCounter` hands
them out. Every rank claims its next block with an atomic fetch-and-add on a counter that
rank 0 exposes through MPI one-sided communication, so fast ranks take more blocks and no
rank sits idle as a pure manager (libEnsemble's allocator, without a manager process).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

# slots of the shared counter window
_NEXT_BLOCK, _DONE, _FAILED, _STOP = 0, 1, 2, 3
_SLOTS = 4


def plan_blocks(pending: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split pending sample indices (sorted) into blocks of at most ``batch_size``."""
    return [pending[i:i + batch_size] for i in range(0, pending.size, batch_size)]


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
