"""The analysis settings: one record from the config, the command line or a job script.

:class:`AnalysisOptions` holds every setting of an O-information analysis with ONE set
of defaults (the table below). The config's ``analysis`` section, ``hpcneuro analyze``
/ ``hpcneuro oinfo`` and the Slurm analysis job all go through it:

- :meth:`AnalysisOptions.from_config` (``hpcneuro run``),
- :meth:`AnalysisOptions.from_cli` (``hpcneuro analyze`` and ``hpcneuro oinfo``),
- :meth:`AnalysisOptions.to_cli_args` (the ``hpcneuro analyze`` options that
  ``hpcneuro submit`` writes into ``analyze.sbatch``),
- :meth:`AnalysisOptions.engine_kwargs` (the keywords of ``compute_oinfo``).

=============  ==========  ============================================================
option         default     meaning
=============  ==========  ============================================================
variables      params      columns analysed: params, features or both (analyze, run)
valid_only     true        only models that meet every validity rule (analyze, run)
features       None        parameters plus these features (analyze, run)
columns        None        exactly these parameter/feature columns (analyze, run)
min_order      3           smallest multiplet size
max_order      None        largest multiplet size; None: min(N, 5)
target         None        only multiplets containing this column; a feature: parameters
                           plus that feature; ``all-features``: each feature in turn
estimator      gc          gc (Gaussian copula) or gauss
bias_correct   false       subtract the Gaussian small-sample entropy bias
units          nats        nats or bits
bootstrap      0           bootstrap resamples for confidence intervals
permutations   0           permutation null: p- and q-values
gradient       false       gradient O-information of each member of kept multiplets
nan_policy     raise       raise or drop (rows with NaN / infinite values)
top            100         most synergistic and most redundant multiplets kept per order
scheduler      local       none, local (Dask LocalCluster), slurm, or tcp://HOST:PORT
n_workers      None        single-threaded workers (None: the machine's cores, or one
                           Slurm job's worth with scheduler slurm)
seed           0           seed of bootstrap resampling, permutations and searches
max_multiplets None        refuse larger exhaustive jobs (None: MAX_MULTIPLETS, 1e11)
search         exhaustive  exhaustive (every multiplet, up to max_multiplets),
                           greedy, annealing or beam (hpcneuro/oinfo/search/)
objective      None        synergy, redundancy or both (None: both) -- searches only
restarts       None        greedy chains / annealing chains per order and sign
                           (None: 10 greedy, 4 annealing) -- greedy, annealing only
beam_width     None        multiplets kept per order by the beam (None: 100)
anneal_steps   None        proposals per annealing chain (None: 20000)
=============  ==========  ============================================================

Search options are None unless given, so that giving one with ``search:
exhaustive`` (where it would be ignored) is refused by :meth:`check`.

``n_workers`` counts single-threaded workers on every path: threads in-process
(scheduler none), LocalCluster worker processes (local), Dask workers spread over
SLURMCluster jobs (slurm) -- never Slurm jobs.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import asdict, dataclass, fields
from typing import Any

#: the values the options take (config choices and CLI choices are these)
VARIABLES = ("params", "features", "both")
SEARCHES = ("exhaustive", "greedy", "annealing", "beam")
OBJECTIVES = ("synergy", "redundancy", "both")
#: what the search options mean when left out (None)
DEFAULT_RESTARTS = {"greedy": 10, "annealing": 4}
DEFAULT_BEAM_WIDTH = 100
DEFAULT_STEPS = 20_000
DEFAULT_OBJECTIVE = "both"
ESTIMATORS = ("gc", "gauss")
UNITS = ("nats", "bits")
NAN_POLICIES = ("raise", "drop")

#: options that choose the analysed table, not the engine (compute_oinfo has no such keyword)
_TABLE_OPTIONS = ("variables", "valid_only", "features", "columns")


@dataclass(frozen=True)
class AnalysisOptions:
    """Every setting of one O-information analysis (see the module docstring)."""

    variables: str = "params"
    valid_only: bool = True
    features: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    min_order: int = 3
    max_order: int | None = None
    target: str | None = None
    estimator: str = "gc"
    bias_correct: bool = False
    units: str = "nats"
    bootstrap: int = 0
    permutations: int = 0
    gradient: bool = False
    nan_policy: str = "raise"
    top: int = 100
    scheduler: str = "local"
    n_workers: int | None = None
    seed: int = 0
    max_multiplets: int | None = None
    search: str = "exhaustive"
    objective: str | None = None
    restarts: int | None = None
    beam_width: int | None = None
    anneal_steps: int | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse search settings that are wrong on their own (one-line UserError).

        The engine checks the rest against the data (orders above N, the
        exhaustive limit) with the same messages.
        """
        check_search(self.search, self.restarts, self.beam_width, self.anneal_steps,
                     self.objective, self.target, self.bootstrap, self.permutations)

    @classmethod
    def from_config(cls, section: dict) -> "AnalysisOptions":
        """From a validated config's ``analysis`` section (keys left out: the defaults)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in section.items() if k in names}
        for key in ("features", "columns"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    @classmethod
    def from_cli(cls, args: argparse.Namespace) -> "AnalysisOptions":
        """From the options of ``hpcneuro analyze`` / ``hpcneuro oinfo`` (``--drop-nan``,
        ``--all-models``); options a command does not have keep their defaults."""
        given = vars(args)
        values = {f.name: given[f.name] for f in fields(cls) if f.name in given}
        if "drop_nan" in given:
            values["nan_policy"] = "drop" if given["drop_nan"] else "raise"
        if "all_models" in given:
            values["valid_only"] = not given["all_models"]
        for key in ("features", "columns"):
            if isinstance(values.get(key), str):
                values[key] = tuple(c.strip() for c in values[key].split(",") if c.strip())
        return cls(**values)

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``hpcneuro.oinfo.compute_oinfo``."""
        out = asdict(self)
        for key in _TABLE_OPTIONS:
            del out[key]
        return out

    def to_cli_args(self) -> str:
        """The ``hpcneuro analyze`` options giving these settings, shell-quoted.

        Every option is written out, so the job runs what the config says even if a
        later version changes a default. ``n_workers`` is left out when None: the job
        script gives the allocation's cores (``--n-workers $SLURM_CPUS_PER_TASK``).
        """
        words = ["--variables", self.variables, "--min-order", str(self.min_order)]
        if self.max_order is not None:
            words += ["--max-order", str(self.max_order)]
        if self.target is not None:
            words += ["--target", self.target]
        if self.features:
            words += ["--features", ",".join(self.features)]
        if self.columns:
            words += ["--columns", ",".join(self.columns)]
        words += ["--estimator", self.estimator, "--units", self.units,
                  "--bootstrap", str(self.bootstrap), "--permutations", str(self.permutations),
                  "--top", str(self.top), "--scheduler", self.scheduler,
                  "--seed", str(self.seed)]
        if self.n_workers is not None:
            words += ["--n-workers", str(self.n_workers)]
        if self.max_multiplets is not None:
            words += ["--max-multiplets", str(self.max_multiplets)]
        words += ["--search", self.search]
        for flag, val in (("--objective", self.objective), ("--restarts", self.restarts),
                          ("--beam-width", self.beam_width),
                          ("--anneal-steps", self.anneal_steps)):
            if val is not None:
                words += [flag, str(val)]
        words += [flag for flag, on in (("--bias-correct", self.bias_correct),
                                        ("--gradient", self.gradient),
                                        ("--drop-nan", self.nan_policy == "drop"),
                                        ("--all-models", not self.valid_only)) if on]
        return " ".join(shlex.quote(w) for w in words)




