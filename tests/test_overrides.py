"""--set KEY=VALUE overrides of a campaign config (hpcneuro run / simulate)."""

from __future__ import annotations

import pytest
import yaml

from hpcneuro import config as configuration
from hpcneuro.errors import ConfigError
from hpcneuro.store import ResultsStore
from conftest import run_cli, small_config


def test_overrides_set_dotted_paths_and_list_entries():
    raw = small_config()
    out = configuration.apply_overrides(raw, [
        "sampling.n_samples=2000", "parameters[0].high=0.3", "seed=42",
        "analysis.columns=[gnabar_hh, gkbar_hh, gl_hh]", "simulation.cvode=true",
        "description=a b = c", "sampling.modules=[{parameters: [gl_hh, el_hh], rho: 0.5}]"])
    assert out["sampling"]["n_samples"] == 2000 and out["parameters"][0]["high"] == 0.3
    assert out["seed"] == 42 and out["simulation"]["cvode"] is True
    assert out["analysis"]["columns"] == ["gnabar_hh", "gkbar_hh", "gl_hh"]
    assert out["description"] == "a b = c"
    assert out["sampling"]["modules"][0]["rho"] == 0.5
    assert raw["sampling"]["n_samples"] == 60  # the input is not modified
    # a missing section is created
    del raw["analysis"]
    assert configuration.apply_overrides(raw, ["analysis.max_order=4"])["analysis"] == {
        "max_order": 4}


@pytest.mark.parametrize("item,message", [
    ("sampling.n_samples=many", "sampling.n_samples: must be an integer"),
    ("parameters[0].high=0.01", "parameters[0].low: must be < high"),
    ("parameters[9].high=1", "parameters[9]: no such entry: parameters has 5 entries"),
    ("sampling.n_sample=10", "sampling.n_sample: unknown key"),
    ("seed.x=1", "seed: is not a mapping"),
    ("sampling[0]=1", "sampling: is not a list"),
    ("n_samples", "--set: expected KEY=VALUE"),
    ("a..b=1", "--set: expected KEY=VALUE"),
    ("seed=[1", "seed: --set value '[1' is not valid YAML"),
])
def test_bad_overrides_are_key_path_errors(write_config, item, message):
    path = write_config(small_config())
    with pytest.raises(ConfigError) as info:
        configuration.load(path, [item])
    assert str(info.value).startswith(message), str(info.value)


def test_simulate_takes_set_and_resumes_only_with_the_same(tmp_path, write_config):
    config = write_config(small_config())
    out = tmp_path / "r.h5"
    proc = run_cli("simulate", config, "-o", out, "--set", "sampling.n_samples=12",
                   "--set", "seed=3")
    assert proc.returncode == 0, proc.stderr
    with ResultsStore.read(out) as f:
        assert f.n_samples == 12 and f.config()["seed"] == 3
    proc = run_cli("simulate", config, "-o", out, "--set", "sampling.n_samples=12",
                   "--set", "seed=3", "--resume")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("simulate", config, "-o", out, "--set", "sampling.n_samples=13")
    assert proc.returncode == 2 and "changed: sampling.n_samples, seed" in proc.stderr
    proc = run_cli("simulate", config, "-o", out, "--set", "sampling.n_samples=x")
    assert proc.returncode == 2
    assert "error: sampling.n_samples: must be an integer" in proc.stderr
