"""Parameter sampling: sample i is a pure function of (seed, i).

Any rank can therefore produce any block of samples without communication or state,
and a resumed or re-partitioned campaign draws exactly the same models:
``Sampler(cfg).sample(idx)[k] == Sampler(cfg).sample(all)[idx[k]]`` bit for bit,
whatever the blocks.

Methods (``sampling.method``):

* ``uniform``: pseudo-random, independent per parameter.
* ``sobol``: scrambled Sobol' points, exactly those of ``scipy.stats.qmc.Sobol(P,
  scramble=True, rng=seed)``; point i is computed directly from scipy's scrambled
  direction numbers (gray-code order), so any set of indices costs O(bits) per point.
* ``lhs``: Latin hypercube of ``n_samples`` strata: in dimension d, sample i lies in
  stratum pi_d(i), with pi_d a keyed pseudo-random permutation of [0, n) evaluated per
  index (a Feistel network with cycle-walking), plus a uniform jitter inside the stratum.
* ``grid``: ``points_per_axis`` points per parameter including both bounds (evenly
  spaced in linear or log space); index -> multi-index in C order (last parameter fastest).
* ``table``: rows of a table file, in physical units, used as given.
* ``mixture``: weighted components (subclusters), each with its own ranges and
  correlation/modules. The component of sample i is drawn from the counter-based hash
  (its own stream: ``u(seed, i)`` against the cumulative normalised weights); the
  sample is then drawn by that component's sampler, uniform on its own stream keyed by
  (seed, component), through its own copula, mapped to its own ranges. Sample i thus
  stays a pure function of (seed, i); ``Sampler.component(indices)`` gives the
  components (stored per sample in RESULTS.h5's ``component``).

Pseudo-random numbers come from a counter-based hash, not a stateful generator:
``u(seed, i, d) = mix(mix(key + i * G1) + (d + 1) * G2)``, where ``mix`` is the SplitMix64
finaliser (Steele, Lea & Flood 2014; the output function of Java's SplittableRandom,
which passes BigCrush), ``key`` is derived from the seed and a stream tag (uniform draws,
LHS jitter and LHS permutations use distinct streams) and G1, G2 are odd 64-bit
constants. It is a bijection of i for a fixed key, is evaluated with vectorised uint64
numpy arithmetic (no Python loop per sample), and its top 53 bits give a double in the
open interval (0, 1). Seeds are taken modulo 2**64.

Correlated ensembles (``correlation``, ``modules``, or ``correlation_from`` a GENES.h5
group, see :mod:`hpcneuro.genes.correlation`; methods uniform, sobol, lhs) use a
Gaussian copula: u -> z = Phi^-1(u) -> z L^T -> Phi(.) -> physical, with L the Cholesky
factor of the Pearson matrix 2 sin(pi rho_s / 6) that yields the requested Spearman rank
correlations rho_s. Only parameters with a non-zero correlation pass through the copula;
the others keep their sampler's values untouched (so their LHS strata and Sobol
structure are exact). In correlated dimensions LHS stratification is not preserved.

Bit-for-bit determinism: every step is elementwise on arrays whose layout does not depend
on the block (C-contiguous (n, P) or (n, m)); in particular the copula's matrix product is
written as an explicit, fixed-order sum over columns instead of a BLAS call, whose
summation order may change with the number of rows.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from hpcneuro.errors import ConfigError, UserError

log = logging.getLogger(__name__)

_MASK64 = (1 << 64) - 1
_G1 = 0x9E3779B97F4A7C15  # 2**64 / golden ratio (SplitMix64's increment), odd
_G2 = 0xD1B54A32D192ED03  # another odd constant with well-spread bits (R2 sequence)
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
# stream tags: independent key families per use of the hash
_STREAM_UNIFORM, _STREAM_LHS_JITTER, _STREAM_LHS_PERM = 1, 2, 3
_STREAM_MIXTURE_PICK, _STREAM_MIXTURE = 4, 5  # component choice; each component's draws
#: components of a mixture (RESULTS.h5 stores the component as int16)
MAX_COMPONENTS = 1000
_FEISTEL_ROUNDS = 6
#: scrambled Sobol' points per sequence with scipy's default 30-bit direction numbers
SOBOL_MAX_POINTS = 2 ** 30
_METHODS_WITH_COPULA = ("uniform", "sobol", "lhs")
#: largest campaign: one int32 row index per sample in MPI messages and the block plan,
#: and already ~0.4 TB of store at a few hundred bytes per sample
MAX_SAMPLES = 2 ** 31


# --- counter-based hashing ----------------------------------------------------------

def _mix64_int(x: int) -> int:
    """SplitMix64 finaliser on a Python int (for keys; wraps modulo 2**64)."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * _M1) & _MASK64
    x = ((x ^ (x >> 27)) * _M2) & _MASK64
    return x ^ (x >> 31)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, elementwise on uint64 arrays (arithmetic wraps modulo 2**64)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(_M1)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(_M2)
    return x ^ (x >> np.uint64(31))


