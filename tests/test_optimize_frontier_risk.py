"""Budget frontier, recommended budget and budget risk, against numpy references and a seeded Monte Carlo.

Reference for the frontier: each segment's free share (1 - arms x min_share) walks the upper hull of its
(spend, gain) points; the optimum at a budget buys hull edges steepest first (greedy_optimum), so the
frontier's slope at a budget is the slope of the edge being bought there, the saturation budget is the
cost of all edges, and the budget maximizing v x gain - cost buys exactly the edges steeper than 1/v.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import SEED
from offerflow.config import load_params
from offerflow.catalog import Catalog
from offerflow.optimize.frontier import FRONTIER_COLUMNS, budget_frontier, recommend_budget, saturation_budget
from offerflow.optimize.risk import cost_moments, cost_risk, largest_mean_budget
from offerflow.optimize.segment_lp import InfeasiblePlanError, optimize_segments, plan_problem, prepare_problem
from offerflow.stages import run_optimize
from test_optimize_segment_lp import ARMS, COST, EXAMPLE_SEGMENTS, MIN_SHARE, coefficients, example_table, greedy_optimum, tiny_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def hull_edges(gain: np.ndarray, spend: np.ndarray, min_share: float) -> tuple[float, list[tuple[float, float]]]:
    """Cost of the minimum shares plus each segment's cheapest offer, and every hull edge (slope, width in USD)."""
    free = 1 - gain.shape[1] * min_share
    floor, edges = min_share * spend.sum(), []
    for g, s in zip(gain * free, spend * free):
        at = int(np.lexsort((-g, s))[0])  # cheapest offer, the better one on a cost tie
        floor += s[at]
        while True:
            ahead = [d for d in range(len(g)) if s[d] > s[at] and g[d] > g[at]]
            if not ahead:
                break
            slopes = {d: (g[d] - g[at]) / (s[d] - s[at]) for d in ahead}
            step = max(ahead, key=lambda d: (slopes[d], -s[d]))
            edges.append((slopes[step], s[step] - s[at]))
            at = step
    return floor, sorted(edges, reverse=True)


def slope_at(budget: float, floor: float, edges: list[tuple[float, float]]) -> float:
    """Slope of the frontier just above `budget` (0 once every edge is bought)."""
    left = budget - floor
    for slope, width in edges:
        if left < width:
            return slope
        left -= width
    return 0.0


def tiny_problem(**options):
    return prepare_problem(tiny_table(), ["seg"], ARMS, "dm1", COST, MIN_SHARE, **options)


def example_problem(**options):
    return prepare_problem(example_table(), EXAMPLE_SEGMENTS, ARMS, "dm1", COST, MIN_SHARE, **options)


# -- the frontier ------------------------------------------------------------------------------------


def test_tiny_frontier_matches_the_hull_by_hand():
    # edges: A 20 USD/conv up to 778, A 30 to 1198, C 35 to 2080, B 43.3 to 2444, B 85 to 2920
    frontier = budget_frontier(tiny_problem(), points=5)
    table = frontier.table
    assert frontier.smallest_feasible_budget == pytest.approx(638.0, abs=1e-7)
    assert frontier.saturation_budget == pytest.approx(2920.0, abs=1e-5)
    assert list(table.columns) == [c for c in FRONTIER_COLUMNS if c != "incremental_profit"]  # no value given
    assert table["budget"].tolist() == [638.0, 1208.5, 1779.0, 2349.5, 2920.0]
    gain, spend = coefficients(tiny_table())
    for row in table.itertuples():
        assert row.objective == pytest.approx(greedy_optimum(gain, spend, row.budget, MIN_SHARE), abs=1e-7)
        assert row.expected_cost == pytest.approx(row.budget, abs=1e-6)
        assert row.cost_per_incremental_conversion == pytest.approx(row.budget / row.objective, rel=1e-9)
    marginal = table["marginal_cost_per_incremental_conversion"].tolist()
    assert marginal[1:4] == pytest.approx([35.0, 35.0, 520 / 12], rel=1e-9)
    assert marginal[0] == pytest.approx(20.0, rel=1e-6)  # what the next dollar buys: the first edge
    assert pd.isna(marginal[4])  # at saturation more money buys nothing (the dual would say 85)


