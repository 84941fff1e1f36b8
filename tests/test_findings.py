"""The verdict logic of hpcneuro reproduce (hpcneuro/findings.py) on inputs with a known
answer: hand-made intervals for every branch, and real analyses of synthetic data whose
O-information sign is known from theory (a shared latent: redundancy; a target that is
the sum of independent variables: synergy; independent variables: O = 0)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hpcneuro import findings as F
from hpcneuro.oinfo import compute_oinfo
from hpcneuro.oinfo.stats import compare

NAN = float("nan")


def test_side_of_an_interval():
    assert F.side(0.1, 0.3) == F.ABOVE
    assert F.side(-0.3, -0.1) == F.BELOW
    assert F.side(-0.1, 0.1) == F.STRADDLES
    assert F.side(0.0, 0.2) == F.STRADDLES          # touching 0 is not above it
    assert F.side(NAN, 0.2) == F.STRADDLES           # no interval, no decision
    assert F.side(None, None) == F.STRADDLES         # NaN as findings.json stores it
    # against a null band
    assert F.side(0.2, 0.3, 0.0, 0.15) == F.ABOVE
    assert F.side(0.1, 0.3, 0.0, 0.15) == F.STRADDLES
    assert F.side(-0.5, -0.2, -0.1, 0.1) == F.BELOW


def test_claims_and_their_combination():
    A, B, S = F.ABOVE, F.BELOW, F.STRADDLES
    assert F.claim_verdict([A, A, A], A) == F.HOLDS
    assert F.claim_verdict([A, S, A], A) == F.UNDECIDED
    assert F.claim_verdict([A, S, B], A) == F.FAILS      # a contradiction decides
    assert F.claim_verdict([B, B], B) == F.HOLDS
    assert F.claim_verdict([A], B) == F.FAILS
    assert F.claim_verdict([], A) == F.UNDECIDED
    with pytest.raises(ValueError):
        F.claim_verdict([A], S)
    assert F.combine([F.HOLDS, F.HOLDS]) == F.HOLDS
    assert F.combine([F.HOLDS, F.UNDECIDED]) == F.UNDECIDED
    assert F.combine([F.UNDECIDED, F.FAILS, F.HOLDS]) == F.FAILS
    assert F.combine([]) == F.UNDECIDED


def _row(order, mean_a_ci, diff_ci, mean_a=0.0, mean_b=0.0):
    return dict(order=order, n_a=10, n_b=10, mean_a=mean_a, mean_b=mean_b,
                diff=mean_a - mean_b, mean_a_ci=mean_a_ci, mean_b_ci=(-0.01, 0.01),
                diff_ci=diff_ci, frac_syn_a=0.5, frac_syn_b=0.5, n_boot=100)


@pytest.mark.parametrize("rows, verdict", [
    ([_row(3, (0.02, 0.05), (0.01, 0.04)), _row(4, (0.03, 0.09), (0.02, 0.08))], F.HOLDS),
    # the ensemble's own interval straddles 0 at one order: undecided
    ([_row(3, (-0.01, 0.05), (0.01, 0.04)), _row(4, (0.03, 0.09), (0.02, 0.08))],
     F.UNDECIDED),
    # the difference from the control straddles 0: undecided
    ([_row(3, (0.02, 0.05), (-0.01, 0.04))], F.UNDECIDED),
    # below the control at one order: does not hold, whatever the others say
    ([_row(3, (0.02, 0.05), (0.01, 0.04)), _row(4, (0.01, 0.09), (-0.08, -0.02))], F.FAILS),
    # no bootstrap (NaN intervals): undecided
    ([_row(3, (NAN, NAN), (NAN, NAN))], F.UNDECIDED),
])
def test_redundancy_evidence_from_comparison_rows(rows, verdict):
    e = F.comparison_evidence("x", rows, F.ABOVE, "a.h5", "b.h5", "A", "B")
    assert e["verdict"] == verdict
    assert [o["order"] for o in e["orders"]] == [r["order"] for r in rows]


def _latent(t, n, rho, rng):
    z = rng.standard_normal((t, 1))
    return math.sqrt(rho) * z + math.sqrt(1 - rho) * rng.standard_normal((t, n))


def _analysis(x, names, target=None, seed=0):
    return compute_oinfo(x, names, min_order=3, max_order=4, target=target, bootstrap=60,
                         bias_correct=True, seed=seed)


def test_finding_2_on_real_analyses_with_a_known_answer():
    """Coregulated (shared latent) vs independent: redundancy holds; swapped: fails;
    two independent ensembles: undecided (both intervals straddle 0)."""
    rng = np.random.default_rng(1)
    names = [f"p{i}" for i in range(6)]
    coreg = _analysis(_latent(600, 6, 0.6, rng), names, seed=1)
    indep = _analysis(rng.standard_normal((600, 6)), names, seed=2)
    indep2 = _analysis(rng.standard_normal((600, 6)), names, seed=3)

    def ev(a, b):
        return F.comparison_evidence("e", compare(a, b), F.ABOVE, "a", "b", "A", "B")

    assert ev(coreg, indep)["verdict"] == F.HOLDS
    assert ev(indep, coreg)["verdict"] == F.FAILS
    e = ev(indep, indep2)
    assert e["verdict"] == F.UNDECIDED
    assert all(o["side_diff"] == F.STRADDLES for o in e["orders"])
    both = F.finding(2, "t", "c", [ev(coreg, indep), ev(coreg, indep2)])
    assert both["verdict"] == F.HOLDS and both["rule"] == F.RULES[2]
    assert F.finding(2, "t", "c", [ev(coreg, indep), e])["verdict"] == F.UNDECIDED


def test_finding_1_on_real_analyses_with_a_known_answer():
    """A feature that is the sum of independent parameters makes every multiplet holding
    it synergistic (explaining away): targeted below the parameter-only control."""
    rng = np.random.default_rng(2)
    p = rng.standard_normal((800, 5))
    f = p.sum(axis=1, keepdims=True) + 0.3 * rng.standard_normal((800, 1))
    names = [f"p{i}" for i in range(5)]
    targeted = _analysis(np.hstack([p, f]), names + ["F"], target="F", seed=4)
    params = _analysis(p, names, seed=5)
    e = F.comparison_evidence("t", compare(targeted, params), F.BELOW, "a", "b", "A", "B")
    assert e["verdict"] == F.HOLDS
    # the same numbers read as a redundancy claim contradict it
    assert F.comparison_evidence("t", compare(targeted, params), F.ABOVE, "a", "b", "A",
                                 "B")["verdict"] == F.FAILS


def _stats(order, ci, null, mean=None):
    return dict(order=order, n_multiplets=20, n_cells=100,
                mean=mean if mean is not None else sum(ci) / 2, ci_low=ci[0], ci_high=ci[1],
                frac_redundant=0.7, null_mean=sum(null) / 2, null_low=null[0],
                null_high=null[1])


@pytest.mark.parametrize("stats, verdict", [
    ([_stats(3, (0.01, 0.02), (-0.001, 0.001)), _stats(4, (0.03, 0.05), (-0.002, 0.002))],
     F.HOLDS),
    ([_stats(3, (0.01, 0.02), (-0.001, 0.015))], F.UNDECIDED),     # within the null's range
    ([_stats(3, (-0.01, 0.02), (-0.001, 0.001))], F.UNDECIDED),    # straddles 0
    ([_stats(3, (-0.03, -0.02), (-0.001, 0.001))], F.FAILS),       # synergistic genes
])
def test_genes_evidence(stats, verdict):
    assert F.genes_evidence("g", stats, "genes.h5")["verdict"] == verdict


@pytest.mark.parametrize("k90, forward, random95, verdict", [
    (3, [0.5, 0.7, 0.85, 0.9], [0.4, 0.5, 0.6, 0.7], F.HOLDS),
    (3, [0.5, 0.7, 0.85, 0.9], [0.4, 0.5, 0.86, 0.9], F.UNDECIDED),   # no better than random
    (0, [0.5, 0.6, 0.65, 0.7, 0.7], [0.4, 0.5, 0.6, 0.7, 0.7], F.FAILS),  # never reaches 90%
    (7, [0.5] * 10, [0.4] * 10, F.FAILS),                              # not small (> 5)
    (0, [0.5, 0.6, 0.65], [0.4, 0.5, 0.6], F.UNDECIDED),   # selection stopped at 3 < 5
])
def test_subset_evidence(k90, forward, random95, verdict):
    e = F.subset_evidence("s", k90, 60, 0.9, 0.25, forward, random95, 5, "genes.h5")
    assert e["verdict"] == verdict
    if 1 <= k90 <= len(forward):
        assert e["accuracy_at_k90"] == forward[k90 - 1]
    else:
        assert math.isnan(e["accuracy_at_k90"])


def test_markdown_quotes_every_number_and_verdict():
    rows = [_row(3, (0.02, 0.05), (0.01, 0.04), mean_a=0.0312345, mean_b=0.0011111)]
    doc = {"scale": "t", "command": "hpcneuro reproduce", "hpcneuro_version": "0",
           "seconds": 1.5, "units": "nats", "level": 0.95,
           "findings": [F.finding(2, "Redundancy", "claim", [
               F.comparison_evidence("m", rows, F.ABOVE, "m.h5", "c.h5", "M", "C")])],
           "ensembles": {}}
    md = F.markdown(doc)
    assert "**HOLDS**" in md and F.RULES[2] in md
    for v in (0.0312345, 0.0011111, 0.0312345 - 0.0011111, 0.02, 0.05, 0.01, 0.04):
        assert F.fmt(v) in md
    assert F.fmt(None) == "n/a" and F.fmt(3) == "3" and F.fmt(0.123456) == "0.1235"


@pytest.mark.parametrize("b_cis, lean", [
    ([(-0.01, 0.01), (-0.02, 0.03)], "neutral (every interval contains 0)"),
    ([(-0.03, -0.01), (-0.05, -0.02)], "synergy-dominated (every interval below 0)"),
    ([(0.01, 0.03), (0.02, 0.05)], "redundancy-dominated (every interval above 0)"),
    ([(-0.03, -0.01), (-0.02, 0.03)], "mixed: below 0 at order 3; containing 0 at order 4"),
])
def test_summary_lines_follow_from_the_numbers(b_cis, lean):
    """SUMMARY.txt: the population's parameter-only lean from the control's intervals,
    then one line per finding with its verdict; an undecided one says why."""
    r1 = [dict(_row(k, (-0.05, -0.02), d), mean_b_ci=b)
          for k, d, b in zip((3, 4), ((-0.04, -0.01), (-0.06, -0.03)), b_cis)]
    r2 = [_row(3, (0.02, 0.05), (-0.01, 0.04)), _row(4, (0.03, 0.09), (0.02, 0.08))]
    doc = {"units": "nats", "ensembles": {"population": {"n_valid": 42, "n_samples": 99}},
           "findings": [
               F.finding(1, "Synergy", "c", [F.comparison_evidence(
                   "targeted f", r1, F.BELOW, "t.h5", "p.h5", "T", "P")]),
               F.finding(2, "Redundancy", "c", [F.comparison_evidence(
                   "modules vs control", r2, F.ABOVE, "m.h5", "c.h5", "M", "C")])]}
    lines = F.summary(doc)
    assert len(lines) == 3
    assert lines[0].startswith("Parameters alone, MCMC population (42 valid of 99 models): "
                               f"mean O {lean}; order 3 0 [{F.fmt(b_cis[0][0])}, ")
    assert lines[1].startswith("Finding 1, synergy: HOLDS: targeted f: holds; difference "
                               "from its control: order 3 0 [-0.04, -0.01], order 4 0 "
                               "[-0.06, -0.03]")
    assert lines[2].startswith("Finding 2, redundancy: UNDECIDED: modules vs control: "
                               "undecided;")
    assert "contains its reference at order 3: too few models to decide" in lines[2]
