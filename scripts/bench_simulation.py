#!/usr/bin/env python
"""Benchmark NEURON simulation + eFEL: BluePyOpt vs hpcneuro one-at-a-time vs batched.

    python scripts/bench_simulation.py              # HH soma, one 1.5 s step, 5 features
    python scripts/bench_simulation.py --quick      # smoke run (fewer samples), ~1 min
    python scripts/bench_simulation.py --config configs/cortical.yaml --samples 10
    options: --samples N --batched-samples M --batch-size B --memory-batches K
             --no-bluepyopt --no-install --no-bluepyopt-fixed-dt --no-memory

The same model, protocols, features and N parameter sets (hpcneuro's Sampler, rows
0..N-1) are evaluated, in one process and on one core (OMP/BLAS threads set to 1):

1. BluePyOpt (the optional benchmark extra ``bluepyopt``, pip-installed on demand
   unless --no-install): an ephys.models.CellModel with a one-compartment soma read
   from an SWC file (NrnFileMorphology, no nseg rule: one segment as in hpcneuro),
   NrnMODMechanism(preloaded=True) for the config's mechanisms (hpcneuro's compiled
   library is loaded first), NrnSectionParameter for cm, Ra, fixed values, ion
   reversal potentials and the sampled parameters, NrnGlobalParameter for celsius and
   v_init; one ephys.protocols.SweepProtocol per protocol with NrnSquarePulse stimuli
   and a CompRecording at NrnSomaLocation; one ephys.efeatures.eFELFeature per feature.
   Each sample is ``protocol.run(cell, params, sim=sim, isolate=False)`` (the cell is
   rebuilt every run, as BluePyOpt does; isolate=False spares it a subprocess per run)
   then ``feature.calculate_feature(responses)`` per feature, serially. CVode on
   (BluePyOpt's default); also fixed dt (the config's simulation.dt).
2. hpcneuro one-at-a-time: ``simulation.mode: single``, ``simulation.evaluate_block``.
3. hpcneuro batched: ``simulation.mode: batched`` with ``batch_size`` B, on the
   config's engine (CoreNEURON by default) and again on NEURON's own.
Then, in a child process (clean memory), K consecutive batches of B cells on a short
step protocol (its length chosen so this part takes well under a minute) to show the resident
memory of a rank stays flat.

BluePyOpt runs only for configs it can express here: one-compartment soma, step /
rmp / input_resistance protocols with absolute amplitudes (fixed holding allowed), no
distance functions; otherwise it is skipped with the reason (the default model, from
configs/demo.yaml: Hodgkin-Huxley + pas, is always supported).

"Per core" rates are samples per CPU second of this single-threaded process
(time.process_time), which is robust to other load on a shared machine; wall-clock
rates are given too. Cell construction (hpcneuro builds its cells once per rank and
reuses them) is not timed; BluePyOpt's rebuild of the cell is, since it is part of
every BluePyOpt evaluation.

The last line printed is one JSON object with these names:
  config                  the config benchmarked ("builtin: ..." for the default)
  n_samples               N: samples evaluated by BluePyOpt and hpcneuro single
  n_samples_batched       samples evaluated by hpcneuro batched (>= N; first N shared)
  batch_size              B, cells per batched NEURON run
  protocols, features     protocol names and feature names (PROTOCOL.FEATURE)
  simulated_ms_per_sample sum of the protocols' tstop (ms)
  dt_ms, record_dt_ms     hpcneuro's fixed step and recording interval
  engine                  hpcneuro's engine for single and batched (coreneuron | neuron)
  versions                neuron, efel, hpcneuro, bluepyopt (null if absent), python
  bluepyopt_cvode_per_s   BluePyOpt, CVode: samples per CPU second (per core)
  bluepyopt_fixed_dt_per_s  BluePyOpt, fixed dt: samples per CPU second
  hpcneuro_single_per_s   hpcneuro one-at-a-time (fixed dt): samples per CPU second
  hpcneuro_batched_per_s  hpcneuro batched (fixed dt): samples per CPU second
  *_wall_per_s            the same four as samples per wall-clock second
  *_ms_per_sample         the same four as CPU ms per sample
  hpcneuro_single_efel_ms_per_sample, hpcneuro_batched_efel_ms_per_sample
                          the part of hpcneuro's CPU ms per sample spent in eFEL
                          (features.extract); the rest is NEURON and bookkeeping
  ratio_batched_vs_bluepyopt          hpcneuro_batched_per_s / bluepyopt_cvode_per_s
                                      (target >= 20)
  ratio_batched_vs_bluepyopt_fixed_dt hpcneuro_batched_per_s / bluepyopt_fixed_dt_per_s
  hpcneuro_batched_neuron_engine_per_s (and _wall_per_s, _ms_per_sample)
                          batched again with engine: neuron, when the engine is
                          coreneuron (null with --no-neuron-engine)
  ratio_batched_neuron_engine_vs_bluepyopt  its ratio to bluepyopt_cvode_per_s
  max_abs_diff_coreneuron_vs_neuron   largest |feature| difference between the two
                          engines over all batched samples (rounding only)
  ratio_batched_vs_single             hpcneuro_batched_per_s / hpcneuro_single_per_s
  ratio_single_vs_bluepyopt           hpcneuro_single_per_s / bluepyopt_cvode_per_s
  target_20x_met          ratio_batched_vs_bluepyopt >= 20 (null if BluePyOpt did not run)
  batch_build_s           wall time to build the B cells once (not in the rates)
  max_abs_diff_batched_vs_single      largest |feature batched - feature single| over
                          the first N samples, both fixed dt (expected 0)
  nan_mismatch_batched_vs_single      feature values NaN in one run but not the other
  status_mismatch_batched_vs_single   samples whose status differs
  max_abs_diff_vs_bluepyopt_cvode     per feature, largest |hpcneuro batched -
                          BluePyOpt CVode| over samples where both are defined
                          (informative: CVode and fixed dt differ), plus "all"
  max_abs_diff_vs_bluepyopt_fixed_dt  the same against BluePyOpt with fixed dt
  nan_mismatch_vs_bluepyopt_cvode, nan_mismatch_vs_bluepyopt_fixed_dt
                          feature values defined in one tool only
  bluepyopt_skipped       why BluePyOpt did not run (null if it ran)
  bluepyopt_installed_now true if this run pip-installed bluepyopt
  memory_batches          K consecutive batches of B cells in the memory child
  memory_tstop_ms         its step protocol's total time (ms)
  memory_seconds          its wall time
  rss_before_mb           child's resident memory (VmRSS) after imports and loading
                          the mechanisms, before building the cells
  rss_after_first_batch_mb  after building the cells and running the first batch
  rss_after_batches_mb    after all K batches
  rss_growth_mb           rss_after_batches_mb - rss_after_first_batch_mb
  rss_growth_kb_per_batch rss_growth_mb in KB per batch after the first
  rss_envelope_growth_mb  highest RSS over the second half of the batches minus the
                          highest over the first half (after the first batch): RSS
                          swings by several MB between CoreNEURON runs, so endpoints
                          alone are noise; a leak raises this envelope
  rss_flat                rss_envelope_growth_mb <= 5 KB per batch of a half (0.25 MB
                          with the default K = 100; noisy for small K)
  rss_peak_mb             child's peak resident memory (VmHWM)
  rss_trace_mb            VmRSS after about every K/10 batches
  elapsed_s               wall time of the whole benchmark
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

import argparse  # noqa: E402
import copy  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
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

import hpcneuro  # noqa: E402
from hpcneuro import config as configuration  # noqa: E402
from hpcneuro import features as hfeatures  # noqa: E402
from hpcneuro import protocols as prot  # noqa: E402
from hpcneuro import simulation  # noqa: E402
from hpcneuro.mechanisms import load_mechanisms  # noqa: E402
from hpcneuro.nrn import import_neuron  # noqa: E402
from hpcneuro.sampling import Sampler  # noqa: E402

DEMO = ROOT / "configs" / "demo.yaml"
BENCH_STEP = {"name": "step", "type": "step", "amplitude": 0.3, "delay": 100.0,
              "duration": 1300.0, "tstop": 1500.0}
BENCH_FEATURES = ["step.mean_frequency", "step.AP_amplitude", "step.time_to_first_spike",
                  "step.AP_duration_half_width", "step.voltage_base"]
BPO_PROTOCOL_TYPES = ("step", "rmp", "input_resistance")
MEMORY_TARGET_S = 25.0  # estimate; fixed per-batch costs make it ~40 s


def say(*args) -> None:
    print(*args, flush=True)


# --- configs ---------------------------------------------------------------------

def bench_raw_config(path: str | None) -> tuple[dict, Path, str]:
    """(raw config dict, base dir, label): the given config, or demo's HH soma with one
    1.5 s step protocol and 5 eFEL features."""
    if path:
        p = Path(path)
        return yaml.safe_load(p.read_text()), p.resolve().parent, str(path)
    raw = yaml.safe_load(DEMO.read_text())
    raw["name"] = "bench_simulation"
    raw["description"] = "demo's Hodgkin-Huxley soma, one 1.5 s step, 5 eFEL features"
    raw["protocols"] = [dict(BENCH_STEP)]
    raw["features"] = list(BENCH_FEATURES)
    raw["validity"] = [{"feature": "step.mean_frequency", "low": 2, "high": 150},
                       {"feature": "step.AP_amplitude", "low": 60}]
    return raw, DEMO.parent, ("builtin: configs/demo.yaml model, one step 0.3 nA "
                              "100+1300 ms of 1500 ms, 5 eFEL features")


def resolve(raw: dict, base: Path, *, batch_size: int, n_samples: int, mode: str,
            engine: str | None = None) -> dict:
    raw = copy.deepcopy(raw)
    raw.setdefault("simulation", {})
    raw["simulation"] = dict(raw["simulation"] or {}, batch_size=batch_size, mode=mode)
    if engine:
        raw["simulation"]["engine"] = engine
    raw.setdefault("sampling", {})
    if raw["sampling"].get("method", "uniform") in ("uniform", "sobol", "lhs"):
        raw["sampling"]["n_samples"] = max(n_samples, int(raw["sampling"].get("n_samples")
                                                          or 0))
    return configuration.validate(raw, base)


def sample_rows(sampler: Sampler, indices: np.ndarray) -> np.ndarray:
    return sampler.sample(np.asarray(indices) % sampler.n_samples)


# --- hpcneuro ----------------------------------------------------------------------

def n_sections() -> int:
    h = import_neuron().h
    return sum(1 for _ in h.allsec())


class _TimedExtract:
    """Wraps hpcneuro.features.extract (looked up by the simulation step at call time) to split
    CPU time between NEURON and eFEL; the package itself is untouched."""

    def __init__(self):
        self.cpu = 0.0
        self._inner = None

    def __enter__(self):
        self._inner = hfeatures.extract
        self.cpu = 0.0

        def timed(*a, **k):
            t0 = time.process_time()
            try:
                return self._inner(*a, **k)
            finally:
                self.cpu += time.process_time() - t0

        hfeatures.extract = timed
        return self

    def __exit__(self, *exc):
        hfeatures.extract = self._inner


def run_hpcneuro(cfg: dict, params: np.ndarray, batch_size: int) -> dict:
    """Evaluate ``params`` in blocks of ``batch_size`` on one reused CellBatch."""
    protocols = prot.from_config(cfg)
    t0 = time.perf_counter()
    batch = simulation.make_batch(cfg, params.shape[0])
    build = time.perf_counter() - t0
    results = []
    with _TimedExtract() as efel_time:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for start in range(0, params.shape[0], batch_size):
            results.append(simulation.evaluate_block(batch, protocols, cfg,
                                                     params[start:start + batch_size]))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    del batch
    gc.collect()
    out = simulation._concat(results)  # noqa: SLF001 - the simulation step's own concatenation
    return {"features": out.features, "status": out.status, "errors": out.errors,
            "cpu": cpu, "wall": wall, "build": build, "efel_cpu": efel_time.cpu}


# --- BluePyOpt -----------------------------------------------------------------------

def ensure_bluepyopt(allow_install: bool) -> tuple[object | None, str | None, bool]:
    """(bluepyopt module or None, reason it is missing, installed now)."""
    try:
        import bluepyopt
        return bluepyopt, None, False
    except ImportError as exc:
        if not allow_install:
            return None, f"bluepyopt is not installed ({exc}) and --no-install was given", False
    say("bluepyopt is not installed: installing it (optional benchmark extra) with "
        f"{sys.executable} -m pip install bluepyopt ...")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "bluepyopt"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        return None, "pip install bluepyopt failed: " + " | ".join(tail), False
    importlib.invalidate_caches()
    try:
        import bluepyopt
    except ImportError as exc:
        return None, f"bluepyopt installed but not importable: {exc}", True
    say(f"installed bluepyopt {bluepyopt.__version__}")
    return bluepyopt, None, True


def bluepyopt_unsupported(cfg: dict) -> str | None:
    """Why this benchmark cannot express ``cfg`` in BluePyOpt, or None."""
    model = cfg["model"]
    if model["morphology"]:
        return "the BluePyOpt comparison supports the one-compartment soma only"
    for spec in cfg["parameters"]:
        if spec.get("distance_function"):
            return f"parameter {spec['name']} has a distance function"
    for p in cfg["protocols"]:
        if p["type"] not in BPO_PROTOCOL_TYPES:
            return (f"protocol {p['name']} is of type {p['type']}; the BluePyOpt comparison "
                    "supports step protocols (step, rmp, input_resistance) only")
        if p.get("amplitude_rel") is not None or p.get("holding_voltage") is not None:
            return (f"protocol {p['name']} uses a rheobase-relative amplitude or a holding "
                    "voltage; the BluePyOpt comparison supports absolute steps only")
    return None


def write_soma_swc(folder: Path, length: float, diam: float) -> Path:
    """A soma-only SWC that NEURON's Import3d turns into a cylinder length x diam."""
    r = diam / 2.0
    if abs(length - diam) < 1e-9:  # single-point soma: a cylinder with L = diam = 2r
        lines = [f"1 1 0 0 0 {r} -1"]
    else:  # three-point soma (NeuroMorpho convention): a cylinder of the given length
        lines = [f"1 1 0 0 0 {r} -1", f"2 1 0 {-length / 2} 0 {r} 1",
                 f"3 1 0 {length / 2} 0 {r} 1"]
    path = folder / "soma.swc"
    path.write_text("# one-compartment soma for bench_simulation.py\n" + "\n".join(lines) + "\n")
    return path


