"""Count checks, normalisation, cell and gene filters.

``cpm-log1p`` is what scanpy's ``normalize_total(target_sum=1e6)`` followed by ``log1p``
computes: each cell's counts divided by its total over *all* genes of the table (so the
library size is not distorted by the gene selection), times 1e6, then ``log(1 + x)``
(natural log). tests/test_genes.py checks the two formulas against scanpy on one matrix.
"""
from __future__ import annotations

import numpy as np

from hpcneuro.errors import UserError

METHODS = ("cpm-log1p", "none")


def check_counts(X: np.ndarray, what: str = "counts") -> None:
    """Refuse NaN/inf, negative and non-integer counts (one line, the first bad cell)."""
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise UserError(f"{what}: NaN or infinite value at cell {i}, gene {j}; counts must "
                        "be finite (or use --normalize none for normalised data)")
    if (X < 0).any():
        i, j = np.argwhere(X < 0)[0]
        raise UserError(f"{what}: negative count {X[i, j]:g} (cell {i}, gene {j}): "
                        "cpm-log1p needs raw counts; use --normalize none for data that is "
                        "already normalised")
    frac = X != np.round(X)
    if frac.any():
        i, j = np.argwhere(frac)[0]
        raise UserError(f"{what}: non-integer count {X[i, j]:g} (cell {i}, gene {j}): "
                        "cpm-log1p needs raw counts; use --normalize none for data that is "
                        "already normalised")


def cpm_log1p(X: np.ndarray, target_sum: float = 1e6) -> np.ndarray:
    """log1p(counts / cell total * target_sum); cells x genes."""
    tot = X.sum(axis=1, keepdims=True)
    if (tot <= 0).any():
        i = int(np.flatnonzero(tot[:, 0] <= 0)[0])
        raise UserError(f"cell {i} has no counts at all: drop it (e.g. --min-genes 1)")
    return np.log1p(X / tot * target_sum)


def normalize(X: np.ndarray, method: str) -> np.ndarray:
    if method == "cpm-log1p":
        check_counts(X)
        return cpm_log1p(X)
    if method == "none":
        if not np.isfinite(X).all():
            raise UserError("expression has NaN or infinite values: remove those cells")
        return np.asarray(X, dtype=np.float64)
    raise UserError(f"--normalize {method!r}: use one of {', '.join(METHODS)}")


def detection(X: np.ndarray) -> np.ndarray:
    """Fraction of cells in which each gene is detected (value > 0)."""
    return (X > 0).mean(axis=0)


def gene_filter(Xn: np.ndarray, Xraw: np.ndarray, genes: list[str], min_detection: float,
                top_variable: int | None) -> tuple[list[int], dict]:
    """Column indices kept: detected in >= min_detection of cells, then the top-K most
    variable (variance of the normalised values; ties by name). Returns (indices, info)."""
    if not 0 <= min_detection <= 1:
        raise UserError(f"--min-detection {min_detection}: give a fraction in [0, 1]")
    det = detection(Xraw)
    var = Xn.var(axis=0)
    keep = [j for j in range(len(genes)) if det[j] >= min_detection and var[j] > 0]
    info = dict(detection=det, variance=var, n_detected=len(keep))
    if top_variable is not None and top_variable > 0 and len(keep) > top_variable:
        keep = sorted(keep, key=lambda j: (-var[j], genes[j]))[:top_variable]
        keep.sort()
    return keep, info
