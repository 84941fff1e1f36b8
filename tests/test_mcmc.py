"""MCMC (sampling.method mcmc): the pure Metropolis step, the cost, config errors, and real
campaigns: bit-identical whatever the ranks and blocks, failed proposals and chains,
valid rows, status, analyze and report."""

from __future__ import annotations

import copy

import h5py
import numpy as np
import pytest

from hpcneuro import config as configuration
from hpcneuro.campaign import simulate
from hpcneuro.errors import ConfigError
from hpcneuro.mcmc import chains as mcmc_chains
from hpcneuro.mcmc import cost as costs
from hpcneuro.mcmc import diagnostics, metropolis
from hpcneuro.simulation import evaluate_block as real_evaluate_block
from hpcneuro.store import CHAIN_FAILED, DONE, PENDING, SIM_FAILED, read_table
from conftest import ROOT, run_cli, small_config

FIELDS = ("params", "features", "status", "valid", "chain", "step", "accepted", "cost")
PARAMS = [{"low": 0.0, "high": 1.0, "scale": "linear"},
          {"low": 1e-5, "high": 1e-3, "scale": "log"},
          {"low": -60.0, "high": -50.0, "scale": "linear"}]


def mcmc_config(**sampling) -> dict:
    """The demo model sampled by 8 chains of 12 steps (blocks of 3 chains)."""
    cfg = small_config()
    cfg["sampling"] = {"method": "mcmc", "n_chains": 8, "n_steps": 12, "proposal_std": 0.3,
                       "burn_in": 2, "threshold": 3.0, **sampling}
    cfg["validity"] = [{"feature": "step_300.mean_frequency", "mean": 60.0, "std": 15.0},
                       {"feature": "step_300.AP_amplitude", "low": 60.0}]
    cfg["simulation"]["batch_size"] = 3
    return cfg


def resolved(raw: dict) -> dict:
    return configuration.validate(copy.deepcopy(raw), ROOT / "configs")


def fields(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: f[k][:] for k in FIELDS}


def assert_same(a, b):
    fa, fb = fields(a), fields(b)
    for k in FIELDS:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


# --- the pure step ------------------------------------------------------------------------

def test_draws_depend_only_on_seed_chain_and_step():
    chains, steps = np.array([3, 7, 11, 3]), np.array([5, 5, 0, 6])
    all_at_once = metropolis.draws(9, metropolis.STREAM_ACCEPT, chains, steps, 4)
    one_by_one = np.vstack([metropolis.draws(9, metropolis.STREAM_ACCEPT, chains[k:k + 1],
                                             steps[k:k + 1], 4) for k in range(4)])
    np.testing.assert_array_equal(all_at_once, one_by_one)
    assert len({tuple(r) for r in all_at_once}) == 4  # chain 3 differs between steps
    other_seed = metropolis.draws(10, metropolis.STREAM_ACCEPT, chains, steps, 4)
    assert not np.any(other_seed == all_at_once)
    u = metropolis.draws(1, metropolis.STREAM_PROPOSE, np.arange(20000), np.zeros(20000), 2)
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01


def test_normalise_inverts_the_physical_mapping_and_proposals_stay_inside():
    y = np.array([[-1.0, -1.0, -1.0], [0.0, 0.5, -0.5], [1.0, 1.0, 1.0]])
    x = metropolis.to_values(y, PARAMS)
    np.testing.assert_allclose(x[0], [0.0, 1e-5, -60.0])
    np.testing.assert_allclose(x[2], [1.0, 1e-3, -50.0])
    np.testing.assert_allclose(metropolis.normalise(x, PARAMS), y, atol=1e-12)
    # from a corner with long steps: many proposals leave the cube and are redrawn
    n = 500
    corner = np.tile(x[2], (n, 1))
    prop, redraws = metropolis.propose(4, np.arange(n), np.full(n, 3), corner, 1.5, PARAMS)
    assert redraws.sum() > 0
    lo, hi = np.array([0.0, 1e-5, -60.0]), np.array([1.0, 1e-3, -50.0])
    assert np.all(prop >= lo) and np.all(prop <= hi)
    # the step length: proposal_std is the expected radius in normalised units
    centre = np.tile(metropolis.to_values(np.zeros((1, 3)), PARAMS), (4000, 1))
    prop, redraws = metropolis.propose(5, np.arange(4000), np.ones(4000, int), centre, 0.1,
                                       PARAMS)
    assert redraws.sum() == 0
    radius = np.linalg.norm(metropolis.normalise(prop, PARAMS), axis=1)
    assert abs(radius.mean() - 0.1 * np.sqrt(2 / 3) * 1.0854) < 0.005  # E|z|/sqrt(P), P=3
    again, _ = metropolis.propose(5, np.arange(4000), np.ones(4000, int), centre, 0.1, PARAMS)
    np.testing.assert_array_equal(prop, again)


