"""sampling.method mixture: weighted subclusters, sample i a pure function of (seed, i).

Determinism over any blocks and ranks, component weights within binomial tolerance,
marginals within each component's ranges and its own correlations, key-path errors,
and a real simulate run under mpiexec whose stored parameters and components are the
sampler's.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.stats import spearmanr

from hpcneuro import config as configuration
from hpcneuro.errors import ConfigError
from hpcneuro.sampling import Sampler
from hpcneuro.store import ResultsStore
from conftest import ROOT, run_cli, small_config

# demo parameters: gnabar_hh [0.06, 0.24], gkbar_hh [0.012, 0.072], gl_hh (log)
# [1e-4, 1e-3], el_hh [-60, -50], g_pas (log) [1e-5, 3e-4]
COMPONENTS = [
    {"weight": 2.0,
     "ranges": [{"parameter": "gnabar_hh", "low": 0.06, "high": 0.10},
                {"parameter": "gkbar_hh", "centre": 0.02, "width": 0.01}],
     "modules": [{"parameters": ["gl_hh", "el_hh", "g_pas"], "rho": 0.8}]},
    {"weight": 3.0,
     "ranges": [{"parameter": "gnabar_hh", "low": 0.20, "high": 0.24},
                {"parameter": "gl_hh", "low": 5e-4, "high": 1e-3}]},
    {"weight": 5.0},
]


def mixture_config(n: int = 20000, components=None, **sampling) -> dict:
    raw = small_config()
    raw["sampling"] = {"method": "mixture", "n_samples": n,
                       "components": copy.deepcopy(components or COMPONENTS), **sampling}
    return raw


def validated(raw: dict) -> dict:
    return configuration.validate(raw, ROOT / "configs")


def test_sample_i_is_a_function_of_seed_and_i_for_any_blocks():
    cfg = validated(mixture_config(5000))
    whole = Sampler(cfg).sample(np.arange(5000))
    comp = Sampler(cfg).component(np.arange(5000))
    rng = np.random.default_rng(0)
    order = rng.permutation(5000)
    other = Sampler(cfg)
    for block in np.array_split(order, 37):  # shuffled, uneven blocks
        np.testing.assert_array_equal(other.sample(block), whole[block])
        np.testing.assert_array_equal(other.component(block), comp[block])
    one = np.array([4321])
    np.testing.assert_array_equal(Sampler(cfg).sample(one), whole[one])
    # another seed: other samples
    cfg2 = validated(dict(mixture_config(5000), seed=8))
    assert not np.array_equal(Sampler(cfg2).sample(np.arange(50)), whole[:50])
    # a non-mixture sampler has no components
    assert Sampler(validated(small_config())).component(np.arange(3)) is None


def test_component_weights_within_binomial_tolerance():
    n = 20000
    comp = Sampler(validated(mixture_config(n))).component(np.arange(n))
    assert comp.dtype == np.int16 and set(np.unique(comp)) == {0, 1, 2}
    for c, p in enumerate((0.2, 0.3, 0.5)):
        count = int(np.sum(comp == c))
        assert abs(count - n * p) < 4 * np.sqrt(n * p * (1 - p)), (c, count)


def test_marginals_within_each_components_ranges_and_its_correlation():
    n = 20000
    cfg = validated(mixture_config(n))
    s = Sampler(cfg)
    x, comp = s.sample(np.arange(n)), s.component(np.arange(n))
    names = configuration.parameter_names(cfg)
    low = {p["name"]: p["low"] for p in cfg["parameters"]}
    high = {p["name"]: p["high"] for p in cfg["parameters"]}
    own = [{"gnabar_hh": (0.06, 0.10), "gkbar_hh": (0.015, 0.025)},
           {"gnabar_hh": (0.20, 0.24), "gl_hh": (5e-4, 1e-3)}, {}]
    for c in range(3):
        xc = x[comp == c]
        for j, name in enumerate(names):
            lo, hi = own[c].get(name, (low[name], high[name]))
            assert xc[:, j].min() >= lo and xc[:, j].max() <= hi, (c, name)
            # and it fills its range (uniform in value or in log value)
            span = hi - lo
            assert xc[:, j].min() < lo + 0.02 * span and xc[:, j].max() > hi - 0.02 * span
    # component 0's module is coregulated, component 2 is not
    x0 = x[comp == 0][:, 2:5]
    rho0 = spearmanr(x0).statistic
    assert np.all(np.abs(rho0[np.triu_indices(3, 1)] - 0.8) < 0.03)
    rho2 = spearmanr(x[comp == 2]).statistic
    assert np.all(np.abs(rho2[np.triu_indices(5, 1)]) < 0.05)


@pytest.mark.parametrize("edit,path", [
    (lambda s: s["components"][0]["ranges"].append({"parameter": "nope", "low": 0, "high": 1}),
     "sampling.components[0].ranges[2].parameter"),
    (lambda s: s["components"][1]["ranges"][0].update(low=0.3),
     "sampling.components[1].ranges[0].low"),
    (lambda s: s["components"][1]["ranges"][0].update(high=0.5),
     "sampling.components[1].ranges[0]"),
    (lambda s: s["components"][0]["ranges"][1].update(low=0.01),
     "sampling.components[0].ranges[1]"),
    (lambda s: s["components"][0]["ranges"][1].pop("width"),
     "sampling.components[0].ranges[1].width"),
    (lambda s: s["components"][2].update(weight=0.0), "sampling.components[2].weight"),
    (lambda s: s["components"][0]["modules"][0].update(rho=1.5),
     "sampling.components[0].modules[0].rho"),
    (lambda s: s["components"][1].update(correlation=[[1.0, 0.2], [0.2, 1.0]]),
     "sampling.components[1].correlation"),
    (lambda s: s["components"][2].update(extra=1), "sampling.components[2].extra"),
    (lambda s: s.update(modules=[{"parameters": ["gl_hh", "el_hh"], "rho": 0.5}]),
     "sampling.modules"),
    (lambda s: s.pop("components"), "sampling.components"),
    (lambda s: s.update(method="uniform"), "sampling.components"),
])
def test_bad_mixtures_are_key_path_errors(edit, path):
    raw = mixture_config(100)
    edit(raw["sampling"])
    with pytest.raises(ConfigError) as info:
        validated(raw)
    assert str(info.value).startswith(path + ":"), str(info.value)


@pytest.mark.requires_mpi
def test_a_real_mixture_campaign_stores_the_samplers_values_and_components(tmp_path,
                                                                         write_config):
    raw = mixture_config(40)
    raw["simulation"]["batch_size"] = 7
    config = write_config(raw)
    out = tmp_path / "results.h5"
    proc = run_cli("simulate", config, "-o", out, np=2)
    assert proc.returncode == 0, proc.stderr
    cfg = configuration.load(config)
    s = Sampler(cfg)
    with ResultsStore.read(out) as f:
        assert (f.status() != 0).all()
        np.testing.assert_array_equal(f.column("params"), s.sample(np.arange(40)))
        np.testing.assert_array_equal(f.column("component"), s.component(np.arange(40)))
        assert set(np.unique(f.column("rank"))) == {0, 1}
    # a plain campaign records -1
    raw_plain = small_config()
    raw_plain["sampling"]["n_samples"] = 10
    plain = write_config(raw_plain, "plain.yaml")
    proc = run_cli("simulate", plain, "-o", tmp_path / "plain.h5")
    assert proc.returncode == 0, proc.stderr
    with ResultsStore.read(tmp_path / "plain.h5") as f:
        assert (f.column("component") == -1).all()
