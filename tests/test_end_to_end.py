"""The whole thin path for real: mpiexec -n 2 NEURON ranks -> one MPI-IO HDF5 file ->
O-information on a Dask LocalCluster -> report."""

from __future__ import annotations

import json
import sys
from itertools import combinations

import h5py
import numpy as np
import pytest
from scipy.special import ndtri
from scipy.stats import rankdata

from hpcneuro import config as configuration
from conftest import ROOT, run_cli, small_config


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """One real run of a small demo campaign on 2 MPI ranks (shared by the tests)."""
    tmp = tmp_path_factory.mktemp("e2e")
    cfg = small_config()
    path = tmp / "campaign.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    rundir = tmp / "run"
    proc = run_cli("run", path, "--np", 2, "-o", rundir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"config": path, "rundir": rundir, "proc": proc,
            "resolved": configuration.load(path)}


def test_results_file_has_the_documented_layout(campaign):
    cfg = campaign["resolved"]
    n, p, nf = 60, len(cfg["parameters"]), len(cfg["features"])
    with h5py.File(campaign["rundir"] / "results.h5", "r") as f:
        assert f["params"].dtype == np.float64 and f["params"].shape == (n, p)
        assert f["features"].dtype == np.float64 and f["features"].shape == (n, nf)
        assert f["status"].dtype == np.int8 and f["status"].shape == (n,)
        assert list(f["params"].attrs["names"]) == configuration.parameter_names(cfg)
        assert list(f["features"].attrs["names"]) == cfg["features"]
        assert json.loads(f.attrs["config"]) == cfg
        assert f.attrs["config_hash"] == configuration.config_hash(cfg)
        assert f.attrs["seed"] == cfg["seed"]
        import efel

        import hpcneuro
        from hpcneuro.nrn import import_neuron

        neuron = import_neuron()

        assert f.attrs["neuron_version"] == neuron.__version__
        assert f.attrs["efel_version"] == efel.__version__
        assert f.attrs["hpcneuro_version"] == hpcneuro.__version__
        status, params, feats = f["status"][:], f["params"][:], f["features"][:]
        ranks, valid = f["rank"][:], f["valid"][:]
    assert set(np.unique(status)) <= {1, 2, 3} and (status == 1).sum() >= 50
    assert set(np.unique(ranks)) == {0, 1}  # both ranks worked
    for k, spec in enumerate(cfg["parameters"]):
        assert np.all((params[:, k] >= spec["low"]) & (params[:, k] <= spec["high"]))
    freq = feats[:, cfg["features"].index("step_300.mean_frequency")]
    base = feats[:, cfg["features"].index("hyper.voltage_base")]
    ok = valid == 1
    assert 10 <= ok.sum() < 60  # the validity rules select some, not all
    assert np.all((freq[ok] >= 20) & (freq[ok] <= 150))
    rest = base[status == 1]  # resting potentials; a few models fire spontaneously
    assert np.mean((rest > -80) & (rest < -55)) > 0.8


def test_results_file_opens_with_the_mpio_driver_on_two_ranks(campaign, tmp_path):
    script = tmp_path / "read.py"
    # one write() per rank: mpiexec interleaves the ranks' output at write boundaries
    script.write_text(
        "import os, sys\nfrom mpi4py import MPI\nimport h5py\n"
        "comm = MPI.COMM_WORLD\n"
        "with h5py.File(sys.argv[1], 'r', driver='mpio', comm=comm) as f:\n"
        "    row = f['params'][comm.rank]\n"
        "    done = int((f['status'][:] == 1).sum())\n"
        "os.write(1, f'rank {comm.rank} params {len(row)} done {done}\\n'.encode())\n")
    import subprocess

    proc = subprocess.run(["mpiexec", "-n", "2", sys.executable, str(script),
                           str(campaign["rundir"] / "results.h5")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = sorted(l for l in proc.stdout.splitlines() if l.startswith("rank"))
    assert [l.split()[1] for l in lines] == ["0", "1"]
    assert all("params 5" in l for l in lines)


def _reference_oinfo(x: np.ndarray, subset) -> float:
    """Gaussian-copula O-information by direct log-determinants (independent of the engine)."""
    u = np.column_stack([rankdata(c) / (len(c) + 1) for c in x.T])
    g = ndtri(u)
    cov = np.cov(g[:, subset], rowvar=False)
    k = len(subset)
    logdet = lambda m: np.linalg.slogdet(np.atleast_2d(m))[1]
    h_all = 0.5 * logdet(cov)
    total = (k - 2) * h_all
    for j in range(k):
        rest = [i for i in range(k) if i != j]
        total += 0.5 * np.log(cov[j, j]) - 0.5 * logdet(cov[np.ix_(rest, rest)])
    return total


def test_oinfo_file_matches_an_independent_reference_on_valid_models(campaign):
    with h5py.File(campaign["rundir"] / "results.h5", "r") as f:
        keep = (f["status"][:] == 1) & (f["valid"][:] == 1)
        x = f["params"][:][keep]
        names = [str(n) for n in f["params"].attrs["names"]]
    with h5py.File(campaign["rundir"] / "oinfo.h5", "r") as f:
        assert [v.decode() if isinstance(v, bytes) else v for v in f["variables"][:]] == names
        assert f.attrs["estimator"] == "gc" and f.attrs["units"] == "nats"
        assert int(f.attrs["n_samples"]) == keep.sum()
        multiplets, values = f["order_3/multiplets"][:], f["order_3/oinfo"][:]
        summary = f["summary"][:]
    assert multiplets.shape == (10, 3)  # C(5, 3): every multiplet stored
    assert np.all(np.diff(multiplets, axis=1) > 0)
    for row, value in zip(multiplets, values):
        assert value == pytest.approx(_reference_oinfo(x, list(row)), rel=1e-9, abs=1e-12)
    assert summary["n_multiplets"][0] == 10
    assert summary["n_synergistic"][0] == int((values < 0).sum())
    assert summary["min"][0] == pytest.approx(values.min())


def test_run_prints_summary_and_writes_report(campaign):
    out = campaign["proc"].stdout
    assert "done" in out and "valid models" in out and "O-information" in out
    page = campaign["rundir"] / "report" / "index.html"
    html = page.read_text()
    for figure in ("parameters.png", "features.png", "oinfo.png"):
        assert figure in html
        assert (page.parent / figure).stat().st_size > 5000


def test_status_reports_a_complete_campaign(campaign):
    proc = run_cli("status", campaign["rundir"] / "results.h5")
    assert proc.returncode == 0
    assert "60 samples" in proc.stdout and "complete" in proc.stdout
    assert "samples/s" in proc.stdout


def test_serial_run_gives_bit_identical_results(campaign, tmp_path):
    out = tmp_path / "serial.h5"
    proc = run_cli("simulate", campaign["config"], "-o", out)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as a, h5py.File(campaign["rundir"] / "results.h5", "r") as b:
        for key in ("params", "features", "status", "valid"):
            np.testing.assert_array_equal(a[key][:], b[key][:])


def test_rerun_resumes_nothing_left_and_refuses_a_changed_config(campaign, tmp_path,
                                                                 write_config):
    results = campaign["rundir"] / "results.h5"
    before = results.read_bytes()
    proc = run_cli("simulate", campaign["config"], "-o", results, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "0 pending" in proc.stderr
    changed = small_config(seed=99)
    proc = run_cli("simulate", write_config(changed, "changed.yaml"), "-o", results)
    assert proc.returncode == 2
    assert "different configuration (changed: seed)" in proc.stderr
    assert results.read_bytes() == before
