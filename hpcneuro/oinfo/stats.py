"""Statistics of an O-information run: histogram ranges, gradient, bootstrap,
permutation p-values and Benjamini-Hochberg q-values.

The statistics concern the *reported* multiplets of each order (all of them
for a complete order, the top-K otherwise). They work in kernel space (the
permuted correlation matrix, target first) through an explicit
``ReportedRows`` record per order, and fill that order's ``OrderStats``
record (result.py), rows as in ``OrderResult.multiplets``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ..errors import UserError
from .estimators import correlation_matrix
from .plan import Unit
from .result import OrderStats

#: histogram bins per order (plus one underflow and one overflow bin)
HIST_BINS = 64
#: multiplets drawn per order to fix the histogram range before the run
PILOT_SIZE = 256
#: the pilot's generator is seeded with seed + this, apart from bootstrap/permutations
PILOT_SEED_OFFSET = 7919


def oinfo_sets(R: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """reference.oinfo_sets (numba), imported on first use: a tiny job passes
    tiny.oinfo_sets_np as `evaluate` instead and never imports numba."""
    from .reference import oinfo_sets as numba_oinfo_sets

    return numba_oinfo_sets(R, sets)


@dataclass(frozen=True)
class ReportedRows:
    """The reported rows of one order in kernel space, input of the statistics.

    sets: (M, k) int64, C-contiguous, ascending indices into the kernel's
    (permuted) correlation matrix, rows in the result's row order.
    colorder: (M, k) int: column q of the result's row is column colorder[:, q]
    of sets. oinfo: (M,) O of each row in the result's units.
    """

    sets: np.ndarray
    colorder: np.ndarray
    oinfo: np.ndarray


def hist_ranges(R: np.ndarray, orders: Iterable[int], perm_root: tuple[int, ...],
                offset: np.ndarray, scale: float, seed: int,
                evaluate=oinfo_sets) -> tuple[np.ndarray, np.ndarray]:
    """Fixed histogram range per order, from a pilot sample drawn before the run.

    R: (N, N) kernel-space correlation. Returns (lo, inv_w), each
    (max_order+1,): bin b of order k starts at lo[k] + b / inv_w[k]. The range
    is the pilot's [min, max] widened by half its span on each side; values
    outside land in the under/overflow bins. Seeded: worker-independent.
    evaluate: (R, sets) -> (M, 3) plug-in (O, TC, DTC), oinfo_sets by default.
    """
    n = R.shape[0]
    K = max(orders)
    lo = np.zeros(K + 1)
    inv_w = np.ones(K + 1)
    rng = np.random.default_rng(seed + PILOT_SEED_OFFSET)
    free = np.array([v for v in range(n) if v not in perm_root], np.int64)
    for k in orders:
        kk = k - len(perm_root)
        pick = free[np.argsort(rng.random((PILOT_SIZE, len(free))), axis=1)[:, :kk]]
        if perm_root:
            pick = np.column_stack([np.full(PILOT_SIZE, perm_root[0]), pick])
        sets = np.ascontiguousarray(np.sort(pick, axis=1))
        o = (evaluate(R, sets)[:, 0] + offset[k]) * scale
        a, b = float(o.min()), float(o.max())
        span = max(b - a, 1e-9 * max(1.0, abs(a)), 1e-12)
        a -= 0.5 * span
        b += 0.5 * span
        lo[k] = a
        inv_w[k] = HIST_BINS / (b - a)
    return lo, inv_w


def hist_edges(lo: float, inv_w: float) -> np.ndarray:
    """(HIST_BINS+1,) bin edges of one order's histogram from hist_ranges' lo, inv_w."""
    return lo + np.arange(HIST_BINS + 1) / inv_w


def add_gradient(Rp: np.ndarray, rows: dict[int, ReportedRows], stats: dict[int, OrderStats],
                 offset: np.ndarray, scale: float, evaluate=oinfo_sets) -> None:
    """Gradient O-information O(X) - O(X without member i): (M, k) per order.

    Column q follows column q of the result's multiplets (sorted original indices).
    """
    for k, rr in rows.items():
        sets = rr.sets
        g = np.zeros((len(sets), k))
        if len(sets):
            full = (evaluate(Rp, sets)[:, 0] + offset[k]) * scale
            for q in range(k):
                sub = np.ascontiguousarray(np.delete(sets, q, axis=1))
                g[:, q] = full - (evaluate(Rp, sub)[:, 0] + offset[k - 1]) * scale
            g = np.take_along_axis(g, rr.colorder, axis=1)
        stats[k].gradient = g


def _shuffled_corr(xs: np.ndarray, perm: list[int], rows: np.ndarray | None,
                   rng: np.random.Generator | None) -> np.ndarray:
    """Correlation (kernel column order) of resampled rows or shuffled columns."""
    if rows is not None:
        z = xs[rows]
    else:
        z = np.empty_like(xs)
        for j in range(xs.shape[1]):
            z[:, j] = xs[rng.permutation(xs.shape[0]), j]
    r = correlation_matrix(z, "gauss")
    return np.ascontiguousarray(r[np.ix_(perm, perm)])


def add_bootstrap(xs: np.ndarray | None, perm: list[int], rows: dict[int, ReportedRows],
                  stats: dict[int, OrderStats], units: list[Unit], cfg: dict, client: Any,
                  n_boot: int, rng: np.random.Generator, level: float, offset: np.ndarray,
                  scale: float) -> None:
    """Percentile bootstrap CIs: rows resampled, same engine on each matrix.

    xs: (T, N) transformed data (copula scores for "gc"), None if streamed.
    Per-order means need the whole enumeration again (stats only, no top-K,
    no histogram); reported multiplets are evaluated directly.
    """
    from .engine import _engine

    if xs is None:
        raise UserError("bootstrap needs the table in memory; this table was streamed "
                        "from HDF5 (select fewer columns/rows, or drop --bootstrap)")
    t = xs.shape[0]
    cfg0 = dict(cfg, top=0, nbins=0)
    means = {k: np.zeros(n_boot) for k in rows}
    fracs = {k: np.zeros(n_boot) for k in rows}
    vals = {k: np.zeros((n_boot, len(rr.sets))) for k, rr in rows.items()}
    for b in range(n_boot):
        rb = _shuffled_corr(xs, perm, rng.integers(0, t, t), None)
        part = _engine(rb, units, cfg0, client, False)
        for k, rr in rows.items():
            means[k][b] = math.fsum(s[k] for s in part.sums) / part.icount[k, 0]
            fracs[k][b] = part.icount[k, 1] / part.icount[k, 0]
            if len(rr.sets):
                vals[k][b] = (oinfo_sets(rb, rr.sets)[:, 0] + offset[k]) * scale
    a = 100 * (1 - level) / 2
    for k, rr in rows.items():
        st = stats[k]
        st.mean_ci = percentile_interval(means[k], level)
        st.frac_syn_ci = percentile_interval(fracs[k], level)
        st.boot_means, st.boot_frac_syn = means[k], fracs[k]
        if len(rr.sets):
            st.ci_low = np.percentile(vals[k], a, axis=0)
            st.ci_high = np.percentile(vals[k], 100 - a, axis=0)
        else:
            st.ci_low = st.ci_high = np.zeros(0)


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of a bootstrap distribution."""
    a = 100 * (1 - level) / 2
    return float(np.percentile(values, a)), float(np.percentile(values, 100 - a))


