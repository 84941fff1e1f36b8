"""The installation check: its logic, and that this machine passes it."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import h5py
import pytest

from hpcneuro import environment
from hpcneuro.errors import EnvironmentProblem
from hpcneuro.store import require_parallel_hdf5
from conftest import ROOT


def test_check_fails_when_h5py_lacks_mpi():
    problem = environment.check_h5py_mpi(SimpleNamespace(mpi=False))
    assert problem is not None and "h5py was built without MPI" in problem
    assert "HDF5_MPI=ON" in problem  # says how to fix it
    assert environment.check_h5py_mpi(SimpleNamespace(mpi=True)) is None


def test_driver_refuses_several_ranks_without_parallel_hdf5():
    with pytest.raises(EnvironmentProblem, match="need h5py built with MPI"):
        require_parallel_hdf5(2, SimpleNamespace(mpi=False))
    require_parallel_hdf5(1, SimpleNamespace(mpi=False))  # one rank can write serially
    require_parallel_hdf5(4, SimpleNamespace(mpi=True))


def test_mpiexec_output_check():
    good = "rank 1 of 2\nrank 0 of 2\n"
    assert environment.check_mpiexec_output(0, good) is None
    # two singletons: mpi4py built against another MPI than mpiexec
    problem = environment.check_mpiexec_output(0, "rank 0 of 1\nrank 0 of 1\n")
    assert problem is not None and "another MPI" in problem
    assert "failed (exit 1)" in environment.check_mpiexec_output(1, "boom")


def test_this_machine_passes_the_full_check():
    assert h5py.get_config().mpi
    code, out = environment.run_mpiexec_probe(2)
    assert environment.check_mpiexec_output(code, out) is None, out
    assert environment.main([]) == 0


def test_install_script_is_valid_bash_and_checks_at_the_end():
    script = ROOT / "scripts" / "install.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    # the final check runs the same module this test exercises
    assert text.rindex("hpcneuro.environment") > text.rindex("install -q -e")


def test_importing_hpcneuro_changes_no_environment_and_neuron_gets_its_settings():
    """Importing any hpcneuro module leaves os.environ alone; NEURON's settings are made
    where NEURON is imported, before it is: on 2 ranks whose mpi4py started MPI first,
    NEURON stays out of MPI (without NEURON_INIT_MPI=0 it would join: nhost 2)."""
    code = (
        "import os, sys\n"
        "before = dict(os.environ)\n"
        "import hpcneuro, hpcneuro.cli, hpcneuro.campaign, hpcneuro.simulation, "
        "hpcneuro.allocator, hpcneuro.store, hpcneuro.report, hpcneuro.model, hpcneuro.config\n"
        "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())\n"
        "assert 'neuron' not in sys.modules\n"
        "from mpi4py import MPI\n"
        "from hpcneuro.nrn import import_neuron\n"
        "neuron = import_neuron()\n"
        "assert os.environ['NEURON_INIT_MPI'] == '0'\n"
        "assert os.environ['NEURON_MODULE_OPTIONS'] == before.get('NEURON_MODULE_OPTIONS', "
        "'-nogui')\n"
        "assert neuron.h.ParallelContext().nhost() == 1\n"
        "os.write(1, b'ok\\n')\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("NEURON_INIT_MPI", "NEURON_MODULE_OPTIONS")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(["mpiexec", "-n", "2", sys.executable, "-c", code],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == ["ok", "ok"], proc.stderr
