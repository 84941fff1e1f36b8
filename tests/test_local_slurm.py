"""The one-node Slurm of scripts/local-slurm.sh, tested for real.

The module fixture starts the cluster (installing slurm-wlm and munge on first
use) and leaves it running, so later tests (and `hpcneuro submit` tests) reuse
it. Every test must pass whether the cluster was already up or not.

Timing on this machine (2 cores): a job starts within about a second of
submission; a requeued job waits AuthInfo=cred_expire (10 s) before it may
start again; the walltime warning signal (--signal) comes from slurmctld's
periodic time-limit check, which runs every 30 s, so it may arrive up to ~30 s
late (or early). The whole module takes 30 to 50 s.
"""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import run_checked as _run, slurm_env  # noqa: F401 - fixture

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "local-slurm.sh"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"



@pytest.fixture
def jobs(slurm_env):
    """Submit helper; cancels whatever a test leaves behind."""
    submitted = []

    def submit(*args):
        out = _run(["sbatch", "--parsable", *args], env=slurm_env).stdout
        jobid = out.strip().split(";")[0]
        submitted.append(jobid)
        return jobid

    yield submit
    if submitted:
        _run(["scancel", *submitted], env=slurm_env, check=False)


def job_info(env, jobid):
    """`scontrol show job` as a dict, or {} once Slurm has forgotten the job."""
    proc = _run(["scontrol", "show", "job", "-o", jobid], env=env, check=False)
    if proc.returncode != 0:
        return {}
    return dict(f.split("=", 1) for f in proc.stdout.split() if "=" in f)


def wait_for(predicate, timeout, what):
    """Poll predicate() every 0.5 s until it returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_job_done(env, jobid, timeout=60):
    """Wait until the job has finished; return its final scontrol record."""
    final = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
             "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}

    def done():
        info = job_info(env, jobid)
        return info if info.get("JobState") in final else None

    return wait_for(done, timeout, f"job {jobid} to finish")


# ---------------------------------------------------------------------------

def test_help():
    out = _run([str(SCRIPT), "--help"]).stdout
    for word in ("start", "stop", "status", "env", "HPCNEURO_SLURM_DIR"):
        assert word in out


def test_start_again_is_a_quiet_noop(slurm_env):
    state_dir = Path(slurm_env["HPCNEURO_SLURM_DIR"])
    pids = {n: (state_dir / f"{n}.pid").read_text()
            for n in ("slurmctld", "slurmd")}
    conf_mtime = (state_dir / "slurm.conf").stat().st_mtime
    t0 = time.monotonic()
    proc = _run([str(SCRIPT), "start"])
    assert time.monotonic() - t0 < 10
    assert proc.stdout == "" and proc.stderr == ""
    # Same daemons, configuration untouched.
    assert pids == {n: (state_dir / f"{n}.pid").read_text()
                    for n in ("slurmctld", "slurmd")}
    assert (state_dir / "slurm.conf").stat().st_mtime == conf_mtime


def test_status(slurm_env):
    out = _run([str(SCRIPT), "status"]).stdout
    for daemon in ("munged", "slurmctld", "slurmd"):
        assert f"{daemon}: running" in out
    assert "debug" in out and "localhost" in out


def test_env_is_evaluable_and_sinfo_works(slurm_env):
    # Exactly what a user types: eval the output in a shell, then use Slurm.
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_CONF",)}
    out = _run(["bash", "-c",
                f'eval "$({SCRIPT} env)" && echo "conf=$SLURM_CONF" && '
                'sinfo -h -o "%P %T %D"'], env=env).stdout
    conf = re.search(r"^conf=(.+)$", out, re.M).group(1)
    assert Path(conf).is_file()
    assert conf == slurm_env["SLURM_CONF"]
    partition, state, nodes = out.splitlines()[1].split()
    assert partition == "debug*"     # the default partition
    assert nodes == "1"
    assert state in ("idle", "mixed", "allocated", "completing")


def test_mpiexec_in_a_two_task_job(slurm_env, jobs, tmp_path):
    """sbatch --wait of a 2-task job running MPICH's mpiexec -n 2."""
    out = tmp_path / "mpi.out"
    jobs("-n", "2", "-J", "hpcneuro-test-mpi", "-o", str(out), "--wait",
         "--wrap", "mpiexec -n 2 hostname")
    # --wait: sbatch returned when the job ended, and _run checked exit 0.
    # Two lines, one per rank. mpiexec forwards each rank's output as it comes,
    # so the two lines may interleave: count hostnames and newlines.
    text = out.read_text()
    assert text.count("\n") == 2, text
    assert text.count(os.uname().nodename) == 2, text