def test_saturation_is_the_cheapest_plan_reaching_the_optimum():
    # give C's dm3 the same gain as dm2 (p 0.42): both reach the optimum, dm3 costs 2520 - 1260 more per segment
    tied = tiny_table().assign(prob_dm3=[0.40, 0.30, 0.42])
    problem = prepare_problem(tied, ["seg"], ARMS, "dm1", COST, MIN_SHARE)
    # min shares 0.1 x (200 + 800 + 520 + 1200 + 1260 + 2520) = 650, then A and B on dm3, C on the cheaper dm2
    assert saturation_budget(problem) == pytest.approx(650 + 0.7 * 3260, abs=1e-5)


@pytest.mark.parametrize(
    "rule, worth, budget",
    [
        ("max_profit", 40.0, 2080.0),  # buys the 20, 30 and 35 USD edges
        ("max_profit", 35.0, 1198.0),  # a conversion at exactly its worth adds no profit: the cheaper budget
        ("marginal_cost_below", 35.0, 2080.0),  # ... but is within a target of 35 USD: the larger budget
        ("marginal_cost_below", 50.0, 2444.0),
        ("marginal_cost_below", 10.0, 638.0),  # nothing is that cheap: the minimum shares only
        ("max_profit", 1000.0, 2920.0),  # everything pays: the saturation budget
    ],
)
def test_recommended_budget_by_hand(rule, worth, budget):
    value = worth if rule == "max_profit" else 40.0
    problem = tiny_problem(value_per_conversion=value)
    frontier = budget_frontier(problem, points=9)
    recommendation = recommend_budget(problem, frontier, rule, worth if rule == "marginal_cost_below" else None)
    assert recommendation["budget"] == pytest.approx(budget, abs=0.01)
    assert recommendation["rule"] == rule
    gain, spend = coefficients(tiny_table())
    best = greedy_optimum(gain, spend, recommendation["budget"], MIN_SHARE)
    assert recommendation["expected_incremental_conversions"] == pytest.approx(best, abs=1e-6)
    if rule == "max_profit":  # no budget on the grid does better
        assert recommendation["incremental_profit"] >= frontier.table["incremental_profit"].max() - 1e-6


def test_example_frontier_and_recommendation_match_the_hull_reference():
    problem = example_problem(value_per_conversion=35.0)
    frontier = budget_frontier(problem, points=25)
    gain, spend = coefficients(example_table())
    floor, edges = hull_edges(gain, spend, MIN_SHARE)
    saturation = floor + sum(width for _, width in edges)
    assert frontier.smallest_feasible_budget == pytest.approx(floor, abs=1e-6)
    assert frontier.saturation_budget == pytest.approx(saturation, abs=1e-4)
    table = frontier.table
    assert len(table) == 25 and table["budget"].is_monotonic_increasing
    for row in table.itertuples():
        assert row.expected_incremental_conversions == pytest.approx(greedy_optimum(gain, spend, row.budget, MIN_SHARE), abs=1e-6)
        slope = slope_at(row.budget, floor, edges)
        at_breakpoint = abs(slope - slope_at(row.budget - 1e-3, floor, edges)) > 1e-12
        if 0 < row.Index < 24 and not at_breakpoint:
            assert row.marginal_cost_per_incremental_conversion == pytest.approx(1 / slope, rel=1e-8)
        assert row.incremental_profit == pytest.approx(35 * row.expected_incremental_conversions - row.expected_cost, abs=1e-5)
    marginal = table["marginal_cost_per_incremental_conversion"].iloc[:-1]
    assert marginal.is_monotonic_increasing  # a concave frontier: each conversion costs more than the last
    recommendation = recommend_budget(problem, frontier, "max_profit", None)
    expected = floor + sum(width for slope, width in edges if slope > 1 / 35)
    assert recommendation["budget"] == pytest.approx(expected, abs=0.01)


# -- budget risk ---------------------------------------------------------------------------------------


def test_cost_moments_by_hand():
    # 10 customers at 20 USD with p 0.4, 5 at 10 USD with p 0.5, 7 at 0 USD
    mean, std = cost_moments(np.array([10, 5, 7]), np.array([0.4, 0.5, 0.9]), np.array([20.0, 10.0, 0.0]))
    assert mean == pytest.approx(10 * 20 * 0.4 + 5 * 10 * 0.5)
    assert std == pytest.approx(np.sqrt(10 * 400 * 0.24 + 5 * 100 * 0.25))


