"""hpcneuro genes: inputs, the curated list, normalisation, O-information with intervals
and a null, the gene subset, GENES.h5, figures, the gene-to-conductance correlation.

Synthetic data with known answers, and the real M1 patch-seq tables read in place from
../shared/data (never copied into the repository).
"""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, SHARED_DATA
from hpcneuro.cli import main
from hpcneuro.errors import UserError

PATCHSEQ = SHARED_DATA / "patchseq_m1_phys_temp"
COUNTS = PATCHSEQ / "m1_patchseq_phys_temp_exon_counts.csv.gz"
META = PATCHSEQ / "m1_patchseq_phys_temp_meta_data.csv"
needs_data = pytest.mark.skipif(not COUNTS.exists(), reason="patch-seq data not present")

CHANNELS = ["Scn1a", "Scn8a", "Kcnc1", "Kcnc2", "Hcn1", "Cacna1g", "Kcnq2", "Kcnn2",
            "Kcnd2", "Kcnb1", "Cacna1c", "Kcnma1"]


# --------------------------------------------------------------------- synthetic data

def synthetic_counts(n_cells=300, seed=0, coregulated=("Scn1a", "Kcnc1", "Hcn1"),
                     groups=("A", "B"), marker=None):
    """Cells x genes Poisson counts: `coregulated` genes share one latent factor; the
    others are independent; `marker` genes are higher in group B. Returns (df, labels)."""
    rng = np.random.default_rng(seed)
    genes = CHANNELS + [f"Other{i}" for i in range(30)]
    labels = np.array([groups[i % len(groups)] for i in range(n_cells)], dtype=object)
    shared = rng.normal(size=n_cells)
    rate = np.empty((n_cells, len(genes)))
    for j, g in enumerate(genes):
        z = shared * 1.2 + 0.4 * rng.normal(size=n_cells) if g in coregulated \
            else rng.normal(size=n_cells)
        if marker and g in marker:
            z = z + 2.5 * (labels == groups[1])
        rate[:, j] = np.exp(2.0 + 0.8 * z)
    counts = rng.poisson(rate * rng.uniform(0.5, 2.0, size=(n_cells, 1)))
    cells = [f"cell_{i}" for i in range(n_cells)]
    return pd.DataFrame(counts, index=cells, columns=genes), labels


def write_pair(tmp_path, df, labels, genes_as_rows=True, meta_sep="\t", extra_meta=0):
    """A count CSV (genes as rows by default) and a metadata '.csv' with `meta_sep`."""
    counts = tmp_path / "counts.csv.gz"
    (df.T if genes_as_rows else df).to_csv(counts, compression="gzip")
    meta = pd.DataFrame({"Number": range(len(df)), "Cell": df.index, "family": labels})
    if extra_meta:
        meta = pd.concat([meta, pd.DataFrame({"Number": [-1] * extra_meta,
                                              "Cell": [f"ghost{i}" for i in range(extra_meta)],
                                              "family": ["A"] * extra_meta})])
    path = tmp_path / "meta.csv"
    meta.to_csv(path, sep=meta_sep, index=False)
    return counts, path


# --------------------------------------------------------------------- curated list

def test_curated_list_maps_genes_to_shipped_mechanisms_and_leaves_out_non_channels():
    from hpcneuro.genes.channels import channel_index, load_channel_table

    rows = load_channel_table()
    idx = channel_index(rows)
    expect = {"Scn1a": "NaT", "Scn2a": "NaT", "Scn8a": "NaT", "Kcnc1": "Kv3_1",
              "Kcnc4": "Kv3_1", "Hcn1": "Ih", "Hcn4": "Ih", "Cacna1g": "Ca_LVA",
              "Cacna1h": "Ca_LVA", "Cacna1i": "Ca_LVA", "Cacna1c": "Ca_HVA", "Kcnq2": "Im",
              "Kcnq5": "Im", "Kcnn1": "SK", "Kcnn3": "SK", "Kcnd2": "K_T", "Kcnb1": "K_P"}
    for gene, mech in expect.items():
        assert idx[gene.upper()].mechanism == mech, gene
    # every named mechanism is a shipped .mod file
    mods = {p.stem for p in (ROOT / "hpcneuro" / "mechanisms").glob("*.mod")}
    assert {r.mechanism for r in rows if r.mechanism} <= mods
    # the prefix-match impostors of the issue are not on the list
    for gene in ("Kcnip1", "Kcnip4", "Scnn1a", "Scnm1", "Kcnrg", "Kcnq1ot1", "Kcnab3os"):
        assert gene.upper() not in idx
    # both species, pore vs auxiliary
    assert idx["SCN1A"].mouse == "Scn1a" and idx["KCNE5"].mouse == "Kcne1l"
    assert idx["SCN1B"].role == "auxiliary" and idx["SCN1A"].role == "pore"
    text = (ROOT / "hpcneuro" / "genes" / "ion_channels.tsv").read_text()
    assert "HGNC" in text.split("\n\n")[0] and "Guide to Pharmacology" in text


def test_genes_option_resolution():
    from hpcneuro.genes.channels import resolve_genes

    avail = ["Scn1a", "Scn1b", "Kcnip1", "Hcn1", "Actb", "Kcnc1"]
    assert resolve_genes("ion-channels", avail)[0] == ["Scn1a", "Hcn1", "Kcnc1"]
    assert resolve_genes("ion-channels", avail, include_auxiliary=True)[0] == \
        ["Scn1a", "Scn1b", "Hcn1", "Kcnc1"]
    assert resolve_genes("SCN1A, hcn1", avail)[0] == ["Scn1a", "Hcn1"]  # case-insensitive
    assert resolve_genes("ion-channels", ["SCN1A", "HCN1", "GAPDH"])[0] == ["SCN1A", "HCN1"]
    with pytest.raises(UserError, match=r"unknown gene 'Scn1x'.*did you mean .*Scn1a"):
        resolve_genes("Scn1x,Hcn1", avail)


