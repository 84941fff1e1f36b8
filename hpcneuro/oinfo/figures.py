"""Report figures and pages of O-information results (OINFO.h5, read through
:meth:`hpcneuro.oinfo.result.OInfoResult.read` only).

- :func:`participation`: per order, the share of the top-K synergistic (and the top-K
  redundant) multiplets that contain each variable; :func:`plot_participation` draws it
  as a variable x order heatmap.
- :func:`plot_targeted`: the feature x order heatmap of a ``--target all-features``
  folder (mean O per (feature, order), blue synergy / red redundancy, ``*`` where the
  bootstrap interval of the mean excludes 0).
- :func:`plot_ensembles`: mean O per order with its interval, one line per ensemble.
- :func:`build_oinfo_report` (one OINFO.h5 -> ``NAME-report/index.html``) and
  :func:`build_ensembles_report` (several, compared with :func:`stats.compare` against
  the first).

Control band convention (:func:`hpcneuro.report.plot_oinfo`): a control analysis (an
independent or shuffled ensemble analysed the same way) is drawn as a grey band spanning
its bootstrap interval of the mean O at each order (its mean alone, dashed, when it has
no bootstrap). An order whose interval lies outside the band differs from the control;
:func:`stats.compare` gives the interval of that difference.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserError
from .result import OInfoResult

#: multiplets per order and sign that the participation heatmap counts by default
TOP_K = 20


def participation(oinfo: OInfoResult, top_k: int = TOP_K, sign: str = "synergistic"
                  ) -> tuple[np.ndarray, list[int], dict[int, int]]:
    """Share of the top ``top_k`` multiplets of each order containing each variable.

    sign "synergistic": the ``top_k`` lowest O among the stored multiplets with O < 0;
    "redundant": the highest O with O > 0. Returns (shares (n_variables, n_orders),
    orders ascending, {order: number of multiplets counted}, fewer than ``top_k`` when
    the order has fewer of that sign stored). A share is NaN for an order with none.
    """
    if sign not in ("synergistic", "redundant"):
        raise ValueError(f"sign must be 'synergistic' or 'redundant', not {sign!r}")
    orders = sorted(oinfo.orders)
    shares = np.full((len(oinfo.variables), len(orders)), np.nan)
    counted: dict[int, int] = {}
    for c, k in enumerate(orders):
        r = oinfo.orders[k]
        o = np.asarray(r.oinfo)
        rows = np.flatnonzero(o < 0) if sign == "synergistic" else np.flatnonzero(o > 0)
        rows = rows[np.argsort(o[rows], kind="stable")]
        if sign == "redundant":
            rows = rows[::-1]
        rows = rows[:top_k]
        counted[k] = int(rows.size)
        if rows.size:
            hits = np.zeros(len(oinfo.variables))
            np.add.at(hits, np.asarray(r.multiplets)[rows].ravel(), 1)
            shares[:, c] = hits / rows.size
    return shares, orders, counted


def plot_participation(oinfo: OInfoResult, path: Path, top_k: int = TOP_K) -> None:
    """Heatmaps variable x order: share of the top-K synergistic multiplets (left) and
    of the top-K redundant ones (right) that contain the variable."""
    from hpcneuro.report import pyplot, save_figure

    plt = pyplot()
    n = len(oinfo.variables)
    fig, axes = plt.subplots(1, 2, figsize=(9, 1.2 + 0.28 * n), squeeze=False)
    for ax, sign, cmap in zip(axes[0], ("synergistic", "redundant"), ("Blues", "Reds")):
        shares, orders, counted = participation(oinfo, top_k, sign)
        im = ax.imshow(np.nan_to_num(shares, nan=0.0), vmin=0, vmax=1, cmap=cmap,
                       aspect="auto")
        ax.set_xticks(range(len(orders)))
        ax.set_xticklabels([f"{k}\n(n={counted[k]})" for k in orders], fontsize=7)
        ax.set_yticks(range(n))
        ax.set_yticklabels(oinfo.variables, fontsize=7)
        for i in range(n):
            for j in range(len(orders)):
                if np.isfinite(shares[i, j]) and shares[i, j] > 0:
                    ax.text(j, i, f"{shares[i, j]:.2f}", ha="center", va="center",
                            fontsize=6, color="w" if shares[i, j] > 0.6 else "k")
        ax.set_xlabel("order (multiplets counted)", fontsize=8)
        ax.set_title(f"top {top_k} {sign}", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8, label="share containing the variable")
    fig.tight_layout()
    save_figure(fig, path)


def targeted_matrix(results: dict[str, OInfoResult]
                    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(mean O (features, orders), interval excludes 0 (bool, same shape), orders) of
    targeted analyses {feature: OInfoResult}; NaN / False where a feature lacks an
    order or an interval."""
    orders = sorted({k for r in results.values() for k in r.orders})
    mean = np.full((len(results), len(orders)), np.nan)
    sig = np.zeros(mean.shape, bool)
    for i, r in enumerate(results.values()):
        for j, k in enumerate(orders):
            if k in r.orders:
                mean[i, j] = r.orders[k].mean
                ci = r.orders[k].mean_ci
                sig[i, j] = ci is not None and (ci[0] > 0 or ci[1] < 0)
    return mean, sig, orders