def check_search(search: str, restarts: int | None, beam_width: int | None,
                 anneal_steps: int | None, objective: str | None, target: str | None,
                 bootstrap: int, permutations: int) -> dict[str, Any] | None:
    """None for the exhaustive engine, else the search's parameters, defaults filled in.

    One-line UserErrors: an unknown search or objective, search options with the
    exhaustive engine (they would be silently ignored), an option of another
    search, restarts / beam width / steps < 1, and what searches do not support yet
    (a target, bootstrap, permutations). Pure Python: no engine import.
    """
    from hpcneuro.errors import UserError

    if search not in SEARCHES:
        raise UserError(f"unknown search {search!r}: use {', '.join(SEARCHES)}")
    given = [flag for flag, val in (("--restarts", restarts), ("--beam-width", beam_width),
                                    ("--anneal-steps", anneal_steps),
                                    ("--objective", objective)) if val is not None]
    if search == "exhaustive":
        if given:
            raise UserError(f"{', '.join(given)} only apply to a search: add --search "
                            "greedy, annealing or beam, or leave them out")
        return None
    if target is not None:
        raise UserError(f"--target is not supported with --search {search} yet: "
                        "leave one of them out")
    if bootstrap or permutations:
        raise UserError(f"--bootstrap and --permutations are not supported with --search "
                        f"{search} yet: leave them out")
    return search_params(search, restarts, beam_width, anneal_steps, objective)


def search_params(method: str, restarts: int | None, beam_width: int | None,
                  steps: int | None, objective: str | None) -> dict[str, Any]:
    """The effective parameters of a search (defaults filled in), validated."""
    from hpcneuro.errors import UserError

    objective = objective or DEFAULT_OBJECTIVE
    if objective not in OBJECTIVES:
        raise UserError(f"unknown objective {objective!r}: use synergy, redundancy or both")
    p: dict[str, Any] = {"search": method, "objective": objective}
    if method in ("greedy", "annealing"):
        p["restarts"] = int(restarts if restarts is not None else DEFAULT_RESTARTS[method])
        if p["restarts"] < 1:
            raise UserError(f"--restarts must be >= 1, got {p['restarts']}")
    elif restarts is not None:
        raise UserError("--restarts applies to --search greedy or annealing, not beam "
                        "(the beam's breadth is --beam-width)")
    if method == "beam":
        p["beam_width"] = int(beam_width if beam_width is not None else DEFAULT_BEAM_WIDTH)
        if p["beam_width"] < 1:
            raise UserError(f"--beam-width must be >= 1, got {p['beam_width']}")
    elif beam_width is not None:
        raise UserError(f"--beam-width applies to --search beam, not {method}")
    if method == "annealing":
        p["anneal_steps"] = int(steps if steps is not None else DEFAULT_STEPS)
        if p["anneal_steps"] < 1:
            raise UserError(f"--anneal-steps must be >= 1, got {p['anneal_steps']}")
    elif steps is not None:
        raise UserError(f"--anneal-steps applies to --search annealing, not {method}")
    return p


#: the defaults, for the config schema and the command-line help
DEFAULTS = AnalysisOptions()
