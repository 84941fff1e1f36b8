"""A non-editable install works outside the repository: job templates and mechanisms
ship as package data.

The package is built as a wheel from a copy of its sources and installed (no
dependencies) into a fresh venv; that venv reaches the test interpreter's packages
(NEURON, mpi4py, h5py, ...) through a .pth file, so nothing heavy is reinstalled. A
path in a .pth file is appended to sys.path but the .pth files inside it are not run,
so the repository's editable install (a .pth finder there) is not seen: hpcneuro
comes from the new venv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

#: what a wheel is built from (README.md: setup.cfg's long_description)
SOURCES = ("hpcneuro", "setup.cfg", "pyproject.toml", "README.md")


def _run(args, cwd, env, timeout=120) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the new venv, a clean environment for it, a folder outside the repository)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", "x86_64", "arm64", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "HPCNEURO_JOBS_DIR", "VIRTUAL_ENV")}
    env["HPCNEURO_SUBMIT_DEFAULTS"] = str(base / "no-defaults.yaml")
    wheels = base / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--disable-pip-version-check", "-q", "-w", wheels, src], cwd=base, env=env,
         timeout=180)
    wheel = next(wheels.glob("hpcneuro-*.whl"))
    target = base / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
                        cwd=base, env=env).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "test-interpreter-packages.pth").write_text("\n".join(sorted(ours)) + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
          "--disable-pip-version-check", "-q", wheel], cwd=base, env=env, timeout=180)
    env["PATH"] = f"{target / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    outside = base / "elsewhere"
    outside.mkdir()
    return target, env, outside


def test_hpcneuro_is_imported_from_the_installed_copy(installed):
    target, env, outside = installed
    where = _run([target / "bin" / "python", "-c", "import hpcneuro; print(hpcneuro.__file__)"],
                 cwd=outside, env=env).stdout.strip()
    assert Path(where).resolve().is_relative_to(target.resolve()), where
    assert not Path(where).resolve().is_relative_to(ROOT.resolve())


def test_submit_dry_run_renders_the_shipped_templates(installed):
    target, env, outside = installed
    config = outside / "demo.yaml"
    shutil.copy2(ROOT / "configs" / "demo.yaml", config)
    defaults = outside / "slurm.yaml"
    defaults.write_text("partition: compute\nanalysis_cpus: 3\n")
    env = dict(env, HPCNEURO_SUBMIT_DEFAULTS=str(defaults))
    out = _run([target / "bin" / "hpcneuro", "submit", config, "--dry-run"], cwd=outside,
               env=env).stdout
    parts = re.split(r"^# ---- (.+) ----$", out, flags=re.M)[1:]
    scripts = {Path(p).name: text for p, text in zip(parts[::2], parts[1::2])}
    assert set(scripts) == {"simulate.sbatch", "analyze.sbatch", "campaign.sh"}
    for name, text in scripts.items():
        template = (ROOT / "hpcneuro" / "jobs" / name).read_text()
        # every template line without a placeholder is in the rendered script
        fixed = [line for line in template.splitlines() if "{{" not in line and line.strip()]
        assert fixed and all(line in text.splitlines() for line in fixed), name
        assert "{{" not in text
    # the user's defaults file is read: partition on both jobs, the analysis' cores
    assert "#SBATCH --partition=compute" in scripts["simulate.sbatch"]
    assert "#SBATCH --cpus-per-task=3" in scripts["analyze.sbatch"]
    assert "--n-workers 3" in scripts["analyze.sbatch"]
    assert not (outside / "runs").exists()  # dry run: nothing written


def test_oinfo_runs_from_outside_the_repository(installed):
    target, env, outside = installed
    x = np.random.default_rng(0).normal(size=(200, 4))
    x[:, 3] += x[:, 0] + x[:, 1]
    table = outside / "table.csv"
    np.savetxt(table, x, delimiter=",", header="a,b,c,d", comments="")
    out = outside / "oinfo.h5"
    proc = _run([target / "bin" / "hpcneuro", "oinfo", table, "-o", out], cwd=outside, env=env)
    assert out.is_file() and f"wrote {out}" in proc.stdout
    import h5py

    with h5py.File(out, "r") as f:
        assert "order_3" in f and "order_4" in f


def test_repository_jobs_is_the_package_folder_and_the_override_is_read(tmp_path, monkeypatch):
    from hpcneuro import config as configuration
    from hpcneuro import slurm
    from conftest import small_config

    assert (ROOT / "jobs").is_symlink()
    assert (ROOT / "jobs").resolve() == (ROOT / "hpcneuro" / "jobs").resolve()
    assert slurm.jobs_dir() == slurm.PACKAGE_JOBS_DIR
    own = tmp_path / "myjobs"
    shutil.copytree(slurm.PACKAGE_JOBS_DIR, own)
    (own / "analyze.sbatch").write_text((own / "analyze.sbatch").read_text()
                                        + "# site-specific line\n")
    monkeypatch.setenv("HPCNEURO_JOBS_DIR", str(own))  # read when rendering, not at import
    cfg = configuration.validate(small_config(), ROOT / "configs")
    scripts = slurm.render_jobs(cfg, tmp_path / "c.yaml", tmp_path, slurm.SubmitOptions())
    assert scripts["analyze.sbatch"].endswith("# site-specific line\n")
