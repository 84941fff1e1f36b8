"""Direct evaluation of given multiplets, independent of the depth-first walk.

``reference_oinfo`` is the slow, obviously-correct definition (slogdet of
sub-matrices) the tests hold the engine to; ``oinfo_sets`` is a direct
Cholesky per multiplet, used for the few reported multiplets (top-K values,
statistics) and the histogram pilot. Both are plug-in, in nats, and pure
functions of a correlation (or covariance) matrix.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from numba import njit


def reference_oinfo(cov: np.ndarray, subset: Sequence[int]) -> tuple[float, float, float]:
    """Direct, independent reference: (O, TC, DTC) in nats, plug-in.

    cov: (N, N) covariance or correlation; subset: k indices. Uses only
    entropies from slogdet of sub-matrices:
    O = (k-2) H(X) + sum_j [H(X_j) - H(X_-j)], TC = sum_j H(X_j) - H(X),
    DTC = H(X) - sum_j [H(X) - H(X_-j)], with H(A) = 1/2 log det cov_A (the
    2*pi*e constants cancel).
    """
    s = list(subset)
    k = len(s)

    def h(idx: list[int]) -> float:
        if not idx:
            return 0.0
        sign, ld = np.linalg.slogdet(cov[np.ix_(idx, idx)])
        return 0.5 * ld

    hx = h(s)
    h1 = sum(h([j]) for j in s)
    hminus = [h(s[:i] + s[i + 1:]) for i in range(k)]
    tc = h1 - hx
    dtc = hx - sum(hx - hm for hm in hminus)
    return tc - dtc, tc, dtc


@njit(cache=True, nogil=True)
def cholesky_inverse(R: np.ndarray, S: np.ndarray, L: np.ndarray, W: np.ndarray) -> float:
    """Cholesky factor L of R[S, S] and W = L^-1 (both lower, written into the (k, k)
    arrays given, k = len(S)); returns log det R[S, S]. O(k^3)."""
    k = S.shape[0]
    ld = 0.0
    for i in range(k):
        for j in range(i + 1):
            s = R[S[i], S[j]]
            for q in range(j):
                s -= L[i, q] * L[j, q]
            if i == j:
                L[i, i] = math.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
        ld += 2.0 * math.log(L[i, i])
    for i in range(k):
        W[i, i] = 1.0 / L[i, i]
        for j in range(i):
            s = 0.0
            for q in range(j, i):
                s += L[i, q] * W[q, j]
            W[i, j] = -s / L[i, i]
    return ld


@njit(cache=True, nogil=True)
def oinfo_sets(R: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """(O, TC, DTC) plug-in nats of each row of sets; returns (M, 3).

    R: (N, N) correlation matrix (unit diagonal). sets: (M, k) int indices.
    Direct Cholesky per multiplet, O(k^3): for reported multiplets only.
    """
    m, k = sets.shape
    out = np.empty((m, 3))
    L = np.zeros((k, k))
    W = np.zeros((k, k))
    for r in range(m):
        ld = cholesky_inverse(R, sets[r], L, W)
        # diag(P) = column sums of W^2
        slp = 0.0
        for j in range(k):
            p = 0.0
            for i in range(j, k):
                p += W[i, j] * W[i, j]
            slp += math.log(p)
        tc = -0.5 * ld
        dtc = 0.5 * (ld + slp)
        out[r, 0] = tc - dtc
        out[r, 1] = tc
        out[r, 2] = dtc
    return out