def test_acceptance_follows_the_boltzmann_ratio():
    n = 40000
    chains, steps = np.arange(n), np.full(n, 2)
    old = np.full(n, 2.0)
    assert metropolis.accept(1, chains, steps, old, np.full(n, 1.0), 0.5).all()  # better
    for delta, temperature in ((1.0, 1.0), (0.5, 0.25), (2.0, 4.0)):
        rate = metropolis.accept(1, chains, steps, old, old + delta, temperature).mean()
        assert abs(rate - np.exp(-delta / temperature)) < 0.01
    assert not metropolis.accept(1, chains, steps, old, np.full(n, np.nan), 1.0).any()


def test_cost_z_scores_ranges_and_undefined_features():
    rules = [{"feature": "a", "mean": 10.0, "std": 2.0, "low": None, "high": None},
             {"feature": "b", "mean": None, "std": None, "low": 0.0, "high": 1.0}]
    f = np.array([[14.0, 0.5], [10.0, 3.0], [np.nan, 0.5], [11.0, 0.5]])
    s = costs.scores(f, ["a", "b"], rules)
    np.testing.assert_allclose(s, [[2, 0], [0, costs.OUTSIDE], [costs.OUTSIDE, 0], [0.5, 0]])
    np.testing.assert_allclose(costs.cost(f, ["a", "b"], rules, "max"), [2, 1000, 1000, 0.5])
    np.testing.assert_allclose(costs.cost(f, ["a", "b"], rules, "mean"), [1, 500, 500, 0.25])
    c = costs.cost(f, ["a", "b"], rules, "max", ok=np.array([True, True, False, True]))
    assert np.isnan(c[2])


# --- configuration ----------------------------------------------------------------------

@pytest.mark.parametrize("change, path, message", [
    ({"temperature": 0.0}, "sampling.temperature", "must be > 0"),
    ({"temperature": -1.0}, "sampling.temperature", "must be > 0"),
    ({"proposal_std": 0.0}, "sampling.proposal_std", "in (0, 2)"),
    ({"proposal_std": 2.0}, "sampling.proposal_std", "in (0, 2)"),
    ({"burn_in": 12}, "sampling.burn_in", "must be < n_steps"),
    ({"n_chains": 0}, "sampling.n_chains", "must be >= 1"),
    ({"n_steps": None}, "sampling.n_steps", "is required"),
    ({"cost": "median"}, "sampling.cost", "max, mean"),
    ({"start": "table"}, "sampling.table", "is required with start: table"),
    ({"n_samples": 5}, "sampling.n_samples", "n_chains * n_steps = 96"),
    ({"points_per_axis": 3}, "sampling.points_per_axis", "only applies to method grid"),
    ({"modules": [{"parameters": ["gnabar_hh", "gkbar_hh"], "rho": 0.5}]},
     "sampling.modules", "not available with method mcmc"),
])
def test_bad_mcmc_keys_name_their_path(change, path, message):
    raw = mcmc_config(**change)
    with pytest.raises(ConfigError) as exc:
        resolved(raw)
    assert exc.value.path == path and message in exc.value.message, str(exc.value)


def test_threshold_needs_a_mean_std_rule_and_mcmc_keys_need_method_mcmc():
    raw = mcmc_config()
    raw["validity"] = [{"feature": "step_300.AP_amplitude", "low": 60.0}]
    with pytest.raises(ConfigError, match="needs at least one validity rule with mean/std"):
        resolved(raw)
    raw["sampling"].pop("threshold")
    cfg = resolved(raw)  # without a threshold, the validity rules decide
    assert cfg["sampling"]["threshold"] is None and cfg["sampling"]["n_samples"] == 96
    raw = small_config()
    raw["sampling"]["burn_in"] = 3
    with pytest.raises(ConfigError, match="sampling.burn_in: only applies to method mcmc"):
        resolved(raw)