def test_genes_from_a_file(tmp_path):
    from hpcneuro.genes.channels import resolve_genes

    f = tmp_path / "genes.txt"
    f.write_text("# my genes\ngene\nHcn1\nKcnc1\tcomment\n")
    assert resolve_genes(str(f), ["Hcn1", "Kcnc1", "Actb"])[0] == ["Hcn1", "Kcnc1"]


# --------------------------------------------------------------------- normalisation

def test_cpm_log1p_equals_scanpy_normalize_total_and_log1p():
    import anndata
    import scanpy as sc

    from hpcneuro.genes.normalize import cpm_log1p

    rng = np.random.default_rng(3)
    X = rng.poisson(rng.gamma(0.3, 20, size=(40, 60))).astype(float)
    X[:, 0] += 1  # no empty cell
    ad = anndata.AnnData(X.copy())
    sc.pp.normalize_total(ad, target_sum=1e6)
    sc.pp.log1p(ad)
    np.testing.assert_allclose(cpm_log1p(X), ad.X, rtol=1e-12, atol=1e-12)


def test_counts_must_be_non_negative_integers():
    from hpcneuro.genes.normalize import normalize

    with pytest.raises(UserError, match="negative count"):
        normalize(np.array([[1.0, -2.0], [3.0, 4.0]]), "cpm-log1p")
    with pytest.raises(UserError, match="non-integer count 0.5"):
        normalize(np.array([[1.0, 0.5], [3.0, 4.0]]), "cpm-log1p")
    # already-normalised data passes with 'none'
    assert normalize(np.array([[1.0, 0.5], [3.0, 4.0]]), "none")[0, 1] == 0.5


def test_gene_filter_detection_then_top_variable():
    from hpcneuro.genes.normalize import gene_filter

    raw = np.zeros((10, 4))
    raw[:, 0] = np.arange(10)          # detected 90%, variance high
    raw[:1, 1] = 5                     # detected 10%
    raw[:, 2] = np.arange(10) % 2 + 1  # detected 100%, variance low
    raw[:, 3] = 3 * np.arange(10)      # highest variance
    keep, info = gene_filter(raw, raw, ["a", "b", "c", "d"], 0.5, None)
    assert keep == [0, 2, 3]
    keep, _ = gene_filter(raw, raw, ["a", "b", "c", "d"], 0.5, 2)
    assert keep == [0, 3]


# --------------------------------------------------------------------- inputs

def test_metadata_delimiter_is_sniffed_and_orientation_detected_and_logged(tmp_path, caplog):
    from hpcneuro.genes.inputs import read_expression

    df, labels = synthetic_counts(40)
    for sep in ("\t", ";", ","):
        counts, meta = write_pair(tmp_path, df, labels, meta_sep=sep)
        with caplog.at_level("INFO", logger="hpcneuro"):
            data = read_expression(str(counts), str(meta))
        assert data.X.shape == (40, df.shape[1]) and data.genes == list(df.columns)
        assert list(data.obs["family"]) == list(labels)
        np.testing.assert_array_equal(data.X, df.to_numpy())
    assert "genes as rows" in caplog.text and "column 'Cell'" in caplog.text
    # genes as columns, detected the same way
    counts, meta = write_pair(tmp_path, df, labels, genes_as_rows=False)
    data = read_expression(str(counts), str(meta))
    assert data.notes[0].startswith("count table: genes as columns")
    np.testing.assert_array_equal(data.X, df.to_numpy())


def test_orientation_without_metadata_from_channel_symbols_or_an_error(tmp_path):
    from hpcneuro.genes.inputs import read_expression

    df, _ = synthetic_counts(20)
    counts = tmp_path / "c.csv"
    df.T.to_csv(counts)
    assert read_expression(str(counts)).X.shape == (20, df.shape[1])
    anon = df.copy()
    anon.columns = [f"g{j}" for j in range(df.shape[1])]
    anon.T.to_csv(counts)
    with pytest.raises(UserError, match="--genes-as"):
        read_expression(str(counts))
    assert read_expression(str(counts), orientation="genes-rows").X.shape == (20, df.shape[1])


def test_join_reports_ids_on_one_side_only(tmp_path):
    from hpcneuro.genes.inputs import read_expression

    df, labels = synthetic_counts(30)
    counts, meta = write_pair(tmp_path, df.iloc[:25], labels[:25], extra_meta=3)
    data = read_expression(str(counts), str(meta))
    assert data.X.shape[0] == 25
    assert data.join["n_meta_only"] == 3 and data.join["meta_only"][0] == "ghost0"
    assert any("3 cell ids in the metadata only" in n for n in data.notes)


def test_h5ad_round_trip_with_a_layer(tmp_path):
    import anndata

    from hpcneuro.genes.inputs import read_expression

    df, labels = synthetic_counts(30)
    ad = anndata.AnnData(X=np.log1p(df.to_numpy().astype(float)),
                         obs=pd.DataFrame({"family": labels}, index=df.index),
                         var=pd.DataFrame(index=df.columns))
    ad.layers["counts"] = df.to_numpy().astype(np.float32)
    path = tmp_path / "x.h5ad"
    ad.write_h5ad(path)
    data = read_expression(str(path), layer="counts")
    np.testing.assert_array_equal(data.X, df.to_numpy())
    assert data.genes == list(df.columns) and list(data.obs["family"]) == list(labels)
    np.testing.assert_allclose(read_expression(str(path)).X, np.log1p(df.to_numpy()))
    with pytest.raises(UserError, match="no layer 'raw'.*layers: counts"):
        read_expression(str(path), layer="raw")


# --------------------------------------------------------------------- O-information

def _group(x, genes, **kw):
    from hpcneuro.genes.analysis import group_oinfo

    kw.setdefault("oinfo_kwargs", dict(max_order=4))
    return group_oinfo(x, genes, "g", **kw)


