"""Segment LP and optimize stage, checked against optima found without the solver.

References: enumeration of every LP vertex with numpy, hand algebra on a 3 x 3 instance, and the
greedy that solves this LP exactly (each segment's offers form a concave gain-vs-cost curve, so
buying the steepest remaining edge first is optimal: the LP relaxation of a multiple-choice knapsack).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from offerflow.config import load_params
from offerflow.catalog import Catalog
from offerflow.io import InputFileError, read_table, write_csv
from offerflow.optimize.segment_lp import InfeasiblePlanError, ProbabilityTableError, optimize_segments
from offerflow.stages import run_optimize
from offerflow.segments import segment_catalog

ARMS = ["dm1", "dm2", "dm3"]
COST = {"dm1": 0.0, "dm2": 10.0, "dm3": 20.0}
MIN_SHARE = 0.1
EXAMPLE_SEGMENTS = ["age_cat", "freq_cat"]

# Per whole segment, (expected coupon spend, incremental conversions) of each offer:
#   A (N=100): dm1 (0, 0)  dm2 (200, 10)   dm3 (800, 30)    edges: dm1->dm2 0.05/USD, dm2->dm3 1/30/USD
#   B (N=200): dm1 (0, 0)  dm2 (520, 12)   dm3 (1200, 20)   edges: 12/520, then 8/680
#   C (N=300): dm1 (0, 0)  dm2 (1260, 36)  dm3 (2400, 30)   dm3 is dominated: only dm1->dm2 at 36/1260
# Minimum shares cost 0.1 x (200+800+520+1200+1260+2400) = 638 USD and earn 0.1 x 138 = 13.8.
# The free 0.7 of each segment buys the edges steepest first: A12 to 778 USD, A23 to 1198, C12 to 2080,
# B12 to 2444, B23 to 2920; above 2920 the budget is slack.
FLOOR = 638.0


def tiny_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment_id": [1, 2, 3],
            "seg": ["A", "B", "C"],
            "n_customers": [100, 200, 300],
            "prob_dm1": [0.10, 0.20, 0.30],
            "prob_dm2": [0.20, 0.26, 0.42],
            "prob_dm3": [0.40, 0.30, 0.40],
        }
    )


def coefficients(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(gain, spend) per (segment, arm), rows flattened segment-major like the plan."""
    n = table["n_customers"].to_numpy(float)[:, None]
    p = table[[f"prob_{a}" for a in ARMS]].to_numpy(float)
    c = np.array([COST[a] for a in ARMS])[None, :]
    return n * (p - p[:, [0]]), c * n * p


def vertex_optimum(table: pd.DataFrame, budget: float, min_share: float) -> tuple[float, np.ndarray]:
    """Best vertex: S equalities plus every choice of S*K - S active rows among the bounds and the budget."""
    gain, spend = (a.ravel() for a in coefficients(table))
    n_seg, n_var = len(table), gain.size
    equalities = np.kron(np.eye(n_seg), np.ones(len(ARMS)))
    inequalities = [(row, min_share) for row in np.eye(n_var)] + [(spend, budget)]
    best, best_x = -np.inf, None
    for active in itertools.combinations(range(len(inequalities)), n_var - n_seg):
        A = np.vstack([equalities, *(inequalities[i][0] for i in active)])
        if abs(np.linalg.det(A)) < 1e-9:
            continue
        x = np.linalg.solve(A, np.concatenate([np.ones(n_seg), [inequalities[i][1] for i in active]]))
        if (x >= min_share - 1e-9).all() and spend @ x <= budget + 1e-7 and gain @ x > best + 1e-9:
            best, best_x = gain @ x, x
    return best, best_x


def greedy_optimum(gain: np.ndarray, spend: np.ndarray, budget: float, min_share: float) -> float:
    """Exact optimum of the LP by buying upper-hull edges of each segment's (spend, gain) curve, steepest first."""
    n_arms = gain.shape[1]
    free = 1 - n_arms * min_share
    value, left, edges = min_share * gain.sum(), budget - min_share * spend.sum(), []
    for g, s in zip(gain * free, spend * free):
        at = min(range(n_arms), key=lambda d: (s[d], -g[d]))  # the cheapest offer starts the curve
        value, left = value + g[at], left - s[at]
        while True:
            ahead = [d for d in range(n_arms) if s[d] > s[at] and g[d] > g[at]]
            if not ahead:
                break
            step = max(ahead, key=lambda d: ((g[d] - g[at]) / (s[d] - s[at]), -s[d]))
            edges.append(((g[step] - g[at]) / (s[step] - s[at]), s[step] - s[at]))
            at = step
    assert left >= 0, "budget below the minimum shares"
    for slope, width in sorted(edges, reverse=True):
        bought = min(width, left)
        value, left = value + slope * bought, left - bought
    return value


