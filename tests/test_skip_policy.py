"""The skip policy of conftest: a missing MPI skips a test locally and fails it on CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

NEEDS_MPI = """
import pytest

@pytest.mark.requires_mpi
def test_needs_mpi():
    pass
"""


@pytest.mark.parametrize("ci,outcome", [("", "1 skipped"), ("true", "1 error")])
def test_missing_mpi_skips_locally_and_fails_on_ci(tmp_path, ci, outcome):
    shutil.copy2(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_mpi.py").write_text(NEEDS_MPI)
    # only the interpreter's folder on PATH: no mpiexec there
    env = dict(os.environ, CI=ci, PATH=os.path.dirname(sys.executable),
               PYTHONPATH=str(ROOT))
    assert shutil.which("mpiexec", path=env["PATH"]) is None
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert outcome in proc.stdout, proc.stdout + proc.stderr
    assert (proc.returncode != 0) == bool(ci)  # an error at setup fails the run
    if ci:
        assert "CI=true: tests needing it must run, not skip" in proc.stdout
