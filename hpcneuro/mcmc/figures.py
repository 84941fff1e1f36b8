"""The report's MCMC section: cost convergence, acceptance, the valid population
(marginals and pairs, corner-style) and the per-parameter R-hat / ESS table."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from hpcneuro.mcmc import diagnostics
from hpcneuro.mcmc.cost import OUTSIDE
from hpcneuro.report import pyplot, save_figure


def plot_cost(d: diagnostics.Diagnostics, threshold: float | None, path: Path) -> None:
    """Cost of every chain's state per step: median, 10-90% band, a few chains."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    c = np.minimum(d.cost_trace, OUTSIDE)
    steps = np.arange(c.shape[1])
    if c.size:
        for row in c[: min(8, c.shape[0])]:
            ax.plot(steps, row, lw=0.6, alpha=0.5, color="0.5")
        lo, med, hi = np.nanpercentile(c, [10, 50, 90], axis=0)
        ax.fill_between(steps, lo, hi, color="tab:blue", alpha=0.25, label="10-90% of chains")
        ax.plot(steps, med, color="tab:blue", lw=1.5, label="median")
    if threshold is not None:
        ax.axhline(threshold, color="tab:red", lw=1, ls="--", label=f"threshold {threshold:g}")
    if d.burn_in:
        ax.axvline(d.burn_in, color="k", lw=0.8, ls=":", label=f"burn-in {d.burn_in}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cost of the chain's state")
    ax.set_title(f"cost convergence ({c.shape[0]} chains; {OUTSIDE:g} = outside a range "
                 "or undefined)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def plot_acceptance(d: diagnostics.Diagnostics, path: Path) -> None:
    """Acceptance rate per chain, and R-hat per parameter."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    ax = axes[0]
    ax.bar(np.arange(d.n_chains), np.nan_to_num(d.acceptance), color="tab:green")
    ax.set_xlabel("chain")
    ax.set_ylabel("acceptance rate")
    ax.set_ylim(0, 1)
    ax.set_title(f"acceptance: mean {np.nanmean(d.acceptance):.2f}", fontsize=9)
    ax = axes[1]
    x = np.arange(len(d.parameters))
    ax.bar(x, d.rhat, color=np.where(d.rhat < diagnostics.RHAT_OK, "tab:blue", "tab:red"))
    ax.axhline(diagnostics.RHAT_OK, color="k", lw=0.8, ls="--")
    ax.set_xticks(x)
    ax.set_xticklabels(d.parameters, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("split R-hat (rank)")
    ax.set_ylim(bottom=min(1.0, np.nanmin(d.rhat) if np.isfinite(d.rhat).any() else 1.0))
    ax.set_title("R-hat per parameter (after burn-in)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def plot_corner(values: np.ndarray, names: list[str], parameters: list[dict],
                path: Path) -> None:
    """Marginals (diagonal) and pairwise densities (lower triangle) of the valid models,
    within the parameters' bounds (log10 axes for scale: log)."""
    plt = pyplot()
    P = len(names)
    log = [p["scale"] == "log" for p in parameters]
    x = np.where(log, np.log10(np.where(log, values, 1.0)), values) if values.size else values
    lims = [(np.log10(p["low"]), np.log10(p["high"])) if lg else (p["low"], p["high"])
            for p, lg in zip(parameters, log)]
    size = max(1.1, min(2.0, 14.0 / P))
    fig, axes = plt.subplots(P, P, figsize=(size * P, size * P), squeeze=False)
    for i in range(P):
        for j in range(P):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if x.shape[0]:
                if i == j:
                    ax.hist(x[:, i], bins=25, range=lims[i], color="tab:blue")
                    ax.set_yticks([])
                else:
                    ax.hist2d(x[:, j], x[:, i], bins=20, range=[lims[j], lims[i]],
                              cmap="Blues")
            ax.set_xlim(lims[j])
            if i != j:
                ax.set_ylim(lims[i])
            ax.tick_params(labelsize=5)
            if i < P - 1:
                ax.set_xticklabels([])
            else:
                ax.set_xlabel(names[j] + (" (log10)" if log[j] else ""), fontsize=6)
            if j > 0 and i != j:
                ax.set_yticklabels([])
            elif i != j:
                ax.set_ylabel(names[i] + (" (log10)" if log[i] else ""), fontsize=6)
    fig.suptitle(f"valid population: {x.shape[0]} distinct accepted states", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)


def section(results: Path, out: Path, cfg: dict, params: np.ndarray, valid: np.ndarray) -> str:
    """Write the MCMC figures into ``out``; return the report's HTML section."""
    d = diagnostics.read(results)
    s = cfg["sampling"]
    plot_cost(d, s["threshold"], out / "mcmc_cost.png")
    plot_acceptance(d, out / "mcmc_acceptance.png")
    plot_corner(params[valid], d.parameters, cfg["parameters"], out / "mcmc_corner.png")
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{r:.3f}</td><td>{e:.0f}</td></tr>"
                   for n, r, e in zip(d.parameters, d.rhat, d.ess))
    lines = "<br>".join(html.escape(line.strip()) for line in diagnostics.status_lines(d))
    return ("<h2>MCMC</h2>"
            f"<p>{lines}</p><p>Valid models: accepted states after burn-in {s['burn_in']}, "
            f"every {s['thin']} step(s), "
            + (f"cost ({s['cost']} of the rule scores) &lt; {s['threshold']:g}"
               if s["threshold"] is not None else "meeting every validity rule")
            + "; each distinct accepted state once.</p>"
            '<img src="mcmc_cost.png" alt="cost convergence">'
            '<img src="mcmc_acceptance.png" alt="acceptance and R-hat">'
            "<table><tr><th>parameter</th><th>split R-hat</th><th>bulk ESS</th></tr>"
            f"{rows}</table>"
            '<img src="mcmc_corner.png" alt="valid population, corner plot">')
