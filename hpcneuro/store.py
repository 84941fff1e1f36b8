"""RESULTS.h5: one HDF5 file per campaign, written by every rank through MPI-IO.

Layout (documented in the README):

=============  ============  ===============================================
dataset        dtype, shape  meaning
=============  ============  ===============================================
params         f8 (N, P)     sampled parameters; attribute ``names``
features       f8 (N, F)     features, NaN where undefined; attribute ``names``
status         i1 (N)        0 pending, 1 done, 2 simulation failed,
                             3 feature extraction failed, 4 timed out
valid          i1 (N)        1 if the model meets every validity rule
error          S80 (N)       why a sample failed (empty when it did not)
rank           i4 (N)        MPI rank that ran the sample (-1: never ran)
finished_at    f8 (N)        Unix time the sample's block was written (NaN: pending)
traces/PROT    f4 (N/k, T)   with ``simulation.store_traces_every: k``, the voltage (mV)
                             of samples 0, k, 2k, ... under protocol PROT, every
                             ``record_dt`` ms (attributes ``every``, ``record_dt``)
=============  ============  ===============================================

Every dataset is contiguous and created at full size when the file is created, so
later writes touch raw data only and never HDF5 metadata: a rank killed mid-write
can lose only its block in flight, never the file. Within a block, ``status`` is
written last, so a sample marked done always has its data on disk.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from hpcneuro import config as configuration
from hpcneuro.errors import EnvironmentProblem, UserError

PENDING, DONE, SIM_FAILED, FEATURE_FAILED, TIMED_OUT = 0, 1, 2, 3, 4
STATUS_NAMES = {PENDING: "pending", DONE: "done", SIM_FAILED: "simulation failed",
                FEATURE_FAILED: "feature extraction failed", TIMED_OUT: "timed out"}
ERROR_LEN = 80


def h5py_has_mpi(h5py_config: Any = None) -> bool:
    """Whether h5py was built with MPI (``h5py.get_config().mpi``)."""
    if h5py_config is None:
        import h5py

        h5py_config = h5py.get_config()
    return bool(getattr(h5py_config, "mpi", False))


def require_parallel_hdf5(n_ranks: int, h5py_config: Any = None) -> None:
    """Refuse to run on several ranks with an h5py that cannot share one file."""
    if n_ranks > 1 and not h5py_has_mpi(h5py_config):
        raise EnvironmentProblem(
            f"{n_ranks} MPI ranks need h5py built with MPI (parallel HDF5), but this h5py "
            "was built without it. Fix: run scripts/install.sh, or rebuild h5py with\n"
            "  CC=mpicc HDF5_MPI=ON HDF5_PKGCONFIG_NAME=hdf5-mpich pip install "
            "--no-binary=h5py --no-build-isolation --force-reinstall h5py")


def _open(path: str, mode: str, comm):
    import h5py

    if comm is not None and h5py_has_mpi():
        return h5py.File(path, mode, driver="mpio", comm=comm)
    return h5py.File(path, mode)


def versions() -> dict[str, str]:
    import efel
    import neuron

    import hpcneuro

    return {"hpcneuro_version": hpcneuro.__version__, "neuron_version": neuron.__version__,
            "efel_version": efel.__version__}


class ResultsStore:
    """An open RESULTS.h5; every rank holds one (collective open and close under MPI)."""

    def __init__(self, h5file):
        self.file = h5file
        self.params = h5file["params"]
        self.features = h5file["features"]
        self.status = h5file["status"]

    @classmethod
    def create(cls, path: str, cfg: dict, comm=None) -> "ResultsStore":
        """Create the file with every dataset at full size (collective under MPI)."""
        n = cfg["sampling"]["n_samples"]
        params = configuration.parameter_names(cfg)
        features = configuration.feature_names(cfg)
        f = _open(path, "w", comm)
        # contiguous, allocated now: later independent writes never touch metadata
        ds = f.create_dataset("params", (n, len(params)), "f8", fillvalue=np.nan)
        ds.attrs["names"] = params
        ds = f.create_dataset("features", (n, len(features)), "f8", fillvalue=np.nan)
        ds.attrs["names"] = features
        f.create_dataset("status", (n,), "i1", fillvalue=PENDING)
        f.create_dataset("valid", (n,), "i1", fillvalue=0)
        f.create_dataset("error", (n,), f"S{ERROR_LEN}", fillvalue=b"")
        f.create_dataset("rank", (n,), "i4", fillvalue=-1)
        f.create_dataset("finished_at", (n,), "f8", fillvalue=np.nan)
        every = cfg["simulation"]["store_traces_every"]
        if every:
            group = f.create_group("traces")
            group.attrs["every"] = every
            group.attrs["record_dt"] = cfg["simulation"]["record_dt"]
            rows = (n + every - 1) // every
            for protocol in cfg["protocols"]:
                if protocol["type"] == "rheobase":
                    continue
                points = int(round(protocol["tstop"] / cfg["simulation"]["record_dt"])) + 1
                group.create_dataset(protocol["name"], (rows, points), "f4", fillvalue=np.nan)
        f.attrs["config"] = configuration.dumps(cfg)
        f.attrs["config_hash"] = configuration.config_hash(cfg)
        f.attrs["seed"] = cfg["seed"]
        f.attrs["created_at"] = time.time()
        for key, value in versions().items():
            f.attrs[key] = value
        f.attrs["status_codes"] = ", ".join(f"{k} {v}" for k, v in STATUS_NAMES.items())
        f.flush()
        return cls(f)

    @classmethod
    def open(cls, path: str, comm=None) -> "ResultsStore":
        return cls(_open(path, "r+", comm))

    def write_block(self, indices: np.ndarray, params: np.ndarray, result, rank: int) -> None:
        """Write one block's results (a :class:`hpcneuro.driver.BlockResult`); ``status``
        goes last, so a sample marked done always has its data on disk."""
        now = time.time()
        enc = np.array([e.encode("utf-8", "replace")[:ERROR_LEN] for e in result.errors],
                       dtype=f"S{ERROR_LEN}")
        runs = contiguous_runs(indices)
        for a, b, lo, hi in runs:
            self.params[a:b] = params[lo:hi]
            if self.features.shape[1]:
                self.features[a:b] = result.features[lo:hi]
            self.file["valid"][a:b] = result.valid[lo:hi].astype("i1")
            self.file["error"][a:b] = enc[lo:hi]
            self.file["rank"][a:b] = np.full(hi - lo, rank, dtype="i4")
            self.file["finished_at"][a:b] = np.full(hi - lo, now)
        self._write_traces(indices, result.traces)
        for a, b, lo, hi in runs:
            self.status[a:b] = result.status[lo:hi].astype("i1")

    def _write_traces(self, indices: np.ndarray, traces: dict) -> None:
        if "traces" not in self.file:
            return
        group = self.file["traces"]
        every = int(group.attrs["every"])
        keep = np.flatnonzero(indices % every == 0)
        for name, v in traces.items():
            if name not in group or keep.size == 0:
                continue
            ds = group[name]
            width = min(ds.shape[1], v.shape[1])
            for k in keep:  # a handful per block: one row each
                row = np.full(ds.shape[1], np.nan, dtype="f4")
                row[:width] = v[k, :width]
                ds[int(indices[k]) // every] = row

    def close(self) -> None:
        self.file.close()


def contiguous_runs(indices: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Split sorted sample indices into runs (file_start, file_stop, pos_start, pos_stop)."""
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [indices.size]])
    return [(int(indices[s]), int(indices[e - 1]) + 1, int(s), int(e))
            for s, e in zip(starts, stops)]


