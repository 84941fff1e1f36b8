"""The result objects and OINFO.h5, the one module that writes and reads that file.

OINFO.h5 layout (README "Files"):

- ``variables``: variable names (UTF-8 strings), the column order indices refer to;
- ``summary``: one row per order: order, n_multiplets, n_synergistic (O < 0),
  n_redundant (O > 0), mean, min, max, std, frac_synergistic
  (n_synergistic / n_multiplets), plus mean_ci_low, mean_ci_high,
  frac_syn_ci_low, frac_syn_ci_high with a bootstrap; it always covers every
  multiplet of the order;
- ``order_K/``: attrs ``complete`` and ``selection`` ("all" | "top" | a search's name);
  ``multiplets`` int32 (M, K) ascending within rows; ``oinfo``, ``tc``,
  ``dtc`` float64 (M,); ``hist_edges`` (65,), ``hist_counts`` int64 (66,)
  (underflow first, overflow last); optional ``ci_low``, ``ci_high``,
  ``pvalue``, ``qvalue`` (M,) and ``gradient`` (M, K); with a bootstrap,
  ``boot_mean`` and ``boot_frac_synergistic`` (B,): the order's mean O and
  fraction of synergistic multiplets in each resample (what a comparison of two
  files needs, see stats.compare);
- root attributes: the result's attrs (estimator, bias_correct, units,
  n_samples, target in targeted mode, min_order, max_order, top,
  store_all_max, bootstrap, permutations, ci_level, seed, n_units,
  n_workers, engine_seconds, seconds) and ``dropped_columns`` (comma-joined);
  provenance (:data:`PROVENANCE_ATTRS`): ``source``, ``source_sha256``,
  ``selection``, ``columns`` (JSON list), ``command``, ``hpcneuro_version``,
  ``rows_used``, ``rows_dropped``, ``rows_dropped_by_column`` (JSON object).

Storage threshold: an order whose number of multiplets is at most
``store_all_max`` (default STORE_ALL_MAX) is stored completely (every
multiplet, in lexicographic order); larger orders keep the ``top`` most
synergistic (O < 0) and ``top`` most redundant (O > 0) multiplets, exact,
sorted by ascending O.
"""
from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError

#: orders with at most this many multiplets are stored completely in OINFO.h5
STORE_ALL_MAX = 200_000
#: columns of the summary table, in file order, and their HDF5 dtypes
SUMMARY_FIELDS = (("order", "i4"), ("n_multiplets", "i8"), ("n_synergistic", "i8"),
                  ("n_redundant", "i8"), ("mean", "f8"), ("min", "f8"), ("max", "f8"),
                  ("std", "f8"), ("frac_synergistic", "f8"))
#: summary columns written when a bootstrap gave per-order intervals
SUMMARY_CI_FIELDS = (("mean_ci_low", "f8"), ("mean_ci_high", "f8"),
                     ("frac_syn_ci_low", "f8"), ("frac_syn_ci_high", "f8"))
#: per-order bootstrap distributions (B,) stored with a bootstrap: OrderStats name -> dataset
BOOT_ARRAYS = {"boot_means": "boot_mean", "boot_frac_syn": "boot_frac_synergistic"}
#: provenance root attributes (OInfoResult.provenance); JSON-encoded ones marked
PROVENANCE_ATTRS = ("source", "source_sha256", "selection", "columns", "command",
                    "hpcneuro_version", "rows_used", "rows_dropped", "rows_dropped_by_column")
_JSON_PROVENANCE = ("columns", "rows_dropped_by_column")
#: per-order arrays besides multiplets and the optional statistics
ORDER_ARRAYS = ("oinfo", "tc", "dtc", "hist_edges", "hist_counts")
#: root attribute holding OInfoResult.dropped
DROPPED_ATTR = "dropped_columns"
#: attrs that may be None in memory (not written; read back as None)
OPTIONAL_ATTRS = ("target",)


@dataclass
class OrderStats:
    """Optional statistics of one order; row i belongs to row i of the order's multiplets.

    ci_low, ci_high: (M,) bootstrap percentile interval of each row's O (level
    ``ci_level`` of the result's attrs). mean_ci: (low, high) of the order's
    mean O over all its multiplets. pvalue, qvalue: (M,) permutation p-value
    and BH-FDR q-value. gradient: (M, k) O(X) - O(X without member j), column
    j for the member in column j of the multiplets. None: not computed.
    Values in the result's units.
    """

    ci_low: np.ndarray | None = None
    ci_high: np.ndarray | None = None
    mean_ci: tuple[float, float] | None = None
    pvalue: np.ndarray | None = None
    qvalue: np.ndarray | None = None
    gradient: np.ndarray | None = None
    #: (low, high) bootstrap interval of the fraction of synergistic multiplets
    frac_syn_ci: tuple[float, float] | None = None
    #: (B,) the order's mean O / fraction synergistic in each bootstrap resample
    boot_means: np.ndarray | None = None
    boot_frac_syn: np.ndarray | None = None


