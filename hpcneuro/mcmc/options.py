"""The ``sampling`` keys of ``method: mcmc``: defaults, validation, derived sizes.

=============  ========  ==================================================================
key            default   meaning
=============  ========  ==================================================================
n_chains       required  independent chains
n_steps        required  evaluated proposals per chain, the start point included (step 0)
temperature    1.0       T of the acceptance probability min(1, exp(-(cost' - cost) / T))
proposal_std   0.1       expected length of a proposal step in parameters normalised to
                         [-1, 1] by their bounds (log space for ``scale: log``); in (0, 2)
burn_in        0         steps discarded before states count as valid (< n_steps)
thin           1         keep accepted states at steps burn_in, burn_in + thin, ...
cost           max       max or mean of the rule scores (see :mod:`hpcneuro.mcmc.cost`)
threshold      None      valid = cost < threshold; None: valid = every validity rule met
start          random    random (uniform in the bounds) or table (rows of ``table``)
table          None      with start: table: CSV/TSV/.npy/FILE.h5:/dataset, one column per
                         parameter; chain c starts from row c mod rows
=============  ========  ==================================================================
"""

from __future__ import annotations

from hpcneuro.errors import ConfigError

#: key -> default (None: required, or "not set"); all None in the schema so that they
#: are errors with another method, filled in here for method mcmc
DEFAULTS = {"n_chains": None, "n_steps": None, "temperature": 1.0, "proposal_std": 0.1,
            "burn_in": 0, "thin": 1, "cost": "max", "threshold": None, "start": "random"}
KEYS = tuple(DEFAULTS)
COSTS = ("max", "mean")
STARTS = ("random", "table")


def is_mcmc(cfg: dict) -> bool:
    return cfg["sampling"]["method"] == "mcmc"


def row_index(chain, step, n_chains: int):
    """Row of (chain, step) in the store: step-major, so one step of a block is contiguous."""
    return step * n_chains + chain


def check_other_method(sampling: dict) -> None:
    """MCMC keys given with another method are errors."""
    for key in KEYS:
        if sampling.get(key) is not None:
            raise ConfigError(f"sampling.{key}", f"only applies to method mcmc (method is "
                              f"{sampling['method']}); remove it or set method: mcmc")


def validate(sampling: dict, validity: list[dict]) -> None:
    """Fill the defaults of method mcmc and check every key; sets ``n_samples`` =
    n_chains * n_steps. ``table`` (with start: table) is checked by the caller, which
    reads it as the table method does."""
    for key, default in DEFAULTS.items():
        if sampling.get(key) is None:
            if default is None and key in ("n_chains", "n_steps"):
                raise ConfigError(f"sampling.{key}", "is required for method mcmc ("
                                  + ("independent chains" if key == "n_chains" else
                                     "evaluated proposals per chain, start included") + ")")
            sampling[key] = default
    for key in ("n_chains", "n_steps", "thin"):
        if sampling[key] < 1:
            raise ConfigError(f"sampling.{key}", f"must be >= 1 (got {sampling[key]})")
    if sampling["temperature"] <= 0:
        raise ConfigError("sampling.temperature", f"must be > 0 (got {sampling['temperature']})")
    std = sampling["proposal_std"]
    if not 0 < std < 2:
        raise ConfigError("sampling.proposal_std", f"must be in (0, 2), in units of the "
                          f"parameters normalised to [-1, 1] (got {std})")
    if sampling["burn_in"] < 0:
        raise ConfigError("sampling.burn_in", f"must be >= 0 (got {sampling['burn_in']})")
    if sampling["burn_in"] >= sampling["n_steps"]:
        raise ConfigError("sampling.burn_in", f"must be < n_steps (got {sampling['burn_in']}"
                          f" >= {sampling['n_steps']}): no state would be kept")
    if sampling["cost"] not in COSTS:
        raise ConfigError("sampling.cost", f"must be one of {', '.join(COSTS)} (got "
                          f"{sampling['cost']!r})")
    if sampling["start"] not in STARTS:
        raise ConfigError("sampling.start", f"must be one of {', '.join(STARTS)} (got "
                          f"{sampling['start']!r})")
    threshold = sampling["threshold"]
    if threshold is not None:
        if not any(rule["mean"] is not None for rule in validity):
            raise ConfigError("sampling.threshold", "needs at least one validity rule with "
                              "mean/std (the cost is their z-scores); add one, or remove "
                              "threshold to use the validity rules as they are")
        if threshold <= 0:
            raise ConfigError("sampling.threshold", f"must be > 0 (got {threshold})")
    if not validity:
        raise ConfigError("validity", "method mcmc needs validity rules: the chains' cost "
                          "is computed from them")
    if sampling["start"] == "table" and sampling.get("table") is None:
        raise ConfigError("sampling.table", "is required with start: table (a CSV/TSV/.npy "
                          "file or FILE.h5:/dataset with one column per parameter)")
    if sampling["start"] != "table" and sampling.get("table") is not None:
        raise ConfigError("sampling.table", "only applies to method table, or to method mcmc "
                          "with start: table; remove it or set start: table")
    from hpcneuro.sampling import MAX_SAMPLES

    n = sampling["n_chains"] * sampling["n_steps"]
    if sampling.get("n_samples") is not None and sampling["n_samples"] != n:
        raise ConfigError("sampling.n_samples", f"must equal n_chains * n_steps = {n} for "
                          f"method mcmc (got {sampling['n_samples']}); leave it out")
    if n > MAX_SAMPLES:
        raise ConfigError("sampling.n_chains", f"n_chains * n_steps = {n:.3g} rows is more "
                          f"than one campaign can hold (at most {MAX_SAMPLES:.3g}, 2**31): "
                          "split it into several campaigns with different seeds")
    sampling["n_samples"] = n
