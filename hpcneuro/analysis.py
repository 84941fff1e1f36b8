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
seed           0           seed of bootstrap resampling and permutations
max_multiplets None        refuse larger exhaustive jobs (None: MAX_MULTIPLETS, 1e11)
=============  ==========  ============================================================

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
        words += [flag for flag, on in (("--bias-correct", self.bias_correct),
                                        ("--gradient", self.gradient),
                                        ("--drop-nan", self.nan_policy == "drop"),
                                        ("--all-models", not self.valid_only)) if on]
        return " ".join(shlex.quote(w) for w in words)


#: the defaults, for the config schema and the command-line help
DEFAULTS = AnalysisOptions()