def read_summary(path: str) -> dict:
    """Counts, throughput and ETA of a campaign, from the file alone (serial read)."""
    import h5py

    if not os.path.exists(path):
        raise UserError(f"{path}: no such results file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: not a readable HDF5 results file ({exc})") from None
    with f:
        if "status" not in f:
            raise UserError(f"{path}: not an hpcneuro results file (no 'status' dataset)")
        status = f["status"][:]
        valid = f["valid"][:]
        finished = f["finished_at"][:]
        created = float(f.attrs.get("created_at", np.nan))
        name = json.loads(f.attrs["config"]).get("name", "")
    counts = {code: int(np.sum(status == code)) for code in STATUS_NAMES}
    rate = recent_rate(finished[np.isfinite(finished)], created)
    eta = counts[PENDING] / rate if counts[PENDING] and rate > 0 else np.nan
    last = float(np.nanmax(finished)) if np.isfinite(finished).any() else np.nan
    return {"name": name, "n_samples": status.size, "counts": counts,
            "n_valid": int(np.sum((status == DONE) & (valid == 1))),
            "rate": rate, "eta_seconds": eta, "last_write": last}


def recent_rate(times: np.ndarray, created: float, window: float = 600.0) -> float:
    """Samples per second over the last ``window`` seconds of activity.

    Samples of one block share a timestamp, so the first block in the window only marks
    when the counting starts. Earlier sessions of a resumed campaign do not dilute it.
    """
    if times.size == 0:
        return np.nan
    last = times.max()
    recent = times[times >= last - window]
    start = recent.min()
    if start == last:  # one block so far: count from the file's creation
        span = last - created
        return recent.size / span if span > 0 else np.nan
    return np.sum(recent > start) / (last - start)
