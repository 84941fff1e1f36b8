"""The paper's three findings as verdicts computed from numbers: findings.json and FINDINGS.md.

Pure functions only (no files, no simulation): ``hpcneuro reproduce`` (reproduce.py)
gathers the numbers, these functions decide and render. Every verdict is one of
:data:`HOLDS`, :data:`FAILS`, :data:`UNDECIDED` and follows from intervals alone:

- :func:`side` places an interval against a reference band (0, or a null's range):
  ``above`` when its low end is above the band, ``below`` when its high end is below,
  ``straddles`` otherwise (NaN ends straddle: no interval, no decision).
- :func:`claim_verdict`: a claim about a list of sides ("above" for redundancy, "below"
  for synergy) HOLDS when every side is the claimed one, DOES NOT HOLD when any side is
  the opposite one, and is UNDECIDED otherwise (some interval straddles, none contradicts).
- :func:`combine`: the same rule over verdicts: HOLDS when all hold, DOES NOT HOLD when
  any does not, UNDECIDED otherwise (and for an empty list).

The rules of the three findings (:data:`RULES`, stated in findings.json and FINDINGS.md):

1. Synergy in diverse, decorrelated ensembles: in the MCMC valid population, the
   targeted analysis (the parameters plus one feature) against the parameter-only
   analysis of the same models (the control). Per order, the targeted mean-O interval
   and the interval of (targeted - control) must both lie below 0.
2. Redundancy under coregulation and subclusters: the modules ensemble and the
   subclusters ensemble (parameter-only, valid models), each against the independent
   control's valid models. Per order, the ensemble's mean-O interval and the interval of
   (ensemble - control) must both lie above 0; the finding combines both ensembles.
3. Gene expression is redundancy-dominated and a small gene subset captures it: per
   order, the pooled cells' mean-O interval lies above 0 and above the shuffled-genes
   null's range; and the gene subset: the smallest k reaching 90% of the all-gene
   balanced accuracy (k90) is at most ``small_k`` genes and its forward accuracy beats
   the 95th percentile of random k90-gene subsets. k90 = 0 (not reached by a selection
   that went to small_k genes or more) or k90 > small_k does not hold; reached but not
   better than random genes, or a selection stopped before small_k, is undecided.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "undecided"
ABOVE, BELOW, STRADDLES = "above", "below", "straddles"
OPPOSITE = {ABOVE: BELOW, BELOW: ABOVE}

RULES = {
    1: "Per order, the targeted mean-O interval (parameters + the feature, MCMC valid "
       "population) and the interval of its difference from the parameter-only analysis "
       "of the same models (the control) both lie below 0: holds at every order -> holds; "
       "either above 0 at any order -> does not hold; otherwise undecided.",
    2: "For each of the modules and subclusters ensembles that was run (the demo runs "
       "modules only; valid models, parameters only), per order, the ensemble's mean-O "
       "interval and the interval of its difference from the independent control's valid "
       "models both lie above 0: holds for every ensemble run at every order -> holds; below 0 anywhere -> does not hold; otherwise "
       "undecided.",
    3: "Per order, the pooled cells' mean-O interval lies above 0 and above the "
       "shuffled-genes null's range; and the smallest gene subset reaching 90% of the "
       "all-gene balanced accuracy has 1..small_k genes and beats the 95th percentile of "
       "random subsets of that size. Both hold -> holds; redundancy below 0 or the null, "
       "or no subset of at most small_k genes reaching 90% -> does not hold; otherwise "
       "undecided.",
}


def _nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def side(lo: float, hi: float, ref_lo: float = 0.0, ref_hi: float | None = None) -> str:
    """Where the interval [lo, hi] lies against the band [ref_lo, ref_hi] (default 0)."""
    ref_hi = ref_lo if ref_hi is None else ref_hi
    if any(_nan(v) for v in (lo, hi, ref_lo, ref_hi)):
        return STRADDLES
    if lo > ref_hi:
        return ABOVE
    if hi < ref_lo:
        return BELOW
    return STRADDLES


def claim_verdict(sides: Iterable[str], claimed: str) -> str:
    """HOLDS if every side is ``claimed``, FAILS if any is its opposite, else UNDECIDED."""
    sides = list(sides)
    if claimed not in OPPOSITE:
        raise ValueError(f"claimed must be {ABOVE!r} or {BELOW!r}, got {claimed!r}")
    if any(s == OPPOSITE[claimed] for s in sides):
        return FAILS
    if sides and all(s == claimed for s in sides):
        return HOLDS
    return UNDECIDED


def combine(verdicts: Iterable[str]) -> str:
    """HOLDS if all hold, FAILS if any fails, else UNDECIDED (also for none)."""
    verdicts = list(verdicts)
    if any(v == FAILS for v in verdicts):
        return FAILS
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    return UNDECIDED


# --- evidence: one comparison of two analyses ---------------------------------------------

def comparison_evidence(name: str, rows: Sequence[dict], claimed: str, a: str, b: str,
                        a_label: str, b_label: str) -> dict[str, Any]:
    """Evidence from ``hpcneuro.oinfo.stats.compare`` rows (A - B per order).

    Per order: ``side_mean`` of A's mean-O interval against 0, ``side_diff`` of the
    difference interval against 0, and the order's verdict from both; the evidence's
    verdict combines the orders.
    """
    orders = []
    for r in rows:
        s_mean = side(*r["mean_a_ci"])
        s_diff = side(*r["diff_ci"])
        orders.append({
            "order": int(r["order"]), "n_multiplets_a": int(r["n_a"]),
            "n_multiplets_b": int(r["n_b"]),
            "mean_a": float(r["mean_a"]), "mean_a_ci": [float(v) for v in r["mean_a_ci"]],
            "mean_b": float(r["mean_b"]), "mean_b_ci": [float(v) for v in r["mean_b_ci"]],
            "diff": float(r["diff"]), "diff_ci": [float(v) for v in r["diff_ci"]],
            "frac_syn_a": float(r["frac_syn_a"]), "frac_syn_b": float(r["frac_syn_b"]),
            "n_boot": int(r["n_boot"]), "side_mean": s_mean, "side_diff": s_diff,
            "verdict": claim_verdict([s_mean, s_diff], claimed)})
    return {"name": name, "kind": "comparison", "claimed": claimed, "a": a, "b": b,
            "a_label": a_label, "b_label": b_label,
            "statistic": "per-order mean O of A, and A - B, with bootstrap intervals",
            "orders": orders, "verdict": combine(o["verdict"] for o in orders)}


def genes_evidence(name: str, stats: Sequence[dict], source: str) -> dict[str, Any]:
    """Evidence from GENES.h5 ``stats`` rows of one set of cells (claimed: redundancy).

    Per order: the mean-O interval against 0 and against the shuffled-genes null's range.
    """
    orders = []
    for s in stats:
        ci = [float(s["ci_low"]), float(s["ci_high"])]
        band = [float(s["null_low"]), float(s["null_high"])]
        s_zero, s_null = side(*ci), side(*ci, *band)
        orders.append({
            "order": int(s["order"]), "n_multiplets": int(s["n_multiplets"]),
            "n_cells": int(s["n_cells"]), "mean": float(s["mean"]), "mean_ci": ci,
            "frac_redundant": float(s["frac_redundant"]), "null_mean": float(s["null_mean"]),
            "null_range": band, "side_zero": s_zero, "side_null": s_null,
            "verdict": claim_verdict([s_zero, s_null], ABOVE)})
    return {"name": name, "kind": "genes", "claimed": ABOVE, "a": source,
            "statistic": "per-order mean O of the genes with a bootstrap interval, against "
                         "0 and the shuffled-genes null",
            "orders": orders, "verdict": combine(o["verdict"] for o in orders)}


def subset_evidence(name: str, k90: int, n_genes: int, all_accuracy: float, chance: float,
                    forward: Sequence[float], random_p95: Sequence[float], small_k: int,
                    source: str) -> dict[str, Any]:
    """Evidence of the gene subset: forward[i], random_p95[i] for k = i + 1 genes."""
    k90 = int(k90)
    at_k = float(forward[k90 - 1]) if 1 <= k90 <= len(forward) else float("nan")
    rnd = float(random_p95[k90 - 1]) if 1 <= k90 <= len(random_p95) else float("nan")
    if k90 < 1 and len(forward) < small_k:
        verdict = UNDECIDED   # the forward selection stopped before small_k genes
    elif k90 < 1 or k90 > small_k:
        verdict = FAILS
    elif not _nan(at_k) and not _nan(rnd) and at_k > rnd:
        verdict = HOLDS
    else:
        verdict = UNDECIDED
    return {"name": name, "kind": "subset", "a": source, "k90": k90, "small_k": int(small_k),
            "n_genes": int(n_genes), "all_accuracy": float(all_accuracy),
            "chance": float(chance), "accuracy_at_k90": at_k, "random_p95_at_k90": rnd,
            "statistic": "smallest k reaching 90% of the all-gene balanced accuracy, its "
                         "accuracy and the 95th percentile of random k-gene subsets",
            "verdict": verdict}


def finding(fid: int, title: str, claim: str, evidence: list[dict]) -> dict[str, Any]:
    return {"id": fid, "title": title, "claim": claim, "rule": RULES[fid],
            "evidence": evidence, "verdict": combine(e["verdict"] for e in evidence)}


# --- FINDINGS.md: rendered from the findings.json document alone ---------------------------

def fmt(x: Any) -> str:
    """How FINDINGS.md writes a number of findings.json (4 significant digits)."""
    if x is None:  # NaN in findings.json (no interval)
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "nan"
    return f"{x:.4g}"


def _ci(pair: Sequence[float]) -> str:
    return f"[{fmt(pair[0])}, {fmt(pair[1])}]"


def markdown(doc: dict[str, Any]) -> str:
    """FINDINGS.md of a findings.json document (every number quoted with :func:`fmt`)."""
    units = doc.get("units", "nats")
    pct = f"{100 * doc.get('level', 0.95):g}%"
    out = ["# Findings", "",
           f"`{doc.get('command', 'hpcneuro reproduce')}` (scale {doc.get('scale')}, "
           f"hpcneuro {doc.get('hpcneuro_version')}, {fmt(doc.get('seconds', float('nan')))} s). "
           f"Verdicts are computed from the numbers below by the rules stated with each "
           f"finding (hpcneuro/findings.py); O in {units}, {pct} bootstrap intervals.", ""]
    for f in doc["findings"]:
        out += [f"## {f['id']}. {f['title']}: **{f['verdict'].upper()}**", "",
                f"Claim: {f['claim']}", "", f"Rule: {f['rule']}", ""]
        for e in f["evidence"]:
            out += [f"### {e['name']}: {e['verdict']}", ""]
            if e["kind"] == "comparison":
                out += [f"A = {e['a_label']} (`{e['a']}`); control B = {e['b_label']} "
                        f"(`{e['b']}`); claimed: intervals {e['claimed']} 0.", "",
                        "| order | mean O of A | interval | control B | interval | A - B | "
                        "interval | A | A - B | verdict |",
                        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
                for o in e["orders"]:
                    out.append(f"| {o['order']} | {fmt(o['mean_a'])} | {_ci(o['mean_a_ci'])} | "
                               f"{fmt(o['mean_b'])} | {_ci(o['mean_b_ci'])} | {fmt(o['diff'])} | "
                               f"{_ci(o['diff_ci'])} | {o['side_mean']} | {o['side_diff']} | "
                               f"{o['verdict']} |")
            elif e["kind"] == "genes":
                out += [f"`{e['a']}`; claimed: the interval above 0 and above the "
                        "shuffled-genes null.", "",
                        "| order | cells | mean O | interval | % redundant | null mean | "
                        "null range | vs 0 | vs null | verdict |",
                        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
                for o in e["orders"]:
                    out.append(f"| {o['order']} | {o['n_cells']} | {fmt(o['mean'])} | "
                               f"{_ci(o['mean_ci'])} | {fmt(100 * o['frac_redundant'])} | "
                               f"{fmt(o['null_mean'])} | {_ci(o['null_range'])} | "
                               f"{o['side_zero']} | {o['side_null']} | {o['verdict']} |")
            else:  # subset
                out += [f"`{e['a']}`: k90 = {fmt(e['k90'])} of {fmt(e['n_genes'])} channel "
                        f"genes (small: at most {fmt(e['small_k'])}); balanced accuracy at "
                        f"k90 {fmt(e['accuracy_at_k90'])} vs random {fmt(e['k90'])}-gene "
                        f"subsets' 95th percentile {fmt(e['random_p95_at_k90'])}; all genes "
                        f"{fmt(e['all_accuracy'])}, chance {fmt(e['chance'])}."]
            out.append("")
    if doc.get("ensembles"):
        out += ["## Ensembles", "", "| ensemble | config | models | finished | valid | "
                "overrides |", "| --- | --- | --- | --- | --- | --- |"]
        for name, e in doc["ensembles"].items():
            out.append(f"| {name} | `{e['config']}` | {fmt(e['n_samples'])} | "
                       f"{fmt(e['n_finished'])} | {fmt(e['n_valid'])} | "
                       f"{' '.join('`' + o + '`' for o in e['overrides']) or '-'} |")
        out.append("")
    return "\n".join(out)


# --- SUMMARY.txt: one line per result, from the findings.json document alone ----------------

def lean(sides: Sequence[str], orders: Sequence[int]) -> str:
    """How mean O leans over the orders, from each order's interval against 0."""
    if sides and all(s == STRADDLES for s in sides):
        return "neutral (every interval contains 0)"
    if sides and all(s == BELOW for s in sides):
        return "synergy-dominated (every interval below 0)"
    if sides and all(s == ABOVE for s in sides):
        return "redundancy-dominated (every interval above 0)"
    by = {s: [str(k) for k, t in zip(orders, sides) if t == s]
          for s in (BELOW, ABOVE, STRADDLES)}
    return "mixed: " + "; ".join(f"{s} 0 at order {', '.join(v)}" if s != STRADDLES
                                 else f"containing 0 at order {', '.join(v)}"
                                 for s, v in by.items() if v)


