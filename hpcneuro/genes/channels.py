"""The curated ion-channel gene list and ``--genes`` resolution.

The list is package data (``ion_channels.tsv``, sources in its header). Symbols are
matched case-insensitively against the mouse and the human column, and returned as the
data spells them, so one list serves mouse (``Scn1a``) and human (``SCN1A``) tables.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from importlib import resources
from typing import Sequence

from hpcneuro.errors import UserError

COLUMNS = ("mouse", "human", "family", "subfamily", "role", "mechanism", "protein", "note")


@dataclass(frozen=True)
class ChannelGene:
    mouse: str
    human: str
    family: str
    subfamily: str
    role: str  # "pore" or "auxiliary"
    mechanism: str  # hpcneuro mechanism name, "" when none maps
    protein: str
    note: str


def load_channel_table(path: str | os.PathLike | None = None) -> list[ChannelGene]:
    """Rows of the curated list (the shipped one unless ``path`` is given)."""
    if path is None:
        text = resources.files("hpcneuro.genes").joinpath("ion_channels.tsv").read_text()
    else:
        with open(path) as f:
            text = f.read()
    rows: list[ChannelGene] = []
    header = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
            continue
        cells += [""] * (len(COLUMNS) - len(cells))
        rows.append(ChannelGene(*[c.strip() for c in cells[:len(COLUMNS)]]))
    return rows


def channel_index(rows: Sequence[ChannelGene] | None = None) -> dict[str, ChannelGene]:
    """Upper-case symbol (mouse or human) -> row."""
    out: dict[str, ChannelGene] = {}
    for r in rows if rows is not None else load_channel_table():
        for sym in (r.mouse, r.human):
            if sym:
                out[sym.upper()] = r
    return out


def channel_genes(available: Sequence[str], include_auxiliary: bool = False) -> list[str]:
    """The curated channel genes present in ``available`` (in its spelling and order)."""
    idx = channel_index()
    keep = []
    for g in available:
        r = idx.get(str(g).upper())
        if r is not None and (include_auxiliary or r.role == "pore"):
            keep.append(g)
    return keep


def annotate(genes: Sequence[str]) -> list[ChannelGene | None]:
    """The list's row for each gene (None for genes not on the list)."""
    idx = channel_index()
    return [idx.get(str(g).upper()) for g in genes]


def _did_you_mean(name: str, available: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(available), n=3, cutoff=0.6)
    if not close:  # case-insensitive second chance (Scn1a vs SCN1A)
        up = {str(a).upper(): a for a in available}
        close = [up[c] for c in difflib.get_close_matches(name.upper(), list(up), n=3,
                                                           cutoff=0.6)]
    return f" (did you mean {', '.join(close)}?)" if close else ""


#: names that are files of symbols, not a gene symbol (gene symbols have no such suffix)
_GENE_FILE_SUFFIXES = (".txt", ".tsv", ".csv", ".list", ".gz", ".lst")


def resolve_genes(spec: str, available: Sequence[str],
                  include_auxiliary: bool = False) -> tuple[list[str], str]:
    """``--genes`` -> (genes in the data's spelling, description).

    ``ion-channels``: the curated list; a readable file: one symbol per line (``#``
    comments; the first TAB/comma field of a line); otherwise a comma-separated list.
    An explicit gene that is not in the data is an error with suggestions.
    """
    spec = (spec or "ion-channels").strip()
    if spec == "ion-channels":
        genes = channel_genes(available, include_auxiliary)
        if not genes:
            raise UserError("no curated ion-channel gene is in the count table: are the "
                            "gene symbols (not Ensembl ids) the row/column names? Give the "
                            "genes with --genes A,B,C")
        kind = "pore-forming and auxiliary" if include_auxiliary else "pore-forming"
        return genes, f"curated ion-channel list ({kind} subunits)"
    if os.path.isfile(spec):
        names = []
        with open(spec) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    field = line.replace(",", "\t").split("\t")[0].strip()
                    if field and field.lower() not in ("gene", "genes", "symbol", "mouse"):
                        names.append(field)
        source = f"gene file {spec}"
    else:
        names = [g.strip() for g in spec.split(",") if g.strip()]
        source = "--genes list"
        looks_like_file = "," not in spec and (
            os.sep in spec or os.path.splitext(spec)[1].lower() in _GENE_FILE_SUFFIXES)
        if looks_like_file and spec not in set(map(str, available)):
            raise UserError(f"--genes {spec}: no such file (a gene file has one symbol "
                            "per line; or give ion-channels or A,B,C)")
    if not names:
        raise UserError(f"--genes {spec}: no gene names given")
    present = set(available)
    upper = {str(a).upper(): a for a in available}
    out, unknown = [], []
    for n in names:
        if n in present:
            out.append(n)
        elif n.upper() in upper:
            out.append(upper[n.upper()])
        else:
            unknown.append(n)
    if unknown:
        first = unknown[0]
        raise UserError(f"--genes: unknown gene {first!r} in the count table"
                        f"{_did_you_mean(first, available)}"
                        + (f"; {len(unknown) - 1} more unknown: {', '.join(unknown[1:6])}"
                           if len(unknown) > 1 else ""))
    dup = sorted({g for g in out if out.count(g) > 1})
    if dup:
        raise UserError(f"--genes: {', '.join(dup)} given twice: list each gene once")
    return out, source
