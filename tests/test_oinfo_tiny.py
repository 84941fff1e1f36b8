"""Tiny exhaustive jobs in numpy (hpcneuro/oinfo/tiny.py): the same OINFO.h5 as the
numba kernel's within 1e-12 relative, the same top-K multiplets in the same order and
the same histogram counts (but for the pilot's extremes, which sit on bin edges by
construction and whose bin is the last bit's choice); the path a pure function of the job; the command on a
6-column table never imports numba."""
from __future__ import annotations

import itertools
import logging
import math
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from hpcneuro.oinfo import compute_oinfo, correlation_matrix, reference_oinfo, tiny
from hpcneuro.oinfo.result import OInfoResult
from tests.conftest import ROOT

TINY = 10 ** 6  # threshold that makes every job below tiny


def _h5_items(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            for a, v in obj.attrs.items():
                out[f"{name}@{a}"] = v
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        visit("/", f)
        f.visititems(visit)
    return out


def _close(a, b, key):
    """Floats within 1e-12 relative (of the array's scale for values near zero, e.g.
    gradients), everything else equal."""
    if a.dtype.kind == "f":
        big = float(np.nanmax(np.abs(a))) if a.size else 1.0
        scale = np.maximum(np.abs(a), 1e-3 * max(1.0, big))
        ok = (np.abs(a - b) <= 1e-12 * scale) | (a == b) | (np.isnan(a) & np.isnan(b))
        assert np.all(ok), (key, np.max(np.abs(a - b) / scale))
    else:
        assert np.array_equal(a, b), key


def _data(n, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((400, n)) @ rng.standard_normal((n, n))


@pytest.mark.parametrize("kw", [
    dict(max_order=7, top=5),
    dict(max_order=6, top=3, store_all_max=10, bias_correct=True, units="bits",
         gradient=True),
    dict(max_order=5, top=4, target="x2", store_all_max=12),
    dict(min_order=4, max_order=8, top=100, estimator="gauss"),
])
@pytest.mark.parametrize("seed", [11, 12])
def test_tiny_path_writes_the_kernels_oinfo_h5(tmp_path, monkeypatch, kw, seed):
    """Same job, both paths: every dataset and attribute of OINFO.h5 has the same
    shape and dtype; floats within 1e-12 relative; counts, histogram counts and the
    top-K multiplets (sets and order) identical, on data whose O values are nowhere
    near a tie or a bin edge (checked)."""
    x = _data(8, seed)
    names = [f"x{i}" for i in range(8)]
    files, results = {}, {}
    for label, limit in (("kernel", -1), ("tiny", TINY)):
        monkeypatch.setattr(tiny, "TINY_JOB_MULTIPLETS", limit)
        results[label] = compute_oinfo(x, names, scheduler="local", **kw)
        results[label].write(tmp_path / f"{label}.h5")
        files[label] = _h5_items(tmp_path / f"{label}.h5")
    # the data has no near-ties (else the last bit decides the top-K order); on the
    # histogram's edges lie only the pilot's extreme multiplets (hist_ranges puts its
    # min and max on edges 16 and 48 by construction): their bin is the last bit's
    # choice, for the kernel too, so those (at most 2 per order) may move by one bin
    full = compute_oinfo(x, names, **dict(kw, store_all_max=10 ** 6, gradient=False,
                                         top=0)).orders
    on_edge = {}
    for k, r in full.items():
        o = np.sort(r.oinfo)
        assert np.all(np.diff(o) > 1e-9 * np.abs(o[1:])), k
        edges = results["kernel"].orders[k].hist_edges
        near = np.abs(o[:, None] - edges[None, :]) <= 1e-12 * np.abs(o).max()
        on_edge[k] = int(near.any(axis=1).sum())
        assert on_edge[k] <= 2, k
    a, b = files["kernel"], files["tiny"]
    assert a.keys() == b.keys()
    compared = 0
    for key, va in a.items():
        if key.endswith(("@seconds", "@engine_seconds", "@created", "@command")):
            continue
        va_, vb_ = np.asarray(va), np.asarray(b[key])
        assert va_.shape == vb_.shape and va_.dtype == vb_.dtype, key
        if key.endswith("hist_counts"):
            continue  # below, order by order
        if va_.dtype.names:  # the summary table: field by field
            for fld in va_.dtype.names:
                _close(va_[fld], vb_[fld], f"{key}.{fld}")
        else:
            _close(va_, vb_, key)
        compared += 1
    assert compared > 20
    for k, rk in results["kernel"].orders.items():
        rt = results["tiny"].orders[k]
        np.testing.assert_array_equal(rk.multiplets, rt.multiplets)  # top-K: sets, order
        d = np.cumsum(rk.hist_counts - rt.hist_counts)  # multiplets moved across edges
        assert d[-1] == 0 and np.abs(d).max() <= on_edge[k], (k, rk.hist_counts,
                                                               rt.hist_counts)
        assert np.abs(rk.hist_counts - rt.hist_counts).sum() <= 2 * on_edge[k]
        assert (rk.n_multiplets, rk.n_synergistic, rk.n_redundant) == (
            rt.n_multiplets, rt.n_synergistic, rt.n_redundant)


def test_tiny_path_matches_the_slogdet_reference(monkeypatch):
    """TC and DTC within 1e-12 relative of slogdet; O = TC - DTC within 1e-12 of
    |TC| + |DTC| (relative to O itself the subtraction loses digits near O = 0, for
    the kernel as much: both ~5e-12 here at |O| = 1.4e-5)."""
    n = 9
    x = _data(n, 3)
    r = correlation_matrix(x, "gc")
    refs = {k: np.array([reference_oinfo(r, s) for s in itertools.combinations(range(n), k)])
            for k in range(3, n + 1)}
    worst = {}
    for label, limit in (("kernel", -1), ("tiny", TINY)):
        monkeypatch.setattr(tiny, "TINY_JOB_MULTIPLETS", limit)
        res = compute_oinfo(x, [f"x{i}" for i in range(n)], max_order=n)
        w = np.zeros(3)
        for k, ref in refs.items():
            o = res.orders[k]
            assert o.complete
            assert [tuple(s) for s in o.multiplets] == list(itertools.combinations(range(n), k))
            size = np.abs(ref[:, 1]) + np.abs(ref[:, 2])
            w = np.maximum(w, [np.max(np.abs(o.oinfo - ref[:, 0]) / size),
                               np.max(np.abs(o.tc - ref[:, 1]) / np.abs(ref[:, 1])),
                               np.max(np.abs(o.dtc - ref[:, 2]) / np.abs(ref[:, 2]))])
            assert o.mean == pytest.approx(math.fsum(ref[:, 0]) / len(ref), rel=1e-12)
        worst[label] = w
    assert np.all(worst["tiny"] < 1e-12), worst
    assert np.all(worst["tiny"] < 10 * worst["kernel"] + 1e-15), worst


def test_the_path_is_a_function_of_the_job_only(monkeypatch, caplog):
    """Whatever the scheduler and number of workers, a tiny job takes the tiny path
    (same bits, no cluster); one multiplet more than the threshold takes the kernel;
    bootstrap and permutations always take the kernel."""
    n = 7
    x = _data(n, 5)
    names = [f"x{i}" for i in range(n)]
    total = sum(math.comb(n, k) for k in range(3, n + 1))
    monkeypatch.setattr(tiny, "TINY_JOB_MULTIPLETS", total)
    runs = []
    for kw in (dict(), dict(n_workers=1), dict(n_workers=2), dict(scheduler="local"),
               dict(scheduler="local", n_workers=1)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hpcneuro"):
            runs.append(compute_oinfo(x, names, max_order=n, **kw))
        assert f"tiny job ({total} multiplets)" in caplog.text, kw
        assert runs[-1].attrs["n_workers"] == 0
    for r in runs[1:]:
        for k in range(3, n + 1):
            np.testing.assert_array_equal(r.orders[k].oinfo, runs[0].orders[k].oinfo)
            np.testing.assert_array_equal(r.orders[k].hist_counts,
                                          runs[0].orders[k].hist_counts)
    for limit, kw in ((total - 1, {}), (total, dict(bootstrap=2)),
                      (total, dict(permutations=3))):
        monkeypatch.setattr(tiny, "TINY_JOB_MULTIPLETS", limit)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hpcneuro"):
            compute_oinfo(x, names, max_order=n, **kw)
        assert "tiny job" not in caplog.text, (limit, kw)


def test_oinfo_on_a_6_column_table_never_imports_numba(tmp_path):
    """The command end to end on a 6-column CSV: numba (and its JIT cache), pandas and
    Dask are never imported; the result is the kernel's within 1e-12 relative."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 6)) + rng.standard_normal((200, 1))
    csv = tmp_path / "t.csv"
    np.savetxt(csv, x, delimiter=",", header=",".join(f"c{i}" for i in range(6)),
               comments="", fmt="%.17g")
    code = ("import sys\nfrom hpcneuro.cli import _run, build_parser\n"
            "args = build_parser().parse_args(['oinfo', sys.argv[1], '-o', sys.argv[2]])\n"
            "status = _run(args)\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numba', 'llvmlite', 'pandas', 'dask', 'distributed'})\n"
            "print('STATUS', status, 'HEAVY', heavy)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", code, str(csv), str(tmp_path / "o.h5")],
                       capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "HEAVY []" in p.stdout and "tiny job (41 multiplets)" in p.stderr, p.stdout
    res = OInfoResult.read(tmp_path / "o.h5")
    ref = compute_oinfo(x, [f"c{i}" for i in range(6)])  # the kernel (conftest)
    for k in (3, 4, 5):
        np.testing.assert_allclose(res.orders[k].oinfo, ref.orders[k].oinfo, rtol=1e-12)
        np.testing.assert_array_equal(res.orders[k].multiplets, ref.orders[k].multiplets)
