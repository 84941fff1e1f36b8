"""Gene-expression analysis of ion-channel genes (``hpcneuro genes``).

One module per concern; none imports scanpy, scikit-learn or anndata at import time:

- :mod:`~hpcneuro.genes.inputs`: count tables (CSV/TSV[.gz], genes as rows or columns),
  metadata tables (delimiter sniffed), AnnData ``.h5ad``, joining cells by id.
- :mod:`~hpcneuro.genes.channels`: the curated ion-channel gene list (package data
  ``ion_channels.tsv``) and ``--genes`` resolution.
- :mod:`~hpcneuro.genes.normalize`: count checks, CPM + log1p, cell and gene filters.
- :mod:`~hpcneuro.genes.analysis`: O-information pooled and per group, bootstrap intervals
  of per-order means, the shuffled-genes null, the copula's tie rule.
- :mod:`~hpcneuro.genes.subset`: the small gene subset (forward selection, curves).
- :mod:`~hpcneuro.genes.result`: GENES.h5, written and read only there.
- :mod:`~hpcneuro.genes.figures`: report figures and an HTML page for a GENES.h5.
- :mod:`~hpcneuro.genes.correlation`: a group's channel expression -> a conductance
  (mechanism) rank-correlation matrix for sampling.
"""
