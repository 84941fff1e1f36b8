"""Is this machine ready? Checks run at the end of scripts/install.sh.

``python -m hpcneuro.environment`` prints each check and exits 1 if any fails.
The check functions take what they inspect as arguments so that their logic is
testable without breaking the machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import Any, Callable

# one write() per rank: mpiexec interleaves the ranks' output at write boundaries
MPI_PROBE = ("import os; from mpi4py import MPI; c = MPI.COMM_WORLD; "
             "os.write(1, f'rank {c.Get_rank()} of {c.Get_size()}\\n'.encode())")


def check_h5py_mpi(h5py_config: Any) -> str | None:
    """Problem text if h5py was built without MPI, else None."""
    if getattr(h5py_config, "mpi", False):
        return None
    return ("h5py was built without MPI: ranks cannot share one results file. Rebuild it "
            "with scripts/install.sh (CC=mpicc HDF5_MPI=ON pip install --no-binary=h5py "
            "--no-build-isolation h5py)")


def check_mpiexec_output(returncode: int, output: str, n: int = 2) -> str | None:
    """Problem text unless ``mpiexec -n n`` printed one line per rank with the right size."""
    if returncode != 0:
        return f"mpiexec -n {n} with mpi4py failed (exit {returncode}): {output.strip()[-500:]}"
    seen = {line.strip() for line in output.splitlines() if line.startswith("rank ")}
    expected = {f"rank {r} of {n}" for r in range(n)}
    if seen != expected:
        return (f"mpiexec -n {n} did not start {n} connected ranks (got {sorted(seen)}); "
                "mpi4py is probably built against another MPI than mpiexec: rebuild it "
                "with 'pip install --no-binary=mpi4py --force-reinstall mpi4py'")
    return None


def run_mpiexec_probe(n: int = 2, timeout: float = 60) -> tuple[int, str]:
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        return 127, "mpiexec not found on PATH"
    try:
        proc = subprocess.run([mpiexec, "-n", str(n), sys.executable, "-c", MPI_PROBE],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout} s"
    return proc.returncode, proc.stdout + proc.stderr


def _imports() -> str | None:
    try:
        import mpi4py  # noqa: F401
        import dask.distributed  # noqa: F401
        import efel  # noqa: F401
        import numba  # noqa: F401

        from hpcneuro.nrn import import_neuron

        import_neuron()
    except Exception as exc:  # noqa: BLE001 - report any import failure
        return f"import failed: {exc}"
    return None


def checks(quick: bool = False) -> list[tuple[str, Callable[[], str | None]]]:
    import h5py

    out = [("python packages import", _imports),
           ("h5py has MPI (parallel HDF5)", lambda: check_h5py_mpi(h5py.get_config()))]
    if not quick:
        out.append(("mpiexec -n 2 runs mpi4py", lambda: check_mpiexec_output(
            *run_mpiexec_probe(2))))
    return out


def main(argv: list[str] | None = None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    failed = 0
    for name, check in checks(quick):
        problem = check()
        print(f"{'ok  ' if problem is None else 'FAIL'} {name}" + (f": {problem}" if problem else ""))
        failed += problem is not None
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