def ions_used(cfg: dict) -> set[str]:
    """Ions (na, k, ca) that the model's mechanisms use on its soma."""
    h = import_neuron().h
    sec = h.Section(name="bench_probe")
    for mech in cfg["model"]["mechanisms"]:
        if mech["sections"] in ("all", "soma"):
            sec.insert(mech["name"])
    used = {ion for ion in ("na", "k", "ca") if h.ismembrane(f"{ion}_ion", sec=sec)}
    del sec
    return used


def build_bluepyopt(cfg: dict, folder: Path):
    """(cell model, {protocol name: SweepProtocol}, [(feature col, eFELFeature)])."""
    from bluepyopt import ephys

    model = cfg["model"]
    swc = write_soma_swc(folder, model["soma"]["length"], model["soma"]["diam"])
    morph = ephys.morphologies.NrnFileMorphology(str(swc), do_set_nseg=False)
    somatic = ephys.locations.NrnSeclistLocation("somatic", seclist_name="somatic")
    all_loc = ephys.locations.NrnSeclistLocation("all", seclist_name="all")

    def where(section_list: str):
        # hpcneuro's other section lists are empty on a one-compartment soma
        return {"all": [all_loc], "soma": [somatic]}.get(section_list)

    mechs = [ephys.mechanisms.NrnMODMechanism(name=f"{m['name']}.{m['sections']}",
                                              suffix=m["name"], locations=where(m["sections"]),
                                              preloaded=True)
             for m in model["mechanisms"] if where(m["sections"])]
    params = [
        ephys.parameters.NrnGlobalParameter("celsius", param_name="celsius",
                                            value=model["celsius"], frozen=True),
        ephys.parameters.NrnGlobalParameter("v_init", param_name="v_init",
                                            value=model["v_init"], frozen=True),
        ephys.parameters.NrnSectionParameter("cm", param_name="cm", value=model["cm"],
                                             frozen=True, locations=[all_loc]),
        ephys.parameters.NrnSectionParameter("Ra", param_name="Ra", value=model["Ra"],
                                             frozen=True, locations=[all_loc]),
    ]
    used = ions_used(cfg)
    for ion, value in model["ion_reversal"].items():
        if value is not None and ion in used:
            params.append(ephys.parameters.NrnSectionParameter(
                f"e{ion}", param_name=f"e{ion}", value=value, frozen=True,
                locations=[all_loc]))
    for i, fixed in enumerate(model["fixed"]):
        if where(fixed["sections"]):
            params.append(ephys.parameters.NrnSectionParameter(
                f"fixed{i}.{fixed['variable']}_{fixed['mechanism']}",
                param_name=f"{fixed['variable']}_{fixed['mechanism']}", value=fixed["value"],
                frozen=True, locations=where(fixed["sections"])))
    for spec in cfg["parameters"]:
        if where(spec["sections"]):
            params.append(ephys.parameters.NrnSectionParameter(
                spec["name"], param_name=f"{spec['variable']}_{spec['mechanism']}",
                bounds=[spec["low"], spec["high"]], locations=where(spec["sections"])))
    cell = ephys.models.CellModel("bench_cell", morph=morph, mechs=mechs, params=params)

    soma_loc = ephys.locations.NrnSeclistCompLocation("soma", seclist_name="somatic",
                                                      sec_index=0, comp_x=0.5)
    protocols, windows = {}, {}
    for entry in cfg["protocols"]:
        p = prot.Protocol.from_config(entry)
        amplitude = 0.0 if p.type == "rmp" else p.amplitude
        stimuli = [ephys.stimuli.NrnSquarePulse(step_amplitude=amplitude, step_delay=p.delay,
                                                step_duration=p.duration or 0.0,
                                                total_duration=p.tstop, location=soma_loc)]
        if p.holding:
            stimuli.append(ephys.stimuli.NrnSquarePulse(
                step_amplitude=p.holding, step_delay=0.0, step_duration=p.tstop,
                total_duration=p.tstop, location=soma_loc))
        rec = ephys.recordings.CompRecording(name=f"{p.name}.soma.v", location=soma_loc,
                                             variable="v")
        protocols[p.name] = ephys.protocols.SweepProtocol(p.name, stimuli, [rec])
        windows[p.name] = (p.stim_window, amplitude)
    features = []
    for col, name in enumerate(configuration.feature_names(cfg)):
        pname, _, efel_name = name.partition(".")
        (start, end), amplitude = windows[pname]
        features.append((col, pname, ephys.efeatures.eFELFeature(
            name, efel_feature_name=efel_name, recording_names={"": f"{pname}.soma.v"},
            stim_start=start, stim_end=end, stimulus_current=amplitude)))
    return cell, protocols, features


