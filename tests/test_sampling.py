"""Samplers: every method deterministic by (seed, index), right marginals and strata,
Sobol' equal to scipy's, correlated ensembles on target, every validation message."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats
from scipy.stats import qmc

from hpcneuro import config as configuration
from hpcneuro.errors import ConfigError
from hpcneuro.sampling import (
    GaussianCopula,
    Sampler,
    lhs_round_keys,
    permute_index,
    spearman_to_pearson,
    to_physical,
    unit_uniform,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
NAMES = ["gnabar_hh", "gkbar_hh", "gl_hh", "el_hh", "g_pas"]  # demo's 5 parameters
LOG_COLUMNS = [2, 4]  # gl_hh and g_pas are log scale


def validate(sampling: dict, base_dir: Path = ROOT / "configs", seed: int | None = None) -> dict:
    """The demo config with this sampling section, validated and resolved."""
    raw = copy.deepcopy(DEMO)
    raw["sampling"] = copy.deepcopy(sampling)
    if seed is not None:
        raw["seed"] = seed
    return configuration.validate(raw, base_dir)


def error_of(sampling: dict, base_dir: Path = ROOT / "configs") -> str:
    with pytest.raises(ConfigError) as info:
        validate(sampling, base_dir)
    return str(info.value)


def write_table(path: Path, n: int = 50, seed: int = 0) -> np.ndarray:
    """A CSV with the parameters in shuffled column order plus a text column; returns
    the values (n, P) in parameter order."""
    cfg = validate({"method": "uniform", "n_samples": n})
    values = Sampler(dict(cfg, seed=seed)).sample(np.arange(n))
    order = [3, 0, 4, 2, 1]
    lines = ["cell," + ",".join(NAMES[j] for j in order)]
    for r in range(n):
        lines.append(f"c{r}," + ",".join(repr(float(values[r, j])) for j in order))
    path.write_text("\n".join(lines) + "\n")
    return values


MODULES = [{"parameters": ["gnabar_hh", "gkbar_hh", "gl_hh"], "rho": 0.6},
           {"parameters": ["el_hh", "g_pas"], "rho": -0.4}]
CORRELATION = [[1.0, 0.5, -0.3, 0.0, 0.2],
               [0.5, 1.0, 0.0, 0.4, 0.0],
               [-0.3, 0.0, 1.0, 0.0, 0.0],
               [0.0, 0.4, 0.0, 1.0, -0.5],
               [0.2, 0.0, 0.0, -0.5, 1.0]]

METHODS = {
    "uniform": {"method": "uniform", "n_samples": 300},
    "sobol": {"method": "sobol", "n_samples": 300},
    "lhs": {"method": "lhs", "n_samples": 300},
    "grid": {"method": "grid", "points_per_axis": 3},
    "uniform+modules": {"method": "uniform", "n_samples": 300, "modules": MODULES},
    "sobol+correlation": {"method": "sobol", "n_samples": 300, "correlation": CORRELATION},
    "lhs+modules": {"method": "lhs", "n_samples": 300, "modules": MODULES},
}


@pytest.fixture
def table_cfg(tmp_path) -> dict:
    write_table(tmp_path / "params.csv", 80)
    return validate({"method": "table", "table": "params.csv"}, tmp_path)


def all_configs(table_cfg: dict) -> dict[str, dict]:
    cfgs = {name: validate(s) for name, s in METHODS.items()}
    cfgs["table"] = table_cfg
    return cfgs


# --- determinism by index ---------------------------------------------------------------

def test_every_method_is_a_function_of_seed_and_index(table_cfg):
    rng = np.random.default_rng(0)
    for name, cfg in all_configs(table_cfg).items():
        sampler = Sampler(cfg)
        n = sampler.n_samples
        whole = sampler.sample(np.arange(n))
        assert whole.shape == (n, 5) and whole.dtype == np.float64, name
        perm = rng.permutation(n)
        np.testing.assert_array_equal(sampler.sample(perm), whole[perm], err_msg=name)
        # uneven blocks, single indices, and a fresh sampler give the same bits
        cuts = np.sort(rng.choice(np.arange(1, n), size=9, replace=False))
        blocks = np.split(perm, cuts)
        again = Sampler(copy.deepcopy(cfg))
        got = np.concatenate([again.sample(b) for b in blocks])
        np.testing.assert_array_equal(got, whole[perm], err_msg=name)
        for i in (0, n - 1, n // 3):
            np.testing.assert_array_equal(sampler.sample(np.array([i])), whole[[i]])
        assert sampler.sample(np.array([], dtype=np.int64)).shape == (0, 5)
        assert np.unique(whole, axis=0).shape[0] == n, f"{name}: repeated rows"


def test_seed_changes_random_methods_only(table_cfg):
    for name, sampling in METHODS.items():
        a = Sampler(validate(sampling, seed=1)).sample(np.arange(50))
        b = Sampler(validate(sampling, seed=2)).sample(np.arange(50))
        if name == "grid":
            np.testing.assert_array_equal(a, b)
        else:
            assert not np.any(a == b), name
    # the whole 64-bit range works; beyond it a seed would alias a smaller one (2**64 + 3
    # is 3 to the hash), so it is refused rather than silently taken modulo 2**64
    for seed in (0, 2 ** 64 - 1):
        Sampler(validate(METHODS["sobol"], seed=seed)).sample(np.arange(4))
        Sampler(validate(METHODS["lhs"], seed=seed)).sample(np.arange(4))
    for seed in (-5, 2 ** 64, 2 ** 70 + 3):
        with pytest.raises(ConfigError, match=r"seed: must be in 0 \.\. 2\*\*64 - 1"):
            validate(METHODS["lhs"], seed=seed)


def test_indices_out_of_range_or_not_integers_are_refused():
    sampler = Sampler(validate(METHODS["uniform"]))
    with pytest.raises(IndexError, match=r"in \[0, 300\) \(got 0..300\)"):
        sampler.sample(np.array([0, 300]))
    with pytest.raises(IndexError):
        sampler.sample(np.array([-1]))
    with pytest.raises(ValueError, match="1-D integer array"):
        sampler.sample(np.array([0.5]))


MPI_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from mpi4py import MPI
    from hpcneuro.sampling import Sampler

    comm = MPI.COMM_WORLD
    cfgs = json.load(open(sys.argv[1]))
    out = {}
    for name, cfg in cfgs.items():
        sampler = Sampler(cfg)
        n = sampler.n_samples
        order = np.random.default_rng(1).permutation(n)
        blocks = np.array_split(order, 13)
        mine = [b for k, b in enumerate(blocks) if k % comm.size == comm.rank]
        parts = comm.gather([(b, sampler.sample(b)) for b in mine], root=0)
        if comm.rank == 0:
            full = np.full((n, len(cfg["parameters"])), np.nan)
            for rank_parts in parts:
                for b, values in rank_parts:
                    full[b] = values
            out[name] = full
    if comm.rank == 0:
        np.savez(sys.argv[2], **out)
""")


