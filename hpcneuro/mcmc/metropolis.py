"""The Metropolis step, pure: (state, cost, seed, chain, step) -> proposal; accept or not.

Parameters move in normalised coordinates y in [-1, 1]^P: y = 2 u - 1 with u the unit-cube
coordinate of :func:`hpcneuro.sampling.to_physical` (linear in the value, or in its log
for ``scale: log``). A proposal is y' = y + (proposal_std / sqrt(P)) z with z standard
normal, so that proposal_std is the expected step length; a proposal outside the cube is
redrawn (the reference's rule) with fresh draws, up to :data:`MAX_REDRAWS` times, and
then reflected into the cube. Acceptance: min(1, exp(-(cost' - cost) / T)); a proposal
without a cost (it failed to simulate) is rejected.

Every random number of chain c at step s is a function of (seed, c, s) alone, through
the same counter-based SplitMix64 hash as the samplers
(:func:`hpcneuro.sampling.stream_key`; one stream per use), so a chain's path does not
depend on which rank advances it, with which other chains, or after how many restarts.
The current state always enters as its physical values (what the store holds), and the
normalised coordinates are recomputed from them each step: a resumed chain reads the
same float64 values back and makes the same computation, bit for bit.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from hpcneuro.sampling import _G1, _G2, _mix64, bits_to_unit, stream_key, to_physical

# stream tags of the hash (the samplers use 1..3)
STREAM_ACCEPT = 10
STREAM_START = 11
STREAM_PROPOSE = 1000  # + redraw attempt
#: redraws of a proposal that left the bounds before it is reflected into them
MAX_REDRAWS = 100


def draws(seed: int, stream: int, chains: np.ndarray, steps: np.ndarray,
          n_dims: int) -> np.ndarray:
    """Uniform (0, 1) doubles (n, n_dims); row k depends only on (seed, stream,
    chains[k], steps[k])."""
    keys = np.array([stream_key(seed, stream, int(c)) for c in chains], dtype=np.uint64)
    s = np.asarray(steps, dtype=np.int64).astype(np.uint64)
    h = _mix64(s * np.uint64(_G1) + keys)
    d = np.arange(1, n_dims + 1, dtype=np.uint64) * np.uint64(_G2)
    return bits_to_unit(_mix64(h[:, None] + d[None, :]))


def _bounds(parameters: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    low = np.array([p["low"] for p in parameters], dtype=np.float64)
    high = np.array([p["high"] for p in parameters], dtype=np.float64)
    log = np.array([p["scale"] == "log" for p in parameters])
    return low, high, log


def normalise(x: np.ndarray, parameters: list[dict]) -> np.ndarray:
    """Physical values (n, P) -> normalised coordinates in [-1, 1]."""
    low, high, log = _bounds(parameters)
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        u_lin = (x - low) / (high - low)
        u_log = (np.log(np.where(log, x, 1.0)) - np.log(np.where(log, low, 1.0))) / (
            np.log(np.where(log, high, 2.0)) - np.log(np.where(log, low, 1.0)))
    u = np.clip(np.where(log, u_log, u_lin), 0.0, 1.0)
    return 2.0 * u - 1.0


def to_values(y: np.ndarray, parameters: list[dict]) -> np.ndarray:
    """Normalised coordinates (n, P) in [-1, 1] -> physical values within the bounds."""
    return to_physical((np.asarray(y, dtype=np.float64) + 1.0) / 2.0, parameters)


def start_points(seed: int, chains: np.ndarray, attempt: int,
                 parameters: list[dict]) -> np.ndarray:
    """Random start points (n, P), uniform within the bounds; ``attempt`` counts the
    retries of a chain whose earlier start did not simulate."""
    u = draws(seed, STREAM_START, chains, np.full(len(chains), attempt), len(parameters))
    return to_physical(u, parameters)


def propose(seed: int, chains: np.ndarray, steps: np.ndarray, x: np.ndarray,
            proposal_std: float, parameters: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Proposals (n, P) in physical units from current states ``x`` (physical), and the
    number of redraws each needed."""
    P = len(parameters)
    y = normalise(x, parameters)
    scale = proposal_std / np.sqrt(P)
    out = np.empty_like(y)
    redraws = np.zeros(len(chains), dtype=np.int64)
    todo = np.arange(len(chains))
    for attempt in range(MAX_REDRAWS + 1):
        z = ndtri(draws(seed, STREAM_PROPOSE + attempt, chains[todo], steps[todo], P))
        cand = y[todo] + scale * z
        inside = np.all(np.abs(cand) <= 1.0, axis=1)
        out[todo[inside]] = cand[inside]
        redraws[todo[~inside]] += 1
        todo = todo[~inside]
        if todo.size == 0:
            break
    if todo.size:  # still outside: reflect the last draw at the faces
        cand = np.abs(np.mod(cand[~inside] + 1.0, 4.0) - 2.0) - 1.0
        out[todo] = np.clip(cand, -1.0, 1.0)
    return to_values(out, parameters), redraws


def accept(seed: int, chains: np.ndarray, steps: np.ndarray, cost: np.ndarray,
           new_cost: np.ndarray, temperature: float) -> np.ndarray:
    """(n,) bool: Metropolis acceptance of costs ``new_cost`` against ``cost``."""
    u = draws(seed, STREAM_ACCEPT, chains, steps, 1)[:, 0]
    with np.errstate(invalid="ignore", over="ignore"):
        ratio = np.exp(-(new_cost - cost) / temperature)
    return np.isfinite(new_cost) & ((new_cost <= cost) | (u < ratio))
