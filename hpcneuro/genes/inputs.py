"""Reading expression data: count tables, metadata tables, AnnData files; joining cells.

* A count table is CSV/TSV (optionally ``.gz``) with names in its first column and its
  header row. Whether genes are rows or columns is said by ``orientation``
  (``genes-rows``/``genes-columns``) or detected, and the detection is logged: from the
  metadata's cell ids (the axis holding them is the cell axis), else from the curated
  ion-channel symbols (the axis holding them is the gene axis). If neither tells, it is
  an error asking for ``--genes-as``: never a silent guess.
* A metadata table may use any delimiter (sniffed from its first lines: the patch-seq
  ``.csv`` is TAB-separated). The cell-id column is ``cell_id`` or, if not given, the
  column whose values match the most count ids (logged).
* ``.h5ad``: counts from ``X`` or ``layers[layer]``, labels from ``obs``.

Cells are joined by id; ids on one side only are reported (logged, and kept in the
result as counts and examples).
"""
from __future__ import annotations

import csv
import gzip
import io
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpcneuro.errors import UserError

log = logging.getLogger("hpcneuro")

ORIENTATIONS = ("auto", "genes-rows", "genes-columns")


@dataclass
class ExpressionData:
    """Cells x genes expression with cell metadata.

    X: (cells, genes) float64. obs: pandas DataFrame indexed by cell id (same order as
    rows of X); may have no columns. notes: what the reader decided (orientation, join).
    """

    X: np.ndarray
    genes: list[str]
    cells: list[str]
    obs: Any
    notes: list[str] = field(default_factory=list)
    join: dict = field(default_factory=dict)


def _open_text(path: str):
    if path.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def sniff_delimiter(path: str) -> str:
    """The delimiter of a text table (TAB, comma, semicolon, ...) from its first lines."""
    try:
        with _open_text(path) as f:
            head = "".join(f.readline() for _ in range(20))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    if not head.strip():
        raise UserError(f"{path} is empty")
    try:
        return csv.Sniffer().sniff(head, delimiters="\t,;| ").delimiter
    except csv.Error:
        first = head.splitlines()[0]
        counts = {d: first.count(d) for d in "\t,;|"}
        best = max(counts, key=counts.get)
        if counts[best] == 0:
            raise UserError(f"cannot tell the delimiter of {path}: use TAB, comma or "
                            "semicolon") from None
        return best


def read_metadata(path: str):
    """Metadata table as a DataFrame of strings (delimiter sniffed)."""
    import pandas as pd

    if not os.path.isfile(path):
        raise UserError(f"--metadata {path}: no such file")
    sep = sniff_delimiter(path)
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False,
                         compression="gzip" if path.lower().endswith(".gz") else None)
    except (ValueError, pd.errors.ParserError) as exc:
        raise UserError(f"cannot read metadata {path}: {exc}") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _read_count_frame(path: str):
    import pandas as pd

    if not os.path.isfile(path):
        raise UserError(f"count table {path}: no such file")
    sep = sniff_delimiter(path)
    try:
        df = pd.read_csv(path, sep=sep, index_col=0,
                         compression="gzip" if path.lower().endswith(".gz") else None)
    except (ValueError, pd.errors.ParserError, OSError, EOFError) as exc:
        raise UserError(f"cannot read count table {path}: {exc}") from None
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise UserError(f"count table {path} has no values (rows x columns = {df.shape})")
    df.index = [str(i).strip() for i in df.index]
    df.columns = [str(c).strip() for c in df.columns]
    bad = [c for c in df.columns if not np.issubdtype(df[c].dtype, np.number)]
    if bad:
        col = bad[0]
        example = df[col][pd.to_numeric(df[col], errors="coerce").isna()].iloc[0]
        raise UserError(f"count table {path}: column {col!r} is not numeric (e.g. "
                        f"{example!r}); the first column must hold the names and every "
                        "other column numbers")
    return df


def _pick_cell_column(meta, ids: set[str], cell_id: str | None, what: str) -> str:
    if cell_id is not None:
        if cell_id not in meta.columns:
            raise UserError(f"--cell-id {cell_id!r} is not a column of the metadata; "
                            f"columns: {', '.join(meta.columns[:40])}")
        return cell_id
    best, hits = None, 0
    for c in meta.columns:
        n = len(ids.intersection(meta[c].astype(str).str.strip()))
        if n > hits:
            best, hits = c, n
    if best is None:
        raise UserError(f"no metadata column matches the {what} ids (e.g. "
                        f"{', '.join(sorted(ids)[:3])}): name it with --cell-id, or check "
                        "that the files describe the same cells")
    log.info("cell ids: metadata column %r (matches %d %s ids)", best, hits, what)
    return best


def detect_orientation(df, meta=None, cell_id: str | None = None) -> tuple[str, str]:
    """('genes-rows'|'genes-columns', how it was told) for a count DataFrame."""
    rows, cols = set(df.index), set(df.columns)
    if meta is not None:
        cands = [cell_id] if cell_id else list(meta.columns)
        best = (0, 0)
        for c in cands:
            if c not in meta.columns:
                continue
            vals = set(meta[c].astype(str).str.strip())
            best = max(best, (len(vals & cols), len(vals & rows)), key=lambda t: max(t))
        in_cols, in_rows = best
        if in_cols > in_rows:
            return "genes-rows", f"metadata cell ids match {in_cols} column names"
        if in_rows > in_cols:
            return "genes-columns", f"metadata cell ids match {in_rows} row names"
    from hpcneuro.genes.channels import channel_index

    idx = channel_index()
    g_rows = sum(1 for r in rows if r.upper() in idx)
    g_cols = sum(1 for c in cols if c.upper() in idx)
    if g_rows >= 3 and g_cols == 0:
        return "genes-rows", f"{g_rows} ion-channel gene symbols among the row names"
    if g_cols >= 3 and g_rows == 0:
        return "genes-columns", f"{g_cols} ion-channel gene symbols among the column names"
    raise UserError("cannot tell whether genes are rows or columns of the count table "
                    "(no metadata ids and no channel gene symbols on one axis): say it "
                    "with --genes-as rows|columns")


