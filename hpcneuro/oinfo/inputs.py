"""Input checks: options, the data table, NaN policy, degenerate columns, conditioning.

Every refusal is a one-line UserError that says what to change. Constant and
exactly duplicated columns carry nothing the O-information can use, so they
are dropped with a logged warning rather than refused (the target excepted).
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from ..errors import UserError
from ..analysis import check_search  # noqa: F401 - the engine's check of search options
from .estimators import copula_normalize, correlation_matrix

log = logging.getLogger(__name__)

#: R must have smallest eigenvalue above this (all sub-matrices then do too)
MIN_EIGENVALUE = 1e-10
#: columns whose copula/gauss correlation magnitude exceeds this are duplicates
DUPLICATE_CORR = 1.0 - 1e-12
#: the kernel's top-K heaps hold variable indices as int16
MAX_VARIABLES = int(np.iinfo(np.int16).max)
ESTIMATORS = ("gc", "gauss")
UNITS = ("nats", "bits")
NAN_POLICIES = ("raise", "drop")


def check_options(estimator: str, units: str, nan_policy: str, bootstrap: int,
                  permutations: int, top: int, n_workers: int | None = None) -> None:
    """Refuse unknown estimator/units/nan_policy names, negative counts and fewer than one
    worker."""
    if n_workers is not None and int(n_workers) < 1:
        raise UserError(f"n_workers must be >= 1 (got {n_workers}); leave it out to use "
                        "every core")
    if estimator not in ESTIMATORS:
        raise UserError(f"unknown estimator {estimator!r}: use 'gc' or 'gauss'")
    if units not in UNITS:
        raise UserError(f"unknown units {units!r}: use 'nats' or 'bits'")
    if nan_policy not in NAN_POLICIES:
        raise UserError(f"unknown nan_policy {nan_policy!r}: use 'raise' or 'drop'")
    for label, val in (("bootstrap", bootstrap), ("permutations", permutations), ("top", top)):
        if int(val) < 0:
            raise UserError(f"{label} must be >= 0, got {val}")


def validate(data: Any, names: Sequence[str], nan_policy: str) -> tuple[Any, list[str]]:
    """The (T, N) table as float64 with N unique names; NaN/inf rows refused or dropped.

    A lazy (dask) table is returned as it is after the shape and name checks:
    it is streamed later and never held in memory.
    """
    x = np.asarray(data, dtype=np.float64) if not hasattr(data, "compute") else data
    if x.ndim != 2:
        raise UserError(f"the table must be 2-D (samples x variables); got shape {x.shape}")
    names = [str(s) for s in names]
    if len(names) != x.shape[1]:
        raise UserError(f"{len(names)} names for {x.shape[1]} columns: give one name per column")
    dup = sorted({s for s in names if names.count(s) > 1})
    if dup:
        raise UserError(f"duplicated column names {dup}: rename them so each is unique")
    if hasattr(x, "compute"):
        return x, names
    bad = ~np.isfinite(x)
    if bad.any():
        cols = [f"{names[j]} ({int(bad[:, j].sum())})" for j in np.flatnonzero(bad.any(axis=0))]
        if nan_policy == "drop":
            keep = ~bad.any(axis=1)
            log.warning("dropping %d of %d rows with NaN/inf in %s", int((~keep).sum()),
                        x.shape[0], ", ".join(cols))
            x = x[keep]
        else:
            raise UserError("NaN or infinite values in columns " + ", ".join(cols)
                            + ": remove those rows, or leave those columns out (--columns); "
                            "from Python, nan_policy='drop' drops incomplete rows")
    return x, names


def drop_degenerate(x: np.ndarray, names: list[str], target: str | None,
                    estimator: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Drop constant columns and exact duplicates (after the estimator's transform).

    Both carry no information the O-information can use (zero variance or a
    singular covariance); they are dropped with a logged warning. The target
    is never dropped: a degenerate target is an error. Returns (x, xs, names,
    dropped) with xs the transformed data (copula scores for "gc").
    """
    dropped: list[str] = []
    const = [j for j in range(x.shape[1]) if np.ptp(x[:, j]) == 0]
    for j in const:
        if names[j] == target:
            raise UserError(f"the target column {target!r} is constant: choose another target")
        dropped.append(names[j])
    if const:
        # one line, not thousands (gene tables have many all-zero genes)
        shown = ", ".join(repr(s) for s in dropped[:10]) + (" ..." if len(dropped) > 10 else "")
        log.warning("dropping %d constant column(s): %s", len(dropped), shown)
    keep = [j for j in range(x.shape[1]) if j not in const]
    x = x[:, keep]
    names = [names[j] for j in keep]
    xs = copula_normalize(x) if estimator == "gc" else x
    if x.shape[1] >= 2 and x.shape[0] >= 2:
        r = np.abs(correlation_matrix(xs, "gauss"))
        gone: set[int] = set()
        for j in range(x.shape[1]):
            if j in gone:
                continue
            for i in np.flatnonzero(r[j, j + 1:] > DUPLICATE_CORR) + j + 1:
                i = int(i)
                if i in gone:
                    continue
                drop = j if names[i] == target else i
                if names[drop] == target:
                    continue
                log.warning("dropping column %r: it duplicates %r", names[drop],
                            names[j if drop == i else i])
                dropped.append(names[drop])
                gone.add(drop)
        keep = [j for j in range(x.shape[1]) if j not in gone]
        x, xs = x[:, keep], xs[:, keep]
        names = [names[j] for j in keep]
    return x, xs, names, dropped




