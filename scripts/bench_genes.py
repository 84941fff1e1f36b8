#!/usr/bin/env python
"""Benchmark ``hpcneuro genes`` on the real M1 patch-seq table, and hoi beside it.

    python scripts/bench_genes.py              # the issue's target
    python scripts/bench_genes.py --no-peers   # hpcneuro only
    options: --max-order K --hoi-max K --no-install --workers W --data DIR

What is timed: every channel gene of the curated list (pore-forming and auxiliary)
detected in >= 10% of the good cells (88 on this table), O-information of every
multiplet of orders 3..5 (exhaustive: ~4.2e7 multiplets) on all cells pooled and on each
RNA family that has more cells than genes (only Sst, 110 cells, at 88 genes; the other
families are reported as skipped). Reading and normalising the table is timed apart.
hoi (method "gc", JAX on CPU) then runs the pooled cells at orders 3..4 in its own
virtualenv (~/.cache/hpcneuro/bench-peers, created and filled with pip on demand through
bench_oinfo.py's peer helpers), on the same tie-free copula scores as hpcneuro, so the
values can be compared (hoi: bits, bias-corrected, float32).

The machine may be shared: the 1-minute load average before each timing is printed and
stored; figures taken under load are upper bounds.

The last line is one JSON object: n_cells, n_genes, orders, multiplets_pooled,
read_s, pooled_s, groups ({name: seconds}), skipped, oinfo_total_s (pooled + groups,
target < 30 s), target_met, hoi_max_order, hoi_multiplets, hpc_hoi_s, hoi_s, hoi_ratio,
hoi_max_abs_diff, load_before, errors.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_oinfo import ensure_peer, peer_diff, run_peer, venv_python  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "patchseq_m1_phys_temp"
PEER_VENV = Path(os.environ.get("HPCNEURO_CACHE", Path.home() / ".cache" / "hpcneuro")) \
    / "bench-peers"


def load() -> float:
    return os.getloadavg()[0]


def peer_python(install: bool) -> str | None:
    """The benchmark peers' own virtualenv (created on demand)."""
    return venv_python(PEER_VENV, install)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--max-order", type=int, default=5)
    ap.add_argument("--hoi-max", type=int, default=4)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-install", action="store_true")
    a = ap.parse_args()

    from hpcneuro.genes.analysis import copula_scores, group_oinfo, plan_groups
    from hpcneuro.genes.pipeline import GenesOptions, prepare

    data = Path(a.data)
    fig: dict = dict(errors={}, load_before={})
    t0 = time.perf_counter()
    p = prepare(GenesOptions(
        counts=str(data / "m1_patchseq_phys_temp_exon_counts.csv.gz"), output="unused.h5",
        metadata=str(data / "m1_patchseq_phys_temp_meta_data.csv"), group_by="RNA family",
        exclude_labels=["low quality"], include_auxiliary=True, min_detection=0.1,
        top_variable=None))
    fig["read_s"] = time.perf_counter() - t0
    x, genes, labels = p["chan_x"], p["chan_genes"], p["labels"]
    fig.update(n_cells=int(x.shape[0]), n_genes=len(genes), orders=[3, a.max_order])
    fig["multiplets_pooled"] = sum(math.comb(len(genes), k) for k in range(3, a.max_order + 1))
    print(f"{x.shape[0]} cells, {len(genes)} channel genes (pore + auxiliary, detected in "
          f">= 10%), orders 3..{a.max_order}: {fig['multiplets_pooled']:,} multiplets per "
          f"set of cells; read + normalise {fig['read_s']:.1f} s")
    kw = dict(max_order=a.max_order, scheduler="none", n_workers=a.workers, top=100)
    groups, skipped = plan_groups(labels, len(genes), 20)
    fig["skipped"] = skipped
    for s in skipped:
        print(f"  {s}")
    fig["groups"] = {}
    sets = [("all cells", np.ones(len(labels), bool))] + \
        [(g, np.array([v == g for v in labels])) for g in groups]
    group_oinfo(x[:40, :6], genes[:6], "warm-up", oinfo_kwargs=dict(max_order=3))  # JIT
    total = 0.0
    for name, mask in sets:
        fig["load_before"][name] = load()
        t = time.perf_counter()
        r = group_oinfo(x[mask], genes, name, oinfo_kwargs=kw)
        dt = time.perf_counter() - t
        total += dt
        if name == "all cells":
            fig["pooled_s"] = dt
        else:
            fig["groups"][name] = dt
        means = ", ".join(f"{k}: {s.mean:.4f}" for k, s in sorted(r.stats.items()))
        print(f"  {name:<10} {int(mask.sum()):>4} cells  {dt:6.2f} s   mean O per order "
              f"{means}  (load {fig['load_before'][name]:.2f})")
    fig["oinfo_total_s"] = total
    fig["target_met"] = total < 30.0
    print(f"O-information pooled + per family: {total:.1f} s (target < 30 s: "
          f"{'met' if total < 30 else 'NOT met'})")

    kh = a.hoi_max
    fig["hoi_max_order"] = kh
    fig["hoi_multiplets"] = sum(math.comb(len(genes), k) for k in range(3, kh + 1))
    # tie-free copula scores: hoi breaks ties its own way, so both get the same input
    z = copula_scores(x, "random", np.random.default_rng(0))
    from hpcneuro.oinfo import compute_oinfo

    fig["load_before"]["hpc_hoi"] = load()
    t = time.perf_counter()
    compute_oinfo(z, genes, max_order=kh, scheduler="none", n_workers=a.workers)
    fig["hpc_hoi_s"] = time.perf_counter() - t
    print(f"hpcneuro pooled orders 3..{kh} ({fig['hoi_multiplets']:,} multiplets): "
          f"{fig['hpc_hoi_s']:.2f} s")
    if not a.no_peers:
        py = peer_python(not a.no_install)
        why = "peer virtualenv missing (--no-install)" if py is None else \
            ensure_peer("hoi", not a.no_install, python=py)
        if why:
            fig["errors"]["hoi"] = why
            print(f"  hoi skipped: {why}")
        else:
            fig["load_before"]["hoi"] = load()
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    info = run_peer("hoi", z, kh, Path(tmp), python=py)
                fig["hoi_s"] = info["seconds"]
                fig["hoi_ratio"] = info["seconds"] / fig["hpc_hoi_s"]
                fig["hoi_max_abs_diff"] = peer_diff("hoi", info, z)
                print(f"hoi same orders: {info['seconds']:.1f} s ({fig['hoi_ratio']:.0f}x "
                      f"hpcneuro's time); largest |O difference| {fig['hoi_max_abs_diff']:.2g} "
                      "bits (hoi computes in float32)")
            except Exception as exc:  # a peer failing is reported, not fatal
                fig["errors"]["hoi"] = str(exc)[-300:]
                print(f"  hoi failed: {fig['errors']['hoi']}")
    print(json.dumps(fig))


if __name__ == "__main__":
    main()
