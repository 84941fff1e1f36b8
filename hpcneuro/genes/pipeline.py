"""``hpcneuro genes`` end to end: read, filter, normalise, analyse, write GENES.h5."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hpcneuro.errors import UserError

log = logging.getLogger("hpcneuro")


@dataclass
class GenesOptions:
    counts: str
    output: str
    metadata: str | None = None
    cell_id: str | None = None
    group_by: str | None = None
    groups: Sequence[str] | None = None
    exclude_labels: Sequence[str] = ()
    genes: str = "ion-channels"
    include_auxiliary: bool = False
    orientation: str = "auto"
    layer: str | None = None
    min_detection: float = 0.1
    min_genes: int = 0
    top_variable: int | None = 20
    normalize: str = "cpm-log1p"
    min_group_size: int = 20
    ties: str = "average"
    bootstrap: int = 100
    shuffles: int = 100
    subset: bool = True
    subset_max_k: int = 10
    subset_random: int = 20
    cv: int = 5
    report: str | None = None
    overwrite: bool = False
    seed: int = 0
    oinfo: dict = field(default_factory=dict)   # passed on to compute_oinfo
    command: str = ""


def _labels(data, column: str | None) -> list[str] | None:
    if column is None:
        return None
    if column not in data.obs.columns:
        cols = ", ".join(map(str, data.obs.columns)) or "none (no metadata given?)"
        raise UserError(f"--group-by {column!r} is not a metadata column; columns: {cols}")
    return [str(v) for v in data.obs[column]]


def _exclude(data, labels, column, exclude, notes) -> np.ndarray:
    keep = np.ones(len(data.cells), bool)
    for lab in exclude:
        if column is not None:
            cols = [column]
        else:
            cols = [c for c in data.obs.columns if (data.obs[c].astype(str) == lab).any()]
            if not cols:
                raise UserError(f"--exclude-label {lab!r}: no metadata column has this label")
        hit = np.zeros(len(keep), bool)
        for c in cols:
            hit |= (data.obs[c].astype(str) == lab).to_numpy()
        if not hit.any():
            have = sorted(set(data.obs[cols[0]].astype(str)))
            raise UserError(f"--exclude-label {lab!r}: no cell has this label in {cols[0]!r}; "
                            f"labels: {', '.join(have[:30])}")
        notes.append(f"excluded {int(hit.sum())} cells labelled {lab!r} ({', '.join(cols)})")
        keep &= ~hit
    return keep


def prepare(opt: GenesOptions):
    """Inputs -> (normalised channel expression, raw, labels, gene lists, notes)."""
    from hpcneuro.genes import channels as ch
    from hpcneuro.genes.inputs import read_expression
    from hpcneuro.genes.normalize import gene_filter, normalize

    data = read_expression(opt.counts, opt.metadata, opt.cell_id, opt.orientation, opt.layer)
    notes = list(data.notes)
    labels = _labels(data, opt.group_by)
    keep = _exclude(data, labels, opt.group_by, opt.exclude_labels, notes)
    if opt.min_genes:
        ngen = (data.X > 0).sum(axis=1)
        low = keep & (ngen < opt.min_genes)
        if low.any():
            notes.append(f"excluded {int(low.sum())} cells with fewer than {opt.min_genes} "
                         "detected genes")
        keep &= ngen >= opt.min_genes
    if not keep.any():
        raise UserError("no cells left after the cell filters")
    X = data.X[keep]
    cells = [c for c, k in zip(data.cells, keep) if k]
    labels = [l for l, k in zip(labels, keep) if k] if labels is not None else None
    genes, source = ch.resolve_genes(opt.genes, data.genes, opt.include_auxiliary)
    gi = {g: j for j, g in enumerate(data.genes)}
    cols = [gi[g] for g in genes]
    Xn_all = normalize(X, opt.normalize)
    Xn, Xr = Xn_all[:, cols], X[:, cols]
    kept, info = gene_filter(Xn, Xr if opt.normalize != "none" else Xn, genes,
                             opt.min_detection, None)
    dropped = [genes[j] for j in range(len(genes)) if j not in set(kept)]
    if dropped and opt.genes not in ("ion-channels",):
        notes.append(f"genes below --min-detection {opt.min_detection} (or constant) left "
                     f"out: {', '.join(dropped)}")
    notes.append(f"genes: {source}: {len(genes)} in the table, {len(kept)} detected in >= "
                 f"{opt.min_detection:g} of {len(cells)} cells")
    if len(kept) < 3:
        raise UserError(f"only {len(kept)} genes pass --min-detection {opt.min_detection}: "
                        "O-information needs at least 3 (lower --min-detection)")
    chan_genes = [genes[j] for j in kept]
    chan_x = Xn[:, kept]
    var = chan_x.var(axis=0)
    if opt.top_variable and len(chan_genes) > opt.top_variable:
        order = sorted(range(len(chan_genes)), key=lambda j: (-var[j], chan_genes[j]))
        sel = sorted(order[:opt.top_variable])
    else:
        sel = list(range(len(chan_genes)))
    target = opt.oinfo.get("target")
    if target is not None:
        if target not in chan_genes:
            raise UserError(f"--target {target!r} is not among the kept genes (it must be "
                            f"in --genes and detected in >= {opt.min_detection:g} of cells)")
        t = chan_genes.index(target)
        if t not in sel:  # the target replaces the least variable of the selection
            sel = sorted(sorted(sel, key=lambda j: (-var[j], chan_genes[j]))[:-1] + [t])
            notes.append(f"--target {target} added to the {len(sel) - 1} most variable genes")
    ann = ch.annotate(chan_genes)
    channels = {"symbol": np.array(chan_genes, dtype=object)}
    for f in ("family", "subfamily", "role", "mechanism"):
        channels[f] = np.array([getattr(a, f) if a else "" for a in ann], dtype=object)
    channels["detection"] = info["detection"][kept]
    channels["variance"] = var
    return dict(cells=cells, labels=labels, chan_genes=chan_genes, chan_x=chan_x, sel=sel,
                channels=channels, notes=notes, source=source)


def run_genes(opt: GenesOptions):
    """The whole analysis; returns the GenesResult (already written to opt.output)."""
    from hpcneuro.genes.analysis import POOLED, group_oinfo, plan_groups
    from hpcneuro.genes.result import GenesResult, is_genes_file
    from hpcneuro.outputs import check_output

    t0 = time.perf_counter()
    inputs = [opt.counts] + ([opt.metadata] if opt.metadata else [])
    check_output(opt.output, inputs=inputs, is_own_kind=is_genes_file, kind="GENES.h5",
                 overwrite=opt.overwrite)
    if opt.report:
        rep = Path(opt.report)
        if rep.exists() and not rep.is_dir():
            raise UserError(f"--report {rep}: exists and is not a folder")
        if not (rep if rep.exists() else rep.parent if str(rep.parent) else Path(".")).exists():
            raise UserError(f"--report {rep}: its parent folder does not exist")
    for name, v, lo in (("--bootstrap", opt.bootstrap, 0), ("--shuffles", opt.shuffles, 0),
                        ("--min-group-size", opt.min_group_size, 1), ("--cv", opt.cv, 2)):
        if v < lo:
            raise UserError(f"{name} must be >= {lo}, got {v}")
    p = prepare(opt)
    notes = p["notes"]
    genes = [p["chan_genes"][j] for j in p["sel"]]
    x = p["chan_x"][:, p["sel"]]
    labels = p["labels"]
    n_cells = x.shape[0]
    if n_cells <= len(genes):
        raise UserError(f"{n_cells} cells for {len(genes)} genes: O-information needs more "
                        "cells than genes (select fewer with --top-variable)")
    groups, skipped = plan_groups(labels, len(genes), opt.min_group_size, opt.groups)
    notes += skipped
    for s in skipped:
        log.info("%s", s)
    kw = dict(opt.oinfo)
    results = []
    sets = [(POOLED, np.ones(n_cells, bool))]
    sets += [(g, np.array([l == g for l in labels])) for g in groups]
    for i, (name, mask) in enumerate(sets):
        tg = time.perf_counter()
        r = group_oinfo(x[mask], genes, name, ties=opt.ties, bootstrap=opt.bootstrap,
                        shuffles=opt.shuffles, seed=opt.seed + i, oinfo_kwargs=kw)
        if r.left_out:
            notes.append(f"{name}: genes left out ({len(r.left_out)}): {', '.join(r.left_out)}")
        log.info("%s: %d cells, %d genes, %.1f s", name, r.n_cells, len(r.genes),
                 time.perf_counter() - tg)
        results.append(r)
    subset = None
    if opt.subset and labels is not None:
        from hpcneuro.genes.subset import select_subset

        lab = np.array(labels)
        if len(set(labels)) >= 2:
            ts = time.perf_counter()
            subset = select_subset(p["chan_x"], lab, p["chan_genes"], opt.subset_max_k,
                                   opt.subset_random, opt.cv, opt.seed)
            log.info("gene subset: %.1f s", time.perf_counter() - ts)
        else:
            notes.append("gene subset skipped: one group only")
    import hpcneuro

    first = results[0].oinfo.attrs
    attrs = dict(counts=str(opt.counts), metadata=opt.metadata, cell_id=opt.cell_id,
                 group_by=opt.group_by, normalize=opt.normalize, gene_source=p["source"],
                 include_auxiliary=bool(opt.include_auxiliary),
                 min_detection=float(opt.min_detection),
                 top_variable=int(opt.top_variable or 0), ties=opt.ties,
                 estimator=first.get("estimator"), bias_correct=bool(first.get("bias_correct")),
                 units=first.get("units"), min_order=first.get("min_order"),
                 max_order=first.get("max_order"), bootstrap=int(opt.bootstrap),
                 shuffles=int(opt.shuffles), ci_level=0.95, seed=int(opt.seed),
                 min_group_size=int(opt.min_group_size),
                 hpcneuro_version=hpcneuro.__version__, command=opt.command,
                 seconds=time.perf_counter() - t0)
    from hpcneuro.oinfo.result import provenance

    prov = provenance(source=str(opt.counts), command=opt.command or None)
    for g in results:  # every group's OINFO layout records where it came from
        g.oinfo.provenance = dict(prov, selection=f"cells: {g.name}",
                                  columns=list(g.oinfo.variables), rows_used=int(g.n_cells))
    res = GenesResult(attrs=attrs, notes=notes, genes=genes, channels=p["channels"],
                      cell_ids=p["cells"], cell_groups=labels or [""] * n_cells,
                      expression=p["chan_x"], groups=results, subset=subset)
    res.write(opt.output)
    if opt.report:
        from hpcneuro.genes.figures import build_genes_report

        build_genes_report(opt.output, opt.report)
    return res


def summary_text(res) -> str:
    """Per-order table of every analysed set of cells (values in the result's units)."""
    u = res.attrs.get("units", "nats")
    lines = [f"O-information of {len(res.genes)} genes ({res.attrs.get('estimator')}, ties "
             f"{res.attrs.get('ties')}, {u}{', bias-corrected' if res.attrs.get('bias_correct') else ''}"
             f"); mean O per order with {int(100 * res.attrs.get('ci_level', .95))}% bootstrap "
             f"interval ({res.attrs.get('bootstrap')} resamples) and the shuffled-genes null "
             f"({res.attrs.get('shuffles')} shuffles)",
             f"{'cells':<16} {'n':>4} {'order':>5} {'mean O':>9} {'interval':>21} "
             f"{'redundant':>9} {'null mean':>9} {'null range':>21} {'null red.':>9}"]
    for g in res.groups:
        for k, s in sorted(g.stats.items()):
            lines.append(f"{g.name[:16]:<16} {g.n_cells:>4} {k:>5} {s.mean:>9.4f} "
                         f"[{s.ci_low:>9.4f},{s.ci_high:>9.4f}] {100 * s.frac_redundant:>8.1f}% "
                         f"{s.null_mean:>9.4f} [{s.null_low:>9.4f},{s.null_high:>9.4f}] "
                         f"{100 * s.null_frac_redundant:>8.1f}%")
    return "\n".join(lines)
