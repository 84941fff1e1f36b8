"""Reports of OINFO.h5 files: one file alone (with a control band), several side by side,
and the participation shares of a planted synergistic triplet. Every page goes through
headless Chromium (tests/browser.py)."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from browser import assert_page_ok
from hpcneuro.cli import main
from hpcneuro.oinfo import compute_oinfo
from hpcneuro.oinfo.figures import participation, targeted_matrix
from hpcneuro.oinfo.result import OInfoResult
from hpcneuro.oinfo.stats import compare

NAMES = ["x1", "x2", "x3", "n1", "n2", "n3", "n4", "n5"]
T = 2000


def _planted(seed: int) -> np.ndarray:
    """x3 = x1 + x2 + noise (x1, x2 independent): a synergistic triplet; n1..n5 noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, len(NAMES)))
    x[:, 2] = x[:, 0] + x[:, 1] + 0.3 * x[:, 2]
    return x


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("oinfo")
    planted = compute_oinfo(_planted(1), NAMES, max_order=4, bootstrap=30, seed=3)
    control = compute_oinfo(np.random.default_rng(2).standard_normal((T, len(NAMES))), NAMES,
                            max_order=4, bootstrap=30, seed=3)
    planted.write(d / "planted.h5")
    control.write(d / "control.h5")
    return d / "planted.h5", d / "control.h5"


def test_participation_shares_of_a_planted_triplet(files):
    oinfo = OInfoResult.read(files[0])
    shares, orders, counted = participation(oinfo, top_k=1)
    assert orders == [3, 4] and counted == {3: 1, 4: 1}
    # the single most synergistic triplet is the planted one
    np.testing.assert_array_equal(shares[:, 0], [1, 1, 1, 0, 0, 0, 0, 0])
    # at order 4 the 5 most synergistic quadruplets are the triplet + each noise variable
    shares, _, counted = participation(oinfo, top_k=5)
    assert counted[4] == 5
    np.testing.assert_allclose(shares[:, 1], [1, 1, 1, 0.2, 0.2, 0.2, 0.2, 0.2])
    red, _, counted = participation(oinfo, top_k=5, sign="redundant")
    assert set(counted) == {3, 4}
    for k, c in zip(orders, red.T):  # a share is the fraction of counted rows, <= 1
        assert np.all((c >= 0) & (c <= 1)) and np.isclose(c.sum(), k)


def test_report_of_one_oinfo_file_with_a_control_band(files, capsys):
    planted, control = files
    assert main(["report", str(planted), "--control", str(control)]) == 0
    page = planted.parent / "planted-report" / "index.html"
    assert capsys.readouterr().out.strip() == str(page)
    record = assert_page_ok(page)
    assert {src for src, _, _ in record["images"]} == {
        "oinfo.png", "oinfo_distribution.png", "participation.png"}
    text = page.read_text()
    assert "x1, x2, x3" in text  # the top synergistic triplet is listed
    assert "Grey band: the control" in text and str(control) in text
    assert "mean O (95% bootstrap intervals)" in text and "Provenance" in text
    r3 = OInfoResult.read(planted).orders[3]
    assert f"{r3.mean:+.4g} [{r3.mean_ci[0]:+.4g}, {r3.mean_ci[1]:+.4g}]" in text


def test_ensembles_side_by_side(files, tmp_path, capsys):
    planted, control = files
    out = tmp_path / "cmp"
    assert main(["report", str(control), str(planted), "-o", str(out)]) == 0
    page = out / "index.html"
    record = assert_page_ok(page)
    assert [src for src, _, _ in record["images"]] == ["ensembles.png"]
    text = page.read_text()
    assert "Differences from control" in text
    assert "different numbers of samples" not in text  # both have T rows
    rows = compare(OInfoResult.read(planted), OInfoResult.read(control))
    d3 = rows[0]
    # the planted triplet shifts the order-3 mean below the control's, beyond the interval
    assert d3["order"] == 3 and d3["diff"] < 0 and d3["excludes_zero"]
    lo, hi = d3["diff_ci"]
    assert (f"<td>planted</td><td>3</td><td>{d3['diff']:+.4g}</td>"
            f"<td>[{lo:+.4g}, {hi:+.4g}]</td><td>yes</td>") in text
    # a folder of OINFO.h5 files: the same comparison, first by name, into FOLDER/report
    folder = tmp_path / "ens"
    folder.mkdir()
    shutil.copy(control, folder / "a_control.h5")
    shutil.copy(planted, folder / "b_planted.h5")
    (folder / "notes.h5").write_bytes(b"")  # not an OINFO.h5: ignored
    capsys.readouterr()
    assert main(["report", str(folder)]) == 0
    page = folder / "report" / "index.html"
    assert capsys.readouterr().out.strip() == str(page)
    assert_page_ok(page)
    assert "Differences from a_control" in page.read_text()


def test_report_refusals_are_one_line(files, tmp_path, capsys):
    planted, control = files
    other = tmp_path / "x.h5"
    with h5py.File(other, "w"):
        pass
    assert main(["report", str(planted), str(other)]) == 2
    assert "is not an OINFO.h5 file" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2  # a folder holding no OINFO.h5
    assert "neither a run folder" in capsys.readouterr().err
    assert main(["report", str(planted), str(control), "--control", str(control)]) == 2
    assert "--control is for a run folder" in capsys.readouterr().err
    bits = compute_oinfo(_planted(1), NAMES, max_order=3, units="bits")
    bits.write(tmp_path / "bits.h5")
    assert main(["report", str(planted), str(tmp_path / "bits.h5"), "-o",
                 str(tmp_path / "r")]) == 2
    assert "different units" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    (tmp_path / "file").write_text("")
    assert main(["report", str(planted), "-o", str(tmp_path / "file")]) == 2
    assert "a report is a folder" in capsys.readouterr().err


def test_targeted_matrix_marks_intervals_excluding_zero(files):
    planted, control = (OInfoResult.read(p) for p in files)
    mean, sig, orders = targeted_matrix({"planted": planted, "control": control})
    assert orders == [3, 4]
    np.testing.assert_allclose(mean[:, 0], [planted.orders[3].mean, control.orders[3].mean])
    for i, r in enumerate((planted, control)):
        for j, k in enumerate(orders):
            lo, hi = r.orders[k].mean_ci
            assert sig[i, j] == (lo > 0 or hi < 0)
    assert sig[0, 0]  # the planted triplet's order is synergistic beyond its interval


def test_ensembles_of_different_sizes_warn_about_the_plugin_bias(files, tmp_path):
    from hpcneuro.report import build_any

    small = compute_oinfo(_planted(5)[:500], NAMES, max_order=4, bootstrap=10, seed=3)
    small.write(tmp_path / "small.h5")
    page = build_any([files[0], tmp_path / "small.h5"], tmp_path / "out")
    assert_page_ok(page)
    text = page.read_text()
    assert "different numbers of samples" in text and "Differences from planted" in text
