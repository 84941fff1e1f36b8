"""GENES.h5: the one owner of its format (written atomically, read back whole).

Layout (``/`` root attribute ``kind = "hpcneuro genes"``, ``format_version = 1``):

- root attributes: inputs and options (``counts``, ``metadata``, ``group_by``,
  ``normalize``, ``gene_source``, ``min_detection``, ``top_variable``, ``ties``,
  ``estimator``, ``bias_correct``, ``units``, ``bootstrap``, ``shuffles``, ``ci_level``,
  ``seed``, ``hpcneuro_version``, ``command``) and ``notes`` (one line each: orientation
  detection, join report, skipped groups, left-out genes).
- ``genes``: the analysed genes (O-information variables of the pooled cells).
- ``channels/``: every channel gene kept by the detection filter (the subset analysis
  and the correlation of item 6 use these): ``symbol``, ``family``, ``subfamily``,
  ``role``, ``mechanism`` (strings, "" when none), ``detection``, ``variance``.
- ``cells/id``, ``cells/group`` (strings; group "" without ``--group-by``).
- ``expression``: float32 (cells, channels) normalised expression of ``channels/symbol``.
- ``oinfo/NAME/``: one group per analysed set of cells (``all cells`` first, then each
  group; ``/`` in a name is written ``%2F``) with exactly the OINFO.h5 layout (variables,
  summary with mean_ci_low/high when bootstrapped, order_K/...; written and read by
  ``OInfoResult.write_group``/``read_group``), attributes ``label``, ``n_cells``,
  ``left_out``. :func:`extract_oinfo` writes one as a standalone OINFO.h5.
- ``stats/``: one row per (group, order): ``group``, ``n_cells``, ``order``,
  ``n_multiplets``, ``mean``, ``ci_low``, ``ci_high``, ``frac_redundant``, ``null_mean``,
  ``null_low``, ``null_high``, ``null_frac_redundant``.
- ``subset/`` (with ``--group-by``): ``selected`` (forward order), ``forward_mean``,
  ``forward_std``, ``random`` (k, R), ``topvar``, ``topvar_genes``, ``r2``,
  ``random_r2``, ``classes``; attributes ``all_mean``, ``all_std``, ``chance``, ``k90``,
  ``cv``, ``n_cells``, ``notes``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

KIND = "hpcneuro genes"
FORMAT_VERSION = 1
STAT_FIELDS = ("n_cells", "order", "n_multiplets", "mean", "ci_low", "ci_high",
               "frac_redundant", "null_mean", "null_low", "null_high", "null_frac_redundant")
SUBSET_ARRAYS = ("forward_mean", "forward_std", "random", "topvar", "r2", "random_r2")
SUBSET_STRINGS = ("selected", "topvar_genes", "classes", "genes")
GROUP_ATTRS = ("label", "n_cells", "left_out")
SUBSET_ATTRS = ("all_mean", "all_std", "chance", "k90", "cv", "n_cells")


def h5name(label: str) -> str:
    return str(label).replace("%", "%25").replace("/", "%2F") or "%00"


def label_of(name: str) -> str:
    return "" if name == "%00" else name.replace("%2F", "/").replace("%25", "%")


def _str(h5py, f, name, values) -> None:
    f.create_dataset(name, data=np.array([str(v) for v in values], dtype=object),
                     dtype=h5py.string_dtype())


def _strings(ds) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in ds[()]]


def write_oinfo_group(result: Any, group) -> None:
    """Write an OInfoResult into an open h5py group in the OINFO.h5 layout (the
    result class's own writer, so the group is exactly what an OINFO.h5 holds)."""
    result.write_group(group)


def is_genes_file(path: str | os.PathLike) -> bool:
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return f.attrs.get("kind") == KIND
    except (OSError, ValueError):
        return False


def _open_genes(path: str | os.PathLike):
    """The open GENES.h5 at ``path`` (read-only); UserError if it is not one."""
    import h5py

    from hpcneuro.errors import UserError

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"cannot open {path}: {exc}") from None
    if f.attrs.get("kind") != KIND:
        f.close()
        raise UserError(f"{path} is not a GENES.h5 written by hpcneuro genes")
    return f


