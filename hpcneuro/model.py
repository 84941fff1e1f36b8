"""Cell models in NEURON: many independent cells per NEURON run.

Per-step interpreter overhead dominates a one-cell NEURON run, so a rank builds a
:class:`CellBatch` of B uncoupled cells once and reuses it for every block of samples:
each block only sets the sampled mechanism variables and the stimuli of each cell,
then runs every protocol once for the whole batch.

A cell is a one-compartment soma by default, or an SWC morphology with the section
lists ``all``, ``soma``, ``axon``, ``basal``, ``apical`` and ``dend`` (basal + apical).
A parameter sets a mechanism variable on a section list, uniformly or scaled by a
function of the path distance from the soma (e.g. an exponential Ih gradient).

Two engines run a batch with a fixed step: CoreNEURON (the default; NEURON's compute
engine with a memory layout built for speed, about twice as fast here) and NEURON
itself, which also offers CVode. Cells are built in NEURON either way; CoreNEURON
takes the model over for each run and hands the state back.

hpcneuro never lets NEURON join MPI (``NEURON_INIT_MPI=0``, set where NEURON is
imported, :func:`hpcneuro.nrn.import_neuron`): ranks simulate independently, and a CoreNEURON run must not become a
collective across ranks that each simulate their own batch.
"""

from __future__ import annotations

import ast
import math
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hpcneuro.errors import UserError
from hpcneuro.mechanisms import coreneuron_library, load_mechanisms
from hpcneuro.nrn import import_neuron

_h = None

# wall time between two calls of a run's ``poke``: short enough that other ranks'
# requests wait little, long enough that the calls cost nothing measurable
POKE_INTERVAL_S = 0.005
# CoreNEURON copies the model in and out on every call, so it gets longer pieces
POKE_INTERVAL_CORENEURON_S = 0.05

_CELL_TEMPLATE = """
begintemplate HpcneuroCell
public soma, dend, apic, axon, all, somatic, axonal, basal, apical
create soma[1], dend[1], apic[1], axon[1]
objref all, somatic, axonal, basal, apical
proc init() {
    all = new SectionList()
    somatic = new SectionList()
    axonal = new SectionList()
    basal = new SectionList()
    apical = new SectionList()
}
endtemplate HpcneuroCell
"""


def neuron_h():
    """NEURON's ``h`` with the standard run system loaded."""
    global _h
    if _h is None:
        h = import_neuron().h
        h.load_file("stdrun.hoc")
        _h = h
    return _h


# --- distance functions -------------------------------------------------------------

_ALLOWED_CALLS = {"exp": math.exp, "log": math.log, "sqrt": math.sqrt, "abs": abs,
                  "min": min, "max": max, "tanh": math.tanh}
_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load,
                  ast.Call, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)


def distance_function(expression: str) -> Callable[[float], float]:
    """Compile ``expression`` of ``distance`` (um from the soma) into a function.

    Only arithmetic and exp, log, sqrt, abs, min, max, tanh are allowed, e.g.
    ``-0.8696 + 2.087 * exp(0.0031 * distance)``. Raises ValueError naming the problem.
    """
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError(f"{type(node).__name__} is not allowed; use arithmetic, "
                             f"distance and {', '.join(_ALLOWED_CALLS)}")
        if isinstance(node, ast.Name) and node.id not in _ALLOWED_CALLS and node.id != "distance":
            raise ValueError(f"unknown name {node.id!r}; the only variable is 'distance'")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name)
                                               and node.func.id in _ALLOWED_CALLS):
            raise ValueError("only exp, log, sqrt, abs, min, max, tanh may be called")
    code = compile(tree, "<distance_function>", "eval")
    return lambda d: float(eval(code, {"__builtins__": {}}, {**_ALLOWED_CALLS, "distance": d}))


# --- morphologies -----------------------------------------------------------------

