"""MCMC in a campaign: blocks of chains advanced in lockstep, one batched run per step.

The allocator's counter hands out blocks of up to ``simulation.batch_size`` chains (the
generator/allocator/simulator split of :mod:`hpcneuro.campaign` is kept: this module is
the generator of MCMC, :func:`hpcneuro.simulation.evaluate_block` the simulator). A
rank that claims a block advances all its chains together: at every step it draws one
proposal per chain (:mod:`hpcneuro.mcmc.metropolis`), simulates them all in one batched
NEURON run, accepts or rejects each, and writes the step's rows (contiguous in the
store) before the next step. The store is the chains' memory: a resumed chain starts
from its first unwritten step, in the state of its last accepted row, so a campaign
killed at any moment and resumed on any number of ranks gives the same rows, bit for bit,
as an uninterrupted one.

* A proposal that fails to simulate is rejected (recorded with its status and reason;
  the chain stays where it was).
* A start point that fails is redrawn (``start: random``) up to :data:`START_ATTEMPTS`
  times; a chain whose start never simulates is marked ``chain failed`` (status 5) on
  all its rows and the campaign goes on.
* ``valid`` = accepted, ``step >= burn_in``, ``(step - burn_in) % thin == 0`` and
  ``cost < threshold`` (or, without a threshold, every validity rule met). Each accepted
  state is one row, so the valid rows are the distinct accepted states, each once.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np

from hpcneuro import config as configuration
from hpcneuro.allocator import plan_blocks
from hpcneuro.mcmc import cost as costs
from hpcneuro.mcmc import metropolis
from hpcneuro.mcmc.options import row_index
from hpcneuro.simulation import BlockResult, evaluate_block
from hpcneuro.store import CHAIN_FAILED, DONE

log = logging.getLogger("hpcneuro.mcmc")

#: random start points tried per chain before it is marked failed
START_ATTEMPTS = 10


def next_steps(cfg: dict, pending: np.ndarray) -> np.ndarray:
    """(n_chains,) first step of each chain not yet written (n_steps: chain complete),
    from the pending row indices."""
    n_chains, n_steps = cfg["sampling"]["n_chains"], cfg["sampling"]["n_steps"]
    out = np.full(n_chains, n_steps, dtype=np.int64)
    pending = np.asarray(pending, dtype=np.int64)
    np.minimum.at(out, pending % n_chains, pending // n_chains)
    return out


def plan(cfg: dict, pending: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(next step of every chain, blocks of chain indices with steps left)."""
    nxt = next_steps(cfg, pending)
    todo = np.flatnonzero(nxt < cfg["sampling"]["n_steps"])
    return nxt, plan_blocks(todo, cfg["simulation"]["batch_size"])


