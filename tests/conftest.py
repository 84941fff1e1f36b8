"""Shared fixtures: small real campaigns, the repo root, a CLI runner."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


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
