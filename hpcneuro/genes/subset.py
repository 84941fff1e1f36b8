"""The small gene subset that separates the groups (issue item 5).

Forward selection: starting from no gene, add the gene that most raises the
cross-validated balanced accuracy of a simple classifier (StandardScaler + shrinkage
LDA in one Pipeline, StratifiedKFold with a fixed seed, so every candidate is scored on
the same folds), up to ``max_k`` genes. Compared against:

* all channel genes (the reference accuracy; 90% of it defines ``k90``, the smallest k
  of the forward curve reaching it);
* random k-subsets (``n_random`` per k: the distribution);
* the top-k most variable genes.

Variance explained: R^2 of the ordinary least-squares regression of every (standardised)
channel gene on the subset's genes, pooled over genes (1 - sum SS_res / sum SS_tot):
how much of the channel expression the k genes carry.

Classes with fewer cells than folds cannot be stratified and are left out (noted).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hpcneuro.errors import UserError


@dataclass
class SubsetResult:
    genes: list[str]              # all channel genes considered
    classes: list[str]
    n_cells: int
    selected: list[str]           # forward order
    forward_mean: np.ndarray      # (max_k,)
    forward_std: np.ndarray       # (max_k,) across folds
    all_mean: float
    all_std: float
    random: np.ndarray            # (max_k, n_random)
    topvar: np.ndarray            # (max_k,)
    topvar_genes: list[str]
    r2: np.ndarray                # (max_k,) variance of all genes explained by first k
    random_r2: np.ndarray         # (max_k,) median over random subsets
    chance: float
    k90: int                      # 0 if never reached
    cv: int
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        lines = [f"gene subset: balanced accuracy ({self.cv}-fold CV) separating "
                 f"{len(self.classes)} groups ({', '.join(self.classes)}), {self.n_cells} "
                 f"cells; chance {self.chance:.3f}; all {len(self.genes)} channel genes "
                 f"{self.all_mean:.3f} +- {self.all_std:.3f}",
                 f"{'k':>3} {'added gene':>12} {'forward':>8} {'random (5-50-95%)':>20} "
                 f"{'top-var':>8} {'R2 all genes':>12}"]
        for i in range(len(self.selected)):
            r = self.random[i]
            lines.append(f"{i + 1:>3} {self.selected[i]:>12} {self.forward_mean[i]:>8.3f} "
                         f"{np.percentile(r, 5):>6.3f} {np.median(r):>6.3f} "
                         f"{np.percentile(r, 95):>6.3f} {self.topvar[i]:>8.3f} "
                         f"{self.r2[i]:>12.3f}")
        lines.append(f"smallest k reaching 90% of the all-gene accuracy: "
                     f"{self.k90 if self.k90 else 'not reached within ' + str(len(self.selected))}"
                     + (f" ({', '.join(self.selected[:self.k90])})" if self.k90 else ""))
        return "\n".join(lines + self.notes)


def _pipeline():
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(),
                         LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over the classes present in y_true of the recall (sklearn's definition;
    computed here because sklearn's input checks cost more than the classifier)."""
    rec = [np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]
    return float(np.mean(rec))


def _score(x, y, folds) -> tuple[float, float]:
    import sklearn

    clf = _pipeline()
    s = []
    # thousands of tiny fits: sklearn's per-call validation would dominate
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        for tr, te in folds:
            clf.fit(x[tr], y[tr])
            s.append(balanced_accuracy(y[te], clf.predict(x[te])))
    return float(np.mean(s)), float(np.std(s))


def variance_explained(x: np.ndarray, cols: list[int]) -> float:
    """Pooled R^2 of regressing every standardised column of x on columns ``cols``."""
    z = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    a = np.column_stack([np.ones(len(z)), z[:, cols]])
    coef, *_ = np.linalg.lstsq(a, z, rcond=None)
    res = z - a @ coef
    return float(1.0 - (res ** 2).sum() / (z ** 2).sum())


def select_subset(x: np.ndarray, labels, genes: list[str], max_k: int = 10,
                  n_random: int = 20, cv: int = 5, seed: int = 0) -> SubsetResult:
    """Forward selection and the comparison curves; x (cells, genes) normalised."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray([str(v) for v in labels])
    notes = []
    cls, cnt = np.unique(labels, return_counts=True)
    small = [c for c, n in zip(cls, cnt) if n < cv]
    if small:
        notes.append(f"left out of the classification (fewer than {cv} cells): "
                     + ", ".join(f"{c} ({n})" for c, n in zip(cls, cnt) if n < cv))
        keep = ~np.isin(labels, small)
        x, labels = x[keep], labels[keep]
        cls = np.array([c for c in cls if c not in small])
    if len(cls) < 2:
        raise UserError("the gene subset needs at least 2 groups with at least "
                        f"{cv} cells each (--group-by)")
    n = x.shape[1]
    max_k = min(int(max_k), n)
    if max_k < 1:
        raise UserError("--subset-max-k must be >= 1")
    folds = list(StratifiedKFold(cv, shuffle=True, random_state=seed).split(x, labels))
    all_mean, all_std = _score(x, labels, folds)
    chosen: list[int] = []
    fm, fs, r2 = [], [], []
    for _ in range(max_k):
        best = None
        for j in range(n):
            if j in chosen:
                continue
            m, s = _score(x[:, chosen + [j]], labels, folds)
            if best is None or m > best[0] + 1e-12:
                best = (m, s, j)
        chosen.append(best[2])
        fm.append(best[0])
        fs.append(best[1])
        r2.append(variance_explained(x, chosen))
    rng = np.random.default_rng(seed)
    rand = np.zeros((max_k, n_random))
    rand_r2 = np.zeros(max_k)
    for i in range(max_k):
        vals = []
        for r in range(n_random):
            cols = list(rng.choice(n, i + 1, replace=False))
            rand[i, r] = _score(x[:, cols], labels, folds)[0]
            if r < 20:
                vals.append(variance_explained(x, cols))
        rand_r2[i] = float(np.median(vals))
    order = sorted(range(n), key=lambda j: (-x[:, j].var(), genes[j]))
    topvar = np.array([_score(x[:, order[:i + 1]], labels, folds)[0] for i in range(max_k)])
    k90 = next((i + 1 for i, m in enumerate(fm) if m >= 0.9 * all_mean), 0)
    return SubsetResult(genes=list(genes), classes=[str(c) for c in cls], n_cells=len(labels),
                        selected=[genes[j] for j in chosen], forward_mean=np.array(fm),
                        forward_std=np.array(fs), all_mean=all_mean, all_std=all_std,
                        random=rand, topvar=topvar, topvar_genes=[genes[j] for j in order[:max_k]],
                        r2=np.array(r2), random_r2=rand_r2, chance=1.0 / len(cls), k90=k90,
                        cv=cv, notes=notes)