def read_counts_table(path: str, metadata: str | None = None, cell_id: str | None = None,
                      orientation: str = "auto") -> ExpressionData:
    """A count table (+ optional metadata), joined by cell id."""
    if orientation not in ORIENTATIONS:
        raise UserError(f"orientation {orientation!r}: use one of {', '.join(ORIENTATIONS)}")
    df = _read_count_frame(path)
    meta = read_metadata(metadata) if metadata else None
    notes = []
    if orientation == "auto":
        orientation, why = detect_orientation(df, meta, cell_id)
        msg = f"count table: {orientation.replace('-', ' as ')} ({why})"
        log.info("%s", msg)
        notes.append(msg)
    if orientation == "genes-rows":
        df = df.T
    genes = list(df.columns)
    cells = list(df.index)
    dupg = sorted({g for g in genes if genes.count(g) > 1}) if len(set(genes)) < len(genes) else []
    if dupg:
        raise UserError(f"count table {path}: gene {dupg[0]!r} appears more than once "
                        f"({len(dupg)} duplicated names); make gene names unique")
    if len(set(cells)) < len(cells):
        raise UserError(f"count table {path}: duplicated cell ids (e.g. "
                        f"{next(c for c in cells if cells.count(c) > 1)!r})")
    X = df.to_numpy(dtype=np.float64)
    import pandas as pd

    if meta is None:
        obs = pd.DataFrame(index=pd.Index(cells, name="cell"))
        return ExpressionData(X, genes, cells, obs, notes)
    col = _pick_cell_column(meta, set(cells), cell_id, "count")
    return join(X, genes, cells, meta, col, notes)


def join(X: np.ndarray, genes: list[str], cells: list[str], meta, col: str,
         notes: list[str] | None = None) -> ExpressionData:
    """Keep the cells present in both the counts and the metadata, in the counts' order."""
    notes = list(notes or [])
    ids = meta[col].astype(str).str.strip()
    if ids.duplicated().any():
        raise UserError(f"metadata column {col!r} has duplicated ids (e.g. "
                        f"{ids[ids.duplicated()].iloc[0]!r}): choose a unique id column "
                        "with --cell-id")
    meta = meta.copy()
    meta.index = ids.to_numpy()
    in_meta = set(meta.index)
    in_counts = set(cells)
    only_counts = [c for c in cells if c not in in_meta]
    only_meta = [c for c in meta.index if c not in in_counts]
    both = [i for i, c in enumerate(cells) if c in in_meta]
    if not both:
        raise UserError(f"no cell id is in both the counts and the metadata column {col!r} "
                        f"(counts e.g. {', '.join(cells[:2])}; metadata e.g. "
                        f"{', '.join(list(meta.index[:2]))})")
    for side, lst in (("the counts only", only_counts), ("the metadata only", only_meta)):
        if lst:
            msg = f"{len(lst)} cell ids in {side} (left out), e.g. {', '.join(lst[:3])}"
            log.warning("%s", msg)
            notes.append(msg)
    keep = [cells[i] for i in both]
    obs = meta.loc[keep]
    obs.index.name = "cell"
    return ExpressionData(X[both], genes, keep, obs, notes,
                          join=dict(n_counts_only=len(only_counts), n_meta_only=len(only_meta),
                                    counts_only=only_counts[:20], meta_only=only_meta[:20]))


def read_h5ad(path: str, layer: str | None = None) -> ExpressionData:
    """An AnnData file: counts from X (or a layer), labels from obs."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    import anndata
    import scipy.sparse as sp

    try:
        ad = anndata.read_h5ad(path)
    except Exception as exc:  # anndata raises many kinds for a bad file
        raise UserError(f"cannot read {path} as AnnData: {exc}") from None
    if layer:
        if layer not in ad.layers:
            have = ", ".join(ad.layers.keys()) or "none"
            raise UserError(f"{path} has no layer {layer!r} (layers: {have}); drop --layer "
                            "to use X")
        M = ad.layers[layer]
    else:
        M = ad.X
    X = M.toarray() if sp.issparse(M) else np.asarray(M)
    obs = ad.obs.copy()
    for c in obs.columns:
        obs[c] = obs[c].astype(str)
    obs.index = [str(i) for i in obs.index]
    obs.index.name = "cell"
    return ExpressionData(np.asarray(X, dtype=np.float64), [str(g) for g in ad.var_names],
                          list(obs.index), obs,
                          [f"AnnData {path}: counts from {'layer ' + layer if layer else 'X'}"])


def read_expression(path: str, metadata: str | None = None, cell_id: str | None = None,
                    orientation: str = "auto", layer: str | None = None) -> ExpressionData:
    """COUNTS (a table or .h5ad) -> ExpressionData."""
    if path.lower().endswith(".h5ad"):
        if metadata:
            log.warning("--metadata ignored: an .h5ad file carries its labels in obs")
        return read_h5ad(path, layer)
    if layer:
        raise UserError("--layer only applies to .h5ad input")
    return read_counts_table(path, metadata, cell_id, orientation)