def test_start_table_columns_and_bounds(tmp_path, write_config):
    raw = mcmc_config(start="table", table="starts.csv")
    names = ["gnabar_hh", "gkbar_hh", "gl_hh", "el_hh", "g_pas"]
    good = [0.12, 0.036, 3e-4, -54.0, 1e-4]
    (tmp_path / "starts.csv").write_text("gnabar_hh,gkbar_hh\n0.1,0.03\n")
    path = write_config(raw)
    proc = run_cli("simulate", path, "-o", tmp_path / "r.h5")
    assert proc.returncode == 2 and "sampling.table" in proc.stderr
    assert "no column(s) gl_hh, el_hh, g_pas" in proc.stderr
    assert not (tmp_path / "r.h5").exists()
    (tmp_path / "starts.csv").write_text(",".join(names) + "\n" + ",".join(map(str, good))
                                         + "\n0.5,0.036,3e-4,-54,1e-4\n")
    with pytest.raises(ConfigError, match=r"sampling.table: row 1 .*'gnabar_hh'.*outside"):
        configuration.load(path)


# --- campaigns ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted serial MCMC campaign (8 chains x 12 steps, blocks of 3)."""
    tmp = tmp_path_factory.mktemp("mcmc")
    cfg = resolved(mcmc_config())
    output = tmp / "reference.h5"
    simulate(cfg, str(output))
    return cfg, output


def test_rows_follow_the_chains(reference):
    cfg, output = reference
    f = fields(output)
    C, S = 8, 12
    assert np.all(f["status"] == DONE)
    np.testing.assert_array_equal(f["chain"], np.tile(np.arange(C), S))
    np.testing.assert_array_equal(f["step"], np.repeat(np.arange(S), C))
    acc = f["accepted"].reshape(S, C)
    assert np.all(acc[0] == 1)                   # the start is the first state
    assert 0.2 < acc[1:].mean() < 1.0            # real acceptance, not all or nothing
    params, cost = f["params"].reshape(S, C, -1), f["cost"].reshape(S, C)
    # a chain's proposal is drawn around its state: the last accepted row before it
    for c in range(C):
        state = 0
        for s in range(1, S):
            redo, _ = metropolis.propose(cfg["seed"], np.array([c]), np.array([s]),
                                         params[state, c][None], 0.3, cfg["parameters"])
            np.testing.assert_array_equal(redo[0], params[s, c])
            if acc[s, c]:
                state = s
    # valid = accepted, after burn-in, thinned, cost < threshold
    steps = f["step"]
    expect = (f["accepted"] == 1) & (steps >= 2) & (f["cost"] < 3.0)
    np.testing.assert_array_equal(f["valid"] == 1, expect)
    assert expect.sum() > 5
    # what analyze reads: exactly those rows, each distinct accepted state once
    data, _ = read_table(output, "params", valid_only=True)
    np.testing.assert_array_equal(data, f["params"][expect])


def test_same_rows_with_other_blocks_and_thinning(reference, tmp_path):
    cfg, output = reference
    other = copy.deepcopy(cfg)
    other["simulation"]["batch_size"] = 8  # one block of all chains instead of 3, 3, 2
    simulate(other, str(tmp_path / "b8.h5"))
    assert_same(output, tmp_path / "b8.h5")
    thinned = resolved(mcmc_config(thin=3))
    simulate(thinned, str(tmp_path / "thin.h5"))
    f, g = fields(output), fields(tmp_path / "thin.h5")
    np.testing.assert_array_equal(f["params"], g["params"])
    steps = g["step"]
    np.testing.assert_array_equal(g["valid"] == 1,
                                  (f["valid"] == 1) & ((steps - 2) % 3 == 0))


@pytest.mark.requires_mpi
def test_two_ranks_give_the_serial_rows_and_status_shows_the_chains(reference, tmp_path,
                                                                    write_config):
    cfg, output = reference
    path = write_config(mcmc_config())
    proc = run_cli("simulate", path, "-o", tmp_path / "r.h5", np=2)
    assert proc.returncode == 0, proc.stderr
    assert_same(output, tmp_path / "r.h5")
    out = run_cli("status", tmp_path / "r.h5").stdout
    assert "MCMC: 8 chains x 12 steps; chains done 8, failed 0; steps written 96 of 96" in out
    assert "acceptance:" in out and "R-hat (split, rank-normalised, steps 2..11)" in out
    assert "ESS (bulk)" in out