def read_channel_expression(path: str | os.PathLike) -> dict[str, Any]:
    """Only what the gene-to-conductance correlation needs, without the O-information
    groups: ``symbol``, ``mechanism`` (lists), ``groups`` (per cell), ``expression``
    (cells, channels) float64, ``normalize``. Raises UserError."""
    with _open_genes(path) as f:
        return {"symbol": _strings(f["channels/symbol"]),
                "mechanism": _strings(f["channels/mechanism"]),
                "groups": _strings(f["cells/group"]),
                "expression": np.asarray(f["expression"][()], dtype=np.float64),
                "normalize": str(f.attrs.get("normalize", ""))}


def extract_oinfo(path: str | os.PathLike, group: str, out: str | os.PathLike) -> Path:
    """Write one group's O-information as a standalone OINFO.h5 (atomic)."""
    from hpcneuro.errors import UserError
    from hpcneuro.oinfo.result import OInfoResult

    with _open_genes(path) as f:
        names = {str(g.attrs.get("label", label_of(k))): k for k, g in f["oinfo"].items()}
        if group not in names:
            raise UserError(f"{path} has no group {group!r}; groups: {', '.join(names)}")
        res = OInfoResult.read_group(f["oinfo"][names[group]])
    for k in GROUP_ATTRS:
        res.attrs.pop(k, None)
    res.write(out)  # atomic itself
    return Path(out)


