#!/usr/bin/env python
"""Benchmark the searches (issue 14) against the exact answer and THOI's heuristics.

    python scripts/bench_search.py                # all parts
    options: --max-order K (N=30 quality, default 10) --no-peers --no-install
             --thoi-repeat R (default 100)
             --only quality,scale,memory,kernel,startup --seed S

Parts, in one run:
  quality  N=30, T=1000 random correlated data (bench_oinfo.make_data): the exact
           top-K per order and sign from the exhaustive engine (K=10, 100), then
           each search: recall of the exact top-K (mean over orders and signs), the
           largest gap |best found - true best| over orders and signs, time; THOI's
           greedy and simulated annealing in THOI's own virtualenv
           (~/.cache/hpcneuro/bench-venvs/thoi, created and pip-installed on demand
           with bench_oinfo's helpers) as a subprocess on the same data (.npy), same
           orders, --thoi-repeat chains, timed inside the subprocess; an error raised
           inside THOI is reported as such. Side-by-side table at the end of the part.
  scale    N=200, T=1000, orders 3..20: greedy and annealing wall time (target < 60 s)
  memory   N=250, 500, 1000, orders 3..6, greedy: peak RSS of a fresh process
           minus the RSS of the same process before the search, against N^2 * 8 B
  kernel   the previous kernel (main's hpcneuro/oinfo/kernel.py, loaded from git)
           and this one on the same work units of the N=30 full sweep, interleaved
           in one process (CPU ns per multiplet); then the full sweep orders 3..30 on
           2 threads (wall s) and the largest relative error against slogdet
  startup  `hpcneuro oinfo` on a 6-column, 200-row CSV end to end: median wall and CPU
           of 7 runs (target < 0.5 s), and the import time of its heavy modules

The machine is shared: timings are noisy; the load average is reported.
The last line printed is one JSON object with every figure above.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_oinfo import ensure_peer, make_data, venv_python  # noqa: E402
from hpcneuro import oinfo as oi  # noqa: E402

THOI_VENV = Path(os.environ.get("HPCNEURO_CACHE", Path.home() / ".cache" / "hpcneuro")) \
    / "bench-venvs" / "thoi"

# Runs in THOI's own venv: argv = data.npy kmin kmax repeat seed. THOI's greedy builds orders
# kmin..kmax in one call (the prefix of length k of each chain is its order-k solution,
# scores[:, k - kmin]); simulated_annealing runs once per order. Each (method, sign) is
# timed on its own; an exception inside THOI is reported, never replaced by a result.
# "greedy_adapted" is THOI's greedy with one adapter of ours (below), labelled as such.
THOI_CODE = """
import sys, time, json, traceback, numpy as np, torch
x = np.load(sys.argv[1]); kmin, kmax, rep, seed = (int(v) for v in sys.argv[2:6])
torch.manual_seed(seed)  # THOI draws its annealing moves from torch's global generator
import thoi.heuristics.greedy  # noqa: the module; thoi.heuristics.greedy is rebound to the function
tg = sys.modules['thoi.heuristics.greedy']
from thoi.heuristics import greedy, simulated_annealing
from thoi.collectors import batch_to_tensor
out = {"thoi_version": __import__("importlib.metadata").metadata.version("thoi"),
       "torch_version": torch.__version__, "torch_threads": torch.get_num_threads()}

def adapter(nplets, result, bn, **kw):
    # THOI 0.2.42's multi_order_measures calls collector(nplets, result[B, D, 4], bn);
    # greedy still passes batch_to_tensor, whose signature is (nplets, tc, dtc, o, s, bn)
    return batch_to_tensor(nplets, result[..., 0], result[..., 1], result[..., 2],
                           result[..., 3], bn, **kw)