def _span(orders: Sequence[dict], value: str, interval: str) -> str:
    """The value with its interval at the lowest and the highest order."""
    ends = [orders[0]] if len(orders) == 1 else [orders[0], orders[-1]]
    return ", ".join(f"order {o['order']} {fmt(o[value])} {_ci(o[interval])}" for o in ends)


def _valid(doc: dict[str, Any], name: str) -> str:
    e = (doc.get("ensembles") or {}).get(name)
    return f"{e['n_valid']} valid of {e['n_samples']}" if e else "?"


def _evidence_line(e: dict[str, Any]) -> str:
    if e["kind"] == "unavailable":
        return f"{e['name']}: not available ({e['reason']})"
    if e["kind"] == "subset":
        return (f"{e['name']}: {e['verdict']}, k90 = {fmt(e['k90'])} genes, accuracy "
                f"{fmt(e['accuracy_at_k90'])} vs random {fmt(e['random_p95_at_k90'])}")
    o = e["orders"]
    if not o:
        return f"{e['name']}: {e['verdict']}, no orders analysed"
    value, interval = (("diff", "diff_ci") if e["kind"] == "comparison" else
                       ("mean", "mean_ci"))
    what = "difference from its control" if e["kind"] == "comparison" else "mean O"
    text = f"{e['name']}: {e['verdict']}; {what}: {_span(o, value, interval)}"
    if e["verdict"] == UNDECIDED:
        open_ = [str(r["order"]) for r in o if r["verdict"] == UNDECIDED]
        text += (f" (an interval contains its reference at order {', '.join(open_)}: too "
                 "few models to decide)")
    return text


def summary(doc: dict[str, Any]) -> list[str]:
    """What a reproduce run found, one line per result, every word chosen by the numbers
    of a findings.json document: the parameter-only lean of the population (from finding
    1's control, :func:`lean`), then each finding's verdict with its evidence."""
    lines = []
    units = doc.get("units", "nats")
    for f in doc["findings"]:
        comp = [e for e in f["evidence"] if e["kind"] == "comparison"]
        if f["id"] == 1 and comp and comp[0]["orders"]:
            o = comp[0]["orders"]
            how = lean([side(*r["mean_b_ci"]) for r in o], [r["order"] for r in o])
            lines.append(f"Parameters alone, MCMC population ({_valid(doc, 'population')} "
                         f"models): mean O {how}; {_span(o, 'mean_b', 'mean_b_ci')} {units}.")
        lines.append(f"Finding {f['id']}, {f['title'].lower()}: {f['verdict'].upper()}: "
                     + "; ".join(_evidence_line(e) for e in f["evidence"]) + f" ({units}).")
    return lines
