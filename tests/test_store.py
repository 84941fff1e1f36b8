"""RESULTS.h5 through its owner: the declared schema drives creation, writing and every
reader; status codes by name; a report built from a small real campaign."""

from __future__ import annotations

import logging
import re
import time

import h5py
import numpy as np
import pytest
import yaml

from hpcneuro import config as configuration
from hpcneuro import store
from hpcneuro.campaign import simulate
from hpcneuro.errors import UserError
from hpcneuro.simulation import BlockResult
from hpcneuro.store import (ATTRIBUTES, DONE, FEATURE_FAILED, FIELDS, PENDING, SIM_FAILED,
                            STATUS_NAMES, NotAResultsFile, ResultsStore)
from conftest import ROOT, run_cli, small_config

N = 12


@pytest.fixture
def cfg():
    raw = small_config()
    raw["sampling"]["n_samples"] = N
    return configuration.validate(raw, ROOT / "configs")


@pytest.fixture
def written(cfg, tmp_path):
    """A real file with one block written: samples 0, 1, 2 and 5 ran, the rest pending.

    Sample 0 done and valid, 1 simulation failed, 2 done with one undefined feature,
    5 feature extraction failed.
    """
    path = tmp_path / "results.h5"
    ResultsStore.create(str(path), cfg).close()
    p, f = len(configuration.parameter_names(cfg)), len(configuration.feature_names(cfg))
    indices = np.array([0, 1, 2, 5])
    params = np.arange(4 * p, dtype=float).reshape(4, p)
    features = np.arange(4 * f, dtype=float).reshape(4, f) + 0.5
    features[1] = features[3] = np.nan
    features[2, 1] = np.nan
    result = BlockResult(features, np.array([DONE, SIM_FAILED, DONE, FEATURE_FAILED], "i1"),
                         np.array([True, False, False, False]),
                         ["", "voltage diverged in protocol step_300", "",
                          "eFEL failed on protocol hyper" + "!" * 100])
    started = time.time() - 5.0
    s = ResultsStore.open(str(path))
    s.write_block(indices, params, result, rank=3, started_at=started)
    s.close()
    return {"path": path, "indices": indices, "params": params, "features": features,
            "started": started}


def test_status_codes_are_named_and_fixed():
    assert STATUS_NAMES == {0: "pending", 1: "done", 2: "simulation failed",
                            3: "feature extraction failed", 4: "timed out",
                            5: "chain failed"}
    assert (PENDING, DONE, SIM_FAILED, FEATURE_FAILED) == (0, 1, 2, 3)
    assert set(store.FAILED) == set(STATUS_NAMES) - {PENDING, DONE}
    counts = store.status_counts(np.array([0, 1, 1, 2, 4], dtype="i1"))
    assert list(counts) == list(STATUS_NAMES.values())
    assert counts == {"pending": 1, "done": 2, "simulation failed": 1,
                      "feature extraction failed": 0, "timed out": 1, "chain failed": 0}


def test_create_follows_the_declared_schema(cfg, tmp_path):
    path = tmp_path / "results.h5"
    ResultsStore.create(str(path), cfg).close()
    dims = {"N": N, "P": len(cfg["parameters"]), "F": len(cfg["features"])}
    with h5py.File(path, "r") as f:  # the raw file: what any HDF5 reader sees
        assert sorted(f) == sorted(field.name for field in FIELDS)
        for field in FIELDS:
            ds = f[field.name]
            assert ds.dtype == np.dtype(field.dtype), field.name
            assert ds.shape == field.size(dims), field.name
            assert ds.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS
            first = ds[0]
            if isinstance(field.fill, float) and np.isnan(field.fill):
                assert np.all(np.isnan(first)), field.name
            else:
                assert np.all(first == field.fill), field.name
        assert list(f["params"].attrs["names"]) == configuration.parameter_names(cfg)
        assert list(f["features"].attrs["names"]) == cfg["features"]
        assert sorted(f.attrs) == sorted(a.name for a in ATTRIBUTES)
        assert f.attrs["status_codes"] == ("0 pending, 1 done, 2 simulation failed, "
                                           "3 feature extraction failed, 4 timed out, "
                                           "5 chain failed")
    for field in FIELDS:
        assert field.name in store.layout()


def test_write_block_then_every_reader(cfg, written):
    path, idx = written["path"], written["indices"]
    pending = np.setdiff1d(np.arange(N), idx)
    with ResultsStore.read(path) as f:
        assert f.n_samples == N and f.missing_fields() == []
        status = f.status()
        assert list(status[idx]) == [DONE, SIM_FAILED, DONE, FEATURE_FAILED]
        assert np.all(status[pending] == PENDING)
        np.testing.assert_array_equal(f.column("params")[idx], written["params"])
        assert np.all(np.isnan(f.column("params")[pending]))
        np.testing.assert_array_equal(f.column("features")[idx], written["features"])
        assert list(f.column("valid")[idx]) == [1, 0, 0, 0]
        assert list(f.valid_models()) == [True] + [False] * (N - 1)
        errors = f.column("error")
        assert errors[1] == b"voltage diverged in protocol step_300"
        assert len(errors[5]) == store.ERROR_LEN and errors[0] == b""  # cut to its width
        assert list(f.column("rank")[idx]) == [3] * 4
        assert np.all(f.column("rank")[pending] == -1)
        started, finished = f.column("started_at"), f.column("finished_at")
        assert np.all(started[idx] == written["started"])
        assert np.all(finished[idx] >= started[idx] + 5.0)
        assert np.all(np.isnan(started[pending])) and np.all(np.isnan(finished[pending]))
        assert f.config() == cfg and f.config_hash() == configuration.config_hash(cfg)
        assert set(f.versions()) == set(store.VERSION_ATTRIBUTES)
        assert f.names("params") == configuration.parameter_names(cfg)
        with pytest.raises(ValueError, match="no column names"):
            f.names("status")
        with pytest.raises(ValueError, match="not a field"):
            f.column("nonsense")
    np.testing.assert_array_equal(store.read_status(path), status)
    assert store.read_config(path) == cfg
    summary = store.read_summary(path)
    assert summary["name"] == cfg["name"] and summary["n_samples"] == N
    assert summary["counts"] == {PENDING: N - 4, DONE: 2, SIM_FAILED: 1, FEATURE_FAILED: 1,
                                 store.TIMED_OUT: 0, store.CHAIN_FAILED: 0}
    assert summary["n_valid"] == 1
    assert summary["last_write"] == pytest.approx(finished[idx].max())