def solve(table: pd.DataFrame, budget: float, min_share: float = MIN_SHARE):
    return optimize_segments(table, ["seg"], ARMS, "dm1", COST, budget, min_share)


def example_table() -> pd.DataFrame:
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    catalog = segment_catalog(customers, EXAMPLE_SEGMENTS, reference_table=truth)
    return catalog.merge(truth.drop(columns="segment_id"), on=EXAMPLE_SEGMENTS)


# -- the LP against independent optima ------------------------------------------------------------


@pytest.mark.parametrize("budget", [700.0, 1000.0, 1500.0, 2200.0, 2600.0, 5000.0])
def test_optimum_equals_the_best_vertex(budget):
    result = solve(tiny_table(), budget)
    expected, x = vertex_optimum(tiny_table(), budget, MIN_SHARE)
    assert result.metrics["objective"] == pytest.approx(expected, abs=1e-7)
    assert result.plan["share"].to_numpy() == pytest.approx(x, abs=1e-7)
    assert result.metrics["expected_cost"] <= budget + 1e-6


def test_hand_derived_plan_at_1500_usd():
    # A takes dm3 on its free 0.7 (costs 140 + 420 up to 1198 USD); the remaining 302 USD move
    # t = 302 / 1260 of C from dm1 to dm2. Gain = 13.8 + 0.7*10 + 0.7*20 + 36 t.
    t = 302 / 1260
    result = solve(tiny_table(), 1500.0)
    shares = result.plan.pivot(index="seg", columns="offer", values="share").loc[["A", "B", "C"], ARMS]
    expected = np.array([[0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.8 - t, 0.1 + t, 0.1]])
    assert shares.to_numpy() == pytest.approx(expected, abs=1e-9)
    assert result.metrics["objective"] == pytest.approx(13.8 + 7 + 14 + 36 * t, abs=1e-7)
    assert result.metrics["budget_shadow_price"] == pytest.approx(36 / 1260, rel=1e-9)
    assert result.metrics["budget_binding"] is True


def test_slack_budget_gives_each_segment_its_best_offer_and_a_zero_price():
    # the largest incremental gain per segment: A dm3 (30), B dm3 (20), C dm2 (36 > 30)
    result = solve(tiny_table(), 50_000.0)
    shares = result.plan.pivot(index="seg", columns="offer", values="share").loc[["A", "B", "C"], ARMS]
    assert shares.to_numpy() == pytest.approx(np.array([[0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1]]), abs=1e-12)
    assert result.metrics["objective"] == pytest.approx(13.8 + 0.7 * (30 + 20 + 36), abs=1e-9)
    assert result.metrics["expected_cost"] == pytest.approx(2920.0, abs=1e-6)
    assert result.metrics["budget_shadow_price"] == 0
    assert result.metrics["budget_binding"] is False


@pytest.mark.parametrize(
    "budget, slope", [(700.0, 10 / 200), (1000.0, 20 / 600), (2200.0, 12 / 520), (2600.0, 8 / 680)]
)
def test_shadow_price_is_the_slope_of_the_optimum_in_the_budget(budget, slope):
    at = solve(tiny_table(), budget).metrics
    above = solve(tiny_table(), budget + 5).metrics["objective"]
    below = solve(tiny_table(), budget - 5).metrics["objective"]
    assert at["budget_shadow_price"] > 0  # sign: more budget buys more conversions in a max problem
    assert at["budget_shadow_price"] == pytest.approx((above - at["objective"]) / 5, rel=1e-7)
    assert at["budget_shadow_price"] == pytest.approx((at["objective"] - below) / 5, rel=1e-7)
    assert at["budget_shadow_price"] == pytest.approx(slope, rel=1e-9)


def test_a_budget_below_the_minimum_shares_names_the_smallest_feasible_budget():
    with pytest.raises(InfeasiblePlanError, match=r"Smallest feasible budget: 638\.00 USD") as caught:
        solve(tiny_table(), 600.0)
    assert caught.value.smallest_feasible_budget == pytest.approx(FLOOR, abs=1e-7)
    exact = solve(tiny_table(), FLOOR)  # exactly enough: min shares, the rest on the free control
    assert exact.metrics["objective"] == pytest.approx(13.8, abs=1e-7)


def test_free_offers_need_no_budget():
    # no offer costs anything: even a zero budget buys every segment its best offer, and money is worth nothing
    free = {arm: 0.0 for arm in ARMS}
    result = optimize_segments(tiny_table(), ["seg"], ARMS, "dm1", free, 0.0, MIN_SHARE)
    best = result.plan.loc[result.plan["share"] > 0.5, "offer"].tolist()
    assert best == ["dm3", "dm3", "dm2"]
    assert result.metrics["objective"] == pytest.approx(13.8 + 0.7 * (30 + 20 + 36), abs=1e-9)
    assert result.metrics["budget_shadow_price"] == 0 and result.metrics["expected_cost"] == 0


