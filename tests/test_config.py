"""Config validation: every kind of mistake names its key path, exits 2, touches nothing."""

from __future__ import annotations

import pytest

from hpcneuro import config as configuration
from hpcneuro.errors import ConfigError
from conftest import LEAK_MOD, ROOT, run_cli, small_config


def validate(cfg: dict) -> dict:
    return configuration.validate(cfg, ROOT / "configs")


def error_of(cfg: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    return str(info.value)


def test_demo_config_is_valid_and_resolved():
    cfg = configuration.load(ROOT / "configs" / "demo.yaml")
    assert configuration.parameter_names(cfg)[:2] == ["gnabar_hh", "gkbar_hh"]
    assert cfg["simulation"]["dt"] == 0.025
    assert cfg["parameters"][0]["scale"] == "linear"  # default filled in
    # the hash is stable and sensitive to any change
    again = configuration.load(ROOT / "configs" / "demo.yaml")
    assert configuration.config_hash(cfg) == configuration.config_hash(again)
    again["seed"] += 1
    assert configuration.config_hash(cfg) != configuration.config_hash(again)
    assert configuration.diff(cfg, again) == ["seed"]


def test_unknown_key():
    cfg = small_config()
    cfg["simulation"]["dtt"] = 0.1
    assert error_of(cfg).startswith("simulation.dtt: unknown key; expected one of: ")


def test_unknown_top_level_key():
    cfg = small_config(analyis={})
    assert error_of(cfg).startswith("analyis: unknown key")


def test_wrong_type():
    cfg = small_config()
    cfg["sampling"]["n_samples"] = "many"
    assert error_of(cfg) == "sampling.n_samples: must be an integer (got 'many')"
    cfg = small_config()
    cfg["parameters"][1]["low"] = "zero"
    assert error_of(cfg) == "parameters[1].low: must be a number (got 'zero')"


def test_missing_required():
    cfg = small_config()
    del cfg["protocols"][0]["tstop"]
    assert error_of(cfg).startswith("protocols[0].tstop: is required")


def test_bounds_low_not_below_high():
    cfg = small_config()
    cfg["parameters"][2].update(low=5.0, high=1.0, scale="linear")
    assert error_of(cfg) == "parameters[2].low: must be < high (got 5.0 >= 1.0)"


def test_log_scale_needs_positive_bounds():
    cfg = small_config()
    cfg["parameters"][3]["scale"] = "log"  # el_hh is negative
    assert error_of(cfg) == "parameters[3].low: must be > 0 for scale: log (got -60.0)"


def test_unknown_choice():
    cfg = small_config()
    cfg["parameters"][0]["scale"] = "exp"
    assert error_of(cfg) == "parameters[0].scale: must be one of linear, log (got 'exp')"


def test_unknown_mechanism():
    cfg = small_config()
    cfg["model"]["mechanisms"].append({"name": "NaTx"})
    msg = error_of(cfg)
    assert msg.startswith("model.mechanisms[2].name: unknown mechanism 'NaTx'; known: ")
    assert "hh" in msg and "pas" in msg


def test_parameter_on_mechanism_not_inserted():
    cfg = small_config()
    cfg["model"]["mechanisms"] = [{"name": "hh"}]
    cfg["model"]["fixed"] = []
    assert error_of(cfg).startswith("parameters[4].mechanism: 'pas' is not inserted")


def test_unknown_mechanism_variable():
    cfg = small_config()
    cfg["parameters"][0]["variable"] = "gnabarr"
    msg = error_of(cfg)
    assert msg.startswith("parameters[0].variable: hh has no variable 'gnabarr'; expected")
    assert "gnabar" in msg


def test_unknown_efel_feature():
    cfg = small_config()
    cfg["features"][0] = "step_300.mean_frequencyy"
    msg = error_of(cfg)
    assert msg.startswith("features[0]: unknown eFEL feature 'mean_frequencyy'")
    assert "did you mean" in msg and "mean_frequency" in msg


def test_feature_of_unknown_protocol():
    cfg = small_config()
    cfg["features"][0] = "ramp.mean_frequency"
    assert error_of(cfg).startswith("features[0]: unknown protocol 'ramp'")


def test_protocol_longer_than_tstop():
    cfg = small_config()
    cfg["protocols"][0]["tstop"] = 200.0
    assert error_of(cfg) == "protocols[0].tstop: must be >= delay + duration (got 200.0 < 350.0)"


def test_validity_needs_a_listed_feature():
    cfg = small_config()
    cfg["validity"][0]["feature"] = "hyper.sag_ratio1"
    assert error_of(cfg).startswith("validity[0].feature: 'hyper.sag_ratio1' is not in features")


def test_orders_out_of_range():
    cfg = small_config()
    cfg["analysis"]["max_order"] = 6
    assert error_of(cfg).startswith("analysis.max_order: must be <= the number of analysed "
                                    "variables (5 params)")


def test_engine_defaults_and_its_mistakes():
    assert validate(small_config())["simulation"]["engine"] == "coreneuron"
    cfg = small_config()
    cfg["simulation"]["cvode"] = True
    assert validate(cfg)["simulation"]["engine"] == "neuron"  # CVode needs NEURON
    cfg["simulation"]["engine"] = "coreneuron"
    assert error_of(cfg).startswith("simulation.engine: CoreNEURON has no variable time "
                                    "step: set engine: neuron")
    cfg = small_config()
    cfg["simulation"]["record_dt"] = 0.06
    assert error_of(cfg).startswith("simulation.record_dt: must be a whole multiple of dt "
                                    "with engine: coreneuron (got 0.06 / 0.025 = 2.4)")
    cfg["simulation"]["engine"] = "neuron"
    assert validate(cfg)["simulation"]["record_dt"] == 0.06


def test_coreneuron_library_refuses_a_user_file_named_like_a_shipped_one(tmp_path):
    from hpcneuro.errors import UserError
    from hpcneuro.mechanisms import coreneuron_library

    (tmp_path / "NaT.mod").write_text("NEURON { SUFFIX NaT2 }\n")
    with pytest.raises(UserError, match="NaT.mod also ship with hpcneuro"):
        coreneuron_library([tmp_path])


def test_cli_rejects_bad_config_with_status_2_and_touches_nothing(tmp_path, write_config):
    cfg = small_config()
    cfg["parameters"][2].update(low=5.0, high=1.0, scale="linear")
    path = write_config(cfg)
    out = tmp_path / "results.h5"
    out.write_bytes(b"precious")
    proc = run_cli("simulate", path, "-o", out)
    assert proc.returncode == 2
    assert "parameters[2].low: must be < high (got 5.0 >= 1.0)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == b"precious"
    # the same under mpiexec: every rank refuses, nothing written
    proc = run_cli("simulate", path, "-o", tmp_path / "new.h5", np=2)
    assert proc.returncode == 2
    assert not (tmp_path / "new.h5").exists()


def test_cli_run_rejects_bad_config_before_creating_rundir(tmp_path, write_config):
    cfg = small_config()
    cfg["sampling"]["n_samples"] = 0
    proc = run_cli("run", write_config(cfg), "-o", tmp_path / "rundir")
    assert proc.returncode == 2
    assert "sampling.n_samples: must be >= 1 (got 0)" in proc.stderr
    assert not (tmp_path / "rundir").exists()


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    proc = run_cli("simulate", bad, "-o", tmp_path / "r.h5")
    assert proc.returncode == 2 and "is not valid YAML" in proc.stderr
    proc = run_cli("simulate", tmp_path / "nope.yaml", "-o", tmp_path / "r.h5")
    assert proc.returncode == 2 and "config file not found" in proc.stderr


def test_user_mod_dir_mechanisms_are_known_and_clashes_refused(tmp_path):
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "leak2.mod").write_text(LEAK_MOD)
    cfg = small_config()
    cfg["model"]["mod_dirs"] = [str(mods)]
    cfg["model"]["mechanisms"].append({"name": "leak2"})
    cfg["parameters"].append({"mechanism": "leak2", "variable": "g", "low": 1e-5, "high": 1e-4})
    assert configuration.parameter_names(validate(cfg))[-1] == "g_leak2"
    (mods / "hh_again.mod").write_text("NEURON { SUFFIX NaT }\n")
    assert "defines mechanism 'NaT', already defined by" in error_of(cfg)


