"""The report in a real browser (headless Chromium): a small `hpcneuro run` with --set
overrides, stored traces and a bootstrap; the page loads, every image renders, no
console errors; a page with a broken image or a script error is caught."""

from __future__ import annotations

import re

import numpy as np
import pytest

from browser import assert_page_ok, check_page
from conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    rundir = tmp_path_factory.mktemp("run") / "demo"
    proc = run_cli("run", ROOT / "configs" / "demo.yaml", "-o", rundir,
                   "--set", "sampling.n_samples=120", "--set", "simulation.batch_size=40",
                   "--set", "simulation.store_traces_every=20",
                   "--set", "analysis.scheduler=none", "--set", "analysis.bootstrap=30",
                   "--set", "analysis.permutations=20",
                   "--set", "analysis.max_order=4")
    assert proc.returncode == 0, proc.stderr
    return rundir


def test_report_of_a_small_run_renders_in_chromium(small_run):
    page = small_run / "report" / "index.html"
    record = assert_page_ok(page)
    srcs = {src for src, _, _ in record["images"]}
    assert {"parameters.png", "features.png", "oinfo.png", "oinfo_distribution.png",
            "correlation.png", "traces.png"} <= srcs, srcs
    text = page.read_text()
    assert "mean O" in text and "% synergistic" in text
    assert "test against independence" in text


def test_run_report_with_a_control_and_targeted_analyses(small_run, tmp_path):
    """RUNDIR/control_oinfo.h5 gives the control band, RUNDIR/targeted/ (analyze --target
    all-features) the feature x order heatmap; the participation heatmap is always there."""
    import shutil

    from hpcneuro.oinfo.figures import targeted_matrix
    from hpcneuro.oinfo.result import OInfoResult
    from hpcneuro.store import ResultsStore

    rundir = tmp_path / "run"
    shutil.copytree(small_run, rundir)
    shutil.rmtree(rundir / "report")
    results = rundir / "results.h5"
    for args in (["-o", rundir / "control_oinfo.h5", "--all-models"],
                 ["-o", rundir / "targeted", "--target", "all-features"]):
        proc = run_cli("analyze", results, *args, "--bootstrap", "20", "--max-order", "4")
        assert proc.returncode == 0, proc.stderr
    proc = run_cli("report", rundir)
    assert proc.returncode == 0, proc.stderr
    page = rundir / "report" / "index.html"
    record = assert_page_ok(page)
    srcs = {src for src, _, _ in record["images"]}
    assert {"oinfo.png", "participation.png", "targeted.png"} <= srcs, srcs
    text = page.read_text()
    assert "Grey band: the control" in text and "control_oinfo.h5" in text
    targeted = {p.stem: OInfoResult.read(p) for p in sorted((rundir / "targeted").glob("*.h5"))}
    with ResultsStore.read(results) as f:
        assert set(targeted) == set(f.names("features"))  # one analysis per feature
    assert all(r.attrs["target"] == name for name, r in targeted.items())
    mean, sig, _ = targeted_matrix(targeted)
    assert (f"({int(sig.sum())} of {int(np.isfinite(mean).sum())} cells)") in text
    # --control on the command line replaces the folder's control_oinfo.h5
    proc = run_cli("report", rundir, "--control", rundir / "targeted" /
                   f"{next(iter(targeted))}.h5")
    assert proc.returncode == 0, proc.stderr
    assert "targeted/" in page.read_text().split("Grey band: the control")[1][:400]


def test_the_harness_catches_broken_pages(tmp_path):
    (tmp_path / "index.html").write_text(
        "<!doctype html><html><head><title>t</title></head><body>"
        '<img src="missing.png"><script>nosuchfunction();</script></body></html>')
    record = check_page(tmp_path / "index.html")
    assert record["images"] == [["missing.png", 0, 0]]
    assert any("missing.png" in e for e in record["errors"])
    assert any("nosuchfunction" in e for e in record["errors"])
    with pytest.raises(AssertionError, match="did not render"):
        assert_page_ok(tmp_path / "index.html")


def test_report_of_a_reproduce_folder_renders_in_chromium(tiny_reproduce):
    """hpcneuro reproduce's folder (tiny scale, through the real commands): one page with
    the findings table, the ensembles side by side, the targeted heatmap, the mixture's
    components, the genes figures and a link to each ensemble's own run report."""
    from hpcneuro import findings as F

    out, _ = tiny_reproduce
    proc = run_cli("report", out)   # rebuilt by the command (reproduce built it too)
    assert proc.returncode == 0, proc.stderr
    page = out / "report" / "index.html"
    assert proc.stdout.strip() == str(page)
    record = assert_page_ok(page)
    srcs = {src for src, _, _ in record["images"]}
    assert {"ensembles.png", "targeted.png", "component0.png", "component1.png",
            "genes_oinfo.png", "genes_subset.png"} <= srcs, srcs
    text = page.read_text()
    import json

    doc = json.loads((out / "findings.json").read_text())
    for f in doc["findings"]:   # the findings table quotes findings.json's numbers
        assert f"{f['id']}. {f['title']}: {f['verdict'].upper()}" in text
        for e in f["evidence"]:
            for o in e.get("orders", []):
                if e["kind"] == "comparison":
                    assert F.fmt(o["diff"]) in text and F.fmt(o["mean_a"]) in text
    for line in (out / "SUMMARY.txt").read_text().splitlines():
        assert line.replace("'", "&#x27;") in text
    assert "Grey band: the independent control" in text
    for name in ("population", "control", "modules", "subclusters"):
        # the run pages themselves are checked in Chromium by the tests above
        assert f'href="../{name}/report/index.html"' in text
        assert (out / name / "report" / "index.html").is_file()
    assert 'href="ensembles/index.html"' in text
    assert_page_ok(out / "report" / "ensembles" / "index.html")
    # the components table: each component's valid count from RESULTS.h5
    from hpcneuro.store import ResultsStore

    with ResultsStore.read(out / "subclusters" / "results.h5") as f:
        comp, valid = f.column("component"), f.valid_models()
    for c in (0, 1):
        assert re.search(rf"<td>{c}</td><td>0.5</td><td>{int((comp == c).sum())}</td>"
                         rf"<td>\d+</td><td>{int((valid & (comp == c)).sum())}</td>", text)