def test_zero_customer_segments_are_left_out_of_the_plan():
    table = pd.concat(
        [tiny_table(), pd.DataFrame({"segment_id": [9], "seg": ["empty"], "n_customers": [0]})], ignore_index=True
    )
    result = solve(table, 1500.0)
    assert list(result.plan["segment_id"].unique()) == [1, 2, 3]
    assert result.metrics["objective"] == pytest.approx(solve(tiny_table(), 1500.0).metrics["objective"], abs=1e-12)


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda t: t.drop(columns="prob_dm3"), ProbabilityTableError, r"lacks column\(s\) \['prob_dm3'\]"),
        (
            lambda t: t.assign(prob_dm2=[0.2, 1.3, 0.4]),
            ProbabilityTableError,
            r"prob_dm2 must be within \[0, 1\].*'segment_id': 2",
        ),
        (lambda t: t.assign(prob_dm1=[0.1, None, 0.3]), ProbabilityTableError, r"prob_dm1 .*'segment_id': 2"),
        (lambda t: t.assign(n_customers=[100, -4, 300]), ProbabilityTableError, r"n_customers .*-4"),
        (lambda t: t.assign(segment_id=[1, 1, 3]), ProbabilityTableError, r"segment_id must be unique.*\[1\]"),
    ],
)
def test_bad_tables_are_rejected_naming_column_and_rows(change, error, message):
    with pytest.raises(error, match=message):
        solve(change(tiny_table()), 1500.0)


def test_impossible_arguments_are_rejected():
    with pytest.raises(InfeasiblePlanError, match=r"min_share 0.4 x 3 offers") as caught:
        solve(tiny_table(), 1500.0, min_share=0.4)
    assert caught.value.smallest_feasible_budget is None
    with pytest.raises(ValueError, match="control arm 'dm0'"):
        optimize_segments(tiny_table(), ["seg"], ARMS, "dm0", COST, 1500.0, MIN_SHARE)
    with pytest.raises(ValueError, match=r"no entry for arm\(s\) \['dm3'\]"):
        optimize_segments(tiny_table(), ["seg"], ARMS, "dm1", {"dm1": 0, "dm2": 10}, 1500.0, MIN_SHARE)


# -- the example campaign ---------------------------------------------------------------------------


def test_example_plan_keeps_every_constraint_and_beats_simple_plans():
    table = example_table()
    result = optimize_segments(table, EXAMPLE_SEGMENTS, ARMS, "dm1", COST, 10_000, MIN_SHARE)
    shares = result.plan.pivot(index="segment_id", columns="offer", values="share")[ARMS]
    assert shares.sum(axis=1).to_numpy() == pytest.approx(1.0, abs=1e-9)
    assert (shares >= MIN_SHARE - 1e-12).all().all()
    assert result.metrics["expected_cost"] <= 10_000 + 1e-6
    assert result.plan["expected_cost"].sum() == pytest.approx(result.metrics["expected_cost"], abs=1e-4)

    n = table["n_customers"].to_numpy(float)[:, None]
    gain, spend = coefficients(table)
    assert result.metrics["objective"] == pytest.approx(greedy_optimum(gain, spend, 10_000, MIN_SHARE), abs=1e-6)

    def heuristic(arm: int) -> tuple[float, float]:
        """Min shares everywhere, then the same fraction of every segment's rest on `arm` (the rest on dm1)."""
        x = np.full(gain.shape, MIN_SHARE)
        rest = 1 - 3 * MIN_SHARE
        room, unit = 10_000 - (spend * x).sum(), rest * spend[:, arm].sum()
        fraction = 1.0 if unit <= room else room / unit
        x[:, arm] += fraction * rest
        x[:, 0] += (1 - fraction) * rest
        assert x.sum(axis=1) == pytest.approx(1.0) and (spend * x).sum() <= 10_000 + 1e-6
        return float((gain * x).sum()), fraction

    values = {ARMS[arm]: heuristic(arm) for arm in range(3)}
    assert values["dm1"][1] == 1.0 and values["dm2"][1] < 1 and values["dm3"][1] < 1  # coupons hit the budget
    for value, _ in values.values():
        assert result.metrics["objective"] >= value - 1e-9
    assert result.metrics["objective"] > max(value for value, _ in values.values()) + 1  # targeting pays
    assert n.sum() == result.metrics["customers"] == 5000


# -- the stage runner --------------------------------------------------------------------------------