def stream_key(seed: int, stream: int, sub: int = 0) -> int:
    """64-bit key of one random stream: a function of (seed mod 2**64, stream, sub)."""
    return _mix64_int(_mix64_int(_mix64_int(stream * _G2) ^ (seed & _MASK64)) + sub * _G1)


def hash_bits(key: int, indices: np.ndarray, n_dims: int) -> np.ndarray:
    """Pseudo-random uint64 words, shape (len(indices), n_dims); word (k, d) depends only
    on (key, indices[k], d)."""
    i = np.asarray(indices, dtype=np.int64).astype(np.uint64)
    h = _mix64(i * np.uint64(_G1) + np.uint64(key))                 # per sample
    d = (np.arange(1, n_dims + 1, dtype=np.uint64) * np.uint64(_G2))  # per dimension
    return _mix64(h[:, None] + d[None, :])


def bits_to_unit(bits: np.ndarray) -> np.ndarray:
    """uint64 words -> doubles in the open interval (0, 1): top 53 bits, centred."""
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53


def unit_uniform(seed: int, indices: np.ndarray, n_dims: int,
                 stream: int = _STREAM_UNIFORM) -> np.ndarray:
    """Uniform (0, 1) draws, shape (len(indices), n_dims); row k depends on (seed, indices[k])."""
    return bits_to_unit(hash_bits(stream_key(seed, stream), indices, n_dims))


# --- Latin hypercube: a keyed permutation evaluated per index ------------------------

def _feistel(x: np.ndarray, half_bits: int, round_keys: np.ndarray) -> np.ndarray:
    """Balanced Feistel network: a bijection of [0, 2**(2 * half_bits)), elementwise.

    round_keys: uint64 (R, ...) broadcastable against x after the first axis (one key
    per round and per element or column).
    """
    h = np.uint64(half_bits)
    mask = np.uint64((1 << half_bits) - 1)
    left, right = x >> h, x & mask
    for k in round_keys:
        left, right = right, left ^ (_mix64(right ^ k) & mask)
    return (left << h) | right


def _half_bits(n: int) -> int:
    """Smallest h >= 1 with 4**h >= n."""
    h = 1
    while (1 << (2 * h)) < n:
        h += 1
    return h


def permute_index(indices: np.ndarray, n: int, round_keys: np.ndarray) -> np.ndarray:
    """pi_c(indices) for pseudo-random permutations pi_c of [0, n), one per key column.

    indices: int (m,); round_keys: uint64 (R, C), column c keying permutation c.
    Returns int64 (m, C). Cycle-walking: the Feistel network permutes [0, 4**h), the
    smallest such range holding [0, n) (less than 4n long); values landing outside
    [0, n) are permuted again until they fall inside, which restricts the bijection to
    [0, n). Expected passes < 4, about 1 when n is just below a power of 4.
    """
    x = np.asarray(indices, dtype=np.int64).astype(np.uint64)
    keys = np.asarray(round_keys, dtype=np.uint64)
    if n <= 1:
        return np.zeros((x.size, keys.shape[1]), dtype=np.int64)
    half_bits = _half_bits(n)
    y = _feistel(np.repeat(x[:, None], keys.shape[1], axis=1), half_bits, keys[:, None, :])
    out = y >= np.uint64(n)
    while out.any():
        rows, cols = np.nonzero(out)
        y[rows, cols] = _feistel(y[rows, cols], half_bits, keys[:, cols])
        out[rows, cols] = y[rows, cols] >= np.uint64(n)
    return y.astype(np.int64)


def lhs_round_keys(seed: int, n_dims: int) -> np.ndarray:
    """Feistel round keys uint64 (rounds, n_dims): one permutation per dimension."""
    keys = [[_mix64_int(stream_key(seed, _STREAM_LHS_PERM, d) + r * _G2)
             for d in range(n_dims)] for r in range(_FEISTEL_ROUNDS)]
    return np.array(keys, dtype=np.uint64)


