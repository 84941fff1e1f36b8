"""One writer per campaign: an OS lock on ``RESULTS.h5.lock`` held for the whole run.

``flock`` locks belong to the open file, so the kernel drops them when the holder dies
(SIGKILL included): a lock is never stale. The lock file is a sidecar, not the results
file itself, so ``--overwrite`` (which replaces the results file) is refused while
another run holds it. The holder writes ``host pid start-time`` into the file so that
the refusal can name it.

Network filesystems: on NFS, Linux maps ``flock`` onto POSIX byte-range locks, which
work across clients only where the server runs a lock manager (NFSv4, or NFSv3 with
lockd). On Lustre the client must be mounted with ``-o flock`` (``localflock`` only
excludes writers on the same node). Where locks are not supported the lock is refused
with an error that says so.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from pathlib import Path

from hpcneuro.errors import UserError

LOCK_SUFFIX = ".lock"


def lock_path(results: str | os.PathLike) -> Path:
    """The sidecar lock file of a results file."""
    return Path(f"{os.fspath(results)}{LOCK_SUFFIX}")


class CampaignLock:
    """Exclusive, non-blocking lock of one results file; a context manager.

    >>> with CampaignLock("results.h5"):      # doctest: +SKIP
    ...     simulate(...)
    """

    def __init__(self, results: str | os.PathLike):
        self.path = lock_path(results)
        self.fd: int | None = None

    def acquire(self) -> "CampaignLock":
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise UserError(f"cannot create the campaign lock {self.path}: "
                                f"{exc.strerror}; check the folder's permissions") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_holder(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise UserError(
                        f"{str(self.path)[:-len(LOCK_SUFFIX)]} is being written by another run "
                        f"({holder or 'holder unknown'}); wait for it to finish or stop it "
                        "(only one writer per campaign)") from None
                raise UserError(f"cannot lock {self.path}: {exc.strerror} (the filesystem may "
                                "not support locks; see the README's notes on NFS/Lustre)") \
                    from None
            # the file may have been removed and recreated between open and flock by a
            # releasing holder: the lock counts only if it is on the file now at that name
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"host {socket.gethostname()} pid {os.getpid()} since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        # remove while still holding it: a waiting opener then sees a changed inode
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "CampaignLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