def test_coregulated_genes_are_redundant_with_an_interval_above_the_null():
    from hpcneuro.genes.normalize import cpm_log1p

    df, _ = synthetic_counts(300, coregulated=("Scn1a", "Kcnc1", "Hcn1", "Cacna1g", "Kcnq2"))
    x = cpm_log1p(df.to_numpy().astype(float))[:, :8]
    r = _group(x, list(df.columns[:8]), bootstrap=30, shuffles=30)
    for k, s in r.stats.items():
        assert s.ci_low > s.null_high > s.null_low, (k, s)  # redundancy, with an interval
        assert s.ci_low <= s.mean <= s.ci_high
        assert abs(s.null_mean) < 0.2 * s.mean
    # the planted triplet is the most redundant multiplet of order 3
    o3 = r.oinfo.orders[3]
    top = {r.genes[j] for j in o3.multiplets[np.argmax(o3.oinfo)]}
    assert top <= {"Scn1a", "Kcnc1", "Hcn1", "Cacna1g", "Kcnq2"}
    # the interval is in the group's OINFO summary too
    assert o3.mean_ci == (r.stats[3].ci_low, r.stats[3].ci_high)


def test_independent_genes_give_o_near_zero_inside_the_null():
    from hpcneuro.genes.normalize import cpm_log1p

    df, _ = synthetic_counts(300, coregulated=())
    # CPM removes the cells' shared library-size factor (log1p of raw counts would
    # correlate every gene through it and show up as redundancy)
    x = cpm_log1p(df.to_numpy().astype(float))[:, :8]
    r = _group(x, list(df.columns[:8]), bootstrap=30, shuffles=30)
    for k, s in r.stats.items():
        assert s.ci_low < 0 < s.ci_high or abs(s.mean) < 1e-3
        assert s.null_low - 1e-3 < s.mean < s.null_high + 1e-3


def test_ties_average_ranks_keep_coexpression_random_ties_attenuate_it():
    """Zero-inflated coregulated genes: one latent on/off state plus a level. Average
    ranks give all zeros one score, so the shared on/off pattern counts; random tie
    breaking turns the zeros into noise and shrinks O towards 0. For independent
    zero-inflated genes the shuffled null stays ~0 with average ranks."""
    from hpcneuro.genes.analysis import copula_scores

    rng = np.random.default_rng(1)
    n = 400
    on = rng.random(n) < 0.35
    level = rng.normal(size=n)
    x = np.column_stack([np.where(on & (rng.random(n) < 0.9),
                                  np.exp(level + 0.5 * rng.normal(size=n)), 0) for _ in range(4)])
    assert (x == 0).mean() > 0.6
    names = ["a", "b", "c", "d"]
    avg = _group(x, names, ties="average", oinfo_kwargs=dict(max_order=4))
    rnd = _group(x, names, ties="random", oinfo_kwargs=dict(max_order=4))
    assert avg.stats[3].mean > 2 * rnd.stats[3].mean > 0
    assert avg.oinfo.attrs["ties"] == "average"
    # all zeros of a column share one normal score
    z = copula_scores(x, "average")
    assert len(np.unique(z[x[:, 0] == 0, 0])) == 1
    # independent zero-inflated genes: null and estimate ~0
    xi = np.column_stack([np.where(rng.random(n) < 0.3, rng.exponential(size=n), 0)
                          for _ in range(4)])
    ind = _group(xi, names, shuffles=30, oinfo_kwargs=dict(max_order=4))
    assert abs(ind.stats[3].null_mean) < 2e-3 and abs(ind.stats[3].mean) < 0.01


def test_bootstrap_redraws_resamples_where_a_gene_is_constant():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    x[:, 3] = 0
    x[:6, 3] = 1 + rng.random(6)  # detected in 6 of 30 cells: some resamples miss them all
    r = _group(x, list("abcd"), bootstrap=200, min_detected=5,
               oinfo_kwargs=dict(max_order=3))
    assert np.isfinite(r.stats[3].ci_low) and np.isfinite(r.stats[3].ci_high)
    assert r.oinfo.attrs["bootstrap_redrawn"] == r.n_redrawn
    r2 = _group(x, list("abcd"), min_detected=7, oinfo_kwargs=dict(max_order=3))
    assert r2.left_out == ["d"] and r2.genes == ["a", "b", "c"]


def test_groups_below_minimum_size_are_skipped_explicit_ones_refused():
    from hpcneuro.genes.analysis import plan_groups

    labels = ["A"] * 50 + ["B"] * 25 + ["C"] * 8
    groups, notes = plan_groups(labels, n_genes=10, min_group_size=20)
    assert groups == ["A", "B"] and "group 'C' skipped: 8 cells" in notes[0]
    groups, notes = plan_groups(labels, n_genes=30, min_group_size=20)
    assert groups == ["A"] and "fewer cells than genes" in notes[0]
    with pytest.raises(UserError, match="'B' has 25 cells for 30 genes"):
        plan_groups(labels, n_genes=30, min_group_size=20, requested=["B"])
    with pytest.raises(UserError, match="no group 'D'"):
        plan_groups(labels, n_genes=3, min_group_size=2, requested=["D"])


# --------------------------------------------------------------------- subset

def test_forward_selection_finds_the_marker_genes_first():
    from hpcneuro.genes.subset import balanced_accuracy, select_subset

    df, labels = synthetic_counts(200, coregulated=(), marker=("Kcnc1", "Hcn1"))
    x = np.log1p(df.to_numpy()[:, :12].astype(float))
    s = select_subset(x, labels, list(df.columns[:12]), max_k=3, n_random=10, cv=5)
    assert set(s.selected[:2]) == {"Kcnc1", "Hcn1"}
    assert s.forward_mean[1] > 0.9 and s.k90 <= 2
    assert s.forward_mean[1] > np.median(s.random[1])
    assert s.chance == 0.5 and s.random.shape == (3, 10)
    assert np.all(np.diff(s.r2) > 0) and 0 < s.r2[0] < 1
    assert "Kcnc1" in s.table() and "smallest k" in s.table()
    from sklearn.metrics import balanced_accuracy_score

    y, p = np.array([0, 0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 0, 2])
    assert balanced_accuracy(y, p) == pytest.approx(balanced_accuracy_score(y, p))


