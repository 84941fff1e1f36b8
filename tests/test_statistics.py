"""Statistics that mean what they say, checked on data with a known answer.

- the stored bootstrap distributions of each order's mean O equal an independent,
  plain-numpy reference (slogdet of each multiplet of each resample);
- intervals cover the true per-order mean O at (at least) the nominal rate over
  repeated draws, for a correlated ensemble whose true O follows from its correlation
  matrix, and for independent Gaussians (true O = 0);
- planted redundancy and synergy give intervals that exclude 0, with the fraction
  synergistic on the right side of 1/2;
- comparisons of two analyses from the files alone (stats.compare, hpcneuro compare);
- the fraction synergistic and its interval in the summary, the text and OINFO.h5;
- targeted analysis of a results file: parameters + one feature, NaN rows dropped only
  for the analysed columns, all-features as one OINFO.h5 per feature, provenance.
"""

from __future__ import annotations

import itertools
import json
import logging

import h5py
import numpy as np
import pytest

from hpcneuro import config as configuration
from hpcneuro.oinfo import compute_oinfo
from hpcneuro.oinfo.result import PROVENANCE_ATTRS, OInfoResult
from hpcneuro.oinfo.stats import compare
from conftest import ROOT, run_cli, small_config


# --- an independent reference: O from slogdets of a plain correlation matrix -----------

def ref_oinfo(R: np.ndarray, s: tuple[int, ...]) -> float:
    """O = (k - 2) H(X) + sum_j [H(X_j) - H(X_-j)], Gaussian entropies up to constants
    that cancel (H = 1/2 log det R + const * dim; the dims balance)."""
    def h(idx):
        return 0.5 * np.linalg.slogdet(R[np.ix_(idx, idx)])[1] if idx else 0.0
    s = list(s)
    k = len(s)
    return (k - 2) * h(s) + sum(h([v]) - h([u for u in s if u != v]) for v in s)


def ref_mean(R: np.ndarray, k: int) -> float:
    return float(np.mean([ref_oinfo(R, s) for s in itertools.combinations(range(len(R)), k)]))


def names(n):
    return [f"v{j}" for j in range(n)]


def test_bootstrap_distributions_equal_an_independent_reference():
    """The stored per-order bootstrap means are those of the resamples the seed defines
    (rows drawn with numpy's default_rng(seed).integers), recomputed from scratch."""
    rng = np.random.default_rng(3)
    t, n, B, seed = 200, 5, 12, 11
    x = rng.standard_normal((t, n)) @ np.linalg.cholesky(0.4 * np.eye(n) + 0.6).T
    res = compute_oinfo(x, names(n), max_order=4, estimator="gauss", bootstrap=B,
                        seed=seed, scheduler="none")
    draws = np.random.default_rng(seed)
    for b in range(B):
        rows = draws.integers(0, t, t)
        R = np.corrcoef(x[rows].T)
        for k in (3, 4):
            assert res.orders[k].stats.boot_means[b] == pytest.approx(ref_mean(R, k),
                                                                      abs=1e-10)
            frac = np.mean([ref_oinfo(R, s) < 0 for s in itertools.combinations(range(n), k)])
            assert res.orders[k].stats.boot_frac_syn[b] == frac
    for k in (3, 4):  # the point estimate too
        assert res.orders[k].mean == pytest.approx(ref_mean(np.corrcoef(x.T), k), abs=1e-10)


def _coverage(truth: dict[int, float], sample, draws: int, **kw) -> dict[int, float]:
    hits = {k: 0 for k in truth}
    for r in range(draws):
        x = sample(np.random.default_rng(1000 + r))
        res = compute_oinfo(x, names(x.shape[1]), max_order=max(truth), bootstrap=100,
                            seed=r, scheduler="none", **kw)
        for k in truth:
            lo, hi = res.orders[k].mean_ci
            hits[k] += lo <= truth[k] <= hi
    return {k: v / draws for k, v in hits.items()}


def test_intervals_cover_the_true_mean_at_the_nominal_rate():
    """A correlated ensemble (a coregulated triplet, one anticorrelated pair): the true
    mean O per order follows from the true correlation matrix alone. Over 80 draws the
    95% intervals cover it at 0.95 +- binomial slack (measured: 0.975 and 0.963 at T = 400)."""
    n = 6
    R = np.eye(n)
    R[:3, :3] = 0.6
    R[3, 4] = R[4, 3] = -0.5
    np.fill_diagonal(R, 1.0)
    L = np.linalg.cholesky(R)
    truth = {k: ref_mean(R, k) for k in (3, 4)}
    assert truth[3] > 0.005 and truth[4] > 0.02  # not a trivial zero
    cover = _coverage(truth, lambda g: g.standard_normal((400, n)) @ L.T, 80,
                      estimator="gauss", bias_correct=True)
    for k, rate in cover.items():
        assert 0.87 <= rate <= 1.0, (k, rate)


