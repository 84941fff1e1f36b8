#!/usr/bin/env python
"""Benchmark valid-model populations: MCMC (batched chains) vs uniform sampling vs a
one-chain-per-process BluePyOpt Metropolis loop, on configs/cortical.yaml's model.

    python scripts/bench_mcmc.py              # ~13 CPU minutes on this machine
    python scripts/bench_mcmc.py --quick      # smoke run, ~1 CPU minute (+ installs)
    options: --uniform N --chains C --steps S --burn-in B --proposal-std X
             --peer-steps K --peer-fixed-dt-steps K --no-peer --no-install

Everything runs serially in this process, on one core (OMP/BLAS threads set to 1), and
is timed in CPU seconds (time.process_time), which other load on a shared machine
disturbs far less than wall time (wall time is reported too):

1. uniform: configs/cortical.yaml's campaign (its bounds, protocols, features and
   validity rules) with N samples, through hpcneuro.campaign.simulate into a temporary
   RESULTS.h5. Valid = every validity rule met.
2. MCMC: configs/cortical-mcmc.yaml (the same model and rules, C chains of S steps,
   blocks of simulation.batch_size chains, one batched NEURON run per step) through the
   same simulate. Valid = distinct accepted states after burn-in with cost < 3 (all
   z-scores within 3 std; range rules met), the store's ``valid`` field; checked to be
   distinct rows and to meet the uniform run's validity rules.
   R-hat (split, rank-normalised) and bulk ESS per parameter from hpcneuro.mcmc.diagnostics.
3. The reference, emodel-generalisation's MarkovChain: pip-installed on demand into its
   own virtualenv (~/.cache/hpcneuro/peers/emodel-generalisation) and probed. It cannot
   evaluate this campaign's protocols (see REFERENCE_LIMITATION below, printed and in the
   JSON), so what is measured instead, labelled as such, is what that code does per
   chain: a one-chain-per-process Metropolis loop whose every proposal is one BluePyOpt
   evaluation (ephys.models.CellModel rebuilt for every protocol run, CVode, as
   scripts/bench_simulation.py builds it; bluepyopt is pip-installed on demand by that
   script's helper), the rheobase found by the same bisection as hpcneuro (one BluePyOpt
   run per bisection step) and the 1.5x-rheobase step built per model; the same
   proposals, acceptance, cost and validity as hpcneuro's (hpcneuro.mcmc).

Figures: distinct valid models per CPU second for each, and the ratios (goals: MCMC >=
5x uniform; ours >= 20x the BluePyOpt loop per core). Note that MCMC can beat uniform
sampling by at most 1 / (uniform valid fraction), since every MCMC proposal costs one
model evaluation and gives at most one distinct valid model; the same ratios at stricter
thresholds (cost < 2, < 1.5: fewer uniform samples qualify, computed from the same runs,
since the threshold does not steer the chains) show how the advantage grows as the
valid region shrinks.

The last line printed is one JSON object with these names:
  uniform        {n, cpu_s, wall_s, valid, valid_fraction, valid_per_cpu_s}
  mcmc           {n_chains, n_steps, burn_in, proposal_std, temperature, evaluated,
                  cpu_s, wall_s, valid, distinct_valid, valid_meet_rules, acceptance,
                  rhat (per parameter), max_rhat, rhat_ok (max < 1.1), ess_bulk,
                  valid_per_cpu_s}
  ratio_mcmc_vs_uniform          MCMC / uniform distinct valid per CPU second (cost < 3)
  ratio_bound_mcmc_vs_uniform    1 / uniform valid fraction: the most MCMC can reach
  stricter       {threshold: {uniform_valid, mcmc_valid, ratio}} for 2.0 and 1.5
  reference      {installed, version, runnable, why_not}
  bluepyopt_loop {label, n_steps, cpu_s, valid, valid_per_cpu_s, acceptance,
                  cpu_s_per_evaluation, feature_max_rel_diff (vs hpcneuro at one point)}
  ratio_per_core_vs_bluepyopt_loop   MCMC / BluePyOpt loop distinct valid per CPU second
  ratio_per_evaluation_vs_bluepyopt_loop  BluePyOpt loop / MCMC CPU seconds per evaluation
  bluepyopt_loop_fixed_dt, ratio_per_evaluation_vs_bluepyopt_loop_fixed_dt
                 the loop again with BluePyOpt on the config's fixed dt (hpcneuro's
                 integrator), fewer steps: its CPU seconds per evaluation
  load_average, elapsed_s, versions
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import hpcneuro  # noqa: E402
from hpcneuro import config as configuration  # noqa: E402
from hpcneuro import features as hfeatures  # noqa: E402
from hpcneuro import protocols as prot  # noqa: E402
from hpcneuro.campaign import simulate  # noqa: E402
from hpcneuro.mcmc import cost as costs  # noqa: E402
from hpcneuro.mcmc import diagnostics, metropolis  # noqa: E402
from hpcneuro.store import ResultsStore  # noqa: E402

UNIFORM = ROOT / "configs" / "cortical.yaml"
MCMC = ROOT / "configs" / "cortical-mcmc.yaml"
PEER_VENV = Path(os.environ.get("HPCNEURO_CACHE", Path.home() / ".cache" / "hpcneuro")) \
    / "peers" / "emodel-generalisation"
THRESHOLD = 3.0
STRICTER = (2.0, 1.5)

REFERENCE_LIMITATION = (
    "emodel-generalisation's MarkovChain evaluates every proposal through "
    "emodel_generalisation.model.evaluation (single_feature_evaluation -> "
    "get_evaluator_from_access_point), a BluePyEModel-style evaluator built from an "
    "AccessPoint (recipes.json, parameters.json, features.json): a threshold-relative "
    "step (ThresholdBasedProtocol, thresh_perc) only exists behind its fixed "
    "pre-protocols RMPProtocol, SearchHoldingCurrent (a holding current found for a "
    "target voltage), RinProtocol (its own -0.02 nA-relative step at that holding) and "
    "SearchThresholdCurrent (its own threshold search); cortical.yaml's protocols (no "
    "holding current, a -0.2 nA step, a rheobase by bisection of 200 ms steps in "
    "[0, 1] nA to 0.01 nA, a 1.5x-rheobase step) cannot be expressed in it without "
    "changing its code, so it cannot run the same protocols and targets; the "
    "one-chain-per-process BluePyOpt Metropolis loop below is measured instead")


def say(*args) -> None:
    print(*args, flush=True)


def cpu_wall():
    return time.process_time(), time.perf_counter()


def load(path: Path, **sampling) -> dict:
    raw = yaml.safe_load(path.read_text())
    raw["sampling"].update(sampling)
    return configuration.validate(raw, path.parent)


# --- 1 and 2: hpcneuro campaigns -----------------------------------------------------------

def run_campaign(cfg: dict, output: Path) -> dict:
    c0, w0 = cpu_wall()
    summary = simulate(cfg, str(output))
    c1, w1 = cpu_wall()
    with ResultsStore.read(output) as f:
        cols = {k: f.column(k) for k in ("params", "features", "status", "valid", "accepted",
                                         "step", "cost")}
    return {"cpu_s": c1 - c0, "wall_s": w1 - w0, "summary": summary, **cols}


def uniform_part(n: int, tmp: Path) -> tuple[dict, dict]:
    cfg = load(UNIFORM, n_samples=n)
    say(f"uniform: {n} samples of {UNIFORM.name} ...")
    r = run_campaign(cfg, tmp / "uniform.h5")
    valid = int(r["valid"].sum())
    names = configuration.feature_names(cfg)
    c = costs.cost(r["features"], names, cfg["validity"], "max", r["status"] == 1)
    out = {"n": n, "cpu_s": r["cpu_s"], "wall_s": r["wall_s"], "valid": valid,
           "valid_fraction": valid / n, "valid_per_cpu_s": valid / r["cpu_s"],
           "cpu_s_per_evaluation": r["cpu_s"] / n}
    say(f"  {valid} valid of {n} ({100 * valid / n:.1f}%) in {r['cpu_s']:.1f} CPU s: "
        f"{out['valid_per_cpu_s']:.3f} valid models per CPU second")
    return out, {"cost": c, "cpu_s": r["cpu_s"]}


def mcmc_part(a, tmp: Path) -> tuple[dict, dict]:
    cfg = load(MCMC, n_chains=a.chains, n_steps=a.steps, burn_in=a.burn_in,
               proposal_std=a.proposal_std)
    s = cfg["sampling"]
    say(f"MCMC: {s['n_chains']} chains x {s['n_steps']} steps (burn-in {s['burn_in']}, "
        f"proposal_std {s['proposal_std']}, T {s['temperature']}), blocks of "
        f"{cfg['simulation']['batch_size']} ...")
    out_path = tmp / "mcmc.h5"
    r = run_campaign(cfg, out_path)
    valid = r["valid"] == 1
    distinct = np.unique(r["params"][valid], axis=0).shape[0]
    names = configuration.feature_names(cfg)
    meet = hfeatures.is_valid(r["features"][valid], names, cfg["validity"])
    d = diagnostics.read(out_path)
    n = s["n_chains"] * s["n_steps"]
    out = {"n_chains": s["n_chains"], "n_steps": s["n_steps"], "burn_in": s["burn_in"],
           "proposal_std": s["proposal_std"], "temperature": s["temperature"],
           "evaluated": n, "cpu_s": r["cpu_s"], "wall_s": r["wall_s"],
           "cpu_s_per_evaluation": r["cpu_s"] / n,
           "valid": int(valid.sum()), "distinct_valid": int(distinct),
           "valid_meet_rules": float(meet.mean()) if meet.size else float("nan"),
           "acceptance": float(np.nanmean(d.acceptance)),
           "rhat": dict(zip(d.parameters, np.round(d.rhat, 4).tolist())),
           "max_rhat": d.max_rhat, "rhat_ok": bool(d.max_rhat < diagnostics.RHAT_OK),
           "ess_bulk": dict(zip(d.parameters, np.round(d.ess, 1).tolist())),
           "valid_per_cpu_s": distinct / r["cpu_s"]}
    say(f"  {distinct} distinct valid states ({valid.sum()} valid rows, "
        f"{100 * out['valid_meet_rules']:.1f}% meet cortical.yaml's rules) of {n} "
        f"evaluated, in {r['cpu_s']:.1f} CPU s: {out['valid_per_cpu_s']:.3f} per CPU second")
    say(f"  acceptance {out['acceptance']:.3f}; R-hat max {d.max_rhat:.3f} "
        f"({'all < 1.1' if out['rhat_ok'] else 'NOT all < 1.1'}); "
        f"bulk ESS min {np.nanmin(d.ess):.0f}")
    extra = {"accepted": r["accepted"] == 1, "step": r["step"], "cost": r["cost"],
             "burn_in": s["burn_in"], "cpu_s": r["cpu_s"], "cfg": cfg}
    return out, extra


# --- 3: the reference, and the BluePyOpt loop --------------------------------------------

def probe_reference(install: bool) -> dict:
    """Install emodel-generalisation into its own virtualenv (on demand) and import it."""
    python = PEER_VENV / "bin" / "python"
    info = {"installed": False, "version": None, "runnable": False,
            "why_not": REFERENCE_LIMITATION, "venv": str(PEER_VENV)}
    if not python.exists():
        if not install:
            info["why_not"] = "emodel-generalisation is not installed (--no-install)"
            return info
        say(f"installing emodel-generalisation into its own virtualenv {PEER_VENV} ...")
        PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
        for cmd in ([sys.executable, "-m", "venv", str(PEER_VENV)],
                    [str(python), "-m", "pip", "install", "-q", "emodel-generalisation"]):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
                info["why_not"] = f"{' '.join(cmd[:4])} failed: {' | '.join(tail)}"
                return info
    probe = ("import importlib.metadata as m; from emodel_generalisation.mcmc import "
             "MarkovChain; from emodel_generalisation.model.evaluation import "
             "get_evaluator_from_access_point; print(m.version('emodel-generalisation'))")
    proc = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    if proc.returncode != 0:
        info["why_not"] = "import failed: " + proc.stderr.strip()[-300:]
        return info
    info["installed"], info["version"] = True, proc.stdout.strip().splitlines()[-1]
    return info


class BluePyOptModel:
    """cortical.yaml's model, protocols and features evaluated by BluePyOpt, one model at
    a time (the cell rebuilt for every protocol run), CVode or the config's fixed dt."""

    def __init__(self, cfg: dict, folder: Path, cvode: bool = True):
        import bench_simulation as bs
        from bluepyopt import ephys

        self.ephys, self.cfg = ephys, cfg
        self.names = configuration.feature_names(cfg)
        self.protocols = {p["name"]: prot.Protocol.from_config(p) for p in cfg["protocols"]}
        absolute = [p for p in cfg["protocols"] if p["type"] != "rheobase"
                    and p.get("amplitude_rel") is None]
        keep = {p["name"] for p in absolute}
        sub = copy.deepcopy(cfg)
        sub["protocols"] = absolute
        sub["features"] = [f for f in cfg["features"] if f.split(".")[0] in keep]
        self.cell, self.sweeps, feats = bs.build_bluepyopt(sub, folder)
        self.features = [(self.names.index(sub["features"][col]), pname, f)
                         for col, pname, f in feats]
        self.soma = ephys.locations.NrnSeclistCompLocation("soma", seclist_name="somatic",
                                                           sec_index=0, comp_x=0.5)
        self.sim = (ephys.simulators.NrnSimulator(cvode_active=True) if cvode else
                    ephys.simulators.NrnSimulator(dt=cfg["simulation"]["dt"],
                                                  cvode_active=False))
        self.params = [p["name"] for p in cfg["parameters"]]
        self.relative = [self.protocols[p["name"]] for p in cfg["protocols"]
                         if p.get("amplitude_rel") is not None]
        self.rel_features = []
        for p in self.relative:
            for col, name in enumerate(self.names):
                pname, _, efel_name = name.partition(".")
                if pname == p.name:
                    start, end = p.stim_window
                    self.rel_features.append((col, p, ephys.efeatures.eFELFeature(
                        name, efel_feature_name=efel_name,
                        recording_names={"": f"{p.name}.soma.v"}, stim_start=start,
                        stim_end=end)))

    def _sweep(self, name: str, amplitude: float, p: prot.Protocol):
        e = self.ephys
        stim = e.stimuli.NrnSquarePulse(step_amplitude=amplitude, step_delay=p.delay,
                                        step_duration=p.duration, total_duration=p.tstop,
                                        location=self.soma)
        rec = e.recordings.CompRecording(name=f"{name}.soma.v", location=self.soma,
                                         variable="v")
        return e.protocols.SweepProtocol(name, [stim], [rec])

    def _fires(self, values: dict, p: prot.Protocol, amplitude: float) -> bool:
        resp = self._sweep("rheo", amplitude, p).run(self.cell, values, sim=self.sim,
                                                     isolate=False)["rheo.soma.v"]
        t, v = np.asarray(resp["time"]), np.asarray(resp["voltage"])[None, :]
        return bool(prot.spike_counts(t, v, p.delay, p.delay + p.duration)[0] > 0)

    def rheobase(self, values: dict, p: prot.Protocol) -> float:
        """hpcneuro's bisection (protocols.find_rheobase), one BluePyOpt run per step."""
        lo, hi = p.low, p.high
        ok = self._fires(values, p, hi) and not self._fires(values, p, lo)
        steps = max(0, int(np.ceil(np.log2((p.high - p.low) / p.tolerance))))
        for _ in range(steps):
            mid = 0.5 * (lo + hi)
            if self._fires(values, p, mid):
                hi = mid
            else:
                lo = mid
        return hi if ok else float("nan")

    def evaluate(self, row: np.ndarray) -> np.ndarray:
        values = dict(zip(self.params, (float(x) for x in row)))
        out = np.full(len(self.names), np.nan)
        context = {}
        for name, p in self.protocols.items():
            if p.type == "rheobase":
                context[name] = self.rheobase(values, p)
                col = self.names.index(f"{name}.rheobase") if f"{name}.rheobase" in \
                    self.names else None
                if col is not None:
                    out[col] = context[name]
        for pname, sweep in self.sweeps.items():
            responses = sweep.run(self.cell, values, sim=self.sim, isolate=False)
            for col, fname, feature in self.features:
                if fname == pname:
                    v = feature.calculate_feature(responses)
                    out[col] = np.nan if v is None else float(v)
        for p in self.relative:
            amp = p.amplitude_rel * context[p.relative_to]
            if not np.isfinite(amp):
                continue
            responses = self._sweep(p.name, amp, p).run(self.cell, values, sim=self.sim,
                                                         isolate=False)
            for col, q, feature in self.rel_features:
                if q is p:
                    v = feature.calculate_feature(responses)
                    out[col] = np.nan if v is None else float(v)
        return out


