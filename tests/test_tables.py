"""Reading tables: CSV, TSV.gz, .npy, FILE.h5:/path, column selection, streaming."""
from __future__ import annotations

import gzip

import h5py
import numpy as np
import pytest

from hpcneuro import oinfo as oi
from hpcneuro.errors import UserError
from hpcneuro.oinfo import compute_oinfo
from hpcneuro.tables import read_table, stream_correlation


@pytest.fixture()
def table():
    rng = np.random.default_rng(0)
    return rng.normal(size=(50, 4)) @ rng.normal(size=(4, 4)), ["a", "b", "c", "d"]


def test_csv_round_trip(tmp_path, table):
    x, names = table
    p = tmp_path / "t.csv"
    np.savetxt(p, x, delimiter=",", header=",".join(names), comments="", fmt="%.17g")
    data, got = read_table(str(p))
    assert got == names and data.dtype == np.float64
    np.testing.assert_array_equal(data, x)
    data, got = read_table(str(p), columns=["c", "a"])
    assert got == ["c", "a"]
    np.testing.assert_array_equal(data, x[:, [2, 0]])


def _pandas_read(path, sep):
    import pandas as pd

    df = pd.read_csv(path, sep=sep, engine="c", float_precision="round_trip")
    return np.column_stack([pd.to_numeric(df.iloc[:, j]).to_numpy(np.float64)
                            for j in range(df.shape[1])])


def test_plain_csv_read_without_pandas_has_pandas_bits(tmp_path):
    """The numpy reader of plain numeric tables (start-up, issue 14) gives exactly the
    bits pandas gave: 17-digit values, exponents, denormals, integers, signs; a table
    with anything else (a NaN, a blank field, a negative zero, spaces) goes to pandas."""
    from hpcneuro.tables import _read_plain

    rng = np.random.default_rng(3)
    vals = np.concatenate([rng.normal(size=400) * 10.0 ** rng.integers(-300, 14, 400),
                           [5e-324, 2.2250738585072014e-308, 9007199254740991.0,
                            0.1, 1 / 3, 123456789012345.0]])
    tokens = [repr(float(v)) for v in vals] + ["+1.5", "1E5", "7", "-12", "0", "1.", ".5"]
    tokens += [f"{float(v):.25e}" for v in vals[:60]]  # more digits than a double holds
    tokens = tokens[: len(tokens) // 4 * 4]
    p = tmp_path / "t.csv"
    p.write_text("a,b,c,d\n" + "\n".join(",".join(tokens[i:i + 4])
                                         for i in range(0, len(tokens), 4)) + "\r\n")
    got = _read_plain(str(p), ",", False)
    assert got is not None and got.shape == (len(tokens) // 4, 4)
    want = _pandas_read(p, ",")
    assert np.array_equal(got.view(np.int64), want.view(np.int64))
    data, names = read_table(str(p))
    assert names == ["a", "b", "c", "d"] and np.array_equal(data, want)
    ints = tmp_path / "i.csv"  # |value| >= 2**53 (an int64 column in pandas): pandas reads it
    ints.write_text("a,b\n1,2\n3,9007199254740993\n")
    assert _read_plain(str(ints), ",", False) is None
    assert read_table(str(ints))[0][1, 1] == _pandas_read(ints, ",")[1, 1]
    for body in ("1,nan\n2,3\n", "1,\n2,3\n", "1,-0\n2,3\n", "1, 2\n2,3\n",
                 "1,2\n\n2,3\n", "1,2,3\n2,3\n"):
        q = tmp_path / "q.csv"
        q.write_text("a,b\n" + body)
        assert _read_plain(str(q), ",", False) is None, body
    q.write_text("a,b\n1,-0\n2,3\n")
    assert np.signbit(read_table(str(q))[0][0, 1]) == np.signbit(_pandas_read(q, ",")[0, 1])


def test_tsv_gz_round_trip_skips_text_columns(tmp_path, table, caplog):
    x, names = table
    p = tmp_path / "t.tsv.gz"
    with gzip.open(p, "wt") as f:
        f.write("cell\t" + "\t".join(names) + "\n")
        for i, row in enumerate(x):
            f.write(f"c{i}\t" + "\t".join(repr(float(v)) for v in row) + "\n")
    data, got = read_table(str(p))
    assert got == names and "cell" in caplog.text
    np.testing.assert_array_equal(data, x)
    with pytest.raises(UserError, match="not numeric"):
        read_table(str(p), columns=["cell", "a"])


def test_npy_round_trip(tmp_path, table):
    x, _ = table
    p = tmp_path / "t.npy"
    np.save(p, x)
    data, got = read_table(str(p))
    assert got == ["x0", "x1", "x2", "x3"]
    np.testing.assert_array_equal(data, x)
    data, got = read_table(str(p), columns=["x3", "x1"])
    np.testing.assert_array_equal(data, x[:, [3, 1]])


def test_h5_round_trip(tmp_path, table):
    x, names = table
    p = tmp_path / "t.h5"
    with h5py.File(p, "w") as f:
        d = f.create_dataset("grp/params", data=x)
        d.attrs["names"] = names
        f.create_dataset("plain", data=x)
    data, got = read_table(f"{p}:/grp/params")
    assert got == names
    np.testing.assert_array_equal(data, x)
    data, got = read_table(f"{p}:/grp/params", columns=["d", "b"])
    np.testing.assert_array_equal(data, x[:, [3, 1]])
    data, got = read_table(f"{p}:/plain")
    assert got == ["x0", "x1", "x2", "x3"]
    with pytest.raises(UserError, match="/grp/params"):
        read_table(str(p))
    with pytest.raises(UserError, match="no dataset"):
        read_table(f"{p}:/missing")


def test_bad_specs_and_columns(tmp_path, table):
    x, names = table
    p = tmp_path / "t.csv"
    np.savetxt(p, x, delimiter=",", header=",".join(names), comments="")
    with pytest.raises(UserError, match="unknown column.*zz.*available: a, b"):
        read_table(str(p), columns=["a", "zz"])
    with pytest.raises(UserError, match="twice"):
        read_table(str(p), columns=["a", "a"])
    with pytest.raises(UserError, match="no such file"):
        read_table(str(tmp_path / "missing.csv"))
    (tmp_path / "t.xlsx").write_text("")
    with pytest.raises(UserError, match="unknown table format"):
        read_table(str(tmp_path / "t.xlsx"))
    np.save(tmp_path / "v.npy", np.zeros(5))
    with pytest.raises(UserError, match="2-D"):
        read_table(str(tmp_path / "v.npy"))


@pytest.mark.parametrize("estimator", ["gc", "gauss"])
def test_streamed_h5_matches_in_memory(tmp_path, estimator):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 5)) @ rng.normal(size=(5, 5))
    p = tmp_path / "big.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=x, chunks=(500, 5))
    lazy, names = read_table(f"{p}:/x", max_in_memory=1000)
    assert hasattr(lazy, "compute") and lazy.shape == (3000, 5)
    cov, t = stream_correlation(lazy, estimator, chunk_rows=700)
    d = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(cov / np.outer(d, d), oi.correlation_matrix(x, estimator),
                               rtol=1e-10, atol=1e-12)
    a = compute_oinfo(lazy, names, max_order=5, estimator=estimator)
    b = compute_oinfo(x, names, max_order=5, estimator=estimator)
    for k in (3, 4, 5):
        np.testing.assert_allclose(a.orders[k].oinfo, b.orders[k].oinfo, rtol=1e-9, atol=1e-12)