def run(name, largest):
    rows, scores = {}, {}
    t0 = time.perf_counter(); c0 = time.process_time()
    if name.startswith("greedy"):
        sol, sc = greedy(x, initial_order=kmin, order=kmax, repeat=rep, metric="o",
                         largest=largest)
        sol, sc = sol.cpu().numpy(), sc.cpu().numpy()
        for k in range(kmin, kmax + 1):
            rows[k] = np.sort(sol[:, :k], axis=1).tolist()
            scores[k] = sc[:, k - kmin].tolist()
    else:
        for k in range(kmin, kmax + 1):
            sol, en = simulated_annealing(x, order=k, repeat=rep, metric="o",
                                          largest=largest, verbose=0)
            rows[k] = np.sort(sol.cpu().numpy(), axis=1).tolist()
            scores[k] = en.cpu().numpy().tolist()
    return {"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "rows": rows, "o": scores}

for name in ("greedy", "greedy_adapted", "annealing"):
    if name == "greedy_adapted":
        tg.batch_to_tensor = adapter
    for largest, sign in ((False, "syn"), (True, "red")):
        try:
            out[f"{name}_{sign}"] = run(name, largest)
        except Exception as e:
            tb = traceback.extract_tb(e.__traceback__)[-1]
            out[f"{name}_{sign}"] = {"error": f"{type(e).__name__}: {e} "
                                              f"(at {tb.filename.split('site-packages/')[-1]}:"
                                              f"{tb.lineno})"}
print(json.dumps(out))
"""

THOI_LABEL = {"greedy": "greedy", "greedy_adapted": "greedy+adapter",
              "annealing": "annealing"}


def exact_top(x, names, kmax, top):
    res = oi.compute_oinfo(x, names, max_order=kmax, top=top, store_all_max=0,
                           scheduler="none")
    out = {}
    for k, r in res.orders.items():
        o = r.oinfo
        out[k] = {"syn": [tuple(m) for m in r.multiplets[o < 0][:top]],
                  "red": [tuple(m) for m in r.multiplets[o > 0][::-1][:top]],
                  "min": r.min, "max": r.max}
    return out


def quality(found: dict, exact: dict, r, top: int) -> dict:
    """found: {k: {"syn": [tuples], "red": [tuples]}} -> recall@10/100, gap."""
    rec = {10: [], 100: []}
    gap = 0.0
    for k, ex in exact.items():
        for sign in ("syn", "red"):
            got = {tuple(int(v) for v in t) for t in found.get(k, {}).get(sign, [])}
            for kk in rec:
                want = ex[sign][:kk]
                if want:
                    rec[kk].append(len(got & set(want)) / len(want))
            if got:
                vals = oi.oinfo_sets(r, np.array(sorted(got), np.int64))[:, 0]
                best = vals.min() if sign == "syn" else vals.max()
                gap = max(gap, abs(best - (ex["min"] if sign == "syn" else ex["max"])))
            else:
                gap = math.inf
    return {"recall10": round(float(np.mean(rec[10])), 4),
            "recall100": round(float(np.mean(rec[100])), 4), "gap": gap}


def part_quality(a, fig):
    n, t, kmax = 30, 1000, a.max_order
    x = make_data(n, t, a.seed)
    names = [f"x{i}" for i in range(n)]
    r = oi.correlation_matrix(x, "gc")
    t0 = time.perf_counter()
    exact = exact_top(x, names, kmax, 100)
    fig["exhaustive_s"] = round(time.perf_counter() - t0, 2)
    print(f"N=30 orders 3..{kmax}: exhaustive top-100 in {fig['exhaustive_s']} s", flush=True)
    for m in ("greedy", "annealing", "beam"):  # JIT cache load of each search, untimed
        oi.compute_oinfo(x[:, :8], names[:8], max_order=5, search=m)
    for m in ("greedy", "annealing", "beam"):
        t0 = time.perf_counter()
        res = oi.compute_oinfo(x, names, max_order=kmax, top=100, search=m, seed=a.seed)
        dt = time.perf_counter() - t0
        found = {k: {"syn": [tuple(s) for s, o in zip(o_.multiplets, o_.oinfo) if o < 0],
                     "red": [tuple(s) for s, o in zip(o_.multiplets, o_.oinfo) if o > 0]}
                 for k, o_ in res.orders.items()}
        q = quality(found, exact, r, 100)
        fig[f"hpc_{m}"] = dict(q, seconds=round(dt, 2), n_evaluations=res.attrs["n_evaluations"])
        print(f"  hpcneuro {m:9s}: {dt:6.2f} s, recall@10 {q['recall10']:.3f}, "
              f"recall@100 {q['recall100']:.3f}, largest gap {q['gap']:.2e} nats, "
              f"{res.attrs['n_evaluations']:,} evaluations", flush=True)
    if a.no_peers:
        return
    py = venv_python(THOI_VENV, not a.no_install)
    why = ("no THOI virtualenv (--no-install)" if py is None
           else ensure_peer("thoi", not a.no_install, python=py))
    if why:
        fig["errors"]["thoi"] = why
        print(f"  THOI skipped: {why}", flush=True)
        return
    rep = a.thoi_repeat
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", x)
        env = dict(os.environ, TQDM_DISABLE="1")
        p = subprocess.run([py, "-c", THOI_CODE, str(Path(tmp) / "x.npy"), "3", str(kmax),
                            str(rep), str(a.seed)], capture_output=True, text=True,
                           timeout=3600, env=env)
    if p.returncode != 0:
        fig["errors"]["thoi"] = p.stderr.strip()[-400:]
        print(f"  THOI failed: {fig['errors']['thoi']}", flush=True)
        return
    info = json.loads(p.stdout.strip().splitlines()[-1])
    fig["thoi_version"], fig["thoi_repeat"] = info["thoi_version"], rep
    print(f"  THOI {info['thoi_version']} (torch {info['torch_version']}, "
          f"{info['torch_threads']} threads), repeat={rep} per order and sign:", flush=True)
    # Conventions: THOI and hpcneuro both give O in nats from a Gaussian copula, O > 0
    # redundant; THOI adds its entropy bias correction (T known), a constant per order,
    # so rankings within an order and the sets compared below are unaffected. Checked on
    # every multiplet THOI returned: |O_THOI - (O_ours + bias_offsets[k])|.
    off = oi.bias_offsets(kmax, x.shape[0], True)
    for m in ("greedy", "greedy_adapted", "annealing"):
        errs = [info[f"{m}_{sg}"]["error"] for sg in ("syn", "red")
                if "error" in info[f"{m}_{sg}"]]
        if errs:
            fig[f"thoi_{m}"] = {"error": errs[0]}
            fig["errors"][f"thoi_{m}"] = errs[0]
            print(f"  THOI     {THOI_LABEL[m]:14s}: FAILED inside THOI: {errs[0]}", flush=True)
            continue
        found, secs, cpu, diff = {}, 0.0, 0.0, 0.0
        for sign in ("syn", "red"):
            d = info[f"{m}_{sign}"]
            secs += d["seconds"]
            cpu += d["cpu_s"]
            for k, rows in d["rows"].items():
                k = int(k)
                found.setdefault(k, {})[sign] = [tuple(row) for row in rows]
                ours = oi.oinfo_sets(r, np.array(rows, np.int64))[:, 0] + off[k]
                diff = max(diff, float(np.max(np.abs(ours - np.array(d["o"][str(k)])))))
        q = quality(found, exact, r, 100)
        fig[f"thoi_{m}"] = dict(q, seconds=round(secs, 2), cpu_s=round(cpu, 2),
                                max_abs_diff_vs_ours=diff)
        print(f"  THOI     {THOI_LABEL[m]:14s}: {secs:6.2f} s, recall@10 {q['recall10']:.3f}, "
              f"recall@100 {q['recall100']:.3f}, largest gap {q['gap']:.2e} nats; its O vs "
              f"ours (+ its bias correction) {diff:.1e} nats", flush=True)
    table = []
    for key, label in (("hpc_greedy", "hpcneuro greedy"), ("hpc_annealing", "hpcneuro annealing"),
                       ("hpc_beam", "hpcneuro beam"), ("thoi_greedy", "THOI greedy"),
                       ("thoi_greedy_adapted", "THOI greedy + adapter"),
                       ("thoi_annealing", "THOI annealing")):
        v = fig.get(key, {})
        table.append([label, v.get("seconds"), v.get("recall10"), v.get("recall100"),
                      v.get("gap"), v.get("error")])
    fig["side_by_side"] = table
    print(f"\nside by side, N=30 T=1000 orders 3..{kmax} (load average "
          f"{os.getloadavg()[0]:.1f}):")
    print(f"  {'search':24s} {'time s':>8s} {'rec@10':>7s} {'rec@100':>8s} {'gap nats':>9s}")
    for label, sec, r10, r100, gap, err in table:
        if err:
            print(f"  {label:24s} failed: {err[:70]}")
        else:
            print(f"  {label:24s} {sec:8.2f} {r10:7.3f} {r100:8.3f} {gap:9.2e}")
    print(flush=True)


def part_scale(a, fig):
    x = make_data(200, 1000, a.seed)
    names = [f"x{i}" for i in range(200)]
    for m in ("greedy", "annealing", "beam"):
        t0 = time.perf_counter()
        res = oi.compute_oinfo(x, names, max_order=20, search=m, seed=a.seed)
        fig[f"n200_{m}_s"] = round(time.perf_counter() - t0, 2)
        print(f"N=200 orders 3..20 {m}: {fig[f'n200_{m}_s']} s, "
              f"{res.attrs['n_evaluations']:,} evaluations", flush=True)


MEM_CODE = """
import sys, resource, numpy as np
sys.path.insert(0, sys.argv[2])
from hpcneuro import oinfo as oi
n = int(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.normal(size=(2 * n, n)) + rng.normal(size=(2 * n, 1))
names = [f"x{i}" for i in range(n)]
oi.compute_oinfo(x[:, :10], names[:10], max_order=5, search="greedy", scheduler="none")
def rss():
    with open("/proc/self/status") as f:
        return [int(l.split()[1]) for l in f if l.startswith("VmRSS")][0]
base = rss()
oi.compute_oinfo(x, names, max_order=6, search="greedy", scheduler="none", restarts=4)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base, peak)
"""


def part_memory(a, fig):
    for n in (250, 500, 1000):
        p = subprocess.run([sys.executable, "-c", MEM_CODE, str(n), str(ROOT)],
                           capture_output=True, text=True, timeout=1800)
        base, peak = (int(v) for v in p.stdout.split()[-2:])
        fig[f"mem_n{n}_mb"] = round((peak - base) / 1024, 1)
        print(f"N={n} greedy orders 3..6: peak RSS {peak / 1024:.0f} MB, {(peak - base) / 1024:.1f}"
              f" MB above the process before the search; N^2 doubles = "
              f"{n * n * 8 / 2**20:.1f} MB", flush=True)


def part_kernel(a, fig):
    from hpcneuro.oinfo.engine import _run_unit
    from hpcneuro.oinfo.stats import HIST_BINS, hist_ranges

    src = subprocess.run(["git", "-C", str(ROOT), "show", "main:hpcneuro/oinfo/kernel.py"],
                         capture_output=True, text=True)
    if src.returncode != 0:
        fig["errors"]["kernel"] = "git show main:hpcneuro/oinfo/kernel.py failed"
        return
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "kernel_main.py"
        f.write_text(src.stdout.replace("cache=True", "cache=False")
                     .replace("    from .engine import _run_unit", "    return None"))
        spec = importlib.util.spec_from_file_location("kernel_main", f)
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
    x = make_data(30, 1000, a.seed)
    R = oi.correlation_matrix(x, "gc")
    K = 30
    lo, iw = hist_ranges(R, range(3, K + 1), (), np.zeros(K + 1), 1.0, 0)
    cfg = dict(min_order=3, max_order=K, offset=np.zeros(K + 1), scale=1.0, hist_lo=lo,
               hist_inv_w=iw, top=100, nbins=HIST_BINS)
    units = oi.plan_units(30, K)
    sample = units[::max(1, len(units) // 8)][:8]
    import hpcneuro.oinfo.engine as eng

    times = {"old": [], "new": []}
    parts = {}
    for rep in range(3):
        for name, walk in (("old", old.walk_unit), ("new", oi.walk_unit)):
            eng.walk_unit = walk
            _run_unit(R, sample[0], cfg)
            t0 = time.process_time()
            parts[name] = [_run_unit(R, u, cfg) for u in sample]
            times[name].append(time.process_time() - t0)
    eng.walk_unit = oi.walk_unit
    cnt = sum(int(p.icount[:, 0].sum()) for p in parts["new"])
    same = all(np.array_equal(p.icount, q.icount) and np.array_equal(p.hist, q.hist)
               and np.array_equal(p.sums[0], q.sums[0])
               for p, q in zip(parts["old"], parts["new"]))
    fig["kernel_old_ns"] = round(min(times["old"]) / cnt * 1e9, 1)
    fig["kernel_new_ns"] = round(min(times["new"]) / cnt * 1e9, 1)
    fig["kernel_bit_identical"] = bool(same)
    print(f"kernel, N=30 full-sweep units ({cnt:,} multiplets), CPU per multiplet, interleaved: "
          f"previous {fig['kernel_old_ns']} ns, now {fig['kernel_new_ns']} ns; "
          f"bit-identical: {same}", flush=True)
    fig["load_before_full"] = os.getloadavg()[0]
    t0 = time.perf_counter()
    c0 = time.process_time()
    full = oi.compute_oinfo(x, [f"x{i}" for i in range(30)], max_order=30, scheduler="none",
                            n_workers=2)
    fig["full_sweep_2threads_s"] = round(time.perf_counter() - t0, 1)
    fig["full_sweep_cpu_s"] = round(time.process_time() - c0, 1)
    err = 0.0
    for k, o in full.orders.items():
        for val, pick in ((o.min, np.argmin), (o.max, np.argmax)):
            if len(o.oinfo):
                rv = oi.reference_oinfo(R, list(o.multiplets[pick(o.oinfo)]))[0]
                err = max(err, abs(o.oinfo[pick(o.oinfo)] - rv) / abs(rv))
    fig["full_max_rel_err"] = err
    print(f"full sweep orders 3..30 (1.07e9 multiplets) on 2 threads: "
          f"{fig['full_sweep_2threads_s']} s wall, {fig['full_sweep_cpu_s']} s CPU, load "
          f"average before {fig['load_before_full']:.1f}; largest relative error of the "
          f"per-order extremes vs slogdet {err:.1e}", flush=True)


STARTUP_RUNS = 7


def part_startup(a, fig):
    """`hpcneuro oinfo small.csv -o x.h5` end to end on a 6-column, 200-row table:
    median wall and CPU (user + sys of the child) over STARTUP_RUNS runs, and the
    cumulative import time of the heavy modules from one `python -X importtime` run."""
    import resource

    rng = np.random.default_rng(a.seed)
    x = rng.normal(size=(200, 6)) + rng.normal(size=(200, 1))
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # run in tmp: python -m puts the cwd first
    with tempfile.TemporaryDirectory() as tmp:
        csv, out = Path(tmp) / "small.csv", Path(tmp) / "x.h5"
        np.savetxt(csv, x, delimiter=",", header=",".join(f"c{i}" for i in range(6)),
                   comments="", fmt="%.17g")
        cmd = [sys.executable, "-m", "hpcneuro", "oinfo", str(csv), "-o", str(out)]
        walls, cpus = [], []
        fig["load_before_startup"] = os.getloadavg()[0]
        for _ in range(STARTUP_RUNS + 1):  # the first run fills the OS file cache
            out.unlink(missing_ok=True)
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=tmp)
            walls.append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        out.unlink(missing_ok=True)
        imp = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], check=True,
                             capture_output=True, text=True, env=env, cwd=tmp).stderr
    fig["startup_wall_s"] = round(float(np.median(walls[1:])), 3)
    fig["startup_cpu_s"] = round(float(np.median(cpus[1:])), 3)
    fig["load_after_startup"] = os.getloadavg()[0]
    top = {}
    for line in imp.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and not parts[2].startswith("  ") and parts[1].strip().isdigit():
            top[parts[2].strip()] = int(parts[1]) / 1e6
    fig["startup_imports_s"] = {m: round(top[m], 3) for m in
                                ("numpy", "hpcneuro.oinfo", "scipy.special", "h5py", "pandas",
                                 "hpcneuro.config", "hpcneuro.cli") if m in top}
    print(f"start-up: hpcneuro oinfo on a 6-column, 200-row CSV, median of {STARTUP_RUNS}: "
          f"{fig['startup_wall_s']} s wall, {fig['startup_cpu_s']} s CPU (load average "
          f"{fig['load_before_startup']:.1f} before, {fig['load_after_startup']:.1f} after); "
          f"imports (cumulative s, one run): {fig['startup_imports_s']}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-order", type=int, default=10)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--thoi-repeat", type=int, default=100,
                    help="THOI's repeat (chains) per order and sign; 100 so that it can "
                         "return 100 multiplets like --top 100")
    ap.add_argument("--only", default="quality,scale,memory,kernel,startup")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    fig: dict = {"errors": {}, "load_start": os.getloadavg()[0]}
    parts = a.only.split(",")
    for name in ("quality", "scale", "memory", "kernel", "startup"):
        if name in parts:
            globals()[f"part_{name}"](a, fig)
    print(json.dumps(fig))


if __name__ == "__main__":
    main()