@dataclass
class GenesResult:
    attrs: dict[str, Any]
    notes: list[str]
    genes: list[str]
    channels: dict[str, np.ndarray]        # symbol, family, ..., detection, variance
    cell_ids: list[str]
    cell_groups: list[str]
    expression: np.ndarray                 # (cells, channels)
    groups: list[Any] = field(default_factory=list)   # analysis.GroupResult (write side)
    stats: dict[str, np.ndarray] = field(default_factory=dict)
    subset: Any = None                     # subset.SubsetResult or dict (read side)
    oinfo: dict[str, Any] = field(default_factory=dict)  # read side: group -> OInfoResult

    # ------------------------------------------------------------------ write
    def stats_table(self) -> dict[str, np.ndarray]:
        if self.stats:
            return self.stats
        rows = [(g.name, g.n_cells, s) for g in self.groups for s in g.stats.values()]
        out = {"group": np.array([r[0] for r in rows], dtype=object)}
        out["n_cells"] = np.array([r[1] for r in rows], dtype=np.int64)
        for f in STAT_FIELDS[1:]:
            out[f] = np.array([getattr(r[2], f) for r in rows],
                              dtype=np.int64 if f in ("order", "n_multiplets") else np.float64)
        return out

    def write(self, path: str | os.PathLike) -> None:
        """Write GENES.h5 atomically (temporary name, renamed when complete)."""
        import h5py

        from hpcneuro.outputs import write_h5_image

        with write_h5_image(path) as f:
            self._write(h5py, f)

    def _write(self, h5py, f) -> None:
        f.attrs["kind"] = KIND
        f.attrs["format_version"] = FORMAT_VERSION
        for k, v in self.attrs.items():
            if v is None:
                continue
            f.attrs[k] = json.dumps(v) if isinstance(v, (list, dict)) else v
        f.attrs["notes"] = "\n".join(self.notes)
        _str(h5py, f, "genes", self.genes)
        ch = f.create_group("channels")
        for k, v in self.channels.items():
            if np.asarray(v).dtype.kind in "OUS":
                _str(h5py, ch, k, v)
            else:
                ch.create_dataset(k, data=np.asarray(v, dtype=np.float64))
        cells = f.create_group("cells")
        _str(h5py, cells, "id", self.cell_ids)
        _str(h5py, cells, "group", self.cell_groups)
        f.create_dataset("expression", data=np.asarray(self.expression, dtype=np.float32),
                         compression="gzip", compression_opts=4)
        og = f.create_group("oinfo")
        for g in self.groups:
            h = og.create_group(h5name(g.name))
            write_oinfo_group(g.oinfo, h)
            h.attrs["label"] = g.name  # GROUP_ATTRS
            h.attrs["n_cells"] = g.n_cells
            h.attrs["left_out"] = ",".join(g.left_out)
        st = f.create_group("stats")
        for k, v in self.stats_table().items():
            if k == "group":
                _str(h5py, st, k, v)
            else:
                st.create_dataset(k, data=v)
        s = self.subset
        if s is not None:
            sg = f.create_group("subset")
            for k in SUBSET_ARRAYS:
                sg.create_dataset(k, data=np.asarray(getattr(s, k), dtype=np.float64))
            for k in SUBSET_STRINGS:
                _str(h5py, sg, k, getattr(s, k))
            for k in SUBSET_ATTRS:
                sg.attrs[k] = getattr(s, k)
            sg.attrs["notes"] = "\n".join(s.notes)

    # ------------------------------------------------------------------ read
    @classmethod
    def read(cls, path: str | os.PathLike) -> "GenesResult":
        """Read GENES.h5 back (each group's O-information as an OInfoResult)."""
        import h5py

        from hpcneuro.errors import UserError
        from hpcneuro.oinfo.result import OInfoResult

        with _open_genes(path) as f:
            attrs = {}
            for k, v in f.attrs.items():
                v = v.item() if hasattr(v, "item") else v
                if isinstance(v, str) and v[:1] in "[{":
                    try:
                        v = json.loads(v)
                    except ValueError:
                        pass
                attrs[k] = v
            notes = [n for n in str(attrs.pop("notes", "")).split("\n") if n]
            channels = {}
            for k, ds in f["channels"].items():
                channels[k] = (np.array(_strings(ds), dtype=object)
                               if h5py.check_string_dtype(ds.dtype) else ds[()])
            stats = {}
            for k, ds in f["stats"].items():
                stats[k] = (np.array(_strings(ds), dtype=object)
                            if h5py.check_string_dtype(ds.dtype) else ds[()])
            oinfo = {}
            for key, g in f["oinfo"].items():
                oinfo[str(g.attrs.get("label", label_of(key)))] = OInfoResult.read_group(g)
            order = list(dict.fromkeys(str(g) for g in stats.get("group", [])))
            oinfo = {g: oinfo[g] for g in order if g in oinfo} | {
                g: v for g, v in oinfo.items() if g not in order}  # analysis order
            subset = None
            if "subset" in f:
                sg = f["subset"]
                subset = {k: sg[k][()] for k in SUBSET_ARRAYS}
                subset.update({k: _strings(sg[k]) for k in SUBSET_STRINGS})
                subset.update({k: sg.attrs[k].item() for k in SUBSET_ATTRS})
                subset["notes"] = [n for n in str(sg.attrs.get("notes", "")).split("\n") if n]
            return cls(attrs=attrs, notes=notes, genes=_strings(f["genes"]), channels=channels,
                       cell_ids=_strings(f["cells/id"]), cell_groups=_strings(f["cells/group"]),
                       expression=f["expression"][()], stats=stats, subset=subset,
                       oinfo=oinfo)

    def group_expression(self, group: str | None) -> tuple[np.ndarray, list[str]]:
        """(cells, channels) expression of one group (None or 'all cells': every cell)."""
        from hpcneuro.errors import UserError

        syms = [str(s) for s in self.channels["symbol"]]
        if group in (None, "", "all cells"):
            return np.asarray(self.expression, dtype=np.float64), syms
        mask = np.array([g == group for g in self.cell_groups])
        if not mask.any():
            have = sorted(set(self.cell_groups))
            raise UserError(f"no group {group!r} in this GENES.h5; groups: {', '.join(have)}")
        return np.asarray(self.expression[mask], dtype=np.float64), syms
