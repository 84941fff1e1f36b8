"""hpcneuro reproduce end to end at --scale tiny (the four ensembles simulated under
mpiexec, the analyses, genes on the patch-seq data, findings.json and FINDINGS.md), its
resume, and its one-line refusals."""
from __future__ import annotations

import json

import pytest

from conftest import PATCHSEQ, run_cli
from hpcneuro import findings as F


def _numbers_quoted(md: str, evidence: dict) -> list[str]:
    """The numbers of one evidence as FINDINGS.md must write them."""
    want = []
    if evidence["kind"] == "comparison":
        for o in evidence["orders"]:
            want += [F.fmt(o["mean_a"]), F.fmt(o["mean_b"]), F.fmt(o["diff"])]
            want += [f"[{F.fmt(o[k][0])}, {F.fmt(o[k][1])}]"
                     for k in ("mean_a_ci", "mean_b_ci", "diff_ci")]
    elif evidence["kind"] == "genes":
        for o in evidence["orders"]:
            want += [F.fmt(o["mean"]), f"[{F.fmt(o['mean_ci'][0])}, {F.fmt(o['mean_ci'][1])}]",
                     f"[{F.fmt(o['null_range'][0])}, {F.fmt(o['null_range'][1])}]"]
    elif evidence["kind"] == "subset":
        want += [f"k90 = {F.fmt(evidence['k90'])}", F.fmt(evidence["all_accuracy"])]
    return [w for w in want if w not in md]


@pytest.mark.requires_mpi
def test_reproduce_tiny_end_to_end_and_resume(tiny_reproduce):
    out, proc = tiny_reproduce
    doc = json.loads((out / "findings.json").read_text())
    md = (out / "FINDINGS.md").read_text()
    assert doc["kind"] == "hpcneuro findings" and doc["scale"] == "tiny"
    assert set(doc["ensembles"]) == {"population", "control", "modules", "subclusters"}
    for name, e in doc["ensembles"].items():
        assert (out / e["results"]).is_file() and (out / name / "oinfo.h5").is_file()
        assert e["n_finished"] == e["n_samples"] > 0 and 0 < e["n_valid"] <= e["n_finished"]
    assert doc["ensembles"]["control"]["n_samples"] == 160   # the tiny scale's override
    assert (out / "genes" / "genes.h5").is_file()
    assert (out / "population" / "targeted" / "step_300.mean_frequency.h5").is_file()
    assert [f["id"] for f in doc["findings"]] == [1, 2, 3]
    kinds = [[e["kind"] for e in f["evidence"]] for f in doc["findings"]]
    assert kinds == [["comparison"], ["comparison", "comparison"], ["genes", "subset"]]
    for f in doc["findings"]:
        # each verdict is what the rules give for the numbers in the file
        assert f["verdict"] == F.combine(e["verdict"] for e in f["evidence"])
        assert f["rule"] == F.RULES[f["id"]]
        assert f"## {f['id']}. {f['title']}: **{f['verdict'].upper()}**" in md
        for e in f["evidence"]:
            if e["kind"] in ("comparison", "genes"):
                assert e["orders"], e
                for o in e["orders"]:
                    sides = ([F.side(*o["mean_a_ci"]), F.side(*o["diff_ci"])]
                             if e["kind"] == "comparison" else
                             [F.side(*o["mean_ci"]), F.side(*o["mean_ci"], *o["null_range"])])
                    assert o["verdict"] == F.claim_verdict(sides, e["claimed"])
                    assert o["n_boot" if e["kind"] == "comparison" else "n_cells"] > 0
            assert not _numbers_quoted(md, e), _numbers_quoted(md, e)
            assert f"### {e['name']}: {e['verdict']}" in md
    _assert_summary(out, doc, proc.stdout, 4)
    assert (out / "report" / "index.html").is_file()

    # rerun on the same folder: every simulation is complete, nothing is simulated again,
    # and the findings are the same numbers
    again = run_cli("reproduce", "-o", out, "--scale", "tiny", "--np", "2", "--data",
                    PATCHSEQ, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count(", 0 pending,") == 4, again.stderr[-2000:]
    assert again.stderr.count("finished 0 samples") == 4
    doc2 = json.loads((out / "findings.json").read_text())
    assert doc2["findings"] == doc["findings"]


def _assert_summary(out, doc, stdout, n_lines):
    """SUMMARY.txt is findings.summary of findings.json, printed last; its words follow
    from the numbers (verdicts, and the parameter-only lean from each order's interval)."""
    lines = (out / "SUMMARY.txt").read_text().splitlines()
    assert lines == F.summary(doc) and len(lines) == n_lines
    assert stdout.rstrip().splitlines()[-n_lines:] == lines
    f1 = doc["findings"][0]["evidence"][0]["orders"]
    sides = [F.side(*o["mean_b_ci"]) for o in f1]
    assert F.lean(sides, [o["order"] for o in f1]) in lines[0]
    assert f"{F.fmt(f1[0]['mean_b'])} [{F.fmt(f1[0]['mean_b_ci'][0])}, " in lines[0]
    for line, f in zip(lines[1:], doc["findings"]):
        assert line.startswith(f"Finding {f['id']}, ") and f": {f['verdict'].upper()}: " in line
        for e in f["evidence"]:
            assert f"{e['name']}: {e['verdict']}" in line
            if e["verdict"] == F.UNDECIDED and e["kind"] == "comparison":
                assert "too few models to decide" in line


@pytest.mark.requires_mpi
def test_demo_scale_tells_the_short_story(tmp_path):
    """--scale demo (make demo), shrunk further: the population, control and modules only,
    no genes (no --data needed), findings 1 and 2, a three-line summary, the report."""
    out = tmp_path / "demo"
    shrink = ["population:sampling.n_chains=8", "population:sampling.n_steps=10",
              "population:sampling.burn_in=0", "control:sampling.n_samples=100",
              "modules:sampling.n_samples=100"]
    proc = run_cli("reproduce", "-o", out, "--scale", "demo", "--np", "2",
                   "--data", tmp_path / "nowhere",   # not read: the demo runs no genes
                   *[a for s in shrink for a in ("--set", s)], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "findings.json").read_text())
    assert doc["scale"] == "demo" and list(doc["ensembles"]) == ["population", "control",
                                                                   "modules"]
    assert doc["ensembles"]["modules"]["n_samples"] == 100
    assert not (out / "subclusters").exists() and not (out / "genes").exists()
    assert [f["id"] for f in doc["findings"]] == [1, 2]
    assert [e["name"] for e in doc["findings"][1]["evidence"]] == [
        "modules vs independent control"]
    for f in doc["findings"]:
        assert f["verdict"] == F.combine(e["verdict"] for e in f["evidence"])
    _assert_summary(out, doc, proc.stdout, 3)
    page = (out / "report" / "index.html").read_text()
    for name in doc["ensembles"]:
        assert f'href="../{name}/report/index.html"' in page
        assert (out / name / "report" / "index.html").is_file()
    assert "Subclusters" not in page and "<h2>Genes</h2>" not in page


