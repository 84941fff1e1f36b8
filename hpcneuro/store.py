"""RESULTS.h5: one HDF5 file per campaign, written by every rank through MPI-IO.

This module owns the format: :data:`FIELDS` (the per-sample datasets), :data:`ATTRIBUTES`
(the root attributes) and the status codes are declared once here, and that declaration
drives creation (:meth:`ResultsStore.create`), writing (:meth:`ResultsStore.write_block`)
and every reader (:class:`ResultsFile`, :func:`read_summary`, :func:`read_table`, ...).
No other module opens a results file. :func:`layout` prints the declaration as a table.

Besides the fields, with ``simulation.store_traces_every: k`` the group ``traces`` holds
one f4 (ceil(N/k), T) dataset per protocol PROT: the voltage (mV) of samples 0, k, 2k, ...
every ``record_dt`` ms (group attributes ``every``, ``record_dt``).

Every dataset is contiguous and created at full size when the file is created, so
later writes touch raw data only and never HDF5 metadata: a rank killed mid-write
can lose only its block in flight, never the file. Within a block, ``status`` is
written last, so a sample marked done always has its data on disk.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcneuro import config as configuration
from hpcneuro.errors import EnvironmentProblem, UserError

log = logging.getLogger("hpcneuro.store")

# --- status codes (the values are the file format: never renumber) ---------------------

PENDING, DONE, SIM_FAILED, FEATURE_FAILED, TIMED_OUT, CHAIN_FAILED = 0, 1, 2, 3, 4, 5
STATUS_NAMES = {PENDING: "pending", DONE: "done", SIM_FAILED: "simulation failed",
                FEATURE_FAILED: "feature extraction failed", TIMED_OUT: "timed out",
                CHAIN_FAILED: "chain failed"}  # MCMC: the start never simulated
FAILED = (SIM_FAILED, FEATURE_FAILED, TIMED_OUT, CHAIN_FAILED)  # ran, gave no features

ERROR_LEN = 80  # bytes of the failure reason kept per sample


# --- the declaration -------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One per-sample dataset of RESULTS.h5.

    ``shape`` names its dimensions: N samples, P parameters, F features; a 2-D field
    carries its column names in the attribute ``names``.
    """

    name: str
    dtype: str
    shape: tuple[str, ...]
    fill: Any
    meaning: str

    def size(self, dims: dict[str, int]) -> tuple[int, ...]:
        """The dataset's shape for ``dims`` = {"N": n, "P": p, "F": f}."""
        return tuple(dims[d] for d in self.shape)


FIELDS: tuple[Field, ...] = (
    Field("params", "f8", ("N", "P"), np.nan, "sampled parameters; attribute ``names``"),
    Field("features", "f8", ("N", "F"), np.nan,
          "features, NaN where undefined; attribute ``names``"),
    Field("status", "i1", ("N",), PENDING,
          ", ".join(f"{code} {name}" for code, name in STATUS_NAMES.items())),
    Field("valid", "i1", ("N",), 0, "1 if the model meets every validity rule"),
    Field("error", f"S{ERROR_LEN}", ("N",), b"", "why a sample failed (empty when it did not)"),
    Field("rank", "i4", ("N",), -1, "MPI rank that ran the sample (-1: never ran)"),
    Field("started_at", "f8", ("N",), np.nan,
          "Unix time the sample's block was claimed (NaN: pending)"),
    Field("finished_at", "f8", ("N",), np.nan,
          "Unix time the sample's block was written (NaN: pending)"),
    # sampling.method mcmc (hpcneuro.mcmc): row step * n_chains + chain; fill elsewhere
    Field("chain", "i4", ("N",), -1, "MCMC: chain of the row (-1: not MCMC)"),
    Field("step", "i4", ("N",), -1, "MCMC: step of the chain, 0 = its start (-1: not MCMC)"),
    Field("accepted", "i1", ("N",), 0, "MCMC: 1 if the proposal became the chain's state"),
    Field("cost", "f8", ("N",), np.nan,
          "MCMC: cost of the proposal (NaN: did not simulate, or not MCMC)"),
    Field("component", "i2", ("N",), -1,
          "mixture component the sample was drawn from (sampling.method mixture; "
          "-1 otherwise)"),
)
FIELD = {f.name: f for f in FIELDS}
WRITTEN_LAST = "status"  # marks a sample done: its other fields must be on disk first
TRACES = "traces"