def test_protocol_kinds_and_their_mistakes():
    cfg = small_config()
    cfg["protocols"].append({"name": "rheo", "type": "rheobase", "low": 0.0, "high": 1.0,
                             "delay": 20, "duration": 100, "tstop": 150})
    cfg["protocols"].append({"name": "rel", "amplitude_rel": 1.5, "duration": 100, "tstop": 200,
                             "holding_voltage": -70.0})
    cfg["protocols"].append({"name": "rest", "type": "rmp", "tstop": 200})
    cfg["features"] += ["rheo.rheobase", "rel.holding_current", "rest.voltage_base"]
    resolved = validate(cfg)
    assert resolved["protocols"][3]["relative_to"] == "rheo"

    bad = small_config()
    bad["protocols"][0]["amplitude_rel"] = 2.0
    assert error_of(bad) == ("protocols[0]: give exactly one of amplitude (nA) or amplitude_rel "
                             "(x rheobase) (got amplitude, amplitude_rel)")
    bad = small_config()
    bad["protocols"][0] = {"name": "step_300", "amplitude_rel": 2.0, "duration": 100,
                           "tstop": 300}
    assert error_of(bad) == ("protocols[0].relative_to: amplitude_rel needs a rheobase "
                             "protocol; add one (type: rheobase)")
    bad = small_config()
    bad["protocols"].append({"name": "rest", "type": "rmp", "tstop": 200, "duration": 100})
    assert error_of(bad).startswith("protocols[2].duration: an rmp protocol has no stimulus")
    bad = copy_with_feature(cfg, "rheo.mean_frequency")
    assert error_of(bad) == ("features[8]: a rheobase protocol gives only rheo.rheobase "
                             "(got 'rheo.mean_frequency')")


def copy_with_feature(cfg: dict, feature: str) -> dict:
    import copy

    out = copy.deepcopy(cfg)
    out["features"].append(feature)
    return out


def test_distance_function_and_morphology_errors(tmp_path):
    cfg = small_config()
    cfg["parameters"][0]["distance_function"] = "exp(distance / 100) + __import__('os')"
    assert error_of(cfg) == ("parameters[0].distance_function: only exp, log, sqrt, abs, min, "
                             "max, tanh may be called")
    cfg["parameters"][0]["distance_function"] = "exp(distance / L)"
    assert error_of(cfg) == ("parameters[0].distance_function: unknown name 'L'; the only "
                             "variable is 'distance'")
    cfg = small_config()
    cfg["parameters"][0]["distance_function"] = "exp(distance /"
    assert error_of(cfg).startswith("parameters[0].distance_function: not a valid expression")
    cfg = small_config()
    cfg["model"]["morphology"] = str(tmp_path / "none.swc")
    assert error_of(cfg).startswith("model.morphology: file not found")
    bad = tmp_path / "bad.swc"
    bad.write_text("1 1 0 0 0 5 -1\n2 3 0 10 0 1\n")
    cfg["model"]["morphology"] = str(bad)
    assert error_of(cfg).startswith("model.morphology: ") and "line 2 is not an SWC point" in error_of(cfg)