def test_reproduce_refuses_bad_input_in_one_line(tmp_path):
    proc = run_cli("reproduce", "-o", tmp_path / "r", "--scale", "tiny", "--data",
                   tmp_path / "nowhere")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--data" in proc.stderr
    assert not (tmp_path / "r").exists()
    proc = run_cli("reproduce", "-o", tmp_path / "r", "--set", "modulez:seed=3")
    assert proc.returncode == 2 and "no ensemble 'modulez'" in proc.stderr
    proc = run_cli("reproduce", "-o", tmp_path / "r", "--set", "modules:parameters[99].low=0")
    assert proc.returncode == 2 and "ensemble modules: parameters[99]" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert not (tmp_path / "r").exists()


def test_overrides_order_scale_then_command_all_then_one():
    from hpcneuro.reproduce import plan

    per, settings = plan("tiny", ["simulation.dt=0.05", "population:sampling.n_steps=30",
                                  "seed=7"])
    pop = per["population"]
    assert pop[0] == "simulation.batch_size=40"            # the scale's, for all
    assert pop.index("sampling.n_steps=20") < pop.index("sampling.n_steps=30")  # --set last
    assert pop[-3:] == ["simulation.dt=0.05", "seed=7", "sampling.n_steps=30"]
    assert per["control"][-2:] == ["simulation.dt=0.05", "seed=7"]
    assert "sampling.n_steps=30" not in per["control"]
    assert settings["analysis"]["max_order"] == 3 and settings["findings"]["small_k"] == 5
