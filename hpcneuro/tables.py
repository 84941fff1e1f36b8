"""Reading tables of samples x variables for the O-information engine.

Accepted specs:
- ``data.csv``, ``data.tsv``, ``data.txt`` (optionally ``.gz``): header row =
  variable names; non-numeric columns are skipped with a warning unless they
  were asked for by name (then it is an error).
- ``data.npy``: a 2-D array; names are x0, x1, ...
- ``FILE.h5:/path/to/2d-dataset``: names from the dataset's ``names``
  attribute if present, else x0, x1, ... Datasets larger than
  ``max_in_memory`` bytes (after column selection) are returned as a lazy
  dask array and processed in row chunks by :func:`stream_correlation`.
"""
from __future__ import annotations

import gzip
import logging
import os
import re
import tempfile
from typing import Any, Sequence

import numpy as np

from .errors import UserError

log = logging.getLogger(__name__)

#: HDF5 selections above this many bytes are streamed instead of loaded
MAX_IN_MEMORY = 1 << 30
#: rows per chunk when streaming
CHUNK_ROWS = 1 << 16
#: bytes per read when checking a gzip stream end to end
GZIP_CHECK_CHUNK = 1 << 20

#: file extensions read as HDF5 (``FILE.EXT:/dataset``), case-insensitive
H5_EXTENSIONS = ("h5", "hdf5", "hdf", "he5")
_H5 = re.compile(rf"^(?P<file>.+?\.(?:{'|'.join(H5_EXTENSIONS)}))(?::(?P<path>.*))?$",
                 re.IGNORECASE)


def split_h5_spec(spec: str) -> tuple[str, str | None] | None:
    """``FILE.h5:/path/to/dataset`` -> (FILE.h5, /path/to/dataset); FILE.h5 alone ->
    (FILE.h5, None); any other spec (CSV, .npy, ...) -> None.

    The one parser of HDF5 table specs (.h5, .hdf5, .hdf, .he5, any case): the table
    reader, the sampler's table spec and the config hash all use it.
    """
    m = _H5.match(spec)
    return (m.group("file"), m.group("path") or None) if m else None


def table_file(spec: str) -> str:
    """The file a table spec names (the part before ``:/dataset`` for HDF5)."""
    h5 = split_h5_spec(spec)
    return h5[0] if h5 else spec


def require_file(spec: str) -> str:
    """The file of a table spec; UserError naming it if it does not exist."""
    file = table_file(spec)
    if not os.path.isfile(file):
        raise UserError(f"no such file: {file}" + (f" (from table spec {spec})"
                                                     if file != spec else ""))
    return file


class EmptyTable(UserError):
    """A table with a header (or a shape) but no rows."""


class UnknownColumns(UserError):
    """Columns asked for by name that the table does not have."""


def _select(names: list[str], columns: Sequence[str] | None, spec: str) -> list[int]:
    """Indices of `columns` in `names` (all if None); unknown names are an error."""
    if columns is None:
        return list(range(len(names)))
    cols = [str(c).strip() for c in columns if str(c).strip()]
    if not cols:
        raise UserError("empty column selection: give at least one column name")
    unknown = [c for c in cols if c not in names]
    if unknown:
        shown = ", ".join(names[:40]) + (" ..." if len(names) > 40 else "")
        raise UnknownColumns(f"unknown column(s) {', '.join(unknown)} in {spec}; available: "
                             f"{shown}")
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise UserError(f"column(s) {', '.join(dup)} selected twice: list each once")
    return [names.index(c) for c in cols]


#: the only bytes a table body may hold (besides its separator) for _read_plain
_PLAIN_BYTES = b"0123456789.eE+-\n\r"


def _read_plain(path: str, sep: str, gz: bool) -> np.ndarray | None:
    """The body of a plain numeric CSV/TSV read by numpy, or None: then pandas reads it.

    pandas' import was ~0.2 s of ``hpcneuro oinfo``'s start-up (issue 14). Plain: a header
    without quotes, then rows of numbers made of digits, '.', 'e', 'E', '+', '-' only (no
    spaces, quotes, empty fields, blank lines, NaN/inf words), each row with as many
    fields as the header. numpy's parser and pandas' round_trip both convert a number
    with Python's correctly rounded PyOS_string_to_double, so the values are the same
    bits; the two cases where pandas' integer columns could differ (a negative zero,
    |value| >= 2**53) go to pandas. Anything numpy cannot parse goes to pandas too.
    """
    import io

    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            raw = f.read()
    except OSError:
        return None  # pandas reports it
    head, nl, body = raw.partition(b"\n")
    bsep = sep.encode()
    if not nl or b'"' in head or body.translate(None, _PLAIN_BYTES + bsep):
        return None
    lines = body.replace(b"\r", b"").split(b"\n")
    while lines and not lines[-1]:
        lines.pop()
    n = head.count(bsep) + 1
    if not lines or any(not ln or ln.count(bsep) != n - 1 for ln in lines):
        return None
    try:
        x = np.loadtxt(io.StringIO(b"\n".join(lines).decode("ascii")), delimiter=sep,
                       dtype=np.float64, ndmin=2, comments=None)
    except ValueError:
        return None
    if x.shape[1] != n or (x.size and (np.abs(x).max() >= 2.0 ** 53
                                        or np.any(np.signbit(x) & (x == 0)))):
        return None
    return x


