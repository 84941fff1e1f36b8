"""Estimators: Gaussian-copula scores, the correlation matrix, and entropy bias.

Everything the engine computes is a function of one (N, N) correlation matrix
of the (copula-normalised or plain Gaussian) data; the bias offsets turn
plug-in O and S = TC + DTC into bias-corrected values per order (BRIEF
section 2). All values in nats.
"""
from __future__ import annotations

import math

import numpy as np

LN2 = math.log(2.0)


def copula_normalize(data: np.ndarray) -> np.ndarray:
    """Gaussian-copula transform of each column.

    data: (T, N). Returns (T, N) float64 standard-normal scores
    Phi^-1(rank / (T + 1)); ties get their average rank.
    """
    from scipy.special import ndtri

    x = np.asarray(data, dtype=np.float64)
    ranks = average_ranks(x)
    return ndtri(ranks / (x.shape[0] + 1.0))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..T of each column of (T, N) x, ties given their average rank.

    The same values as scipy.stats.rankdata(x, "average", axis=0) (average ranks
    are half-integers, exact in float64), without importing scipy.stats, which
    took 0.6 s of the command's start-up (issue 14).
    """
    t, n = x.shape
    order = np.argsort(x, axis=0, kind="stable")
    ranks = np.empty((t, n))
    for j in range(n):
        xs = x[order[:, j], j]
        new = np.empty(t, bool)
        new[:1] = True
        np.not_equal(xs[1:], xs[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        counts = np.diff(np.append(starts, t))
        ranks[order[:, j], j] = np.repeat(starts + (counts + 1) / 2.0, counts)
    return ranks


def correlation_matrix(data: np.ndarray, estimator: str = "gc") -> np.ndarray:
    """(N, N) correlation matrix of (T, N) data under estimator "gc" or "gauss"."""
    x = copula_normalize(data) if estimator == "gc" else np.asarray(data, np.float64)
    x = x - x.mean(axis=0)
    c = x.T @ x
    d = np.sqrt(np.diag(c))
    r = c / np.outer(d, d)
    np.fill_diagonal(r, 1.0)
    return r


def entropy_bias(d: int, n_samples: int) -> float:
    """Gaussian plug-in entropy bias b(d, T) in nats (BRIEF section 2)."""
    from scipy.special import digamma

    if d <= 0:
        return 0.0
    t = n_samples
    i = np.arange(1, d + 1)
    return 0.5 * (d * math.log(2.0 / (t - 1)) + float(np.sum(digamma((t - i) / 2.0))))


def bias_offsets(max_order: int, n_samples: int, bias_correct: bool) -> np.ndarray:
    """Additive correction of plug-in O per order, in nats; (max_order+1,).

    O = (k-2) H(X) + sum_j [H(X_j) - H(X_-j)], and corrected H = H - b, so
    O_corrected = O - [(k-2) b(k) + k b(1) - k b(k-1)].  Zero if not asked.
    """
    off = np.zeros(max_order + 1)
    if bias_correct:
        b1 = entropy_bias(1, n_samples)
        for k in range(2, max_order + 1):
            off[k] = -((k - 2) * entropy_bias(k, n_samples) + k * b1
                       - k * entropy_bias(k - 1, n_samples))
    return off


def sinfo_offsets(max_order: int, n_samples: int, bias_correct: bool) -> np.ndarray:
    """Additive correction of plug-in S = TC + DTC per order (nats); (max_order+1,)."""
    off = np.zeros(max_order + 1)
    if bias_correct:
        b1 = entropy_bias(1, n_samples)
        for k in range(2, max_order + 1):
            off[k] = -(k * b1 - k * entropy_bias(k, n_samples)
                       + k * entropy_bias(k - 1, n_samples))
    return off