#: per-row statistics arrays of OrderStats (mean_ci is per order)
ROW_STATS = ("ci_low", "ci_high", "pvalue", "qvalue", "gradient")


@dataclass
class OrderResult:
    """What is reported for one order.

    multiplets: (M, k) int indices into `variables`, ascending within a row.
    oinfo, tc, dtc: (M,) in the result's units (tc/dtc plug-in + bias split).
    mean, std, min, max, n_*: over every multiplet of the order.
    hist_edges (65,), hist_counts (66,): histogram of O over every multiplet.
    complete: True when every multiplet of the order is stored (lexicographic);
    otherwise rows are the top synergistic and redundant ones, ascending O.
    stats: optional bootstrap / permutation / gradient results per row.
    """

    order: int
    n_multiplets: int
    n_synergistic: int
    n_redundant: int
    mean: float
    std: float
    min: float
    max: float
    hist_edges: np.ndarray
    hist_counts: np.ndarray
    multiplets: np.ndarray
    oinfo: np.ndarray
    tc: np.ndarray
    dtc: np.ndarray
    complete: bool
    stats: OrderStats = field(default_factory=OrderStats)
    #: how the rows were chosen: None means "all" if complete else "top" (the
    #: exhaustive engine); a search's name ("greedy", "annealing", "beam") otherwise
    selection: str | None = None

    # shorthands for the statistics (read-only; they live in `stats`)
    ci_low = property(lambda self: self.stats.ci_low)
    ci_high = property(lambda self: self.stats.ci_high)
    mean_ci = property(lambda self: self.stats.mean_ci)
    frac_syn_ci = property(lambda self: self.stats.frac_syn_ci)
    #: n_synergistic / n_multiplets (O < 0), over every multiplet of the order
    frac_synergistic = property(
        lambda self: self.n_synergistic / self.n_multiplets if self.n_multiplets else np.nan)
    pvalue = property(lambda self: self.stats.pvalue)
    qvalue = property(lambda self: self.stats.qvalue)
    gradient = property(lambda self: self.stats.gradient)


