"""AnalysisOptions: one set of defaults for the config, the CLI and the Slurm job; the
analysis job starts exactly the workers it asks for."""

from __future__ import annotations

import inspect
import re
import shlex
from dataclasses import asdict, fields, replace
from pathlib import Path

import pytest

from conftest import ROOT, small_config
from hpcneuro import config as configuration
from hpcneuro import slurm
from hpcneuro.analysis import DEFAULTS, AnalysisOptions
from hpcneuro.cli import build_parser
from hpcneuro.oinfo.engine import slurm_jobs
from hpcneuro.oinfo import compute_oinfo


def _analyze_args(*words: str):
    return build_parser().parse_args(["analyze", "r.h5", "-o", "o.h5", *words])


def test_config_cli_and_dataclass_share_one_set_of_defaults():
    cfg = small_config()
    del cfg["analysis"]
    from_config = AnalysisOptions.from_config(
        configuration.validate(cfg, ROOT / "configs")["analysis"])
    assert from_config == DEFAULTS == AnalysisOptions.from_cli(_analyze_args())
    oinfo = build_parser().parse_args(["oinfo", "t.csv", "-o", "o.h5"])
    assert AnalysisOptions.from_cli(oinfo) == DEFAULTS
    # the contract: orders 3..min(N, 5), top 100, a LocalCluster
    assert (DEFAULTS.min_order, DEFAULTS.max_order, DEFAULTS.top, DEFAULTS.scheduler) == \
        (3, None, 100, "local")


def test_every_option_is_in_the_config_schema_and_the_engine():
    schema = configuration.SCHEMA["analysis"].kind
    assert set(schema) == {f.name for f in fields(AnalysisOptions)}
    engine = set(inspect.signature(compute_oinfo).parameters)
    kwargs = DEFAULTS.engine_kwargs()
    assert set(kwargs) <= engine and "variables" not in kwargs and "valid_only" not in kwargs
    compute_defaults = {k: inspect.signature(compute_oinfo).parameters[k].default
                        for k in kwargs}
    # only the scheduler differs: the engine alone runs in-process, the CLI on Dask
    assert {k for k in kwargs if kwargs[k] != compute_defaults[k]} == {"scheduler"}


def test_cli_args_round_trip():
    opts = AnalysisOptions(variables="both", valid_only=False, min_order=4, max_order=5,
                           target="step_200.mean_frequency", estimator="gauss",
                           bias_correct=True, units="bits", bootstrap=20, permutations=30,
                           gradient=True, nan_policy="drop", top=7, scheduler="none",
                           n_workers=3, seed=11)
    assert AnalysisOptions.from_cli(_analyze_args(*shlex.split(opts.to_cli_args()))) == opts
    assert AnalysisOptions.from_cli(_analyze_args(*shlex.split(DEFAULTS.to_cli_args()))) \
        == DEFAULTS


def test_from_config_carries_every_key():
    cfg = small_config()
    cfg["analysis"] = {"variables": "params", "max_order": 4, "top": 5, "bootstrap": 3,
                       "scheduler": "none", "n_workers": 2, "valid_only": False}
    opts = AnalysisOptions.from_config(configuration.validate(cfg, ROOT / "configs")["analysis"])
    assert asdict(opts) == dict(asdict(DEFAULTS), max_order=4, top=5, bootstrap=3,
                                scheduler="none", n_workers=2, valid_only=False)


@pytest.mark.parametrize("cpus,scheduler", [(2, "local"), (6, "slurm")])
def test_analysis_job_asks_for_as_many_workers_as_cores(tmp_path, cpus, scheduler):
    cfg = configuration.validate(small_config(), ROOT / "configs")
    opts = slurm.resolve_options({"analysis_cpus": cpus, "dask_scheduler": scheduler})
    script = slurm.render_jobs(cfg, Path(tmp_path / "c.yaml"), tmp_path, opts)["analyze.sbatch"]
    assert f"#SBATCH --cpus-per-task={cpus}" in script
    command = " ".join(line for line in script.replace("\\\n", " ").splitlines()
                       if line.lstrip().startswith("hpcneuro analyze"))
    words = shlex.split(command)
    assert words.count("--n-workers") == 1 and words.count("--scheduler") == 1
    assert words[words.index("--n-workers") + 1] == str(cpus)
    assert words[words.index("--scheduler") + 1] == scheduler
    assert "SLURM_CPUS_PER_TASK\"" not in command
    # the job runs the config's analysis (demo: orders 3..3, top 10)
    args = build_parser().parse_args(words[1:words.index("&&")] if "&&" in words else words[1:])
    assert AnalysisOptions.from_cli(args) == replace(
        AnalysisOptions.from_config(cfg["analysis"]), scheduler=scheduler, n_workers=cpus)


@pytest.mark.parametrize("n,processes,cores,memory,jobs,per_job", [
    (2, 2, 2, "4GB", 1, 2),     # one job of two workers, as configured
    (6, 2, 2, "4GB", 3, 2),     # three such jobs, not six (the old doubling)
    (1, 2, 2, "4GB", 1, 1),     # one worker: a job cut to one process, half the cores
    (3, 2, 2, "4GB", 3, 1),     # odd count: one worker per job, none extra
    (None, 2, 2, "4GB", 1, 2),  # default: one job as configured
])
def test_slurm_jobs_start_exactly_n_workers(n, processes, cores, memory, jobs, per_job):
    got_jobs, kw = slurm_jobs(n, {"processes": processes, "cores": cores, "memory": memory})
    assert (got_jobs, kw["processes"]) == (jobs, per_job)
    if n is not None:
        assert got_jobs * kw["processes"] == n
    assert kw["cores"] == cores * per_job // processes
    from dask.utils import parse_bytes

    assert parse_bytes(kw["memory"]) == parse_bytes(memory) * per_job // processes


def test_n_workers_help_says_workers_not_jobs():
    text = build_parser()._subparsers._group_actions[0].choices["analyze"].format_help()
    assert re.search(r"single-threaded\s+workers", text)