def run_bluepyopt(cell, protocols: dict, features: list, cfg: dict, params: np.ndarray,
                  cvode: bool) -> dict:
    from bluepyopt import ephys

    sim = (ephys.simulators.NrnSimulator(cvode_active=True) if cvode else
           ephys.simulators.NrnSimulator(dt=cfg["simulation"]["dt"], cvode_active=False))
    names = [spec["name"] for spec in cfg["parameters"]]
    n_features = len(configuration.feature_names(cfg))

    def evaluate(row: np.ndarray) -> np.ndarray:
        values = dict(zip(names, (float(x) for x in row)))
        out = np.full(n_features, np.nan)
        for pname, protocol in protocols.items():
            responses = protocol.run(cell, values, sim=sim, isolate=False)
            for col, fname, feature in features:
                if fname != pname:
                    continue
                value = feature.calculate_feature(responses)
                if value is not None:
                    out[col] = float(value)
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate(params[0])  # warm-up: Import3d, eFEL settings
        cpu0, wall0 = time.process_time(), time.perf_counter()
        feats = np.vstack([evaluate(row) for row in params])
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"features": feats, "cpu": cpu, "wall": wall}


# --- comparisons ---------------------------------------------------------------------

def compare(a: np.ndarray, b: np.ndarray, names: list[str]) -> tuple[dict, int]:
    """Per-feature and overall max |a - b| where both are defined; NaN mismatches."""
    both = np.isfinite(a) & np.isfinite(b)
    diffs = {}
    for k, name in enumerate(names):
        d = np.abs(a[both[:, k], k] - b[both[:, k], k])
        diffs[name] = float(d.max()) if d.size else None
    finite = [v for v in diffs.values() if v is not None]
    diffs["all"] = max(finite) if finite else None
    return diffs, int(np.sum(np.isnan(a) != np.isnan(b)))