def bluepyopt_loop(cfg: dict, n_steps: int, burn_in: int, tmp: Path, install: bool,
                   reference_row: tuple[np.ndarray, np.ndarray] | None,
                   cvode: bool = True) -> dict:
    """One chain, one process: every proposal is one BluePyOpt evaluation."""
    import bench_simulation as bs
    from hpcneuro.mechanisms import load_mechanisms

    bpo, why, _ = bs.ensure_bluepyopt(install)
    label = ("one-chain-per-process Metropolis loop, each proposal evaluated by BluePyOpt "
             f"(CellModel rebuilt per run, {'CVode' if cvode else 'fixed dt'}): what "
             "emodel-generalisation's MarkovChain does per chain; NOT "
             "emodel-generalisation itself")
    if bpo is None:
        return {"label": label, "error": why}
    load_mechanisms(cfg["model"]["mod_dirs"])
    model = BluePyOptModel(cfg, tmp, cvode)
    s, names = cfg["sampling"], configuration.feature_names(cfg)
    seed, chain = int(cfg["seed"]), np.array([0])
    diff = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if reference_row is not None:  # agreement with hpcneuro on one model
            x_ref, f_ref = reference_row
            f = model.evaluate(x_ref)
            ok = np.isfinite(f) & np.isfinite(f_ref)
            diff = float(np.max(np.abs(f[ok] - f_ref[ok]) / np.maximum(np.abs(f_ref[ok]),
                                                                        1e-9)))
        c0, w0 = cpu_wall()
        x = cost = None
        valid = accepted = 0
        states = set()
        for step in range(n_steps):
            if step == 0:
                for attempt in range(10):
                    prop = metropolis.start_points(seed, chain, attempt, cfg["parameters"])
                    feats = model.evaluate(prop[0])[None, :]
                    c = costs.cost(feats, names, cfg["validity"], s["cost"])
                    if np.isfinite(c[0]):
                        break
                acc = np.array([True])
            else:
                prop, _ = metropolis.propose(seed, chain, np.array([step]), x,
                                             s["proposal_std"], cfg["parameters"])
                try:
                    feats = model.evaluate(prop[0])[None, :]
                    c = costs.cost(feats, names, cfg["validity"], s["cost"])
                except Exception:  # noqa: BLE001 - a failed proposal is rejected
                    c = np.array([np.nan])
                acc = metropolis.accept(seed, chain, np.array([step]), cost, c,
                                        s["temperature"])
                accepted += int(acc[0])
            if acc[0]:
                x, cost = prop, c
                if step >= burn_in and c[0] < THRESHOLD:
                    valid += 1
                    states.add(tuple(prop[0]))
        c1, w1 = cpu_wall()
    cpu = c1 - c0
    return {"label": label, "n_steps": n_steps, "burn_in": burn_in, "cpu_s": cpu,
            "wall_s": w1 - w0, "valid": len(states), "valid_per_cpu_s": len(states) / cpu,
            "acceptance": accepted / max(1, n_steps - 1),
            "cpu_s_per_evaluation": cpu / n_steps, "feature_max_rel_diff": diff,
            "bluepyopt_version": bpo.__version__}