def check_swc(path: str | Path) -> None:
    """Raise UserError unless ``path`` is a readable SWC file with a soma."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model.morphology: file not found: {path}")
    has_soma, n_points = False, 0
    for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        try:
            if len(parts) != 7:
                raise ValueError
            int(parts[0]), int(parts[1]), int(parts[6])
            [float(x) for x in parts[2:6]]
        except ValueError:
            raise UserError(f"model.morphology: {path} line {lineno} is not an SWC point "
                            f"(7 numbers: id type x y z radius parent): {line[:60]!r}") from None
        has_soma |= parts[1] == "1"
        n_points += 1
    if n_points == 0:
        raise UserError(f"model.morphology: {path} has no points")
    if not has_soma:
        raise UserError(f"model.morphology: {path} has no soma point (SWC type 1)")


class _Morphology:
    """Parses an SWC file once; instantiates it into as many cells as needed."""

    def __init__(self, path: str):
        check_swc(path)
        h = neuron_h()
        h.load_file("import3d.hoc")
        if not hasattr(h, "HpcneuroCell"):
            h(_CELL_TEMPLATE)
        self.reader = h.Import3d_SWC_read()
        self.reader.quiet = 1
        self.reader.input(str(path))
        self.gui = h.Import3d_GUI(self.reader, False)

    def instantiate(self):
        h = neuron_h()
        cell = h.HpcneuroCell()
        self.gui.instantiate(cell)
        return cell


def _run_poking(tstop: float, poke: Callable[[], object] | None, coreneuron: bool) -> None:
    """Simulate from the current state to ``tstop`` with NEURON (``continuerun``) or
    CoreNEURON (``psolve``), in pieces of about POKE_INTERVAL_S of wall time with a call
    of ``poke`` between them; the pieces adapt to how fast this batch simulates."""
    h = neuron_h()
    if coreneuron:
        advance, interval = _coreneuron_psolve, POKE_INTERVAL_CORENEURON_S
    else:
        advance, interval = h.continuerun, POKE_INTERVAL_S
    piece = 1.0  # ms of simulated time, adjusted after each piece
    while poke is not None and h.t + piece < tstop - h.dt:
        started = time.perf_counter()
        advance(h.t + piece)
        poke()
        took = max(time.perf_counter() - started, 1e-6)
        piece = min(max(piece * interval / took, 0.1), 100.0)
    # both may stop one step short of a target reached in pieces: half a step more
    # gives every run the same number of steps
    advance(tstop + 0.5 * h.dt if coreneuron else tstop)
    if poke is not None:
        poke()


_coreneuron_libraries: dict[tuple, str] = {}
_coreneuron_library_chosen: str | None = None


def use_coreneuron_library(mod_dirs: Sequence[str]) -> None:
    """Compile (on first use) the CoreNEURON library of the shipped and these .mod
    folders, and point this process's CoreNEURON at it."""
    global _coreneuron_library_chosen
    key = tuple(str(d) for d in mod_dirs)
    if key not in _coreneuron_libraries:
        _coreneuron_libraries[key] = str(coreneuron_library(mod_dirs))
    lib = _coreneuron_libraries[key]
    # CoreNEURON loads its library once per process; a CORENEURONLIB inherited from
    # the environment is overridden, since hpcneuro's cells need hpcneuro's mechanisms
    if _coreneuron_library_chosen not in (None, lib):
        raise UserError("this process already ran CoreNEURON with other mechanisms "
                        f"({_coreneuron_library_chosen}); run each model.mod_dirs in its "
                        "own process or set simulation.engine: neuron")
    _coreneuron_library_chosen = lib
    os.environ["CORENEURONLIB"] = lib


def _coreneuron_psolve(tstop: float) -> None:
    pc = neuron_h().ParallelContext()
    from neuron import coreneuron  # NEURON is imported by now, with hpcneuro's settings

    if pc.nhost() > 1:
        raise RuntimeError("NEURON has joined MPI (it was imported before hpcneuro "
                           "imported it, with NEURON_INIT_MPI set): CoreNEURON runs would "
                           "become collective; set NEURON_INIT_MPI=0 before importing NEURON "
                           "or set simulation.engine: neuron")
    coreneuron.enable = True
    coreneuron.verbose = 0  # no banner, memory report or progress bar per run
    try:
        pc.psolve(tstop)
    finally:
        coreneuron.enable = False


def _nseg(length: float, max_segment_length: float) -> int:
    return 1 + 2 * int(length / (2 * max_segment_length))  # odd: a node at the middle