# --- memory (child process) ---------------------------------------------------------------

def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (VmRSS) or its peak (VmHWM), MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    # not Linux: ru_maxrss (KB on Linux, bytes on macOS) is the best we have
    scale = 1024.0 * (1024.0 if sys.platform == "darwin" else 1.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def memory_child(cfg_path: str, n_batches: int) -> None:
    cfg = json.loads(Path(cfg_path).read_text())
    load_mechanisms(cfg["model"]["mod_dirs"])
    import efel  # noqa: F401 - imported before the baseline, as in a campaign

    before = rss_mb()
    b = cfg["simulation"]["batch_size"]
    t0 = time.perf_counter()
    batch = simulation.make_batch(cfg, b)
    protocols = prot.from_config(cfg)
    sampler = Sampler(cfg)
    trace, every_batch, first = [], [], None
    every = max(1, n_batches // 10)
    for k in range(n_batches):
        params = sample_rows(sampler, np.arange(k * b, (k + 1) * b))
        simulation.evaluate_block(batch, protocols, cfg, params)
        every_batch.append(rss_mb())
        if k == 0:
            first = every_batch[0]
        if (k + 1) % every == 0 or k == n_batches - 1:
            trace.append(round(every_batch[-1], 2))
    after = rss_mb()
    # CoreNEURON allocates and frees its copy of the model every run, so RSS swings
    # by several MB from batch to batch: a leak shows as a rising upper envelope
    half = max(1, (n_batches - 1) // 2)
    envelope = max(every_batch[1 + half:] or [after]) - max(every_batch[1:1 + half] or [first])
    print(json.dumps({
        "rss_before_mb": round(before, 2), "rss_after_first_batch_mb": round(first, 2),
        "rss_after_batches_mb": round(after, 2), "rss_growth_mb": round(after - first, 2),
        "rss_growth_kb_per_batch": round(1024.0 * (after - first) / max(1, n_batches - 1), 2),
        "rss_envelope_growth_mb": round(envelope, 2),
        "rss_flat": bool(1024.0 * envelope / half <= 5.0),
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
        "rss_peak_mb": round(rss_mb("VmHWM"), 2),
        "rss_trace_mb": trace, "memory_seconds": round(time.perf_counter() - t0, 2)}))


def memory_config(raw: dict, base: Path, batch_size: int, n_batches: int,
                  tstop: float) -> dict:
    """The benchmark's model on one short step (an absolute step amplitude of the config,
    else 0.3 nA) with three eFEL features."""
    amplitude = next((p["amplitude"] for p in raw["protocols"]
                      if p.get("type", "step") == "step" and p.get("amplitude") is not None),
                     0.3)
    raw = copy.deepcopy(raw)
    raw["protocols"] = [{"name": "mem", "type": "step", "amplitude": amplitude,
                         "delay": round(0.2 * tstop, 3), "duration": round(0.6 * tstop, 3),
                         "tstop": tstop}]
    raw["features"] = ["mem.mean_frequency", "mem.AP_amplitude", "mem.voltage_base"]
    raw["validity"] = []
    return resolve(raw, base, batch_size=batch_size, n_samples=batch_size * n_batches,
                   mode="batched")


# --- main ------------------------------------------------------------------------------

def fmt(x, spec=".1f") -> str:
    return "n/a" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", help="campaign config to benchmark (default: configs/demo.yaml's "
                                     "HH soma with one 1.5 s step and 5 features)")
    ap.add_argument("--samples", type=int, default=None,
                    help="N samples for BluePyOpt and hpcneuro single (default 40, quick 8)")
    ap.add_argument("--batched-samples", type=int, default=None,
                    help="samples for hpcneuro batched (default max(N, 3B); quick max(N, B))")
    ap.add_argument("--batch-size", type=int, default=100, help="B cells per batch (100)")
    ap.add_argument("--memory-batches", type=int, default=None,
                    help="consecutive batches in the memory check (default 100, quick 20)")
    ap.add_argument("--quick", action="store_true", help="fewer samples: a smoke run")
    ap.add_argument("--no-bluepyopt", action="store_true", help="skip BluePyOpt")
    ap.add_argument("--no-bluepyopt-fixed-dt", action="store_true",
                    help="skip BluePyOpt's fixed-dt variant")
    ap.add_argument("--no-install", action="store_true",
                    help="do not pip-install bluepyopt when it is missing")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory check")
    ap.add_argument("--engine", choices=("coreneuron", "neuron"), default=None,
                    help="hpcneuro's engine for single and batched (default: the config's, "
                         "CoreNEURON unless it uses CVode)")
    ap.add_argument("--no-neuron-engine", action="store_true",
                    help="skip the extra batched run with engine: neuron")
    ap.add_argument("--memory-child", nargs=2, metavar=("CFG_JSON", "BATCHES"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return

    started = time.perf_counter()
    n = args.samples or (8 if args.quick else 40)
    b = args.batch_size
    n_batched = max(n, args.batched_samples or (b if args.quick else 3 * b))
    n_mem = args.memory_batches if args.memory_batches is not None else (20 if args.quick
                                                                          else 100)
    raw, base, label = bench_raw_config(args.config)
    cfg_single = resolve(raw, base, batch_size=b, n_samples=n_batched, mode="single",
                         engine=args.engine)
    cfg_batched = resolve(raw, base, batch_size=b, n_samples=n_batched, mode="batched",
                          engine=args.engine)
    names = configuration.feature_names(cfg_batched)
    sim = cfg_batched["simulation"]
    tstop_total = sum(p["tstop"] for p in cfg_batched["protocols"])
    load_mechanisms(cfg_batched["model"]["mod_dirs"])
    import efel

    neuron = import_neuron()
    params = sample_rows(Sampler(cfg_batched), np.arange(n_batched))
    say(f"config: {label}")
    say(f"protocols: {', '.join(p['name'] for p in cfg_batched['protocols'])} "
        f"({tstop_total:g} ms simulated per sample); features: {', '.join(names)}")
    say(f"N = {n} samples (BluePyOpt, hpcneuro single), {n_batched} batched in batches of "
        f"{b}; fixed dt {sim['dt']} ms, recording every {sim['record_dt']} ms; engine "
        f"{sim['engine']}; 1 core")
    out: dict = {"config": label, "n_samples": n, "n_samples_batched": n_batched,
                 "batch_size": b, "protocols": [p["name"] for p in cfg_batched["protocols"]],
                 "features": names, "simulated_ms_per_sample": tstop_total,
                 "dt_ms": sim["dt"], "record_dt_ms": sim["record_dt"],
                 "engine": sim["engine"],
                 "bluepyopt_skipped": None, "bluepyopt_installed_now": False}

    # 1. BluePyOpt, first: no hpcneuro cell may exist while it runs (NEURON would
    # integrate every section in the process)
    bpo = {}
    reason = "--no-bluepyopt" if args.no_bluepyopt else bluepyopt_unsupported(cfg_batched)
    bluepyopt = None
    if reason is None:
        bluepyopt, reason, out["bluepyopt_installed_now"] = ensure_bluepyopt(not args.no_install)
    if reason is None:
        with tempfile.TemporaryDirectory(prefix="bench_bpo.") as tmp:
            cell, bprotocols, bfeatures = build_bluepyopt(cfg_batched, Path(tmp))
            variants = [("cvode", True)] + ([] if args.no_bluepyopt_fixed_dt
                                            else [("fixed_dt", False)])
            for key, cvode in variants:
                say(f"BluePyOpt {bluepyopt.__version__} ({'CVode' if cvode else 'fixed dt'}): "
                    f"{n} samples ...")
                bpo[key] = run_bluepyopt(cell, bprotocols, bfeatures, cfg_batched, params[:n],
                                         cvode)
            del cell, bprotocols, bfeatures
            gc.collect()
    else:
        say(f"BluePyOpt skipped: {reason}")
        out["bluepyopt_skipped"] = reason
    left = n_sections()
    if left:
        say(f"warning: {left} NEURON sections left after BluePyOpt; they would be simulated "
            "along with hpcneuro's cells")

    # 2. hpcneuro one at a time (warm-up on sample 0 first: eFEL, NEURON's first run)
    say(f"hpcneuro single: {n} samples ...")
    run_hpcneuro(cfg_single, params[:1], 1)
    single = run_hpcneuro(cfg_single, params[:n], 1)
    left = n_sections()
    if left:
        say(f"warning: {left} NEURON sections left after hpcneuro single")

    # 3. hpcneuro batched
    say(f"hpcneuro batched: {n_batched} samples in batches of {b} ...")
    batched = run_hpcneuro(cfg_batched, params, b)
    out["batch_build_s"] = round(batched["build"], 3)
    nrn_batched = None
    if sim["engine"] == "coreneuron" and not args.no_neuron_engine:
        say(f"hpcneuro batched, engine neuron: {n_batched} samples in batches of {b} ...")
        cfg_nrn = copy.deepcopy(cfg_batched)
        cfg_nrn["simulation"]["engine"] = "neuron"
        nrn_batched = run_hpcneuro(cfg_nrn, params, b)

    # figures
    def rates(key: str, res: dict | None, count: int) -> None:
        if res is None:
            out[f"{key}_per_s"] = out[f"{key}_wall_per_s"] = out[f"{key}_ms_per_sample"] = None
            return
        out[f"{key}_per_s"] = round(count / res["cpu"], 3)
        out[f"{key}_wall_per_s"] = round(count / res["wall"], 3)
        out[f"{key}_ms_per_sample"] = round(1e3 * res["cpu"] / count, 3)

    rates("bluepyopt_cvode", bpo.get("cvode"), n)
    rates("bluepyopt_fixed_dt", bpo.get("fixed_dt"), n)
    rates("hpcneuro_single", single, n)
    rates("hpcneuro_batched", batched, n_batched)
    rates("hpcneuro_batched_neuron_engine", nrn_batched, n_batched)
    out["hpcneuro_single_efel_ms_per_sample"] = round(1e3 * single["efel_cpu"] / n, 3)
    out["hpcneuro_batched_efel_ms_per_sample"] = round(1e3 * batched["efel_cpu"] / n_batched, 3)

    def ratio(a: str, c: str):
        x, y = out[f"{a}_per_s"], out[f"{c}_per_s"]
        return None if x is None or y is None else round(x / y, 2)

    out["ratio_batched_vs_bluepyopt"] = ratio("hpcneuro_batched", "bluepyopt_cvode")
    out["ratio_batched_vs_bluepyopt_fixed_dt"] = ratio("hpcneuro_batched", "bluepyopt_fixed_dt")
    out["ratio_batched_neuron_engine_vs_bluepyopt"] = ratio("hpcneuro_batched_neuron_engine",
                                                            "bluepyopt_cvode")
    out["ratio_batched_vs_single"] = ratio("hpcneuro_batched", "hpcneuro_single")
    out["ratio_single_vs_bluepyopt"] = ratio("hpcneuro_single", "bluepyopt_cvode")
    out["target_20x_met"] = (None if out["ratio_batched_vs_bluepyopt"] is None
                             else out["ratio_batched_vs_bluepyopt"] >= 20)

    fb = batched["features"][:n]
    diffs, nan_mm = compare(fb, single["features"], names)
    out["max_abs_diff_batched_vs_single"] = diffs["all"] if diffs["all"] is not None else 0.0
    out["nan_mismatch_batched_vs_single"] = nan_mm
    out["status_mismatch_batched_vs_single"] = int(np.sum(batched["status"][:n]
                                                          != single["status"]))
    out["max_abs_diff_coreneuron_vs_neuron"] = None
    if nrn_batched is not None:
        d, _ = compare(batched["features"], nrn_batched["features"], names)
        out["max_abs_diff_coreneuron_vs_neuron"] = d["all"] if d["all"] is not None else 0.0
    for key in ("cvode", "fixed_dt"):
        if key in bpo:
            d, mm = compare(fb, bpo[key]["features"], names)
            out[f"max_abs_diff_vs_bluepyopt_{key}"] = d
            out[f"nan_mismatch_vs_bluepyopt_{key}"] = mm
        else:
            out[f"max_abs_diff_vs_bluepyopt_{key}"] = None
            out[f"nan_mismatch_vs_bluepyopt_{key}"] = None

    # 4. memory per rank over consecutive batches, in a clean child process
    if not args.no_memory and n_mem > 0:
        per_cell_ms = batched["cpu"] / (n_batched * tstop_total)  # CPU s per cell per sim ms
        tstop = float(np.clip(MEMORY_TARGET_S / (n_mem * b * per_cell_ms), 50.0, 1500.0))
        tstop = float(round(tstop, -1))
        mem_cfg = memory_config(raw, base, b, n_mem, tstop)
        say(f"memory: {n_mem} consecutive batches of {b} cells, one {tstop:g} ms step, "
            "in a child process ...")
        with tempfile.TemporaryDirectory(prefix="bench_mem.") as tmp:
            path = Path(tmp) / "cfg.json"
            path.write_text(configuration.dumps(mem_cfg))
            proc = subprocess.run([sys.executable, __file__, "--memory-child", str(path),
                                   str(n_mem)], capture_output=True, text=True,
                                  env=dict(os.environ))
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            say(f"memory check failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
            mem = {}
        else:
            mem = json.loads(lines[-1])
        out.update({"memory_batches": n_mem, "memory_tstop_ms": tstop, **mem})

    out["versions"] = {"neuron": str(neuron.__version__), "efel": str(efel.__version__),
                       "hpcneuro": hpcneuro.__version__,
                       "bluepyopt": None if bluepyopt is None else bluepyopt.__version__,
                       "python": platform.python_version()}
    out["elapsed_s"] = round(time.perf_counter() - started, 1)

    # report
    say("")
    say(f"{'way':34s} {'samples/s/core':>14s} {'ms CPU/sample':>14s} {'samples/s wall':>15s}")
    for key, title in (("bluepyopt_cvode", "BluePyOpt protocol run, CVode"),
                       ("bluepyopt_fixed_dt", "BluePyOpt protocol run, fixed dt"),
                       ("hpcneuro_single", "hpcneuro one-at-a-time, fixed dt"),
                       ("hpcneuro_batched", f"hpcneuro batched (B={b}), fixed dt")):
        say(f"{title:34s} {fmt(out[f'{key}_per_s'], '14.2f')} "
            f"{fmt(out[f'{key}_ms_per_sample'], '14.2f')} {fmt(out[f'{key}_wall_per_s'], '15.2f')}")
    say(f"  of which eFEL: single {out['hpcneuro_single_efel_ms_per_sample']:.2f} ms, batched "
        f"{out['hpcneuro_batched_efel_ms_per_sample']:.2f} ms per sample")
    target = out["target_20x_met"]
    say(f"batched / BluePyOpt (CVode): {fmt(out['ratio_batched_vs_bluepyopt'], '.1f')}x "
        f"(target >= 20x: {'met' if target else 'NOT met' if target is not None else 'n/a'}); "
        f"batched / BluePyOpt fixed dt: {fmt(out['ratio_batched_vs_bluepyopt_fixed_dt'])}x; "
        f"batched / single: {fmt(out['ratio_batched_vs_single'])}x")
    say(f"features batched vs single (fixed dt): max abs diff "
        f"{out['max_abs_diff_batched_vs_single']:.3g}, NaN mismatches "
        f"{out['nan_mismatch_batched_vs_single']}, status mismatches "
        f"{out['status_mismatch_batched_vs_single']}")
    for key, title in (("cvode", "CVode"), ("fixed_dt", "fixed dt")):
        d = out[f"max_abs_diff_vs_bluepyopt_{key}"]
        if d is not None:
            per = ", ".join(f"{k.split('.', 1)[-1]} {fmt(v, '.3g')}" for k, v in d.items()
                            if k != "all")
            say(f"features hpcneuro vs BluePyOpt {title} (informative), max abs diff: {per}; "
                f"NaN mismatches {out[f'nan_mismatch_vs_bluepyopt_{key}']}")
    if "rss_growth_mb" in out:
        say(f"memory per rank (RSS): {out['rss_before_mb']:.1f} MB before, "
            f"{out['rss_after_first_batch_mb']:.1f} MB after the first batch, "
            f"{out['rss_after_batches_mb']:.1f} MB after {n_mem} batches: growth "
            f"{out['rss_growth_mb']:+.2f} MB ({out['rss_growth_kb_per_batch']:+.1f} KB per "
            f"batch); highest RSS of the second half vs the first "
            f"{out['rss_envelope_growth_mb']:+.2f} MB "
            f"({'flat' if out['rss_flat'] else 'NOT flat'}); peak "
            f"{out['rss_peak_mb']:.1f} MB; trace {out['rss_trace_mb']}; "
            f"{out['memory_seconds']:.0f} s")
    failed = int(np.sum(batched["status"] != 1))
    if failed:
        say(f"note: {failed} of {n_batched} batched samples not done (status != 1), e.g. "
            f"{next(e for e in batched['errors'] if e)}")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