def lhs_unit(seed: int, indices: np.ndarray, n: int, n_dims: int,
             round_keys: np.ndarray | None = None) -> np.ndarray:
    """Latin hypercube draws (len(indices), n_dims) in (0, 1) over n strata per dimension.

    Sample i lies in [pi_d(i) / n, (pi_d(i) + 1) / n) in dimension d (with the float
    edges ``np.arange(n + 1) / n``): each stratum holds exactly one of samples 0..n-1.
    """
    idx = np.asarray(indices, dtype=np.int64)
    jitter = unit_uniform(seed, idx, n_dims, _STREAM_LHS_JITTER)
    if round_keys is None:
        round_keys = lhs_round_keys(seed, n_dims)
    strata = permute_index(idx, n, round_keys).astype(np.float64)
    u = (strata + jitter) / n
    # k + jitter may round up to k + 1: keep every value inside its own stratum
    lo = strata / n
    hi = np.nextafter((strata + 1.0) / n, 0.0)
    return np.minimum(np.maximum(u, lo), hi)


# --- scrambled Sobol' by index --------------------------------------------------------

def _scipy_sobol(n_dims: int, seed: int):
    from scipy.stats import qmc

    seed = seed if seed >= 0 else seed % (1 << 64)
    try:
        return qmc.Sobol(n_dims, scramble=True, rng=seed)
    except TypeError:  # scipy < 1.15 names it seed
        return qmc.Sobol(n_dims, scramble=True, seed=seed)


class SobolByIndex:
    """Point i of scipy's scrambled Sobol' sequence for any i, vectorised.

    scipy generates points in gray-code order: point i (integers) is
    ``shift XOR (XOR of sv[:, j] for every bit j set in gray(i) = i ^ (i >> 1))``,
    scaled by 2**-bits. The scrambled direction numbers ``sv`` (P, bits) and ``shift`` (P,)
    are read from scipy's engine once; tests check the result equals ``engine.random``.
    """

    def __init__(self, n_dims: int, seed: int):
        engine = _scipy_sobol(n_dims, seed)
        try:
            self.sv = np.asarray(engine._sv)
            self.shift = np.asarray(engine._shift)
            self.scale = float(engine._scale)
            self.bits = int(engine.bits)
        except AttributeError as exc:  # pragma: no cover - depends on scipy internals
            raise RuntimeError("this scipy's Sobol engine has no scrambled direction numbers "
                               f"(_sv/_shift): {exc}; pin scipy 1.9..1.17") from exc

    def unit(self, indices: np.ndarray) -> np.ndarray:
        """Points (len(indices), P) in [0, 1), equal to scipy's ``random`` bit for bit."""
        i = np.asarray(indices, dtype=np.int64)
        gray = (i ^ (i >> 1)).astype(np.uint64)
        acc = np.repeat(self.shift[None, :], i.size, axis=0)
        top = int(gray.max()).bit_length() if i.size else 0
        zero = self.sv.dtype.type(0)
        for j in range(min(top, self.bits)):
            bit = ((gray >> np.uint64(j)) & np.uint64(1)).astype(bool)
            acc ^= np.where(bit[:, None], self.sv[None, :, j], zero)
        return acc.astype(np.float64) * self.scale


# --- Gaussian copula ------------------------------------------------------------------

def spearman_to_pearson(rho_s: np.ndarray) -> np.ndarray:
    """Pearson correlation of a Gaussian pair with Spearman rank correlation rho_s."""
    r = 2.0 * np.sin(np.pi * np.asarray(rho_s, dtype=np.float64) / 6.0)
    if r.ndim == 2:
        np.fill_diagonal(r, 1.0)  # 2 sin(pi / 6) is 1 - 1 ulp in floating point
    return r


def target_correlation(sampling: dict, parameters: list[dict]) -> np.ndarray | None:
    """Requested Spearman matrix (P, P) from ``correlation``, ``modules`` or
    ``correlation_from`` (its ``matrix``, filled in by :func:`validate_sampling`); None
    if none."""
    if sampling.get("correlation") is not None:
        return np.array(sampling["correlation"], dtype=np.float64)
    if (sampling.get("correlation_from") or {}).get("matrix") is not None:
        return np.array(sampling["correlation_from"]["matrix"], dtype=np.float64)
    modules = sampling.get("modules") or []
    if not modules:
        return None
    names = [p["name"] for p in parameters]
    c = np.eye(len(names))
    for module in modules:
        ix = [names.index(n) for n in module["parameters"]]
        for a in ix:
            for b in ix:
                if a != b:
                    c[a, b] = module["rho"]
    return c


