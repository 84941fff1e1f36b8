"""Driver pieces: failures recorded not raised, block planning, index-seeded sampling."""

from __future__ import annotations

import numpy as np

from hpcneuro import config as configuration
from hpcneuro import protocols
from hpcneuro.allocator import plan_blocks
from hpcneuro.simulation import evaluate_block
from hpcneuro.model import CellBatch
from hpcneuro.sampling import Sampler
from hpcneuro.store import DONE, SIM_FAILED, contiguous_runs
from conftest import ROOT, small_config


def test_a_diverging_sample_is_recorded_failed_and_the_batch_goes_on():
    cfg = configuration.validate(small_config(), ROOT / "configs")
    batch = CellBatch(cfg["model"], 3, cfg["parameters"])
    params = Sampler(cfg).sample(np.arange(3))
    params[1, 0] = np.nan  # a NaN conductance makes the membrane potential NaN
    result = evaluate_block(batch, protocols.from_config(cfg), cfg, params)
    assert list(result.status) == [DONE, SIM_FAILED, DONE]
    assert result.errors[1] == "voltage diverged in protocol step_300"
    assert np.all(np.isnan(result.features[1])) and not result.valid[1]
    assert np.isfinite(result.features[0, cfg["features"].index("hyper.voltage_base")])


def test_sampler_depends_only_on_seed_and_index():
    cfg = configuration.validate(small_config(), ROOT / "configs")
    sampler = Sampler(cfg)
    whole = sampler.sample(np.arange(20))
    np.testing.assert_array_equal(sampler.sample(np.array([17, 3])), whole[[17, 3]])
    logged = cfg["parameters"][2]  # gl_hh, log scale
    x = whole[:, 2]
    assert np.all((x >= logged["low"]) & (x <= logged["high"]))
    cfg2 = dict(cfg, seed=cfg["seed"] + 1)
    assert not np.allclose(Sampler(cfg2).sample(np.arange(20)), whole)


def test_blocks_and_contiguous_runs():
    pending = np.array([0, 1, 2, 5, 6, 9])
    blocks = plan_blocks(pending, 4)
    assert [list(b) for b in blocks] == [[0, 1, 2, 5], [6, 9]]
    assert contiguous_runs(blocks[0]) == [(0, 3, 0, 3), (5, 6, 3, 4)]
    assert contiguous_runs(np.array([], dtype=int)) == []
