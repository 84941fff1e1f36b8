"""Slurm batch jobs: render the job scripts of ``hpcneuro/jobs/`` and submit a campaign.

``hpcneuro submit`` fills the templates' ``{{placeholders}}`` from the command line,
then the cluster defaults file, then built-in defaults; writes the scripts to
``RUNDIR/jobs/``; and runs the rendered ``campaign.sh``, which submits the simulation
and the analysis (``afterok``). The job scripts record their state in
``RUNDIR/jobs/*.state``, which ``hpcneuro status`` reads to report jobs and logs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import yaml

from hpcneuro.analysis import AnalysisOptions
from hpcneuro.errors import UserError

#: the job templates shipped in the package (hpcneuro/jobs/; the repository's jobs/ links here)
PACKAGE_JOBS_DIR = Path(__file__).resolve().parent / "jobs"
TEMPLATES = ("simulate.sbatch", "analyze.sbatch", "campaign.sh")


def jobs_dir() -> Path:
    """Folder of the job templates: ``$HPCNEURO_JOBS_DIR`` or the package's own."""
    return Path(os.environ.get("HPCNEURO_JOBS_DIR") or PACKAGE_JOBS_DIR)


def defaults_file() -> Path:
    """Cluster defaults: ``$HPCNEURO_SUBMIT_DEFAULTS`` or ~/.config/hpcneuro/slurm.yaml."""
    env = os.environ.get("HPCNEURO_SUBMIT_DEFAULTS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "hpcneuro" / "slurm.yaml"


@dataclass
class SubmitOptions:
    """What a user can set per submission or in the cluster defaults file."""

    nodes: int = 1
    ntasks_per_node: int = 2
    time: str = "01:00:00"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    warning: int = 120            # seconds before walltime that SIGUSR1 comes
    launcher: str = "mpiexec"     # mpiexec (MPI's own, inside the allocation) or srun
    analysis_time: str = "01:00:00"
    analysis_cpus: int = 2
    dask_scheduler: str = "local"  # local (inside the allocation) or slurm (SLURMCluster)
    extra: tuple = ()              # more '#SBATCH' options, e.g. ('--mem=8G',)


def walltime_seconds(text: str, what: str = "--time") -> int:
    """Seconds of a Slurm time limit: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not m:
        raise UserError(f"{what}: {text!r} is not a Slurm time (MINUTES, HH:MM:SS or "
                        "D-HH:MM:SS, e.g. 02:00:00)")
    days, a, b, c = m.groups()
    if days is not None:  # D-H[:M[:S]]
        h, mnt, s = int(a), int(b or 0), int(c or 0)
        return ((int(days) * 24 + h) * 60 + mnt) * 60 + s
    if b is None:          # M
        return int(a) * 60
    if c is None:          # M:S
        return int(a) * 60 + int(b)
    return (int(a) * 60 + int(b)) * 60 + int(c)  # H:M:S


def resolve_options(cli: dict) -> SubmitOptions:
    """Command line over the defaults file over built-in defaults; validated."""
    opts = SubmitOptions()
    path = defaults_file()
    names = {f.name for f in fields(SubmitOptions)}
    if path.exists():
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"{path}: not valid YAML: {exc}") from None
        unknown = sorted(set(doc) - names)
        if unknown:
            raise UserError(f"{path}: unknown key {unknown[0]!r}; expected: "
                            + ", ".join(sorted(names)))
        for key, value in doc.items():
            setattr(opts, key, tuple(value) if key == "extra" else value)
    for key, value in cli.items():
        if value is not None and key in names:
            setattr(opts, key, tuple(value) if key == "extra" else value)
    walltime = walltime_seconds(opts.time, "--time")
    walltime_seconds(opts.analysis_time, "--analysis-time")
    if opts.warning <= 0 or opts.warning >= walltime:
        raise UserError(f"--warning: must be between 0 and the walltime ({walltime} s), "
                        f"got {opts.warning}")
    if opts.launcher not in ("mpiexec", "srun"):
        raise UserError(f"--launcher: must be mpiexec or srun (got {opts.launcher!r})")
    if opts.dask_scheduler not in ("local", "slurm"):
        raise UserError(f"--dask-scheduler: must be local or slurm (got {opts.dask_scheduler!r})")
    for key in ("nodes", "ntasks_per_node", "analysis_cpus"):
        if int(getattr(opts, key)) < 1:
            raise UserError(f"--{key.replace('_', '-')}: must be >= 1")
    return opts


def _directives(pairs: list[tuple[str, object]], extra: tuple) -> str:
    lines = [f"#SBATCH --{key}={value}" for key, value in pairs if value is not None]
    lines += [f"#SBATCH {option}" for option in extra]
    return "\n".join(lines)


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``{{name}}`` placeholders; every placeholder must have a value."""
    missing = sorted(set(re.findall(r"\{\{(\w+)\}\}", template)) - set(values))
    if missing:
        raise KeyError(f"no value for placeholders {missing}")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: str(values[m.group(1)]), template)