def test_intervals_under_independence_are_conservative():
    """Independent Gaussians: true O = 0 at every order. O is a degenerate statistic
    there (its first and second order terms in the correlations cancel), and the
    percentile bootstrap over-covers: 0 is inside the 95% interval at least at the
    nominal rate (measured 1.00 over these 40 draws); it never claims structure that is not
    there."""
    cover = _coverage({3: 0.0, 4: 0.0}, lambda g: g.standard_normal((400, 6)), 40)
    for k, rate in cover.items():
        assert rate >= 0.9, (k, rate)


def planted(kind: str, t: int = 800, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    if kind == "redundant":  # three noisy copies of one source
        z = g.standard_normal((t, 1))
        return z + 0.6 * g.standard_normal((t, 3))
    if kind == "synergistic":  # X3 = X1 + X2 + noise, X1 and X2 independent
        a = g.standard_normal((t, 2))
        return np.column_stack([a, a.sum(axis=1) + 0.3 * g.standard_normal(t)])
    return g.standard_normal((t, 3))


@pytest.mark.parametrize("kind,sign", [("redundant", 1), ("synergistic", -1)])
def test_planted_structure_gives_intervals_excluding_zero(kind, sign):
    res = compute_oinfo(planted(kind), names(3), bootstrap=200, scheduler="none")
    r = res.orders[3]
    lo, hi = r.mean_ci
    assert (lo > 0) if sign > 0 else (hi < 0), (kind, lo, hi)
    flo, fhi = r.frac_syn_ci
    assert (fhi < 0.5) if sign > 0 else (flo > 0.5)


def test_fraction_synergistic_in_summary_text_and_file(tmp_path):
    x = np.random.default_rng(5).standard_normal((300, 6))
    res = compute_oinfo(x, names(6), max_order=4, bootstrap=30, scheduler="none")
    path = tmp_path / "o.h5"
    res.write(path)
    back = OInfoResult.read(path)
    with h5py.File(path, "r") as f:
        summ = f["summary"][()]
        assert {"frac_synergistic", "frac_syn_ci_low", "frac_syn_ci_high",
                "mean_ci_low", "mean_ci_high"} <= set(summ.dtype.names)
        assert f["order_3/boot_mean"].shape == (30,)
        assert f["order_3/boot_frac_synergistic"].shape == (30,)
    for k in (3, 4):
        r, b = res.orders[k], back.orders[k]
        assert r.frac_synergistic == r.n_synergistic / r.n_multiplets
        assert b.frac_syn_ci == r.frac_syn_ci and b.mean_ci == r.mean_ci
        np.testing.assert_array_equal(b.stats.boot_means, r.stats.boot_means)
        lo, hi = r.frac_syn_ci
        assert 0 <= lo <= hi <= 1
    text = back.summary_text()
    assert "% syn" in text and "95% bootstrap intervals, 30 resamples" in text
    r3 = back.orders[3]
    assert f"{100 * r3.frac_synergistic:.1f} [{100 * r3.frac_syn_ci[0]:.1f}, " in text
    # without a bootstrap: the fraction, no interval columns
    plain = compute_oinfo(x, names(6), max_order=3, scheduler="none")
    plain.write(tmp_path / "p.h5")
    with h5py.File(tmp_path / "p.h5", "r") as f:
        assert "frac_syn_ci_low" not in f["summary"].dtype.names
        assert "boot_mean" not in f["order_3"]


def test_compare_two_analyses_from_the_files_alone(tmp_path):
    """Redundant ensemble minus an independent control: the difference of means excludes
    0; two draws of the same independent ensemble: it covers 0."""
    files = {}
    for kind, seed in (("redundant", 1), ("independent", 2), ("independent2", 3)):
        res = compute_oinfo(planted(kind.rstrip("2"), seed=seed), names(3), bootstrap=200,
                            seed=seed, scheduler="none")
        files[kind] = tmp_path / f"{kind}.h5"
        res.write(files[kind])
    a, b, c = (OInfoResult.read(files[k]) for k in ("redundant", "independent",
                                                      "independent2"))
    row, = compare(a, b)
    assert row["diff"] == pytest.approx(a.orders[3].mean - b.orders[3].mean)
    assert row["excludes_zero"] and row["diff_ci"][0] > 0 and row["n_boot"] == 200
    row, = compare(b, c)
    assert not row["excludes_zero"]
    assert row["diff_ci"][0] <= 0 <= row["diff_ci"][1]
    # the command line, with its JSON
    out = tmp_path / "diff.json"
    proc = run_cli("compare", files["redundant"], files["independent"], "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert "excludes 0" in proc.stdout and " * " in proc.stdout
    data = json.loads(out.read_text())
    assert data["orders"][0]["order"] == 3 and data["orders"][0]["excludes_zero"] is True


def test_compare_refuses_different_scales(tmp_path):
    from hpcneuro.errors import UserError

    x = planted("independent")
    a = compute_oinfo(x, names(3), scheduler="none")
    b = compute_oinfo(x, names(3), units="bits", scheduler="none")
    with pytest.raises(UserError, match="different units"):
        compare(a, b)
    row, = compare(a, a)  # no bootstrap: NaN interval, never "excludes 0"
    assert np.isnan(row["diff_ci"][0]) and not row["excludes_zero"]


# --- targeted analysis of a results file ---------------------------------------------------

@pytest.fixture
def planted_results(tmp_path):
    """A RESULTS.h5 of 600 'models' written through the store: 5 independent parameters;
    feature 0 = p0 + p1 + p2 (+ noise: a synergistic target); feature 1 undefined in 200
    models; the rest noise. All valid."""
    from hpcneuro.simulation import BlockResult
    from hpcneuro.store import DONE, ResultsStore

    raw = small_config()
    raw["sampling"]["n_samples"] = 600
    cfg = configuration.validate(raw, ROOT / "configs")
    path = tmp_path / "results.h5"
    g = np.random.default_rng(0)
    n, p, f = 600, len(cfg["parameters"]), len(cfg["features"])
    params = g.standard_normal((n, p))
    feats = g.standard_normal((n, f))
    feats[:, 0] = params[:, :3].sum(axis=1) + 0.3 * g.standard_normal(n)
    feats[:200, 1] = np.nan
    store = ResultsStore.create(str(path), cfg)
    store.write_block(np.arange(n), params, BlockResult(
        feats, np.full(n, DONE, "i1"), np.ones(n, bool), [""] * n), rank=0, started_at=0.0)
    store.close()
    return {"path": path, "params": configuration.parameter_names(cfg),
            "features": list(cfg["features"]), "data": (params, feats)}


def test_target_feature_analyses_parameters_plus_that_feature_only(planted_results, tmp_path,
                                                                   caplog):
    from hpcneuro.analyze import analyze

    pr = planted_results
    target = pr["features"][0]
    out = tmp_path / "t.h5"
    with caplog.at_level(logging.WARNING, logger="hpcneuro"):
        res = analyze(str(pr["path"]), str(out), target=target, max_order=4, bootstrap=50,
                      scheduler="none", command="hpcneuro analyze test")
    assert res.variables == pr["params"] + [target]  # not every feature
    assert res.attrs["n_samples"] == 600 and "dropping" not in caplog.text
    # the planted sum is synergistic with its terms: the triplet {p_i, p_j, F} has O < 0
    r3 = res.orders[3]
    assert r3.mean_ci[1] < 0
    back = OInfoResult.read(out)
    assert back.attrs["target"] == target
    prov = back.provenance
    assert set(PROVENANCE_ATTRS) <= set(prov)
    assert prov["source"] == str(pr["path"]) and prov["selection"] == "valid"
    assert prov["columns"] == pr["params"] + [target]
    assert prov["command"] == "hpcneuro analyze test" and prov["rows_dropped"] == 0
    assert prov["source_sha256"] == configuration.file_sha256(pr["path"])
    import hpcneuro
    assert prov["hpcneuro_version"] == hpcneuro.__version__

    # a feature with NaNs: only its own undefined rows are dropped, counted and stored
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hpcneuro"):
        res = analyze(str(pr["path"]), str(tmp_path / "t1.h5"), target=pr["features"][1],
                      max_order=3, scheduler="none")
    assert res.attrs["n_samples"] == 400
    assert f"dropping 200 of 600 models" in caplog.text and f"{pr['features'][1]}: 200" \
        in caplog.text
    prov = OInfoResult.read(tmp_path / "t1.h5").provenance
    assert prov["rows_dropped"] == 200 and prov["rows_dropped_by_column"] == {
        pr["features"][1]: 200}
    # the old way: every feature pulled in, and the 200 lost for any target
    res = analyze(str(pr["path"]), str(tmp_path / "both.h5"), variables="both",
                  columns=pr["params"] + pr["features"], target=target, max_order=3,
                  scheduler="none")
    assert res.attrs["n_samples"] == 400


def test_features_and_columns_choose(planted_results, tmp_path):
    from hpcneuro.analyze import analysis_columns
    from hpcneuro.errors import UserError

    P, F = planted_results["params"], planted_results["features"]
    assert analysis_columns(P, F) is None
    assert analysis_columns(P, F, target=P[0]) is None  # a parameter target: variables
    assert analysis_columns(P, F, target=F[2]) == P + [F[2]]
    assert analysis_columns(P, F, "features", target=F[2]) is None
    assert analysis_columns(P, F, chosen_features=[F[1], F[3]]) == P + [F[1], F[3]]
    assert analysis_columns(P, F, target=F[0], chosen_features=[F[1]]) == P + [F[0], F[1]]
    assert analysis_columns(P, F, columns=[F[0], P[1]]) == [F[0], P[1]]
    with pytest.raises(UserError, match="not among --columns"):
        analysis_columns(P, F, target=F[0], columns=[P[0], P[1], P[2]])
    with pytest.raises(UserError, match="not a feature"):
        analysis_columns(P, F, chosen_features=["nope"])
    proc = run_cli("analyze", planted_results["path"], "-o", tmp_path / "c.h5", "--columns",
                   f"{P[0]},{P[1]},nope", "--scheduler", "none")
    assert proc.returncode == 2 and "no column 'nope'" in proc.stderr


def test_all_features_writes_one_oinfo_file_per_feature(planted_results, tmp_path):
    from hpcneuro.analyze import feature_file

    pr = planted_results
    folder = tmp_path / "targeted"
    proc = run_cli("analyze", pr["path"], "-o", folder, "--target", "all-features",
                   "--max-order", "3", "--scheduler", "none", "--bootstrap", "10")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {len(pr['features'])} OINFO.h5 files" in proc.stdout
    for feat in pr["features"]:
        res = OInfoResult.read(feature_file(folder, feat))
        assert res.attrs["target"] == feat and res.variables == pr["params"] + [feat]
        assert res.provenance["command"].startswith("hpcneuro analyze ")
        assert res.orders[3].stats.boot_means.shape == (10,)
    assert OInfoResult.read(feature_file(folder, pr["features"][1])).attrs["n_samples"] == 400
    # a file at -o is refused before any work
    (tmp_path / "file.h5").write_text("x")
    proc = run_cli("analyze", pr["path"], "-o", tmp_path / "file.h5", "--target",
                   "all-features", "--scheduler", "none")
    assert proc.returncode == 2 and "folder" in proc.stderr


def test_oinfo_command_records_provenance(tmp_path):
    x = planted("redundant")
    table = tmp_path / "t.csv"
    np.savetxt(table, x, delimiter=",", header="a,b,c", comments="")
    proc = run_cli("oinfo", table, "-o", tmp_path / "o.h5", "--scheduler", "none")
    assert proc.returncode == 0, proc.stderr
    prov = OInfoResult.read(tmp_path / "o.h5").provenance
    assert prov["source"] == str(table) and prov["selection"] == "table"
    assert prov["columns"] == ["a", "b", "c"] and prov["rows_used"] == 800
    assert prov["source_sha256"] == configuration.file_sha256(table)
    assert prov["command"].startswith("hpcneuro oinfo ")


def test_report_of_an_all_features_run_folder(planted_results, tmp_path):
    """hpcneuro run with analysis target all-features writes a folder at oinfo.h5: the
    report shows one O-information section per feature."""
    import shutil

    from hpcneuro import report
    from hpcneuro.analyze import analyze

    rundir = tmp_path / "run"
    rundir.mkdir()
    shutil.copy(planted_results["path"], rundir / "results.h5")
    analyze(str(rundir / "results.h5"), str(rundir / "oinfo.h5"), target="all-features",
            max_order=3, scheduler="none")
    text = report.build(rundir).read_text()
    n = len(planted_results["features"])
    assert text.count("<h2>O-information</h2>") == n
    for i in range(n):
        assert (rundir / "report" / f"target{i}_oinfo.png").exists()