def stage_params(project, **overrides):
    """params.yaml without frontier and figures (test_optimize_frontier_risk.py covers those)."""
    quick = {"optimize.frontier.enabled": False, "optimize.figures": False}
    return load_params(project / "params.yaml", overrides={**quick, **overrides})


def test_run_optimize_on_a_given_table_writes_plan_and_metrics_byte_identically(project):
    params = stage_params(project, **{"optimize.probability_table": "data/external/visit_probability.csv"})
    layout = Catalog(params)
    metrics = run_optimize(params)
    first = (layout.segment_plan.read_bytes(), layout.optimize_metrics.read_bytes())
    assert json.loads(first[1]) == json.loads(json.dumps(metrics))
    reference = optimize_segments(example_table(), EXAMPLE_SEGMENTS, ARMS, "dm1", COST, 10_000, MIN_SHARE)
    written = pd.read_csv(layout.segment_plan)
    assert list(written.columns) == list(reference.plan.columns)
    assert written["share"].to_numpy() == pytest.approx(reference.plan["share"].to_numpy(), abs=1e-12)
    assert metrics["objective"] == reference.metrics["objective"]
    assert metrics["solver"]["termination"] == "optimal"
    truth = metrics["evaluation_on_truth"]  # the given table is the truth: the plan is the true optimum
    assert truth["true_optimum"] == metrics["objective"]
    assert truth["ratio_to_true_optimum"] == pytest.approx(1.0, abs=1e-9)

    run_optimize(params)
    assert (layout.segment_plan.read_bytes(), layout.optimize_metrics.read_bytes()) == first


@pytest.mark.parametrize(
    "mistake, overspends",
    [
        ("segments_mixed_up", False),  # dm3 probabilities of the segments in reverse order
        ("dm3_undervalued", True),  # dm3 looks cheaper than it is: the plan overspends under the truth
    ],
)
def test_run_optimize_scores_a_learned_table_on_the_truth(project, mistake, overspends):
    params = stage_params(project)
    layout = Catalog(params)
    truth = example_table()
    wrong_dm3 = truth["prob_dm3"].to_numpy()[::-1] if mistake == "segments_mixed_up" else truth["prob_dm3"] * 0.75
    write_csv(truth.assign(prob_dm3=wrong_dm3), layout.segment_probabilities)
    metrics = run_optimize(params)
    plan = read_table(layout.segment_plan)
    x = plan.pivot(index="segment_id", columns="offer", values="share").loc[truth["segment_id"], ARMS].to_numpy()
    gain, spend = coefficients(truth)
    value, cost = (gain * x).sum(), (spend * x).sum()
    evaluation = metrics["evaluation_on_truth"]
    assert evaluation["true_objective_of_plan"] == pytest.approx(value, rel=1e-9)
    assert evaluation["true_cost_of_plan"] == pytest.approx(cost, rel=1e-9)
    assert evaluation["true_cost_within_budget"] is (not overspends) is bool(cost <= 10_000 + 1e-6)
    best = greedy_optimum(gain, spend, 10_000, MIN_SHARE)
    assert evaluation["true_optimum"] == pytest.approx(best, abs=1e-6)
    assert evaluation["ratio_to_true_optimum"] == pytest.approx(value / best, rel=1e-9)
    assert (evaluation["ratio_to_true_optimum"] > 1) is overspends  # more money bought more conversions
    at_cost = greedy_optimum(gain, spend, cost, MIN_SHARE)
    assert evaluation["true_optimum_at_true_cost_of_plan"] == pytest.approx(at_cost, abs=1e-5)
    assert 0.5 < evaluation["ratio_at_equal_cost"] < 1 - 1e-3  # the wrong table targets worse at equal cost


def test_run_optimize_errors_name_the_file(project):
    layout = Catalog(stage_params(project))
    with pytest.raises(InputFileError, match="segment_probabilities.csv.*probabilities stage"):
        run_optimize(stage_params(project))
    partial = project / "data/external/partial.csv"
    example_table().drop(columns=["segment_id", "n_customers"]).iloc[1:].to_csv(partial, index=False)
    params = stage_params(project, **{"optimize.probability_table": "data/external/partial.csv"})
    with pytest.raises(InputFileError, match=r"partial.csv: no row for segment\(s\) of the customer file .*age~19"):
        run_optimize(params)
    broken = example_table().drop(columns=["n_customers"]).assign(prob_dm2=lambda t: t["prob_dm2"] + 0.6)
    broken.to_csv(partial, index=False)
    with pytest.raises(InputFileError, match=r"partial.csv: prob_dm2 must be within \[0, 1\]"):
        run_optimize(params)
    assert not layout.segment_plan.exists() and not layout.optimize_metrics.exists()
