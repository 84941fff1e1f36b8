"""The cost of a model: how far its features are from the experimental targets.

Each validity rule gives a score per model:

* a rule with ``mean``/``std``: the z-score |f - mean| / std;
* a range rule (``low``/``high``): 0 inside, :data:`OUTSIDE` outside;
* an undefined feature (NaN, e.g. no spike to measure): :data:`OUTSIDE`.

The cost is the largest score (``cost: max``, the reference's choice: a model is as bad
as its worst feature) or their mean (``cost: mean``). With ``max``, ``cost < n_std`` is
exactly "every rule met" when every mean/std rule has that ``n_std``.
A model that did not simulate has no cost (NaN): its proposal is rejected.
"""

from __future__ import annotations

import numpy as np

#: score of a range rule outside its range and of an undefined feature: far above any
#: threshold, so such states are never valid, and equal, so chains random-walk among them
#: (Boltzmann ratio 1) until they find the targets
OUTSIDE = 1000.0


def scores(features: np.ndarray, feature_names: list[str], rules: list[dict]) -> np.ndarray:
    """(n, R) score of each model under each rule."""
    out = np.empty((features.shape[0], len(rules)))
    for j, rule in enumerate(rules):
        x = features[:, feature_names.index(rule["feature"])]
        with np.errstate(invalid="ignore"):
            if rule["mean"] is not None:
                s = np.abs(x - rule["mean"]) / rule["std"]
            else:
                lo = -np.inf if rule["low"] is None else rule["low"]
                hi = np.inf if rule["high"] is None else rule["high"]
                s = np.where((x >= lo) & (x <= hi), 0.0, OUTSIDE)
        out[:, j] = np.where(np.isfinite(s), np.minimum(s, OUTSIDE), OUTSIDE)
    return out


def cost(features: np.ndarray, feature_names: list[str], rules: list[dict],
         how: str = "max", ok: np.ndarray | None = None) -> np.ndarray:
    """(n,) cost of each model; NaN where ``ok`` (simulated fine) is False."""
    s = scores(features, feature_names, rules)
    c = s.max(axis=1) if how == "max" else s.mean(axis=1)
    if ok is not None:
        c = np.where(ok, c, np.nan)
    return c
