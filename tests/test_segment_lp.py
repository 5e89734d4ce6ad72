"""The segment LP against optima derived independently (vertex enumeration, hand algebra)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from offerflow.optimize.segment_lp import InfeasiblePlanError, optimize_segments

ARMS = ["dm1", "dm2", "dm3"]
COST = {"dm1": 0.0, "dm2": 10.0, "dm3": 20.0}


def tiny_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment_id": [1, 2],
            "seg": ["young", "old"],
            "n_customers": [100, 300],
            "prob_dm1": [0.10, 0.30],
            "prob_dm2": [0.20, 0.34],
            "prob_dm3": [0.45, 0.40],
        }
    )


def vertex_optimum(table: pd.DataFrame, budget: float, min_share: float) -> tuple[float, np.ndarray]:
    """Best basic feasible solution: every vertex is 2 equalities + 4 active inequalities (of 7)."""
    n = table["n_customers"].to_numpy(float)
    p = table[[f"prob_{a}" for a in ARMS]].to_numpy(float)
    c = np.array([COST[a] for a in ARMS])
    gain = (n[:, None] * (p - p[:, [0]])).ravel()
    spend = (c[None, :] * n[:, None] * p).ravel()
    equalities = np.kron(np.eye(2), np.ones(3))
    rows = [(np.eye(6)[i], min_share) for i in range(6)] + [(spend, budget)]
    best, best_x = -np.inf, None
    for active in itertools.combinations(range(7), 4):
        A = np.vstack([equalities] + [rows[i][0] for i in active])
        b = np.concatenate([[1, 1], [rows[i][1] for i in active]])
        if abs(np.linalg.det(A)) < 1e-12:
            continue
        x = np.linalg.solve(A, b)
        if (x >= min_share - 1e-9).all() and spend @ x <= budget + 1e-7 and gain @ x > best:
            best, best_x = gain @ x, x
    return best, best_x


@pytest.mark.parametrize("budget", [460.0, 900.0, 1500.0, 4000.0])
def test_matches_the_best_vertex(budget):
    table = tiny_table()
    result = optimize_segments(table, ["seg"], ARMS, "dm1", COST, budget, 0.1)
    expected, x = vertex_optimum(table, budget, 0.1)
    assert result.metrics["objective"] == pytest.approx(expected, rel=1e-8, abs=1e-8)
    assert result.plan["share"].to_numpy() == pytest.approx(x, abs=1e-7)
    assert result.metrics["expected_cost"] <= budget + 1e-6


def test_slack_budget_gives_the_best_offer_and_zero_shadow_price():
    # per customer, dm3 adds 0.35 (young) and 0.10 (old) conversions: both segments take dm3
    # beyond the 0.1 minimum shares -> gain = 0.8*(100*0.35 + 300*0.10) + 0.1*(100*0.10 + 300*0.04)
    result = optimize_segments(tiny_table(), ["seg"], ARMS, "dm1", COST, 1e6, 0.1)
    assert result.metrics["objective"] == pytest.approx(0.8 * 65 + 0.1 * 22)
    assert result.metrics["budget_shadow_price"] == 0
    assert not result.metrics["budget_binding"]
    dm3 = result.plan[result.plan["offer"] == "dm3"]["share"]
    assert dm3.to_numpy() == pytest.approx([0.8, 0.8])


def test_shadow_price_is_the_slope_of_the_optimum_in_the_budget():
    table = tiny_table()
    at = optimize_segments(table, ["seg"], ARMS, "dm1", COST, 1500.0, 0.1).metrics
    above = optimize_segments(table, ["seg"], ARMS, "dm1", COST, 1501.0, 0.1).metrics
    assert at["budget_binding"]
    assert at["budget_shadow_price"] == pytest.approx(above["objective"] - at["objective"], rel=1e-6)


def test_infeasible_budget_names_the_smallest_feasible_budget():
    # minimum shares alone: 0.1 of everyone gets dm2 and dm3, the rest dm1 ->
    # 10*0.1*(100*0.2 + 300*0.34) + 20*0.1*(100*0.45 + 300*0.40) = 122 + 330 = 452 USD
    with pytest.raises(InfeasiblePlanError, match="452.00 USD") as caught:
        optimize_segments(tiny_table(), ["seg"], ARMS, "dm1", COST, 100.0, 0.1)
    assert caught.value.smallest_feasible_budget == pytest.approx(452.0)


def test_bad_tables_are_rejected():
    table = tiny_table()
    with pytest.raises(ValueError, match="prob_dm3"):
        optimize_segments(table.drop(columns="prob_dm3"), ["seg"], ARMS, "dm1", COST, 500, 0.1)
    broken = table.assign(prob_dm2=[0.2, 1.3])
    with pytest.raises(ValueError, match=r"prob_dm2 must be within \[0, 1\]"):
        optimize_segments(broken, ["seg"], ARMS, "dm1", COST, 500, 0.1)
    with pytest.raises(InfeasiblePlanError, match="min_share 0.4"):
        optimize_segments(table, ["seg"], ARMS, "dm1", COST, 500, 0.4)


def test_example_plan_respects_every_constraint_and_beats_simple_plans():
    from conftest import ROOT
    from offerflow.segments import segment_catalog

    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    segments = ["age_cat", "freq_cat"]
    table = segment_catalog(customers, segments, reference_table=truth).merge(truth.drop(columns="segment_id"), on=segments)
    result = optimize_segments(table, segments, ARMS, "dm1", COST, 10_000, 0.1)
    shares = result.plan.pivot(index="segment_id", columns="offer", values="share")
    assert shares.sum(axis=1).to_numpy() == pytest.approx(1.0)
    assert (shares >= 0.1 - 1e-9).all().all()
    assert result.metrics["expected_cost"] <= 10_000 + 1e-6
    # feasible untargeted plans (the same dm2/dm3 mix in every segment, scaled to the budget) are worse
    n = table["n_customers"].to_numpy(float)
    p = table[["prob_dm1", "prob_dm2", "prob_dm3"]].to_numpy(float)
    checked = 0
    for mix in ([0.5, 0.5], [0.6, 0.4], [0.7, 0.3], [0.8, 0.2]):
        unit_cost = (n * (10 * mix[0] * p[:, 1] + 20 * mix[1] * p[:, 2])).sum()
        scale = min(0.9, 10_000 / unit_cost)  # share of each segment that gets a coupon
        if min(mix) * scale < 0.1:
            continue
        gain = (n * scale * (mix[0] * (p[:, 1] - p[:, 0]) + mix[1] * (p[:, 2] - p[:, 0]))).sum()
        assert result.metrics["objective"] > gain
        checked += 1
    assert checked >= 2
