"""Budget frontier: the optimum at every budget from the cheapest feasible one to where more money stops helping.

The optimum is concave and piecewise linear in the budget B; its slope is the budget row's dual, so
1 / (extra incremental conversions per extra dollar) is the marginal cost of a conversion, which only
rises with B. The frontier starts at the smallest feasible budget (the min-cost LP) and ends at the
saturation budget: the expected cost of the cheapest plan that reaches the unconstrained optimum.

A recommended budget comes from the Lagrangian of the same LP: maximizing w x incremental conversions
- expected cost (no budget row) buys exactly the conversions whose marginal cost is at most w. With w
the value of a conversion this is the most profitable budget (max_profit); with w a target cost it is
the largest budget whose marginal cost per incremental conversion stays within the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from offerflow.optimize.lp_model import SolverError, maximize
from offerflow.optimize.risk import cost_moments, cost_quantile, exceed_probability
from offerflow.optimize.objectives import incremental_per_usd
from offerflow.optimize.segment_lp import (
    DUAL_NOISE,
    PRICE_STEP,
    SegmentProblem,
    clean_shares,
    plan_metrics,
    round_significant,
    smallest_feasible_budget,
    solve_at,
)

FRONTIER_COLUMNS = (
    "budget",
    "objective",
    "expected_incremental_conversions",
    "expected_cost",
    "cost_per_incremental_conversion",
    "budget_shadow_price",
    "marginal_cost_per_incremental_conversion",
    "incremental_profit",
    "cost_std",
    "cost_quantile",
    "prob_cost_exceeds_budget",
)


@dataclass(frozen=True)
class BudgetFrontier:
    """One row per budget on the grid, and the range it spans."""

    table: pd.DataFrame
    smallest_feasible_budget: float
    saturation_budget: float


def cents_up(value: float) -> float:
    """Round up to the cent (a budget quoted this way is never below the amount it stands for)."""
    return math.ceil(round(value * 100, 6)) / 100


def plan_cost(problem: SegmentProblem, shares: np.ndarray) -> float:
    return float((problem.data.spend * clean_shares(shares, problem.bounds)).sum())


def saturation_budget(problem: SegmentProblem) -> float:
    """Expected cost of the cheapest plan reaching the unconstrained optimum: more money cannot help beyond it."""
    data = problem.data
    best = maximize(data.value, data.spend, data.sizes, problem.bounds, None, problem.time_limit_seconds, "cheapest")
    if best is None:
        raise SolverError("the unconstrained LP is infeasible although the share constraints passed their checks")
    return plan_cost(problem, best.shares)


def budget_grid(smallest: float, saturation: float, points: int) -> np.ndarray:
    """`points` budgets in whole cents from the smallest feasible to the saturation budget (one if they meet)."""
    low, high = cents_up(smallest), max(cents_up(smallest), cents_up(saturation))
    return np.unique(np.round(np.linspace(low, high, points), 2))


def frontier_row(problem: SegmentProblem, budget: float, quantile_level: float) -> dict:
    """Optimum, cost per incremental conversion, marginal cost and cost risk at one budget."""
    solution = solve_at(problem, budget)
    shares = clean_shares(solution.shares, problem.bounds)
    metrics = plan_metrics(problem, shares, budget, solution.dual, problem.bounds)
    data = problem.data
    mean, std = cost_moments(data.sizes[:, None] * shares, data.prob, data.unit_cost[None, :], data.contact[None, :])
    value = problem.value_per_conversion
    profit = None if value is None else value * metrics["expected_incremental_conversions"] - metrics["expected_cost"]
    row = {key: metrics[key] for key in FRONTIER_COLUMNS if key in metrics}
    # what the next dollar buys (the right-hand price): at a kink the dual is the slope before it, and at the
    # saturation budget more money buys nothing, so the marginal cost there is none, not the last slope's
    step = max(PRICE_STEP * budget, 1e-3)
    right = (solve_at(problem, budget + step).objective - solution.objective) / step
    per_usd = incremental_per_usd(problem.objective, right, problem.value_per_conversion, right > DUAL_NOISE)
    row["marginal_cost_per_incremental_conversion"] = 1.0 / per_usd if per_usd > DUAL_NOISE else None
    row.update(
        incremental_profit=profit,
        cost_std=std,
        cost_quantile=cost_quantile(mean, std, quantile_level),
        prob_cost_exceeds_budget=exceed_probability(mean, std, budget),
    )
    return {key: None if row[key] is None else round_significant(row[key]) for key in FRONTIER_COLUMNS}


def budget_frontier(problem: SegmentProblem, points: int, quantile_level: float = 0.95) -> BudgetFrontier:
    """The optimum over an even grid of budgets between the smallest feasible and the saturation budget."""
    smallest = smallest_feasible_budget(problem)
    saturation = saturation_budget(problem)
    grid = budget_grid(smallest, saturation, points)
    rows = [frontier_row(problem, float(budget), quantile_level) for budget in grid]
    table = pd.DataFrame(rows, columns=list(FRONTIER_COLUMNS))
    if problem.value_per_conversion is None:
        table = table.drop(columns="incremental_profit")
    return BudgetFrontier(table, smallest, saturation)


def lagrangian_budget(problem: SegmentProblem, worth: float, prefer: str) -> float:
    """Expected cost of the plan maximizing worth x incremental conversions - expected cost (no budget row).

    It buys every conversion whose marginal cost is below `worth`; `prefer` settles conversions that
    cost exactly `worth`: 'cheapest' leaves them out (max profit: same profit, less money), 'costliest' buys them.
    """
    data = problem.data
    best = maximize(
        worth * data.gain - data.spend, data.spend, data.sizes, problem.bounds, None, problem.time_limit_seconds, prefer
    )
    if best is None:
        raise SolverError("the Lagrangian LP is infeasible although the share constraints passed their checks")
    return plan_cost(problem, best.shares)


def recommend_budget(problem: SegmentProblem, frontier: BudgetFrontier, rule: str, target: float | None) -> dict:
    """The budget the rule picks, clipped to the frontier's range, with the plan's numbers there."""
    if rule == "max_profit":
        worth, prefer, label = problem.value_per_conversion, "cheapest", "value_per_conversion"
    elif rule == "marginal_cost_below":
        worth, prefer, label = target, "costliest", "target"
    else:
        raise ValueError(f"optimize.frontier.recommend.rule must be max_profit or marginal_cost_below, got {rule!r}")
    if worth is None or not worth > 0:
        raise ValueError(f"optimize.frontier.recommend.rule {rule} needs a positive {label}, got {worth!r}")
    spent = lagrangian_budget(problem, worth, prefer)
    low, high = cents_up(frontier.smallest_feasible_budget), cents_up(frontier.saturation_budget)
    budget = min(max(round(spent, 2), low), max(low, high))
    row = frontier_row(problem, budget, 0.5)
    value = problem.value_per_conversion
    profit = None if value is None else value * row["expected_incremental_conversions"] - row["expected_cost"]
    return {
        "rule": rule,
        label: round_significant(worth),
        "budget": round_significant(budget),
        "expected_incremental_conversions": row["expected_incremental_conversions"],
        "expected_cost": row["expected_cost"],
        "incremental_profit": None if profit is None else round_significant(profit),
        "marginal_cost_per_incremental_conversion": row["marginal_cost_per_incremental_conversion"],
    }
