"""Report of a run folder: figures (PNG) and one HTML page.

Reads ``RUNDIR/results.h5`` and, if present, ``RUNDIR/oinfo.h5`` and
``RUNDIR/genes.h5``, ``RUNDIR/control_oinfo.h5`` (the control band) and
``RUNDIR/targeted/`` (one OINFO.h5 per feature); writes ``RUNDIR/report/index.html``
with the figures next to it. :func:`build_genes` reports a GENES.h5 file alone, in
``GENES-report/`` next to it; :func:`build_any` dispatches ``hpcneuro report`` (also one
OINFO.h5, or several side by side: hpcneuro/oinfo/figures.py; a reproduce folder:
hpcneuro/report_reproduce.py).
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


def robust_limits(x: np.ndarray, pad: float = 0.05) -> tuple[float, float]:
    """Axis limits that outliers do not flatten: the 1st..99th percentiles of the finite
    values widened by ``pad`` of their span (the full range when that is already narrow)."""
    x = x[np.isfinite(x)]
    lo, hi = np.percentile(x, [1, 99]) if x.size >= 20 else (x.min(), x.max())
    if hi <= lo:
        lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return float(lo) - 0.5, float(hi) + 0.5
    span = hi - lo
    return float(lo - pad * span), float(hi + pad * span)


def validity_windows(cfg: dict) -> dict[str, dict]:
    """feature -> {"low", "high", "mean", "std"} of the config's validity rules (None
    where a rule does not give it): mean +- n_std * std rules give their window."""
    out: dict[str, dict] = {}
    for rule in cfg.get("validity", []):
        w = out.setdefault(rule["feature"], {"low": None, "high": None, "mean": None,
                                             "std": None})
        if rule.get("mean") is not None and rule.get("std") is not None:
            n = rule.get("n_std", 3.0)
            w.update(mean=rule["mean"], std=rule["std"], low=rule["mean"] - n * rule["std"],
                     high=rule["mean"] + n * rule["std"])
        if rule.get("low") is not None:
            w["low"] = rule["low"] if w["low"] is None else max(w["low"], rule["low"])
        if rule.get("high") is not None:
            w["high"] = rule["high"] if w["high"] is None else min(w["high"], rule["high"])
    return out


def plot_distributions(values: np.ndarray, names: list[str], valid: np.ndarray, title: str,
                       path: Path, log_scale: list[bool] | None = None,
                       windows: dict[str, dict] | None = None, robust: bool = False) -> None:
    """Histogram per column, all finished models against valid ones.

    windows: the validity window of a column (shaded) and the experimental mean and
    std (lines); robust: axis limits from the 1st..99th percentiles (outliers, e.g.
    spontaneously firing models, counted in the title instead of flattening the plot).
    """
    plt = pyplot()
    rows, cols = _grid(len(names))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for k, name in enumerate(names):
        ax = axes.flat[k]
        x = values[:, k]
        finite = np.isfinite(x)
        if not finite.any():
            ax.set_title(f"{name}\n(undefined)", fontsize=9)
            continue
        use_log = bool(log_scale and log_scale[k]) and np.all(x[finite] > 0)
        data = np.log10(x[finite]) if use_log else x[finite]
        label = name + (" (log10)" if use_log else "")
        if robust and not use_log:
            lo, hi = robust_limits(data)
            outside = int(np.sum((data < lo) | (data > hi)))
            if outside:
                label += f"\n{outside} outside the axis"
        else:
            lo, hi = float(data.min()), float(data.max())
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, 31)
        ax.hist(np.clip(data, lo, hi), bins=bins, color="0.75", label="all finished")
        ok = finite & valid
        if ok.any():
            v = np.log10(x[ok]) if use_log else x[ok]
            ax.hist(np.clip(v, lo, hi), bins=bins, color="tab:blue", alpha=0.8,
                    label="valid")
        w = (windows or {}).get(name)
        if w and not use_log:
            a = w["low"] if w["low"] is not None else lo
            b = w["high"] if w["high"] is not None else hi
            ax.axvspan(max(a, lo), min(b, hi), color="tab:green", alpha=0.12,
                       label="validity window")
            if w["mean"] is not None:
                ax.axvline(w["mean"], color="tab:green", lw=1.2, label="experiment mean")
                for sgn in (-1, 1):
                    ax.axvline(w["mean"] + sgn * w["std"], color="tab:green", lw=0.8,
                               ls="--")
        ax.set_xlim(lo, hi)
        ax.set_title(label, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_correlations(params: np.ndarray, names: list[str], valid: np.ndarray,
                      path: Path) -> None:
    """Spearman rank correlation of the parameters: all finished models, valid ones."""
    from scipy.stats import spearmanr

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, (title, rows) in zip(axes, (("all finished models", np.ones(len(params), bool)),
                                        ("valid models", valid))):
        p = len(names)
        rho = np.full((p, p), np.nan)
        if rows.sum() > 2 and p > 1:
            rho = np.atleast_2d(spearmanr(params[rows]).statistic)
        elif p == 1:
            rho = np.ones((1, 1))
        im = ax.imshow(rho, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(p))
        ax.set_yticks(range(p))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_yticklabels(names, fontsize=7)
        for i in range(p):
            for j in range(p):
                if np.isfinite(rho[i, j]) and i != j:
                    ax.text(j, i, f"{rho[i, j]:.2f}", ha="center", va="center", fontsize=6)
        ax.set_title(f"{title} (n = {int(rows.sum())})", fontsize=9)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="Spearman rho")
    save_figure(fig, path)


def plot_traces(traces: dict[str, dict], valid: np.ndarray, path: Path,
                per_protocol: int = 4) -> bool:
    """A few stored voltage traces per protocol (valid models blue, others grey);
    False (nothing drawn) when no stored trace has run yet."""
    plt = pyplot()
    names = [n for n, t in traces.items() if np.isfinite(t["voltage"]).any()]
    if not names:
        return False
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.2 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        t = traces[name]
        rows = [r for r in range(len(t["voltage"])) if np.isfinite(t["voltage"][r]).all()]
        for r in rows[:per_protocol]:
            i = int(t["samples"][r])
            v = t["voltage"][r]
            ok = bool(valid[i]) if i < len(valid) else False
            ax.plot(np.arange(v.size) * t["record_dt"], v, lw=0.7,
                    color="tab:blue" if ok else "0.5",
                    label=f"sample {i}{' (valid)' if ok else ''}")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("mV", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper right")
    axes[-1, 0].set_xlabel("time (ms)")
    fig.tight_layout()
    save_figure(fig, path)
    return True


def plot_oinfo(oinfo: OInfoResult, path: Path, control: OInfoResult | None = None) -> None:
    """Per order: mean O over every multiplet with its bootstrap interval, and the
    fraction of synergistic multiplets with its interval (1/2 marked: a fraction near
    it is what an independent ensemble gives; read the mean and its interval).

    control: an analysis of a control ensemble (e.g. independent parameters), drawn as
    a grey band over its bootstrap interval of the mean O (and of the fraction) at each
    order, its mean dashed (hpcneuro/oinfo/figures.py, "Control band convention")."""
    plt = pyplot()
    orders = sorted(oinfo.orders)
    x = np.array(orders)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    rs = [oinfo.orders[k] for k in orders]
    means = np.array([r.mean for r in rs])
    ax = axes[0]
    ax.axhline(0, color="k", lw=0.8)
    if control is not None:
        _control_band(axes, control, orders)
    ci = [r.mean_ci for r in rs]
    if all(c is not None for c in ci):
        lo, hi = np.array(ci).T
        # percentile intervals need not contain the estimate: lines, not error bars
        ax.vlines(x, lo, hi, color="k", lw=2,
                  label=f"{100 * float(oinfo.attrs.get('ci_level', 0.95)):g}% bootstrap "
                        "interval")
        ax.legend(fontsize=7)
    ax.plot(x, means, "o", color="k")
    ax.set_xticks(x)
    ax.set_xlabel("order (multiplet size)")
    ax.set_ylabel(f"mean O ({oinfo.attrs.get('units', 'nats')})")
    ax.set_title("mean O over all multiplets: < 0 synergy, > 0 redundancy", fontsize=9)
    ax = axes[1]
    frac = np.array([r.frac_synergistic for r in rs])
    ax.axhline(0.5, color="0.5", lw=0.8, ls="--")
    fci = [r.frac_syn_ci for r in rs]
    if all(c is not None for c in fci):
        lo, hi = np.array(fci).T
        ax.vlines(x, lo, hi, color="tab:red", lw=2)
    ax.plot(x, frac, "o", color="tab:red")
    if control is not None:
        ax.legend(fontsize=7)
    ax.set_xticks(x)
    ax.set_ylim(0, 1)
    ax.set_xlabel("order")
    ax.set_ylabel("fraction synergistic (O < 0)")
    ax.set_title("fraction of multiplets with O < 0", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def _control_band(axes, control: OInfoResult, orders: list[int]) -> None:
    """The control's mean O (left) and fraction synergistic (right) per order: dashed
    line, and a grey band over its bootstrap interval where it has one."""
    ks = [k for k in orders if k in control.orders]
    if not ks:
        return
    cs = [control.orders[k] for k in ks]
    for ax, value, interval in ((axes[0], "mean", "mean_ci"),
                                (axes[1], "frac_synergistic", "frac_syn_ci")):
        ci = [getattr(c, interval) for c in cs]
        if all(c is not None for c in ci):
            lo, hi = np.array(ci).T
            ax.fill_between(ks, lo, hi, color="0.6", alpha=0.35, step=None,
                            label="control interval")
        ax.plot(ks, [getattr(c, value) for c in cs], "--", color="0.4", lw=1,
                label="control")


def plot_oinfo_distribution(oinfo: OInfoResult, path: Path) -> None:
    """The distribution of O over EVERY multiplet of each order, from the histograms
    stored in OINFO.h5 (under/overflow counts added to the end bins)."""
    plt = pyplot()
    orders = sorted(oinfo.orders)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    cmap = plt.get_cmap("viridis")
    for i, k in enumerate(orders):
        r = oinfo.orders[k]
        counts = np.asarray(r.hist_counts, dtype=float).copy()
        inner = counts[1:-1]
        inner[0] += counts[0]
        inner[-1] += counts[-1]
        edges = np.asarray(r.hist_edges)
        width = np.diff(edges)
        density = inner / max(inner.sum(), 1) / np.where(width > 0, width, 1)
        ax.stairs(density, edges, color=cmap(i / max(len(orders) - 1, 1)), lw=1.2,
                  label=f"order {k} (mean {r.mean:+.3g})")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(f"O ({oinfo.attrs.get('units', 'nats')})")
    ax.set_ylabel("density")
    ax.set_title("O over all multiplets of each order", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def oinfo_sections(oinfo_file: Path, out: Path, prefix: str = "",
                   control: Path | None = None) -> list[str]:
    """HTML sections (and out/PREFIXoinfo*.png) for an OINFO.h5, read through
    OInfoResult.read; ``control``: an OINFO.h5 drawn as the control band."""
    from hpcneuro.oinfo.figures import participation_section
    from hpcneuro.oinfo.result import OInfoResult

    oinfo = OInfoResult.read(oinfo_file)
    ctrl = OInfoResult.read(control) if control is not None else None
    plot_oinfo(oinfo, out / f"{prefix}oinfo.png", ctrl)
    plot_oinfo_distribution(oinfo, out / f"{prefix}oinfo_distribution.png")
    target = oinfo.attrs.get("target")
    sections = ["<h2>O-information</h2>"
                f"<p>estimator {oinfo.attrs.get('estimator')}, units "
                f"{oinfo.attrs.get('units')}, {oinfo.attrs.get('n_samples')} "
                "samples"
                + (f", targeted: multiplets containing {html.escape(str(target))}"
                   if target else "")
                + ". O &lt; 0: synergy; O &gt; 0: redundancy. The mean O of an order "
                "and its bootstrap interval say whether the order leans one way; the "
                "fraction of synergistic multiplets alone does not (an independent "
                "ensemble gives fractions away from 1/2 by chance).</p>"]
    sections.append(_stats_table(oinfo))
    if ctrl is not None:
        sections.append(f"<p>Grey band: the control {html.escape(str(control))} "
                        f"({ctrl.attrs.get('n_samples')} samples), its bootstrap interval "
                        "of the mean O (and of the fraction) per order, its mean dashed. "
                        "An order whose interval lies outside the band differs from the "
                        "control (hpcneuro compare gives the difference's interval).</p>"
                        + _stats_table(ctrl))
    sections.append(f'<img src="{prefix}oinfo.png" alt="mean O and fraction synergistic '
                    'per order">')
    sections.append(f'<img src="{prefix}oinfo_distribution.png" alt="distribution of O per '
                    'order">')
    if oinfo.attrs.get("permutations"):
        sections.append("<p>Permutation p-values (stored per multiplet) are a test "
                        "against independence of all the columns: shuffling destroys "
                        "pairwise correlations too, so they are small whenever the "
                        "variables are correlated, whatever the higher-order structure. "
                        "See the README, Statistics.</p>")
    sections += participation_section(oinfo, out, prefix)
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


def _stats_table(oinfo: OInfoResult) -> str:
    """Per order: multiplets, mean O [interval], % synergistic [interval], min, max."""
    rows = []
    for k in sorted(oinfo.orders):
        r = oinfo.orders[k]
        mean = f"{r.mean:+.4g}"
        if r.mean_ci is not None:
            mean += f" [{r.mean_ci[0]:+.4g}, {r.mean_ci[1]:+.4g}]"
        frac = f"{100 * r.frac_synergistic:.1f}"
        if r.frac_syn_ci is not None:
            frac += f" [{100 * r.frac_syn_ci[0]:.1f}, {100 * r.frac_syn_ci[1]:.1f}]"
        rows.append([k, f"{r.n_multiplets:,}", mean, frac, f"{r.min:+.4g}", f"{r.max:+.4g}"])
    level = f" ({100 * float(oinfo.attrs.get('ci_level', 0.95)):g}% bootstrap intervals)" \
        if any(r.mean_ci is not None for r in oinfo.orders.values()) else ""
    return _table(["order", "multiplets", f"mean O{level}", "% synergistic", "min", "max"],
                  rows)


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


#: the page style of every report
STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;} "
         "table{border-collapse:collapse;margin:0.5em 0;} td,th{border:1px solid #ccc;"
         "padding:2px 8px;font-size:90%;} img{max-width:100%;} "
         "pre{background:#f6f6f6;padding:1em;font-size:80%;max-height:30em;overflow:auto;}")
#: a run folder's control analysis, drawn as the band on the mean-O figure
CONTROL_FILE = "control_oinfo.h5"
#: a run folder's ``analyze --target all-features`` output (one OINFO.h5 per feature)
TARGETED_DIR = "targeted"


def build(rundir: Path, control: Path | None = None) -> Path:
    """Write ``rundir/report/index.html`` and its figures; return the page's path.

    control: an OINFO.h5 drawn as the control band (default RUNDIR/control_oinfo.h5 if
    present); RUNDIR/targeted/ (``analyze --target all-features``) gives the feature x
    order heatmap."""
    results = rundir / "results.h5"
    genes_file = rundir / GENES_FILE
    if not results.exists() and genes_file.exists():
        return build_genes(genes_file, rundir / "report")
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
        traces = f.traces(max_rows=20)
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
    if len(pnames) > 1 and done.sum() > 2:
        plot_correlations(params[done], pnames, valid[done], out / "correlation.png")
        sections.append('<img src="correlation.png" alt="parameter correlations, all vs '
                        'valid models">')
    if fnames:
        plot_distributions(features[done], fnames, valid[done], "features", out / "features.png",
                           windows=validity_windows(cfg), robust=True)
        sections.append('<h2>Features</h2><p>Shaded: validity window; green lines: '
                        'experimental mean and std where the config gives them. Axes span '
                        'the 1st..99th percentiles; values beyond are clipped into the end '
                        'bins and counted in the titles.</p>'
                        '<img src="features.png" alt="feature histograms">')
    if traces and plot_traces(traces, valid, out / "traces.png"):
        sections.append('<h2>Example traces</h2><img src="traces.png" alt="example traces">')
    if cfg["sampling"]["method"] == "mcmc":  # cost convergence, acceptance, corner plot
        from hpcneuro.mcmc import figures as mcmc_figures

        sections.append(mcmc_figures.section(results, out, cfg, params, valid))
    oinfo_file = rundir / "oinfo.h5"
    if control is None and (rundir / CONTROL_FILE).is_file():
        control = rundir / CONTROL_FILE
    if oinfo_file.is_dir():  # analysis target all-features: one OINFO.h5 per feature
        for i, path in enumerate(sorted(oinfo_file.glob("*.h5"))):
            sections += oinfo_sections(path, out, prefix=f"target{i}_")
    elif oinfo_file.exists():
        sections += oinfo_sections(oinfo_file, out, control=control)
    if (rundir / TARGETED_DIR).is_dir():
        from hpcneuro.oinfo.figures import targeted_section

        sections += targeted_section(rundir / TARGETED_DIR, out)
    if genes_file.exists():
        from hpcneuro.genes.figures import genes_figures

        sections.append(genes_figures(genes_file, out))
    sections.append("<h2>Provenance</h2>" + _table(["", ""], list(versions.items()))
                    + f"<pre>{html.escape(json.dumps(cfg, indent=1))}</pre>")
    page = out / "index.html"
    write_text(page, f"<!doctype html><html><head><meta charset='utf-8'><title>hpcneuro "
                    f"{html.escape(cfg['name'])}</title><style>{STYLE}</style></head><body>"
                    + "\n".join(sections) + "</body></html>")
    log.info("report written to %s", page)
    return page


#: a run folder's gene-expression analysis (``hpcneuro genes ... -o RUNDIR/genes.h5``)
GENES_FILE = "genes.h5"


def genes_report_dir(path: Path) -> Path:
    """Where the standalone report of a GENES.h5 goes: ``NAME-report/`` next to it."""
    return path.with_name(f"{path.stem}-report")


def build_genes(path: Path, out: Path | None = None) -> Path:
    """The report of a GENES.h5 alone (``out``: default :func:`genes_report_dir`)."""
    from hpcneuro.genes.figures import build_genes_report
    from hpcneuro.genes.result import is_genes_file
    from hpcneuro.store import is_results_file

    if not is_genes_file(path):
        hint = (f"a results file: give its folder, hpcneuro report {path.parent}"
                if is_results_file(path) else "not a GENES.h5 (hpcneuro genes) or an OINFO.h5 "
                "(hpcneuro analyze/oinfo)")
        raise UserError(f"{path} is {hint}")
    page = build_genes_report(path, out or genes_report_dir(path))
    log.info("report written to %s", page)
    return page


def build_any(paths: list[Path], output: Path | None = None,
              control: Path | None = None) -> Path:
    """``hpcneuro report PATH...``: a reproduce folder (findings.json in it) or a run
    folder (results.h5 or genes.h5 in it) -> FOLDER/report/; a GENES.h5 or an OINFO.h5 -> NAME-report/ next to it; several
    OINFO.h5 files, or a folder of them -> one page comparing them (FOLDER/report/, or
    ensembles-report/ next to the first file). ``output`` replaces the default folder
    (not for a run folder); ``control`` is drawn as the band of a run folder or an
    OINFO.h5."""
    from hpcneuro.oinfo.result import OInfoResult

    for p in paths:
        if not p.exists():
            raise UserError(f"{p}: no such run folder or GENES.h5 or OINFO.h5")
    if output is not None and output.exists() and not output.is_dir():
        raise UserError(f"-o {output}: a report is a folder, and this is a file")
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        from hpcneuro.reproduce import is_reproduce_folder

        if is_reproduce_folder(folder):  # hpcneuro reproduce -o FOLDER
            if output is not None or control is not None:
                raise UserError("-o and --control are not for a reproduce folder: its "
                                "report goes to DIR/report/, its control is DIR/control/")
            from hpcneuro.report_reproduce import build_reproduce

            return build_reproduce(folder)
        if (folder / "results.h5").exists() or (folder / GENES_FILE).exists():
            if output is not None:
                raise UserError("-o: a run folder's report always goes to RUNDIR/report/")
            return build(folder, control)
        files = sorted(p for p in folder.glob("*.h5") if OInfoResult.is_oinfo_file(p))
        if not files:
            raise UserError(f"{folder}: neither a run folder (results.h5) nor a folder of "
                            "OINFO.h5 files")
        paths, output = files, output or folder / "report"
    elif len(paths) == 1:
        path = paths[0]
        if OInfoResult.is_oinfo_file(path):
            from hpcneuro.oinfo.figures import build_oinfo_report

            page = build_oinfo_report(path, output, control)
            log.info("report written to %s", page)
            return page
        return build_genes(path, output)
    else:
        bad = [p for p in paths if not (p.is_file() and OInfoResult.is_oinfo_file(p))]
        if bad:
            raise UserError(f"{bad[0]}: several paths are compared as ensembles, and this "
                            "is not an OINFO.h5 file")
    if control is not None:
        raise UserError("--control is for a run folder or one OINFO.h5; to compare "
                        "ensembles give the control as the first file")
    from hpcneuro.oinfo.figures import build_ensembles_report

    page = build_ensembles_report(paths, output or paths[0].parent / "ensembles-report")
    log.info("report written to %s", page)
    return page