class GaussianCopula:
    """Maps independent uniforms to uniforms with given Spearman correlations.

    ``spearman`` (P, P): target rank correlations. Columns without any correlation are
    left untouched; the m correlated ones go through Phi^-1, the Cholesky factor L (m, m)
    of the matching Pearson matrix, and Phi.
    """

    def __init__(self, spearman: np.ndarray):
        off = spearman - np.diag(np.diag(spearman))
        self.columns = np.flatnonzero(np.any(off != 0.0, axis=0))
        sub = spearman_to_pearson(spearman[np.ix_(self.columns, self.columns)])
        self.factor = np.linalg.cholesky(sub) if self.columns.size else np.zeros((0, 0))

    def apply(self, u: np.ndarray) -> np.ndarray:
        """Correlated uniforms (n, P) from independent ones (n, P); a new array."""
        from scipy.special import ndtr, ndtri

        out = np.array(u, dtype=np.float64, order="C")
        if self.columns.size == 0 or out.shape[0] == 0:
            return out
        tiny = 2.0 ** -53  # Sobol' can give exactly 0: keep Phi^-1 finite
        z = ndtri(np.clip(out[:, self.columns], tiny, 1.0 - tiny))  # (n, m), C-contiguous
        y = np.empty_like(z)
        L = self.factor
        for j in range(L.shape[0]):  # fixed-order sum: identical for any number of rows
            acc = L[j, 0] * z[:, 0]
            for k in range(1, j + 1):
                acc = acc + L[j, k] * z[:, k]
            y[:, j] = acc
        out[:, self.columns] = ndtr(y)
        return out


# --- unit cube -> physical units ------------------------------------------------------

def to_physical(u: np.ndarray, parameters: list[dict]) -> np.ndarray:
    """Map unit-cube draws (n, P) to parameter values within [low, high], linear or log.

    Log-scale parameters are uniform in log(value). Results are clipped to [low, high]
    so that rounding never leaves the bounds; u = 0 and u = 1 give exactly low and high.
    """
    u = np.ascontiguousarray(u, dtype=np.float64)
    low = np.array([p["low"] for p in parameters], dtype=np.float64)
    high = np.array([p["high"] for p in parameters], dtype=np.float64)
    log = np.array([p["scale"] == "log" for p in parameters])
    lin_vals = low + u * (high - low)
    log_low = np.log(np.where(log, low, 1.0))
    log_high = np.log(np.where(log, high, 1.0))
    log_vals = np.exp(log_low + u * (log_high - log_low))
    x = np.clip(np.where(log, log_vals, lin_vals), low, high)
    # exp(log(low)) may miss low by an ulp: the cube's faces map to the bounds exactly
    return np.where(u <= 0.0, low, np.where(u >= 1.0, high, x))


# --- table files ------------------------------------------------------------------------

def resolve_table_spec(spec: str, base_dir: str | os.PathLike) -> tuple[str, Path]:
    """(spec with an absolute file path, that file); relative paths are from base_dir."""
    from hpcneuro.tables import split_h5_spec

    h5 = split_h5_spec(spec)
    file, dataset = h5 if h5 else (spec, None)
    path = Path(file).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    path = path.resolve()
    return (f"{path}:{dataset}" if dataset else str(path)), path


def read_parameter_table(spec: str, parameters: list[dict]) -> np.ndarray:
    """Table rows (T, P) in parameter order. Columns are matched by parameter name; a
    table without names (.npy, HDF5 without a ``names`` attribute) with exactly P columns
    is taken in parameter order. Raises UserError."""
    from hpcneuro.tables import UnknownColumns, read_table

    names = [p["name"] for p in parameters]
    try:
        # by name first: a parameter column that is not numeric is then named as such
        data, columns = read_table(spec, names)
    except UnknownColumns:
        data, columns = read_table(spec)
    if all(n in columns for n in names):
        data = data[:, [columns.index(n) for n in names]]
    elif columns == [f"x{j}" for j in range(len(columns))] and len(columns) == len(names):
        pass  # no names stored: columns are the parameters in order
    else:
        missing = [n for n in names if n not in columns]
        raise UserError(f"{spec} has no column(s) {', '.join(missing)}; its columns: "
                        f"{', '.join(columns[:40])}{' ...' if len(columns) > 40 else ''} "
                        "(name one column per parameter, or give an unnamed table with "
                        f"exactly {len(names)} columns in parameter order)")
    return np.ascontiguousarray(np.asarray(data, dtype=np.float64))


# --- validation -------------------------------------------------------------------------