@pytest.mark.requires_mpi
def test_two_mpi_ranks_sampling_halves_equal_a_serial_run(tmp_path, table_cfg):
    cfgs = all_configs(table_cfg)
    (tmp_path / "cfgs.json").write_text(json.dumps(cfgs))
    (tmp_path / "gather.py").write_text(MPI_SCRIPT)
    proc = subprocess.run(["mpiexec", "-n", "2", sys.executable, str(tmp_path / "gather.py"),
                           str(tmp_path / "cfgs.json"), str(tmp_path / "out.npz")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "out.npz")
    for name, cfg in cfgs.items():
        serial = Sampler(cfg).sample(np.arange(cfg["sampling"]["n_samples"]))
        np.testing.assert_array_equal(got[name], serial, err_msg=name)


# --- marginals ------------------------------------------------------------------------------

def test_uniform_stays_in_bounds_and_is_uniform_in_linear_or_log_space():
    cfg = validate({"method": "uniform", "n_samples": 20000})
    x = Sampler(cfg).sample(np.arange(20000))
    for j, p in enumerate(cfg["parameters"]):
        assert np.all((x[:, j] >= p["low"]) & (x[:, j] <= p["high"])), p["name"]
        if p["scale"] == "log":
            u = (np.log(x[:, j]) - np.log(p["low"])) / (np.log(p["high"]) - np.log(p["low"]))
        else:
            u = (x[:, j] - p["low"]) / (p["high"] - p["low"])
        assert stats.kstest(u, "uniform").pvalue > 1e-3, p["name"]
    assert [p["scale"] == "log" for p in cfg["parameters"]] == [j in LOG_COLUMNS
                                                                for j in range(5)]
    # independent across parameters and across neighbouring indices
    r = np.corrcoef(np.column_stack([x, np.roll(x, 1, axis=0)]), rowvar=False)
    assert np.max(np.abs(r - np.eye(10))) < 0.03


def test_unit_draws_are_open_interval_and_well_spread():
    u = unit_uniform(3, np.arange(200000), 2)
    assert 0.0 < u.min() and u.max() < 1.0
    counts = np.histogram(u[:, 0], bins=100, range=(0, 1))[0]
    assert stats.chisquare(counts).pvalue > 1e-3


def test_to_physical_maps_the_cube_corners_to_the_bounds():
    params = validate(METHODS["uniform"])["parameters"]
    x = to_physical(np.array([[0.0] * 5, [1.0] * 5, [0.5] * 5]), params)
    np.testing.assert_array_equal(x[0], [p["low"] for p in params])
    np.testing.assert_array_equal(x[1], [p["high"] for p in params])
    # log scale: the midpoint is the geometric mean
    np.testing.assert_allclose(x[2, 2], np.sqrt(params[2]["low"] * params[2]["high"]))
    np.testing.assert_allclose(x[2, 0], (params[0]["low"] + params[0]["high"]) / 2)


# --- Latin hypercube ---------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 7, 1000, 4097])
def test_lhs_hits_each_stratum_once_per_dimension(n):
    sampler = Sampler(validate({"method": "lhs", "n_samples": n}))
    u = sampler.unit(np.arange(n))
    edges = np.arange(n + 1) / n
    strata = np.searchsorted(edges, u, side="right") - 1
    for d in range(5):
        np.testing.assert_array_equal(np.sort(strata[:, d]), np.arange(n))
    if n >= 1000:  # the dimensions get different permutations, not the identity
        assert not np.array_equal(strata[:, 0], strata[:, 1])
        assert abs(stats.spearmanr(strata[:, 0], np.arange(n))[0]) < 0.1


def test_feistel_permutation_is_a_bijection_for_any_size():
    for n in (2, 3, 5, 16, 17, 64, 65, 1000):
        p = permute_index(np.arange(n), n, lhs_round_keys(11, 3))
        for c in range(3):
            np.testing.assert_array_equal(np.sort(p[:, c]), np.arange(n))


def test_lhs_keeps_strata_of_uncorrelated_parameters_under_modules():
    n = 500
    sampling = {"method": "lhs", "n_samples": n,
                "modules": [{"parameters": ["gnabar_hh", "gkbar_hh"], "rho": 0.5}]}
    u = Sampler(validate(sampling)).unit(np.arange(n))
    strata = np.searchsorted(np.arange(n + 1) / n, u, side="right") - 1
    for d in (2, 3, 4):
        np.testing.assert_array_equal(np.sort(strata[:, d]), np.arange(n))


# --- Sobol' ------------------------------------------------------------------------------------

def scipy_sobol(seed: int) -> qmc.Sobol:
    try:
        return qmc.Sobol(5, scramble=True, rng=seed)
    except TypeError:  # scipy < 1.15
        return qmc.Sobol(5, scramble=True, seed=seed)


@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_sobol_equals_scipy_scrambled_sobol(seed):
    sampler = Sampler(validate({"method": "sobol", "n_samples": 6000}, seed=seed))
    engine = scipy_sobol(seed)
    ref = engine.random_base2(12)  # points 0..4095
    np.testing.assert_array_equal(sampler.unit(np.arange(4096)), ref)
    tail = engine.random(6000 - 4096)  # points 4096..5999, continuing the sequence
    np.testing.assert_array_equal(sampler.unit(np.arange(4096, 6000)), tail)
    engine.reset().fast_forward(3001)
    np.testing.assert_array_equal(sampler.unit(np.arange(3001, 3101)), engine.random(100))
    np.testing.assert_array_equal(sampler.sample(np.arange(4096)),
                                  to_physical(ref, sampler.parameters))


def test_sobol_with_a_non_power_of_two_size_is_exact_and_says_so(caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = scipy_sobol(7).random(1000)
    with caplog.at_level("INFO", logger="hpcneuro.sampling"):
        sampler = Sampler(validate({"method": "sobol", "n_samples": 1000}, seed=7))
    assert "not a power of 2" in caplog.text
    np.testing.assert_array_equal(sampler.unit(np.arange(1000)), ref)


# --- grid ----------------------------------------------------------------------------------------

def test_grid_covers_the_product_in_c_order():
    cfg = validate({"method": "grid", "points_per_axis": 3})
    assert cfg["sampling"]["n_samples"] == 3 ** 5  # filled in
    x = Sampler(cfg).sample(np.arange(243))
    assert np.unique(x, axis=0).shape[0] == 243
    for j, p in enumerate(cfg["parameters"]):
        mid = (np.sqrt(p["low"] * p["high"]) if p["scale"] == "log"
               else (p["low"] + p["high"]) / 2)
        levels = np.unique(x[:, j])
        assert levels[0] == p["low"] and levels[2] == p["high"]
        np.testing.assert_allclose(levels[1], mid)
        assert np.all(np.bincount(np.searchsorted(levels, x[:, j])) == 81)
    # last parameter varies fastest
    assert x[1, 4] > x[0, 4] and np.array_equal(x[1, :4], x[0, :4])
    assert x[3, 3] > x[0, 3] and x[3, 4] == x[0, 4]
    # a matching n_samples is accepted
    assert validate({"method": "grid", "points_per_axis": 2, "n_samples": 32})


# --- table -----------------------------------------------------------------------------------------

def test_table_rows_come_back_exactly_in_parameter_order(tmp_path):
    values = write_table(tmp_path / "params.csv", 40)
    cfg = validate({"method": "table", "table": "params.csv"}, tmp_path)
    assert cfg["sampling"]["n_samples"] == 40
    assert cfg["sampling"]["table"] == str((tmp_path / "params.csv").resolve())
    sampler = Sampler(cfg)
    np.testing.assert_array_equal(sampler.sample(np.arange(40)), values)
    np.testing.assert_array_equal(sampler.sample(np.array([39, 2])), values[[39, 2]])
    # fewer samples than rows: the first rows
    cfg = validate({"method": "table", "table": "params.csv", "n_samples": 10}, tmp_path)
    np.testing.assert_array_equal(Sampler(cfg).sample(np.arange(10)), values[:10])
    # an unnamed .npy with one column per parameter, in parameter order
    np.save(tmp_path / "params.npy", values)
    cfg = validate({"method": "table", "table": str(tmp_path / "params.npy")})
    np.testing.assert_array_equal(Sampler(cfg).sample(np.arange(40)), values)
    # an HDF5 dataset with a names attribute, extra columns ignored
    import h5py

    with h5py.File(tmp_path / "t.h5", "w") as f:
        dset = f.create_dataset("runs/params", data=np.column_stack([values[:, ::-1],
                                                                     np.zeros(40)]))
        dset.attrs["names"] = NAMES[::-1] + ["other"]
    cfg = validate({"method": "table", "table": "t.h5:/runs/params"}, tmp_path)
    assert cfg["sampling"]["table"] == f"{(tmp_path / 't.h5').resolve()}:/runs/params"
    np.testing.assert_array_equal(Sampler(cfg).sample(np.arange(40)), values)


def test_table_errors_name_the_file_row_and_column(tmp_path):
    values = write_table(tmp_path / "params.csv", 20)
    assert error_of({"method": "table", "table": "nope.csv"}, tmp_path) == (
        f"sampling.table: file not found: {tmp_path.resolve() / 'nope.csv'} (relative paths "
        f"are read from the config's folder {tmp_path.resolve()})")
    assert error_of({"method": "table", "table": "params.csv", "n_samples": 21},
                    tmp_path) == (
        f"sampling.n_samples: is 21 but the table {tmp_path.resolve() / 'params.csv'} has "
        "only 20 rows")
    # a missing column
    text = (tmp_path / "params.csv").read_text().replace("g_pas", "gpas")
    (tmp_path / "renamed.csv").write_text(text)
    msg = error_of({"method": "table", "table": "renamed.csv"}, tmp_path)
    assert msg.startswith(f"sampling.table: cannot use {tmp_path.resolve() / 'renamed.csv'}: ")
    assert "has no column(s) g_pas; its columns: el_hh, gnabar_hh, gpas, gl_hh, gkbar_hh (name " \
        "one column per parameter, or give an unnamed table with exactly 5 columns in " \
        "parameter order)" in msg
    # a value out of bounds: row and column named
    bad = values.copy()
    bad[7, 1] = 1.0  # gkbar_hh in [0.012, 0.072]
    np.save(tmp_path / "bad.npy", bad)
    spec = tmp_path.resolve() / "bad.npy"
    assert error_of({"method": "table", "table": "bad.npy"}, tmp_path) == (
        "sampling.table: row 7 (counting data rows from 0), column 'gkbar_hh': value 1.0 is "
        f"outside [0.012, 0.072] (parameters[1].low/high); 1 row(s) of {spec} have such "
        "values")
    # ... unless that row is not used
    assert validate({"method": "table", "table": "bad.npy", "n_samples": 7}, tmp_path)
    bad[3, 4] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    assert error_of({"method": "table", "table": "bad.npy"}, tmp_path).startswith(
        "sampling.table: row 3 (counting data rows from 0), column 'g_pas': value nan is "
        "not a finite number")
    np.save(tmp_path / "narrow.npy", values[:, :3])
    assert "has no column(s) gnabar_hh, gkbar_hh, gl_hh, el_hh, g_pas; its columns: x0, x1, " \
        "x2" in error_of({"method": "table", "table": "narrow.npy"}, tmp_path)
    (tmp_path / "empty.csv").write_text(",".join(NAMES) + "\n")
    assert error_of({"method": "table", "table": "empty.csv"}, tmp_path) == (
        f"sampling.table: {tmp_path.resolve() / 'empty.csv'} has no rows")


# --- correlated ensembles --------------------------------------------------------------------

def spearman(x: np.ndarray) -> np.ndarray:
    return stats.spearmanr(x)[0]


@pytest.mark.parametrize("method", ["uniform", "sobol", "lhs"])
def test_correlation_matrix_hits_its_rank_correlations(method):
    cfg = validate({"method": method, "n_samples": 20000, "correlation": CORRELATION})
    x = Sampler(cfg).sample(np.arange(20000))
    np.testing.assert_allclose(spearman(x), CORRELATION, atol=0.03)
    for j, p in enumerate(cfg["parameters"]):  # marginals unchanged
        assert np.all((x[:, j] >= p["low"]) & (x[:, j] <= p["high"]))


@pytest.mark.parametrize("method", ["uniform", "sobol", "lhs"])
def test_modules_give_a_block_rank_correlation(method):
    cfg = validate({"method": method, "n_samples": 20000, "modules": MODULES})
    x = Sampler(cfg).sample(np.arange(20000))
    target = np.eye(5)
    target[np.ix_([0, 1, 2], [0, 1, 2])] = 0.6
    target[np.ix_([3, 4], [3, 4])] = -0.4
    np.fill_diagonal(target, 1.0)
    np.testing.assert_allclose(spearman(x), target, atol=0.03)
    # log-scale marginal still log-uniform after the copula
    p = cfg["parameters"][2]
    u = (np.log(x[:, 2]) - np.log(p["low"])) / (np.log(p["high"]) - np.log(p["low"]))
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_copula_leaves_uncorrelated_columns_untouched_and_converts_spearman():
    np.testing.assert_allclose(spearman_to_pearson(0.5), 2 * np.sin(np.pi / 12))
    assert np.all(np.diag(spearman_to_pearson(np.eye(3))) == 1.0)
    c = np.eye(3)
    c[0, 1] = c[1, 0] = 0.3
    u = unit_uniform(1, np.arange(10), 3)
    out = GaussianCopula(c).apply(u)
    np.testing.assert_array_equal(out[:, 2], u[:, 2])
    np.testing.assert_allclose(out[:, 0], u[:, 0], rtol=1e-12)  # Cholesky row 0 is (1, 0)
    assert not np.allclose(out[:, 1], u[:, 1])


# --- validation messages -----------------------------------------------------------------------

NOT_PD = [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]


def padded(m: list[list[float]]) -> list[list[float]]:
    """A 3 x 3 block in a 5 x 5 identity."""
    out = np.eye(5)
    out[:3, :3] = m
    return out.tolist()


EQUI_NEG = padded([[1.0, -0.49, -0.49], [-0.49, 1.0, -0.49], [-0.49, -0.49, 1.0]])
ASYM = copy.deepcopy(CORRELATION)
ASYM[3][1] = 0.35
ROW_SHORT = copy.deepcopy(CORRELATION)
ROW_SHORT[2] = ROW_SHORT[2][:4]
DIAG = copy.deepcopy(CORRELATION)
DIAG[1][1] = 0.9
BIG = copy.deepcopy(CORRELATION)
BIG[0][4] = BIG[4][0] = 1.0

KNOWN = "known: gnabar_hh, gkbar_hh, gl_hh, el_hh, g_pas"

CASES = [
    ({"method": "uniform", "n_samples": 10, "points_per_axis": 4},
     "sampling.points_per_axis: only applies to method grid (method is uniform); remove it "
     "or set method: grid"),
    ({"method": "lhs", "n_samples": 10, "table": "x.csv"},
     "sampling.table: only applies to method table (method is lhs); remove it or set "
     "method: table"),
    ({"method": "grid", "points_per_axis": 3, "correlation": CORRELATION},
     "sampling.correlation: not available with method grid (a grid's points are fixed); use "
     "method uniform, sobol or lhs for correlated samples"),
    ({"method": "table", "table": "x.csv", "modules": MODULES},
     "sampling.modules: not available with method table (table rows are used as given); "
     "use method uniform, sobol or lhs for correlated samples"),
    ({"method": "uniform", "n_samples": 10, "correlation": CORRELATION, "modules": MODULES},
     "sampling.modules: give either correlation (the whole matrix) or modules, not both"),
    ({"method": "uniform"},
     "sampling.n_samples: is required for method uniform (the number of models to draw)"),
    ({"method": "lhs"},
     "sampling.n_samples: is required for method lhs (the number of models to draw)"),
    ({"method": "sobol", "n_samples": 0}, "sampling.n_samples: must be >= 1 (got 0)"),
    ({"method": "sobol", "n_samples": 2 ** 30 + 1},
     "sampling.n_samples: must be <= 2**30 = 1073741824 for method sobol (got 1073741825)"),
    ({"method": "grid"},
     "sampling.points_per_axis: is required for method grid (points along every parameter; "
     "n_samples = points_per_axis ** P)"),
    ({"method": "grid", "points_per_axis": 3, "n_samples": 100},
     "sampling.n_samples: must equal points_per_axis ** P = 3**5 = 243 for method grid "
     "(got 100); leave it out to have it filled in"),
    ({"method": "grid", "points_per_axis": 10 ** 4},
     "sampling.points_per_axis: 10000 points on 5 parameters make 10000**5 = "
     "100000000000000000000 models: far too many"),
    ({"method": "grid", "points_per_axis": 1},
     "sampling.points_per_axis: must be >= 2 (got 1)"),
    ({"method": "table"},
     "sampling.table: is required for method table (a CSV/TSV/.npy file or FILE.h5:/dataset "
     "with one column per parameter: gnabar_hh, gkbar_hh, gl_hh, el_hh, g_pas)"),
    ({"method": "uniform", "n_samples": 10, "correlation": CORRELATION[:4]},
     "sampling.correlation: must be a 5 x 5 matrix, one row and column per parameter "
     "(gnabar_hh, gkbar_hh, gl_hh, el_hh, g_pas); got 4 rows"),
    ({"method": "uniform", "n_samples": 10, "correlation": ROW_SHORT},
     "sampling.correlation[2]: must have 5 entries, one per parameter (gnabar_hh, gkbar_hh, "
     "gl_hh, el_hh, g_pas); got 4"),
    ({"method": "uniform", "n_samples": 10, "correlation": DIAG},
     "sampling.correlation[1][1]: diagonal entries must be 1 (got 0.9)"),
    ({"method": "uniform", "n_samples": 10, "correlation": BIG},
     "sampling.correlation[0][4]: off-diagonal rank correlations must be in (-1, 1) "
     "(got 1.0)"),
    ({"method": "uniform", "n_samples": 10, "correlation": ASYM},
     "sampling.correlation[3][1]: must equal sampling.correlation[1][3] = 0.4: the matrix "
     "must be symmetric (got 0.35)"),
    ({"method": "uniform", "n_samples": 10, "correlation": padded(NOT_PD)},
     "sampling.correlation: is not positive definite (smallest eigenvalue -0.8): no joint "
     "distribution has these rank correlations; weaken the strongest ones"),
    ({"method": "uniform", "n_samples": 10, "correlation": EQUI_NEG},
     "sampling.correlation: the Pearson matrix 2 sin(pi rho / 6) that gives these rank "
     "correlations under a Gaussian copula is not positive definite (smallest eigenvalue "
     "-0.015); weaken the strongest correlations"),
    ({"method": "uniform", "n_samples": 10,
      "modules": [{"parameters": ["gnabar_hh", "gK"], "rho": 0.5}]},
     f"sampling.modules[0].parameters[1]: unknown parameter 'gK'; {KNOWN}"),
    ({"method": "uniform", "n_samples": 10,
      "modules": [{"parameters": ["gl_hh", "gl_hh"], "rho": 0.5}]},
     "sampling.modules[0].parameters[1]: 'gl_hh' is listed twice in this module"),
    ({"method": "uniform", "n_samples": 10,
      "modules": [{"parameters": ["gnabar_hh", "gkbar_hh"], "rho": 0.5},
                  {"parameters": ["gl_hh", "gkbar_hh"], "rho": 0.2}]},
     "sampling.modules[1].parameters[1]: 'gkbar_hh' is already in sampling.modules[0]; a "
     "parameter belongs to at most one module"),
    ({"method": "sobol", "n_samples": 10,
      "modules": [{"parameters": ["gnabar_hh", "gkbar_hh"], "rho": 1.0}]},
     "sampling.modules[0].rho: must be in (-1, 1) (got 1.0)"),
    ({"method": "lhs", "n_samples": 10,
      "modules": [{"parameters": ["gnabar_hh", "gkbar_hh", "gl_hh"], "rho": -0.6}]},
     "sampling.modules[0].rho: is too negative for 3 parameters: a module's correlation "
     "matrix is positive definite only for rho > -0.4826 (got -0.6)"),
]


@pytest.mark.parametrize("sampling,message", CASES, ids=[c[1].split(":")[0] + f"-{i}"
                                                         for i, c in enumerate(CASES)])
def test_validation_messages(sampling, message):
    assert error_of(sampling) == message


def test_valid_correlated_configs_pass():
    validate({"method": "uniform", "n_samples": 10, "correlation": CORRELATION})
    validate({"method": "lhs", "n_samples": 10, "modules": MODULES})
    # the equicorrelated bound for 3 parameters is about -0.4826
    validate({"method": "sobol", "n_samples": 8,
              "modules": [{"parameters": ["gnabar_hh", "gkbar_hh", "gl_hh"], "rho": -0.48}]})
