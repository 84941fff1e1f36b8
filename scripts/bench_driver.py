#!/usr/bin/env python
"""Benchmark the MPI campaign driver (``hpcneuro simulate``): scaling, overhead, size.

    .venv/bin/python scripts/bench_driver.py               # everything, ~6-10 min
    .venv/bin/python scripts/bench_driver.py --quick       # smoke run, < 2 min
    .venv/bin/python scripts/bench_driver.py --only a,b --repeats 3
    options: --only a,b,c,d  --repeats R  --a-samples N  --a-batch B
             --scale-samples N  --scale-small N  --scale-batch B
             --many-ranks K  --many-samples N  --many-batch B  --keep

Every campaign runs through the real command line, ``mpiexec -n N python LAUNCHER
simulate CONFIG -o OUT.h5``, where LAUNCHER (written to the temp dir) calls
``hpcneuro.cli.main`` in-process and then prints, per rank, its CPU time and peak
resident memory (``getrusage(RUSAGE_SELF).ru_maxrss``; optionally a VmRSS trace polled
from /proc/self/status once a second). Times are wall clock of the whole ``mpiexec``
(process start-up, imports, file creation, simulation, close) unless said otherwise;
"driver" times are the ``finished N samples in X s`` that rank 0 logs (``simulate()``
alone: store creation, cell building, the block loop). All files live in a temp dir
under /tmp that is deleted at the end (``--keep`` keeps it).

(a) Parallel efficiency, 2 ranks vs 1: the cortical model (configs/cortical.yaml, 12
    parameters, 5 protocols incl. a rheobase search, 10 eFEL features) with shortened
    protocols (rest 200 ms; hyper/step_300/step_150pc 400 ms steps in 600 ms; rheobase
    100 ms steps, tolerance 0.02 nA), --a-samples samples in blocks of --a-batch.
    efficiency = (T1 / T2) / 2; target >= 0.90 (judged on the median over repeats, wall
    clock, start-up included). Also per-rank sample counts of the
    2-rank run (the file's ``rank`` dataset). Repeated --repeats times, interleaved.
(b) Framework overhead: the 1-rank CLI runs of (a) against the bare loop of the same
    samples in a fresh child process without MPI or I/O: ``make_batch`` then
    ``evaluate_block`` over the same blocks (parameters drawn before timing). The CLI's
    fixed cost (start-up, imports, file creation) is measured by the same CLI on a
    1-sample campaign of the same model. overhead = T_cli / T_bare - 1 (nothing
    subtracted) and (T_cli - T_fixed) / T_bare - 1 (start-up removed); target <= 10%.
(c) Scale: --scale-samples (1e6) samples of a one-compartment HH + pas soma, one 3 ms
    step, no eFEL features, blocks of --scale-batch, on 2 ranks; then --scale-small
    (1e5) samples of the same model. Checks: status == done for every sample, every
    sample has a rank, params of 2000 random indices equal ``Sampler(cfg).sample``
    bit for bit. Peak RSS of each rank for both sizes, and the slope of each rank's
    VmRSS over the middle of the big run (KB per block): memory must stay flat.
(d) Many ranks: --many-ranks (16) ranks oversubscribed on this machine's cores, the
    same cheap model; every sample done, all ranks took part, and the samples the
    ranks report having run (the driver's reduced count) equal N: written exactly once.

The machine is shared: load averages (os.getloadavg) are printed before and after
each part, and repeated runs are reported with their spread.

The last line printed is one JSON object with these names (absent parts are omitted):
  quick, cpu_count          --quick given; os.cpu_count()
  loadavg_start, loadavg_end   [1, 5, 15]-minute load averages at start and end
  parts                     the parts run, e.g. "abcd"
  mpiexec_flags             extra flags given to mpiexec for oversubscription ([] = none)
  a_n_samples, a_batch_size samples and block size of the (a)/(b) campaign
  a_t1_s, a_t2_s            wall seconds of each 1-rank and 2-rank CLI run (lists)
  a_efficiency              (T1 / T2) / 2 per repeat (list); _median, _min, _max
  a_efficiency_driver       the same from rank 0's logged simulate() time (list)
  a_efficiency_cpu          T1 CPU / (2 * busiest 2-rank CPU) per repeat: balance and
                            work inflation without the machine's other load (list)
  a_efficiency_cpu_net      the same with the 1-sample campaign's CPU (b_fixed_cpu_s:
                            start-up, imports, file creation) removed from every rank;
                            only when (b) runs too (list)
  a_rank_counts             per repeat, samples run by rank 0 and rank 1 (list of lists)
  a_cores_used_1, a_cores_used_2   CPU seconds / wall seconds of the 1-rank run and
                            (summed over ranks) of the 2-rank run: how many cores the
                            campaign actually got on the shared machine (lists)
  a_loadavg                 1-minute load average before each repeat (list)
  a_target_met              a_efficiency_median >= 0.90
  b_bare_s, b_bare_cpu_s    bare loop wall and CPU seconds per repeat (lists)
  b_make_batch_s            cell building in the bare child (not in b_bare_s)
  b_bare_rate, b_cli_rate   samples per wall second, bare loop and 1-rank CLI (lists)
  b_fixed_s                 wall seconds of the CLI on a 1-sample campaign (list)
  b_cli_net_rate            N / (T_cli - T_fixed) (list)
  b_ratio, b_ratio_net      b_cli_rate / b_bare_rate and b_cli_net_rate / b_bare_rate
                            (medians)
  b_overhead_pct            (T_cli / T_bare - 1) * 100, median (start-up included)
  b_overhead_net_pct        ((T_cli - T_fixed) / T_bare - 1) * 100, median
  b_overhead_driver_pct     (driver simulate() time / T_bare - 1) * 100, median
  b_overhead_cpu_pct        (CLI rank CPU / bare CPU - 1) * 100, median (CLI CPU includes
                            start-up; robust to load)
  b_fixed_cpu_s             CPU seconds of the 1-sample CLI campaign (list)
  b_overhead_cpu_net_pct    ((CLI CPU - fixed CPU) / bare CPU - 1) * 100, median
  b_target_met, b_target_met_net   wall overhead <= 10%, as is / start-up removed
  b_target_met_cpu          b_overhead_cpu_pct <= 10 (the load-robust verdict)
  c_n_samples, c_batch_size, c_wall_s, c_driver_s, c_rate (samples/s, wall)
  c_status_counts           {status code: count} over the whole file
  c_all_done                every status == 1 and every rank >= 0
  c_rank_counts             samples per rank
  c_params_checked, c_params_equal   random indices compared with Sampler; all equal
  c_file_mb                 size of the 1e6 results file (MB)
  c_peak_rss_mb             peak RSS per rank (MB), big run
  c_small_n_samples, c_small_wall_s, c_small_peak_rss_mb, c_small_all_done
                            the same for the small run
  c_small_rank_counts       samples per rank, small run
  c_small_1rank_wall_s      the small campaign again on 1 rank (wall s)
  c_small_speedup_2v1       c_small_1rank_wall_s / c_small_wall_s; _driver: the same from
                            rank 0's logged simulate() times
  c_rss_delta_mb            max over ranks of peak RSS big - small (MB)
  c_rss_growth_kb_per_block per rank, slope of VmRSS over [max(30%, 5 s), 95%] of the big
                            run, KB per block (null: rank ran < 10 blocks)
  c_memory_flat             c_rss_delta_mb <= 32 (MB; the big run's index arrays alone
                            are ~8-16 MB on rank 0)
  d_n_ranks, d_n_samples, d_batch_size, d_wall_s
  d_rank_counts             samples per rank (list of d_n_ranks)
  d_ranks_seen              number of distinct ranks in the file's rank dataset
  d_ran_total               samples the ranks report having run (sum over ranks)
  d_all_done                every status == 1
  d_blocks_single_rank      every block was written by a single rank
  d_exactly_once            d_all_done and d_ran_total == d_n_samples
  d_ok                      d_exactly_once and d_ranks_seen == d_n_ranks
  total_s                   wall seconds of the whole benchmark
  error                     first line of the error, when a run failed (exit status 1)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable

LAUNCHER = r'''
import json, os, resource, sys, threading, time
poll = float(os.environ.get("BENCH_RSS_POLL", "0"))
trace = []
t0 = time.time()
def _poll():
    while True:
        try:
            with open("/proc/self/status") as f:
                kb = next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
        except Exception:
            kb = -1
        trace.append((round(time.time() - t0, 2), kb))
        time.sleep(poll)
if poll > 0:
    threading.Thread(target=_poll, daemon=True).start()
from hpcneuro.cli import main
code = main(sys.argv[1:])
try:
    from mpi4py import MPI
    rank = MPI.COMM_WORLD.rank
except Exception:
    rank = 0
ru = resource.getrusage(resource.RUSAGE_SELF)
if len(trace) > 400:
    step = len(trace) / 400.0
    trace = [trace[int(i * step)] for i in range(400)] + [trace[-1]]
report = {"rank": rank, "code": code, "maxrss_kb": ru.ru_maxrss,
          "cpu_s": ru.ru_utime + ru.ru_stime, "wall_s": time.time() - t0, "trace": trace}
with open(os.path.join(os.environ["BENCH_RANK_DIR"], f"rank_{rank}.json"), "w") as f:
    json.dump(report, f)
sys.exit(code)
'''

FINISHED = re.compile(r"finished (\d+) samples in ([0-9.]+) s")


class BenchError(RuntimeError):
    pass


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def say(msg: str) -> None:
    print(msg, flush=True)


def median(xs):
    return statistics.median(xs) if xs else None


# --- configs -------------------------------------------------------------------------

def cortical_short(n_samples: int, batch: int) -> dict:
    raw = yaml.safe_load((REPO / "configs" / "cortical.yaml").read_text())
    raw["name"] = "bench_cortical_short"
    raw["protocols"] = [
        {"name": "rest", "type": "rmp", "tstop": 200},
        {"name": "hyper", "type": "step", "amplitude": -0.2, "delay": 100, "duration": 400,
         "tstop": 600},
        {"name": "step_300", "type": "step", "amplitude": 0.3, "delay": 100,
         "duration": 400, "tstop": 600},
        {"name": "rheobase", "type": "rheobase", "low": 0.0, "high": 1.0, "tolerance": 0.02,
         "delay": 50, "duration": 100, "tstop": 160},
        {"name": "step_150pc", "type": "step", "amplitude_rel": 1.5, "delay": 100,
         "duration": 400, "tstop": 600},
    ]
    raw["sampling"]["n_samples"] = n_samples
    raw["simulation"]["batch_size"] = batch
    return raw


def tiny_hh(n_samples: int, batch: int) -> dict:
    return {
        "name": "bench_tiny_hh", "seed": 11,
        "description": "one-compartment HH + pas, one 3 ms step, no features",
        "model": {"soma": {"length": 20.0, "diam": 20.0}, "celsius": 6.3, "v_init": -65.0,
                  "mechanisms": [{"name": "hh"}, {"name": "pas"}],
                  "fixed": [{"mechanism": "pas", "variable": "e", "value": -65.0}]},
        "parameters": [
            {"mechanism": "hh", "variable": "gnabar", "low": 0.06, "high": 0.24},
            {"mechanism": "hh", "variable": "gkbar", "low": 0.012, "high": 0.072},
            {"mechanism": "pas", "variable": "g", "low": 1e-5, "high": 3e-4, "scale": "log"}],
        "sampling": {"method": "uniform", "n_samples": n_samples},
        "protocols": [{"name": "step", "type": "step", "amplitude": 0.3, "delay": 0.5,
                       "duration": 2.0, "tstop": 3.0}],
        "simulation": {"dt": 0.025, "record_dt": 0.1, "batch_size": batch},
    }


def write_config(tmp: Path, name: str, raw: dict) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# --- running -------------------------------------------------------------------------

def run_campaign(tmp: Path, n_ranks: int, config: Path, output: Path, *, poll: float = 0,
                 echo: bool = False, timeout: float = 3600,
                 mpiexec_flags: list[str] = ()) -> dict:
    """Run ``mpiexec -n N python LAUNCHER simulate CONFIG -o OUTPUT``; time it."""
    if output.exists():
        output.unlink()
    launcher = tmp / "launcher.py"
    if not launcher.exists():
        launcher.write_text(LAUNCHER)
    cmd = ["mpiexec", *mpiexec_flags, "-n", str(n_ranks), PY, str(launcher), "simulate",
           str(config), "-o", str(output)]
    rank_dir = tmp / "ranks"
    shutil.rmtree(rank_dir, ignore_errors=True)
    rank_dir.mkdir()
    env = dict(os.environ, BENCH_RSS_POLL=str(poll), PYTHONUNBUFFERED="1",
               BENCH_RANK_DIR=str(rank_dir),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out_lines: list[str] = []
    err_lines: list[str] = []

    def pump(stream, sink, show):
        for line in stream:
            sink.append(line)
            if show and "samples" in line:
                say("      | " + line.rstrip())

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp, start_new_session=True)
    threads = [threading.Thread(target=pump, args=(proc.stdout, out_lines, echo)),
               threading.Thread(target=pump, args=(proc.stderr, err_lines, echo))]
    for t in threads:
        t.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        time.sleep(5)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        raise BenchError(f"timed out after {timeout} s: {' '.join(cmd)}")
    finally:
        for t in threads:
            t.join()
    wall = time.perf_counter() - t0
    if code != 0:
        raise BenchError(f"exit {code}: {' '.join(cmd)}\n" + "".join(err_lines[-30:]))
    ranks = sorted((json.loads(f.read_text()) for f in rank_dir.glob("rank_*.json")),
                   key=lambda r: r["rank"])
    if len(ranks) != n_ranks:
        raise BenchError(f"{len(ranks)} of {n_ranks} ranks reported: {' '.join(cmd)}")
    finished = [FINISHED.search(line) for line in err_lines]
    finished = [m for m in finished if m]
    return {"wall": wall, "ranks": ranks,
            "ran": int(finished[-1].group(1)) if finished else None,
            "driver_s": float(finished[-1].group(2)) if finished else None}


def inspect(config: Path, output: Path, n_check: int = 0, batch: int | None = None) -> dict:
    """Counts, per-rank load and (optionally) a params check of a finished file."""
    import numpy as np

    from hpcneuro.store import DONE, ResultsStore

    with ResultsStore.read(output) as f:
        status = f.status()
        rank = f.column("rank")
        n = status.size
        idx = np.array([], dtype=np.int64)
        params = None
        if n_check:
            rng = np.random.default_rng(12345)
            idx = np.sort(rng.choice(n, size=min(n_check, n), replace=False))
            params = f.column("params")[idx]
    codes, counts = np.unique(status, return_counts=True)
    ranks, per_rank = np.unique(rank[rank >= 0], return_counts=True)
    out = {"n": int(n), "status_counts": {int(c): int(k) for c, k in zip(codes, counts)},
           "all_done": bool(np.all(status == DONE) and np.all(rank >= 0)),
           "rank_counts": {int(r): int(k) for r, k in zip(ranks, per_rank)},
           "file_mb": os.path.getsize(output) / 2**20}
    if n_check:
        from hpcneuro import config as configuration
        from hpcneuro.sampling import Sampler

        cfg = configuration.load(config)
        expected = Sampler(cfg).sample(idx)
        out["params_checked"] = int(idx.size)
        out["params_equal"] = bool(np.array_equal(expected, params))
    if batch:
        ends = np.minimum(np.arange(0, n, batch) + batch, n)
        starts = np.arange(0, n, batch)
        out["blocks_single_rank"] = bool(all(
            np.all(rank[a:b] == rank[a]) for a, b in zip(starts, ends)))
    return out


BARE_CHILD = r'''
import json, sys, time
import numpy as np
from hpcneuro import config as configuration
from hpcneuro import protocols as prot
from hpcneuro.allocator import plan_blocks
from hpcneuro.simulation import evaluate_block, make_batch
from hpcneuro.sampling import Sampler
cfg = configuration.load(sys.argv[1])
n = cfg["sampling"]["n_samples"]
blocks = plan_blocks(np.arange(n), cfg["simulation"]["batch_size"])
sampler = Sampler(cfg)
params = [sampler.sample(b) for b in blocks]
protocols = prot.from_config(cfg)
t0 = time.perf_counter()
batch = make_batch(cfg, n)
t1 = time.perf_counter(); c1 = time.process_time()
status = []
for p in params:
    status.append(evaluate_block(batch, protocols, cfg, p).status)
t2 = time.perf_counter(); c2 = time.process_time()
status = np.concatenate(status)
print("BENCH_BARE " + json.dumps({"make_batch_s": t1 - t0, "loop_s": t2 - t1,
      "loop_cpu_s": c2 - c1, "n": int(status.size), "done": int(np.sum(status == 1))}))
'''


def run_bare(tmp: Path, config: Path) -> dict:
    child = tmp / "bare.py"
    child.write_text(BARE_CHILD)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    p = subprocess.run([PY, str(child), str(config)], capture_output=True, text=True,
                       env=env, cwd=tmp, timeout=3600)
    if p.returncode != 0:
        raise BenchError(f"bare loop failed ({p.returncode}):\n{p.stderr[-3000:]}")
    line = next(x for x in p.stdout.splitlines() if x.startswith("BENCH_BARE "))
    return json.loads(line.split(" ", 1)[1])


# --- parts ---------------------------------------------------------------------------

def part_ab(tmp: Path, args, parts: str, res: dict) -> None:
    n, batch = args.a_samples, args.a_batch
    cfg = write_config(tmp, "cortical_short", cortical_short(n, batch))
    cfg1 = write_config(tmp, "cortical_short_1", cortical_short(1, batch))
    out = tmp / "ab.h5"
    res.update(a_n_samples=n, a_batch_size=batch)
    t1s, t2s, eff, eff_drv, eff_cpu, counts, loads = [], [], [], [], [], [], []
    share1, share2, eff_cpu_net = [], [], []
    bare, fixed, fixed_cpu, cli_cpu, cli_drv = [], [], [], [], []
    for r in range(args.repeats):
        loads.append(load()[0])
        say(f"  repeat {r + 1}/{args.repeats} (load {load()})")
        one = run_campaign(tmp, 1, cfg, out)
        info1 = inspect(cfg, out)
        if not info1["all_done"]:
            say(f"    WARNING 1-rank run: status counts {info1['status_counts']}")
        t1s.append(one["wall"])
        cli_cpu.append(one["ranks"][0]["cpu_s"])
        two_cpu = None
        cli_drv.append(one["driver_s"])
        share1.append(one["ranks"][0]["cpu_s"] / one["wall"])
        say(f"    1 rank : {one['wall']:6.2f} s wall ({n / one['wall']:.2f} samples/s), "
            f"driver {one['driver_s']} s, CPU {one['ranks'][0]['cpu_s']:.2f} s")
        if "a" in parts:
            two = run_campaign(tmp, 2, cfg, out)
            info2 = inspect(cfg, out)
            t2s.append(two["wall"])
            e = t1s[-1] / two["wall"] / 2
            eff.append(e)
            ed = one["driver_s"] / two["driver_s"] / 2 if two["driver_s"] else None
            eff_drv.append(ed)
            two_cpu = max(x["cpu_s"] for x in two["ranks"])
            ec = one["ranks"][0]["cpu_s"] / (2 * two_cpu)
            eff_cpu.append(ec)
            rc = [info2["rank_counts"].get(k, 0) for k in range(2)]
            share2.append(sum(x["cpu_s"] for x in two["ranks"]) / two["wall"])
            counts.append(rc)
            say(f"    2 ranks: {two['wall']:6.2f} s wall, driver {two['driver_s']} s, CPU per "
                f"rank {[round(x['cpu_s'], 2) for x in two['ranks']]} s, samples per rank {rc}"
                f"{'' if info2['all_done'] else ' NOT ALL DONE ' + str(info2['status_counts'])}")
            say(f"    efficiency {e:.3f} (driver time {ed:.3f}, CPU {ec:.3f}); cores used "
                f"(CPU s / wall s): {share1[-1]:.2f} by 1 rank, {share2[-1]:.2f} by 2 ranks")
        if "b" in parts:
            b = run_bare(tmp, cfg)
            bare.append(b)
            f1 = run_campaign(tmp, 1, cfg1, tmp / "fixed.h5")
            fixed.append(f1["wall"])
            fixed_cpu.append(f1["ranks"][0]["cpu_s"])
            if two_cpu is not None:
                f = fixed_cpu[-1]
                eff_cpu_net.append((cli_cpu[-1] - f) / (2 * (two_cpu - f)))
                say(f"    CPU efficiency without each rank's start-up CPU: {eff_cpu_net[-1]:.3f}")
            say(f"    bare loop: {b['loop_s']:6.2f} s wall ({n / b['loop_s']:.2f} samples/s), "
                f"CPU {b['loop_cpu_s']:.2f} s, make_batch {b['make_batch_s']:.3f} s; "
                f"CLI fixed cost (1-sample campaign) {f1['wall']:.2f} s, "
                f"CPU {fixed_cpu[-1]:.2f} s")
            say(f"    CLI/bare wall time: {t1s[-1] / b['loop_s']:.3f} as is, "
                f"{(t1s[-1] - f1['wall']) / b['loop_s']:.3f} without the fixed cost; CPU time: "
                f"{cli_cpu[-1] / b['loop_cpu_s']:.3f} as is, "
                f"{(cli_cpu[-1] - fixed_cpu[-1]) / b['loop_cpu_s']:.3f} without")
    res.update(a_t1_s=[round(x, 3) for x in t1s], a_loadavg=loads)
    if "a" in parts:
        res.update(a_t2_s=[round(x, 3) for x in t2s], a_efficiency=[round(x, 4) for x in eff],
                   a_efficiency_median=round(median(eff), 4),
                   a_efficiency_min=round(min(eff), 4), a_efficiency_max=round(max(eff), 4),
                   a_efficiency_driver=[None if x is None else round(x, 4) for x in eff_drv],
                   a_efficiency_cpu=[round(x, 4) for x in eff_cpu], a_rank_counts=counts,
                   a_efficiency_cpu_net=[round(x, 4) for x in eff_cpu_net],
                   a_cores_used_1=[round(x, 3) for x in share1],
                   a_cores_used_2=[round(x, 3) for x in share2],
                   a_target_met=bool(median(eff) >= 0.90))
    if "b" in parts:
        loop = [b["loop_s"] for b in bare]
        ov = [t / lp - 1 for t, lp in zip(t1s, loop)]
        ov_net = [(t - fx) / lp - 1 for t, fx, lp in zip(t1s, fixed, loop)]
        ov_drv = [d / lp - 1 for d, lp in zip(cli_drv, loop) if d]
        ov_cpu = [c / b["loop_cpu_s"] - 1 for c, b in zip(cli_cpu, bare)]
        ov_cpu_net = [(c - fc) / b["loop_cpu_s"] - 1
                      for c, fc, b in zip(cli_cpu, fixed_cpu, bare)]
        bare_rate = [n / x for x in loop]
        cli_rate = [n / x for x in t1s]
        net_rate = [n / (t - fx) for t, fx in zip(t1s, fixed)]
        res.update(
            b_bare_s=[round(x, 3) for x in loop],
            b_bare_cpu_s=[round(b["loop_cpu_s"], 3) for b in bare],
            b_make_batch_s=[round(b["make_batch_s"], 4) for b in bare],
            b_bare_rate=[round(x, 3) for x in bare_rate],
            b_cli_rate=[round(x, 3) for x in cli_rate],
            b_fixed_s=[round(x, 3) for x in fixed],
            b_cli_net_rate=[round(x, 3) for x in net_rate],
            b_ratio=round(median([c / b for c, b in zip(cli_rate, bare_rate)]), 4),
            b_ratio_net=round(median([c / b for c, b in zip(net_rate, bare_rate)]), 4),
            b_overhead_pct=round(100 * median(ov), 2),
            b_overhead_net_pct=round(100 * median(ov_net), 2),
            b_overhead_driver_pct=round(100 * median(ov_drv), 2) if ov_drv else None,
            b_overhead_cpu_pct=round(100 * median(ov_cpu), 2),
            b_fixed_cpu_s=[round(x, 3) for x in fixed_cpu],
            b_overhead_cpu_net_pct=round(100 * median(ov_cpu_net), 2),
            b_target_met_cpu=bool(median(ov_cpu) <= 0.10),
            b_target_met=bool(median(ov) <= 0.10),
            b_target_met_net=bool(median(ov_net) <= 0.10))


def rss_slope_kb_per_block(rank: dict, n_blocks: int) -> float | None:
    """Least-squares slope of VmRSS over [max(30%, 5 s), 95%] of the run (after start-up),
    in KB per block; None for a rank with fewer than 10 blocks or a too short trace."""
    trace = [(t, kb) for t, kb in rank["trace"] if kb > 0]
    if len(trace) < 5 or n_blocks < 10:
        return None
    end = trace[-1][0]
    mid = [(t, kb) for t, kb in trace if max(0.3 * end, 5.0) <= t <= 0.95 * end]
    if len(mid) < 3:
        return None
    mt = sum(t for t, _ in mid) / len(mid)
    mk = sum(kb for _, kb in mid) / len(mid)
    var = sum((t - mt) ** 2 for t, _ in mid)
    if var == 0:
        return None
    slope = sum((t - mt) * (kb - mk) for t, kb in mid) / var  # KB per s
    return slope * rank["wall_s"] / n_blocks


def part_c(tmp: Path, args, res: dict) -> None:
    n, small, batch = args.scale_samples, args.scale_small, args.scale_batch
    say(f"  disk: {shutil.disk_usage(tmp).free / 2**30:.1f} GB free in {tmp}")
    cfg = write_config(tmp, "tiny_big", tiny_hh(n, batch))
    cfg_s = write_config(tmp, "tiny_small", tiny_hh(small, batch))
    out = tmp / "scale.h5"
    say(f"  {n} samples, blocks of {batch}, 2 ranks (progress from rank 0's log):")
    big = run_campaign(tmp, 2, cfg, out, poll=1.0, echo=True)
    info = inspect(cfg, out, n_check=2000)
    rc = [info["rank_counts"].get(k, 0) for k in range(2)]
    peak = [round(r["maxrss_kb"] / 1024, 1) for r in big["ranks"]]
    growth = [rss_slope_kb_per_block(r, rc[r["rank"]] // batch) for r in big["ranks"]]
    say(f"    {big['wall']:.1f} s wall ({n / big['wall']:.0f} samples/s), driver "
        f"{big['driver_s']} s; status {info['status_counts']}; per rank {rc}; "
        f"file {info['file_mb']:.1f} MB")
    say(f"    params of {info['params_checked']} random indices equal Sampler: "
        f"{info['params_equal']}; peak RSS per rank {peak} MB; VmRSS slope per rank "
        f"{[None if g is None else round(g, 2) for g in growth]} KB/block")
    out.unlink()
    say(f"  {small} samples, same model:")
    sm = run_campaign(tmp, 2, cfg_s, out, poll=1.0)
    info_s = inspect(cfg_s, out)
    peak_s = [round(r["maxrss_kb"] / 1024, 1) for r in sm["ranks"]]
    rc_s = [info_s["rank_counts"].get(k, 0) for k in range(2)]
    delta = max(a - b for a, b in zip(peak, peak_s))
    say(f"    {sm['wall']:.1f} s wall; all done {info_s['all_done']}; peak RSS per rank "
        f"{peak_s} MB; peak RSS growth {small} -> {n}: {delta:+.1f} MB (max over ranks)")
    out.unlink()
    one = run_campaign(tmp, 1, cfg_s, out)
    say(f"    the same {small} samples on 1 rank: {one['wall']:.1f} s wall, driver "
        f"{one['driver_s']} s: 2 ranks vs 1 speed-up {one['wall'] / sm['wall']:.2f} (wall), "
        f"{one['driver_s'] / sm['driver_s']:.2f} (driver); 2-rank split {rc_s}")
    out.unlink()
    res.update(c_small_1rank_wall_s=round(one["wall"], 2),
               c_small_speedup_2v1=round(one["wall"] / sm["wall"], 3),
               c_small_speedup_2v1_driver=round(one["driver_s"] / sm["driver_s"], 3),
               c_small_rank_counts=rc_s)
    res.update(c_n_samples=n, c_batch_size=batch, c_wall_s=round(big["wall"], 2),
               c_driver_s=big["driver_s"], c_rate=round(n / big["wall"], 1),
               c_status_counts=info["status_counts"], c_all_done=info["all_done"],
               c_rank_counts=rc, c_params_checked=info["params_checked"],
               c_params_equal=info["params_equal"], c_file_mb=round(info["file_mb"], 1),
               c_peak_rss_mb=peak, c_small_n_samples=small,
               c_small_wall_s=round(sm["wall"], 2), c_small_peak_rss_mb=peak_s,
               c_small_all_done=info_s["all_done"], c_rss_delta_mb=round(delta, 1),
               c_rss_growth_kb_per_block=[None if g is None else round(g, 2) for g in growth],
               c_memory_flat=bool(delta <= 32))


def part_d(tmp: Path, args, res: dict) -> None:
    k, n, batch = args.many_ranks, args.many_samples, args.many_batch
    cfg = write_config(tmp, "tiny_many", tiny_hh(n, batch))
    out = tmp / "many.h5"
    flags: list[str] = []
    say(f"  {k} ranks on {os.cpu_count()} cores, {n} samples in blocks of {batch}")
    run = run_campaign(tmp, k, cfg, out, mpiexec_flags=flags, timeout=1800)
    info = inspect(cfg, out, batch=batch)
    counts = [info["rank_counts"].get(r, 0) for r in range(k)]
    seen = sum(1 for c in counts if c > 0)
    once = info["all_done"] and run["ran"] == n
    say(f"    {run['wall']:.1f} s wall, driver {run['driver_s']} s; status "
        f"{info['status_counts']}; ranks that ran samples {seen}/{k}; reported run "
        f"{run['ran']} of {n}; each block by one rank {info['blocks_single_rank']}")
    say(f"    samples per rank {counts}")
    res.update(mpiexec_flags=flags, d_n_ranks=k, d_n_samples=n, d_batch_size=batch,
               d_wall_s=round(run["wall"], 2), d_rank_counts=counts, d_ranks_seen=seen,
               d_ran_total=run["ran"], d_all_done=info["all_done"],
               d_blocks_single_rank=info["blocks_single_rank"], d_exactly_once=bool(once),
               d_ok=bool(once and seen == k))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, smoke run (< 2 min)")
    p.add_argument("--only", default="abcd", help="parts to run, e.g. a,b or cd")
    p.add_argument("--repeats", type=int, help="repeats of (a)/(b) (default 2; quick 1)")
    p.add_argument("--a-samples", type=int, help="(a)/(b) samples (default 160; quick 40)")
    p.add_argument("--a-batch", type=int, default=10, help="(a)/(b) block size")
    p.add_argument("--scale-samples", type=int, help="(c) big run (default 1_000_000)")
    p.add_argument("--scale-small", type=int, help="(c) small run (default 100_000)")
    p.add_argument("--scale-batch", type=int, default=2000, help="(c) block size")
    p.add_argument("--many-ranks", type=int, default=16, help="(d) ranks")
    p.add_argument("--many-samples", type=int, help="(d) samples (default 48000)")
    p.add_argument("--many-batch", type=int, help="(d) block size (default 500)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = p.parse_args()
    q = args.quick
    args.repeats = args.repeats or (1 if q else 2)
    args.a_samples = args.a_samples or (40 if q else 160)
    args.scale_samples = args.scale_samples or (100_000 if q else 1_000_000)
    args.scale_small = args.scale_small or (20_000 if q else 100_000)
    args.many_samples = args.many_samples or (8000 if q else 48_000)
    args.many_batch = args.many_batch or (250 if q else 500)
    parts = "".join(c for c in "abcd" if c in args.only.lower())

    res: dict = {"quick": q, "cpu_count": os.cpu_count(), "loadavg_start": load(),
                 "parts": parts}
    tmp = Path(tempfile.mkdtemp(prefix="bench_driver_", dir="/tmp"))
    say(f"bench_driver: parts {parts}, temp dir {tmp}, {os.cpu_count()} cores, "
        f"load {load()}")
    started = time.time()
    failed = None
    try:
        if "a" in parts or "b" in parts:
            say(f"(a)/(b) cortical model, shortened protocols, {args.a_samples} samples, "
                f"blocks of {args.a_batch}, {args.repeats} repeat(s)")
            part_ab(tmp, args, parts, res)
            if "a" in parts:
                say(f"(a) efficiency 2 vs 1 rank: median {res['a_efficiency_median']:.3f} "
                    f"(range {res['a_efficiency_min']:.3f}-{res['a_efficiency_max']:.3f}); "
                    f"target >= 0.90 {'met' if res['a_target_met'] else 'NOT met'}")
            if "b" in parts:
                say(f"(b) CLI/bare throughput ratio {res['b_ratio']:.3f} "
                    f"(overhead {res['b_overhead_pct']:+.1f}%), without fixed cost "
                    f"{res['b_ratio_net']:.3f} ({res['b_overhead_net_pct']:+.1f}%), driver "
                    f"time {res['b_overhead_driver_pct']:+.1f}%, CPU "
                    f"{res['b_overhead_cpu_pct']:+.1f}% (without start-up "
                    f"{res['b_overhead_cpu_net_pct']:+.1f}%); target <= 10%: "
                    f"{'met' if res['b_target_met'] else 'NOT met'} as is, "
                    f"{'met' if res['b_target_met_net'] else 'NOT met'} without start-up, "
                    f"{'met' if res['b_target_met_cpu'] else 'NOT met'} in CPU time")
            say(f"  load now {load()}")
        if "c" in parts:
            say(f"(c) scale (load {load()})")
            part_c(tmp, args, res)
            say(f"(c) all {res['c_n_samples']} done: {res['c_all_done']}, params equal: "
                f"{res['c_params_equal']}, memory flat: {res['c_memory_flat']}")
        if "d" in parts:
            say(f"(d) many ranks (load {load()})")
            part_d(tmp, args, res)
            say(f"(d) every sample written exactly once by {res['d_ranks_seen']} ranks: "
                f"{res['d_ok']}")
    except BenchError as exc:
        failed = str(exc)
        say(f"FAILED: {exc}")
        res["error"] = failed.splitlines()[0]
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    res["loadavg_end"] = load()
    res["total_s"] = round(time.time() - started, 1)
    say(f"done in {res['total_s']} s, load {res['loadavg_end']}")
    print(json.dumps(res, sort_keys=False))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