@dataclass
class OInfoResult:
    """O-information of every multiplet of the requested orders.

    variables: names in the column order used for all indices.
    orders: {k: OrderResult}. attrs: estimator, bias_correct, units,
    n_samples, target (or None), and run facts (time, workers, units).
    dropped: constant or duplicated columns left out before the analysis.
    provenance: where the data came from (:func:`provenance`; keys
    PROVENANCE_ATTRS); ``hpcneuro_version`` and ``command`` are filled in when
    the file is written if the caller gave none.
    """

    variables: list[str]
    orders: dict[int, OrderResult]
    attrs: dict[str, Any] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def summary_rows(self) -> list[dict[str, Any]]:
        """One dict per order (ascending) with the summary table's columns, file order."""
        has_ci = any(r.stats.mean_ci is not None for r in self.orders.values())
        rows = []
        for k in sorted(self.orders):
            r = self.orders[k]
            row = {name: getattr(r, name) for name, _ in SUMMARY_FIELDS}
            if has_ci:
                lo, hi = r.stats.mean_ci if r.stats.mean_ci is not None else (np.nan, np.nan)
                flo, fhi = (r.stats.frac_syn_ci if r.stats.frac_syn_ci is not None
                            else (np.nan, np.nan))
                row.update(mean_ci_low=lo, mean_ci_high=hi, frac_syn_ci_low=flo,
                           frac_syn_ci_high=fhi)
            rows.append(row)
        return rows

    def write(self, path: str | Path) -> None:
        """Write OINFO.h5 (layout in this module's docstring and README "Files")."""
        import h5py

        from hpcneuro.outputs import write_h5_image

        with write_h5_image(path) as f:
            self.write_group(f)

    def write_group(self, f: Any) -> None:
        """Write the OINFO.h5 layout into an open h5py file or group ``f`` (so a file
        can hold several results, e.g. one per cell group in GENES.h5)."""
        import h5py

        f.create_dataset("variables", data=np.array(self.variables, dtype=object),
                         dtype=h5py.string_dtype())
        for k, v in self.attrs.items():
            if v is None:
                continue
            f.attrs[k] = v
        f.attrs["store_all_max"] = self.attrs.get("store_all_max", STORE_ALL_MAX)
        f.attrs[DROPPED_ATTR] = ",".join(self.dropped)
        prov = {**provenance(), **{k: v for k, v in self.provenance.items() if v is not None}}
        for k in PROVENANCE_ATTRS:
            if k in prov:
                f.attrs[k] = json.dumps(prov[k]) if k in _JSON_PROVENANCE else prov[k]
        rows = self.summary_rows()
        fields = list(SUMMARY_FIELDS) + (list(SUMMARY_CI_FIELDS)
                                         if rows and "mean_ci_low" in rows[0] else [])
        summ = np.zeros(len(rows), dtype=fields)
        for i, row in enumerate(rows):
            for name, _ in fields:
                summ[i][name] = row[name]
        f.create_dataset("summary", data=summ)
        for k in sorted(self.orders):
            r = self.orders[k]
            g = f.create_group(f"order_{k}")
            g.attrs["complete"] = r.complete
            g.attrs["selection"] = r.selection or ("all" if r.complete else "top")
            g.create_dataset("multiplets", data=r.multiplets.astype(np.int32).reshape(-1, k))
            for name in ORDER_ARRAYS:
                g.create_dataset(name, data=getattr(r, name))
            for name in ROW_STATS:
                val = getattr(r.stats, name)
                if val is not None:
                    g.create_dataset(name, data=val)
            for name, dataset in BOOT_ARRAYS.items():
                val = getattr(r.stats, name)
                if val is not None:
                    g.create_dataset(dataset, data=np.asarray(val, dtype=np.float64))

    @classmethod
    def read(cls, path: str | Path) -> "OInfoResult":
        """Read an OINFO.h5 written by `write`: the same variables, orders, stats, attrs."""
        import h5py

        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise UserError(f"{path}: cannot open O-information file ({exc})") from None
        with f:
            if "variables" not in f or "summary" not in f:
                raise UserError(f"{path}: not an OINFO.h5 file (no variables/summary); "
                                "write one with 'hpcneuro oinfo' or 'hpcneuro analyze'")
            try:
                return cls.read_group(f)
            except (KeyError, OSError, ValueError) as exc:
                raise UserError(f"{path}: damaged O-information file ({exc}); compute it "
                                "again with 'hpcneuro oinfo' or 'hpcneuro analyze'") from None

    @staticmethod
    def is_oinfo_file(path: str | Path) -> bool:
        """Whether ``path`` is an OINFO.h5 (what 'oinfo'/'analyze' may replace unasked)."""
        import h5py

        try:
            with h5py.File(path, "r") as f:
                return "variables" in f and "summary" in f
        except OSError:
            return False

    @classmethod
    def read_group(cls, f: Any) -> "OInfoResult":
        """Read the OINFO.h5 layout from an open h5py file or group (see write_group)."""
        variables = [v.decode() if isinstance(v, bytes) else str(v)
                     for v in f["variables"][()]]
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        dropped_text = str(attrs.pop(DROPPED_ATTR, ""))
        prov = {k: attrs.pop(k) for k in PROVENANCE_ATTRS if k in attrs}
        for k in _JSON_PROVENANCE:
            if k in prov:
                prov[k] = json.loads(prov[k])
        for name in OPTIONAL_ATTRS:
            attrs.setdefault(name, None)
        summary = f["summary"][()]
        names = summary.dtype.names
        orders: dict[int, OrderResult] = {}
        for row in summary:
            k = int(row["order"])
            g = f[f"order_{k}"]
            stats = OrderStats(**{name: g[name][()] for name in ROW_STATS if name in g})
            if "mean_ci_low" in names and not np.isnan(row["mean_ci_low"]):
                stats.mean_ci = (float(row["mean_ci_low"]), float(row["mean_ci_high"]))
            if "frac_syn_ci_low" in names and not np.isnan(row["frac_syn_ci_low"]):
                stats.frac_syn_ci = (float(row["frac_syn_ci_low"]),
                                     float(row["frac_syn_ci_high"]))
            for name, dataset in BOOT_ARRAYS.items():
                if dataset in g:
                    setattr(stats, name, g[dataset][()])
            arrays = {name: g[name][()] for name in ORDER_ARRAYS}
            orders[k] = OrderResult(
                order=k, n_multiplets=int(row["n_multiplets"]),
                n_synergistic=int(row["n_synergistic"]),
                n_redundant=int(row["n_redundant"]), mean=float(row["mean"]),
                std=float(row["std"]), min=float(row["min"]), max=float(row["max"]),
                multiplets=g["multiplets"][()].astype(np.int64).reshape(-1, k),
                complete=bool(g.attrs["complete"]), stats=stats,
                selection=str(g.attrs.get("selection", "")) or None, **arrays)
        dropped = dropped_text.split(",") if dropped_text else []
        return cls(variables=variables, orders=orders, attrs=attrs, dropped=dropped,
                   provenance=prov)

    def summary_text(self) -> str:
        """A short human table per order (values in the result's units).

        With a bootstrap, the mean O and the fraction of synergistic multiplets carry
        their intervals (level ``ci_level``); a p-value column never appears here:
        permutation p-values test against independence, see README "Statistics".
        """
        u = self.attrs.get("units", "nats")
        head = (f"O-information ({self.attrs.get('estimator')}, {u}"
                f"{', bias-corrected' if self.attrs.get('bias_correct') else ''}"
                f"{', target ' + str(self.attrs['target']) if self.attrs.get('target') else ''}"
                f"), {self.attrs.get('n_samples')} samples, {len(self.variables)} variables")
        has_ci = any(r.stats.mean_ci is not None for r in self.orders.values())
        if has_ci:
            level = float(self.attrs.get("ci_level", 0.95))
            head += (f"; [{100 * level:g}% bootstrap intervals, "
                     f"{self.attrs.get('bootstrap')} resamples]")
        mean_w, frac_w = (30, 22) if has_ci else (10, 8)
        lines = [head]
        if self.attrs.get("search", "exhaustive") != "exhaustive":
            params = ", ".join(f"{k} {self.attrs[k]}" for k in
                               ("objective", "restarts", "beam_width", "anneal_steps")
                               if k in self.attrs)
            lines.append(f"search {self.attrs['search']} ({params}): NOT exhaustive; "
                         f"{self.attrs.get('n_evaluations', 0):,} multiplets evaluated; "
                         "rows are the best found, and n, mean, min, max cover the reported "
                         "multiplets only")
        lines.append(f"{'order':>5} {'n':>14} {'synergistic':>12} {'redundant':>12} "
                     f"{'mean O':>{mean_w}} {'% syn':>{frac_w}} {'min':>10} {'max':>10}  "
                     "most synergistic | most redundant")
        for k in sorted(self.orders):
            r = self.orders[k]
            syn = red = "-"
            if len(r.oinfo):
                i = int(np.argmin(r.oinfo))
                if r.oinfo[i] < 0:
                    syn = ",".join(self.variables[j] for j in r.multiplets[i])
                i = int(np.argmax(r.oinfo))
                if r.oinfo[i] > 0:
                    red = ",".join(self.variables[j] for j in r.multiplets[i])
            mean = f"{r.mean:.4g}"
            frac = f"{100 * r.frac_synergistic:.1f}"
            if r.stats.mean_ci is not None:
                mean += f" [{r.stats.mean_ci[0]:.4g}, {r.stats.mean_ci[1]:.4g}]"
            if r.stats.frac_syn_ci is not None:
                frac += (f" [{100 * r.stats.frac_syn_ci[0]:.1f}, "
                         f"{100 * r.stats.frac_syn_ci[1]:.1f}]")
            lines.append(f"{k:>5} {r.n_multiplets:>14,} {r.n_synergistic:>12,} "
                         f"{r.n_redundant:>12,} {mean:>{mean_w}} {frac:>{frac_w}} "
                         f"{r.min:>10.4g} {r.max:>10.4g}  {syn} | {red}")
        if self.dropped:
            lines.append("dropped columns: " + ", ".join(self.dropped))
        return "\n".join(lines)