def _check_correlation_matrix(matrix: list, names: list[str],
                              path: str = "sampling.correlation") -> None:
    """Shape, unit diagonal, range, symmetry and positive definiteness of a Spearman matrix."""
    P = len(names)
    if len(matrix) != P:
        raise ConfigError(path, f"must be a {P} x {P} matrix, one row and column per "
                          f"parameter ({', '.join(names)}); got {len(matrix)} rows")
    for i, row in enumerate(matrix):
        if len(row) != P:
            raise ConfigError(f"{path}[{i}]", f"must have {P} entries, one per parameter "
                              f"({', '.join(names)}); got {len(row)}")
    for i in range(P):
        if matrix[i][i] != 1.0:
            raise ConfigError(f"{path}[{i}][{i}]",
                              f"diagonal entries must be 1 (got {matrix[i][i]})")
    for i in range(P):
        for j in range(P):
            if i != j and not -1.0 < matrix[i][j] < 1.0:
                raise ConfigError(f"{path}[{i}][{j}]", "off-diagonal rank correlations must "
                                  f"be in (-1, 1) (got {matrix[i][j]})")
    for i in range(P):
        for j in range(i):
            if matrix[i][j] != matrix[j][i]:
                raise ConfigError(f"{path}[{i}][{j}]",
                                  f"must equal {path}[{j}][{i}] = {matrix[j][i]}: the matrix "
                                  f"must be symmetric (got {matrix[i][j]})")
    spearman = np.array(matrix, dtype=np.float64)
    smallest = float(np.linalg.eigvalsh(spearman)[0])
    if smallest <= 0.0:
        raise ConfigError(path, "is not positive definite (smallest eigenvalue "
                          f"{smallest:.3g}): no joint distribution has these rank "
                          "correlations; weaken the strongest ones")
    try:
        np.linalg.cholesky(spearman_to_pearson(spearman))
    except np.linalg.LinAlgError:
        smallest = float(np.linalg.eigvalsh(spearman_to_pearson(spearman))[0])
        raise ConfigError(path, "the Pearson matrix 2 sin(pi rho / 6) that gives these rank "
                          "correlations under a Gaussian copula is not positive definite "
                          f"(smallest eigenvalue {smallest:.3g}); weaken the strongest "
                          "correlations") from None


def _check_modules(modules: list[dict], names: list[str],
                   where: str = "sampling.modules") -> None:
    owner: dict[str, int] = {}
    for i, module in enumerate(modules):
        seen: set[str] = set()
        for j, name in enumerate(module["parameters"]):
            path = f"{where}[{i}].parameters[{j}]"
            if name not in names:
                raise ConfigError(path, f"unknown parameter {name!r}; known: "
                                  + ", ".join(names))
            if name in seen:
                raise ConfigError(path, f"{name!r} is listed twice in this module")
            if name in owner:
                raise ConfigError(path, f"{name!r} is already in {where}"
                                  f"[{owner[name]}]; a parameter belongs to at most one module")
            seen.add(name)
            owner[name] = i
        rho, m = module["rho"], len(module["parameters"])
        path = f"{where}[{i}].rho"
        if not -1.0 < rho < 1.0:
            raise ConfigError(path, f"must be in (-1, 1) (got {rho})")
        # an equicorrelated block of size m is positive definite iff r > -1 / (m - 1)
        if float(spearman_to_pearson(rho)) <= -1.0 / (m - 1):
            bound = 6.0 / math.pi * math.asin(-1.0 / (2.0 * (m - 1)))
            raise ConfigError(path, f"is too negative for {m} parameters: a module's "
                              f"correlation matrix is positive definite only for rho > "
                              f"{bound:.4f} (got {rho})")