def test_variance_explained_is_one_for_all_genes_and_zero_for_none_useful():
    from hpcneuro.genes.subset import variance_explained

    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 5))
    assert variance_explained(x, [0, 1, 2, 3, 4]) == pytest.approx(1.0)
    # one of 5 independent standardised columns: about 1/5 of the variance
    assert variance_explained(x, [0]) == pytest.approx(0.2, abs=0.03)


# --------------------------------------------------------------------- correlation

def test_mechanism_correlation_from_coregulated_genes():
    from hpcneuro.genes.correlation import aggregate, mechanism_correlation

    df, _ = synthetic_counts(300, coregulated=("Scn1a", "Scn8a", "Kcnc1", "Kcnc2"))
    x = np.log1p(df.to_numpy().astype(float))
    genes = list(df.columns)
    agg, used = aggregate(x, genes, ["NaT", "Kv3_1", "Ih"])
    assert used["NaT"] == ["Scn1a", "Scn8a"] and used["Kv3_1"] == ["Kcnc1", "Kcnc2"]
    np.testing.assert_allclose(agg[:, 0], np.log1p(df["Scn1a"] + df["Scn8a"]))
    c = mechanism_correlation(x, genes, ["NaT", "Kv3_1", "Ih", "NaP"])
    assert c.spearman[0, 1] > 0.6 and abs(c.spearman[0, 2]) < 0.2
    assert c.spearman[3, 0] == 0 and "NaP" in c.notes[0]  # no gene maps to NaP
    # the sampler turns rho_s back into the copula matrix: exactly the PD one
    np.testing.assert_allclose(2 * np.sin(np.pi * c.spearman / 6), c.copula, atol=1e-12)
    assert np.linalg.eigvalsh(c.copula)[0] > 0


def test_nearest_correlation_repairs_an_indefinite_matrix():
    from hpcneuro.genes.correlation import nearest_correlation

    a = np.array([[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1.0]])
    assert np.linalg.eigvalsh(a)[0] < 0
    b = nearest_correlation(a)
    assert np.linalg.eigvalsh(b)[0] > 0
    np.testing.assert_allclose(np.diag(b), 1.0)
    np.testing.assert_allclose(b, b.T)
    # a valid correlation matrix is left as it is
    good = np.array([[1, 0.3], [0.3, 1.0]])
    np.testing.assert_allclose(nearest_correlation(good), good, atol=1e-9)


# --------------------------------------------------------------------- command, GENES.h5

def assert_one_line_error(err: str, msg: str) -> None:
    """The error is one line (after any progress log lines), naming the problem."""
    errors = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(errors) == 1 and msg in errors[0], err
    assert "Traceback" not in err


def _run(tmp_path, counts, meta, *extra, out="genes.h5"):
    args = ["genes", str(counts), "-o", str(tmp_path / out), "--metadata", str(meta),
            "--group-by", "family", "--bootstrap", "10", "--shuffles", "10",
            "--subset-max-k", "2", "--subset-random", "4", "--max-order", "4",
            "--top-variable", "8", "--min-group-size", "20", *extra]
    return main(args)


def test_genes_command_writes_a_complete_genes_file(tmp_path, capsys):
    from hpcneuro.genes.figures import build_genes_report
    from hpcneuro.genes.result import GenesResult, extract_oinfo
    from hpcneuro.oinfo.result import OInfoResult

    df, labels = synthetic_counts(120, groups=("A", "B", "C"), marker=("Kcnc1",))
    labels[:6] = "tiny"
    counts, meta = write_pair(tmp_path, df, labels)
    assert _run(tmp_path, counts, meta, "--exclude-label", "C") == 0
    out = capsys.readouterr().out
    assert "group 'tiny' skipped: 6 cells" in out and "excluded 38 cells labelled 'C'" in out
    assert "smallest k reaching 90%" in out
    res = GenesResult.read(tmp_path / "genes.h5")
    assert list(res.oinfo) == ["all cells", "A", "B"]
    assert len(res.cell_ids) == 82 and "C" not in res.cell_groups
    assert len(res.genes) == 8 and set(res.genes) <= set(CHANNELS)
    assert res.expression.shape == (82, len(res.channels["symbol"]))
    st = res.stats
    assert list(st["order"][:2]) == [3, 4] and np.all(st["ci_low"] <= st["ci_high"])
    assert res.subset["selected"][0] == "Kcnc1"
    # each group is an OINFO.h5 layout: the result class reads it, extract writes one
    a = res.oinfo["A"]
    assert a.attrs["group"] == "A" and a.orders[3].mean_ci is not None
    extract_oinfo(tmp_path / "genes.h5", "A", tmp_path / "a.h5")
    back = OInfoResult.read(tmp_path / "a.h5")
    np.testing.assert_array_equal(back.orders[4].oinfo, a.orders[4].oinfo)
    assert back.variables == a.variables
    # figures and page, nothing partial left behind
    page = build_genes_report(tmp_path / "genes.h5", tmp_path / "rep")
    names = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert names == ["genes.html", "genes_heatmap.png", "genes_oinfo.png", "genes_pca.png",
                     "genes_subset.png", "index.html"]
    assert "Gene subset" in page.read_text()
    # running again replaces its own GENES.h5 without --overwrite
    assert _run(tmp_path, counts, meta, "--no-subset") == 0


