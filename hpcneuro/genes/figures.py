"""Report figures for a GENES.h5, and an HTML page (``build_genes_report``).

1. ``genes_heatmap.png``: z-scored channel-gene expression, cells sorted by group,
   genes by family.
2. ``genes_pca.png``: the first two principal components of the standardised channel
   expression, coloured by group.
3. ``genes_oinfo.png``: per group, mean O per order with its bootstrap interval and the
   shuffled-genes null band.
4. ``genes_subset.png``: balanced accuracy vs k (forward selection, random k-subsets,
   top-k variable, all genes, 90% line) and the variance the subset explains.
Every file is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from hpcneuro.outputs import write_text
from hpcneuro.report import pyplot, save_figure


def _group_colors(groups: list[str]) -> dict[str, tuple]:
    plt = pyplot()
    uniq = sorted(set(groups))
    cmap = plt.get_cmap("tab10")
    return {g: cmap(i % 10) for i, g in enumerate(uniq)}


def plot_heatmap(res, path: Path) -> None:
    plt = pyplot()
    x = np.asarray(res.expression, float)
    sd = x.std(0)
    z = (x - x.mean(0)) / np.where(sd > 0, sd, 1)
    groups = list(res.cell_groups)
    rows = sorted(range(len(groups)), key=lambda i: (groups[i], i))
    fam = [str(f) for f in res.channels["family"]]
    sym = [str(s) for s in res.channels["symbol"]]
    cols = sorted(range(len(sym)), key=lambda j: (fam[j], sym[j]))
    fig, ax = plt.subplots(figsize=(max(6, 0.12 * len(cols) + 2), 5))
    im = ax.imshow(z[np.ix_(rows, cols)], aspect="auto", cmap="RdBu_r", vmin=-3, vmax=3,
                   interpolation="nearest")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([sym[j] for j in cols], rotation=90, fontsize=5)
    sg = [groups[i] for i in rows]
    bounds = [i for i in range(1, len(sg)) if sg[i] != sg[i - 1]]
    for b in bounds:
        ax.axhline(b - 0.5, color="k", lw=0.8)
    starts = [0] + bounds
    ends = bounds + [len(sg)]
    ax.set_yticks([(s + e) / 2 for s, e in zip(starts, ends)])
    ax.set_yticklabels([f"{sg[s]} ({e - s})" for s, e in zip(starts, ends)], fontsize=7)
    fig.colorbar(im, ax=ax, label="z-scored log1p CPM")
    ax.set_title("channel-gene expression by group (genes sorted by family)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def pca(x: np.ndarray, n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(scores (cells, n), explained variance ratio (n,)) of standardised columns."""
    sd = x.std(0)
    z = (x - x.mean(0)) / np.where(sd > 0, sd, 1)
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    return u[:, :n] * s[:n], (s ** 2 / (s ** 2).sum())[:n]


