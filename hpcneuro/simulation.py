"""The simulation step: one block of samples -> features, status and validity.

:func:`make_batch` builds the cells a rank reuses; :func:`evaluate_block` runs one block
as a batch of NEURON cells under every protocol and extracts its eFEL features, recording
failures per sample (:class:`BlockResult`) instead of raising them (libEnsemble's
simulator function).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hpcneuro import config as configuration
from hpcneuro import features as feat
from hpcneuro.errors import EnvironmentProblem, UserError
from hpcneuro.model import CellBatch, use_coreneuron_library
from hpcneuro.store import DONE, FEATURE_FAILED, SIM_FAILED

log = logging.getLogger("hpcneuro.simulation")


@dataclass
class BlockResult:
    """What one block gave, one row per sample; :meth:`hpcneuro.store.ResultsStore.write_block`
    writes it. ``status`` holds :data:`hpcneuro.store.STATUS_NAMES` codes."""

    features: np.ndarray  # (n, F)
    status: np.ndarray    # (n,) int8
    valid: np.ndarray     # (n,) bool
    errors: list          # n strings, "" where fine
    traces: dict = field(default_factory=dict)  # protocol -> (n, T) mV, when stored


def evaluate_block(batch: CellBatch, protocols: list, cfg: dict, params: np.ndarray,
                   poke: Callable[[], object] | None = None) -> BlockResult:
    """Simulate ``params`` (n, P) under every protocol and extract their features.

    In ``simulation.mode: single`` each sample runs alone (the reference); otherwise the
    block is one batch. A sample whose voltage diverges is marked failed (status 2) with
    its reason; if NEURON raises for a batch, its samples are re-run one by one to find
    the culprit.
    """
    n = params.shape[0]
    if n > 1 and (cfg["simulation"]["mode"] == "single"):
        return _concat([evaluate_block(batch, protocols, cfg, params[i:i + 1], poke)
                        for i in range(n)])
    names = configuration.feature_names(cfg)
    groups = feat.group_by_protocol(names)
    out = BlockResult(np.full((n, len(names)), np.nan), np.full(n, DONE, dtype=np.int8),
                      np.zeros(n, dtype=bool), [""] * n)
    try:
        batch.set_parameters(params)
        context: dict = {}
        outputs = [(p, p.run(batch, n, cfg["simulation"], context, poke)) for p in protocols]
    except (UserError, EnvironmentProblem):
        raise  # a problem of the setup, not of these samples
    except Exception as exc:  # noqa: BLE001 - isolate the sample that broke the batch
        if n == 1:
            out.status[:] = SIM_FAILED
            out.errors[0] = f"simulation error: {exc}"
            return out
        log.warning("batch of %d raised (%s); re-running its samples one by one", n, exc)
        return _concat([evaluate_block(batch, protocols, cfg, params[i:i + 1], poke)
                        for i in range(n)])
    for protocol, result in outputs:
        if result.v is not None and cfg["simulation"]["store_traces_every"]:
            out.traces[protocol.name] = result.v
        group = groups.get(protocol.name, [])
        for col, name in group:
            if name in result.values:
                out.features[:, col] = result.values[name]
        if result.v is None:
            continue
        # NaN traces are cells a protocol could not stimulate (e.g. no rheobase): not failures
        not_run = np.all(np.isnan(result.v), axis=1)
        diverged = ~not_run & (~np.all(np.isfinite(result.v), axis=1)
                               | (np.nan_to_num(np.abs(result.v)).max(axis=1) > 1e3))
        for i in np.flatnonzero(diverged & (out.status == DONE)):
            out.status[i] = SIM_FAILED
            out.errors[i] = f"voltage diverged in protocol {protocol.name}"
        efel_group = [(col, name) for col, name in group if name not in result.values]
        run = np.flatnonzero(~not_run & ~diverged)
        values, failed = feat.extract(
            result.t, result.v[run], protocol, [name for _, name in efel_group], poke,
            None if result.stimulus is None else result.stimulus[run])
        for k, (col, _) in enumerate(efel_group):
            out.features[run, col] = values[:, k]
        for i in run[failed]:
            if out.status[i] == DONE:
                out.status[i] = FEATURE_FAILED
                out.errors[i] = f"eFEL failed on protocol {protocol.name}"
    out.features[out.status != DONE] = np.nan
    out.valid = feat.is_valid(out.features, names, cfg["validity"]) & (out.status == DONE)
    return out


def _concat(parts: list[BlockResult]) -> BlockResult:
    names = set().union(*(p.traces for p in parts))
    traces = {}
    for name in names:  # a part that failed early has no trace: pad with NaN
        width = max(p.traces[name].shape[1] for p in parts if name in p.traces)
        traces[name] = np.vstack([
            _pad(p.traces.get(name), len(p.errors), width) for p in parts])
    return BlockResult(np.vstack([p.features for p in parts]),
                       np.concatenate([p.status for p in parts]),
                       np.concatenate([p.valid for p in parts]),
                       [e for p in parts for e in p.errors], traces)


def _pad(v: np.ndarray | None, n: int, width: int) -> np.ndarray:
    out = np.full((n, width), np.nan)
    if v is not None:
        out[:, :v.shape[1]] = v
    return out


def make_batch(cfg: dict, n_pending: int) -> CellBatch:
    """The cells a rank reuses for every block (one cell in single mode)."""
    size = 1 if cfg["simulation"]["mode"] == "single" else cfg["simulation"]["batch_size"]
    batch = CellBatch(cfg["model"], max(1, min(size, n_pending)), cfg["parameters"])
    if cfg["simulation"]["engine"] == "coreneuron":
        # compiled now, so that a .mod file CoreNEURON cannot take stops the run here
        use_coreneuron_library(cfg["model"]["mod_dirs"])
    return batch
