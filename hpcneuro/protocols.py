"""Stimulation protocols: what current each cell receives, and when.

A protocol turns a validated ``protocols[i]`` config entry into one batched NEURON run
and tells feature extraction where the stimulus window is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from hpcneuro.model import CellBatch


@dataclass(frozen=True)
class StepProtocol:
    """A current step: ``amplitude`` nA from ``delay`` for ``duration`` ms; run to ``tstop`` ms."""

    name: str
    amplitude: float
    delay: float
    duration: float
    tstop: float

    @classmethod
    def from_config(cls, entry: dict) -> "StepProtocol":
        return cls(entry["name"], entry["amplitude"], entry["delay"], entry["duration"],
                   entry["tstop"])

    @property
    def stim_window(self) -> tuple[float, float]:
        """Stimulus start and end (ms), as eFEL needs them."""
        return self.delay, self.delay + self.duration

    def run(self, batch: CellBatch, n: int, simulation: dict,
            poke: Callable[[], object] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Simulate the first ``n`` cells of ``batch``; returns t (T,) ms and v (n, T) mV."""
        return batch.run(n, self.delay, self.duration, np.full(n, self.amplitude), self.tstop,
                         simulation["dt"], simulation["record_dt"], poke)


def from_config(cfg: dict) -> list[StepProtocol]:
    return [StepProtocol.from_config(entry) for entry in cfg["protocols"]]