def monte_carlo_costs(counts: np.ndarray, prob: np.ndarray, unit_cost: np.ndarray, draws: int = 100_000) -> np.ndarray:
    """Realized coupon cost of `draws` independent runs of the plan (binomial redemptions per cell)."""
    rng = np.random.default_rng(SEED)
    redeemed = rng.binomial(counts.astype(np.int64).ravel(), prob.ravel(), size=(draws, counts.size))
    return redeemed @ np.broadcast_to(unit_cost, counts.shape).ravel()


def test_normal_approximation_matches_a_monte_carlo_of_the_example_plan():
    result = optimize_segments(example_table(), EXAMPLE_SEGMENTS, ARMS, "dm1", COST, 10_000, MIN_SHARE)
    n = example_table()["n_customers"].to_numpy(float)[:, None]
    shares = result.plan["share"].to_numpy().reshape(-1, 3)
    counts = np.round(n * shares)  # whole customers, as a campaign sends them
    prob = example_table()[[f"prob_{a}" for a in ARMS]].to_numpy(float)
    unit = np.array([COST[a] for a in ARMS])
    costs = monte_carlo_costs(counts, prob, unit)
    for budget in (10_000.0, 10_300.0, 9_700.0):
        risk = cost_risk(counts, prob, unit[None, :], budget, 0.95)
        assert risk["prob_cost_exceeds_budget"] == pytest.approx((costs > budget).mean(), abs=0.015)
    assert risk["mean_cost"] == pytest.approx(costs.mean(), rel=2e-3)
    assert risk["std_cost"] == pytest.approx(costs.std(), rel=0.01)
    assert risk["cost_quantile"] == pytest.approx(np.quantile(costs, 0.95), abs=0.05 * risk["std_cost"])
    planned = cost_risk(n * shares, prob, unit[None, :], 10_000.0, 0.95)
    assert planned["mean_cost"] == pytest.approx(10_000.0, rel=1e-9)  # the LP spends the mean budget
    assert planned["prob_cost_exceeds_budget"] == 0.5  # ... so it overspends half the time


def test_largest_mean_budget_by_bisection_on_a_known_quantile():
    # quantile = mean + 100: the largest mean within a 1000 USD cap is 900
    assert largest_mean_budget(lambda b: b + 100.0, 1000.0, 0.0) == pytest.approx(900.0, abs=0.01)
    assert largest_mean_budget(lambda b: b + 100.0, 1000.0, 0.0) <= 900.0
    assert largest_mean_budget(lambda b: b, 1000.0, 10.0) == 1000.0  # already within: the budget itself
    with pytest.raises(InfeasiblePlanError, match=r"cost quantile of 1,060.00 USD > the budget of 1,000.00 USD"):
        largest_mean_budget(lambda b: b + 100.0, 1000.0, 960.0)


def test_capping_the_95_percent_quantile_keeps_overspending_at_5_percent():
    problem = example_problem()
    n, unit = problem.data.sizes[:, None], problem.data.unit_cost[None, :]

    def risk_at(mean_budget):
        shares = plan_problem(problem, mean_budget).plan["share"].to_numpy().reshape(-1, 3)
        return cost_risk(n * shares, problem.data.prob, unit, 10_000.0, 0.95), n * shares

    from offerflow.optimize.planning import capped_mean_budget

    mean_budget = capped_mean_budget(problem, 10_000.0, 0.95, fairness=False)
    risk, counts = risk_at(mean_budget)
    assert risk["cost_quantile"] <= 10_000.0
    assert risk_at(mean_budget + 0.02)[0]["cost_quantile"] > 10_000.0  # the largest such budget, to the cent
    assert risk["prob_cost_exceeds_budget"] == pytest.approx(0.05, abs=1e-4)
    costs = monte_carlo_costs(np.round(counts), problem.data.prob, problem.data.unit_cost, draws=60_000)
    assert (costs > 10_000.0).mean() == pytest.approx(0.05, abs=0.01)


# -- the stage -----------------------------------------------------------------------------------------


def given_table_params(project, **overrides):
    return load_params(
        project / "params.yaml",
        overrides={"optimize.probability_table": "data/external/visit_probability.csv", "publish.source": "segment_plan",
                   **overrides},
    )