def validate_sampling(sampling: dict, parameters: list[dict], base_dir,
                      validity: list[dict] | None = None) -> None:
    """Semantic checks of the ``sampling`` section; fills in what is implied.

    Fills ``n_samples`` for grid (points_per_axis ** P) and table (its rows, if not
    given), and makes ``table`` an absolute path (relative paths are read from
    ``base_dir``, the config's folder). Raises ConfigError naming the key path
    (``sampling.xxx``) and what was expected.
    """
    method = sampling["method"]
    names = [p["name"] for p in parameters]
    P = len(names)
    modules = sampling.get("modules") or []
    correlation = sampling.get("correlation")
    from_genes = sampling.get("correlation_from")

    # keys that belong to another method
    from hpcneuro.mcmc import options as mcmc_options

    if method != "mcmc":
        mcmc_options.check_other_method(sampling)
    if sampling.get("points_per_axis") is not None and method != "grid":
        raise ConfigError("sampling.points_per_axis", f"only applies to method grid (method "
                          f"is {method}); remove it or set method: grid")
    if sampling.get("table") is not None and method not in ("table", "mcmc"):
        raise ConfigError("sampling.table", f"only applies to method table (method is "
                          f"{method}); remove it or set method: table")
    components = sampling.get("components")
    if components is not None and method != "mixture":
        raise ConfigError("sampling.components", f"only applies to method mixture (method "
                          f"is {method}); remove it or set method: mixture")
    for key, given in (("correlation", correlation is not None), ("modules", bool(modules)),
                       ("correlation_from", from_genes is not None)):
        if given and method == "mixture":
            raise ConfigError(f"sampling.{key}", "with method mixture, give each component "
                              "its own correlation or modules (sampling.components[i])")
        if given and method not in _METHODS_WITH_COPULA:
            why = {"grid": "a grid's points are fixed", "table": "table rows are used as "
                   "given", "mcmc": "chains move by their own proposals"}[method]
            raise ConfigError(f"sampling.{key}", f"not available with method {method} "
                              f"({why}); use method uniform, sobol or lhs for correlated "
                              "samples")
    if correlation is not None and modules:
        raise ConfigError("sampling.modules", "give either correlation (the whole matrix) "
                          "or modules, not both")
    if from_genes is not None and (correlation is not None or modules):
        raise ConfigError("sampling.correlation_from", "builds the whole correlation from "
                          "genes: give it, correlation or modules, not several")

    n = sampling.get("n_samples")
    if n is not None and n < 1:
        raise ConfigError("sampling.n_samples", f"must be >= 1 (got {n})")
    if n is not None and n > MAX_SAMPLES:
        raise ConfigError("sampling.n_samples", f"{n:.3g} samples is more than one campaign "
                          f"can hold (at most {MAX_SAMPLES:.3g}, 2**31): split it into "
                          "several campaigns with different seeds")

    if method in _METHODS_WITH_COPULA:
        if n is None:
            raise ConfigError("sampling.n_samples", f"is required for method {method} "
                              "(the number of models to draw)")
        if method == "sobol" and n > SOBOL_MAX_POINTS:
            raise ConfigError("sampling.n_samples", "must be <= 2**30 = "
                              f"{SOBOL_MAX_POINTS} for method sobol (got {n})")
        if correlation is not None:
            _check_correlation_matrix(correlation, names)
        if modules:
            _check_modules(modules, names)
        if from_genes is not None:  # GENES.h5 -> sampling.correlation_from.matrix
            from hpcneuro.genes.correlation import sampling_correlation

            built = sampling_correlation(from_genes, parameters, base_dir)
            from_genes.update(genes=built["genes"], matrix=built["matrix"])
            try:
                _check_correlation_matrix(built["matrix"], names)
            except ConfigError as exc:  # pragma: no cover - the projection prevents it
                raise ConfigError("sampling.correlation_from", exc.message) from None
    elif method == "mixture":
        if n is None:
            raise ConfigError("sampling.n_samples", "is required for method mixture (the "
                              "number of models to draw)")
        if not components:
            raise ConfigError("sampling.components", "is required for method mixture: a "
                              "list of {weight, ranges, correlation | modules}")
        _check_components(components, parameters)
    elif method == "grid":
        k = sampling.get("points_per_axis")
        if k is None:
            raise ConfigError("sampling.points_per_axis", "is required for method grid "
                              "(points along every parameter; n_samples = "
                              "points_per_axis ** P)")
        if k < 2:
            raise ConfigError("sampling.points_per_axis", f"must be >= 2 (got {k})")
        total = k ** P
        if total > MAX_SAMPLES:
            raise ConfigError("sampling.points_per_axis", f"{k} points on {P} parameters "
                              f"make {k}**{P} = {total} models: far too many")
        if n is not None and n != total:
            raise ConfigError("sampling.n_samples", f"must equal points_per_axis ** P = "
                              f"{k}**{P} = {total} for method grid (got {n}); leave it out "
                              "to have it filled in")
        sampling["n_samples"] = total
    elif method == "mcmc":
        mcmc_options.validate(sampling, validity or [])
        if sampling["start"] == "table":
            spec, rows = _read_checked_table(sampling["table"], parameters, base_dir)
            _check_table_values(rows, parameters, spec)
            sampling["table"] = spec
    elif method == "table":
        spec = sampling.get("table")
        if spec is None:
            raise ConfigError("sampling.table", "is required for method table (a CSV/TSV/"
                              ".npy file or FILE.h5:/dataset with one column per parameter: "
                              + ", ".join(names) + ")")
        spec, rows = _read_checked_table(spec, parameters, base_dir)
        if n is not None and n > rows.shape[0]:
            raise ConfigError("sampling.n_samples", f"is {n} but the table {spec} has only "
                              f"{rows.shape[0]} rows")
        n = rows.shape[0] if n is None else n
        _check_table_values(rows[:n], parameters, spec)
        sampling["table"] = spec
        sampling["n_samples"] = n
    else:  # pragma: no cover - the schema restricts the choices
        raise ConfigError("sampling.method", f"unknown method {method!r}")


