"""The report in a real browser (headless Chromium): a small `hpcneuro run` with --set
overrides, stored traces and a bootstrap; the page loads, every image renders, no
console errors; a page with a broken image or a script error is caught."""

from __future__ import annotations

import re

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
