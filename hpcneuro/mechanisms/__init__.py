"""NEURON mechanisms (.mod files) shipped with hpcneuro, and their compile cache.

Every rank must load the same compiled library. Compiling is slow (seconds) and
racy if many ranks do it at once, so the library is built once per distinct set of
.mod contents into a cache folder keyed by their hash, under a file lock, and
reused by every later run, rank and campaign.

CoreNEURON loads exactly one mechanism library per process, so for it the package's
.mod files and the user's folders are compiled together (``nrnivmodl -coreneuron``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from hpcneuro.errors import UserError
from hpcneuro.nrn import import_neuron

PACKAGE_MOD_DIR = Path(__file__).resolve().parent

_loaded: set[str] = set()


def cache_root() -> Path:
    """Folder holding compiled mechanism libraries (``$HPCNEURO_CACHE`` overrides)."""
    base = os.environ.get("HPCNEURO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hpcneuro")
    return Path(base) / "mechanisms"


def mod_files(folder: str | os.PathLike) -> list[Path]:
    """The .mod files of one folder, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"model.mod_dirs: {folder} is not a folder of .mod files")
    return sorted(folder.glob("*.mod"))


def _digest(files: Sequence[Path], flavour: str) -> str:
    neuron = import_neuron()  # the compiled library is specific to the NEURON version
    h = hashlib.sha256(f"neuron {neuron.__version__} {flavour}".encode())
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _find_library(build_dir: Path, name: str = "nrnmech") -> Path | None:
    for pattern in (f"*/lib{name}.so", f"*/.libs/lib{name}.so", f"*/lib{name}.dylib"):
        hits = sorted(build_dir.glob(pattern))
        if hits:
            return hits[0]
    return None


def _nrnivmodl() -> str:
    local = Path(sys.executable).parent / "nrnivmodl"
    found = str(local) if local.exists() else shutil.which("nrnivmodl")
    if not found:
        raise UserError("nrnivmodl not found: install NEURON (pip install neuron) "
                        "or run scripts/install.sh")
    return found


#: nrnivmodl's progress chatter and its Python wrapper's traceback: not diagnostics
_NOISE = ("Traceback (most recent call last)", "File \"", "subprocess.", "raise ",
          "make: ", "make[", "NOTE:", "refer to the C++", "->", "cfiles", "Mod files",
          "Creating", "MODOBJS", "Translating", "^", "check_call", "exec(", "sys.exit(")
#: diagnostics kept in the error message: the compiler's own first lines say what is wrong
DIAGNOSTIC_LINES = 20


def compiler_diagnostics(output: str, work: Path) -> str:
    """The lines of nrnivmodl's output that say what is wrong with a .mod file."""
    lines = [line.rstrip() for line in output.splitlines()]
    keep = [line for line in lines if line.strip() and str(work) not in line
            and not line.strip().startswith(_NOISE)]
    return "\n".join(keep[:DIAGNOSTIC_LINES])


def _compile_library(files: Sequence[Path], coreneuron: bool = False) -> Path:
    """Compile (or reuse from the cache) one library of ``files``; return its path:
    libnrnmech for NEURON, or with ``coreneuron`` libcorenrnmech."""
    key = _digest(files, "coreneuron" if coreneuron else "neuron")
    name = "corenrnmech" if coreneuron else "nrnmech"
    root = cache_root()
    target = root / key
    lib = _find_library(target, name) if target.exists() else None
    if lib is not None:
        return lib
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lib = _find_library(target, name) if target.exists() else None
        if lib is not None:  # another process finished while we waited
            return lib
        work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root))
        for f in files:
            shutil.copy2(f, work / f.name)
        command = [_nrnivmodl()] + (["-coreneuron"] if coreneuron else []) + ["."]
        proc = subprocess.run(command, cwd=work, capture_output=True, text=True)
        lib = _find_library(work, name)
        if proc.returncode != 0 or lib is None:
            shutil.rmtree(work, ignore_errors=True)
            detail = compiler_diagnostics(proc.stdout + proc.stderr, work)
            if coreneuron:
                raise UserError(
                    "the mechanisms did not compile for CoreNEURON (nrnivmodl -coreneuron "
                    "failed); fix the .mod file named below, or set simulation.engine: "
                    f"neuron:\n{detail}")
            raise UserError(
                "the NEURON mechanisms did not compile (nrnivmodl failed); "
                f"fix the .mod file named below:\n{detail}")
        os.replace(work, target)  # atomic: readers never see a half-built folder
    return _find_library(target, name)


def compile_mechanisms(extra_dirs: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Compile (or reuse) the package's mechanisms and each extra folder's; return libraries.

    Each folder becomes its own library, so a process can load the package's library
    once and any number of user folders next to it.
    """
    libs = [_compile_library(mod_files(PACKAGE_MOD_DIR))]
    for folder in extra_dirs:
        files = mod_files(folder)
        if files:
            libs.append(_compile_library(files))
    return libs


def coreneuron_library(extra_dirs: Iterable[str | os.PathLike] = ()) -> Path:
    """Compile (or reuse) one CoreNEURON library of the package's and the extra folders'
    .mod files; return the path of its libcorenrnmech."""
    files = mod_files(PACKAGE_MOD_DIR)
    for folder in extra_dirs:
        files += mod_files(folder)
    names = [f.name for f in files]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"model.mod_dirs: {', '.join(twice)} also ship with hpcneuro (or "
                        "appear twice); rename them, or set simulation.engine: neuron")
    return _compile_library(files, coreneuron=True)


def load_mechanisms(extra_dirs: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Compile if needed and load the mechanism libraries into this process's NEURON."""
    libs = compile_mechanisms(extra_dirs)
    for lib in libs:
        if str(lib) in _loaded:
            continue
        h = import_neuron().h
        try:
            ok = h.nrn_load_dll(str(lib))
        except RuntimeError as exc:  # e.g. a mechanism name defined twice
            raise UserError(f"NEURON could not load {lib}: {exc}; two .mod files probably "
                            "define the same SUFFIX") from None
        if not ok:
            raise UserError(f"NEURON could not load the mechanism library {lib}")
        _loaded.add(str(lib))
    return libs