def test_read_table_selects_rows_and_columns(cfg, written, caplog):
    path = written["path"]
    pnames, fnames = configuration.parameter_names(cfg), cfg["features"]
    data, names = store.read_table(path, "params", valid_only=True)
    assert names == pnames
    np.testing.assert_array_equal(data, written["params"][[0]])
    data, names = store.read_table(path, "both", valid_only=True)
    assert names == pnames + fnames and data.shape == (1, len(pnames) + len(fnames))
    with caplog.at_level(logging.WARNING, logger="hpcneuro"):
        data, names = store.read_table(path, "features", valid_only=False)
    assert names == fnames
    np.testing.assert_array_equal(data, written["features"][[0]])  # sample 2 has a NaN
    assert "dropping 1 of 2 models with undefined (NaN) values in the analysed columns" in caplog.text
    data, _ = store.read_table(path, "features", valid_only=False, drop_undefined=False)
    assert data.shape == (2, len(fnames))
    with pytest.raises(UserError, match="variables: must be one of params, features, both"):
        store.read_table(path, "genes")


def test_empty_selection_and_what_is_not_a_results_file(cfg, tmp_path):
    empty = tmp_path / "empty.h5"
    ResultsStore.create(str(empty), cfg).close()
    with pytest.raises(UserError, match="has no valid models to analyse; try --all-models"):
        store.read_table(empty)
    with pytest.raises(UserError, match="has no finished samples to analyse$"):
        store.read_table(empty, valid_only=False)
    with pytest.raises(NotAResultsFile, match="no such results file"):
        store.read_summary(tmp_path / "none.h5")
    (tmp_path / "text.h5").write_text("not HDF5")
    with pytest.raises(NotAResultsFile, match="not a readable HDF5 results file"):
        store.read_status(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(NotAResultsFile, match=r"not an hpcneuro results file \(no 'status'"):
        store.read_config(tmp_path / "other.h5")


def test_resume_refuses_a_file_without_a_declared_field(cfg, tmp_path):
    """A file written before ``started_at`` existed is refused with advice, not crashed on;
    a file that is not a results file is refused by name."""
    path = tmp_path / "results.h5"
    ResultsStore.create(str(path), cfg).close()
    with h5py.File(path, "r+") as f:  # what an older hpcneuro wrote
        del f["started_at"]
    with pytest.raises(UserError, match="lacks the datasets started_at .*--overwrite"):
        simulate(cfg, str(path), resume=True)
    (tmp_path / "text.h5").write_text("not HDF5")
    with pytest.raises(UserError, match="exists but is not a readable hpcneuro results file "
                                        r"\(not a readable HDF5"):
        simulate(cfg, str(tmp_path / "text.h5"))


def test_report_of_a_small_real_campaign(tmp_path):
    """simulate -> analyze -> report: the page exists, every figure it references exists
    as a PNG, and its sample counts are the file's."""
    from hpcneuro import report
    from hpcneuro.cli import run_analysis

    raw = small_config()
    raw["sampling"]["n_samples"] = 30
    config = tmp_path / "campaign.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    rundir = tmp_path / "run"
    rundir.mkdir()
    results = rundir / "results.h5"
    proc = run_cli("simulate", config, "-o", results)
    assert proc.returncode == 0, proc.stderr
    with ResultsStore.read(results) as f:  # the campaign loop records both times
        done = f.status() != PENDING
        started, finished = f.column("started_at"), f.column("finished_at")
    assert done.all() and np.all(started <= finished) and np.isfinite(started).all()
    run_analysis(str(results), str(rundir / "oinfo.h5"), "params", False, scheduler="none",
                 max_order=3)
    page = report.build(rundir)
    assert page == rundir / "report" / "index.html"
    text = page.read_text()
    figures = re.findall(r'<img src="([^"]+)"', text)
    assert set(figures) == {"parameters.png", "correlation.png", "features.png", "oinfo.png",
                            "oinfo_distribution.png", "participation.png"}
    for name in figures:
        assert (page.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    summary = store.read_summary(results)
    for code, name in STATUS_NAMES.items():
        assert f"<tr><td>{name}</td><td>{summary['counts'][code]}</td></tr>" in text
    assert f"<tr><td>valid models</td><td>{summary['n_valid']}</td></tr>" in text
