"""Stimulation protocols: what current each cell receives, and when.

Every protocol runs on a whole :class:`~hpcneuro.model.CellBatch` at once, each cell with
its own stimulus. Types (config ``protocols[i].type``):

* ``step``: a current step, absolute (``amplitude``, nA) or relative to the model's own
  threshold current (``amplitude_rel`` x the rheobase found by a ``rheobase`` protocol),
  optionally on a holding current: fixed (``holding``, nA) or the one that holds the soma
  at ``holding_voltage`` (mV; found by a voltage-clamp run, feature ``holding_current``).
* ``rheobase``: the smallest step current that fires a spike, found per model by
  bisection with short runs of the whole batch (feature ``rheobase``, nA; NaN if the
  model fires at ``low`` or not at ``high``).
* ``rmp``: no stimulus; for the resting potential (e.g. eFEL ``voltage_base``).
* ``input_resistance``: a small hyperpolarising step (e.g. eFEL
  ``ohmic_input_resistance_vb_ssse``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hpcneuro.model import CellBatch

SPIKE_THRESHOLD_MV = -20.0  # eFEL's default threshold: the same spikes are counted
HOLDING_SETTLE_MS = 300.0   # voltage-clamp time to reach the holding current's steady state

Poke = Callable[[], object]


@dataclass
class ProtocolOutput:
    """What a protocol gives feature extraction: traces and/or values it computed itself."""

    t: np.ndarray | None = None            # (T,) ms
    v: np.ndarray | None = None            # (n, T) mV
    values: dict = field(default_factory=dict)  # special feature name -> (n,) array
    stimulus: np.ndarray | None = None     # (n,) step amplitude of each cell, nA


def spike_counts(t: np.ndarray, v: np.ndarray, start: float, end: float) -> np.ndarray:
    """Upward crossings of the spike threshold within [start, end] ms; (n,) ints."""
    window = (t >= start) & (t <= end)
    above = v[:, window] > SPIKE_THRESHOLD_MV
    return np.sum(above[:, 1:] & ~above[:, :-1], axis=1)


@dataclass(frozen=True)
class Protocol:
    name: str
    type: str
    tstop: float
    delay: float = 0.0
    duration: float = 0.0
    amplitude: float | None = None
    amplitude_rel: float | None = None
    relative_to: str | None = None
    holding: float = 0.0
    holding_voltage: float | None = None
    low: float = 0.0
    high: float = 1.0
    tolerance: float = 0.005

    @classmethod
    def from_config(cls, entry: dict) -> "Protocol":
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in entry.items() if k in keys and v is not None})

    @property
    def stim_window(self) -> tuple[float, float]:
        """Stimulus start and end (ms) as eFEL needs them; for ``rmp`` the trace's last ms,
        so that eFEL's baseline window (before the start) covers the resting trace."""
        if self.type == "rmp":
            return self.tstop - 1.0, self.tstop
        return self.delay, self.delay + self.duration

    def run(self, batch: CellBatch, n: int, simulation: dict, context: dict,
            poke: Poke | None = None) -> ProtocolOutput:
        """Simulate the first ``n`` cells. ``context`` carries earlier protocols' results
        (rheobase, holding currents) to later ones."""
        if self.type == "rheobase":
            rheobase = find_rheobase(batch, n, simulation, self, poke)
            context[self.name] = rheobase
            return ProtocolOutput(values={"rheobase": rheobase})
        out = ProtocolOutput()
        holding = np.full(n, self.holding)
        if self.holding_voltage is not None:
            key = ("holding", self.holding_voltage)
            if key not in context:
                context[key] = holding_current(batch, n, simulation, self.holding_voltage, poke)
            holding = context[key]
            out.values["holding_current"] = holding
        if self.type == "rmp":
            amplitudes = np.zeros(n)
        elif self.amplitude_rel is not None:
            amplitudes = self.amplitude_rel * context[self.relative_to]
        else:
            amplitudes = np.full(n, self.amplitude)
        # a model without a threshold (NaN rheobase) gets no stimulus; its features are NaN
        missing = ~np.isfinite(amplitudes) | ~np.isfinite(holding)
        out.t, out.v = batch.run(n, self.tstop, simulation, delay=self.delay,
                                 duration=self.duration,
                                 amplitudes=np.where(missing, 0.0, amplitudes),
                                 holding=np.where(missing, 0.0, holding), poke=poke)
        out.v[missing] = np.nan
        out.stimulus = amplitudes
        return out


def holding_current(batch: CellBatch, n: int, simulation: dict, voltage: float,
                    poke: Poke | None = None) -> np.ndarray:
    """Current (nA, into the cell) holding each soma at ``voltage`` mV at steady state."""
    _, i = batch.run(n, HOLDING_SETTLE_MS, simulation, clamp_voltage=voltage, poke=poke)
    return i[:, -1].copy()


def find_rheobase(batch: CellBatch, n: int, simulation: dict, protocol: Protocol,
                  poke: Poke | None = None) -> np.ndarray:
    """Threshold current (nA) of each cell by bisection, within ``protocol.tolerance``.

    One batched run per bisection step: all cells are bracketed at once. NaN where a
    model fires at ``low`` (spontaneously active) or does not fire at ``high``.
    """
    def fires(amplitudes: np.ndarray) -> np.ndarray:
        t, v = batch.run(n, protocol.tstop, simulation, delay=protocol.delay,
                         duration=protocol.duration, amplitudes=amplitudes,
                         holding=protocol.holding, poke=poke)
        return spike_counts(t, v, protocol.delay, protocol.delay + protocol.duration) > 0

    lo = np.full(n, protocol.low)
    hi = np.full(n, protocol.high)
    ok = fires(hi) & ~fires(lo)
    steps = max(0, math.ceil(math.log2((protocol.high - protocol.low) / protocol.tolerance)))
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        spiking = fires(mid)
        hi = np.where(spiking, mid, hi)
        lo = np.where(spiking, lo, mid)
    return np.where(ok, hi, np.nan)


def from_config(cfg: dict) -> list[Protocol]:
    """Protocols in run order: rheobase searches first, since steps may depend on them."""
    protocols = [Protocol.from_config(entry) for entry in cfg["protocols"]]
    return sorted(protocols, key=lambda p: p.type != "rheobase")