@dataclass(frozen=True)
class Attribute:
    """One attribute of the file's root."""

    name: str
    meaning: str


VERSION_ATTRIBUTES = ("hpcneuro_version", "neuron_version", "efel_version")
ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("config", "the resolved configuration (JSON)"),
    Attribute("config_hash", "hash of the configuration; a resume must match it"),
    Attribute("seed", "the sampling seed"),
    Attribute("created_at", "Unix time the file was created"),
    Attribute("hpcneuro_version", "hpcneuro that created the file"),
    Attribute("neuron_version", "NEURON that created the file"),
    Attribute("efel_version", "eFEL that created the file"),
    Attribute("status_codes", "the status codes as text ('0 pending, 1 done, ...')"),
)

# what 'read_table' may select: the 2-D fields
VARIABLES = {"params": ("params",), "features": ("features",), "both": ("params", "features")}


def layout() -> str:
    """The declaration as a table (dataset, dtype, shape, fill, meaning; then attributes)."""
    rows = [f"{f.name:<12} {f.dtype:<5} ({', '.join(f.shape)})".ljust(28)
            + f" fill {f.fill!r:<6} {f.meaning}" for f in FIELDS]
    rows += [f"@{a.name:<27} {a.meaning}" for a in ATTRIBUTES]
    return "\n".join(rows)


def _root_attributes(cfg: dict) -> dict[str, Any]:
    values = {"config": configuration.dumps(cfg),
              "config_hash": configuration.config_hash(cfg),
              "seed": cfg["seed"],
              "created_at": time.time(),
              **versions(),
              "status_codes": ", ".join(f"{k} {v}" for k, v in STATUS_NAMES.items())}
    assert list(values) == [a.name for a in ATTRIBUTES], "ATTRIBUTES and the writer disagree"
    return values


# --- parallel HDF5 -----------------------------------------------------------------------

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
    """The :data:`VERSION_ATTRIBUTES` of the running hpcneuro, NEURON and eFEL."""
    import efel

    import hpcneuro
    from hpcneuro.nrn import import_neuron

    return {"hpcneuro_version": hpcneuro.__version__,
            "neuron_version": import_neuron().__version__, "efel_version": efel.__version__}


# --- writing -----------------------------------------------------------------------------

def _allocated_now():
    """Dataset creation properties: space allocated (and filled) when the file is made, as
    parallel HDF5 always does, so a file created by one process behaves the same."""
    from h5py import h5d, h5p

    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5d.ALLOC_TIME_EARLY)
    return dcpl