class ChainBlock:
    """The chains of one block: their next steps, current states and costs."""

    def __init__(self, cfg: dict, store, chains: np.ndarray, next_step: np.ndarray,
                 start_table: np.ndarray | None):
        s = cfg["sampling"]
        self.cfg, self.store = cfg, store
        self.chains = np.asarray(chains, dtype=np.int64)
        self.next = np.asarray(next_step, dtype=np.int64).copy()
        self.n_chains, self.n_steps = s["n_chains"], s["n_steps"]
        self.parameters = cfg["parameters"]
        self.names = configuration.feature_names(cfg)
        self.start_table = start_table
        P = len(self.parameters)
        self.x = np.full((self.chains.size, P), np.nan)
        self.cost = np.full(self.chains.size, np.nan)
        for k, c in enumerate(self.chains):  # resumed chains: their last accepted state
            if self.next[k] == 0:
                continue
            rows = slice(int(c), int(row_index(c, self.next[k], self.n_chains)), self.n_chains)
            accepted = np.flatnonzero(store.read_field("accepted", rows) == 1)
            if accepted.size == 0:
                raise RuntimeError(f"chain {c}: steps 0..{self.next[k] - 1} are written but "
                                   "none was accepted: the file is inconsistent")
            row = int(row_index(c, accepted[-1], self.n_chains))
            self.x[k] = store.read_field("params", row)
            self.cost[k] = store.read_field("cost", row)

    @property
    def active(self) -> bool:
        return bool(np.any(self.next < self.n_steps))

    def step(self, batch, protocols, rank: int, poke=None) -> dict:
        """Advance every unfinished chain by one step and write its row; return counts."""
        cfg, s = self.cfg, self.cfg["sampling"]
        seed = int(cfg["seed"])
        claimed = time.time()
        act = np.flatnonzero(self.next < self.n_steps)
        ch, st = self.chains[act], self.next[act]
        start = st == 0
        params = np.empty((act.size, len(self.parameters)))
        if (~start).any():
            params[~start], _ = metropolis.propose(seed, ch[~start], st[~start],
                                                   self.x[act[~start]], s["proposal_std"],
                                                   self.parameters)
        if start.any():
            params[start] = self._start(ch[start], 0)
        result = evaluate_block(batch, protocols, cfg, params, poke)
        if start.any():
            self._retry_starts(ch, start, params, result, batch, protocols, poke)
        ok = result.status == DONE
        new_cost = costs.cost(result.features, self.names, cfg["validity"], s["cost"], ok)
        accepted = np.where(start, ok, metropolis.accept(
            seed, ch, st, self.cost[act], new_cost, s["temperature"]))
        kept = (st >= s["burn_in"]) & ((st - s["burn_in"]) % s["thin"] == 0)
        meets = result.valid if s["threshold"] is None else new_cost < s["threshold"]
        result.valid = accepted & kept & meets & ok
        failed_chains = start & ~ok
        live = ~failed_chains
        counts = {"done": int(ok.sum()), "failed": int((~ok & live).sum()),
                  "valid": int(result.valid.sum()), "accepted": int(accepted[~start].sum())}
        self._write(ch[live], st[live], params[live], _rows(result, live), accepted[live],
                    new_cost[live], rank, claimed)
        if failed_chains.any():
            counts["failed"] += self._fail_chains(ch[failed_chains], params[failed_chains],
                                                  _rows(result, failed_chains), rank, claimed)
        upd = act[accepted]
        self.x[upd] = params[accepted]
        self.cost[upd] = new_cost[accepted]
        self.next[act] += 1
        self.next[act[failed_chains]] = self.n_steps
        return counts

    def _start(self, chains: np.ndarray, attempt: int) -> np.ndarray:
        if self.start_table is not None:
            return self.start_table[chains % self.start_table.shape[0]]
        return metropolis.start_points(int(self.cfg["seed"]), chains, attempt, self.parameters)

    def _retry_starts(self, ch, start, params, result, batch, protocols, poke) -> None:
        """Redraw start points that did not simulate (random starts only), in place."""
        if self.start_table is not None:
            return
        for attempt in range(1, START_ATTEMPTS):
            again = np.flatnonzero(start & (result.status != DONE))
            if again.size == 0:
                return
            params[again] = self._start(ch[again], attempt)
            retry = evaluate_block(batch, protocols, self.cfg, params[again], poke)
            result.features[again] = retry.features
            result.status[again] = retry.status
            result.valid[again] = retry.valid
            for k, i in enumerate(again):
                result.errors[i] = retry.errors[k]
            for name, v in retry.traces.items():
                if name in result.traces:
                    width = min(v.shape[1], result.traces[name].shape[1])
                    result.traces[name][again, :width] = v[:, :width]

    def _write(self, ch, st, params, result, accepted, cost, rank, claimed) -> None:
        if ch.size == 0:
            return
        rows = row_index(ch, st, self.n_chains)
        order = np.argsort(rows, kind="stable")
        self.store.write_block(rows[order], params[order], _rows(result, order), rank, claimed,
                               extra={"chain": ch[order], "step": st[order],
                                      "accepted": accepted[order], "cost": cost[order]})

    def _fail_chains(self, chains, params, result, rank, claimed) -> int:
        """Mark every row of these chains 'chain failed'; returns the rows written."""
        written = 0
        for k, c in enumerate(chains):
            log.warning("chain %d failed: its start point did not simulate (%s)", c,
                        result.errors[k] or "no reason given")
            steps = np.arange(self.n_steps)
            n = steps.size
            p = np.full((n, params.shape[1]), np.nan)
            p[0] = params[k]
            why = (f"start did not simulate ({'table row' if self.start_table is not None else f'{START_ATTEMPTS} random starts'}): "
                   + result.errors[k])
            errors = [why] + ["chain failed: its start point never simulated"] * (n - 1)
            block = BlockResult(np.full((n, len(self.names)), np.nan),
                                np.full(n, CHAIN_FAILED, dtype=np.int8), np.zeros(n, bool),
                                errors)
            self.store.write_block(row_index(c, steps, self.n_chains), p, block, rank, claimed,
                                   extra={"chain": np.full(n, c), "step": steps,
                                          "accepted": np.zeros(n, np.int8),
                                          "cost": np.full(n, np.nan)})
            written += n
        return written


def _rows(result: BlockResult, which) -> BlockResult:
    """The rows ``which`` (mask or index array) of a block result."""
    idx = np.arange(len(result.errors))[which]
    return BlockResult(result.features[idx], result.status[idx], np.asarray(result.valid)[idx],
                       [result.errors[i] for i in idx],
                       {k: v[idx] for k, v in result.traces.items()})


def read_start_table(cfg: dict) -> np.ndarray | None:
    s = cfg["sampling"]
    if s["start"] != "table":
        return None
    from hpcneuro.sampling import read_parameter_table

    return read_parameter_table(s["table"], cfg["parameters"])


def run(cfg: dict, store, counter, stop_requested: Callable[[], bool], pending: np.ndarray,
        rank: int, protocols, batch, progress, mine: dict | None = None) -> dict:
    """Advance every chain with pending steps; every rank calls this. Returns this rank's
    counts (done, failed, valid, blocks, accepted), kept up to date in ``mine`` (so that
    a caller that catches an exception still has the counts so far)."""
    nxt, blocks = plan(cfg, pending)
    table = read_start_table(cfg)
    mine = {} if mine is None else mine
    mine.update({"done": 0, "failed": 0, "valid": 0, "blocks": 0, "accepted": 0})
    while True:
        b, stop = counter.sync(0, 0, stop_requested())
        if stop or b >= len(blocks):
            return mine
        chains = blocks[b]
        block = ChainBlock(cfg, store, chains, nxt[chains], table)
        mine["blocks"] += 1
        while block.active:
            counts = block.step(batch, protocols, rank, counter.poke)
            for key in mine:
                mine[key] += counts.get(key, 0)
            _, stop = counter.sync(counts["done"], counts["failed"], stop_requested(),
                                   claim=False)
            progress.update()
            if stop:
                return mine
