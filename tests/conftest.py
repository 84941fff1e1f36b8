"""Shared fixtures: small real campaigns, the repo root, a CLI runner."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SLURM_SCRIPT = ROOT / "scripts" / "local-slurm.sh"


# --- the O-information engine under test --------------------------------------------

@pytest.fixture(autouse=True)
def _kernel_for_in_process_oinfo(monkeypatch):
    """In-process tests run the numba kernel even on tiny jobs, which users' jobs of
    that size never reach (hpcneuro/oinfo/tiny.py): they test the kernel, its exact
    merges and its Dask paths on small data. tests/test_oinfo_tiny.py holds the tiny
    path to the kernel (setting the threshold back); commands run by run_cli
    (subprocesses) take the tiny path as users do."""
    from hpcneuro.oinfo import tiny

    monkeypatch.setattr(tiny, "TINY_JOB_MULTIPLETS", -1)


# --- the one skip policy: a missing MPI or Slurm skips locally, FAILS on CI ------------

#: CI has every component (MPI, the local Slurm): nothing may skip there
ON_CI = os.environ.get("CI", "").lower() == "true"


def require(what: str, available: bool, how: str) -> None:
    """Skip the running test if ``what`` is missing, unless on CI (CI=true): fail there."""
    if available:
        return
    message = f"{what} is missing: {how}"
    if ON_CI:
        pytest.fail(f"{message} (CI=true: tests needing it must run, not skip)",
                    pytrace=False)
    pytest.skip(message)


def require_mpi() -> None:
    """The test runs ``mpiexec``."""
    require("MPI (mpiexec)", shutil.which("mpiexec") is not None,
            "scripts/install.sh installs one")


def require_slurm() -> None:
    """The test starts the local one-node Slurm (scripts/local-slurm.sh needs root)."""
    require("the local Slurm", os.geteuid() == 0,
            "scripts/local-slurm.sh starts munged and slurmd, which needs root")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "requires_mpi: runs mpiexec (skip without it "
                            "locally, fail on CI)")
    config.addinivalue_line("markers", "requires_slurm: needs the local Slurm (skip "
                            "without it locally, fail on CI)")


def pytest_runtest_setup(item) -> None:
    if item.get_closest_marker("requires_mpi"):
        require_mpi()
    if item.get_closest_marker("requires_slurm"):
        require_slurm()


def mount_tmpfs(folder: Path, options: str) -> Path:
    """A real tmpfs at ``folder`` (e.g. 'size=1m' for a full disk, 'ro' for read-only);
    needs root. Unmount with :func:`unmount`."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True)
    require("a tmpfs mount", proc.returncode == 0,
            f"mount -t tmpfs needs root ({proc.stderr.strip()})")
    return folder


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MB filesystem (tmpfs), unmounted afterwards."""
    disk = mount_tmpfs(tmp_path / "disk", "size=1m")
    yield disk
    unmount(disk)


def wait_for_progress(output, minimum=1, timeout=60.0):
    """Wait until the file exists and holds at least ``minimum`` finished samples."""
    import h5py

    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(output):
            try:
                with h5py.File(output, "r") as f:
                    if int((f["status"][:] != 0).sum()) >= minimum:
                        return
            except (OSError, KeyError):
                pass
        time.sleep(0.2)
    raise AssertionError(f"no progress in {output} after {timeout} s")


# a user mechanism: a second leak conductance
LEAK_MOD = ("NEURON { SUFFIX leak2 NONSPECIFIC_CURRENT i RANGE g, e }\n"
            "PARAMETER { g = 1e-4 (S/cm2) e = -70 (mV) }\nASSIGNED { v (mV) i (mA/cm2) }\n"
            "BREAKPOINT { i = g*(v - e) }\n")


def small_config(**overrides) -> dict:
    """The demo campaign shrunk for tests (same model and features)."""
    cfg = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    cfg["sampling"]["n_samples"] = 60
    cfg["simulation"]["batch_size"] = 10
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


@pytest.fixture
def write_config(tmp_path):
    """Write a config dict to a YAML file in tmp_path; returns its path."""
    def write(cfg: dict, name: str = "campaign.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(copy.deepcopy(cfg), sort_keys=False))
        return path
    return write


def run_cli(*args, np: int | None = None, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    """Run ``python -m hpcneuro ARGS`` (under ``mpiexec -n np`` if given)."""
    cmd = [sys.executable, "-m", "hpcneuro", *map(str, args)]
    if np:
        cmd = ["mpiexec", "-n", str(np)] + cmd
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


# --- the local one-node Slurm (scripts/local-slurm.sh) -------------------------------

def run_checked(args, env=None, timeout=60, check=True):
    """Run a command, capture text output; on failure show stdout and stderr."""
    proc = subprocess.run(args, env=env, timeout=timeout, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{args} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def parse_exports(text):
    """{'SLURM_CONF': '/tmp/...'} from the `export NAME=value` lines of `env`."""
    exports = {}
    for line in text.splitlines():
        m = re.fullmatch(r"export ([A-Za-z_][A-Za-z0-9_]*)=(.*)", line.strip())
        assert m, f"not an export line: {line!r}"
        exports[m.group(1)] = m.group(2).strip("'\"")
    return exports


PATCHSEQ = SHARED_DATA / "patchseq_m1_phys_temp"


@pytest.fixture(scope="session")
def tiny_reproduce(tmp_path_factory):
    """One ``hpcneuro reproduce --scale tiny --np 2`` folder and its process, shared by
    test_reproduce and the browser check of its report (about 2 minutes)."""
    require_mpi()
    require("the patch-seq data", PATCHSEQ.is_dir(), f"expected at {PATCHSEQ}")
    out = tmp_path_factory.mktemp("reproduce") / "rep"
    proc = run_cli("reproduce", "-o", out, "--scale", "tiny", "--np", "2", "--data",
                   PATCHSEQ, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


@pytest.fixture(scope="session")
def slurm_env():
    """Environment for Slurm commands talking to the local cluster."""
    require_slurm()
    # First start may install packages (apt-get): allow several minutes.
    run_checked([str(SLURM_SCRIPT), "start"], timeout=900)
    exports = parse_exports(run_checked([str(SLURM_SCRIPT), "env"]).stdout)
    # Drop SLURM_* variables of an enclosing job (pytest itself may run
    # inside a Slurm job): they would leak into sbatch/srun here.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(exports)
    return env