class ResultsStore:
    """An open RESULTS.h5 for writing; every rank holds one (collective open and close
    under MPI)."""

    def __init__(self, h5file):
        self.file = h5file

    @classmethod
    def create(cls, path: str, cfg: dict, comm=None) -> "ResultsStore":
        """Create the file with every dataset at full size (collective under MPI)."""
        params = configuration.parameter_names(cfg)
        features = configuration.feature_names(cfg)
        dims = {"N": cfg["sampling"]["n_samples"], "P": len(params), "F": len(features)}
        names = {"params": params, "features": features}
        f = _open(path, "w", comm)
        try:
            cls._lay_out(f, cfg, dims, names)
        except BaseException:
            f.close()  # closes every object of the file: nothing left for HDF5 to trip on
            raise
        return cls(f)

    @staticmethod
    def _lay_out(f, cfg: dict, dims: dict[str, int], names: dict[str, list[str]]) -> None:
        """Every dataset at full size, the root attributes, flushed."""
        # contiguous, allocated now: later independent writes never touch metadata
        for field in FIELDS:
            ds = f.create_dataset(field.name, field.size(dims), field.dtype,
                                  fillvalue=field.fill, dcpl=_allocated_now())
            if field.name in names:
                ds.attrs["names"] = names[field.name]
        every = cfg["simulation"]["store_traces_every"]
        if every:
            group = f.create_group(TRACES)
            group.attrs["every"] = every
            group.attrs["record_dt"] = cfg["simulation"]["record_dt"]
            rows = (dims["N"] + every - 1) // every
            for protocol in cfg["protocols"]:
                if protocol["type"] == "rheobase":
                    continue
                points = int(round(protocol["tstop"] / cfg["simulation"]["record_dt"])) + 1
                group.create_dataset(protocol["name"], (rows, points), "f4", fillvalue=np.nan,
                                     dcpl=_allocated_now())
        for key, value in _root_attributes(cfg).items():
            f.attrs[key] = value
        f.flush()

    @classmethod
    def open(cls, path: str, comm=None) -> "ResultsStore":
        """Reopen an existing file for writing (collective under MPI)."""
        return cls(_open(path, "r+", comm))

    @staticmethod
    def read(path: str) -> "ResultsFile":
        """Open ``path`` read-only (serial); see :class:`ResultsFile`."""
        return ResultsFile(path)

    def write_block(self, indices: np.ndarray, params: np.ndarray, result, rank: int,
                    started_at: float, component: np.ndarray | None = None,
                    extra: dict | None = None) -> None:
        """Write one block's results.

        ``indices`` (n,) sorted sample indices; ``params`` (n, P); ``result`` a
        :class:`hpcneuro.simulation.BlockResult` (features (n, F), status (n,), valid (n,),
        errors: n strings, traces); ``started_at`` the Unix time the block was claimed;
        ``component`` (n,) the mixture component of each sample (None: not a mixture).
        ``status`` goes last, so a sample marked done always has its data on disk.
        ``extra`` gives values (n,) of further fields (e.g. MCMC's ``chain``, ``step``,
        ``accepted``, ``cost``); fields given by neither keep their fill value.
        """
        n = len(indices)
        values = {
            "params": params,
            "features": result.features,
            "status": result.status,
            "valid": result.valid,
            "error": [e.encode("utf-8", "replace")[:ERROR_LEN] for e in result.errors],
            "rank": np.full(n, rank),
            "started_at": np.full(n, started_at),
            "finished_at": np.full(n, time.time()),
            "component": np.full(n, -1) if component is None else component,
            **(extra or {}),
        }
        runs = contiguous_runs(indices)
        for field in FIELDS:
            if field.name != WRITTEN_LAST and field.name in values:
                self._write(field, values[field.name], runs)
        self._write_traces(indices, result.traces)
        self._write(FIELD[WRITTEN_LAST], values[WRITTEN_LAST], runs)

    def read_field(self, name: str, selection=slice(None)) -> np.ndarray:
        """Values of a field at ``selection`` (a slice, e.g. one chain's rows
        ``slice(c, None, n_chains)``, or sorted indices); independent under MPI."""
        if name not in FIELD:
            raise ValueError(f"{name!r} is not a field of RESULTS.h5 ({', '.join(FIELD)})")
        return self.file[name][selection]

    def _write(self, field: Field, values, runs: list[tuple[int, int, int, int]]) -> None:
        ds = self.file[field.name]
        if 0 in ds.shape:  # e.g. a campaign without features
            return
        values = np.asarray(values).astype(field.dtype, copy=False)
        for a, b, lo, hi in runs:
            ds[a:b] = values[lo:hi]

    def _write_traces(self, indices: np.ndarray, traces: dict) -> None:
        if TRACES not in self.file:
            return
        group = self.file[TRACES]
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


# --- reading -----------------------------------------------------------------------------

