"""Parameter sampling: sample i depends only on (seed, i).

Any rank can therefore produce any block of samples without communication, and a
resumed or re-partitioned campaign draws exactly the same models.
"""

from __future__ import annotations

import numpy as np


def unit_uniform(seed: int, indices: np.ndarray, n_dims: int) -> np.ndarray:
    """Uniform [0, 1) draws, shape (len(indices), n_dims); row k depends on (seed, indices[k])."""
    out = np.empty((len(indices), n_dims))
    for k, i in enumerate(np.asarray(indices, dtype=np.int64)):
        out[k] = np.random.default_rng([seed, int(i)]).random(n_dims)
    return out


def to_physical(u: np.ndarray, parameters: list[dict]) -> np.ndarray:
    """Map unit-cube draws (n, P) to parameter values within [low, high], linear or log."""
    low = np.array([p["low"] for p in parameters])
    high = np.array([p["high"] for p in parameters])
    log = np.array([p["scale"] == "log" for p in parameters])
    lin_vals = low + u * (high - low)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_vals = np.exp(np.log(np.where(log, low, 1.0))
                          + u * (np.log(np.where(log, high, 1.0)) - np.log(np.where(log, low, 1.0))))
    return np.where(log, log_vals, lin_vals)


def validate_sampling(sampling: dict, parameters: list[dict], base_dir) -> None:
    """Semantic checks of the ``sampling`` section; fills in ``n_samples`` where implied.

    Raises ConfigError naming the key path (``sampling.xxx``).
    """
    from hpcneuro.errors import ConfigError

    if sampling["method"] != "uniform":
        raise ConfigError("sampling.method", f"{sampling['method']!r} is not available yet; "
                          "use uniform")
    if sampling["n_samples"] is None:
        raise ConfigError("sampling.n_samples", "is required for method uniform")
    if sampling["n_samples"] < 1:
        raise ConfigError("sampling.n_samples", f"must be >= 1 (got {sampling['n_samples']})")


class Sampler:
    """Draws the parameters of samples by index for a validated config."""

    def __init__(self, cfg: dict):
        self.parameters = cfg["parameters"]
        self.seed = cfg["seed"]
        self.n_samples = cfg["sampling"]["n_samples"]

    def sample(self, indices: np.ndarray) -> np.ndarray:
        """Parameter values (len(indices), P) in the parameters' own units."""
        u = unit_uniform(self.seed, indices, len(self.parameters))
        return to_physical(u, self.parameters)
