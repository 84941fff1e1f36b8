"""Report of a run folder: figures (PNG) and one HTML page.

Reads ``RUNDIR/results.h5`` and, if present, ``RUNDIR/oinfo.h5``; writes
``RUNDIR/report/index.html`` with the figures next to it.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hpcneuro.errors import UserError
from hpcneuro.outputs import atomic_path, write_text
from hpcneuro.store import DONE, ResultsStore, status_counts

if TYPE_CHECKING:  # the O-information package (numba) is imported only for an OINFO.h5
    from hpcneuro.oinfo.result import OInfoResult

log = logging.getLogger("hpcneuro.report")


def pyplot():
    """matplotlib's pyplot on the headless Agg backend (batch jobs have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = 90) -> None:
    """Save a figure as PNG atomically (a temporary name, renamed when complete), close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    pyplot().close(fig)


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 4)
    return (n + cols - 1) // cols, cols


def plot_distributions(values: np.ndarray, names: list[str], valid: np.ndarray, title: str,
                       path: Path, log_scale: list[bool] | None = None) -> None:
    """Histogram per column, all finished models against valid ones."""
    plt = pyplot()
    rows, cols = _grid(len(names))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), squeeze=False)
    for k, name in enumerate(names):
        ax = axes.flat[k]
        x = values[:, k]
        finite = np.isfinite(x)
        if not finite.any():
            ax.set_title(f"{name}\n(undefined)", fontsize=9)
            continue
        use_log = bool(log_scale and log_scale[k]) and np.all(x[finite] > 0)
        data = np.log10(x[finite]) if use_log else x[finite]
        bins = np.histogram_bin_edges(data, bins=25)
        ax.hist(data, bins=bins, color="0.75", label="all finished")
        ok = finite & valid
        if ok.any():
            ax.hist(np.log10(x[ok]) if use_log else x[ok], bins=bins, color="tab:blue",
                    alpha=0.8, label="valid")
        ax.set_title(name + (" (log10)" if use_log else ""), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_oinfo(oinfo: OInfoResult, path: Path) -> None:
    """O-information of the stored multiplets per order: synergy below zero."""
    plt = pyplot()
    orders = sorted(oinfo.orders)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax = axes[0]
    for k in orders:
        o = oinfo.orders[k].oinfo
        jitter = np.random.default_rng(k).uniform(-0.15, 0.15, o.size)
        ax.scatter(np.full(o.size, k) + jitter, o, s=8,
                   c=np.where(o < 0, "tab:red", "tab:blue"), alpha=0.7)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(orders)
    ax.set_xlabel("order (multiplet size)")
    ax.set_ylabel(f"O-information ({oinfo.attrs.get('units', 'nats')})")
    ax.set_title("stored multiplets: red synergy, blue redundancy", fontsize=9)
    ax = axes[1]
    x = np.array(orders)
    syn = np.array([oinfo.orders[k].n_synergistic for k in orders], dtype=float)
    red = np.array([oinfo.orders[k].n_redundant for k in orders], dtype=float)
    total = np.maximum(syn + red, 1)
    ax.bar(x, syn / total, color="tab:red", label="synergistic (O < 0)")
    ax.bar(x, red / total, bottom=syn / total, color="tab:blue", label="redundant (O > 0)")
    ax.set_xticks(x)
    ax.set_xlabel("order")
    ax.set_ylabel("fraction of all multiplets")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def oinfo_sections(oinfo_file: Path, out: Path) -> list[str]:
    """HTML sections (and out/oinfo.png) for an OINFO.h5, read through OInfoResult.read."""
    from hpcneuro.oinfo.result import OInfoResult

    oinfo = OInfoResult.read(oinfo_file)
    plot_oinfo(oinfo, out / "oinfo.png")
    sections = ["<h2>O-information</h2>"
                f"<p>estimator {oinfo.attrs.get('estimator')}, units "
                f"{oinfo.attrs.get('units')}, {oinfo.attrs.get('n_samples')} "
                "samples. O &lt; 0: synergy; O &gt; 0: redundancy.</p>"]
    summary = oinfo.summary_rows()
    header = list(summary[0]) if summary else []
    sections.append(_table(header, [[_fmt(r[k]) for k in header] for r in summary]))
    sections.append('<img src="oinfo.png" alt="O-information per order">')
    names = oinfo.variables
    for k in sorted(oinfo.orders):
        multiplets, values = oinfo.orders[k].multiplets, oinfo.orders[k].oinfo
        order = np.argsort(values)
        pick = np.concatenate([order[:5], order[::-1][:5]]) if values.size > 10 else order
        rows = [[", ".join(names[j] for j in multiplets[i]), f"{values[i]:+.4f}"]
                for i in pick]
        sections.append(f"<h3>order {k}: most synergistic and most redundant</h3>"
                        + _table(["multiplet", "O"], rows))
    return sections


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def build(rundir: Path) -> Path:
    """Write ``rundir/report/index.html`` and its figures; return the page's path."""
    results = rundir / "results.h5"
    if not results.exists():
        raise UserError(f"{rundir}: no results.h5 here; run 'hpcneuro run' or 'hpcneuro "
                        "simulate -o RUNDIR/results.h5' first")
    out = rundir / "report"
    out.mkdir(parents=True, exist_ok=True)
    with ResultsStore.read(results) as f:
        cfg = f.config()
        status = f.status()
        valid = f.valid_models()
        params, features = f.column("params"), f.column("features")
        pnames, fnames = f.names("params"), f.names("features")
        versions = f.versions()
    done = status == DONE
    sections = [f"<h1>hpcneuro run: {html.escape(cfg['name'])}</h1>",
                f"<p>{html.escape(cfg.get('description', ''))}</p>",
                "<h2>Samples</h2>",
                _table(["status", "count"],
                       [list(item) for item in status_counts(status).items()]
                       + [["valid models", int(valid.sum())]])]
    plot_distributions(params[done], pnames, valid[done], "parameters", out / "parameters.png",
                       [p["scale"] == "log" for p in cfg["parameters"]])
    sections.append('<h2>Parameters</h2><img src="parameters.png" alt="parameter histograms">')
    if fnames:
        plot_distributions(features[done], fnames, valid[done], "features", out / "features.png")
        sections.append('<h2>Features</h2><img src="features.png" alt="feature histograms">')
    if cfg["sampling"]["method"] == "mcmc":  # cost convergence, acceptance, corner plot
        from hpcneuro.mcmc import figures as mcmc_figures

        sections.append(mcmc_figures.section(results, out, cfg, params, valid))
    oinfo_file = rundir / "oinfo.h5"
    if oinfo_file.exists():
        sections += oinfo_sections(oinfo_file, out)
    sections.append("<h2>Provenance</h2>" + _table(["", ""], list(versions.items()))
                    + f"<pre>{html.escape(json.dumps(cfg, indent=1))}</pre>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;} "
             "table{border-collapse:collapse;margin:0.5em 0;} td,th{border:1px solid #ccc;"
             "padding:2px 8px;font-size:90%;} img{max-width:100%;} "
             "pre{background:#f6f6f6;padding:1em;font-size:80%;max-height:30em;overflow:auto;}")
    page = out / "index.html"
    write_text(page, f"<!doctype html><html><head><meta charset='utf-8'><title>hpcneuro "
                    f"{html.escape(cfg['name'])}</title><style>{style}</style></head><body>"
                    + "\n".join(sections) + "</body></html>")
    log.info("report written to %s", page)
    return page
