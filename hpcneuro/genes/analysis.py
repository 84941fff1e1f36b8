"""O-information of channel-gene expression, pooled and per group, with intervals.

For each set of cells (all cells pooled, then each group of ``--group-by``):

* the point estimate is :func:`hpcneuro.oinfo.compute_oinfo` (the same engine, orders,
  estimator, bias correction, units, top-K, permutations, gradient);
* the **bootstrap interval** of each order's mean O resamples cells with replacement
  (B times) and re-runs the engine on the resampled copula scores (as the engine's own
  ``bootstrap`` does); a resample in which a gene is constant (all its detected cells
  missed) has no defined correlation and is redrawn; the number redrawn is stored. It is
  a percentile interval: with few cells the plug-in estimator's small-sample bias also
  shifts the bootstrap distribution, so the estimate can sit near or outside an end;
* the **shuffled-genes null** permutes every gene's values independently across cells
  (S times): the marginals, zeros and ties included, stay; every dependence between
  genes goes. Its per-order means give the null's centre and 95% range.

So "redundancy-dominated" is a statement with an interval: the mean O of an order and
its interval lie above the null's range.

Ties (zero inflation). Most channel genes are 0 in many cells; the copula ranks give all
tied values their **average rank** (``ties="average"``, the default), so every zero maps
to one normal score. Why: a zero is one observation ("not detected"), not many distinct
small values; breaking ties at random (``ties="random"``) would inject independent noise
into exactly the cells that carry no information and pull every correlation involving a
zero-inflated gene towards 0, i.e. it would bias O towards 0 (tests/test_genes.py shows
both the attenuation under random ties and that average ranks keep the shuffled null at
~0). Average ranks keep co-detection (two genes both off in the same cells) as shared
information, which it is.

Genes detected in fewer than :data:`MIN_GROUP_DETECTED` cells of a group are left out of
that group's analysis (noted): their copula score is a near-constant column, and
bootstrap resamples would miss their few detected cells.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from hpcneuro.errors import UserError

log = logging.getLogger("hpcneuro")

MIN_GROUP_DETECTED = 5
POOLED = "all cells"
TIES = ("average", "random")
MAX_REDRAWS = 50


def copula_scores(x: np.ndarray, ties: str = "average",
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """Gaussian-copula scores Phi^-1(rank / (T + 1)) of each column.

    ties="average": tied values share their average rank (one score for all zeros);
    ties="random": ties broken in a random order (``rng``).
    """
    from scipy.special import ndtri
    from scipy.stats import rankdata

    x = np.asarray(x, dtype=np.float64)
    t = x.shape[0]
    if ties == "average":
        ranks = rankdata(x, method="average", axis=0)
    elif ties == "random":
        rng = rng or np.random.default_rng(0)
        ranks = np.empty_like(x)
        for j in range(x.shape[1]):
            order = np.lexsort((rng.random(t), x[:, j]))
            ranks[order, j] = np.arange(1, t + 1)
    else:
        raise UserError(f"ties {ties!r}: use one of {', '.join(TIES)}")
    return ndtri(ranks / (t + 1.0))


@dataclass
class OrderStats:
    """Per-order summary of one set of cells (values in the result's units)."""

    order: int
    n_multiplets: int
    mean: float
    ci_low: float
    ci_high: float
    frac_redundant: float
    null_mean: float
    null_low: float
    null_high: float
    null_frac_redundant: float


@dataclass
class GroupResult:
    name: str
    n_cells: int
    genes: list[str]          # variables actually analysed (after per-group drops)
    oinfo: Any                # hpcneuro.oinfo OInfoResult
    stats: dict[int, OrderStats]
    left_out: list[str] = field(default_factory=list)
    n_redrawn: int = 0


def _means(res) -> dict[int, float]:
    return {k: float(r.mean) for k, r in res.orders.items()}


def _percentiles(values: Sequence[float], level: float) -> tuple[float, float]:
    if len(values) == 0:
        return (float("nan"), float("nan"))
    a = 100 * (1 - level) / 2
    return float(np.percentile(values, a)), float(np.percentile(values, 100 - a))


def group_oinfo(x: np.ndarray, genes: Sequence[str], name: str, *, ties: str = "average",
                bootstrap: int = 0, shuffles: int = 0, seed: int = 0, ci: float = 0.95,
                min_detected: int = MIN_GROUP_DETECTED, oinfo_kwargs: dict | None = None,
                ) -> GroupResult:
    """O-information of one set of cells x (T, N) with intervals and the null.

    oinfo_kwargs: passed to compute_oinfo (min_order, max_order, target, estimator,
    bias_correct, units, permutations, gradient, top, scheduler, n_workers, ...);
    ``bootstrap`` here is the per-order-mean interval described in the module doc.
    """
    from hpcneuro.oinfo import compute_oinfo

    kw = dict(oinfo_kwargs or {})
    kw.pop("bootstrap", None)
    kw.pop("nan_policy", None)
    kw.pop("seed", None)
    estimator = kw.pop("estimator", "gc")
    target = kw.get("target")
    genes = list(genes)
    x = np.asarray(x, dtype=np.float64)
    det = (x > x.min(axis=0)).sum(axis=0) if len(x) else np.zeros(len(genes))
    keep = [j for j in range(len(genes)) if det[j] >= min_detected]
    left_out = [genes[j] for j in range(len(genes)) if det[j] < min_detected]
    if target is not None and target in left_out:
        raise UserError(f"--target {target} is detected in fewer than {min_detected} cells "
                        f"of {name}")
    if left_out:
        log.info("%s: %d genes detected in fewer than %d cells left out: %s", name,
                 len(left_out), min_detected, ", ".join(left_out))
    x = x[:, keep]
    names = [genes[j] for j in keep]
    rng = np.random.default_rng(seed)
    z = copula_scores(x, ties, rng) if estimator == "gc" else x
    res = compute_oinfo(z, names, estimator="gauss", seed=seed, **kw)
    res.attrs["estimator"] = estimator
    res.attrs["ties"] = ties if estimator == "gc" else "n/a"
    res.attrs["group"] = name
    res.attrs["bootstrap"] = int(bootstrap)
    res.attrs["shuffles"] = int(shuffles)
    used = [names.index(v) for v in res.variables]
    zk = np.ascontiguousarray(z[:, used])
    t = zk.shape[0]
    light = dict(kw, top=0, store_all_max=0, permutations=0, gradient=False,
                 progress=False)
    light["min_order"] = min(res.orders)
    light["max_order"] = max(res.orders)

    boot: dict[int, list[float]] = {k: [] for k in res.orders}
    redrawn = 0
    for _ in range(int(bootstrap)):
        for _try in range(MAX_REDRAWS):
            rows = rng.integers(0, t, t)
            zb = zk[rows]
            if np.all(zb.max(axis=0) > zb.min(axis=0)):
                try:
                    rb = compute_oinfo(zb, res.variables, estimator="gauss", **light)
                except UserError:
                    rb = None
                if rb is not None and len(rb.variables) == len(res.variables):
                    break
            redrawn += 1
        else:
            raise UserError(f"{name}: no usable bootstrap resample in {MAX_REDRAWS} draws "
                            "(too few cells for these genes): raise --min-detection")
        for k, m in _means(rb).items():
            boot[k].append(m)

    null: dict[int, list[float]] = {k: [] for k in res.orders}
    null_red: dict[int, list[float]] = {k: [] for k in res.orders}
    for _ in range(int(shuffles)):
        zs = np.empty_like(zk)
        for j in range(zk.shape[1]):
            zs[:, j] = zk[rng.permutation(t), j]
        rs = compute_oinfo(zs, res.variables, estimator="gauss", **light)
        for k, r in rs.orders.items():
            null[k].append(float(r.mean))
            null_red[k].append(r.n_redundant / r.n_multiplets)

    stats = {}
    for k, r in res.orders.items():
        lo, hi = _percentiles(boot[k], ci)
        if bootstrap:
            r.stats.mean_ci = (lo, hi)  # also in the group's OINFO summary
        nlo, nhi = _percentiles(null[k], ci)
        stats[k] = OrderStats(order=k, n_multiplets=int(r.n_multiplets), mean=float(r.mean),
                              ci_low=lo, ci_high=hi,
                              frac_redundant=r.n_redundant / r.n_multiplets,
                              null_mean=float(np.mean(null[k])) if null[k] else float("nan"),
                              null_low=nlo, null_high=nhi,
                              null_frac_redundant=(float(np.mean(null_red[k]))
                                                   if null_red[k] else float("nan")))
    res.attrs["bootstrap_redrawn"] = int(redrawn)
    return GroupResult(name=name, n_cells=int(t), genes=list(res.variables), oinfo=res,
                       stats=stats, left_out=left_out + list(res.dropped), n_redrawn=redrawn)


def plan_groups(labels: Sequence[str] | None, n_genes: int, min_group_size: int,
                requested: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """(groups to analyse, notes on skipped ones). Explicitly requested groups that are
    missing or too small are errors; others too small are skipped with a note."""
    if labels is None:
        if requested:
            raise UserError("--groups needs --group-by COLUMN")
        return [], []
    labels = [str(v) for v in labels]
    counts: dict[str, int] = {}
    for v in labels:
        counts[v] = counts.get(v, 0) + 1
    need = max(int(min_group_size), n_genes + 1)
    if requested:
        out = []
        for g in requested:
            if g not in counts:
                raise UserError(f"--groups: no group {g!r}; groups: "
                                + ", ".join(f"{k} ({v})" for k, v in sorted(counts.items())))
            if counts[g] <= n_genes:
                raise UserError(f"group {g!r} has {counts[g]} cells for {n_genes} genes: "
                                "O-information needs more cells than genes (select fewer "
                                "genes with --top-variable, or leave the group out)")
            if counts[g] < min_group_size:
                raise UserError(f"group {g!r} has {counts[g]} cells, below --min-group-size "
                                f"{min_group_size}")
            out.append(g)
        return out, []
    out, notes = [], []
    for g in sorted(counts, key=lambda k: (-counts[k], k)):
        if counts[g] >= need:
            out.append(g)
        else:
            why = ("fewer cells than genes + 1" if counts[g] <= n_genes
                   else f"below --min-group-size {min_group_size}")
            notes.append(f"group {g!r} skipped: {counts[g]} cells ({why}; needs {need})")
    return out, notes