def provenance(source: str | None = None, selection: str | None = None,
               columns: list[str] | None = None, command: str | None = None,
               **rows: Any) -> dict[str, Any]:
    """The provenance record of an OINFO.h5 (:data:`PROVENANCE_ATTRS`).

    source: the analysed file (a table spec ``FILE.h5:/dataset`` hashes FILE);
    selection: e.g. "valid" (valid models only), "all" (every finished model),
    "table"; columns: the columns asked for, in order; command: the command line
    (default: this process's, ``hpcneuro ARGS`` when run as hpcneuro); rows:
    rows_used, rows_dropped, rows_dropped_by_column. Keys left None are omitted.
    """
    import hpcneuro

    if command is None:
        argv = list(sys.argv)
        if argv and (argv[0].endswith("hpcneuro") or argv[0].endswith("__main__.py")):
            argv[0] = "hpcneuro"
        command = shlex.join(argv)
    out: dict[str, Any] = {"hpcneuro_version": hpcneuro.__version__, "command": command}
    if source is not None:
        from hpcneuro.hashing import file_sha256
        from hpcneuro.tables import table_file

        out["source"] = str(source)
        path = Path(table_file(str(source)))
        if path.is_file():
            out["source_sha256"] = file_sha256(path)
    if selection is not None:
        out["selection"] = selection
    if columns is not None:
        out["columns"] = list(columns)
    out.update({k: v for k, v in rows.items() if v is not None})
    return out
