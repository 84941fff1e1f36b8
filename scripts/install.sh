#!/usr/bin/env bash
# Install everything hpcneuro needs; idempotent, quiet unless something fails.
#
#   scripts/install.sh            # system MPI + parallel HDF5 if missing, .venv, package
#   HPCNEURO_VENV=/path scripts/install.sh   # another virtualenv location
#
# On a cluster where MPI and a parallel HDF5 come from environment modules
# ('module load mpich hdf5-mpi': mpicc on PATH and HDF5_DIR set), those are used
# and no root is needed. Otherwise, on Debian/Ubuntu as root (or with sudo), the
# apt packages mpich and libhdf5-mpich-dev are installed.
#
# mpi4py and h5py are built from source against that MPI (the PyPI wheels bring
# their own MPI or none); pip caches the built wheels, so reinstalls take seconds.
# The script ends by checking that h5py has MPI and that 'mpiexec -n 2' runs mpi4py.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HPCNEURO_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"
LOG="${TMPDIR:-/tmp}/hpcneuro-install.$$.log"
STAMP="$VENV/.hpcneuro-installed"

say() { printf '[install] %s\n' "$*" >&2; }
fail() {
    say "FAILED: $*"
    if [ -s "$LOG" ]; then say "last lines of $LOG:"; tail -n 40 "$LOG" >&2; fi
    exit 1
}
quiet() { "$@" >>"$LOG" 2>&1 || fail "$*"; }

# Everything that changes what gets installed; if unchanged since the last
# successful run and the checks still pass, there is nothing to do.
fingerprint() {
    cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" "$ROOT/scripts/install.sh" \
        "$ROOT"/hpcneuro/mechanisms/*.mod 2>/dev/null | sha256sum | cut -c1-16
}

# --- 1. system MPI and parallel HDF5 -----------------------------------------------
have_system_stack() {
    command -v mpicc >/dev/null && command -v mpiexec >/dev/null || return 1
    [ -n "${HDF5_DIR:-}" ] && return 0
    pkg-config --exists hdf5-mpich 2>/dev/null && return 0
    return 1
}

install_system_stack() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || fail "MPI or parallel HDF5 missing and not root: load \
your cluster's modules (mpicc on PATH, HDF5_DIR set to a parallel HDF5) or rerun as root"
        sudo="sudo"
    fi
    command -v apt-get >/dev/null || fail "MPI or parallel HDF5 missing and no apt-get: \
install an MPI (mpicc, mpiexec) and a parallel HDF5 (set HDF5_DIR), then rerun"
    say "installing system packages: MPICH, parallel HDF5, compilers (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    quiet $sudo apt-get update -qq
    quiet $sudo apt-get install -y -qq --no-install-recommends mpich libmpich-dev \
        libhdf5-mpich-dev pkg-config build-essential python3-dev python3-venv
}

if ! have_system_stack; then
    install_system_stack
    have_system_stack || fail "MPI/parallel HDF5 still not found after apt-get install"
fi

# --- 1b. headless Chromium: the report's browser test (tests/browser.py) -----------
# Optional for using hpcneuro; tests that need it skip without it (and fail on CI).
have_chromium() { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }
if ! have_chromium && [ "${HPCNEURO_NO_CHROMIUM:-0}" != 1 ] && command -v apt-get >/dev/null; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo="sudo"
    if [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; then
        say "installing Chromium for the report's browser test (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        { $sudo apt-get install -y -qq --no-install-recommends chromium >>"$LOG" 2>&1 \
            || { quiet $sudo apt-get update -qq && $sudo apt-get install -y -qq \
                 --no-install-recommends chromium >>"$LOG" 2>&1; }; } \
            || say "Chromium could not be installed (see $LOG): the browser test will skip"
    fi
fi

# --- 2. virtualenv and Python packages ------------------------------------------
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ] \
        && "$VENV/bin/python" -m hpcneuro.environment --quick >/dev/null 2>&1; then
    exit 0  # already installed and healthy
fi

if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtualenv $VENV"
    quiet "$PYTHON_BIN" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
# the venv's bundled setuptools is too old for h5py's metadata
quiet "${PIP[@]}" install -q -U pip setuptools wheel
quiet "${PIP[@]}" install -q numpy cython pkgconfig

if ! "$PY" -c "import mpi4py.MPI" >/dev/null 2>&1; then
    say "building mpi4py against $(command -v mpicc) (a few minutes the first time)"
    quiet env MPICC="$(command -v mpicc)" "${PIP[@]}" install -q --no-binary=mpi4py mpi4py
fi

if ! "$PY" -c "import h5py,sys; sys.exit(0 if h5py.get_config().mpi else 1)" >/dev/null 2>&1; then
    say "building h5py with MPI (parallel HDF5; a few minutes the first time)"
    h5env=(CC="$(command -v mpicc)" HDF5_MPI=ON)
    if [ -z "${HDF5_DIR:-}" ]; then h5env+=(HDF5_PKGCONFIG_NAME=hdf5-mpich); fi
    quiet env "${h5env[@]}" "${PIP[@]}" install -q --no-binary=h5py --no-build-isolation \
        --force-reinstall --no-deps h5py
fi

say "installing hpcneuro and its dependencies (NEURON, eFEL, Dask, numba)"
quiet "${PIP[@]}" install -q -e "$ROOT[test]"

# --- 3. NEURON mechanisms and checks ----------------------------------------------
say "compiling NEURON mechanisms"
quiet "$PY" -c "from hpcneuro.mechanisms import compile_mechanisms; print(compile_mechanisms())"

say "checking the installation (parallel HDF5, mpiexec -n 2 with mpi4py)"
"$PY" -m hpcneuro.environment >>"$LOG" 2>&1 || {
    "$PY" -m hpcneuro.environment >&2 || true
    fail "installation check"
}
fingerprint >"$STAMP"
rm -f "$LOG"
say "done: activate with 'source $VENV/bin/activate' or call $VENV/bin/hpcneuro"