def _read_checked_table(spec: str, parameters: list[dict], base_dir) -> tuple[str, np.ndarray]:
    """(absolute spec, its rows in parameter order) of ``sampling.table``; ConfigError."""
    spec, path = resolve_table_spec(spec, base_dir)
    if not path.is_file():
        raise ConfigError("sampling.table", f"file not found: {path} (relative paths "
                          f"are read from the config's folder {Path(base_dir).resolve()})")
    from hpcneuro.tables import EmptyTable

    try:
        rows = read_parameter_table(spec, parameters)
    except EmptyTable:
        rows = np.empty((0, len(parameters)))
    except UserError as exc:
        raise ConfigError("sampling.table", f"cannot use {spec}: {exc}") from None
    if rows.shape[0] == 0:
        raise ConfigError("sampling.table", f"{spec} has no rows")
    return spec, rows


def _check_components(components: list[dict], parameters: list[dict]) -> None:
    """Each mixture component: ranges within the parameters' bounds, its correlation."""
    names = [p["name"] for p in parameters]
    if len(components) > MAX_COMPONENTS:
        raise ConfigError("sampling.components", f"at most {MAX_COMPONENTS} components "
                          f"(got {len(components)})")
    for c, comp in enumerate(components):
        where = f"sampling.components[{c}]"
        seen: dict[str, int] = {}
        for r, rng in enumerate(comp["ranges"]):
            path = f"{where}.ranges[{r}]"
            name = rng["parameter"]
            if name not in names:
                raise ConfigError(f"{path}.parameter", f"unknown parameter {name!r}; known: "
                                  + ", ".join(names))
            if name in seen:
                raise ConfigError(f"{path}.parameter", f"{name!r} already has a range in "
                                  f"{where}.ranges[{seen[name]}]")
            seen[name] = r
            bounds = rng["low"] is not None or rng["high"] is not None
            centred = rng["centre"] is not None or rng["width"] is not None
            if bounds and centred:
                raise ConfigError(path, "give either low/high or centre/width, not both")
            if bounds and (rng["low"] is None or rng["high"] is None):
                raise ConfigError(f"{path}.{'low' if rng['low'] is None else 'high'}",
                                  "is required with " + ("high" if rng["low"] is None
                                                         else "low"))
            if centred and (rng["centre"] is None or rng["width"] is None):
                raise ConfigError(f"{path}.{'centre' if rng['centre'] is None else 'width'}",
                                  "is required with " + ("width" if rng["centre"] is None
                                                         else "centre"))
            if not bounds and not centred:
                raise ConfigError(path, "needs low and high, or centre and width")
            low, high = component_bounds(rng)
            if not low < high:
                raise ConfigError(f"{path}.low", f"must be < high (got {low} >= {high})")
            p = parameters[names.index(name)]
            j = names.index(name)
            if low < p["low"] or high > p["high"]:
                raise ConfigError(path, f"[{low:g}, {high:g}] must lie within the "
                                  f"parameter's bounds parameters[{j}] = [{p['low']:g}, "
                                  f"{p['high']:g}]")
        if comp["correlation"] is not None and comp["modules"]:
            raise ConfigError(f"{where}.modules", "give either correlation (the whole "
                              "matrix) or modules, not both")
        if comp["correlation"] is not None:
            _check_correlation_matrix(comp["correlation"], names, f"{where}.correlation")
        if comp["modules"]:
            _check_modules(comp["modules"], names, f"{where}.modules")


def component_bounds(rng: dict) -> tuple[float, float]:
    """(low, high) of a mixture component's range entry (low/high or centre/width)."""
    if rng.get("low") is not None:
        return float(rng["low"]), float(rng["high"])
    return (float(rng["centre"]) - 0.5 * float(rng["width"]),
            float(rng["centre"]) + 0.5 * float(rng["width"]))


def component_parameters(comp: dict, parameters: list[dict]) -> list[dict]:
    """The parameters as one mixture component sees them: its own ranges."""
    own = {r["parameter"]: component_bounds(r) for r in comp["ranges"]}
    out = []
    for p in parameters:
        q = dict(p)
        if p["name"] in own:
            q["low"], q["high"] = own[p["name"]]
        out.append(q)
    return out


def _check_table_values(rows: np.ndarray, parameters: list[dict], spec: str) -> None:
    """Every used value finite and within [low, high] of its parameter."""
    low = np.array([p["low"] for p in parameters])
    high = np.array([p["high"] for p in parameters])
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(rows) | (rows < low) | (rows > high)
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        p, value = parameters[c], rows[r, c]
        what = ("is not a finite number" if not np.isfinite(value)
                else f"is outside [{p['low']}, {p['high']}]")
        raise ConfigError("sampling.table", f"row {r} (counting data rows from 0), column "
                          f"{p['name']!r}: value {value} {what} (parameters"
                          f"[{c}].low/high); {int(bad.any(axis=1).sum())} row(s) of {spec} "
                          "have such values")


