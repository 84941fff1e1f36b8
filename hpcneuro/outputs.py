"""Output files: checked before any work starts, written whole or not at all.

Every command that writes a file goes through here:

* :func:`check_output` runs before the computation. It refuses an output that is one of
  the inputs (same inode: symlinks and hard links included), a directory, a path in a
  folder that is missing or not writable, and an existing file that is not this
  command's own kind of output unless ``overwrite``.
* :func:`atomic_path` yields a temporary name in the output's own folder (same
  filesystem, so the final ``os.replace`` is atomic) and renames it into place only when
  the writer returns. A kill, an exception or a full disk leaves the previous file, if
  any, untouched and removes the partial one.
* A full disk, an exceeded quota or an I/O error becomes :class:`DiskFull` (exit 3),
  one line naming the path and the space involved.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from hpcneuro.errors import EnvironmentProblem, UserError

if TYPE_CHECKING:  # imported where an HDF5 image is written
    import h5py

#: errors that mean "the storage cannot take this write", not "the program is wrong"
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})
#: how HDF5 and MPI-IO word the same conditions in their messages
DISK_ERROR_TEXTS = ("No space left on device", "Disk quota exceeded", "errno = 28",
                    "File too large")


class DiskFull(EnvironmentProblem):
    """The filesystem could not take a write (ENOSPC, EDQUOT, EIO, EFBIG). Exit 3."""


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KB'``: sizes in messages."""
    return _human(float(n))


def free_bytes(folder: str | os.PathLike) -> int:
    """Bytes the current user may still write in ``folder``'s filesystem."""
    return shutil.disk_usage(folder).free


def is_disk_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the storage is full or failing."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            return True
        # h5py and MPI-IO raise OSError, ValueError or RuntimeError without errno but
        # with the C library's text
        if any(text in str(exc) for text in DISK_ERROR_TEXTS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full(path: str | os.PathLike, needed: int | None = None) -> DiskFull:
    """The one-line error for a write to ``path`` the filesystem could not take."""
    folder = Path(path).parent
    try:
        free = f"{human_bytes(free_bytes(folder))} free"
    except OSError:
        free = "free space unknown"
    need = f", about {human_bytes(needed)} needed" if needed else ""
    return DiskFull(f"cannot write {path}: no space left or I/O error on {folder} "
                    f"({free}{need}); free space or choose another folder, then rerun")


def require_space(path: str | os.PathLike, needed: int, what: str = "the output") -> None:
    """Refuse up front when ``path``'s filesystem has less than ``needed`` bytes free."""
    free = free_bytes(Path(path).parent)
    if needed > free:
        raise DiskFull(f"{what} {path} needs about {human_bytes(needed)} but "
                       f"{Path(path).parent} has {human_bytes(free)} free; free space, "
                       "choose another folder, or make the campaign smaller")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (),
                 is_own_kind: Callable[[Path], bool] | None = None, kind: str = "output",
                 overwrite: bool = False, option: str = "-o") -> Path:
    """Validate an output path before any work; return it as a Path.

    ``inputs``: files the command reads (an HDF5 spec ``FILE.h5:/d`` may be passed as
    its file). ``is_own_kind(path)`` tells whether an existing file is this command's
    own kind of output (replaced without asking); anything else needs ``overwrite``.
    """
    out = Path(path)
    if str(path) in ("", "."):
        raise UserError(f"{option}: give a file name")
    if out.is_dir():
        raise UserError(f"{option} {out}: is a directory; give a file name inside it, "
                        f"e.g. {out / ('out.h5')}")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"{option} {out}: folder {folder} does not exist; create it "
                        f"(mkdir -p {folder}) or choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {out}: folder {folder} is not writable; choose another "
                        "folder")
    for source in inputs:
        src = Path(source)
        if src.exists() and out.exists() and _same_file(src, out):
            raise UserError(f"{option} {out}: is the input {src} itself; writing it would "
                            "destroy the input: choose another output name")
    if out.exists() and not overwrite:
        if out.is_file() and not os.access(out, os.W_OK):
            raise UserError(f"{option} {out}: exists and is not writable; choose another "
                            "name or fix its permissions")
        if is_own_kind is None or not is_own_kind(out):
            raise UserError(f"{option} {out}: exists and is not an {kind} file written by "
                            "hpcneuro; pass --overwrite to replace it, or choose another name")
    return out


def temporary_name(path: str | os.PathLike) -> Path:
    """A fresh hidden name beside ``path`` (same folder: the rename is atomic)."""
    out = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial",
                               dir=out.parent if str(out.parent) else ".")
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, needed: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` when the block succeeds.

    On any exception the temporary file is removed and ``path`` keeps its previous
    contents; a disk-full error becomes :class:`DiskFull`.
    """
    out = Path(path)
    try:
        tmp = temporary_name(out)
    except OSError as exc:
        if is_disk_error(exc):
            raise disk_full(out, needed) from None
        raise UserError(f"cannot write in {out.parent}: {exc.strerror or exc}") from None
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, out)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, Exception) and is_disk_error(exc):
            raise disk_full(out, needed) from None
        raise


def _fsync(path: Path) -> None:
    """Data on disk before the rename, so a crash cannot leave a renamed empty file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)



@contextlib.contextmanager
def write_h5_image(path: str | os.PathLike) -> Iterator["h5py.File"]:
    """Yield an h5py file built in memory; write its bytes to ``path`` atomically.

    HDF5 never touches the disk: a full disk then fails in a plain write (DiskFull,
    the previous file kept), instead of inside HDF5, whose library (1.10) can crash the
    process when it later releases a file whose close failed for lack of space.
    """
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        yield f
    with atomic_path(path, needed=buffer.getbuffer().nbytes) as tmp:
        with open(tmp, "wb") as out:
            out.write(buffer.getbuffer())