def normalize_streamed(R: np.ndarray, names: list[str]) -> np.ndarray:
    """Correlation (N, N) from a streamed (N, N) covariance, refusing NaN and constants.

    Streamed tables (HDF5 read in blocks) cannot drop rows or columns, so
    what the in-memory path would drop is an error here.
    """
    d = np.diag(R)
    if np.any(~np.isfinite(R)):
        raise UserError("NaN or infinite values in the table: remove those rows first")
    const = [names[j] for j in range(len(d)) if not d[j] > 0]
    if const:
        raise UserError(f"constant columns {const}: exclude them with --columns")
    rs = np.sqrt(d)
    R = R / np.outer(rs, rs)
    np.fill_diagonal(R, 1.0)
    return R


#: the largest exhaustive job (multiplets over all requested orders) accepted unless the
#: caller raises it: ~0.8 core-hours at SECONDS_PER_MULTIPLET (minutes on a cluster node;
#: the full N = 30 sweep is 1.07e9); anything larger (10,000 genes at orders 3..5: 8e17)
#: would run for years or until killed, so it is refused with the advice to use a search
#: or raise --max-multiplets
MAX_MULTIPLETS = 10 ** 11
#: engine wall time per multiplet and worker (bench_oinfo: 1.07e9 multiplets of N = 30
#: in 15.3 s on 2 workers, ~28.5 ns each; rounded up): the basis of the time estimate
SECONDS_PER_MULTIPLET = 3e-8


def job_size(n: int, min_order: int, max_order: int | None, targeted: bool) -> int:
    """Multiplets of orders min..max (max None: min(n, 5)) over n variables."""
    from .plan import count_multiplets

    top = min(n, 5) if max_order is None else min(max_order, n)
    return sum(count_multiplets(n, k, targeted) for k in range(min_order, top + 1))


def check_job_size(n: int, min_order: int, max_order: int | None, targeted: bool,
                   n_workers: int, max_multiplets: int | None) -> int:
    """Log the number of multiplets and an estimate of the time; refuse a job above
    ``max_multiplets`` (default MAX_MULTIPLETS) before any work. Returns the count."""
    limit = MAX_MULTIPLETS if max_multiplets is None else int(max_multiplets)
    count = job_size(n, min_order, max_order, targeted)
    seconds = count * SECONDS_PER_MULTIPLET / max(1, n_workers)
    if count > limit:
        raise UserError(
            f"{count:.3g} multiplets over {n} variables (orders {min_order}.."
            f"{min(n, 5) if max_order is None else max_order}) is above the limit of "
            f"{limit:.3g} (about {_duration(seconds)} on {n_workers} worker(s)): choose a "
            "search (--search greedy, annealing or beam), lower --max-order, select fewer "
            "--columns, or raise --max-multiplets")
    log.info("%s multiplets to compute, about %s on %d worker(s)", f"{count:,}",
             _duration(seconds), n_workers)
    return count


def _duration(seconds: float) -> str:
    for unit, size in (("years", 3.15e7), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.2g} s"


def check_sizes(n: int, n_samples: int, min_order: int, max_order: int | None) -> int:
    """Refuse too few/many variables, bad orders, too few samples; return max_order.

    n: usable variables, n_samples: rows. max_order None means min(n, 5).
    """
    if n < 3:
        raise UserError(f"only {n} usable variables: O-information needs at least 3")
    if n > MAX_VARIABLES:
        raise UserError(f"{n} variables: at most {MAX_VARIABLES} are supported; select "
                        "columns with --columns")
    if max_order is None:
        max_order = min(n, 5)
    if not (3 <= min_order <= max_order <= n):
        raise UserError(f"orders {min_order}..{max_order} out of range: need "
                        f"3 <= min_order <= max_order <= {n} (number of usable variables)")
    if n_samples <= n:
        raise UserError(f"{n_samples} samples for {n} variables: need more samples than "
                        "variables (add rows or select fewer columns with --columns)")
    return max_order


def check_conditioning(R: np.ndarray) -> None:
    """Refuse an (N, N) correlation whose smallest eigenvalue is below MIN_EIGENVALUE."""
    ev = float(np.linalg.eigvalsh(R)[0])
    if ev < MIN_EIGENVALUE:
        raise UserError(f"the variables are (nearly) linearly dependent (smallest "
                        f"correlation eigenvalue {ev:.2e}): drop redundant columns")