#: HDF5's own bytes (object headers, attributes, the config text) on top of raw data
METADATA_BYTES = 1 << 20


def estimated_bytes(cfg: dict) -> int:
    """Bytes a new RESULTS.h5 for ``cfg`` takes on disk: every field and trace dataset at
    full size (they are allocated when the file is created) plus metadata."""
    n = cfg["sampling"]["n_samples"]
    dims = {"N": n, "P": len(cfg["parameters"]), "F": len(cfg["features"])}
    total = sum(int(np.prod(field.size(dims), dtype=np.int64)) * np.dtype(field.dtype).itemsize
                for field in FIELDS)
    every = cfg["simulation"]["store_traces_every"]
    if every:
        rows = (n + every - 1) // every
        for protocol in cfg["protocols"]:
            if protocol["type"] != "rheobase":
                points = int(round(protocol["tstop"] / cfg["simulation"]["record_dt"])) + 1
                total += rows * points * np.dtype("f4").itemsize
    return total + len(configuration.dumps(cfg)) + METADATA_BYTES


def is_results_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an hpcneuro RESULTS.h5 (readable, with its status dataset)."""
    try:
        ResultsFile(path).close()
    except UserError:
        return False
    return True


class NotAResultsFile(UserError):
    """``path`` is missing, not HDF5, or not an hpcneuro results file; ``reason`` says
    which (callers that add their own advice use it)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class ResultsFile:
    """A RESULTS.h5 opened read-only (serial), e.g. while a campaign still writes it.

    Use as a context manager: ``with ResultsStore.read(path) as f: f.column("status")``.
    """

    def __init__(self, path: str | os.PathLike):
        import h5py

        self.path = str(path)
        if not os.path.exists(self.path):
            raise NotAResultsFile(self.path, "no such results file")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as exc:
            raise NotAResultsFile(self.path, f"not a readable HDF5 results file ({exc})") \
                from None
        if WRITTEN_LAST not in self._f:
            self._f.close()
            raise NotAResultsFile(self.path, "not an hpcneuro results file (no "
                                             f"'{WRITTEN_LAST}' dataset)")

    def __enter__(self) -> "ResultsFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    @property
    def n_samples(self) -> int:
        return int(self._f[WRITTEN_LAST].shape[0])

    def missing_fields(self) -> list[str]:
        """Declared fields this file lacks (one written by an older hpcneuro)."""
        return [f.name for f in FIELDS if f.name not in self._f]

    def attribute(self, name: str) -> Any:
        """A root attribute of :data:`ATTRIBUTES`."""
        if name not in self._f.attrs:
            raise NotAResultsFile(self.path, f"no '{name}' attribute")
        value = self._f.attrs[name]
        return value.item() if isinstance(value, np.generic) else value

    def config(self) -> dict:
        """The resolved configuration the campaign was created with."""
        return json.loads(self.attribute("config"))

    def config_hash(self) -> str:
        return str(self.attribute("config_hash"))

    def versions(self) -> dict[str, str]:
        """The :data:`VERSION_ATTRIBUTES` the file records."""
        return {k: str(self._f.attrs[k]) for k in VERSION_ATTRIBUTES if k in self._f.attrs}

    def column(self, name: str) -> np.ndarray:
        """A whole field: (N,) or (N, P) / (N, F), in its declared dtype."""
        if name not in FIELD:
            raise ValueError(f"{name!r} is not a field of RESULTS.h5 ({', '.join(FIELD)})")
        if name not in self._f:
            raise NotAResultsFile(self.path, f"no '{name}' dataset (written by an older "
                                             "hpcneuro?)")
        return self._f[name][:]

    def names(self, name: str) -> list[str]:
        """Column names of a 2-D field ("params" or "features")."""
        if FIELD[name].shape == ("N",):
            raise ValueError(f"{name!r} is one value per sample: it has no column names")
        return [str(n) for n in self._f[name].attrs["names"]]

    def traces(self, max_rows: int | None = None) -> dict[str, dict]:
        """Stored voltage traces (``simulation.store_traces_every``), per protocol:
        {"voltage": f4 (rows, T) mV (NaN rows: not yet run), "samples": (rows,) their
        sample indices, "record_dt": ms}; at most ``max_rows`` rows each; {} if none."""
        if TRACES not in self._f:
            return {}
        group = self._f[TRACES]
        every, dt = int(group.attrs["every"]), float(group.attrs["record_dt"])
        out = {}
        for name, ds in group.items():
            rows = ds.shape[0] if max_rows is None else min(max_rows, ds.shape[0])
            out[name] = {"voltage": ds[:rows], "samples": np.arange(rows) * every,
                         "record_dt": dt}
        return out

    def status(self) -> np.ndarray:
        """(N,) int8 status codes (:data:`STATUS_NAMES`)."""
        return self.column("status")

    def valid_models(self) -> np.ndarray:
        """(N,) bool: finished samples that meet every validity rule."""
        return (self.column("status") == DONE) & (self.column("valid") == 1)

    def table(self, variables: str = "params", valid_only: bool = True,
              drop_undefined: bool = True, columns: list[str] | None = None
              ) -> tuple[np.ndarray, list[str]]:
        """The matrix an analysis reads: (T, C) rows of finished (or only valid) samples,
        columns of ``variables`` ("params", "features" or "both") or exactly
        ``columns`` (parameter and feature names, in that order), and the C names.

        With ``drop_undefined``, rows with a NaN or infinite value among THESE columns
        are dropped (logged with counts per column). An empty selection is a
        :class:`UserError`. :meth:`select` also returns the counts.
        """
        sel = self.select(variables, valid_only, drop_undefined, columns)
        return sel.data, sel.names

    def select(self, variables: str = "params", valid_only: bool = True,
               drop_undefined: bool = True, columns: list[str] | None = None
               ) -> "Selection":
        """:meth:`table` with its row counts (a :class:`Selection`)."""
        if variables not in VARIABLES:
            raise UserError(f"variables: must be one of {', '.join(VARIABLES)} "
                            f"(got {variables!r})")
        keep = self.valid_models() if valid_only else self.column("status") == DONE
        if columns is None:
            parts, names = [], []
            for name in VARIABLES[variables]:
                parts.append(self.column(name)[keep])
                names += self.names(name)
            data = np.hstack(parts)
        else:
            where = self.column_index()
            unknown = [c for c in columns if c not in where]
            if unknown:
                raise UserError(f"{self.path}: no column {unknown[0]!r}; parameters: "
                                f"{', '.join(self.names('params'))}; features: "
                                f"{', '.join(self.names('features')) or 'none'}")
            dup = [c for i, c in enumerate(columns) if c in columns[:i]]
            if dup:
                raise UserError(f"column {dup[0]!r} is named twice")
            cache = {name: self.column(name)[keep] for name in {where[c][0] for c in columns}}
            data = np.column_stack([cache[where[c][0]][:, where[c][1]] for c in columns]) \
                if columns else np.zeros((int(keep.sum()), 0))
            names = list(columns)
        which = "valid models" if valid_only else "finished samples"
        if data.shape[0] == 0:
            raise UserError(f"{self.path} has no {which} to analyse"
                            + ("; try --all-models" if valid_only else ""))
        n_selected = data.shape[0]
        by_column: dict[str, int] = {}
        if drop_undefined:
            bad = ~np.isfinite(data)
            by_column = {names[j]: int(bad[:, j].sum()) for j in range(len(names))
                         if bad[:, j].any()}
            rows_ok = ~bad.any(axis=1)
            if not rows_ok.all():
                log.warning("dropping %d of %d models with undefined (NaN) values in the "
                            "analysed columns (%s); %d left",
                            int((~rows_ok).sum()), rows_ok.size,
                            ", ".join(f"{c}: {n}" for c, n in by_column.items()),
                            int(rows_ok.sum()))
                data = data[rows_ok]
        if data.shape[0] == 0:
            raise UserError(f"{self.path}: every one of the {n_selected} {which} has an "
                            "undefined value in the analysed columns ("
                            + ", ".join(f"{c}: {n}" for c, n in by_column.items()) + ")")
        return Selection(data=data, names=names, valid_only=valid_only,
                         n_selected=n_selected, n_dropped=n_selected - data.shape[0],
                         dropped_by_column=by_column)

    def column_index(self) -> dict[str, tuple[str, int]]:
        """Every column name -> (field "params" or "features", its column)."""
        out: dict[str, tuple[str, int]] = {}
        for field in ("params", "features"):
            for j, name in enumerate(self.names(field)):
                out.setdefault(name, (field, j))
        return out

    def summary(self) -> dict:
        """Counts, throughput and ETA of the campaign.

        Keys: name, n_samples, counts ({status code: samples}), n_valid, rate
        (samples/s over the recent activity), eta_seconds, last_write (Unix time; NaN
        before the first block).
        """
        status = self.status()
        finished = self.column("finished_at")
        created = float(self._f.attrs.get("created_at", np.nan))
        counts = {code: int(np.sum(status == code)) for code in STATUS_NAMES}
        rate = recent_rate(finished[np.isfinite(finished)], created)
        eta = counts[PENDING] / rate if counts[PENDING] and rate > 0 else np.nan
        last = float(np.nanmax(finished)) if np.isfinite(finished).any() else np.nan
        return {"name": self.config().get("name", ""), "n_samples": status.size,
                "counts": counts, "n_valid": int(self.valid_models().sum()),
                "rate": rate, "eta_seconds": eta, "last_write": last}