def compare(a: Any, b: Any, level: float | None = None) -> list[dict[str, Any]]:
    """Per-order difference between two analyses A and B (OInfoResult), A - B.

    For every order both hold: mean O of each with its interval, the difference of
    means with a percentile interval from the difference of the two bootstrap
    distributions (resample b of A minus resample b of B, over the first
    min(B_A, B_B) resamples: the analyses' resamples are independent, which is
    right for two ensembles of different models; for two analyses of the same rows
    the interval is conservative), and the same for the fraction of synergistic
    multiplets. Needs both files written with --bootstrap (their ``boot_mean``);
    without it the intervals are NaN. ``excludes_zero`` says whether the
    difference-of-means interval excludes 0. level: that of A (default).
    """
    for key in ("estimator", "units", "bias_correct"):
        if a.attrs.get(key) != b.attrs.get(key):
            raise UserError(f"cannot compare analyses with different {key} "
                            f"({a.attrs.get(key)!r} vs {b.attrs.get(key)!r}): values are "
                            "not on the same scale")
    level = float(level if level is not None else a.attrs.get("ci_level", 0.95))
    out = []
    for k in sorted(set(a.orders) & set(b.orders)):
        ra, rb = a.orders[k], b.orders[k]
        row: dict[str, Any] = dict(order=k, n_a=ra.n_multiplets, n_b=rb.n_multiplets,
                                   mean_a=ra.mean, mean_b=rb.mean, diff=ra.mean - rb.mean,
                                   frac_syn_a=ra.frac_synergistic,
                                   frac_syn_b=rb.frac_synergistic,
                                   frac_syn_diff=ra.frac_synergistic - rb.frac_synergistic)
        nan2 = (float("nan"), float("nan"))
        row["mean_a_ci"] = ra.stats.mean_ci or nan2
        row["mean_b_ci"] = rb.stats.mean_ci or nan2
        sa, sb = ra.stats, rb.stats
        if sa.boot_means is not None and sb.boot_means is not None:
            m = min(len(sa.boot_means), len(sb.boot_means))
            row["diff_ci"] = percentile_interval(sa.boot_means[:m] - sb.boot_means[:m], level)
            row["frac_syn_diff_ci"] = percentile_interval(
                sa.boot_frac_syn[:m] - sb.boot_frac_syn[:m], level)
            row["n_boot"] = m
        else:
            row["diff_ci"] = row["frac_syn_diff_ci"] = nan2
            row["n_boot"] = 0
        lo, hi = row["diff_ci"]
        row["excludes_zero"] = bool(lo > 0 or hi < 0)
        out.append(row)
    if not out:
        raise UserError(f"the analyses have no order in common (A: {sorted(a.orders)}, "
                        f"B: {sorted(b.orders)})")
    return out


