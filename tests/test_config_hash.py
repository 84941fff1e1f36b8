"""The config hash: over the configuration as written plus the contents of the files it
names. A moved campaign folder resumes; an edited morphology, .mod file or table is
refused, named. One parser for FILE:/dataset table specs."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import yaml

from conftest import LEAK_MOD, ROOT, run_cli, small_config
from hpcneuro import config as configuration
from hpcneuro.errors import UserError
from hpcneuro.tables import read_table, split_h5_spec

N_SAMPLES = 12
# a soma and one short dendrite: the morphology path of the model, kept small
SWC = "1 1 0 0 0 8 -1\n2 1 0 -8 0 8 1\n3 1 0 8 0 8 1\n4 3 -8 0 0 1 1\n5 3 -60 0 0 0.8 4\n"


def campaign_folder(folder):
    """A campaign whose config names a morphology and a parameter table by relative
    paths, beside it in ``folder``. Returns the config's path."""
    folder.mkdir()
    (folder / "cell.swc").write_text(SWC)
    cfg = small_config()
    cfg["model"]["morphology"] = "cell.swc"
    params = cfg["parameters"]
    rows = np.random.default_rng(3).uniform(size=(N_SAMPLES, len(params)))
    lows, highs = np.array([p["low"] for p in params]), np.array([p["high"] for p in params])
    names = [f"{p['variable']}_{p['mechanism']}" for p in params]
    np.savetxt(folder / "params.csv", lows + rows * (highs - lows), delimiter=",",
               header=",".join(names), comments="")
    cfg["sampling"] = {"method": "table", "table": "params.csv"}
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_moved_campaign_folder_resumes_and_edited_files_are_refused(tmp_path):
    config = campaign_folder(tmp_path / "first")
    proc = run_cli("simulate", config, "-o", config.parent / "results.h5")
    assert proc.returncode == 0, proc.stderr
    # the stored config keeps the paths as written, and the files' hashes
    with h5py.File(config.parent / "results.h5", "r+") as f:
        import json

        stored = json.loads(f.attrs["config"])
        assert (f["status"][:] == 1).all()
        features = f["features"][:]
        # as if the campaign had stopped half-way: the second half pending again
        f["status"][N_SAMPLES // 2:] = 0
    assert stored["files"]["model.morphology"]["path"] == "cell.swc"
    assert stored["files"]["sampling.table"]["path"] == "params.csv"

    moved = tmp_path / "elsewhere" / "second"
    moved.parent.mkdir()
    shutil.move(str(config.parent), str(moved))
    proc = run_cli("simulate", moved / "campaign.yaml", "-o", moved / "results.h5",
                   "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "different configuration" not in proc.stderr
    with h5py.File(moved / "results.h5", "r") as f:  # the pending half was simulated
        assert (f["status"][:] == 1).all()
        assert np.array_equal(f["features"][:], features, equal_nan=True)

    swc = moved / "cell.swc"
    swc.write_text(SWC.replace("-60 0 0 0.8", "-90 0 0 0.8"))
    proc = run_cli("simulate", moved / "campaign.yaml", "-o", moved / "results.h5")
    assert proc.returncode == 2
    assert "different configuration (changed: model.morphology (file contents))" in proc.stderr
    swc.write_text(SWC)

    table = moved / "params.csv"
    lines = table.read_text().splitlines()
    table.write_text("\n".join(lines[:-1]) + "\n" + lines[1] + "\n")  # last row replaced
    proc = run_cli("simulate", moved / "campaign.yaml", "-o", moved / "results.h5")
    assert proc.returncode == 2
    assert "different configuration (changed: sampling.table (file contents))" in proc.stderr


def _validate(cfg, base):
    return configuration.validate(cfg, base)


def test_hash_ignores_the_folder_and_sees_mod_file_contents(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "mods").mkdir(parents=True)
        (tmp_path / name / "mods" / "leak2.mod").write_text(LEAK_MOD)
    cfg = small_config()
    cfg["model"]["mod_dirs"] = ["mods"]
    a = _validate(cfg, tmp_path / "a")
    b = _validate(cfg, tmp_path / "b")
    assert a["model"]["mod_dirs"] != b["model"]["mod_dirs"]  # resolved for the run
    assert configuration.config_hash(a) == configuration.config_hash(b)
    assert configuration.diff(a, b) == []
    (tmp_path / "b" / "mods" / "leak2.mod").write_text(LEAK_MOD.replace("g = 1e-4", "g = 2e-4"))
    c = _validate(cfg, tmp_path / "b")
    assert configuration.config_hash(a) != configuration.config_hash(c)
    assert configuration.diff(a, c) == ["model.mod_dirs[0] (file contents)"]
    # a path written differently is a change of the config itself
    (tmp_path / "b" / "other").mkdir()
    (tmp_path / "b" / "other" / "leak2.mod").write_text(LEAK_MOD)
    cfg["model"]["mod_dirs"] = ["other"]
    d = _validate(cfg, tmp_path / "b")
    assert configuration.diff(a, d) == ["model.mod_dirs[0]"]
    # a stored config (JSON text) compares the same as the live one
    import json

    assert configuration.config_hash(json.loads(configuration.dumps(a))) == \
        configuration.config_hash(a)


@pytest.mark.parametrize("spec,expected", [
    ("x.h5:/d", ("x.h5", "/d")), ("x.hdf5:/g/d", ("x.hdf5", "/g/d")),
    ("dir/x.he5:/d", ("dir/x.he5", "/d")), ("X.HDF5:/d", ("X.HDF5", "/d")),
    ("x.hdf:/d", ("x.hdf", "/d")), ("x.h5", ("x.h5", None)), ("x.h5:", ("x.h5", None)),
    ("x.csv", None), ("x.h5.csv", None), ("a.h5x:/d", None)])
def test_split_h5_spec(spec, expected):
    assert split_h5_spec(spec) == expected


@pytest.mark.parametrize("ext", ["h5", "hdf5", "he5"])
def test_hdf5_table_specs_of_every_extension_sample_and_hash(tmp_path, ext):
    """The sampler reads x.EXT:/dataset and the hasher hashes x.EXT (x.hdf5 crashed it)."""
    cfg = small_config()
    params = cfg["parameters"]
    rows = np.array([[(p["low"] + p["high"]) / 2 for p in params]] * 5)
    with h5py.File(tmp_path / f"t.{ext}", "w") as f:
        f.create_dataset("runs/params", data=rows)
    cfg["sampling"] = {"method": "table", "table": f"t.{ext}:/runs/params"}
    resolved = _validate(cfg, tmp_path)
    assert resolved["sampling"]["n_samples"] == 5
    assert resolved["files"]["sampling.table"] == {
        "path": f"t.{ext}:/runs/params",
        "sha256": configuration.file_sha256(tmp_path / f"t.{ext}")}
    data, _ = read_table(resolved["sampling"]["table"])
    assert np.array_equal(data, rows)


def test_missing_table_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"no such file: .*nope\.hdf5 \(from table spec"):
        read_table(str(tmp_path / "nope.hdf5") + ":/d")
    cfg = small_config()
    cfg["sampling"] = {"method": "table", "table": "nope.hdf5:/d"}
    with pytest.raises(configuration.ConfigError, match="sampling.table: file not found"):
        _validate(cfg, tmp_path)
