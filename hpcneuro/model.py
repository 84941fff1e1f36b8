"""Cell models in NEURON: many independent cells per NEURON run.

Per-step interpreter overhead dominates a one-cell NEURON run, so a rank builds a
:class:`CellBatch` of B uncoupled cells once and reuses it for every block of samples:
each block only sets the sampled mechanism variables and the stimulus of each cell,
then runs every protocol once for the whole batch.

Import mpi4py before this module when running under MPI: NEURON then uses the MPI
that mpi4py loaded.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from hpcneuro.mechanisms import load_mechanisms

_h = None

# simulated ms between two calls of a run's ``poke``: short enough that other ranks'
# requests wait little, long enough that the calls cost nothing measurable
POKE_INTERVAL_MS = 20.0


def neuron_h():
    """NEURON's ``h`` with the standard run system and hpcneuro mechanisms loaded."""
    global _h
    if _h is None:
        from neuron import h

        h.load_file("stdrun.hoc")
        _h = h
    return _h


def neuron_version() -> str:
    import neuron

    return str(neuron.__version__)


class CellBatch:
    """B independent one-compartment cells built from ``model`` (a validated config section).

    Attributes
    ----------
    cells : list of dict
        Per cell, section-list name -> list of NEURON sections.
    """

    def __init__(self, model: dict, size: int):
        load_mechanisms(model["mod_dirs"])
        h = neuron_h()
        self.model = model
        self.size = size
        h.celsius = model["celsius"]
        self.cells = []
        self._keepalive = []
        for i in range(size):
            soma = h.Section(name=f"cell{i}_soma")
            soma.L = model["soma"]["length"]
            soma.diam = model["soma"]["diam"]
            soma.nseg = 1
            soma.cm = model["cm"]
            soma.Ra = model["Ra"]
            lists = {"all": [soma], "soma": [soma], "axon": [], "basal": [], "apical": [],
                     "dend": []}
            for mech in model["mechanisms"]:
                for sec in lists[mech["sections"]]:
                    sec.insert(mech["name"])
            for fixed in model["fixed"]:
                self._set(lists[fixed["sections"]], fixed["mechanism"], fixed["variable"],
                          fixed["value"])
            self.cells.append(lists)
        self.stimuli = []
        for lists in self.cells:
            stim = h.IClamp(lists["soma"][0](0.5))
            self.stimuli.append(stim)

    @staticmethod
    def _set(sections: Sequence, mechanism: str, variable: str, value: float) -> None:
        for sec in sections:
            for seg in sec:
                setattr(getattr(seg, mechanism), variable, value)

    def set_parameters(self, values: np.ndarray, parameters: list[dict]) -> None:
        """Apply sampled values, shape (n, P) with n <= B, to the first n cells."""
        values = np.asarray(values, dtype=float)
        for lists, row in zip(self.cells, values):
            for spec, value in zip(parameters, row):
                self._set(lists[spec["sections"]], spec["mechanism"], spec["variable"],
                          float(value))

    def run(self, n: int, delay: float, duration: float, amplitudes: np.ndarray, tstop: float,
            dt: float, record_dt: float,
            poke: Callable[[], object] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Run the first ``n`` cells under a current step with per-cell amplitudes (nA).

        Cells beyond ``n`` get no stimulus (they are simulated but ignored). ``poke`` is
        called every few ms of simulated time: under MPI it lets this rank serve the
        other ranks' one-sided requests while it computes.

        Returns
        -------
        t : (T,) times in ms, every ``record_dt``
        v : (n, T) somatic membrane potential in mV
        """
        h = neuron_h()
        h.celsius = self.model["celsius"]
        h.cvode_active(0)
        h.dt = dt
        h.steps_per_ms = 1.0 / dt
        h.tstop = tstop
        amplitudes = np.broadcast_to(np.asarray(amplitudes, dtype=float), (n,))
        for i, stim in enumerate(self.stimuli):
            stim.delay = delay
            stim.dur = duration
            stim.amp = float(amplitudes[i]) if i < n else 0.0
        # recording at a coarser interval than dt keeps eFEL input small
        vectors = []
        for lists in self.cells[:n]:
            vec = h.Vector()
            vec.record(lists["soma"][0](0.5)._ref_v, record_dt)
            vectors.append(vec)
        h.finitialize(self.model["v_init"])
        if poke is None:
            h.continuerun(tstop)
        else:
            for t_next in np.append(np.arange(POKE_INTERVAL_MS, tstop, POKE_INTERVAL_MS), tstop):
                h.continuerun(t_next)
                poke()
        # floating-point t may stop one recording short of tstop: keep what all cells have
        n_points = min(int(vec.size()) for vec in vectors) if vectors else 0
        v = np.empty((n, n_points))
        for i, vec in enumerate(vectors):
            v[i] = vec.as_numpy()[:n_points]
        t = np.arange(n_points) * record_dt
        return t, v