def _read_text(path: str, columns: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    base = path[:-3] if path.lower().endswith(".gz") else path
    ext = os.path.splitext(base)[1].lower()
    sep = "," if ext == ".csv" else ("\t" if ext in (".tsv", ".tab") else None)
    gz = path.lower().endswith(".gz")
    if gz:
        _check_gzip(path)
    x = _read_plain(path, sep, gz) if sep is not None else None
    if x is not None:
        names = _header(path, sep, gz, x.shape[1])
        idx = _select(names, columns, path)
        return np.ascontiguousarray(x[:, idx]), [names[j] for j in idx]
    import pandas as pd

    try:
        # round_trip: the C parser's default ("high") may miss a 17-digit value by an ulp
        options = {"engine": "python"} if sep is None else {"engine": "c",
                                                            "float_precision": "round_trip"}
        df = pd.read_csv(path, sep=sep, **options,
                         compression="gzip" if gz else None)
    except (OSError, ValueError, EOFError, pd.errors.ParserError) as exc:
        raise UserError(f"cannot read table {path}: {exc}") from exc
    if df.shape[0] == 0:
        raise EmptyTable(f"{path} has no rows: give a table with one row per sample under "
                         "its header")
    names = _header(path, sep, gz, df.shape[1])
    idx = _select(names, columns, path)
    out, kept = [], []
    for j in idx:
        col = pd.to_numeric(df.iloc[:, j], errors="coerce")
        bad = col.isna() & df.iloc[:, j].notna()
        if bad.any():
            if columns is not None:
                raise UserError(f"column {names[j]!r} of {path} is not numeric "
                                f"(e.g. {df.iloc[int(np.flatnonzero(bad)[0]), j]!r}): "
                                "fix its values, or do not select it")
            log.warning("skipping non-numeric column %r of %s", names[j], path)
            continue
        out.append(col.to_numpy(dtype=np.float64))
        kept.append(names[j])
    if not out:
        raise UserError(f"no numeric columns in {path}")
    return np.column_stack(out), kept


def _check_gzip(path: str) -> None:
    """Read a .gz through once: pandas stops silently at a truncated stream."""
    import zlib

    try:
        with gzip.open(path, "rb") as f:
            while f.read(GZIP_CHECK_CHUNK):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{path} is not a complete gzip file ({exc}): download or "
                        "compress it again") from None


def _header(path: str, sep: str | None, gz: bool, n: int) -> list[str]:
    """The header's names as written: pandas renames duplicates (a, a.1) silently."""
    import csv

    with (gzip.open(path, "rt", newline="") if gz else open(path, newline="")) as f:
        line = f.readline()
    delimiter = sep or csv.Sniffer().sniff(line, delimiters=",\t;| ").delimiter
    names = [c.strip() for c in next(csv.reader([line], delimiter=delimiter))][:n]
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise UserError(f"{path}: column name(s) {', '.join(map(repr, dup))} appear more than "
                        "once in the header: rename them so each is unique")
    return names


def _h5_names(dset: Any, n: int) -> list[str]:
    raw = dset.attrs.get("names")
    if raw is None:
        return [f"x{j}" for j in range(n)]
    names = [r.decode() if isinstance(r, bytes) else str(r) for r in np.ravel(raw)]
    if len(names) == 1 and n > 1 and "," in names[0]:
        names = names[0].split(",")
    if len(names) != n:
        raise UserError(f"{dset.name} has {n} columns but {len(names)} names in its "
                        "'names' attribute: fix the attribute")
    return names