@dataclass
class Selection:
    """Rows and columns of a results file chosen for an analysis (ResultsFile.select).

    data (T, C), names (C); valid_only: valid models only, or every finished one;
    n_selected: rows before dropping undefined values; n_dropped: rows dropped;
    dropped_by_column: name -> rows undefined in that column (a row can count in
    several).
    """

    data: np.ndarray
    names: list[str]
    valid_only: bool
    n_selected: int
    n_dropped: int
    dropped_by_column: dict[str, int]


def read(path: str | os.PathLike) -> ResultsFile:
    """Open a results file read-only (same as :meth:`ResultsStore.read`)."""
    return ResultsFile(path)


def read_summary(path: str | os.PathLike) -> dict:
    """Counts, throughput and ETA of a campaign, from the file alone (serial read); see
    :meth:`ResultsFile.summary`."""
    with ResultsFile(path) as f:
        return f.summary()


def read_table(path: str | os.PathLike, variables: str = "params", valid_only: bool = True,
               drop_undefined: bool = True, columns: list[str] | None = None
               ) -> tuple[np.ndarray, list[str]]:
    """(T, C) data and C names of a campaign; see :meth:`ResultsFile.table`."""
    with ResultsFile(path) as f:
        return f.table(variables, valid_only, drop_undefined, columns)


def read_selection(path: str | os.PathLike, variables: str = "params",
                   valid_only: bool = True, columns: list[str] | None = None) -> Selection:
    """The rows and columns of an analysis with their counts; see :meth:`ResultsFile.select`."""
    with ResultsFile(path) as f:
        return f.select(variables, valid_only, True, columns)


def read_config(path: str | os.PathLike) -> dict:
    """The resolved configuration a results file was created with."""
    with ResultsFile(path) as f:
        return f.config()


def read_status(path: str | os.PathLike) -> np.ndarray:
    """(N,) int8 status codes of a results file."""
    with ResultsFile(path) as f:
        return f.status()


def status_counts(status: np.ndarray) -> dict[str, int]:
    """Samples per status name, in code order: {"pending": ..., "done": ..., ...}."""
    return {name: int(np.sum(status == code)) for code, name in STATUS_NAMES.items()}


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
