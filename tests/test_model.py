"""Cell builder, protocols and batched simulation in real NEURON."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from hpcneuro import config as configuration
from hpcneuro import protocols as prot
from hpcneuro.simulation import evaluate_block, make_batch
from hpcneuro.model import CellBatch, distance_function
from hpcneuro.protocols import Protocol, find_rheobase, spike_counts
from hpcneuro.sampling import Sampler
from conftest import LEAK_MOD, ROOT, run_cli, small_config

SIM = {"dt": 0.025, "record_dt": 0.1, "engine": "coreneuron", "cvode": False, "local_dt": True, "atol": 1e-3,
       "mode": "batched", "batch_size": 8}


def resolved(cfg: dict) -> dict:
    return configuration.validate(cfg, ROOT / "configs")


def write_swc(path) -> None:
    """A soma (3-point), one basal dendrite, a 600 um apical trunk and an axon."""
    rows = ["1 1 0 0 0 8 -1", "2 1 0 -8 0 8 1", "3 1 0 8 0 8 1",
            "4 3 -8 0 0 1 1", "5 3 -100 0 0 0.8 4",
            "6 4 0 8 0 2 1", "7 4 0 300 0 1.5 6", "8 4 0 608 0 1 7",
            "9 2 0 -8 0 0.5 1", "10 2 0 -400 0 0.5 9"]
    path.write_text("# test neuron\n" + "\n".join(rows) + "\n")


def test_distance_function_is_safe_arithmetic():
    f = distance_function("-0.8696 + 2.087 * exp(0.0031 * distance)")
    assert f(0.0) == pytest.approx(-0.8696 + 2.087)
    assert f(100.0) == pytest.approx(-0.8696 + 2.087 * np.exp(0.31))
    with pytest.raises(ValueError):
        distance_function("distance.__class__")


def test_swc_morphology_section_lists_and_distance_gradient(tmp_path):
    swc = tmp_path / "cell.swc"
    write_swc(swc)
    cfg = small_config()
    cfg["model"].update(morphology=str(swc))  # hh at 6.3 degC: it blocks at 34
    cfg["model"]["mechanisms"] = [{"name": "pas"}, {"name": "hh", "sections": "soma"},
                                  {"name": "Ih", "sections": "apical"}]
    cfg["model"]["fixed"] = []
    cfg["parameters"] = [
        {"mechanism": "hh", "variable": "gnabar", "sections": "soma", "low": 0.1, "high": 0.2},
        {"mechanism": "Ih", "variable": "gbar", "sections": "apical", "low": 1e-5,
         "high": 1e-4, "distance_function": "exp(distance / 200)"},
        {"mechanism": "pas", "variable": "g", "low": 1e-5, "high": 1e-4}]
    cfg["analysis"]["max_order"] = 3
    cfg = resolved(cfg)
    batch = CellBatch(cfg["model"], 2, cfg["parameters"])
    lists = batch.cells[0]
    assert len(lists["soma"]) == 1 and lists["apical"] and lists["basal"] and lists["axon"]
    assert len(lists["all"]) == sum(len(lists[k]) for k in ("soma", "basal", "apical", "axon"))
    assert lists["dend"] == lists["basal"] + lists["apical"]
    assert all(sec.nseg % 2 == 1 for sec in lists["all"])
    assert sum(sec.nseg for sec in lists["apical"]) >= 600 / 40  # max_segment_length 40 um
    batch.set_parameters(np.array([[0.15, 5e-5, 3e-5], [0.12, 2e-5, 4e-5]]))
    distances = batch.distances(0, "apical")
    gbar = np.array([seg.Ih.gbar for sec in lists["apical"] for seg in sec])
    np.testing.assert_allclose(gbar, 5e-5 * np.exp(distances / 200), rtol=1e-12)
    assert distances.max() > 500 and gbar.max() / gbar.min() > np.exp(400 / 200)
    # uniform parameters land on every segment of their list; the second cell has its own
    assert all(seg.pas.g == 4e-5 for sec in batch.cells[1]["all"] for seg in sec)
    assert batch.cells[0]["soma"][0](0.5).hh.gnabar == 0.15
    assert not any(hasattr(seg, "Ih") for sec in lists["basal"] for seg in sec)
    # and the morphology simulates: a somatic step fires the soma's hh channels
    t, v = batch.run(2, 150, SIM, delay=20, duration=100, amplitudes=[1.0, 1.0])
    assert np.all(spike_counts(t, v, 20, 120) > 0)


def test_batched_and_one_at_a_time_features_are_identical_with_fixed_dt():
    cfg = resolved(small_config())
    params = Sampler(cfg).sample(np.arange(12))
    protocols = prot.from_config(cfg)
    cfg["simulation"]["batch_size"] = 12
    batched = evaluate_block(make_batch(cfg, 12), protocols, cfg, params)
    single_cfg = copy.deepcopy(cfg)
    single_cfg["simulation"]["mode"] = "single"
    single_batch = make_batch(single_cfg, 12)
    assert single_batch.size == 1
    single = evaluate_block(single_batch, protocols, single_cfg, params)
    np.testing.assert_array_equal(batched.features, single.features)
    np.testing.assert_array_equal(batched.status, single.status)
    assert np.isfinite(batched.features).sum() > 30


def test_rheobase_bisection_brackets_the_threshold_within_tolerance():
    cfg = resolved(small_config())
    batch = make_batch(cfg, 6)
    batch.set_parameters(Sampler(cfg).sample(np.arange(6)))
    p = Protocol(name="rheo", type="rheobase", tstop=180, delay=20, duration=150, low=0.0,
                 high=0.5, tolerance=0.002)
    rheobase = find_rheobase(batch, 6, SIM, p)
    found = np.isfinite(rheobase)
    assert found.sum() >= 4
    # independently: each cell fires at its rheobase and not one tolerance below it
    for amplitudes, expect in ((rheobase, True), (rheobase - p.tolerance, False)):
        t, v = batch.run(6, p.tstop, SIM, delay=p.delay, duration=p.duration,
                         amplitudes=np.nan_to_num(amplitudes))
        fired = spike_counts(t, v, p.delay, p.delay + p.duration) > 0
        assert np.all(fired[found] == expect)


def test_relative_amplitude_and_holding_voltage_protocols():
    cfg = small_config()
    cfg["protocols"] = [
        {"name": "rheo", "type": "rheobase", "high": 0.5, "tolerance": 0.005, "delay": 20,
         "duration": 150, "tstop": 180},
        {"name": "supra", "amplitude_rel": 2.0, "delay": 50, "duration": 200, "tstop": 260},
        {"name": "held", "amplitude": 0.0, "holding_voltage": -75.0, "delay": 200,
         "duration": 10, "tstop": 220},
        {"name": "rest", "type": "rmp", "tstop": 200}]
    cfg["features"] = ["rheo.rheobase", "supra.Spikecount", "held.voltage_base",
                       "held.holding_current", "rest.voltage_base"]
    cfg["validity"] = []
    cfg = resolved(cfg)
    params = Sampler(cfg).sample(np.arange(6))
    out = evaluate_block(make_batch(cfg, 6), prot.from_config(cfg), cfg, params)
    f = {name: out.features[:, k] for k, name in enumerate(cfg["features"])}
    has = np.isfinite(f["rheo.rheobase"])
    assert has.sum() >= 4
    assert np.all(f["supra.Spikecount"][has] >= 1)  # 2 x rheobase fires
    assert np.all(np.isnan(f["supra.Spikecount"][~has]))  # no threshold: not stimulated
    np.testing.assert_allclose(f["held.voltage_base"], -75.0, atol=0.5)
    # holding current: more hyperpolarising than rest needs a negative current
    below_rest = f["rest.voltage_base"] > -75.0
    assert np.all(f["held.holding_current"][below_rest] < 0)


def test_cvode_with_local_time_steps_agrees_with_fixed_dt():
    cfg = resolved(small_config())
    params = Sampler(cfg).sample(np.arange(8))
    fixed = evaluate_block(make_batch(cfg, 8), prot.from_config(cfg), cfg, params)
    cv = copy.deepcopy(cfg)
    cv["simulation"].update(engine="neuron", cvode=True, local_dt=True, atol=1e-4)
    variable = evaluate_block(make_batch(cv, 8), prot.from_config(cv), cv, params)
    for name, tolerance in (("step_300.time_to_first_spike", 0.5),  # ms
                            ("step_300.AP_amplitude", 2.0),  # mV; peaks sampled every 0.1 ms
                            ("hyper.voltage_deflection", 0.05)):     # mV
        k = cfg["features"].index(name)
        ok = np.isfinite(fixed.features[:, k])
        assert ok.sum() >= 4
        np.testing.assert_allclose(variable.features[ok, k], fixed.features[ok, k],
                                   atol=tolerance)
    from neuron import h

    h.CVode().active(0)


def test_coreneuron_and_neuron_engines_give_the_same_features():
    """CoreNEURON (the default) and NEURON integrate the same equations with the same
    fixed step: only floating-point rounding may differ. The cortical model exercises
    every shipped channel, calcium dynamics, rheobase bisection and relative steps."""
    cfg = configuration.load(ROOT / "configs" / "cortical.yaml")
    assert cfg["simulation"]["engine"] == "coreneuron"
    params = Sampler(cfg).sample(np.arange(8))
    core = evaluate_block(make_batch(cfg, 8), prot.from_config(cfg), cfg, params)
    nrn_cfg = copy.deepcopy(cfg)
    nrn_cfg["simulation"]["engine"] = "neuron"
    nrn = evaluate_block(make_batch(nrn_cfg, 8), prot.from_config(nrn_cfg), nrn_cfg, params)
    assert np.array_equal(np.isnan(core.features), np.isnan(nrn.features))
    assert np.isfinite(core.features).sum() >= 0.5 * core.features.size
    np.testing.assert_allclose(core.features, nrn.features, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(core.status, nrn.status)


def test_user_mechanisms_run_on_coreneuron_as_on_neuron(tmp_path, write_config):
    """A user's .mod folder is compiled together with the shipped channels for
    CoreNEURON; the campaign's features equal NEURON's. In subprocesses: CoreNEURON
    loads one mechanism library per process."""
    import h5py

    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "leak2.mod").write_text(LEAK_MOD)
    cfg = small_config()
    cfg["sampling"]["n_samples"] = 20
    cfg["model"]["mod_dirs"] = [str(mods)]
    cfg["model"]["mechanisms"].append({"name": "leak2"})
    cfg["parameters"].append({"mechanism": "leak2", "variable": "g", "low": 0.0, "high": 1e-3})
    features = {}
    for engine in ("coreneuron", "neuron"):
        cfg["simulation"]["engine"] = engine
        out = tmp_path / f"{engine}.h5"
        proc = run_cli("simulate", write_config(cfg, f"{engine}.yaml"), "-o", out)
        assert proc.returncode == 0, proc.stderr
        with h5py.File(out, "r") as f:
            features[engine] = f["features"][:]
    finite = np.isfinite(features["neuron"])
    assert finite.sum() > features["neuron"].size // 2
    assert np.array_equal(finite, np.isfinite(features["coreneuron"]))
    np.testing.assert_allclose(features["coreneuron"][finite], features["neuron"][finite],
                               rtol=1e-6, atol=1e-6)


def test_setup_errors_stop_the_run_instead_of_failing_samples(monkeypatch):
    """A UserError during simulation (e.g. mechanisms CoreNEURON cannot compile) is a
    problem of the setup: it propagates instead of marking every sample failed."""
    from hpcneuro import simulation
    from hpcneuro.errors import UserError

    def refuse(*args, **kwargs):
        raise UserError("the mechanisms did not compile for CoreNEURON")

    cfg = resolved(small_config())
    batch = make_batch(cfg, 2)
    monkeypatch.setattr(CellBatch, "run", refuse)
    with pytest.raises(UserError, match="did not compile for CoreNEURON"):
        evaluate_block(batch, prot.from_config(cfg), cfg, Sampler(cfg).sample(np.arange(2)))
    monkeypatch.setattr(simulation, "use_coreneuron_library", refuse)
    with pytest.raises(UserError, match="did not compile for CoreNEURON"):
        make_batch(cfg, 2)


def test_cortical_config_validates_and_fires():
    cfg = configuration.load(ROOT / "configs" / "cortical.yaml")
    assert len({m["name"] for m in cfg["model"]["mechanisms"]} - {"pas", "CaDynamics"}) >= 8
    cfg["protocols"] = [p for p in cfg["protocols"] if p["name"] == "step_300"]
    cfg["protocols"][0].update(delay=50, duration=300, tstop=400)
    cfg["features"] = ["step_300.mean_frequency"]
    cfg["validity"] = []
    params = Sampler(cfg).sample(np.arange(4))
    out = evaluate_block(make_batch(cfg, 4), prot.from_config(cfg), cfg, params)
    assert np.all(out.status == 1)
    assert np.nanmax(out.features[:, 0]) > 2  # at least one model fires repetitively


def test_a_mod_file_that_does_not_compile_shows_the_compiler_message(tmp_path):
    from hpcneuro.errors import UserError
    from hpcneuro.mechanisms import cache_root, compile_mechanisms

    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "broken.mod").write_text("NEURON { SUFFIX broken RANGE g }\n"
                                     "PARAMETER { g = 1 }\nBREAKPOINT { g = undefined_thing + }\n")
    with pytest.raises(UserError) as info:
        compile_mechanisms([mods])
    message = str(info.value)
    assert "did not compile" in message and "broken.mod" in message
    assert not list(cache_root().glob("*/broken.mod"))  # nothing half-built left in the cache