# --- main ---------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run (small sizes)")
    ap.add_argument("--uniform", type=int, default=None, help="uniform samples (800)")
    ap.add_argument("--chains", type=int, default=None, help="MCMC chains (16)")
    ap.add_argument("--steps", type=int, default=None, help="steps per chain (300)")
    ap.add_argument("--burn-in", type=int, default=None, help="burn-in steps (75)")
    ap.add_argument("--proposal-std", type=float, default=None, help="proposal std (config's)")
    ap.add_argument("--peer-steps", type=int, default=None, help="BluePyOpt loop steps (40)")
    ap.add_argument("--peer-fixed-dt-steps", type=int, default=None,
                    help="steps of the BluePyOpt loop again with fixed dt (10; 0: skip)")
    ap.add_argument("--no-peer", action="store_true", help="skip the reference and the loop")
    ap.add_argument("--no-install", action="store_true", help="do not pip-install peers")
    a = ap.parse_args()
    q = a.quick
    a.uniform = a.uniform or (100 if q else 800)
    a.chains = a.chains or (8 if q else 16)
    a.steps = a.steps or (16 if q else 300)
    a.burn_in = a.burn_in if a.burn_in is not None else (4 if q else 75)
    a.proposal_std = a.proposal_std or yaml.safe_load(MCMC.read_text())["sampling"][
        "proposal_std"]
    a.peer_steps = a.peer_steps or (5 if q else 40)
    if a.peer_fixed_dt_steps is None:
        a.peer_fixed_dt_steps = 2 if q else 10
    started = time.time()
    say(f"bench_mcmc on {platform.node()}: load average {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} cores (a shared machine: CPU-second figures are robust, "
        "wall times are not)")
    fig: dict = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        fig["uniform"], u = uniform_part(a.uniform, tmp)
        fig["mcmc"], m = mcmc_part(a, tmp)
        fig["ratio_mcmc_vs_uniform"] = fig["mcmc"]["valid_per_cpu_s"] / max(
            fig["uniform"]["valid_per_cpu_s"], 1e-12)
        fig["ratio_bound_mcmc_vs_uniform"] = 1.0 / max(fig["uniform"]["valid_fraction"], 1e-12)
        say(f"MCMC vs uniform: {fig['ratio_mcmc_vs_uniform']:.2f}x distinct valid models per "
            f"CPU second (goal >= 5x; at most {fig['ratio_bound_mcmc_vs_uniform']:.2f}x is "
            "possible at this validity: 1 / the uniform valid fraction)")
        fig["stricter"] = {}
        kept = m["accepted"] & (m["step"] >= m["burn_in"])
        for t in STRICTER:
            uv = int(np.sum(u["cost"] < t))
            mv = int(np.sum(kept & (m["cost"] < t)))
            ratio = (mv / m["cpu_s"]) / (uv / u["cpu_s"]) if uv else None  # None: no uniform
            fig["stricter"][str(t)] = {"uniform_valid": uv, "mcmc_valid": mv, "ratio": ratio}
            say(f"  at cost < {t}: uniform {uv} of {a.uniform}, MCMC {mv} distinct: "
                + (f"{ratio:.2f}x" if ratio is not None else "n/a (no uniform sample "
                   "qualifies)"))
        if not a.no_peer:
            fig["reference"] = probe_reference(not a.no_install)
            say(f"reference: emodel-generalisation {fig['reference']['version'] or '-'} "
                f"installed: {fig['reference']['installed']}; runnable here: no: "
                f"{fig['reference']['why_not']}")
            cfg = m["cfg"]
            with ResultsStore.read(tmp / "mcmc.h5") as f:
                ref = (f.column("params")[0], f.column("features")[0])
            say(f"BluePyOpt loop: 1 chain x {a.peer_steps} steps, one BluePyOpt evaluation "
                "per proposal ...")
            fig["bluepyopt_loop"] = loop = bluepyopt_loop(
                cfg, a.peer_steps, min(a.burn_in, a.peer_steps // 4), tmp, not a.no_install,
                ref)
            if "error" not in loop:
                fig["ratio_per_core_vs_bluepyopt_loop"] = (
                    fig["mcmc"]["valid_per_cpu_s"] / loop["valid_per_cpu_s"]
                    if loop["valid"] else None)  # None: the loop found no valid model
                fig["ratio_per_evaluation_vs_bluepyopt_loop"] = (
                    loop["cpu_s_per_evaluation"] / fig["mcmc"]["cpu_s_per_evaluation"])
                say(f"  {loop['valid']} distinct valid in {loop['cpu_s']:.1f} CPU s "
                    f"({loop['cpu_s_per_evaluation']:.2f} CPU s per evaluation, hpcneuro "
                    f"batched {fig['mcmc']['cpu_s_per_evaluation']:.3f}); features vs "
                    f"hpcneuro at one model: max relative difference "
                    f"{loop['feature_max_rel_diff']:.3g}")
                per_core = fig["ratio_per_core_vs_bluepyopt_loop"]
                say(f"  ours per core: "
                    + (f"{per_core:.1f}x" if per_core else "n/a (no valid model in the loop)")
                    + " distinct valid per CPU second (goal >= 20x); "
                    f"{fig['ratio_per_evaluation_vs_bluepyopt_loop']:.1f}x per evaluation")
            else:
                say(f"  not run: {loop['error']}")
            if "error" not in loop and a.peer_fixed_dt_steps:
                say(f"BluePyOpt loop with fixed dt {cfg['simulation']['dt']} ms (hpcneuro's "
                    f"integrator): 1 chain x {a.peer_fixed_dt_steps} steps ...")
                fixed = bluepyopt_loop(cfg, a.peer_fixed_dt_steps, 0, tmp, False, None, False)
                fig["bluepyopt_loop_fixed_dt"] = fixed
                fig["ratio_per_evaluation_vs_bluepyopt_loop_fixed_dt"] = (
                    fixed["cpu_s_per_evaluation"] / fig["mcmc"]["cpu_s_per_evaluation"])
                say(f"  {fixed['cpu_s_per_evaluation']:.2f} CPU s per evaluation: hpcneuro "
                    f"batched is {fig['ratio_per_evaluation_vs_bluepyopt_loop_fixed_dt']:.1f}x "
                    "faster per evaluation at the same time step")
    fig["load_average"] = os.getloadavg()
    fig["elapsed_s"] = time.time() - started
    import efel

    from hpcneuro.nrn import import_neuron

    fig["versions"] = {"hpcneuro": hpcneuro.__version__, "neuron": import_neuron().__version__,
                       "efel": efel.__version__, "python": platform.python_version()}
    print(json.dumps(fig, default=float))


if __name__ == "__main__":
    main()
