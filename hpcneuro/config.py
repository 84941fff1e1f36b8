"""Campaign configuration: one YAML file, validated completely before any work starts.

A config is checked in two passes. The first is structural (:data:`SCHEMA`): unknown
keys, wrong types, missing values, allowed choices; defaults are filled in. The second
is semantic (:func:`_check_semantics`): bounds, cross-references between sections,
mechanism and eFEL feature names. Every problem raises :class:`ConfigError` whose
message starts with the key path, e.g. ``parameters[2].low: must be < high (got 5.0 >= 1.0)``.

The validated config is a plain nested ``dict`` (JSON-compatible): it is stored verbatim
in the results file. Its paths are made absolute for the run; ``files`` records each
named file as written and its contents' sha256, and :func:`config_hash` hashes the
config as written plus those contents, to decide whether a file can be resumed (a
moved campaign folder can; an edited morphology, .mod file, table or GENES.h5 cannot).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Callable

import yaml

from hpcneuro import analysis
from hpcneuro.errors import ConfigError, UserError
from hpcneuro.hashing import file_sha256  # noqa: F401 - part of this module's API

_REQUIRED = object()
_ANALYSIS = analysis.DEFAULTS


class Field:
    """One configuration entry: its type, default and documentation."""

    def __init__(self, kind: Any, default: Any = _REQUIRED, doc: str = "",
                 choices: tuple | None = None, check: Callable[[Any], str | None] | None = None):
        self.kind = kind
        self.default = default
        self.doc = doc
        self.choices = choices
        self.check = check


class ListOf:
    """A list whose items all follow ``item`` (a Field kind or a schema dict)."""

    def __init__(self, item: Any, min_len: int = 0):
        self.item = item
        self.min_len = min_len


def _positive(x: float) -> str | None:
    return None if x > 0 else f"must be > 0 (got {x})"


def _non_negative(x: float) -> str | None:
    return None if x >= 0 else f"must be >= 0 (got {x})"


#: seeds key a 64-bit counter-based hash; larger ones would alias smaller ones
SEED_LIMIT = 2 ** 64


def _seed_range(x: int) -> str | None:
    return None if 0 <= x < SEED_LIMIT else f"must be in 0 .. 2**64 - 1 (got {x})"


def _at_least(n: int) -> Callable[[Any], str | None]:
    return lambda x: None if x >= n else f"must be >= {n} (got {x})"


SECTION_LIST = Field(str, "all", "section list the mechanism lives on",
                     choices=("all", "soma", "axon", "basal", "apical", "dend"))

MECHANISM = {
    "name": Field(str, doc="mechanism SUFFIX, e.g. hh, pas, NaT"),
    "sections": SECTION_LIST,
}

FIXED_VALUE = {
    "mechanism": Field(str, doc="mechanism SUFFIX"),
    "variable": Field(str, doc="mechanism variable, e.g. gbar or e"),
    "value": Field(float),
    "sections": SECTION_LIST,
}

PARAMETER = {
    "name": Field(str, None, "column name in the results (default VARIABLE_MECHANISM)"),
    "mechanism": Field(str, doc="mechanism SUFFIX"),
    "variable": Field(str, doc="mechanism variable, e.g. gnabar"),
    "sections": SECTION_LIST,
    "low": Field(float, doc="lower bound, in the variable's units"),
    "high": Field(float, doc="upper bound"),
    "scale": Field(str, "linear", "sample uniformly in linear or log space",
                   choices=("linear", "log")),
    "distance_function": Field(str, None, "scale the value on each segment by this function "
                                          "of 'distance' (um from the soma), e.g. "
                                          "'exp(distance / 300)'"),
}

MIXTURE_COMPONENT = {
    "weight": Field(float, 1.0, "relative weight (> 0); weights are normalised",
                    check=_positive),
    "ranges": Field(ListOf({
        "parameter": Field(str, doc="parameter name"),
        "low": Field(float, None, "lower bound within the component"),
        "high": Field(float, None, "upper bound within the component"),
        "centre": Field(float, None, "centre of the range (with width)"),
        "width": Field(float, None, "full width of the range: centre +- width / 2",
                       check=_positive),
    }), [], "the component's own range of some parameters (the others keep their bounds)"),
    "correlation": Field(ListOf(ListOf(float)), None, "P x P rank-correlation target"),
    "modules": Field(ListOf({
        "parameters": Field(ListOf(str, 2), doc="names of coregulated parameters"),
        "rho": Field(float, doc="within-module correlation, in (-1, 1)"),
    }), [], "groups of coregulated parameters within the component"),
}

PROTOCOL_TYPES = ("step", "rheobase", "rmp", "input_resistance")

PROTOCOL = {
    "name": Field(str, doc="protocol name, used as the prefix of its features"),
    "type": Field(str, "step", choices=PROTOCOL_TYPES),
    "amplitude": Field(float, None, "step current (nA)"),
    "amplitude_rel": Field(float, None, "step current as a multiple of the model's rheobase"),
    "relative_to": Field(str, None, "the rheobase protocol amplitude_rel refers to"),
    "delay": Field(float, 100.0, "time before the step (ms)", check=_non_negative),
    "duration": Field(float, None, "step length (ms)", check=_positive),
    "tstop": Field(float, doc="total simulated time (ms)", check=_positive),
    "holding": Field(float, 0.0, "constant holding current (nA)"),
    "holding_voltage": Field(float, None, "hold the soma at this potential (mV) with the "
                                          "current a voltage clamp finds"),
    "low": Field(float, 0.0, "rheobase: lowest current searched (nA)"),
    "high": Field(float, 1.0, "rheobase: highest current searched (nA)"),
    "tolerance": Field(float, 0.005, "rheobase: bisection tolerance (nA)", check=_positive),
}

VALIDITY = {
    "feature": Field(str, doc="PROTOCOL.FEATURE"),
    "low": Field(float, None),
    "high": Field(float, None),
    "mean": Field(float, None, "experimental mean"),
    "std": Field(float, None, "experimental standard deviation", check=_positive),
    "n_std": Field(float, 3.0, "accept within mean +- n_std * std", check=_positive),
}

SCHEMA: dict[str, Any] = {
    "name": Field(str, doc="campaign name"),
    "description": Field(str, ""),
    "seed": Field(int, 1, "random seed: sample i is a function of (seed, i) only",
                  check=_seed_range),
    "model": Field({
        "soma": Field({
            "length": Field(float, 20.0, "um", check=_positive),
            "diam": Field(float, 20.0, "um", check=_positive),
        }, {}),
        "cm": Field(float, 1.0, "membrane capacitance (uF/cm2)", check=_positive),
        "Ra": Field(float, 100.0, "axial resistivity (ohm cm)", check=_positive),
        "celsius": Field(float, 34.0, "temperature (degC)"),
        "v_init": Field(float, -65.0, "initial membrane potential (mV)"),
        "morphology": Field(str, None, "SWC file (default: a one-compartment soma)"),
        "max_segment_length": Field(float, 40.0, "um; morphologies get odd nseg per section",
                                    check=_positive),
        "ion_reversal": Field({
            "na": Field(float, None, "ena (mV)"),
            "k": Field(float, None, "ek (mV)"),
            "ca": Field(float, None, "eca (mV); usually left to the Ca mechanisms"),
        }, {}, "reversal potentials set on every section using the ion"),
        "mechanisms": Field(ListOf(MECHANISM, 1), doc="mechanisms to insert"),
        "fixed": Field(ListOf(FIXED_VALUE), [], "mechanism variables set to a value"),
        "mod_dirs": Field(ListOf(str), [], "extra folders of .mod files"),
    }),
    "parameters": Field(ListOf(PARAMETER, 1), doc="sampled parameters"),
    "sampling": Field({
        "method": Field(str, "uniform", "how the unit cube is filled",
                        choices=("uniform", "sobol", "lhs", "grid", "table", "mixture",
                                 "mcmc")),
        "n_samples": Field(int, None, "number of models (grid: points_per_axis ** P; "
                                      "table: its number of rows, if omitted)"),
        "points_per_axis": Field(int, None, "grid only: points along every parameter",
                                 check=_at_least(2)),
        "correlation": Field(ListOf(ListOf(float)), None,
                             "P x P rank-correlation target, through a Gaussian copula"),
        "modules": Field(ListOf({
            "parameters": Field(ListOf(str, 2), doc="names of coregulated parameters"),
            "rho": Field(float, doc="within-module correlation, in (-1, 1)"),
        }), [], "groups of coregulated parameters (a block correlation matrix)"),
        "table": Field(str, None, "table only: CSV/TSV/.npy/FILE.h5:/dataset with one column "
                                  "per parameter name (also mcmc with start: table)"),
        # method mcmc: defaults and checks in hpcneuro.mcmc.options
        "n_chains": Field(int, None, "mcmc: independent chains"),
        "n_steps": Field(int, None, "mcmc: evaluated proposals per chain (start included)"),
        "temperature": Field(float, None, "mcmc: T of exp(-(cost' - cost) / T) (1.0)"),
        "proposal_std": Field(float, None, "mcmc: expected step length in [-1, 1] units (0.1)"),
        "burn_in": Field(int, None, "mcmc: first steps not counted as valid (0)"),
        "thin": Field(int, None, "mcmc: keep every thin-th step after burn_in (1)"),
        "cost": Field(str, None, "mcmc: max or mean of the rule scores (max)"),
        "threshold": Field(float, None, "mcmc: valid = cost < threshold (default: the "
                                        "validity rules)"),
        "start": Field(str, None, "mcmc: random or table (random)"),
        "correlation_from": Field({
            "genes": Field(str, doc="a GENES.h5 written by hpcneuro genes"),
            "group": Field(str, doc="one of its groups (--group-by labels), or 'all cells'"),
            "matrix": Field(ListOf(ListOf(float)), None, "filled in (what you give is "
                            "replaced): the P x P Spearman matrix built from the genes"),
        }, None, "the correlation of the gbar parameters from a group's channel genes"),
        "components": Field(ListOf(MIXTURE_COMPONENT, 1), None,
                            "mixture only: weighted sub-populations (subclusters)"),
    }),
    "protocols": Field(ListOf(PROTOCOL, 1)),
    "features": Field(ListOf(str), [], "PROTOCOL.FEATURE names (eFEL features)"),
    "validity": Field(ListOf(VALIDITY), [], "criteria a valid model meets"),
    "simulation": Field({
        "dt": Field(float, 0.025, "fixed time step (ms)", check=_positive),
        "record_dt": Field(float, 0.1, "sampling interval of recorded traces (ms)",
                           check=_positive),
        "batch_size": Field(int, 50, "cells simulated together in one NEURON run",
                            check=_at_least(1)),
        "mode": Field(str, "batched", "batched: batch_size cells per run; single: one cell "
                                      "per run (the reference)", choices=("batched", "single")),
        "engine": Field(str, None, "coreneuron: fixed dt, about twice as fast (the default "
                                   "without cvode); neuron: needed for cvode",
                        choices=("coreneuron", "neuron")),
        "cvode": Field(bool, False, "variable time step (CVode) instead of fixed dt"),
        "local_dt": Field(bool, True, "with cvode: each cell its own time step"),
        "atol": Field(float, 1e-3, "with cvode: absolute tolerance", check=_positive),
        "store_traces_every": Field(int, 0, "store the voltage traces of every k-th sample "
                                            "(0: none)", check=_at_least(0)),
    }, {}),
    # defaults and choices: hpcneuro.analysis.AnalysisOptions, shared with the CLI
    "analysis": Field({
        "variables": Field(str, _ANALYSIS.variables, "what to analyse",
                           choices=analysis.VARIABLES),
        "valid_only": Field(bool, _ANALYSIS.valid_only, "analyse valid models only"),
        "features": Field(ListOf(str), _ANALYSIS.features, "parameters plus these features"),
        "columns": Field(ListOf(str), _ANALYSIS.columns, "exactly these columns"),
        "min_order": Field(int, _ANALYSIS.min_order, check=_at_least(3)),
        "max_order": Field(int, _ANALYSIS.max_order, "largest multiplet size "
                                                     "(default min(N, 5))", check=_at_least(3)),
        "target": Field(str, _ANALYSIS.target, "only multiplets containing this column"),
        "estimator": Field(str, _ANALYSIS.estimator, choices=analysis.ESTIMATORS),
        "bias_correct": Field(bool, _ANALYSIS.bias_correct),
        "units": Field(str, _ANALYSIS.units, choices=analysis.UNITS),
        "bootstrap": Field(int, _ANALYSIS.bootstrap, "resamples for confidence intervals",
                           check=_at_least(0)),
        "permutations": Field(int, _ANALYSIS.permutations, "permutation null (p, q-values)",
                              check=_at_least(0)),
        "gradient": Field(bool, _ANALYSIS.gradient, "gradient O-information of members"),
        "nan_policy": Field(str, _ANALYSIS.nan_policy, choices=analysis.NAN_POLICIES),
        "top": Field(int, _ANALYSIS.top, "multiplets reported per order and sign",
                     check=_at_least(1)),
        "scheduler": Field(str, _ANALYSIS.scheduler, "none, local, slurm or a scheduler address"),
        "n_workers": Field(int, _ANALYSIS.n_workers, "single-threaded workers (default: cores)",
                           check=_at_least(1)),
        "seed": Field(int, _ANALYSIS.seed, "seed of bootstrap, permutations and searches"),
        "max_multiplets": Field(int, _ANALYSIS.max_multiplets, "refuse larger exhaustive "
                                "jobs (default 1e11)", check=_at_least(1)),
        "search": Field(str, _ANALYSIS.search, "exhaustive, or a search past exhaustive "
                        "reach: greedy, annealing, beam", choices=analysis.SEARCHES),
        "objective": Field(str, _ANALYSIS.objective, "searches: synergy, redundancy or both",
                           choices=analysis.OBJECTIVES),
        "restarts": Field(int, _ANALYSIS.restarts, "greedy/annealing chains",
                          check=_at_least(1)),
        "beam_width": Field(int, _ANALYSIS.beam_width, "beam: multiplets kept per order",
                            check=_at_least(1)),
        "anneal_steps": Field(int, _ANALYSIS.anneal_steps, "annealing: proposals per chain",
                              check=_at_least(1)),
    }, {}),
    "files": Field(dict, {}, "filled in (what you give is replaced): KEY PATH -> {path: as "
                             "written, sha256: of the contents} of every file the config "
                             "names; see config_hash"),
}


def _type_name(kind: Any) -> str:
    if isinstance(kind, dict) or kind is dict:
        return "a mapping"
    if isinstance(kind, ListOf):
        return "a list"
    return {str: "a string", float: "a number", int: "an integer", bool: "true or false"}[kind]


def _coerce(value: Any, kind: Any, path: str) -> Any:
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            raise ConfigError(path, f"must be {_type_name(kind)} (got {value!r})")
        return _validate_mapping(value, kind, path)
    if isinstance(kind, ListOf):
        if not isinstance(value, list):
            raise ConfigError(path, f"must be a list (got {value!r})")
        if len(value) < kind.min_len:
            raise ConfigError(path, f"needs at least {kind.min_len} entr"
                              f"{'y' if kind.min_len == 1 else 'ies'}")
        return [_coerce(v, kind.item, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind is dict:  # a free-form mapping (filled in by validate)
        if not isinstance(value, dict):
            raise ConfigError(path, f"must be a mapping (got {value!r})")
        return copy.deepcopy(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(path, f"must be a number (got {value!r})")
        if not math.isfinite(value):
            raise ConfigError(path, f"must be finite (got {value!r})")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"must be an integer (got {value!r})")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"must be true or false (got {value!r})")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"must be a string (got {value!r})")
        return value
    raise TypeError(kind)


def _validate_mapping(data: dict, schema: dict, path: str) -> dict:
    prefix = f"{path}." if path else ""
    unknown = sorted(set(data) - set(schema))
    if unknown:
        key = unknown[0]
        raise ConfigError(f"{prefix}{key}", "unknown key; expected one of: "
                          + ", ".join(sorted(schema)))
    out = {}
    for key, field in schema.items():
        here = f"{prefix}{key}"
        if key not in data or data[key] is None and field.default is not None:
            if field.default is _REQUIRED:
                raise ConfigError(here, f"is required ({field.doc or _type_name(field.kind)})")
            value = copy.deepcopy(field.default)
            if isinstance(field.kind, dict) and value is not None:
                value = _validate_mapping(value, field.kind, here)
            out[key] = value
            continue
        value = data[key]
        if value is None:  # explicit null where the default is None
            out[key] = None
            continue
        value = _coerce(value, field.kind, here)
        if field.choices and value not in field.choices:
            raise ConfigError(here, f"must be one of {', '.join(field.choices)} (got {value!r})")
        if field.check:
            problem = field.check(value)
            if problem:
                raise ConfigError(here, problem)
        out[key] = value
    return out


# --- semantic checks ---------------------------------------------------------------

_BUILTIN_MECHANISMS = ("hh", "pas")


def _parse_mod(path: Path) -> tuple[str, set[str]]:
    """SUFFIX and user-settable variable names of a .mod file, without compiling it."""
    text = re.sub(r"COMMENT.*?ENDCOMMENT", "", path.read_text(errors="replace"), flags=re.S)
    text = re.sub(r":[^\n]*", "", text)
    suffix = re.search(r"\bSUFFIX\s+(\w+)", text)
    if not suffix:
        return "", set()
    names: set[str] = set()
    m = re.search(r"\bPARAMETER\s*\{(.*?)\}", text, flags=re.S)
    if m:  # PARAMETERs are what a user may set
        names.update(re.findall(r"^\s*(\w+)", m.group(1), flags=re.M))
    return suffix.group(1), names


def _builtin_variables(name: str) -> set[str]:
    """PARAMETERs (what a user may set) of a mechanism built into NEURON (hh, pas)."""
    from hpcneuro.nrn import import_neuron

    h = import_neuron().h
    standard = h.MechanismStandard(name, 1)  # 1: PARAMETER variables
    ref = h.ref("")
    names = set()
    for i in range(int(standard.count())):
        standard.name(ref, i)
        names.add(ref[0].removesuffix(f"_{name}"))
    return names


def known_mechanisms(mod_dirs: list[str]) -> dict[str, set[str]]:
    """Mechanism SUFFIX -> settable variable names: built-ins plus all .mod files."""
    from hpcneuro.mechanisms import PACKAGE_MOD_DIR

    known: dict[str, set[str]] = {}
    for name in _BUILTIN_MECHANISMS:
        known[name] = _builtin_variables(name)
    origin: dict[str, Path] = {}
    for i, folder in enumerate([PACKAGE_MOD_DIR, *map(Path, mod_dirs)]):
        for f in sorted(Path(folder).glob("*.mod")):
            suffix, variables = _parse_mod(f)
            if not suffix:
                continue
            if suffix in known:
                where = f"model.mod_dirs[{i - 1}]" if i else "model.mod_dirs"
                raise ConfigError(where, f"{f} defines mechanism {suffix!r}, already defined "
                                  f"by {origin.get(suffix, 'NEURON')}; rename its SUFFIX")
            known[suffix] = variables
            origin[suffix] = f
    return known


def efel_feature_names() -> set[str]:
    import efel

    return set(efel.get_feature_names())


def _check_semantics(cfg: dict, base_dir: Path) -> None:
    model = cfg["model"]
    # the files the config names, as written (before the paths are resolved) and hashed
    files: dict[str, dict[str, str]] = {}
    for i, d in enumerate(model["mod_dirs"]):
        p = Path(d) if os.path.isabs(d) else base_dir / d
        if not p.is_dir():
            raise ConfigError(f"model.mod_dirs[{i}]", f"folder not found: {p}")
        model["mod_dirs"][i] = str(p.resolve())
        files[f"model.mod_dirs[{i}]"] = {"path": d, "sha256": _mod_dir_sha256(p)}
    if model["morphology"]:
        from hpcneuro.model import check_swc

        written = model["morphology"]
        p = Path(written)
        p = p if p.is_absolute() else base_dir / p
        try:
            check_swc(p)
        except UserError as exc:
            raise ConfigError("model.morphology", str(exc).split(": ", 1)[1]) from None
        model["morphology"] = str(p.resolve())
        files["model.morphology"] = {"path": written, "sha256": file_sha256(p)}
    known = known_mechanisms(model["mod_dirs"])
    inserted = set()
    for i, mech in enumerate(model["mechanisms"]):
        if mech["name"] not in known:
            raise ConfigError(f"model.mechanisms[{i}].name",
                              f"unknown mechanism {mech['name']!r}; known: "
                              + ", ".join(sorted(known)))
        inserted.add(mech["name"])

    def check_variable(entry: dict, path: str) -> None:
        if entry["mechanism"] not in inserted:
            raise ConfigError(f"{path}.mechanism",
                              f"{entry['mechanism']!r} is not inserted; add it to "
                              "model.mechanisms (inserted: " + ", ".join(sorted(inserted)) + ")")
        variables = known[entry["mechanism"]]
        if entry["variable"] not in variables:
            raise ConfigError(f"{path}.variable",
                              f"{entry['mechanism']} has no variable {entry['variable']!r}; "
                              "expected one of: " + ", ".join(sorted(variables)))

    for i, fixed in enumerate(model["fixed"]):
        check_variable(fixed, f"model.fixed[{i}]")

    names = []
    for i, p in enumerate(cfg["parameters"]):
        path = f"parameters[{i}]"
        check_variable(p, path)
        if p["name"] is None:
            p["name"] = f"{p['variable']}_{p['mechanism']}"
        if p["low"] >= p["high"]:
            raise ConfigError(f"{path}.low", f"must be < high (got {p['low']} >= {p['high']})")
        if p["scale"] == "log" and p["low"] <= 0:
            raise ConfigError(f"{path}.low", f"must be > 0 for scale: log (got {p['low']})")
        if p["distance_function"] is not None:
            from hpcneuro.model import distance_function

            try:
                f = distance_function(p["distance_function"])
                f(0.0), f(100.0)
            except (ValueError, ArithmeticError) as exc:
                raise ConfigError(f"{path}.distance_function", str(exc)) from None
        if p["name"] in names:
            raise ConfigError(f"{path}.name", f"duplicate parameter name {p['name']!r}")
        names.append(p["name"])

    protocols = _check_protocols(cfg["protocols"])
    efel_names = efel_feature_names()
    seen = set()
    for i, feat in enumerate(cfg["features"]):
        path = f"features[{i}]"
        prot, _, efel_name = feat.partition(".")
        if not efel_name:
            raise ConfigError(path, f"must be PROTOCOL.FEATURE, e.g. "
                              f"{next(iter(protocols))}.mean_frequency (got {feat!r})")
        if prot not in protocols:
            raise ConfigError(path, f"unknown protocol {prot!r}; defined: "
                              + ", ".join(protocols))
        specials = _special_features(protocols[prot])
        if protocols[prot]["type"] == "rheobase" and efel_name not in specials:
            raise ConfigError(path, f"a rheobase protocol gives only {prot}.rheobase "
                              f"(got {feat!r})")
        if efel_name not in efel_names and efel_name not in specials:
            close = sorted(n for n in efel_names if efel_name.lower()[:6] in n.lower())[:5]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(path, f"unknown eFEL feature {efel_name!r}{hint}")
        if feat in seen:
            raise ConfigError(path, f"duplicate feature {feat!r}")
        seen.add(feat)

    for i, rule in enumerate(cfg["validity"]):
        path = f"validity[{i}]"
        if rule["feature"] not in seen:
            raise ConfigError(f"{path}.feature", f"{rule['feature']!r} is not in features; "
                              "add it there first")
        has_range = rule["low"] is not None or rule["high"] is not None
        has_stats = rule["mean"] is not None or rule["std"] is not None
        if has_range == has_stats:
            raise ConfigError(path, "give either low/high or mean/std (n_std), not "
                              + ("both" if has_range else "neither"))
        if has_stats and (rule["mean"] is None or rule["std"] is None):
            raise ConfigError(path, "mean and std go together")
        if (has_range and rule["low"] is not None and rule["high"] is not None
                and rule["low"] >= rule["high"]):
            raise ConfigError(f"{path}.low",
                              f"must be < high (got {rule['low']} >= {rule['high']})")

    from hpcneuro.sampling import validate_sampling
    from hpcneuro.tables import table_file

    written_table = cfg["sampling"]["table"]
    from_genes = cfg["sampling"]["correlation_from"]
    written_genes = from_genes["genes"] if from_genes else None
    validate_sampling(cfg["sampling"], cfg["parameters"], base_dir, cfg["validity"])
    if cfg["sampling"]["table"] is not None:  # validate_sampling made the path absolute
        files["sampling.table"] = {
            "path": written_table,
            "sha256": file_sha256(Path(table_file(cfg["sampling"]["table"])))}
    if from_genes:  # made absolute too; its matrix is derived, see identity
        files["sampling.correlation_from.genes"] = {
            "path": written_genes, "sha256": file_sha256(from_genes["genes"])}
    cfg["files"] = files

    sim = cfg["simulation"]
    if sim["record_dt"] < sim["dt"]:
        raise ConfigError("simulation.record_dt",
                          f"must be >= simulation.dt (got {sim['record_dt']} < {sim['dt']})")
    if sim["engine"] is None:
        sim["engine"] = "neuron" if sim["cvode"] else "coreneuron"
    if sim["engine"] == "coreneuron":
        if sim["cvode"]:
            raise ConfigError("simulation.engine", "CoreNEURON has no variable time step: "
                              "set engine: neuron to use cvode: true")
        # CoreNEURON records every step; hpcneuro keeps every k-th point
        steps = sim["record_dt"] / sim["dt"]
        if abs(steps - round(steps)) > 1e-9 * steps:
            raise ConfigError("simulation.record_dt", f"must be a whole multiple of dt with "
                              f"engine: coreneuron (got {sim['record_dt']} / {sim['dt']} = "
                              f"{steps:g}); change it or set engine: neuron")

    _check_analysis(cfg["analysis"], n_params=len(names), n_features=len(seen))
    _check_analysis_columns(cfg["analysis"], names, list(cfg["features"]))


def _check_analysis(analysis: dict, n_params: int, n_features: int) -> None:
    """Orders within the analysed variables; max_order None (min(N, 5)) always fits."""
    if analysis["max_order"] is None:
        return
    if analysis["max_order"] < analysis["min_order"]:
        raise ConfigError("analysis.max_order", "must be >= analysis.min_order (got "
                          f"{analysis['max_order']} < {analysis['min_order']})")
    n_vars = {"params": n_params, "features": n_features,
              "both": n_params + n_features}[analysis["variables"]]
    if analysis["max_order"] > n_vars:
        raise ConfigError("analysis.max_order", f"must be <= the number of analysed "
                          f"variables ({n_vars} {analysis['variables']}), got "
                          f"{analysis['max_order']}")


def _check_analysis_columns(analysis: dict, params: list[str], features: list[str]) -> None:
    """analysis.features / columns / target name columns the campaign has."""
    for key, known in (("features", features), ("columns", params + features)):
        for i, name in enumerate(analysis.get(key) or []):
            if name not in known:
                raise ConfigError(f"analysis.{key}[{i}]", f"unknown column {name!r}; known: "
                                  + ", ".join(known))
    target = analysis.get("target")
    if target is not None and target != "all-features" and target not in params + features:
        raise ConfigError("analysis.target", f"unknown column {target!r}; a parameter, a "
                          "feature or all-features")


def _special_features(protocol: dict) -> tuple[str, ...]:
    if protocol["type"] == "rheobase":
        return ("rheobase",)
    return ("holding_current",) if protocol["holding_voltage"] is not None else ()


def _check_protocols(entries: list[dict]) -> dict[str, dict]:
    protocols: dict[str, dict] = {}
    rheobases = [p["name"] for p in entries if p["type"] == "rheobase"]
    for i, prot in enumerate(entries):
        path = f"protocols[{i}]"
        kind = prot["type"]
        if prot["name"] in protocols:
            raise ConfigError(f"{path}.name", f"duplicate protocol name {prot['name']!r}")
        if not re.fullmatch(r"[A-Za-z_][\w-]*", prot["name"]):
            raise ConfigError(f"{path}.name", "must be letters, digits, _ or - "
                              f"(got {prot['name']!r})")
        if kind == "rmp":
            for key in ("amplitude", "amplitude_rel", "duration"):
                if prot[key] is not None:
                    raise ConfigError(f"{path}.{key}", "an rmp protocol has no stimulus; "
                                      "remove this key")
            protocols[prot["name"]] = prot
            continue
        if prot["duration"] is None:
            raise ConfigError(f"{path}.duration", f"is required for a {kind} protocol (ms)")
        end = prot["delay"] + prot["duration"]
        if end > prot["tstop"]:
            raise ConfigError(f"{path}.tstop", "must be >= delay + duration "
                              f"(got {prot['tstop']} < {end})")
        if prot["holding_voltage"] is not None and prot["holding"] != 0.0:
            raise ConfigError(f"{path}.holding", "give holding (nA) or holding_voltage (mV), "
                              "not both")
        if kind == "rheobase":
            if prot["low"] >= prot["high"]:
                raise ConfigError(f"{path}.low", f"must be < high (got {prot['low']} >= "
                                  f"{prot['high']})")
            if prot["tolerance"] >= prot["high"] - prot["low"]:
                raise ConfigError(f"{path}.tolerance", "must be smaller than high - low")
        else:
            given = [k for k in ("amplitude", "amplitude_rel") if prot[k] is not None]
            if len(given) != 1:
                raise ConfigError(path, "give exactly one of amplitude (nA) or amplitude_rel "
                                  f"(x rheobase) (got {', '.join(given) or 'neither'})")
            if kind == "input_resistance" and (prot["amplitude"] or -1.0) >= 0:
                raise ConfigError(f"{path}.amplitude", "an input_resistance step must be "
                                  f"negative (got {prot['amplitude']})")
            if prot["amplitude_rel"] is not None:
                if prot["relative_to"] is None:
                    if len(rheobases) != 1:
                        raise ConfigError(f"{path}.relative_to",
                                          "amplitude_rel needs a rheobase protocol; "
                                          + ("add one (type: rheobase)" if not rheobases else
                                             "name one of: " + ", ".join(rheobases)))
                    prot["relative_to"] = rheobases[0]
                elif prot["relative_to"] not in rheobases:
                    raise ConfigError(f"{path}.relative_to", f"{prot['relative_to']!r} is not "
                                      "a rheobase protocol; defined: "
                                      + (", ".join(rheobases) or "none"))
        protocols[prot["name"]] = prot
    return protocols


def validate(raw: Any, base_dir: str | os.PathLike = ".") -> dict:
    """Validate a parsed config and return it resolved (defaults filled in)."""
    if not isinstance(raw, dict):
        raise ConfigError("", "the config must be a YAML mapping of sections "
                          "(name, model, parameters, sampling, protocols, ...)")
    cfg = _validate_mapping(raw, SCHEMA, "")
    _check_semantics(cfg, Path(base_dir))
    return cfg


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (KEY, VALUE parsed as YAML): ``sampling.n_samples=2000`` ->
    ('sampling.n_samples', 2000); ``parameters[0].high=0.3``; ``seed=[1]`` a list."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z_][\w]*(\[\d+\]|\.[A-Za-z_][\w]*)*",
                                               key):
        raise ConfigError("--set", f"expected KEY=VALUE with KEY a dotted path such as "
                          f"sampling.n_samples or parameters[0].high (got {text!r})")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ConfigError(key, f"--set value {value!r} is not valid YAML: "
                          f"{str(exc).splitlines()[0]}") from None


def apply_overrides(raw: Any, overrides: list[str]) -> Any:
    """The parsed config with ``--set KEY=VALUE`` overrides applied, in order (a copy).

    Missing mappings on the way are created (``--set simulation.dt=0.01`` works without
    a simulation section); list entries must exist. The result is validated like the
    file, so a bad value is the usual key-path error (e.g. ``sampling.n_samples: must
    be an integer``); an index past a list's end names the list and its length.
    """
    out = copy.deepcopy(raw)
    for text in overrides or []:
        key, value = parse_override(text)
        if not isinstance(out, dict):
            raise ConfigError("", "the config must be a YAML mapping of sections")
        parts = _key_parts(key)
        node, here = out, ""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            label = f"{here}[{part}]" if isinstance(part, int) else (
                f"{here}.{part}" if here else part)
            if isinstance(part, int):
                if not isinstance(node, list):
                    raise ConfigError(here, f"is not a list: --set {key} cannot index it")
                if part >= len(node):
                    raise ConfigError(label, f"no such entry: {here} has {len(node)} "
                                      f"entr{'y' if len(node) == 1 else 'ies'} (--set {key})")
            else:
                if not isinstance(node, dict):
                    raise ConfigError(here, f"is not a mapping: --set {key} cannot set "
                                      f"{part!r} in it")
                if not last and node.get(part) is None:
                    node[part] = [] if isinstance(parts[i + 1], int) else {}
            if last:
                node[part] = value
            else:
                node = node[part]
            here = label
    return out


def load(path: str | os.PathLike, overrides: list[str] | None = None) -> dict:
    """Read and validate a campaign config file, with ``--set KEY=VALUE`` overrides
    (:func:`apply_overrides`) applied before validation."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("", f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"{path} is not UTF-8 text (byte {exc.start}: "
                          f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{path} is not valid YAML: {exc}") from None
    if overrides:
        raw = apply_overrides(raw, overrides)
    return validate(raw, path.parent)


def dumps(cfg: dict) -> str:
    """The resolved config as canonical text (stored in results files)."""
    return json.dumps(cfg, sort_keys=True, indent=1)


def _mod_dir_sha256(folder: Path) -> str:
    """sha256 over the names and contents of a folder's .mod files (what gets compiled)."""
    digest = hashlib.sha256()
    for f in sorted(folder.glob("*.mod")):
        digest.update(f"{f.name}\0{file_sha256(f)}\0".encode())
    return digest.hexdigest()


def _key_parts(key: str) -> list[str | int]:
    """'model.mod_dirs[0]' -> ['model', 'mod_dirs', 0]."""
    return [int(p[1:-1]) if p.startswith("[") else p
            for p in re.findall(r"\[\d+\]|[^.\[\]]+", key)]


#: filled-in keys computed from a named file's contents: left out of the identity, which
#: has the file's sha256 instead (a changed GENES.h5 reads "... (file contents)")
DERIVED = ("sampling.correlation_from.matrix",)


def identity(cfg: dict) -> tuple[dict, dict[str, str]]:
    """What a campaign is, independent of where its folder lies.

    Returns (the config with every file it names as the user wrote it -- paths
    relative to the config file stay relative --, KEY PATH -> sha256 of that file's
    contents). Moving the config together with its files keeps both; editing a
    named file changes the second.
    """
    out = copy.deepcopy(cfg)
    files = out.pop("files", None) or {}
    # derived from a named file (hashed below) by hpcneuro itself, not written by the user
    for derived in DERIVED:
        *parents, last = _key_parts(derived)
        node = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    for key, entry in files.items():
        *parents, last = _key_parts(key)
        node = out
        for part in parents:
            node = node[part]
        node[last] = entry["path"]
    return out, {key: entry["sha256"] for key, entry in files.items()}


def config_hash(cfg: dict) -> str:
    """16 hex digits over :func:`identity`: equal for a moved campaign folder,
    different for any changed setting or named file's contents."""
    written, contents = identity(cfg)
    text = json.dumps([written, contents], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def diff(old: dict, new: dict) -> list[str]:
    """Key paths that differ between two resolved configs (compared by
    :func:`identity`); a named file whose contents changed is listed as
    ``KEY (file contents)``, e.g. ``model.morphology (file contents)``."""
    (old_cfg, old_files), (new_cfg, new_files) = identity(old), identity(new)
    out = _diff(old_cfg, new_cfg, "")
    out += [f"{key} (file contents)" for key in sorted(set(old_files) | set(new_files))
            if old_files.get(key) != new_files.get(key) and key not in out]
    return out


def _diff(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else key
            if key not in old or key not in new:
                out.append(sub)
            else:
                out.extend(_diff(old[key], new[key], sub))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new))
                for d in _diff(a, b, f"{path}[{i}]")]
    return [] if old == new else [path or "(root)"]


def input_files(cfg: dict) -> list[str]:
    """The files a resolved campaign reads (morphology, parameter table, GENES.h5): an
    output must never be one of them."""
    from hpcneuro.tables import table_file

    out = [cfg["model"]["morphology"]] if cfg["model"]["morphology"] else []
    if cfg["sampling"]["table"] is not None:  # method table, or mcmc with start: table
        out.append(table_file(cfg["sampling"]["table"]))
    if cfg["sampling"].get("correlation_from"):
        out.append(cfg["sampling"]["correlation_from"]["genes"])
    return out


def feature_names(cfg: dict) -> list[str]:
    return list(cfg["features"])


def parameter_names(cfg: dict) -> list[str]:
    return [p["name"] for p in cfg["parameters"]]