def plot_targeted(results: dict[str, OInfoResult], path: Path) -> None:
    """Feature x order heatmap of the targeted analyses' mean O (blue < 0 synergy,
    red > 0 redundancy, symmetric about 0); ``*`` where the interval excludes 0."""
    from hpcneuro.report import pyplot, save_figure

    plt = pyplot()
    mean, sig, orders = targeted_matrix(results)
    names = list(results)
    finite = mean[np.isfinite(mean)]
    vmax = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
    fig, ax = plt.subplots(figsize=(max(6.0, 3.5 + 0.9 * len(orders)),
                                    1.6 + 0.32 * len(names)))
    im = ax.imshow(mean, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    for i in range(len(names)):
        for j in range(len(orders)):
            if np.isfinite(mean[i, j]):
                ax.text(j, i, f"{mean[i, j]:+.3f}{'*' if sig[i, j] else ''}", ha="center",
                        va="center", fontsize=6,
                        color="w" if abs(mean[i, j]) > 0.6 * vmax else "k")
    ax.set_xticks(range(len(orders)))
    ax.set_xticklabels(orders, fontsize=8)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=7)
    ax.set_xlabel("order (feature + parameters)")
    units = next(iter(results.values())).attrs.get("units", "nats")
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"mean O ({units})")
    ax.set_title("targeted: mean O per feature and order\n(blue synergy, red redundancy; "
                 "* interval excludes 0)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def targeted_section(folder: Path, out: Path) -> list[str]:
    """HTML (and out/targeted.png) for a ``--target all-features`` folder of OINFO.h5
    files (hpcneuro/analyze.py), features in the order of their files' names."""
    results = {}
    for path in sorted(folder.glob("*.h5")):
        r = OInfoResult.read(path)
        results[str(r.attrs.get("target") or path.stem)] = r
    if not results:
        return []
    plot_targeted(results, out / "targeted.png")
    mean, sig, orders = targeted_matrix(results)
    return ["<h2>Targeted analyses: each feature with the parameters</h2>"
            f"<p>{len(results)} analyses in {html.escape(str(folder))} (multiplets of one "
            "feature plus parameters). Mean O over every multiplet of each order: blue "
            "synergy, red redundancy; * the bootstrap interval of the mean excludes 0 "
            f"({int(sig.sum())} of {int(np.isfinite(mean).sum())} cells).</p>",
            '<img src="targeted.png" alt="targeted mean O per feature and order">']


def ensemble_names(paths: Sequence[Path]) -> list[str]:
    """Short distinct labels: the file stems, or parent/stem when stems repeat."""
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    names = [f"{p.parent.name}/{p.stem}" for p in paths]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def plot_ensembles(results: dict[str, OInfoResult], path: Path,
                   control: str | None = None) -> None:
    """Mean O per order with its bootstrap interval, one line per ensemble; ``control``
    (one of the names) is drawn as the band instead (module docstring's convention)."""
    from hpcneuro.report import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.axhline(0, color="k", lw=0.8)
    if control is not None:
        c = results[control]
        ks = sorted(c.orders)
        ci = [c.orders[k].mean_ci for k in ks]
        if all(v is not None for v in ci):
            lo, hi = np.array(ci).T
            ax.fill_between(ks, lo, hi, color="0.6", alpha=0.35,
                            label=f"{control} interval")
        ax.plot(ks, [c.orders[k].mean for k in ks], "--", color="0.4", lw=1, label=control)
        results = {n: r for n, r in results.items() if n != control}
    n = len(results)
    for i, (name, r) in enumerate(results.items()):
        orders = sorted(r.orders)
        x = np.array(orders) + (i - (n - 1) / 2) * 0.08
        means = [r.orders[k].mean for k in orders]
        (line,) = ax.plot(x, means, "o-", lw=1.2, ms=4, label=name)
        ci = [r.orders[k].mean_ci for k in orders]
        if all(c is not None for c in ci):
            lo, hi = np.array(ci).T
            ax.vlines(x, lo, hi, color=line.get_color(), lw=2)
    ax.set_xticks(sorted({k for r in results.values() for k in r.orders}))
    ax.set_xlabel("order (multiplet size)")
    units = next(iter(results.values())).attrs.get("units", "nats")
    ax.set_ylabel(f"mean O ({units})")
    ax.set_title("mean O per order with bootstrap intervals: < 0 synergy, > 0 redundancy",
                 fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def participation_section(oinfo: OInfoResult, out: Path, prefix: str = "",
                          top_k: int = TOP_K) -> list[str]:
    """HTML (and out/PREFIXparticipation.png) of the participation heatmaps."""
    plot_participation(oinfo, out / f"{prefix}participation.png", top_k)
    return [f"<h3>Participation in the top multiplets</h3><p>Share of the {top_k} most "
            f"synergistic (and the {top_k} most redundant) multiplets of each order that "
            "contain each variable (n: multiplets of that sign counted, fewer when the "
            "order has fewer).</p>",
            f'<img src="{prefix}participation.png" alt="variable participation in the top '
            'multiplets per order">']


def _page(title: str, sections: list[str]) -> str:
    from hpcneuro.report import STYLE

    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>" + "\n".join(sections)
            + "</body></html>")


def _provenance(oinfo: OInfoResult) -> str:
    from hpcneuro.report import _table

    rows = [[k, v] for k, v in oinfo.provenance.items()]
    rows += [[k, oinfo.attrs[k]] for k in ("estimator", "units", "bias_correct", "n_samples",
                                           "bootstrap", "ci_level", "seed") if k in oinfo.attrs]
    return "<h2>Provenance</h2>" + _table(["", ""], rows)


def oinfo_report_dir(path: Path) -> Path:
    """Where the standalone report of an OINFO.h5 goes: ``NAME-report/`` next to it."""
    return path.with_name(f"{path.stem}-report")


def build_oinfo_report(path: Path, out: Path | None = None, control: Path | None = None
                       ) -> Path:
    """The report of one OINFO.h5: summary with intervals, mean O (with the control
    band if ``control``), O distribution, top multiplets and participation per order."""
    from hpcneuro.outputs import write_text
    from hpcneuro.report import oinfo_sections

    path = Path(path)
    out = Path(out) if out is not None else oinfo_report_dir(path)
    oinfo = OInfoResult.read(path)  # refuses a file that is not an OINFO.h5
    out.mkdir(parents=True, exist_ok=True)
    sections = [f"<h1>hpcneuro O-information: {html.escape(path.name)}</h1>",
                f"<p>{html.escape(str(path))}: {len(oinfo.variables)} variables "
                f"({html.escape(', '.join(oinfo.variables))})</p>"]
    sections += oinfo_sections(path, out, control=control)
    sections.append(_provenance(oinfo))
    page = out / "index.html"
    write_text(page, _page(f"hpcneuro {path.name}", sections))
    return page


def build_ensembles_report(paths: Sequence[Path], out: Path) -> Path:
    """One page comparing several OINFO.h5 files: mean O per order with intervals, one
    line per ensemble, and each against the first (stats.compare, X - first)."""
    from hpcneuro.oinfo.stats import compare
    from hpcneuro.outputs import write_text
    from hpcneuro.report import _table

    paths = [Path(p) for p in paths]
    if not paths:
        raise UserError("no OINFO.h5 files to compare")
    results = dict(zip(ensemble_names(paths), (OInfoResult.read(p) for p in paths)))
    names = list(results)
    first = results[names[0]]
    diffs = {n: compare(results[n], first) for n in names[1:]}  # refuses other scales
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plot_ensembles(results, out / "ensembles.png")
    level = float(first.attrs.get("ci_level", 0.95))
    rows = []
    for name, r in results.items():
        for k in sorted(r.orders):
            o = r.orders[k]
            ci = f" [{o.mean_ci[0]:+.4g}, {o.mean_ci[1]:+.4g}]" if o.mean_ci else ""
            fci = (f" [{100 * o.frac_syn_ci[0]:.1f}, {100 * o.frac_syn_ci[1]:.1f}]"
                   if o.frac_syn_ci else "")
            rows.append([name, k, f"{o.n_multiplets:,}", f"{o.mean:+.4g}{ci}",
                         f"{100 * o.frac_synergistic:.1f}{fci}"])
    sections = [f"<h1>hpcneuro: {len(results)} ensembles side by side</h1>",
                _table(["label", "file", "variables", "samples", "target"],
                       [[n, str(p), len(r.variables), r.attrs.get("n_samples"),
                         r.attrs.get("target") or ""]
                        for (n, r), p in zip(results.items(), paths)]),
                "<h2>Mean O per order</h2>",
                '<img src="ensembles.png" alt="mean O per order, one line per ensemble">',
                _table(["ensemble", "order", "multiplets",
                        f"mean O [{100 * level:g}% interval]", "% synergistic [interval]"],
                       rows)]
    sizes = {r.attrs.get("n_samples") for r in results.values()}
    if len(sizes) > 1 and not first.attrs.get("bias_correct"):
        sections.append("<p><b>Note:</b> the ensembles have different numbers of samples "
                        "and no bias correction, so the plug-in bias of O differs between "
                        "them; analyse them again with --bias-correct to compare "
                        "magnitudes.</p>")
    if diffs:
        drows = []
        for name, rs in diffs.items():
            for d in rs:
                lo, hi = d["diff_ci"]
                flo, fhi = d["frac_syn_diff_ci"]
                drows.append([name, d["order"], f"{d['diff']:+.4g}",
                              f"[{lo:+.4g}, {hi:+.4g}]", "yes" if d["excludes_zero"] else "no",
                              f"{100 * d['frac_syn_diff']:+.1f}",
                              f"[{100 * flo:+.1f}, {100 * fhi:+.1f}]"])
        sections += [f"<h2>Differences from {html.escape(names[0])}</h2>"
                     f"<p>Each ensemble minus {html.escape(names[0])}, per order "
                     "(hpcneuro compare): the interval is that of the difference of the "
                     "two bootstrap distributions (NaN without --bootstrap in both "
                     "files).</p>",
                     _table(["ensemble", "order", "mean O difference", "interval",
                             "excludes 0", "% synergistic difference", "interval"], drows)]
    page = out / "index.html"
    write_text(page, _page("hpcneuro ensembles", sections))
    return page