def render_jobs(cfg: dict, config_path: Path, rundir: Path, opts: SubmitOptions) -> dict:
    """The three scripts, rendered: name -> text.

    The analysis job runs the config's analysis on ``opts.analysis_cpus`` workers,
    the cores it asks Slurm for (``--dask-scheduler slurm``: that many workers over
    further Slurm jobs), with the Dask scheduler of ``opts.dask_scheduler``.
    """
    rundir = rundir.resolve()
    analysis = replace(AnalysisOptions.from_config(cfg["analysis"]),
                       scheduler=opts.dask_scheduler, n_workers=int(opts.analysis_cpus))
    launcher = ("mpiexec -n \"$SLURM_NTASKS\"" if opts.launcher == "mpiexec"
                else "srun --mpi=pmi2")
    values = {
        "name": cfg["name"],
        "sbatch_directives": _directives(
            [("nodes", opts.nodes), ("ntasks-per-node", opts.ntasks_per_node),
             ("time", opts.time), ("partition", opts.partition), ("account", opts.account),
             ("qos", opts.qos)], opts.extra),
        "analysis_directives": _directives(
            [("nodes", 1), ("ntasks", 1), ("cpus-per-task", opts.analysis_cpus),
             ("time", opts.analysis_time), ("partition", opts.partition),
             ("account", opts.account), ("qos", opts.qos)], opts.extra),
        "warning_seconds": opts.warning,
        "venv_bin": str(Path(sys.executable).parent),
        "config": str(config_path.resolve()),
        "results": str(rundir / "results.h5"),
        "oinfo": str(rundir / "oinfo.h5"),
        "rundir": str(rundir),
        "jobdir": str(rundir / "jobs"),
        "logdir": str(rundir / "logs"),
        "launcher": launcher,
        "analyze_options": analysis.to_cli_args(),
    }
    folder = jobs_dir()
    return {name: render((folder / name).read_text(), values) for name in TEMPLATES}


def require_slurm() -> None:
    if shutil.which("sbatch") is None:
        raise UserError("sbatch not found: this is not a Slurm machine (or Slurm is not on "
                        "PATH). On a laptop: scripts/local-slurm.sh start, then "
                        "eval \"$(scripts/local-slurm.sh env)\"; or use --dry-run to see "
                        "the scripts")


def check_partition(partition: str | None) -> None:
    if partition is None or shutil.which("sinfo") is None:
        return
    proc = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"sinfo failed ({proc.stderr.strip()}); is Slurm running?")
    known = sorted({p.strip().rstrip("*") for p in proc.stdout.split()})
    if partition not in known:
        raise UserError(f"--partition: no partition {partition!r} on this cluster; "
                        f"known: {', '.join(known)}")


def submit(cfg: dict, config_path: Path, rundir: Path, opts: SubmitOptions,
           dry_run: bool = False) -> dict:
    """Render the job scripts into RUNDIR/jobs and submit them (unless ``dry_run``).

    Returns {"scripts": {name: text}, "jobs": {"simulate": id, "analyze": id}}.
    """
    scripts = render_jobs(cfg, config_path, rundir, opts)
    if dry_run:
        return {"scripts": scripts, "jobs": {}}
    require_slurm()
    check_partition(opts.partition)
    jobdir, logdir = rundir / "jobs", rundir / "logs"
    jobdir.mkdir(parents=True, exist_ok=True)
    logdir.mkdir(parents=True, exist_ok=True)
    for name, text in scripts.items():
        (jobdir / name).write_text(text)
        (jobdir / name).chmod(0o755)
    proc = subprocess.run(["bash", str(jobdir / "campaign.sh")], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise UserError(f"sbatch refused the job: {proc.stderr.strip() or proc.stdout.strip()}")
    jobs = dict(re.findall(r"^job (\w+) (\d+)$", proc.stdout, flags=re.M))
    record = {"submitted_at": time.time(), "jobs": jobs, "options": asdict(opts),
              "logs": {k: str(logdir / f"{k}-{v}.out") for k, v in jobs.items()}}
    (jobdir / "submitted.json").write_text(json.dumps(record, indent=1))
    return {"scripts": scripts, "jobs": jobs}


def job_report(results: Path) -> list[str]:
    """Lines on the Slurm jobs of a submitted campaign (from RUNDIR/jobs), if any."""
    jobdir = results.resolve().parent / "jobs"
    if not (jobdir / "submitted.json").exists():
        return []
    lines = []
    for kind in ("simulate", "analyze"):
        state_file = jobdir / f"{kind}.state"
        if not state_file.exists():
            continue
        words = state_file.read_text().split()
        state, job = words[0], words[1]
        when = time.strftime("%H:%M:%S", time.localtime(float(words[2])))
        log = results.resolve().parent / "logs" / f"{kind}-{job}.out"
        line = f"  {kind} job {job}: {state} at {when}"
        if state == "failed":
            line += f" ({' '.join(words[3:])}); log: {log}"
        elif state != "submitted":
            line += f"; log: {log}"
        lines.append(line)
    return lines