@pytest.mark.parametrize("launcher", ["mpiexec -n 2", "srun --mpi=pmi2"])
def test_mpi4py_ranks_in_a_job(slurm_env, jobs, tmp_path, launcher):
    """mpi4py sees one 2-rank world, started by mpiexec or by srun (PMI2)."""
    out = tmp_path / "ranks.out"
    code = ("from mpi4py import MPI; c = MPI.COMM_WORLD; "
            "print(f'rank {c.rank} of {c.size}')")
    jobs("-n", "2", "-J", "hpcneuro-test-mpi4py", "-o", str(out), "--wait",
         "--wrap", f'{launcher} {VENV_PYTHON} -c "{code}"')
    # (output of the two ranks may interleave within a line)
    ranks = re.findall(r"rank (\d) of (\d)", out.read_text())
    assert sorted(ranks) == [("0", "2"), ("1", "2")], out.read_text()


def test_walltime_warning_signal_reaches_the_batch_shell(slurm_env, jobs,
                                                         tmp_path):
    """--signal=B:USR1@50 on a 1-minute job: the script's trap fires."""
    marker = tmp_path / "usr1"
    script = tmp_path / "signal.sh"
    # `sleep & wait`: bash runs a trap only between commands, and `wait`
    # returns at once on a signal, a foreground `sleep 60` would not.
    script.write_text(f"""#!/bin/bash
start=$SECONDS
trap 'echo $((SECONDS - start)) > {marker}; exit 0' USR1
sleep 120 &
wait $!
exit 3   # no signal came
""")
    jobid = jobs("--time=00:01:00", "--signal=B:USR1@50",
                 "-J", "hpcneuro-test-signal",
                 "-o", str(tmp_path / "signal.out"), str(script))
    # Due 10 s after the start; slurmctld checks every 30 s.
    wait_for(marker.exists, 75, "the USR1 trap to write its marker")
    info = wait_job_done(slurm_env, jobid, timeout=30)
    assert info["JobState"] == "COMPLETED", info
    assert int(marker.read_text()) < 55


def test_requeue(slurm_env, jobs, tmp_path):
    """A job requeues itself; another is requeued from outside; both rerun."""
    # 1. A job that calls `scontrol requeue` on itself on its first run.
    log_self = tmp_path / "self.log"
    script_self = tmp_path / "self.sh"
    script_self.write_text(f"""#!/bin/bash
echo "run ${{SLURM_RESTART_COUNT:-0}}" >> {log_self}
if [ "${{SLURM_RESTART_COUNT:-0}}" = 0 ]; then
    scontrol requeue "$SLURM_JOB_ID"
    sleep 60      # the requeue ends this run
    exit 3
fi
""")
    # 2. A job that runs until it is requeued by someone else.
    log_ext = tmp_path / "external.log"
    script_ext = tmp_path / "external.sh"
    script_ext.write_text(f"""#!/bin/bash
echo "run ${{SLURM_RESTART_COUNT:-0}}" >> {log_ext}
if [ "${{SLURM_RESTART_COUNT:-0}}" = 0 ]; then
    sleep 60
    exit 3
fi
""")
    self_id = jobs("-J", "hpcneuro-test-requeue-self", "-o", "/dev/null",
                   str(script_self))
    ext_id = jobs("-J", "hpcneuro-test-requeue-ext", "-o", "/dev/null",
                  str(script_ext))
    wait_for(lambda: job_info(slurm_env, ext_id).get("JobState") == "RUNNING"
             and log_ext.exists(), 60, f"job {ext_id} to run")
    _run(["scontrol", "requeue", ext_id], env=slurm_env)

    # A requeued job is pending for AuthInfo=cred_expire (10 s) first.
    for jobid, log in ((self_id, log_self), (ext_id, log_ext)):
        info = wait_job_done(slurm_env, jobid, timeout=60)
        assert info["JobState"] == "COMPLETED", info
        assert info["Restarts"] == "1", info
        assert log.read_text().splitlines() == ["run 0", "run 1"]


def test_script_is_valid_bash():
    _run(["bash", "-n", str(SCRIPT)])