def _read_h5(spec: str, file: str, path: str | None, columns: Sequence[str] | None,
             max_in_memory: int) -> tuple[Any, list[str]]:
    import h5py

    try:
        f = h5py.File(file, "r")
    except OSError as exc:
        raise UserError(f"cannot open {file} as HDF5: {exc}") from exc
    two_d: list[str] = []
    f.visititems(lambda n, o: two_d.append("/" + n)
                 if isinstance(o, h5py.Dataset) and o.ndim == 2 else None)
    if not path:
        f.close()
        raise UserError(f"name the dataset: {file}:/path/to/dataset; 2-D datasets in the "
                        f"file: {', '.join(two_d) or 'none'}")
    if path not in f or not isinstance(f[path], h5py.Dataset):
        f.close()
        raise UserError(f"no dataset {path} in {file}; 2-D datasets: {', '.join(two_d) or 'none'}")
    dset = f[path]
    if dset.ndim != 2:
        shape = dset.shape
        f.close()
        raise UserError(f"{file}:{path} has shape {shape}: need a 2-D samples x variables "
                        f"dataset; 2-D datasets in the file: {', '.join(two_d) or 'none'}")
    names = _h5_names(dset, dset.shape[1])
    idx = _select(names, columns, spec)
    sel = [names[j] for j in idx]
    nbytes = dset.shape[0] * len(idx) * 8
    if nbytes > max_in_memory:
        import dask.array as da

        # keep the file open: the dask graph reads from it lazily
        rows = max(1, min(CHUNK_ROWS, dset.shape[0]))
        x = da.from_array(dset, chunks=(rows, dset.shape[1]))[:, idx].astype(np.float64)
        log.info("streaming %s (%.1f GB) in chunks of %d rows", spec, nbytes / 1e9, rows)
        return x, sel
    order = np.argsort(idx)
    data = dset[:, sorted(idx)] if idx != list(range(dset.shape[1])) else dset[()]
    data = np.asarray(data, dtype=np.float64)
    if idx != list(range(dset.shape[1])):
        inv = np.empty(len(idx), int)
        inv[order] = np.arange(len(idx))
        data = data[:, inv]
    f.close()
    return data, sel


def read_table(spec: str, columns: list[str] | None = None,
               max_in_memory: int = MAX_IN_MEMORY) -> tuple[Any, list[str]]:
    """Read a samples x variables table.

    spec: CSV/TSV path (optionally .gz), .npy, or FILE.h5:/path/to/dataset.
    columns: names to keep, in this order (None: all numeric columns).
    Returns (data, names): data float64 (T, N) -- a numpy array, or a lazy
    dask array for HDF5 selections above max_in_memory bytes.
    """
    require_file(spec)
    h5 = split_h5_spec(spec)
    if h5:
        return _read_h5(spec, h5[0], h5[1], columns, max_in_memory)
    low = spec.lower()
    if low.endswith(".npy"):
        try:
            arr = np.load(spec, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {spec} as .npy: {exc}") from exc
        if arr.ndim != 2:
            raise UserError(f"{spec} has shape {arr.shape}: need a 2-D samples x variables array")
        names = [f"x{j}" for j in range(arr.shape[1])]
        idx = _select(names, columns, spec)
        return np.asarray(arr[:, idx], dtype=np.float64), [names[j] for j in idx]
    if low.endswith((".csv", ".tsv", ".tab", ".txt", ".csv.gz", ".tsv.gz", ".tab.gz", ".txt.gz")):
        return _read_text(spec, columns)
    raise UserError(f"unknown table format {spec!r}: use .csv, .tsv (optionally .gz), .npy "
                    "or FILE.h5:/path/to/dataset")


# --------------------------------------------------------------------------
# Streaming: copula normalisation and covariance of tables larger than memory
# --------------------------------------------------------------------------

def stream_correlation(x: Any, estimator: str = "gc",
                       chunk_rows: int = CHUNK_ROWS) -> tuple[np.ndarray, int]:
    """Covariance (N, N) of a lazy (T, N) dask array, never holding the table.

    "gauss": two streamed passes (means, then centred cross products).
    "gc": each column in turn is ranked and mapped to normal scores (one
    column, T values, in memory at a time) and written to a temporary HDF5
    file; the covariance of those scores is then streamed in row chunks.
    Non-finite values raise UserError. Returns (cov, T).
    """
    import dask.array as da
    import h5py
    from scipy.special import ndtri
    from scipy.stats import rankdata

    t, n = x.shape
    if estimator == "gauss":
        finite = da.isfinite(x).all(axis=0).compute()
        if not finite.all():
            raise UserError(f"NaN or infinite values in columns {np.flatnonzero(~finite).tolist()}: "
                            "remove those rows first")
        mu = x.mean(axis=0).compute()
        xc = x - mu
        return np.asarray((xc.T @ xc).compute()) / t, t
    fd, tmp = tempfile.mkstemp(suffix=".h5", prefix="hpcneuro-copula-")
    os.close(fd)
    try:
        rows = max(1, min(chunk_rows, t))
        with h5py.File(tmp, "w") as f:
            z = f.create_dataset("z", shape=(t, n), dtype="f8", chunks=(rows, 1))
            for j in range(n):
                col = np.asarray(x[:, j].compute(), dtype=np.float64)
                if not np.isfinite(col).all():
                    raise UserError(f"NaN or infinite values in column {j}: remove those rows first")
                z[:, j] = ndtri(rankdata(col) / (t + 1.0))
                del col
        with h5py.File(tmp, "r") as f:
            zz = da.from_array(f["z"], chunks=(rows, n))
            mu = zz.mean(axis=0).compute()
            zc = zz - mu
            cov = np.asarray((zc.T @ zc).compute(scheduler="threads")) / t
        return cov, t
    finally:
        os.unlink(tmp)