def test_run_optimize_writes_frontier_risk_and_figures_byte_identically(project):
    params = given_table_params(project, **{"optimize.value_per_conversion": 35.0, "optimize.frontier.points": 25})
    layout = Catalog(params)
    outputs = {name: layout.path(name) for name in ("budget_frontier", "budget_frontier_figure", "allocation_figure")}
    metrics = run_optimize(params)
    first = {name: path.read_bytes() for name, path in outputs.items()} | {"metrics": layout.optimize_metrics.read_bytes()}
    assert first["allocation_figure"].startswith(PNG_MAGIC) and first["budget_frontier_figure"].startswith(PNG_MAGIC)
    written = pd.read_csv(outputs["budget_frontier"])
    reference = budget_frontier(example_problem(value_per_conversion=35.0), points=25)
    assert list(written.columns) == list(FRONTIER_COLUMNS)
    assert written["expected_incremental_conversions"].to_numpy() == pytest.approx(
        reference.table["expected_incremental_conversions"].to_numpy(), rel=1e-9
    )
    gain, spend = coefficients(example_table())
    floor, edges = hull_edges(gain, spend, MIN_SHARE)
    assert metrics["recommended_budget"] == pytest.approx(floor + sum(w for s, w in edges if s > 1 / 35), abs=0.01)
    assert metrics["frontier"]["recommendation"]["rule"] == "max_profit"
    assert metrics["frontier"]["smallest_feasible_budget"] == pytest.approx(floor, abs=1e-6)
    risk = metrics["budget_risk"]
    assert risk["prob_cost_exceeds_budget"] == 0.5 and risk["mean_cost"] == pytest.approx(10_000.0)
    assert risk["cost_quantile"] == pytest.approx(10_000 + 1.6448536 * risk["std_cost"], rel=1e-7)
    assert json.loads(first["metrics"])["recommended_budget"] == metrics["recommended_budget"]

    run_optimize(params)
    again = {name: path.read_bytes() for name, path in outputs.items()} | {"metrics": layout.optimize_metrics.read_bytes()}
    assert again == first

    run_optimize(given_table_params(project, **{"optimize.frontier.enabled": False, "optimize.figures": False}))
    assert not any(path.exists() for path in outputs.values())  # switched off: no stale frontier or figure


def test_run_optimize_with_cap_fairness_and_constraints(project):
    layout = Catalog(given_table_params(project))
    overrides = {"optimize.risk.cap_quantile": 0.9, "optimize.figures": False, "optimize.frontier.enabled": False}
    capped = run_optimize(given_table_params(project, **overrides))
    risk = capped["budget_risk"]
    assert risk["cap_quantile"] == 0.9 and risk["capped_cost_quantile"] <= 10_000.0
    assert risk["mean_budget"] < 10_000.0 and capped["expected_cost"] == pytest.approx(risk["mean_budget"], abs=1e-6)
    assert capped["budget"] == 10_000.0
    # the reported quantile is the 95% one; the capped 90% one fits the budget, so P(cost > budget) is ~10%
    assert risk["prob_cost_exceeds_budget"] == pytest.approx(0.1, abs=1e-4)

    overrides = {"optimize.fairness": True, "optimize.figures": False, "optimize.frontier.enabled": False}
    fair = run_optimize(given_table_params(project, **overrides))
    t = fair["fairness"]["common_min_share"]
    plan = pd.read_csv(layout.segment_plan)
    assert plan["share"].min() == pytest.approx(t, abs=1e-12) and t > MIN_SHARE
    assert fair["expected_cost"] == pytest.approx(10_000.0, abs=1e-4)

    overrides = {"optimize.capacity": {"dm3": 400}, "optimize.figures": False}
    with pytest.raises(InfeasiblePlanError, match=r"offer dm3: min_share 0.1 x 5,000 customers = 500.0 > capacity 400"):
        run_optimize(given_table_params(project, **overrides))


def test_left_and_right_budget_prices_at_a_kink_and_past_saturation():
    from offerflow.optimize.segment_lp import budget_prices

    problem = tiny_problem()  # edges: A 20 USD/conv up to 778, A 30 to 1198, C 35 to 2080, B 43.3 to 2444, B 85 to 2920
    left, right = budget_prices(problem, 778.0)
    assert left == pytest.approx(1 / 20, rel=1e-6) and right == pytest.approx(1 / 30, rel=1e-6)
    left, right = budget_prices(problem, 2920.0)
    assert left == pytest.approx(1 / 85, rel=1e-6) and right == 0.0  # more money buys nothing
    left, right = budget_prices(problem, 638.0)
    assert left == float("inf") and right == pytest.approx(1 / 20, rel=1e-6)  # the smallest feasible budget
