"""Electrophysiological features (eFEL) and the validity of each model.

Features are named ``PROTOCOL.FEATURE`` (e.g. ``step_200.mean_frequency``). Every
trace gets one eFEL call for all the features of its protocol. A feature eFEL cannot
compute (no spikes, say) is NaN, not an error. eFEL features that return one value per
spike (AP_amplitude, ...) are reduced to their mean over spikes.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Callable

import numpy as np

from hpcneuro.protocols import Protocol


def group_by_protocol(feature_names: list[str]) -> dict[str, list[tuple[int, str]]]:
    """PROTOCOL -> [(column in the feature matrix, eFEL name), ...]."""
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for col, name in enumerate(feature_names):
        protocol, _, efel_name = name.partition(".")
        groups[protocol].append((col, efel_name))
    return groups


def _reduce(value) -> float:
    if value is None:
        return np.nan
    arr = np.asarray(value, dtype=float).ravel()
    if arr.size == 0:
        return np.nan
    return float(arr[0]) if arr.size == 1 else float(np.mean(arr))


def extract(t: np.ndarray, v: np.ndarray, protocol: Protocol,
            efel_names: list[str],
            poke: Callable[[], object] | None = None,
            stimulus: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """eFEL features of each trace.

    Parameters
    ----------
    t : (T,) ms; v : (n, T) mV; efel_names : F eFEL feature names;
    poke : called between traces (MPI progress, see :meth:`CellBatch.run`);
    stimulus : (n,) step amplitude of each trace (nA), for features such as
    ``ohmic_input_resistance_vb_ssse`` that need eFEL's ``stimulus_current``.

    Returns
    -------
    values : (n, F) float64, NaN where undefined
    failed : (n,) bool, True where eFEL raised on that trace
    """
    import efel

    n = v.shape[0]
    values = np.full((n, len(efel_names)), np.nan)
    failed = np.zeros(n, dtype=bool)
    if not efel_names:
        return values, failed
    start, end = protocol.stim_window
    evaluate = _efel_direct(efel) or _efel_public(efel)
    # eFEL copies each trace element by element: from Python lists that is ~2x faster
    t_list = t.tolist()
    for i in range(n):
        if poke is not None:
            poke()
        trace = {"T": t_list, "V": v[i].tolist(), "stim_start": [start], "stim_end": [end]}
        if stimulus is not None:
            trace["stimulus_current"] = [float(stimulus[i])]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = evaluate(trace, efel_names)
        except Exception:  # eFEL raises assorted errors on pathological traces
            failed[i] = True
            continue
        values[i] = [_reduce(result.get(name)) for name in efel_names]
    return values, failed


def _efel_public(efel) -> Callable[[dict, list[str]], dict]:
    """One trace through eFEL's public API."""
    def evaluate(trace: dict, names: list[str]) -> dict:
        return efel.get_feature_values([trace], names, raise_warnings=False)[0]
    return evaluate


def _efel_direct(efel) -> Callable[[dict, list[str]], dict] | None:
    """The steps of ``efel.get_feature_values`` for one trace, minus its second
    element-by-element copy of T and V (a third of eFEL's time on a 15,000-point
    trace); None if this eFEL lacks the internals it relies on, so that callers use the
    public API. ``test_features`` checks that both give the same values."""
    api = getattr(efel, "api", None)
    core = getattr(efel, "cppcore", None)
    needed = (getattr(api, "_initSettings", None), getattr(api, "_get_feature", None),
              getattr(core, "Clear", None), getattr(core, "setFeatureDouble", None))
    if not all(callable(f) for f in needed):
        return None
    init_settings, get_feature, clear, set_double = needed

    def evaluate(trace: dict, names: list[str]) -> dict:
        clear()
        init_settings()
        for key, values in trace.items():
            set_double(key, values)
        return {name: get_feature(name, raise_warnings=False) for name in names}
    return evaluate


def is_valid(features: np.ndarray, feature_names: list[str], rules: list[dict]) -> np.ndarray:
    """Which models meet every validity rule; NaN never passes.

    features : (n, F); rules : validated ``validity`` entries. Returns (n,) bool.
    """
    ok = np.ones(features.shape[0], dtype=bool)
    for rule in rules:
        x = features[:, feature_names.index(rule["feature"])]
        if rule["mean"] is not None:
            lo = rule["mean"] - rule["n_std"] * rule["std"]
            hi = rule["mean"] + rule["n_std"] * rule["std"]
        else:
            lo = -np.inf if rule["low"] is None else rule["low"]
            hi = np.inf if rule["high"] is None else rule["high"]
        with np.errstate(invalid="ignore"):
            ok &= (x >= lo) & (x <= hi)
    return ok
