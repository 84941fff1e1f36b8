"""hpcneuro submit and the job scripts of jobs/, against the real local Slurm."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import yaml

from conftest import ROOT, run_cli, slurm_env, small_config  # noqa: F401 - fixture
from hpcneuro import slurm
from hpcneuro.errors import UserError


def submit(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hpcneuro", "submit", *map(str, args)],
                          capture_output=True, text=True, env=dict(env, PYTHONPATH=str(ROOT)),
                          timeout=120)


def wait_state(jobdir, kind, states=("done", "failed"), timeout=300.0) -> list[str]:
    path = jobdir / f"{kind}.state"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            words = path.read_text().split()
            if words and words[0] in states:
                return words
        time.sleep(1)
    raise AssertionError(f"{kind} job not {states} after {timeout} s: "
                         f"{path.read_text() if path.exists() else 'no state'}")


def write(tmp_path, cfg, name="campaign.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_rendered_scripts_are_valid_bash_with_the_users_options(tmp_path):
    path = write(tmp_path, small_config())
    proc = run_cli("submit", path, "-o", tmp_path / "run", "--dry-run", "--nodes", 3,
                   "--ntasks-per-node", 64, "--time", "1-12:00:00", "--partition", "compute",
                   "--account", "neurolab", "--qos", "long", "--warning", 300,
                   "--extra=--mem=8G", "--launcher", "srun")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "run").exists()  # dry run: nothing written
    scripts = re.split(r"^# ---- (.+) ----$", proc.stdout, flags=re.M)[1:]
    texts = dict(zip(scripts[::2], scripts[1::2]))
    assert set(map(lambda p: p.rsplit("/", 1)[1], texts)) == set(slurm.TEMPLATES)
    sim = next(t for p, t in texts.items() if p.endswith("simulate.sbatch"))
    for line in ("#SBATCH --nodes=3", "#SBATCH --ntasks-per-node=64",
                 "#SBATCH --time=1-12:00:00", "#SBATCH --partition=compute",
                 "#SBATCH --account=neurolab", "#SBATCH --qos=long", "#SBATCH --mem=8G",
                 "#SBATCH --signal=B:USR1@300", "#SBATCH --requeue", "srun --mpi=pmi2"):
        assert line in sim
    analyze = next(t for p, t in texts.items() if p.endswith("analyze.sbatch"))
    assert "--max-order 3" in analyze and "#SBATCH --account=neurolab" in analyze
    for path_, text in texts.items():
        assert "{{" not in text
        script = tmp_path / path_.rsplit("/", 1)[1]
        script.write_text(text)
        subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize("time_limit,seconds", [("30", 1800), ("10:30", 630),
                                                ("02:00:00", 7200), ("1-00", 86400),
                                                ("2-01:30:00", 178200)])
def test_walltime_formats(time_limit, seconds):
    assert slurm.walltime_seconds(time_limit) == seconds


def test_bad_input_is_refused_before_anything_is_submitted(tmp_path, slurm_env):
    path = write(tmp_path, small_config())
    proc = submit(slurm_env, path, "-o", tmp_path / "r1", "--time", "2h")
    assert proc.returncode == 2
    assert "--time: '2h' is not a Slurm time" in proc.stderr
    proc = submit(slurm_env, path, "-o", tmp_path / "r2", "--partition", "gpu-huge")
    assert proc.returncode == 2
    assert "no partition 'gpu-huge' on this cluster; known: debug" in proc.stderr
    proc = submit(slurm_env, path, "-o", tmp_path / "r3", "--time", "00:01:00",
                  "--warning", 90)
    assert proc.returncode == 2 and "--warning: must be between 0 and the walltime" in proc.stderr
    no_slurm = dict(slurm_env, PATH=os.path.dirname(sys.executable))  # /bin is /usr/bin here
    proc = submit(no_slurm, path, "-o", tmp_path / "r4")
    assert proc.returncode == 2 and "sbatch not found: this is not a Slurm machine" in proc.stderr
    assert not any((tmp_path / r / "jobs" / "submitted.json").exists()
                   for r in ("r1", "r2", "r3", "r4"))


def test_defaults_file_fills_options_and_rejects_unknown_keys(tmp_path, monkeypatch):
    defaults = tmp_path / "slurm.yaml"
    defaults.write_text("partition: compute\naccount: lab\nntasks_per_node: 32\n")
    monkeypatch.setenv("HPCNEURO_SUBMIT_DEFAULTS", str(defaults))
    opts = slurm.resolve_options({"ntasks_per_node": 8, "time": "04:00:00"})
    assert (opts.partition, opts.account, opts.ntasks_per_node, opts.time) == \
        ("compute", "lab", 8, "04:00:00")  # the command line wins
    defaults.write_text("partitoin: compute\n")
    with pytest.raises(UserError, match="unknown key 'partitoin'"):
        slurm.resolve_options({})


def test_submitted_campaign_completes_both_jobs(tmp_path, slurm_env):
    cfg = small_config()
    cfg["sampling"]["n_samples"] = 200
    rundir = tmp_path / "run"
    proc = submit(slurm_env, write(tmp_path, cfg), "-o", rundir, "--time", "00:10:00",
                  "--analysis-cpus", 1)
    assert proc.returncode == 0, proc.stderr
    ids = re.search(r"simulation job (\d+) and analysis job (\d+)", proc.stdout).groups()
    assert f"simulate-{ids[0]}.out" in proc.stdout
    jobdir = rundir / "jobs"
    assert wait_state(jobdir, "simulate")[0] == "done"
    assert wait_state(jobdir, "analyze")[0] == "done"
    with h5py.File(rundir / "results.h5", "r") as f:
        assert np.all(f["status"][:] != 0)
    with h5py.File(rundir / "oinfo.h5", "r") as f:
        assert f["order_3/oinfo"].shape == (10,)
    assert (rundir / "report" / "index.html").exists()
    out = run_cli("status", rundir / "results.h5").stdout
    assert f"simulate job {ids[0]}: done" in out and f"analyze job {ids[1]}: done" in out
    assert json.loads((jobdir / "submitted.json").read_text())["jobs"] == \
        {"simulate": ids[0], "analyze": ids[1]}


def test_short_walltime_requeues_until_every_sample_is_done_once(tmp_path, slurm_env):
    cfg = small_config()
    # ~50 s of work on 2 idle cores, more than one run: the warning comes 15-45 s into
    # a 1-minute job (Slurm checks time limits every 30 s)
    cfg["protocols"][0].update(duration=1900.0, tstop=2000.0)
    cfg["sampling"]["n_samples"] = 4000
    cfg["simulation"]["batch_size"] = 50
    rundir = tmp_path / "run"
    proc = submit(slurm_env, write(tmp_path, cfg), "-o", rundir, "--time", "00:01:00",
                  "--warning", 45, "--analysis-cpus", 1)
    assert proc.returncode == 0, proc.stderr
    jobdir = rundir / "jobs"
    assert wait_state(jobdir, "simulate", timeout=600)[0] == "done"
    assert wait_state(jobdir, "analyze", timeout=300)[0] == "done"
    job = json.loads((jobdir / "submitted.json").read_text())["jobs"]["simulate"]
    log = (rundir / "logs" / f"simulate-{job}.out").read_text()
    assert "walltime warning" in log and "(restart 1)" in log
    # each run reports the samples it wrote: together exactly the campaign, none twice
    written = [int(n) for n in re.findall(r"(?:finished|stopped by a signal after) (\d+) "
                                          r"samples", log)]
    assert len(written) >= 2 and sum(written) == 4000, log
    with h5py.File(rundir / "results.h5", "r") as f:
        assert np.all(f["status"][:] != 0)


def test_analyze_with_slurm_workers_matches_the_local_scheduler(tmp_path, slurm_env):
    cfg = small_config()
    path = write(tmp_path, cfg)
    results = tmp_path / "results.h5"
    assert run_cli("simulate", path, "-o", results).returncode == 0
    dask_cfg = tmp_path / "slurm-dask.yaml"
    dask_cfg.write_text(yaml.safe_dump({"jobqueue": {"slurm": {
        "cores": 1, "processes": 1, "memory": "1GB", "walltime": "00:10:00",
        "queue": "debug", "local_directory": str(tmp_path),
        "log_directory": str(tmp_path / "dask-logs"),
        "python": sys.executable}}}))
    env = dict(slurm_env, HPCNEURO_SLURM_DASK=str(dask_cfg), PYTHONPATH=str(ROOT))
    outputs = {}
    for scheduler in ("slurm", "none"):
        out = tmp_path / f"oinfo-{scheduler}.h5"
        proc = subprocess.run([sys.executable, "-m", "hpcneuro", "analyze", str(results), "-o",
                               str(out), "--scheduler", scheduler, "--n-workers", "1",
                               # with a bootstrap the job is not tiny (tiny.py runs
                               # in-process whatever the scheduler): the kernel on Slurm
                               "--max-order", "4", "--bootstrap", "2"],
                              capture_output=True, text=True, env=env,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        with h5py.File(out, "r") as f:
            outputs[scheduler] = {k: f[k][:] for k in ("order_3/oinfo", "order_4/oinfo",
                                                        "order_3/multiplets")}
    for key, value in outputs["none"].items():
        np.testing.assert_array_equal(outputs["slurm"][key], value)
    assert any((tmp_path / "dask-logs").glob("*.out")) or any((tmp_path / "dask-logs").glob("*.err"))