def test_failed_proposals_are_rejected_and_a_chain_whose_start_fails_is_marked(
        monkeypatch, tmp_path):
    cfg = resolved(mcmc_config())
    seed = cfg["seed"]
    # chain 5's first random start and every start of chain 6 fail; so do proposals
    # with a large gnabar (a third of the range)
    first5 = metropolis.start_points(seed, np.array([5]), 0, cfg["parameters"])[0]
    starts6 = metropolis.start_points(seed, np.full(mcmc_chains.START_ATTEMPTS, 6),
                                      0, cfg["parameters"])
    starts6 = np.vstack([metropolis.start_points(seed, np.array([6]), a, cfg["parameters"])
                         for a in range(mcmc_chains.START_ATTEMPTS)])

    def poisoned(x):
        return (np.all(x == first5) or any(np.all(x == s) for s in starts6)
                or x[0] > 0.18)

    def fussy(batch, protocols, cfg_, params, poke=None):
        result = real_evaluate_block(batch, protocols, cfg_, params, poke)
        for i, x in enumerate(params):
            if poisoned(x):
                result.status[i] = SIM_FAILED
                result.features[i] = np.nan
                result.valid[i] = False
                result.errors[i] = "simulation error: poisoned"
        return result

    monkeypatch.setattr(mcmc_chains, "evaluate_block", fussy)
    output = tmp_path / "r.h5"
    summary = simulate(cfg, str(output))
    f = fields(output)
    C, S = 8, 12
    status, acc = f["status"].reshape(S, C), f["accepted"].reshape(S, C)
    params = f["params"].reshape(S, C, -1)
    assert np.all(status[:, 6] == CHAIN_FAILED) and not acc[:, 6].any()  # chain 6 failed
    with h5py.File(output, "r") as h:
        err = h["error"][:].reshape(S, C)
    assert err[0, 6].startswith(b"start did not simulate (10 random starts)")
    assert err[1, 6] == b"chain failed: its start point never simulated"
    assert status[0, 5] == DONE and not np.all(params[0, 5] == first5)  # redrawn start
    failed = status == SIM_FAILED
    assert failed.sum() > 3 and not acc[failed].any()
    assert np.all(np.isnan(f["cost"].reshape(S, C)[failed]))
    assert np.all(params[failed][:, 0] > 0.18)
    live = [c for c in range(C) if c != 6]
    assert np.all(status[:, live] != PENDING)   # the campaign went on
    assert summary["failed"] == failed.sum() + S
    d = diagnostics.read(output)
    assert d.chains_failed == 1 and d.chains_done == C - 1 and np.isnan(d.acceptance[6])
    assert d.states.shape[0] == C - 1


def test_start_table_rows_and_report(tmp_path, write_config):
    names = ["gnabar_hh", "gkbar_hh", "gl_hh", "el_hh", "g_pas"]
    rows = [[0.12, 0.036, 3e-4, -54.0, 1e-4], [0.2, 0.05, 2e-4, -55.0, 5e-5]]
    (tmp_path / "starts.csv").write_text(
        ",".join(names) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    raw = mcmc_config(start="table", table="starts.csv", n_chains=4, n_steps=8)
    path = write_config(raw)
    rundir = tmp_path / "run"
    rundir.mkdir()
    proc = run_cli("simulate", path, "-o", rundir / "results.h5")
    assert proc.returncode == 0, proc.stderr
    f = fields(rundir / "results.h5")
    np.testing.assert_array_equal(f["params"][:4], np.array(rows * 2))  # chain c: row c mod 2
    proc = run_cli("report", rundir)
    assert proc.returncode == 0, proc.stderr
    page = (rundir / "report" / "index.html").read_text()
    assert "<h2>MCMC</h2>" in page and "each distinct accepted state once" in page
    for name in ("mcmc_cost.png", "mcmc_acceptance.png", "mcmc_corner.png"):
        assert (rundir / "report" / name).stat().st_size > 1000
    proc = run_cli("simulate", path, "-o", rundir / "results.h5", "--retry-failed")
    assert proc.returncode == 2 and "does not apply to sampling.method mcmc" in proc.stderr


def test_the_cortical_mcmc_config_is_valid():
    cfg = configuration.load(ROOT / "configs" / "cortical-mcmc.yaml")
    cortical = configuration.load(ROOT / "configs" / "cortical.yaml")
    for key in ("model", "parameters", "protocols", "features", "validity"):
        assert cfg[key] == cortical[key], key
    assert cfg["sampling"]["method"] == "mcmc"
