"""What a user expects to see of MCMC: acceptance, R-hat, ESS, cost traces.

Computed from the store alone (a running or stopped campaign too), with ArviZ for the
convergence statistics (imported lazily):

* acceptance rate per chain: accepted proposals / evaluated proposals, start excluded;
* the chains' *state* traces: at step s a chain is in the state of its last accepted row
  <= s (a rejected or failed proposal repeats the state), the sequence an MCMC
  estimator averages over;
* split R-hat, rank-normalised (``arviz.rhat(method="rank")``, Vehtari et al. 2021) and
  bulk ESS (``arviz.ess(method="bulk")``) per parameter, over the state traces after
  ``burn_in``, on the steps every live chain has written; chains that failed are left out;
* cost traces: the cost of each chain's state per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hpcneuro.store import CHAIN_FAILED, PENDING, ResultsFile

#: R-hat below this counts as converged (the usual rule since Gelman et al. 2013 uses 1.1;
#: Vehtari et al. 2021 advise 1.01 for final inference)
RHAT_OK = 1.1


@dataclass
class Diagnostics:
    n_chains: int
    n_steps: int
    burn_in: int
    parameters: list[str]
    chains_done: int            # every step written
    chains_failed: int          # start never simulated
    rows_written: int
    complete_steps: int         # steps every live chain has written
    acceptance: np.ndarray      # (n_chains,) NaN for failed or unstarted chains
    rhat: np.ndarray            # (P,) NaN when too short
    ess: np.ndarray             # (P,)
    cost_trace: np.ndarray      # (live chains, complete_steps) cost of the state
    states: np.ndarray = field(repr=False)  # (live chains, complete_steps, P)

    @property
    def max_rhat(self) -> float:
        return float(np.nanmax(self.rhat)) if np.isfinite(self.rhat).any() else float("nan")


def _state_index(accepted: np.ndarray) -> np.ndarray:
    """(S, C) step of each chain's state at each step: last accepted step <= s (-1: none)."""
    steps = np.arange(accepted.shape[0])[:, None]
    return np.maximum.accumulate(np.where(accepted == 1, steps, -1), axis=0)


def convergence(states: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(R-hat, bulk ESS) per parameter of state traces (chains, draws, P), by ArviZ."""
    P = len(names)
    if states.shape[0] < 2 or states.shape[1] < 4:
        return np.full(P, np.nan), np.full(P, np.nan)
    import arviz as az

    data = az.convert_to_dataset({f"p{j}": states[:, :, j] for j in range(P)})
    rhat, ess = az.rhat(data, method="rank"), az.ess(data, method="bulk")
    return (np.array([float(rhat[f"p{j}"]) for j in range(P)]),
            np.array([float(ess[f"p{j}"]) for j in range(P)]))


def compute(f: ResultsFile) -> Diagnostics:
    """Diagnostics of an open MCMC results file."""
    s = f.config()["sampling"]
    C, S, burn = s["n_chains"], s["n_steps"], s["burn_in"]
    status = f.column("status").reshape(S, C)
    accepted = f.column("accepted").reshape(S, C)
    cost = f.column("cost").reshape(S, C)
    params = f.column("params")
    names = f.names("params")
    written = status != PENDING
    failed = np.any(status == CHAIN_FAILED, axis=0)
    n_written = written.sum(axis=0)  # per chain: a prefix of its steps
    proposals = np.maximum(n_written - 1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        acceptance = np.where(failed | (proposals == 0), np.nan,
                              (accepted[1:] == 1).sum(axis=0) / proposals)
    live = np.flatnonzero(~failed & (n_written > 0))
    complete = int(n_written[live].min()) if live.size else 0
    idx = _state_index(accepted[:complete][:, live])  # (complete, L)
    rows = idx * C + live[None, :]
    states = params[rows].transpose(1, 0, 2) if complete else np.zeros((live.size, 0, len(names)))
    cost_trace = cost.reshape(-1)[rows].T if complete else np.zeros((live.size, 0))
    rhat, ess = convergence(states[:, burn:], names)
    return Diagnostics(C, S, burn, names, int(((n_written == S) & ~failed).sum()),
                       int(failed.sum()), int(written.sum()), complete, acceptance, rhat, ess,
                       cost_trace, states)


def read(path) -> Diagnostics | None:
    """Diagnostics of a results file, or None if it is not an MCMC campaign."""
    with ResultsFile(path) as f:
        if f.config()["sampling"]["method"] != "mcmc":
            return None
        return compute(f)


def status_lines(d: Diagnostics) -> list[str]:
    """The MCMC part of 'hpcneuro status'."""
    lines = [f"  MCMC: {d.n_chains} chains x {d.n_steps} steps; chains done {d.chains_done}"
             f", failed {d.chains_failed}; steps written {d.rows_written} of "
             f"{d.n_chains * d.n_steps}"]
    acc = d.acceptance[np.isfinite(d.acceptance)]
    if acc.size:
        lines.append(f"  acceptance: {acc.mean():.3f} mean over chains (min {acc.min():.3f}, "
                     f"max {acc.max():.3f})")
    if np.isfinite(d.rhat).any():
        worst = int(np.nanargmax(d.rhat))
        verdict = "all below" if d.max_rhat < RHAT_OK else "NOT all below"
        lines.append(f"  R-hat (split, rank-normalised, steps {d.burn_in}..{d.complete_steps - 1}"
                     f"): max {d.max_rhat:.3f} ({d.parameters[worst]}); {verdict} {RHAT_OK}")
        lines.append(f"  ESS (bulk): min {np.nanmin(d.ess):.0f} "
                     f"({d.parameters[int(np.nanargmin(d.ess))]}), "
                     f"mean over parameters {np.nanmean(d.ess):.0f}")
    else:
        lines.append("  R-hat: not yet (needs 2 live chains with 4 steps after burn-in)")
    return lines