def plot_pca(res, path: Path) -> None:
    plt = pyplot()
    sc, ev = pca(np.asarray(res.expression, float))
    groups = list(res.cell_groups)
    colors = _group_colors(groups)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for g in sorted(set(groups)):
        m = np.array([v == g for v in groups])
        ax.scatter(sc[m, 0], sc[m, 1], s=12, color=colors[g], label=f"{g or 'cells'} ({m.sum()})")
    ax.set_xlabel(f"PC1 ({100 * ev[0]:.1f}%)")
    ax.set_ylabel(f"PC2 ({100 * ev[1]:.1f}%)")
    ax.legend(fontsize=7)
    ax.set_title("PCA of channel-gene expression", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def plot_oinfo(res, path: Path) -> None:
    plt = pyplot()
    st = res.stats
    names = list(dict.fromkeys(str(g) for g in st["group"]))
    fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names), 3.4), squeeze=False,
                             sharey=True)
    units = res.attrs.get("units", "nats")
    for ax, g in zip(axes[0], names):
        m = np.array([str(v) == g for v in st["group"]])
        k = st["order"][m]
        ax.fill_between(k, st["null_low"][m], st["null_high"][m], color="0.8",
                        label="shuffled genes (95%)")
        ax.plot(k, st["null_mean"][m], color="0.5", lw=1)
        # percentile intervals need not contain the estimate (small-sample bias shifts
        # the bootstrap distribution), so they are drawn as lines, not as error bars
        ax.plot(k, st["mean"][m], "o-", color="tab:blue", label="mean O (95% bootstrap)")
        ok = np.isfinite(st["ci_low"][m]) & np.isfinite(st["ci_high"][m])
        ax.vlines(k[ok], st["ci_low"][m][ok], st["ci_high"][m][ok], color="tab:blue", lw=2)
        ax.axhline(0, color="k", lw=0.7)
        ax.set_xticks(k)
        ax.set_xlabel("order")
        ax.set_title(f"{g} ({int(st['n_cells'][m][0])} cells)", fontsize=9)
    axes[0][0].set_ylabel(f"mean O-information ({units}); > 0 redundancy")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def plot_subset(res, path: Path) -> None:
    plt = pyplot()
    s = res.subset
    k = np.arange(1, len(s["selected"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    r = np.asarray(s["random"])
    ax.fill_between(k, np.percentile(r, 5, axis=1), np.percentile(r, 95, axis=1), color="0.85",
                    label="random k genes (5-95%)")
    ax.plot(k, np.median(r, axis=1), color="0.5", lw=1, label="random, median")
    ax.errorbar(k, s["forward_mean"], yerr=s["forward_std"], fmt="o-", capsize=2,
                label="forward selection")
    ax.plot(k, s["topvar"], "s--", ms=4, label="top-k variable")
    ax.axhline(s["all_mean"], color="k", lw=1, label=f"all {len(s['genes'])} genes")
    ax.axhline(0.9 * s["all_mean"], color="k", lw=0.8, ls=":", label="90% of all genes")
    ax.axhline(s["chance"], color="r", lw=0.8, ls=":", label="chance")
    if s["k90"]:
        ax.axvline(s["k90"], color="tab:green", lw=0.8)
    ax.set_xlabel("k genes")
    ax.set_ylabel(f"balanced accuracy ({s['cv']}-fold CV)")
    ax.set_xticks(k)
    ax.set_xticklabels([f"{i}\n{g}" for i, g in zip(k, s["selected"])], fontsize=6)
    ax.legend(fontsize=6)
    ax = axes[1]
    ax.plot(k, s["r2"], "o-", label="forward-selected genes")
    ax.plot(k, s["random_r2"], "o-", color="0.5", label="random genes (median)")
    ax.set_xlabel("k genes")
    ax.set_ylabel("R^2 of all channel genes on the subset")
    ax.set_xticks(k)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def _table(headers, rows) -> str:
    h = "".join(f"<th>{html.escape(str(x))}</th>" for x in headers)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>"
                for r in rows)
    return f"<table><tr>{h}</tr>{b}</table>"


def genes_html_fragment(res, images: list[str]) -> str:
    st = res.stats
    rows = [(g, int(n), int(k), f"{m:.4g}", f"[{lo:.4g}, {hi:.4g}]", f"{100 * fr:.1f}%",
             f"{nm:.4g}", f"[{nl:.4g}, {nh:.4g}]")
            for g, n, k, m, lo, hi, fr, nm, nl, nh in zip(
                st["group"], st["n_cells"], st["order"], st["mean"], st["ci_low"],
                st["ci_high"], st["frac_redundant"], st["null_mean"], st["null_low"],
                st["null_high"])]
    parts = [f"<h2>Gene expression: {len(res.genes)} channel genes</h2>",
             f"<p>{html.escape(str(res.attrs.get('gene_source', '')))}; normalisation "
             f"{html.escape(str(res.attrs.get('normalize')))}; estimator "
             f"{html.escape(str(res.attrs.get('estimator')))} (ties "
             f"{html.escape(str(res.attrs.get('ties')))}), {res.attrs.get('units')}.</p>",
             _table(["cells", "n", "order", "mean O", "95% bootstrap", "redundant",
                     "null mean", "null 95%"], rows)]
    if res.subset is not None:
        s = res.subset
        parts.append(f"<h3>Gene subset</h3><p>all {len(s['genes'])} channel genes: balanced "
                     f"accuracy {s['all_mean']:.3f}; chance {s['chance']:.3f}; smallest k "
                     f"reaching 90%: {s['k90'] or 'not reached'}</p>")
        parts.append(_table(["k", "gene", "forward", "random median", "top-var", "R^2"],
                            [(i + 1, g, f"{s['forward_mean'][i]:.3f}",
                              f"{np.median(s['random'][i]):.3f}", f"{s['topvar'][i]:.3f}",
                              f"{s['r2'][i]:.3f}") for i, g in enumerate(s["selected"])]))
    if res.notes:
        parts.append("<h3>Notes</h3><ul>" + "".join(f"<li>{html.escape(n)}</li>"
                                                    for n in res.notes) + "</ul>")
    parts += [f'<img src="{html.escape(i)}" alt="{html.escape(i)}">' for i in images]
    return "\n".join(parts)


def genes_figures(path: str | Path, out: Path) -> str:
    """Write the figures of GENES.h5 ``path`` into the folder ``out``; return the HTML
    fragment (tables, notes, <img> of each figure) that shows them from ``out``."""
    from hpcneuro.genes.result import GenesResult

    res = GenesResult.read(path)
    images = []
    for name, fn, ok in (("genes_heatmap.png", plot_heatmap, True),
                         ("genes_pca.png", plot_pca, res.expression.shape[1] >= 2),
                         ("genes_oinfo.png", plot_oinfo, len(res.stats.get("order", [])) > 0),
                         ("genes_subset.png", plot_subset, res.subset is not None)):
        if ok:
            fn(res, out / name)
            images.append(name)
    return genes_html_fragment(res, images)


def build_genes_report(path: str | Path, outdir: str | Path) -> Path:
    """Figures for GENES.h5 ``path`` in ``outdir`` and ``outdir/index.html``."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    frag = genes_figures(path, out)
    write_text(out / "genes.html", frag)
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>hpcneuro genes</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
            "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
            "padding:2px 6px}img{max-width:100%;display:block;margin:12px 0}</style></head>"
            f"<body><h1>hpcneuro genes: {html.escape(str(path))}</h1>{frag}</body></html>")
    write_text(out / "index.html", page)
    return out / "index.html"