def bh_fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values of p-values (any shape, flattened order kept).

    scipy computes p * (m / i) where the former hand-written code did
    (p * m) / i: q-values agree to 1 ulp (relative 3.4e-16 at most over
    2000 random vectors with ties), not bit for bit.
    """
    from scipy.stats import false_discovery_control

    p = np.asarray(p, float).ravel()
    if len(p) == 0:  # scipy refuses an empty array
        return p
    return false_discovery_control(p, method="bh")


def add_permutations(xs: np.ndarray | None, perm: list[int], rows: dict[int, ReportedRows],
                     stats: dict[int, OrderStats], n_perm: int, rng: np.random.Generator,
                     offset: np.ndarray, scale: float) -> None:
    """Permutation null (each column shuffled independently): a test against
    INDEPENDENCE of all the columns, not against "no higher-order interaction".

    Shuffling destroys the pairwise correlations too, so a multiplet of three
    pairwise-correlated variables with O exactly 0 in theory still gets a small
    p-value. No permutation can do better under the Gaussian estimators: O is a
    function of the correlation matrix alone, so any null that keeps the pairwise
    correlations keeps O itself (README "Statistics"). For "is O different from
    0" use the bootstrap interval; to compare with a control use stats.compare.

    Under the null every multiplet of one order has the same distribution of O
    (columns independent, same copula marginals), so the null of an order pools
    the reported multiplets of that order across all permutations. p-values are
    two-sided, (1 + #{|O_null| >= |O|}) / (1 + n_null); q-values are
    Benjamini-Hochberg over every reported multiplet of every order. The
    selection of top multiplets is not corrected for: read p as per-multiplet.
    """
    if xs is None:
        raise UserError("permutations need the table in memory; this table was streamed "
                        "from HDF5 (select fewer columns/rows, or drop --permutations)")
    nulls: dict[int, list] = {k: [] for k in rows}
    for _ in range(n_perm):
        rn = _shuffled_corr(xs, perm, None, rng)
        for k, rr in rows.items():
            if len(rr.sets):
                nulls[k].append(np.abs((oinfo_sets(rn, rr.sets)[:, 0] + offset[k]) * scale))
    allp = []
    for k, rr in rows.items():
        if not len(rr.sets):
            stats[k].pvalue = np.zeros(0)
            continue
        null = np.sort(np.concatenate(nulls[k]))
        ge = len(null) - np.searchsorted(null, np.abs(rr.oinfo), side="left")
        stats[k].pvalue = (1.0 + ge) / (1.0 + len(null))
        allp.append(stats[k].pvalue)
    q = bh_fdr(np.concatenate(allp)) if allp else np.zeros(0)
    i = 0
    for k in rows:
        n = len(stats[k].pvalue)
        stats[k].qvalue = q[i:i + n]
        i += n
