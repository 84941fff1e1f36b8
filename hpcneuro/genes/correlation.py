"""From a group's channel-gene expression to a conductance correlation matrix (item 6).

Pure functions: expression (cells x genes, log1p-normalised) -> one value per mechanism
-> the Gaussian-copula correlation between mechanisms -> the nearest positive-definite
correlation matrix -> the Spearman matrix that ``sampling.correlation`` takes.

* Genes are aggregated per mechanism in linear space: a mechanism's expression in a
  cell is ``log1p(sum_j expm1(x_j))`` over its genes (the channel's total mRNA, e.g.
  Kcnc1 + Kcnc2 + Kcnc3 + Kcnc4 for Kv3_1), using the curated list's ``mechanism``
  column unless a mapping is given.
* Correlation: normal scores of average ranks (the same copula as the O-information
  estimator), Pearson correlation of the scores.
* Nearest positive definite: Higham's alternating projections (2002, IMA J Numer Anal
  22:329) onto {eigenvalues >= eps} and {unit diagonal}. The change is reported.
* Output: the Spearman rank correlation rho_s = (6/pi) asin(r/2) of the copula
  correlation r, which is what hpcneuro's sampler converts back (r = 2 sin(pi rho_s/6)):
  the sampler's copula matrix is then exactly the positive-definite r.

Mechanisms without any expressed gene get no correlation (0 off the diagonal), logged.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from hpcneuro.errors import UserError

log = logging.getLogger("hpcneuro")


@dataclass
class MechanismCorrelation:
    mechanisms: list[str]
    spearman: np.ndarray          # (P, P) for sampling.correlation
    copula: np.ndarray            # (P, P) positive-definite Gaussian-copula correlation
    raw: np.ndarray               # (P, P) before the positive-definite projection
    genes: dict[str, list[str]]   # mechanism -> genes aggregated
    max_change: float             # max |copula - raw|
    n_cells: int
    notes: list[str] = field(default_factory=list)


def nearest_correlation(a: np.ndarray, eps: float = 1e-6, max_iter: int = 200,
                        tol: float = 1e-10) -> np.ndarray:
    """Nearest correlation matrix with eigenvalues >= eps (Higham 2002)."""
    a = (np.asarray(a, float) + np.asarray(a, float).T) / 2
    y = a.copy()
    ds = np.zeros_like(a)
    for _ in range(max_iter):
        r = y - ds
        w, v = np.linalg.eigh(r)
        x = (v * np.maximum(w, eps)) @ v.T
        ds = x - r
        y_new = x.copy()
        np.fill_diagonal(y_new, 1.0)
        if np.linalg.norm(y_new - y) <= tol * max(1.0, np.linalg.norm(y)):
            y = y_new
            break
        y = y_new
    # the unit-diagonal step may leave eigenvalues a hair below eps: final clip + rescale
    w, v = np.linalg.eigh((y + y.T) / 2)
    if w[0] < eps:
        y = (v * np.maximum(w, eps)) @ v.T
        d = np.sqrt(np.diag(y))
        y = y / np.outer(d, d)
    np.fill_diagonal(y, 1.0)
    return (y + y.T) / 2


def aggregate(expr: np.ndarray, genes: Sequence[str], mechanisms: Sequence[str],
              mapping: Mapping[str, str] | None = None,
              log_space: bool = True) -> tuple[np.ndarray, dict[str, list[str]]]:
    """(cells, P) expression per mechanism and the genes used for each."""
    if mapping is None:
        from hpcneuro.genes.channels import annotate

        mapping = {g: a.mechanism for g, a in zip(genes, annotate(genes)) if a and a.mechanism}
    expr = np.asarray(expr, float)
    out = np.zeros((expr.shape[0], len(mechanisms)))
    used: dict[str, list[str]] = {}
    for i, m in enumerate(mechanisms):
        cols = [j for j, g in enumerate(genes) if mapping.get(g) == m]
        used[m] = [genes[j] for j in cols]
        if cols:
            sub = expr[:, cols]
            out[:, i] = np.log1p(np.expm1(sub).sum(axis=1)) if log_space else sub.sum(axis=1)
    return out, used


def mechanism_correlation(expr: np.ndarray, genes: Sequence[str], mechanisms: Sequence[str],
                          mapping: Mapping[str, str] | None = None, log_space: bool = True,
                          eps: float = 1e-6) -> MechanismCorrelation:
    """The conductance correlation of ``mechanisms`` from channel-gene expression."""
    from hpcneuro.genes.analysis import copula_scores

    mechanisms = list(mechanisms)
    if len(mechanisms) < 2:
        raise UserError("a correlation needs at least 2 mechanisms")
    agg, used = aggregate(expr, list(genes), mechanisms, mapping, log_space)
    notes = []
    live = [i for i, m in enumerate(mechanisms) if used[m] and np.ptp(agg[:, i]) > 0]
    for i, m in enumerate(mechanisms):
        if i not in live:
            notes.append(f"mechanism {m}: no expressed gene maps to it; left uncorrelated")
    if len(live) < 2:
        raise UserError(f"fewer than 2 of the mechanisms {', '.join(mechanisms)} have "
                        "expressed genes: no correlation to build")
    p = len(mechanisms)
    raw = np.eye(p)
    z = copula_scores(agg[:, live], "average")
    z -= z.mean(axis=0)
    c = z.T @ z
    d = np.sqrt(np.diag(c))
    raw[np.ix_(live, live)] = c / np.outer(d, d)
    np.fill_diagonal(raw, 1.0)
    pd_ = nearest_correlation(raw, eps)
    change = float(np.max(np.abs(pd_ - raw)))
    if change > 1e-9:
        notes.append(f"nearest positive-definite correction: largest change {change:.3g}")
    for n in notes:
        log.info("%s", n)
    spear = (6.0 / np.pi) * np.arcsin(pd_ / 2.0)
    np.fill_diagonal(spear, 1.0)
    return MechanismCorrelation(mechanisms=mechanisms, spearman=spear, copula=pd_, raw=raw,
                                genes=used, max_change=change, n_cells=int(agg.shape[0]),
                                notes=notes)


def correlation_from_genes(path: str, group: str | None,
                           mechanisms: Sequence[str]) -> MechanismCorrelation:
    """The same from a GENES.h5 and one of its groups (``None``: all cells)."""
    from hpcneuro.genes.result import read_channel_expression

    data = read_channel_expression(path)
    if group in (None, "", "all cells"):
        expr = data["expression"]
    else:
        mask = np.array([g == group for g in data["groups"]])
        if not mask.any():
            raise UserError(f"no group {group!r} in {path}; groups: "
                            + ", ".join(sorted(set(data["groups"]))))
        expr = data["expression"][mask]
    mapping = {s: m for s, m in zip(data["symbol"], data["mechanism"]) if m}
    return mechanism_correlation(expr, data["symbol"], mechanisms, mapping,
                                 log_space=data["normalize"] == "cpm-log1p")


#: the sampled variable that a channel gene's expression stands for
CONDUCTANCE_VARIABLE = "gbar"
#: digits kept of the gene-derived Spearman matrix: far below its sampling error, and
#: every rank (and a resume) that computes it gets the same numbers
MATRIX_DIGITS = 10


def sampling_correlation(spec: dict, parameters: list[dict], base_dir) -> dict:
    """``sampling.correlation_from: {genes, group}`` -> the campaign's Spearman matrix.

    Returns ``{"genes": absolute path, "group", "matrix": P x P list, "notes": [...]}``.
    A parameter stands for its mechanism's channel genes when its variable is ``gbar``
    and GENES.h5 maps at least one expressed gene of the group to that mechanism; every
    other parameter gets correlation 0 with the rest (noted). Raises ConfigError with
    the key path ``sampling.correlation_from[.genes|.group]``.
    """
    from pathlib import Path

    from hpcneuro.errors import ConfigError
    from hpcneuro.genes.result import is_genes_file, read_channel_expression

    key = "sampling.correlation_from"
    written = spec["genes"]
    path = Path(written).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f"{key}.genes", f"file not found: {path} (relative paths are "
                          f"read from the config's folder {Path(base_dir).resolve()})")
    if not is_genes_file(path):
        raise ConfigError(f"{key}.genes", f"{path} is not a GENES.h5 (write one with "
                          "'hpcneuro genes COUNTS -o GENES.h5 --group-by COLUMN')")
    try:
        data = read_channel_expression(path)
    except UserError as exc:
        raise ConfigError(f"{key}.genes", str(exc)) from None
    group = spec["group"]
    sizes: dict[str, int] = {}
    for g in data["groups"]:
        sizes[g] = sizes.get(g, 0) + 1
    pooled = ("all cells", "")
    if group not in pooled and group not in sizes:
        have = ", ".join(f"{g!r} ({n} cells)" for g, n in sorted(sizes.items()) if g)
        raise ConfigError(f"{key}.group", f"unknown group {group!r} in {path}; its groups: "
                          f"{have or 'none (written without --group-by)'}, or 'all cells'")
    mask = np.ones(len(data["groups"]), bool) if group in pooled else \
        np.array([g == group for g in data["groups"]])
    expr = data["expression"][mask]
    mapping = {s: m for s, m in zip(data["symbol"], data["mechanism"]) if m}
    with_genes = sorted(set(mapping.values()))

    notes: list[str] = []
    mapped: list[int] = []      # parameter indices that stand for a mechanism
    owner: dict[str, int] = {}
    for i, p in enumerate(parameters):
        mech, var = p["mechanism"], p["variable"]
        if var != CONDUCTANCE_VARIABLE:
            notes.append(f"parameters[{i}] {p['name']}: not a conductance ({mech}.{var}); "
                         "correlation 0 with the others")
        elif mech not in with_genes:
            notes.append(f"parameters[{i}] {p['name']}: no channel gene in {path.name} maps "
                         f"to {mech} (genes map to {', '.join(with_genes) or 'nothing'}); "
                         "correlation 0 with the others")
        elif mech in owner:
            j = owner[mech]
            raise ConfigError(key, f"parameters[{j}] and parameters[{i}] are both {mech} "
                              f"gbar: the genes give one expression per mechanism, so their "
                              "correlation would be 1; sample one of them, or use "
                              "sampling.correlation")
        else:
            owner[mech] = i
            mapped.append(i)
    if len(mapped) < 2:
        raise ConfigError(key, f"{len(mapped)} parameter(s) map to a mechanism with "
                          f"channel genes in {path.name} ({', '.join(with_genes) or 'none'}): "
                          "a correlation needs at least 2 gbar parameters of them")
    mechs = [parameters[i]["mechanism"] for i in mapped]
    if expr.shape[0] <= len(mechs):
        raise ConfigError(f"{key}.group", f"group {group!r} has {expr.shape[0]} cells for "
                          f"{len(mechs)} mechanisms: a correlation needs more cells than "
                          "mechanisms")
    try:
        mc = mechanism_correlation(expr, data["symbol"], mechs, mapping,
                                   log_space=data["normalize"] == "cpm-log1p")
    except UserError as exc:
        raise ConfigError(key, f"{exc} in group {group!r} of {path.name}") from None
    notes += mc.notes
    P = len(parameters)
    spear = np.eye(P)
    spear[np.ix_(mapped, mapped)] = np.round(mc.spearman, MATRIX_DIGITS)
    np.fill_diagonal(spear, 1.0)
    names = [p["name"] for p in parameters]
    head = (f"{key}: Spearman correlation of {', '.join(names[i] for i in mapped)} from "
            f"{mc.n_cells} cells of group {group!r} in {path} (genes: "
            + "; ".join(f"{m} = {'+'.join(mc.genes[m]) or 'none'}" for m in mechs) + ")")
    width = max(len(n) for n in names)
    rows = [f"  {names[a]:<{width}} " + " ".join(f"{spear[a, b]:+.3f}" for b in mapped)
            for a in mapped]
    log.info("%s\n%s", head, "\n".join(rows))
    for n in notes[:len(notes) - len(mc.notes)]:  # mechanism_correlation logged its own
        log.info("%s: %s", key, n)
    return {"genes": str(path), "group": group, "matrix": spear.tolist(), "notes": notes}