class CellBatch:
    """B independent cells built from ``model`` (a validated config section).

    Attributes
    ----------
    cells : list of dict
        Per cell, section-list name -> list of NEURON sections.
    soma : list
        The middle segment of each cell's (first) soma section, where stimuli go.
    """

    def __init__(self, model: dict, size: int, parameters: Sequence[dict] = ()):
        load_mechanisms(model["mod_dirs"])
        h = neuron_h()
        self.model = model
        self.size = size
        h.celsius = model["celsius"]
        morphology = _Morphology(model["morphology"]) if model["morphology"] else None
        self.cells: list[dict] = []
        self._objects = []  # keep NEURON objects alive
        for i in range(size):
            lists = self._build_morphology(morphology, i)
            for sec in lists["all"]:
                sec.cm = model["cm"]
                sec.Ra = model["Ra"]
            for mech in model["mechanisms"]:
                for sec in lists[mech["sections"]]:
                    sec.insert(mech["name"])
            for ion, value in model["ion_reversal"].items():
                if value is None:
                    continue
                for sec in lists["all"]:
                    if h.ismembrane(f"{ion}_ion", sec=sec):
                        setattr(sec, f"e{ion}", value)
            self.cells.append(lists)
        self.soma = [lists["soma"][0](0.5) for lists in self.cells]
        for fixed in model["fixed"]:
            for lists in self.cells:
                for seg in self._segments(lists, fixed["sections"]):
                    setattr(getattr(seg, fixed["mechanism"]), fixed["variable"], fixed["value"])
        # per parameter and cell: (mechanism objects of its segments, distance factors)
        self._targets = [[self._target(lists, spec) for lists in self.cells]
                         for spec in parameters]
        self.parameters = list(parameters)
        self.stimuli = [h.IClamp(seg) for seg in self.soma]
        # made on first use: an idle point process still costs time at every step
        self._holders: list = []
        self._clamps: list = []
        # one recording vector per cell for the batch's lifetime: making Vectors per run
        # (and Vector.as_numpy) leaks memory in NEURON 9
        self._v_vectors = [h.Vector() for _ in self.soma]
        self._i_vectors = [h.Vector() for _ in self.soma]
        self._record_dt: tuple | None = None  # (record_dt, engine is CoreNEURON)

    def _build_morphology(self, morphology, index: int) -> dict:
        h = neuron_h()
        if morphology is None:
            soma = h.Section(name=f"cell{index}_soma")
            soma.L = self.model["soma"]["length"]
            soma.diam = self.model["soma"]["diam"]
            soma.nseg = 1
            self._objects.append(soma)
            return {"all": [soma], "soma": [soma], "axon": [], "basal": [], "apical": [],
                    "dend": []}
        cell = morphology.instantiate()
        self._objects.append(cell)
        lists = {"all": list(cell.all), "soma": list(cell.somatic), "axon": list(cell.axonal),
                 "basal": list(cell.basal), "apical": list(cell.apical)}
        lists["dend"] = lists["basal"] + lists["apical"]
        for sec in lists["all"]:
            sec.nseg = _nseg(sec.L, self.model["max_segment_length"])
        return lists

    @staticmethod
    def _segments(lists: dict, section_list: str):
        for sec in lists[section_list]:
            yield from sec

    def _target(self, lists: dict, spec: dict) -> tuple[list, np.ndarray]:
        segments = list(self._segments(lists, spec["sections"]))
        mechs = [getattr(seg, spec["mechanism"]) for seg in segments]
        if spec.get("distance_function"):
            f = distance_function(spec["distance_function"])
            origin = lists["soma"][0](0.5)
            factors = np.array([f(neuron_h().distance(origin, seg)) for seg in segments])
        else:
            factors = np.ones(len(segments))
        return mechs, factors

    def distances(self, cell: int, section_list: str = "all") -> np.ndarray:
        """Path distance (um) from the soma's middle to each segment of a section list."""
        origin = self.cells[cell]["soma"][0](0.5)
        return np.array([neuron_h().distance(origin, seg)
                         for seg in self._segments(self.cells[cell], section_list)])

    def set_parameters(self, values: np.ndarray) -> None:
        """Apply sampled values, shape (n, P) with n <= B, to the first n cells."""
        values = np.asarray(values, dtype=float)
        for p, spec in enumerate(self.parameters):
            variable = spec["variable"]
            for cell, value in enumerate(values[:, p]):
                mechs, factors = self._targets[p][cell]
                for mech, factor in zip(mechs, factors):
                    setattr(mech, variable, float(value) * factor)

    def run(self, n: int, tstop: float, simulation: dict, *, delay: float = 0.0,
            duration: float = 0.0, amplitudes=0.0, holding=0.0, clamp_voltage: float | None = None,
            poke: Callable[[], object] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Run the first ``n`` cells; return t (T,) ms and somatic v (n, T) mV.

        Each cell gets a current step of ``amplitudes[i]`` nA from ``delay`` for
        ``duration`` ms on top of a constant ``holding[i]`` nA. With ``clamp_voltage``
        the somata are voltage-clamped instead and the clamp currents (nA, positive into
        the cell) are returned in place of v. Cells beyond ``n`` are not stimulated.
        ``poke`` is called every few ms of simulated time: under MPI it lets this rank
        serve the other ranks' one-sided requests while it computes.
        """
        h = neuron_h()
        h.celsius = self.model["celsius"]
        self._integrator(simulation)
        amplitudes = np.broadcast_to(np.asarray(amplitudes, dtype=float), (n,))
        holding = np.broadcast_to(np.asarray(holding, dtype=float), (n,))
        clamped = clamp_voltage is not None
        for i, stim in enumerate(self.stimuli):
            stim.delay, stim.dur = delay, duration
            stim.amp = float(amplitudes[i]) if i < n and not clamped else 0.0
        if np.any(holding != 0) and not clamped and not self._holders:
            self._holders = [h.IClamp(seg) for seg in self.soma]
            for holder in self._holders:
                holder.delay, holder.dur = 0.0, 1e9
        for i, holder in enumerate(self._holders):
            holder.amp = float(holding[i]) if i < n and not clamped else 0.0
        if clamped and not self._clamps:
            self._clamps = [h.SEClamp(seg) for seg in self.soma]
        for i, clamp in enumerate(self._clamps):
            on = clamped and i < n
            clamp.dur1, clamp.amp1, clamp.rs = (tstop + 1.0 if on else 0.0), clamp_voltage or 0.0, 0.01
        # recording at a coarser interval than dt keeps eFEL input small; CoreNEURON
        # only records every step, so then every k-th point is kept
        record_dt = simulation["record_dt"]
        core = simulation["engine"] == "coreneuron"
        every = round(record_dt / simulation["dt"]) if core else 1
        interval = () if core else (record_dt,)
        if self._record_dt != (record_dt, core):
            for vec, seg in zip(self._v_vectors, self.soma):
                vec.record(seg._ref_v, *interval)
            self._record_dt = (record_dt, core)
        if clamped:
            for vec, clamp in zip(self._i_vectors[:n], self._clamps):
                vec.record(clamp._ref_i, *interval)
        vectors = self._i_vectors[:n] if clamped else self._v_vectors[:n]
        if core:
            use_coreneuron_library(self.model["mod_dirs"])
        h.finitialize(self.model["v_init"])
        _run_poking(tstop, poke, core)
        # floating-point t may stop one recording short of tstop: keep what all cells have
        n_points = min((int(vec.size()) + every - 1) // every for vec in vectors) if vectors else 0
        v = np.empty((n, n_points))
        for i, vec in enumerate(vectors):
            v[i] = np.array(vec)[::every][:n_points]
        if clamped:
            for vec in self._i_vectors[:n]:
                vec.play_remove()
        return np.arange(n_points) * record_dt, v

    @staticmethod
    def _integrator(simulation: dict) -> None:
        h = neuron_h()
        cvode = h.CVode()
        if simulation["cvode"]:
            cvode.active(1)
            cvode.use_local_dt(1 if simulation["local_dt"] else 0)
            cvode.atol(simulation["atol"])
        else:
            cvode.use_local_dt(0)
            cvode.active(0)
            cvode.cache_efficient(1)  # contiguous state arrays: faster with many cells
            h.dt = simulation["dt"]
            h.steps_per_ms = 1.0 / simulation["dt"]