BAD_INPUT = {
    "negative": ("negative count", lambda df: df.assign(Scn1a=-df["Scn1a"])),
    "non-integer": ("non-integer count", lambda df: df.assign(Hcn1=df["Hcn1"] + 0.5)),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_counts_are_one_line_errors_and_nothing_is_written(tmp_path, capsys, case):
    msg, change = BAD_INPUT[case]
    df, labels = synthetic_counts(60)
    counts, meta = write_pair(tmp_path, change(df), labels)
    assert _run(tmp_path, counts, meta) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, msg)
    assert list(tmp_path.iterdir()) == [counts, meta] or not (tmp_path / "genes.h5").exists()
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


@pytest.mark.parametrize("extra,msg", [
    (["--group-by", "nope"], "--group-by 'nope' is not a metadata column; columns: Number, Cell, family"),
    (["--genes", "Scn1a,Kcnc9,Hcn1"], "unknown gene 'Kcnc9' in the count table (did you mean"),
    (["--groups", "A", "--top-variable", "0", "--min-detection", "0"],
     "group 'A' has 30 cells for 42 genes"),
    (["--exclude-label", "Z"], "no cell has this label"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, extra, msg):
    df, labels = synthetic_counts(60)
    counts, meta = write_pair(tmp_path, df, labels)
    args = ["genes", str(counts), "-o", str(tmp_path / "g.h5"), "--metadata", str(meta),
            "--group-by", "family", "--genes", "ion-channels", "--no-subset"]
    if "--genes" in extra:
        args = [a for a in args[:-3]] + ["--no-subset"]
    if extra[:1] == ["--groups"]:
        args[args.index("ion-channels")] = ",".join(df.columns)  # every gene, > cells of A
    assert main(args + extra) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, msg)
    assert not (tmp_path / "g.h5").exists()


def test_no_common_cell_ids_and_missing_layer_are_errors(tmp_path, capsys):
    import anndata

    df, labels = synthetic_counts(40)
    counts, meta = write_pair(tmp_path, df, labels)
    other = tmp_path / "other.tsv"
    pd.DataFrame({"Cell": [f"x{i}" for i in range(40)], "family": labels}).to_csv(
        other, sep="\t", index=False)
    assert main(["genes", str(counts), "-o", str(tmp_path / "g.h5"), "--metadata", str(other),
                 "--cell-id", "Cell", "--genes-as", "rows"]) == 2
    assert "no cell id is in both" in capsys.readouterr().err
    path = tmp_path / "x.h5ad"
    anndata.AnnData(X=df.to_numpy().astype(float), obs=pd.DataFrame(index=df.index),
                    var=pd.DataFrame(index=df.columns)).write_h5ad(path)
    assert main(["genes", str(path), "-o", str(tmp_path / "g.h5"), "--layer", "counts"]) == 2
    assert "has no layer 'counts'" in capsys.readouterr().err
    assert not (tmp_path / "g.h5").exists()


def test_startup_does_not_import_the_heavy_libraries():
    code = ("import sys, hpcneuro.cli, hpcneuro.genes, hpcneuro.genes.result, "
            "hpcneuro.genes.pipeline; hpcneuro.cli.build_parser(); "
            "print([m for m in ('sklearn', 'scanpy', 'anndata') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------- real data

@needs_data
def test_patchseq_channel_genes_detected():
    """The curated list on the real table: 88 channel genes (pore + auxiliary) detected
    in >= 10% of the good cells, 67 pore-forming; none of the prefix impostors."""
    from hpcneuro.genes.pipeline import GenesOptions, prepare

    base = dict(counts=str(COUNTS), output="unused.h5", metadata=str(META),
                group_by="RNA family", exclude_labels=["low quality"])
    p = prepare(GenesOptions(**base, include_auxiliary=True))
    assert len(p["cells"]) == 177 and len(p["chan_genes"]) == 88
    assert not any(g.startswith(("Kcnip", "Scnn", "Scnm")) for g in p["chan_genes"])
    p = prepare(GenesOptions(**base))
    assert len(p["chan_genes"]) == 67 and "Scn1b" not in p["chan_genes"]
    assert set(p["labels"]) == {"Sst", "IT", "ET", "Pvalb", "NP"}


@needs_data
def test_patchseq_pooled_cells_redundant_sst_indistinguishable_from_zero(tmp_path, capsys):
    """The issue's findings, with intervals: over the most variable channel genes the
    pooled cells are redundancy-dominated above the shuffled null; within Sst the mean
    O's interval contains 0; a few genes separate the RNA families far above chance."""
    from hpcneuro.genes.result import GenesResult

    out = tmp_path / "genes.h5"
    code = main(["genes", str(COUNTS), "-o", str(out), "--metadata", str(META),
                 "--group-by", "RNA family", "--exclude-label", "low quality",
                 "--top-variable", "12", "--max-order", "4", "--bootstrap", "40",
                 "--shuffles", "20", "--subset-max-k", "3", "--subset-random", "5"])
    assert code == 0
    text = capsys.readouterr().out
    assert "genes as rows" in text and "excluded 8 cells labelled 'low quality'" in text
    assert "group 'ET' skipped" in text and "group 'NP' skipped" in text
    res = GenesResult.read(out)
    st = res.stats
    pooled = st["group"] == "all cells"
    assert np.all(st["ci_low"][pooled] > st["null_high"][pooled])
    assert np.all(st["frac_redundant"][pooled] > st["null_frac_redundant"][pooled] + 0.05)
    sst = st["group"] == "Sst"
    assert np.all(st["ci_low"][sst] < 0) and np.all(st["ci_high"][sst] > 0)
    s = res.subset
    assert s["forward_mean"][-1] > 2.5 * s["chance"]
    assert s["all_mean"] > 0.75


def test_target_gene_is_kept_even_when_not_among_the_most_variable(tmp_path, capsys):
    from hpcneuro.genes.result import GenesResult

    df, labels = synthetic_counts(80)
    df["Kcnma1"] = 3 + (np.arange(80) % 3)  # detected everywhere, least variable
    counts, meta = write_pair(tmp_path, df, labels)
    assert _run(tmp_path, counts, meta, "--target", "Kcnma1", "--no-subset",
                "--top-variable", "5") == 0
    res = GenesResult.read(tmp_path / "genes.h5")
    assert "Kcnma1" in res.genes and len(res.genes) == 5
    o = res.oinfo["all cells"]
    assert o.attrs["target"] == "Kcnma1"
    kma = o.variables.index("Kcnma1")
    assert all(kma in row for row in o.orders[3].multiplets)
    assert main(["genes", str(counts), "-o", str(tmp_path / "x.h5"), "--metadata", str(meta),
                 "--target", "Actb"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--target 'Actb' is not among the kept")


def test_oinfo_result_write_group_and_read_group_hold_several_results_in_one_file(tmp_path):
    """OInfoResult.write_group/read_group: the OINFO.h5 layout inside any h5py group, the
    same as write/read of a whole file (which now go through them)."""
    from hpcneuro.oinfo import compute_oinfo
    from hpcneuro.oinfo.result import OInfoResult

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    x[:, 1] += x[:, 0]
    a = compute_oinfo(x, list("abcde"), bootstrap=5, gradient=True)
    b = compute_oinfo(x[:, :4] ** 3, list("wxyz"), max_order=4, bias_correct=True)
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        a.write_group(f.create_group("first"))
        b.write_group(f.create_group("second/nested"))
    a.write(tmp_path / "a.h5")
    with h5py.File(path, "r") as f:
        ra = OInfoResult.read_group(f["first"])
        rb = OInfoResult.read_group(f["second/nested"])
    whole = OInfoResult.read(tmp_path / "a.h5")
    for got in (ra, whole):
        assert got.variables == a.variables and sorted(got.orders) == [3, 4, 5]
        for k, r in a.orders.items():
            np.testing.assert_array_equal(got.orders[k].oinfo, r.oinfo)
            np.testing.assert_array_equal(got.orders[k].gradient, r.gradient)
            assert got.orders[k].mean_ci == pytest.approx(r.mean_ci)
    assert rb.variables == list("wxyz") and rb.attrs["bias_correct"]
    np.testing.assert_array_equal(rb.orders[4].multiplets, b.orders[4].multiplets)


# --------------------------------------------------------------------- genes -> models

#: a few channel genes of most mechanisms (NaP has none: Nav genes map to NaT)
FEW_GENES = ("Scn1a,Scn2a,Scn8a,Kcnc1,Kcnc2,Hcn1,Hcn2,Kcnq2,Kcnq3,Kcnn2,Kcnn3,Cacna1g,"
             "Cacna1h,Kcnd2,Kcnd3,Kcna1,Kcnb1,Cacna1c,Cacna1e")
CORTICAL_MAPPED = ["NaT", "Kv3_1", "K_P", "K_T", "Im", "Ih", "Ca_HVA", "Ca_LVA", "SK"]


@pytest.fixture(scope="module")
def patchseq_genes(tmp_path_factory):
    """A real GENES.h5 from the patch-seq table: few genes, no resampling, no subset."""
    if not COUNTS.exists():
        pytest.skip("patch-seq data not present")
    out = tmp_path_factory.mktemp("genes") / "genes.h5"
    assert main(["genes", str(COUNTS), "-o", str(out), "--metadata", str(META),
                 "--group-by", "RNA family", "--exclude-label", "low quality",
                 "--genes", FEW_GENES, "--top-variable", "0", "--max-order", "3",
                 "--bootstrap", "0", "--shuffles", "0", "--no-subset"]) == 0
    return out


def cortical_campaign(folder, genes, group="Sst", n=2000, **sampling):
    """configs/cortical.yaml's model and 12 parameters, gene-correlated, one short
    protocol (the sampled parameters are what is checked); returns the config's path."""
    import shutil

    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "cortical.yaml").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    if genes is not None and not (folder / "genes.h5").exists():
        shutil.copy(genes, folder / "genes.h5")
    cfg["sampling"] = {"method": "uniform", "n_samples": n,
                       "correlation_from": {"genes": "genes.h5", "group": group}, **sampling}
    cfg["protocols"] = [{"name": "rest", "type": "rmp", "tstop": 5}]
    cfg["features"], cfg["validity"] = ["rest.voltage_base"], []
    cfg["simulation"] = {"batch_size": 200}
    cfg.pop("analysis")
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@needs_data
def test_correlation_from_builds_the_gbar_matrix_from_a_group_and_logs_it(
        patchseq_genes, tmp_path, caplog):
    import logging

    from hpcneuro import config as configuration
    from hpcneuro.genes.correlation import correlation_from_genes
    from hpcneuro.sampling import Sampler

    path = cortical_campaign(tmp_path, patchseq_genes)
    with caplog.at_level(logging.INFO, logger="hpcneuro"):
        cfg = configuration.load(path)
    names = [p["name"] for p in cfg["parameters"]]
    mapped = [names.index(f"gbar_{m}") for m in CORTICAL_MAPPED]
    m = np.array(cfg["sampling"]["correlation_from"]["matrix"])
    want = correlation_from_genes(patchseq_genes, "Sst", CORTICAL_MAPPED).spearman
    np.testing.assert_allclose(m[np.ix_(mapped, mapped)], want, atol=1e-9)
    assert np.abs(want - np.eye(len(mapped))).max() > 0.2  # coregulation to sample
    assert np.all(np.linalg.eigvalsh(m) > 0)
    # NaP (no gene) and CaDynamics (not a conductance): correlation 0, said in the log
    for name in ("gbar_NaP", "gamma_CaDynamics", "decay_CaDynamics"):
        i = names.index(name)
        assert np.all(m[i, np.arange(12) != i] == 0)
    text = caplog.text
    assert "parameters[2] gbar_NaP: no channel gene in genes.h5 maps to NaP" in text
    assert "parameters[10] gamma_CaDynamics: not a conductance" in text
    assert "from 110 cells of group 'Sst'" in text and "Kv3_1 = Kcnc1+Kcnc2" in text
    assert "gbar_Ca_LVA" in text.split("Sst")[-1]  # the matrix rows are logged
    assert cfg["sampling"]["correlation_from"]["genes"] == str(tmp_path / "genes.h5")
    # sample i is a pure function of (seed, i): blocks give the very same rows
    s = Sampler(cfg)
    idx = np.array([1999, 3, 700, 0])
    np.testing.assert_array_equal(s.sample(idx), Sampler(cfg).sample(np.arange(2000))[idx])
    # the pooled cells are a group too
    pooled = configuration.load(cortical_campaign(tmp_path / "p", patchseq_genes, "all cells"))
    assert not np.allclose(pooled["sampling"]["correlation_from"]["matrix"], m)


@needs_data
@pytest.mark.parametrize("case,path,msg", [
    ("missing", "sampling.correlation_from.genes", "file not found: "),
    ("not-genes", "sampling.correlation_from.genes", "is not a GENES.h5"),
    ("group", "sampling.correlation_from.group",
     "unknown group 'Lamp5' in"),
    ("correlation", "sampling.correlation_from", "give it, correlation or modules"),
    ("modules", "sampling.correlation_from", "give it, correlation or modules"),
    ("grid", "sampling.correlation_from", "not available with method grid"),
    ("twice", "sampling.correlation_from",
     "parameters[0] and parameters[12] are both NaT gbar"),
    ("one", "sampling.correlation_from", "1 parameter(s) map to a mechanism"),
    ("small", "sampling.correlation_from.group", "group 'NP' has 2 cells for 9 mechanisms"),
])
def test_correlation_from_bad_input_names_the_key(patchseq_genes, tmp_path, case, path, msg):
    import yaml

    from hpcneuro import config as configuration
    from hpcneuro.errors import ConfigError

    cfg_path = cortical_campaign(tmp_path, patchseq_genes,
                                 group={"group": "Lamp5", "small": "NP"}.get(case, "Sst"))
    cfg = yaml.safe_load(cfg_path.read_text())
    s = cfg["sampling"]
    if case == "missing":
        s["correlation_from"]["genes"] = "nope.h5"
    elif case == "not-genes":
        (tmp_path / "other.h5").write_bytes(b"")
        with h5py.File(tmp_path / "other.h5", "w") as f:
            f.attrs["kind"] = "hpcneuro results"
        s["correlation_from"]["genes"] = "other.h5"
    elif case == "correlation":
        s["correlation"] = np.eye(12).tolist()
    elif case == "modules":
        s["modules"] = [{"parameters": ["gbar_NaT", "gbar_Ih"], "rho": 0.5}]
    elif case == "grid":
        s.update(method="grid", points_per_axis=2)
        s.pop("n_samples")
    elif case == "twice":
        cfg["parameters"].append({"mechanism": "NaT", "variable": "gbar", "low": 0.1,
                                  "high": 0.2, "name": "gbar_NaT_2"})
    elif case == "one":
        cfg["parameters"] = [p for p in cfg["parameters"]
                             if p["mechanism"] in ("NaT", "NaP", "CaDynamics")]
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        configuration.load(cfg_path)
    assert info.value.path == path and msg in info.value.message, info.value
    if case == "group":
        assert "'Sst' (110 cells)" in info.value.message and "'all cells'" in info.value.message
        from conftest import run_cli

        proc = run_cli("simulate", cfg_path, "-o", tmp_path / "r.h5")
        assert proc.returncode == 2 and not (tmp_path / "r.h5").exists()
        assert_one_line_error(proc.stderr, "sampling.correlation_from.group: unknown group")


@needs_data
def test_simulate_samples_the_gene_correlation_and_a_changed_genes_file_refuses_resume(
        patchseq_genes, tmp_path):
    """A real `hpcneuro simulate`: the stored parameters' Spearman correlations match
    the matrix within sampling error; the GENES.h5 is an input (never the output) and
    part of the campaign's identity (an edited one refuses the resume, a moved folder
    resumes)."""
    import shutil

    from scipy.stats import spearmanr

    from conftest import run_cli
    from hpcneuro.store import DONE, ResultsStore

    n = 2000
    cfg_path = cortical_campaign(tmp_path / "c", patchseq_genes, n=n)
    out = tmp_path / "c" / "results.h5"
    proc = run_cli("simulate", cfg_path, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "Spearman correlation of gbar_NaT" in proc.stderr
    with ResultsStore.read(out) as f:
        params, cfg = f.column("params"), f.config()
        assert (f.status() == DONE).all()
    target = np.array(cfg["sampling"]["correlation_from"]["matrix"])
    got = spearmanr(params).statistic
    # Fisher z of a rank correlation has sd ~ sqrt(1.06 / (n - 3)): 4.5 sd over 66 pairs
    off = ~np.eye(12, dtype=bool)
    z = np.abs(np.arctanh(got[off]) - np.arctanh(target[off])) / np.sqrt(1.06 / (n - 3))
    assert z.max() < 4.5, (z.max(), np.abs(got - target).max())
    # the GENES.h5 is an input: refused as output, nothing written
    proc = run_cli("simulate", cfg_path, "-o", tmp_path / "c" / "genes.h5")
    assert proc.returncode == 2 and "genes.h5" in proc.stderr
    # a moved folder resumes (nothing pending), an edited GENES.h5 is refused
    shutil.copytree(tmp_path / "c", tmp_path / "moved")
    proc = run_cli("simulate", tmp_path / "moved" / "campaign.yaml", "-o",
                   tmp_path / "moved" / "results.h5")
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "moved" / "genes.h5", "a") as f:
        f.attrs["touched"] = 1
    before = (tmp_path / "moved" / "results.h5").read_bytes()
    proc = run_cli("simulate", tmp_path / "moved" / "campaign.yaml", "-o",
                   tmp_path / "moved" / "results.h5")
    assert proc.returncode == 2
    assert "changed: sampling.correlation_from.genes (file contents)" in proc.stderr
    assert (tmp_path / "moved" / "results.h5").read_bytes() == before


# --------------------------------------------------------------------- hpcneuro report

def assert_page_images_are_pngs(page) -> list[str]:
    """Every <img src> of the page exists next to it and is a PNG; returns the names."""
    import re

    images = re.findall(r'<img src="([^"]+)"', page.read_text())
    assert images
    for name in images:
        f = page.parent / name
        assert f.is_file(), name
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    return images


@needs_data
def test_report_of_a_genes_file_is_written_next_to_it(patchseq_genes, tmp_path, capsys):
    import shutil

    genes = tmp_path / "m1.h5"
    shutil.copy(patchseq_genes, genes)
    assert main(["report", str(genes)]) == 0
    page = tmp_path / "m1-report" / "index.html"
    assert capsys.readouterr().out.strip() == str(page)
    images = assert_page_images_are_pngs(page)
    assert images == ["genes_heatmap.png", "genes_pca.png", "genes_oinfo.png"]  # no subset
    assert "Sst" in page.read_text()
    # not a GENES.h5, or missing: one line, exit 2, nothing written
    other = tmp_path / "x.h5"
    with h5py.File(other, "w"):
        pass
    assert main(["report", str(other)]) == 2
    assert_one_line_error(capsys.readouterr().err, "x.h5 is not a GENES.h5")
    assert main(["report", str(tmp_path / "nope.h5")]) == 2
    assert_one_line_error(capsys.readouterr().err, "no such run folder or GENES.h5")
    assert not (tmp_path / "x-report").exists() and not (tmp_path / "nope-report").exists()


def test_report_of_a_synthetic_genes_file_has_the_subset_figure(tmp_path, capsys):
    df, labels = synthetic_counts(80, groups=("A", "B"), marker=("Kcnc1",))
    counts, meta = write_pair(tmp_path, df, labels)
    assert _run(tmp_path, counts, meta) == 0
    assert main(["report", str(tmp_path / "genes.h5")]) == 0
    images = assert_page_images_are_pngs(tmp_path / "genes-report" / "index.html")
    assert "genes_subset.png" in images


@needs_data
def test_run_report_includes_the_genes_figures_when_the_folder_has_genes_h5(
        patchseq_genes, tmp_path):
    """A campaign sampled from its genes: RUNDIR holds results.h5 and genes.h5, and the
    run report shows both."""
    from conftest import run_cli

    rundir = tmp_path / "run"
    cfg = cortical_campaign(rundir, patchseq_genes, n=100)
    assert run_cli("simulate", cfg, "-o", rundir / "results.h5").returncode == 0
    proc = run_cli("report", rundir)
    assert proc.returncode == 0, proc.stderr
    page = rundir / "report" / "index.html"
    images = assert_page_images_are_pngs(page)
    assert "parameters.png" in images and "genes_heatmap.png" in images
    assert "Gene expression" in page.read_text()
    # a folder with only a GENES.h5 gets the genes report
    (rundir / "results.h5").unlink()
    assert run_cli("report", rundir).returncode == 0
    assert assert_page_images_are_pngs(page)[0] == "genes_heatmap.png"


# --------------------------------------------------------------------- the rest of the list

def test_genes_command_on_h5ad_labels_from_obs_min_genes_and_normalize_none(tmp_path, capsys):
    """`hpcneuro genes x.h5ad`: no --metadata (labels from obs), counts from a layer or
    normalised values from X (--normalize none; cpm-log1p refuses them), --min-genes."""
    import anndata

    from hpcneuro.genes.result import GenesResult

    df, labels = synthetic_counts(90, groups=("A", "B"))
    x = df.to_numpy().astype(np.float32)
    x[:5, 3:] = 0  # 5 cells with only 3 detected genes
    ad = anndata.AnnData(X=np.log1p(x), obs=pd.DataFrame({"family": labels}, index=df.index),
                         var=pd.DataFrame(index=df.columns))
    ad.layers["counts"] = x
    path = tmp_path / "cells.h5ad"
    ad.write_h5ad(path)
    common = ["--group-by", "family", "--top-variable", "6", "--max-order", "3",
              "--bootstrap", "0", "--shuffles", "0", "--no-subset"]
    out = tmp_path / "g.h5"
    assert main(["genes", str(path), "-o", str(out), "--layer", "counts", "--min-genes", "10",
                 *common]) == 0
    assert "excluded 5 cells with fewer than 10 detected genes" in capsys.readouterr().out
    res = GenesResult.read(out)
    assert len(res.cell_ids) == 85 and set(res.cell_groups) == {"A", "B"}
    assert list(res.oinfo)[0] == "all cells" and set(res.oinfo) == {"all cells", "A", "B"}
    # X is log-normalised: cpm-log1p refuses it, --normalize none takes it as it is
    assert main(["genes", str(path), "-o", str(tmp_path / "n.h5"), *common]) == 2
    assert_one_line_error(capsys.readouterr().err, "non-integer count")
    assert not (tmp_path / "n.h5").exists()
    assert main(["genes", str(path), "-o", str(tmp_path / "n.h5"), "--normalize", "none",
                 *common]) == 0
    res = GenesResult.read(tmp_path / "n.h5")
    j = list(df.columns).index(str(res.channels["symbol"][0]))
    np.testing.assert_allclose(res.expression[:, 0], np.log1p(x[:, j]), rtol=1e-6)


def test_genes_option_naming_a_missing_file_says_so(tmp_path, capsys):
    df, labels = synthetic_counts(40)
    counts, meta = write_pair(tmp_path, df, labels)
    assert main(["genes", str(counts), "-o", str(tmp_path / "g.h5"), "--metadata", str(meta),
                 "--genes", str(tmp_path / "mine.txt")]) == 2
    assert_one_line_error(capsys.readouterr().err, "mine.txt: no such file")
    assert not (tmp_path / "g.h5").exists()
