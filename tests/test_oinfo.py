"""O-information engine: exactness against an independent reference, known
cases, modes, exact merges across real Dask workers, statistics, bad input."""
from __future__ import annotations

import itertools
import logging
import math

import h5py
import numpy as np
import pytest

from hpcneuro import oinfo as oi
from hpcneuro.errors import UserError
from hpcneuro.oinfo import compute_oinfo, engine, reference_oinfo
from hpcneuro.oinfo.inputs import check_conditioning
from hpcneuro.oinfo.plan import Unit


def correlated(n: int, t: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    return rng.normal(size=(t, n)) @ a


def names_of(n: int) -> list[str]:
    return [f"v{i}" for i in range(n)]


@pytest.fixture(scope="module")
def clusters():
    """Real LocalClusters with 1 and 2 worker processes."""
    from distributed import Client, LocalCluster

    c1 = LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0")
    c2 = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0")
    with Client(c1) as a, Client(c2) as b:
        yield a, b
    c1.close()
    c2.close()


def test_every_multiplet_matches_slogdet_reference():
    n = 7
    x = correlated(n, 300, seed=1)
    res = compute_oinfo(x, names_of(n), min_order=3, max_order=7)
    r = oi.correlation_matrix(x, "gc")
    for k in range(3, 8):
        o = res.orders[k]
        assert o.complete and o.n_multiplets == math.comb(n, k)
        sets = list(itertools.combinations(range(n), k))
        assert [tuple(s) for s in o.multiplets] == sets
        ref = np.array([reference_oinfo(r, s) for s in sets])
        np.testing.assert_allclose(o.oinfo, ref[:, 0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(o.tc, ref[:, 1], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(o.dtc, ref[:, 2], rtol=1e-9, atol=1e-12)
        # the engine's streaming statistics agree with the stored values
        assert o.mean == pytest.approx(ref[:, 0].mean(), rel=1e-9, abs=1e-12)
        assert o.min == pytest.approx(ref[:, 0].min(), rel=1e-9)
        assert o.max == pytest.approx(ref[:, 0].max(), rel=1e-9)
        assert o.n_synergistic == int((ref[:, 0] < 0).sum())
        assert o.n_redundant == int((ref[:, 0] > 0).sum())
        assert o.hist_counts.sum() == o.n_multiplets


def test_kernel_top_k_values_match_reference_on_units():
    """The bare kernel on a split tree: every heap entry equals the reference."""
    n, kmax = 9, 9
    r = oi.correlation_matrix(correlated(n, 200, seed=2), "gauss")
    cfg = dict(min_order=3, max_order=kmax, offset=np.zeros(kmax + 1), scale=1.0,
               hist_lo=np.zeros(kmax + 1), hist_inv_w=np.ones(kmax + 1), top=600, nbins=0)
    part = None
    for u in oi.plan_units(n, kmax, n_units=13):
        part = engine._merge(part, engine._run_unit(r, u, cfg), 600)
    part = engine._finish(part, 600)
    for k in range(3, kmax + 1):
        assert part.icount[k, 0] == math.comb(n, k)
        for key, s in zip(part.red_key[k], part.red_idx[k]):
            assert key == pytest.approx(reference_oinfo(r, list(s))[0], rel=1e-9)
        for key, s in zip(part.syn_key[k], part.syn_idx[k]):
            assert -key == pytest.approx(reference_oinfo(r, list(s))[0], rel=1e-9)


def test_units_sharing_heaps_keep_the_exact_top_k():
    """A run of units shares its heaps (engine.Heaps): later units start from the
    thresholds reached so far. The top-K of every order must still be exactly the
    brute-force one (keys and tuples, ties by tuple), whatever the grouping."""
    n, kmax, top = 10, 6, 7
    r = oi.correlation_matrix(correlated(n, 200, seed=4), "gauss")
    cfg = dict(min_order=3, max_order=kmax, offset=np.zeros(kmax + 1), scale=1.0,
               hist_lo=np.zeros(kmax + 1), hist_inv_w=np.ones(kmax + 1), top=top, nbins=0)
    units = oi.plan_units(n, kmax, n_units=11)
    assert len(units) > 8
    shared = engine._run_units(r, units, cfg)
    halves = engine._finish(engine._merge(engine._run_units(r, units[:5], cfg),
                                          engine._run_units(r, units[5:], cfg), top), top)
    for k in range(3, kmax + 1):
        sets = list(itertools.combinations(range(n), k))
        o = np.array([reference_oinfo(r, s)[0] for s in sets])
        for sign, keys, idx in ((-1, "syn_key", "syn_idx"), (1, "red_key", "red_idx")):
            want = sorted(((sign * v, s) for v, s in zip(o, sets) if sign * v > 0),
                          key=lambda t: (-t[0], t[1]))[:top]
            for part in (shared, halves):
                got = [tuple(int(i) for i in s) for s in getattr(part, idx)[k]]
                assert got == [s for _, s in want]
                np.testing.assert_allclose(getattr(part, keys)[k], [v for v, _ in want],
                                           rtol=1e-9)


def test_kernel_path_matches_reference_at_every_order():
    n = 20
    r = oi.correlation_matrix(correlated(n, 500, seed=17), "gc")
    rng = np.random.default_rng(0)
    sets = [sorted(rng.choice(n, k, replace=False)) for k in range(3, n + 1) for _ in range(3)]
    got = oi.kernel_oinfo(r, sets)
    want = np.array([reference_oinfo(r, s)[0] for s in sets])
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_units_cover_the_tree_once():
    for n, k, root in [(12, 6, ()), (10, 10, ()), (11, 5, (0,))]:
        units = oi.plan_units(n, k, root, n_units=17)
        seen = []
        for u in units:
            mine = []
            for v in range(u.lo, u.hi):
                base = u.prefix + (v,)
                mine.append(base)
                if not u.shallow:
                    rest = range(v + 1, n)
                    for j in range(1, k - len(base) + 1):
                        mine += [base + c for c in itertools.combinations(rest, j)]
            seen += sorted(mine)
        want = []
        for j in range(1, k + 1):
            for c in itertools.combinations(range(n), j):
                if not root or (c[0] == root[0] and len(c) > 1):
                    want.append(c)
        assert sorted(seen) == sorted(want)
        assert seen == sorted(seen)  # units are contiguous in DFS (lexicographic) order


def test_independent_variables_give_zero():
    x = np.random.default_rng(3).normal(size=(20000, 5))
    res = compute_oinfo(x, names_of(5), max_order=5)
    for o in res.orders.values():
        assert np.all(np.abs(o.oinfo) < 0.01)


def test_common_driver_is_redundant():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(5000, 1))
    x = z + 0.7 * rng.normal(size=(5000, 5))
    res = compute_oinfo(x, names_of(5), max_order=5)
    for o in res.orders.values():
        assert np.all(o.oinfo > 0) and o.n_redundant == o.n_multiplets


def test_sum_is_synergistic():
    rng = np.random.default_rng(5)
    x1, x2 = rng.normal(size=(2, 5000))
    y = x1 + x2 + 0.1 * rng.normal(size=5000)
    res = compute_oinfo(np.column_stack([x1, x2, y]), ["x1", "x2", "y"], max_order=3)
    assert res.orders[3].oinfo[0] < -0.5
    assert res.orders[3].n_synergistic == 1


def test_targeted_mode_equals_full_enumeration_subset():
    n = 8
    x = correlated(n, 400, seed=6)
    full = compute_oinfo(x, names_of(n), max_order=6)
    tgt = compute_oinfo(x, names_of(n), max_order=6, target="v3")
    assert tgt.attrs["target"] == "v3"
    for k in range(3, 7):
        t = tgt.orders[k]
        assert t.n_multiplets == math.comb(n - 1, k - 1)
        assert all(3 in row for row in t.multiplets)
        lookup = {tuple(s): v for s, v in zip(full.orders[k].multiplets, full.orders[k].oinfo)}
        want = np.array([lookup[tuple(s)] for s in t.multiplets])
        np.testing.assert_allclose(t.oinfo, want, rtol=1e-12, atol=1e-14)
        assert t.mean == pytest.approx(want.mean(), rel=1e-9, abs=1e-12)
    # top-K mode in targeted mode: the kept multiplets contain the target too
    top = compute_oinfo(x, names_of(n), max_order=6, target="v3", top=2, store_all_max=0)
    for k in range(3, 7):
        assert all(3 in row for row in top.orders[k].multiplets)


def test_gradient_is_parent_minus_child():
    n = 6
    x = correlated(n, 300, seed=7)
    res = compute_oinfo(x, names_of(n), max_order=5, gradient=True, bias_correct=True,
                        units="bits", target="v2")
    r = oi.correlation_matrix(x, "gc")
    off = oi.bias_offsets(5, 300, True)
    for k, o in res.orders.items():
        assert o.gradient.shape == (len(o.multiplets), k)
        for row, g in zip(o.multiplets, o.gradient):
            full = (reference_oinfo(r, list(row))[0] + off[k]) / math.log(2)
            for q in range(k):
                sub = [v for i, v in enumerate(row) if i != q]
                child = (reference_oinfo(r, sub)[0] + off[k - 1]) / math.log(2) if k > 3 else 0.0
                assert g[q] == pytest.approx(full - child, rel=1e-9, abs=1e-12)


def test_identical_for_one_and_two_workers_and_top_k_exact(clusters):
    c1, c2 = clusters
    n = 16
    x = correlated(n, 300, seed=8)
    kw = dict(max_order=7, top=25, store_all_max=0, n_units=24)
    a = compute_oinfo(x, names_of(n), client=c1, **kw)
    b = compute_oinfo(x, names_of(n), client=c2, **kw)
    c = compute_oinfo(x, names_of(n), scheduler="none", **kw)
    assert b.attrs["n_workers"] == 2 and a.attrs["n_workers"] == 1
    full = compute_oinfo(x, names_of(n), max_order=7, store_all_max=10**9)
    for k in range(3, 8):
        for other in (b, c):
            ra, rb = a.orders[k], other.orders[k]
            assert (ra.mean, ra.std, ra.min, ra.max) == (rb.mean, rb.std, rb.min, rb.max)
            assert (ra.n_synergistic, ra.n_redundant) == (rb.n_synergistic, rb.n_redundant)
            np.testing.assert_array_equal(ra.hist_counts, rb.hist_counts)
            np.testing.assert_array_equal(ra.multiplets, rb.multiplets)
            np.testing.assert_array_equal(ra.oinfo, rb.oinfo)
        # exact top-K: brute force sort of every multiplet
        f = full.orders[k]
        neg = np.argsort(f.oinfo, kind="stable")[:25]
        pos = np.argsort(-f.oinfo, kind="stable")[:25]
        want = {tuple(f.multiplets[i]) for i in neg if f.oinfo[i] < 0}
        want |= {tuple(f.multiplets[i]) for i in pos if f.oinfo[i] > 0}
        assert {tuple(s) for s in a.orders[k].multiplets} == want
        assert np.all(np.diff(a.orders[k].oinfo) >= 0)
        assert a.orders[k].mean == pytest.approx(f.mean, rel=1e-12)


def test_grouped_tasks_and_back_to_back_runs_on_a_cluster(clusters):
    """With many units a Dask task runs several consecutive ones and merges them on the
    worker; stored orders must still come back complete and in order, and a second run
    on the same matrix right after the first must find its scattered data."""
    c1, c2 = clusters
    n = 14
    x = correlated(n, 300, seed=11)
    kw = dict(max_order=6, top=10, n_units=200)
    ref = compute_oinfo(x, names_of(n), scheduler="none", **kw)
    units = oi.plan_units(n, 6, n_units=200)
    assert ref.attrs["n_units"] == len(units)
    for workers in (1, 2):
        groups = engine.task_groups([u.cost for u in units], workers)
        assert len(groups[0]) > 1 and len(groups) < len(units)  # several units per task
    assert ref.orders[4].complete
    for client in (c1, c2, c2):
        got = compute_oinfo(x, names_of(n), client=client, **kw)
        for k in range(3, 7):
            a, b = ref.orders[k], got.orders[k]
            assert (a.mean, a.std, a.min, a.max, a.complete) == (b.mean, b.std, b.min, b.max,
                                                                 b.complete)
            np.testing.assert_array_equal(a.hist_counts, b.hist_counts)
            np.testing.assert_array_equal(a.multiplets, b.multiplets)
            np.testing.assert_array_equal(a.oinfo, b.oinfo)
            np.testing.assert_array_equal(a.tc, b.tc)


def test_task_groups_are_guided():
    """Tasks cover every unit once, in order; each takes about 1/(GUIDED_SHARE x workers)
    of the work not yet given out (at least one unit), so the last ones are single units."""
    rng = np.random.default_rng(0)
    costs = list(rng.uniform(0.5, 1.5, 400))
    for workers in (1, 2, 7, 1000):
        groups = engine.task_groups(costs, workers)
        assert [i for g in groups for i in g] == list(range(len(costs)))
        remaining = sum(costs)
        for g in groups:
            taken = sum(costs[i] for i in g)
            share = remaining / (engine.GUIDED_SHARE * workers)
            assert taken <= share or len(g) == 1
            if g.stop < len(costs):
                assert taken + costs[g.stop] > share
            remaining -= taken
        assert len(groups[-1]) == 1
    assert len(engine.task_groups(costs, 2)) < 60
    assert engine.task_groups([], 2) == []


def test_local_cluster_workers_get_hpcneuro_settings_unless_the_user_set_them(clusters):
    """The LocalCluster hpcneuro starts: worker profiler off, glibc keeping freed
    memory for the next unit (engine.LOCAL_CLUSTER_DASK_CONFIG), seen inside the worker
    processes; a value the user's dask config sets is kept."""
    import os

    import dask

    def seen():
        return (dask.config.get("distributed.worker.profile.enabled"),
                dask.config.get("distributed.admin.system-monitor.interval"),
                dask.config.get("distributed.admin.tick.interval"),
                os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("MALLOC_MMAP_THRESHOLD_"))

    # a default LocalCluster started earlier in this process (the clusters fixture) left
    # distributed's MALLOC_TRIM_THRESHOLD_ in os.environ; hpcneuro's must still win, and
    # must not stay behind in this process's environment
    names = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")
    env_before = {name: os.environ.get(name) for name in names}
    with engine.open_client("local", 1) as client:
        (got,) = client.run(seen).values()
    assert got == (False, "2s", "1s", str(64 * 2**20), str(16 * 2**20))
    assert {name: os.environ.get(name) for name in names} == env_before
    with dask.config.set({"distributed.admin.system-monitor.interval": "750ms"}):
        with engine.open_client("local", 1) as client:
            (got,) = client.run(seen).values()
    assert got[:2] == (False, "750ms")


def test_local_scheduler_string(monkeypatch):
    n = 6
    x = correlated(n, 200, seed=9)
    b = compute_oinfo(x, names_of(n), max_order=4)
    small = compute_oinfo(x, names_of(n), max_order=4, scheduler="local")
    assert small.attrs["n_workers"] == 0  # small job: in-process
    monkeypatch.setattr(oi, "SMALL_JOB_COST", 0)
    a = compute_oinfo(x, names_of(n), max_order=4, scheduler="local", n_workers=1)
    assert a.attrs["n_workers"] == 1
    np.testing.assert_array_equal(a.orders[4].oinfo, b.orders[4].oinfo)


def test_bootstrap_ci_covers_truth_of_known_gaussian():
    rng = np.random.default_rng(10)
    cov = np.array([[1.0, 0.6, 0.5, 0.0], [0.6, 1.0, 0.4, 0.3], [0.5, 0.4, 1.0, -0.2],
                    [0.0, 0.3, -0.2, 1.0]])
    x = rng.multivariate_normal(np.zeros(4), cov, size=3000)
    res = compute_oinfo(x, list("abcd"), max_order=4, estimator="gauss", bias_correct=True,
                        bootstrap=200, seed=1)
    for k in (3, 4):
        o = res.orders[k]
        truth = np.array([reference_oinfo(cov, s)[0] for s in o.multiplets])
        assert np.all(o.ci_low <= truth) and np.all(truth <= o.ci_high)
        assert o.mean_ci[0] <= truth.mean() <= o.mean_ci[1]
        assert np.all(o.ci_low <= o.oinfo + 1e-3) and np.all(o.oinfo - 1e-3 <= o.ci_high)


def test_permutation_pvalues_and_fdr():
    rng = np.random.default_rng(11)
    z = rng.normal(size=(500, 1))
    x = np.column_stack([z + 0.5 * rng.normal(size=(500, 3)), rng.normal(size=(500, 2))])
    res = compute_oinfo(x, names_of(5), max_order=3, permutations=20, seed=2)
    o = res.orders[3]
    assert np.all((o.pvalue > 0) & (o.pvalue <= 1)) and np.all(o.qvalue >= o.pvalue - 1e-15)
    i = [tuple(s) for s in o.multiplets].index((0, 1, 2))
    assert o.pvalue[i] == pytest.approx(1 / (1 + 20 * len(o.oinfo)))  # beyond every null value
    assert o.qvalue[i] < 0.05
    q = oi.bh_fdr(np.array([0.01, 0.04, 0.03, 0.5]))
    np.testing.assert_allclose(q, [0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_bias_and_units():
    n = 5
    x = correlated(n, 100, seed=12)
    a = compute_oinfo(x, names_of(n), max_order=4)
    b = compute_oinfo(x, names_of(n), max_order=4, units="bits", bias_correct=True)
    off = oi.bias_offsets(4, 100, True)
    for k in (3, 4):
        np.testing.assert_allclose(b.orders[k].oinfo, (a.orders[k].oinfo + off[k]) / math.log(2),
                                   rtol=1e-12, atol=1e-15)
    assert oi.bias_offsets(3, 100, True)[2] == pytest.approx(0.0, abs=1e-15)


def test_write_layout(tmp_path):
    n = 7
    x = correlated(n, 300, seed=13)
    res = compute_oinfo(x, names_of(n), max_order=5, target="v1", top=3, store_all_max=15,
                        bias_correct=True, units="bits", bootstrap=5, permutations=5,
                        gradient=True)
    path = tmp_path / "OINFO.h5"
    res.write(str(path))
    with h5py.File(path, "r") as f:
        assert [v.decode() for v in f["variables"][()]] == names_of(n)
        assert f.attrs["estimator"] == "gc" and f.attrs["units"] == "bits"
        assert bool(f.attrs["bias_correct"]) and f.attrs["n_samples"] == 300
        assert f.attrs["target"] == "v1"
        s = f["summary"][()]
        assert s["order"].tolist() == [3, 4, 5]
        assert s["n_multiplets"].tolist() == [15, 20, 15]
        for k in (3, 4, 5):
            g = f[f"order_{k}"]
            m = g["multiplets"][()]
            assert m.shape[1] == k and np.all(np.diff(m, axis=1) > 0)
            assert g["oinfo"].shape == (m.shape[0],)
            assert g.attrs["complete"] == (k != 4)
            for name in ("ci_low", "ci_high", "pvalue", "qvalue", "gradient", "hist_counts"):
                assert name in g
    text = res.summary_text()
    assert "order" in text and "v1" in text and "bits" in text


def assert_same_result(a: oi.OInfoResult, b: oi.OInfoResult) -> None:
    """Every field of two results equal: variables, summary, orders, stats, attrs."""
    assert b.variables == a.variables and b.dropped == a.dropped
    assert b.attrs == a.attrs
    assert b.summary_rows() == a.summary_rows()
    assert sorted(b.orders) == sorted(a.orders)
    for k, ra in a.orders.items():
        rb = b.orders[k]
        for name in ("order", "n_multiplets", "n_synergistic", "n_redundant", "mean", "std",
                     "min", "max", "complete"):
            assert getattr(rb, name) == getattr(ra, name), (k, name)
        for name in ("multiplets", "oinfo", "tc", "dtc", "hist_edges", "hist_counts"):
            np.testing.assert_array_equal(getattr(rb, name), getattr(ra, name))
        assert rb.stats.mean_ci == ra.stats.mean_ci
        for name in ("ci_low", "ci_high", "pvalue", "qvalue", "gradient"):
            va, vb = getattr(ra.stats, name), getattr(rb.stats, name)
            assert (va is None) == (vb is None), (k, name)
            if va is not None:
                np.testing.assert_array_equal(vb, va)


@pytest.mark.parametrize("kw", [
    dict(max_order=5, target="v1", top=3, store_all_max=15, bias_correct=True, units="bits",
         bootstrap=5, permutations=5, gradient=True),
    dict(max_order=4, top=2, store_all_max=0),
])
def test_read_gives_back_what_was_written(tmp_path, kw):
    n = 7
    x = correlated(n, 300, seed=13)
    x = np.column_stack([x, np.ones(300)])  # a constant column: dropped and recorded
    res = compute_oinfo(x, names_of(n + 1), **kw)
    assert res.dropped == ["v7"]
    path = tmp_path / "OINFO.h5"
    res.write(path)
    back = oi.OInfoResult.read(path)
    assert_same_result(res, back)
    assert back.attrs["target"] == kw.get("target")
    # the read result is a result: it writes the same file again
    back.write(tmp_path / "again.h5")
    assert_same_result(res, oi.OInfoResult.read(tmp_path / "again.h5"))


def test_read_refuses_what_is_not_an_oinfo_file(tmp_path):
    with pytest.raises(UserError, match="cannot open"):
        oi.OInfoResult.read(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(UserError, match="not an OINFO.h5"):
        oi.OInfoResult.read(tmp_path / "other.h5")


def test_report_section_from_a_read_result(tmp_path):
    from hpcneuro.report import oinfo_sections

    n = 6
    res = compute_oinfo(correlated(n, 300, seed=4), names_of(n), max_order=4, bootstrap=3)
    res.write(tmp_path / "oinfo.h5")
    page = "".join(oinfo_sections(tmp_path / "oinfo.h5", tmp_path))
    assert (tmp_path / "oinfo.png").stat().st_size > 0
    assert "<h2>O-information</h2>" in page and "mean O (95% bootstrap intervals)" in page
    lo, hi = res.orders[3].mean_ci
    assert f"[{lo:+.4g}, {hi:+.4g}]" in page and "% synergistic" in page
    for k in (3, 4):
        assert f"order {k}: most synergistic" in page
    best = res.orders[3].multiplets[int(np.argmin(res.orders[3].oinfo))]
    assert ", ".join(f"v{j}" for j in best) in page
    assert f"{res.orders[3].oinfo.min():+.4f}" in page


# ---------------------------------------------------------------- bad input

def test_fewer_samples_than_variables():
    with pytest.raises(UserError, match="samples"):
        compute_oinfo(np.random.default_rng(0).normal(size=(5, 8)), names_of(8))


def test_nan_and_inf_are_errors_or_dropped():
    x = correlated(5, 200, seed=14)
    x[3, 2] = np.nan
    x[7, 4] = np.inf
    with pytest.raises(UserError, match="v2.*v4"):
        compute_oinfo(x, names_of(5))
    res = compute_oinfo(x, names_of(5), nan_policy="drop", max_order=3)
    assert res.attrs["n_samples"] == 198


def test_constant_and_duplicated_columns_are_dropped(caplog):
    x = correlated(5, 200, seed=15)
    x = np.column_stack([x, np.full(200, 3.0), 2 * x[:, 1] + 1])
    with caplog.at_level(logging.WARNING):
        res = compute_oinfo(x, names_of(7), max_order=4)
    assert res.dropped == ["v5", "v6"] and res.variables == names_of(5)
    assert "constant" in caplog.text and "duplicates" in caplog.text
    with pytest.raises(UserError, match="constant"):
        compute_oinfo(x, names_of(7), target="v5")


def test_orders_names_and_options_out_of_range():
    x = correlated(5, 200, seed=16)
    for kw, msg in [(dict(max_order=6), "out of range"), (dict(min_order=2), "out of range"),
                    (dict(min_order=5, max_order=4), "out of range"),
                    (dict(target="nope"), "unknown target"), (dict(estimator="knn"), "estimator"),
                    (dict(units="dits"), "units"), (dict(bootstrap=-1), "bootstrap")]:
        with pytest.raises(UserError, match=msg):
            compute_oinfo(x, names_of(5), **kw)
    with pytest.raises(UserError, match="names"):
        compute_oinfo(x, names_of(4))
    with pytest.raises(UserError, match="at least 3"):
        compute_oinfo(x[:, :2], names_of(2))
    collinear = np.column_stack([x, x[:, 0] + x[:, 1]])
    with pytest.raises(UserError, match="linearly dependent"):
        compute_oinfo(collinear, names_of(6), estimator="gauss")


def _exact_oinfo(r: np.ndarray, s: list[int]) -> dict[tuple[int, ...], tuple[float, float]]:
    """O to ~30 digits (mpmath) of multiplet s and of every s minus one element, with
    the size of the terms that cancel in each (|log det R_S| + 1/2 sum_j |log P_jj|),
    keyed by the multiplet: O = -log det R_S - 1/2 sum_j log P_jj, P = R_S^-1, from the
    float64 matrix taken as exact. One inverse serves all: det R_{S-i} = det R_S P_ii
    and (R_{S-i}^-1)_jj = P_jj - P_ji^2 / P_ii."""
    import mpmath

    with mpmath.workdps(30):
        m = mpmath.matrix(r[np.ix_(s, s)].tolist())
        ld = mpmath.log(mpmath.det(m))
        p = m ** -1
        lp = mpmath.fsum(mpmath.log(p[j, j]) for j in range(len(s)))
        out = {tuple(s): (float(-ld - lp / 2), float(abs(ld) + lp / 2))}
        for i in range(len(s)):
            ld_i = ld + mpmath.log(p[i, i])
            lp_i = mpmath.fsum(mpmath.log(p[j, j] - p[j, i] ** 2 / p[i, i])
                               for j in range(len(s)) if j != i)
            out[tuple(s[:i] + s[i + 1:])] = (float(-ld_i - lp_i / 2),
                                              float(abs(ld_i) + lp_i / 2))
        return out


def test_products_beyond_1e300_take_the_overflow_path_and_stay_exact():
    """Near-duplicate pairs at order ~90: every product e prod diag P' the kernel
    forms exceeds 1e300, so it takes _log_prod_diag_blocked, both when a node is
    evaluated on its own (kernel_oinfo) and inside a walk (a unit with subtrees:
    children in the descent, and the descendants of S+(n-2) and S+(n-3) that S
    evaluates itself). Checked against exact (mpmath) values: at this
    conditioning (cond ~ 1e9) O is a small difference of terms ~1e3 and the
    slogdet reference itself is off by ~1e-4 absolute, so it is only required
    to agree within its own error."""
    pairs, t = 46, 2000
    rng = np.random.default_rng(5)
    base = rng.normal(size=(t, pairs))
    x = np.empty((t, 2 * pairs))
    x[:, 0::2] = base
    x[:, 1::2] = base + 3e-5 * rng.normal(size=(t, pairs))
    n = 2 * pairs
    r = oi.correlation_matrix(x, "gauss")
    check_conditioning(r)             # data the engine accepts (eigenvalues >= 1e-10)

    def log10_bracket(s):
        # product = DM^2 e prod P' >= 1e-100 det R_S prod diag(R_S^-1)
        # (DM >= DET_RENORM = 1e-100): above 1e400 means above 1e300
        sub = r[np.ix_(s, s)]
        return (np.linalg.slogdet(sub)[1] + np.log(np.diag(np.linalg.inv(sub))).sum()) / math.log(10)

    full = list(range(n))
    assert log10_bracket(full) > 400
    # a node evaluated on its own
    got = oi.kernel_oinfo(r, [full])[0]
    exact_of = _exact_oinfo(r, full)
    exact, size = exact_of[tuple(full)]
    assert abs(got - exact) <= 1e-10 * size
    assert abs(got - reference_oinfo(r, full)[0]) <= 1e-6 * size
    # inside a walk: a prefix, then every subset of the last 3 (4) variables. With
    # prefix 0..n-4 the full set is G of prefix+(n-3) (kernel.walk_unit evaluates the
    # one descendant of S+(n-2) from S); with prefix 0..n-5 it is H3 of prefix+(n-4)
    # (the three descendants of S+(n-3)), and orders n-1 come from children in the
    # descent, G and H1, H2
    for rest in (3, 4):
        p = n - rest
        cfg = dict(min_order=n - 1, max_order=n, offset=np.zeros(n + 1), scale=1.0,
                   hist_lo=np.zeros(n + 1), hist_inv_w=np.ones(n + 1), top=10, nbins=0)
        part = engine._finish(engine._run_unit(r, Unit(tuple(range(p)), p, n, False, 1.0),
                                               cfg), 10)
        assert part.icount[n - 1, 0] == rest and part.icount[n, 0] == 1
        (key_n,) = list(part.red_key[n]) + [-v for v in part.syn_key[n]]
        assert abs(key_n - exact) <= 1e-10 * size
        # its parents (order n - 1), exactly
        got = list(zip(part.red_key[n - 1], part.red_idx[n - 1])) + [
            (-v, s) for v, s in zip(part.syn_key[n - 1], part.syn_idx[n - 1])]
        assert len(got) == rest
        for key, s in got:
            s = [int(i) for i in s]
            assert log10_bracket(s) > 400
            exact_s, size_s = exact_of[tuple(s)]
            assert abs(key - exact_s) <= 1e-10 * size_s