# --- the sampler --------------------------------------------------------------------------

class Sampler:
    """Draws the parameters of samples by index for a validated config.

    ``n_samples`` (int): the campaign size; ``sample(indices)`` accepts any indices in
    [0, n_samples), in any order and any blocks, and returns the same rows every time.
    """

    def __init__(self, cfg: dict):
        sampling = cfg["sampling"]
        self.parameters: list[dict] = cfg["parameters"]
        self.seed: int = int(cfg["seed"])
        self.method: str = sampling["method"]
        self.n_samples: int = int(sampling["n_samples"])
        n_dims = len(self.parameters)
        self._points_per_axis: int | None = sampling.get("points_per_axis")
        self._sobol = SobolByIndex(n_dims, self.seed) if self.method == "sobol" else None
        self._lhs_keys = lhs_round_keys(self.seed, n_dims) if self.method == "lhs" else None
        self._table: np.ndarray | None = None
        if self.method == "table":
            self._table = read_parameter_table(sampling["table"], self.parameters)[
                : self.n_samples]
        self._copula: GaussianCopula | None = None
        self._components: list[tuple[list[dict], GaussianCopula | None, int]] = []
        self._cum_weights: np.ndarray | None = None
        if self.method == "mixture":
            comps = sampling["components"]
            w = np.array([c["weight"] for c in comps], dtype=np.float64)
            self._cum_weights = np.cumsum(w) / w.sum()
            for c, comp in enumerate(comps):
                target = target_correlation(comp, self.parameters)
                self._components.append((component_parameters(comp, self.parameters),
                                         GaussianCopula(target) if target is not None
                                         else None,
                                         stream_key(self.seed, _STREAM_MIXTURE, c)))
        if self.method in _METHODS_WITH_COPULA:
            target = target_correlation(sampling, self.parameters)
            if target is not None:
                self._copula = GaussianCopula(target)
        if self.method == "sobol" and self.n_samples & (self.n_samples - 1):
            log.info("sobol: n_samples=%d is not a power of 2; the points are still exact, "
                     "but Sobol' balance properties hold only for powers of 2",
                     self.n_samples)

    def unit(self, indices: np.ndarray) -> np.ndarray:
        """Unit-cube coordinates (len(indices), P) before the physical mapping (not for
        table). Includes the copula when one is configured."""
        idx = self._check(indices)
        P = len(self.parameters)
        if self.method == "uniform":
            u = unit_uniform(self.seed, idx, P)
        elif self.method == "sobol":
            u = self._sobol.unit(idx)
        elif self.method == "lhs":
            u = lhs_unit(self.seed, idx, self.n_samples, P, self._lhs_keys)
        elif self.method == "grid":
            k = self._points_per_axis
            multi = np.unravel_index(idx, (k,) * P) if idx.size else [idx] * P
            u = np.stack(multi, axis=1).astype(np.float64) / (k - 1)
        else:
            raise ValueError(f"method {self.method} has no unit-cube form")
        if self._copula is not None:
            u = self._copula.apply(u)
        return u

    def sample(self, indices: np.ndarray) -> np.ndarray:
        """Parameter values (len(indices), P) float64, in the parameters' own units."""
        if self.method == "table":
            return self._table[self._check(indices)]
        if self.method == "mixture":
            idx = self._check(indices)
            comp = self.component(idx)
            out = np.empty((idx.size, len(self.parameters)))
            for c in np.unique(comp):
                rows = np.flatnonzero(comp == c)
                params, copula, key = self._components[c]
                u = bits_to_unit(hash_bits(key, idx[rows], len(params)))
                if copula is not None:
                    u = copula.apply(u)
                out[rows] = to_physical(u, params)
            return out
        return to_physical(self.unit(indices), self.parameters)

    def component(self, indices: np.ndarray) -> np.ndarray | None:
        """(len(indices),) int16 mixture component of each sample; None if not a mixture."""
        if self.method != "mixture":
            return None
        idx = self._check(indices)
        u = bits_to_unit(hash_bits(stream_key(self.seed, _STREAM_MIXTURE_PICK), idx, 1))[:, 0]
        comp = np.searchsorted(self._cum_weights, u, side="right")
        return np.minimum(comp, len(self._components) - 1).astype(np.int16)

    def _check(self, indices: Any) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 1 or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)):
            raise ValueError(f"indices must be a 1-D integer array (got shape {idx.shape}, "
                             f"dtype {idx.dtype})")
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_samples):
            raise IndexError(f"sample indices must be in [0, {self.n_samples}) "
                             f"(got {idx.min()}..{idx.max()})")
        return idx
