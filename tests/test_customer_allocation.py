"""Customer-level allocation: exact against HiGHS (LP bound and MIP optimum) on instances up to 10,000 customers."""

from __future__ import annotations

import highspy
import numpy as np
import pytest

from reference.highs_models import solve_with_highs
from offerflow.optimize.customer_allocation import (
    CustomerBudgetInfeasible,
    allocate_customers,
    build_partition,
)

COUPON = np.array([0.0, 10.0, 20.0])


def instance(n: int, seed: int, identical_segments: int | None = None):
    """Per-customer probabilities rising with the coupon; optionally only a few distinct customers (ties)."""
    rng = np.random.default_rng(seed)
    p = np.sort(rng.uniform(0.02, 0.6, size=(n, 3)), axis=1)
    if identical_segments:
        p = p[rng.integers(0, identical_segments, size=n) % n]
    return p - p[:, [0]], p * COUPON


def highs_optimum(value: np.ndarray, cost: np.ndarray, budget: float, integer: bool) -> float:
    """max sum v x  s.t. each customer one offer, sum c x <= budget: solved by HiGHS from scratch."""
    solver = solve_with_highs(value, cost, budget, integer=integer, solver="simplex")
    assert solver.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return solver.getInfo().objective_function_value


@pytest.mark.parametrize(
    ("n", "seed", "budget_share", "segments"),
    [(200, 1, 0.3, None), (2_000, 2, 0.5, None), (10_000, 3, 0.2, None), (10_000, 4, 0.6, 16), (5_000, 5, 0.9, 3)],
)
def test_dual_bound_equals_the_highs_lp_optimum(n, seed, budget_share, segments):
    value, cost = instance(n, seed, segments)
    budget = budget_share * cost.max(axis=1).sum()
    allocation = allocate_customers(value, cost, budget, partition_rows=max(n // 3, 1))
    lp = highs_optimum(value, cost, budget, integer=False)
    assert allocation.dual_bound == pytest.approx(lp, rel=1e-6)
    chosen_cost = cost[np.arange(n), allocation.offer].sum()
    chosen_value = value[np.arange(n), allocation.offer].sum()
    assert chosen_cost <= budget + 1e-6
    assert chosen_value == pytest.approx(allocation.objective, rel=1e-12)
    assert allocation.expected_cost == pytest.approx(chosen_cost, rel=1e-12)
    # at most one customer is rounded: the gap is below one customer's largest step
    assert 0 <= allocation.gap <= value.max() + 1e-12


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_integer_allocation_is_within_the_gap_of_the_highs_mip(seed):
    value, cost = instance(1_500, seed)
    budget = 0.4 * cost.max(axis=1).sum()
    allocation = allocate_customers(value, cost, budget, partition_rows=500)
    mip = highs_optimum(value, cost, budget, integer=True)
    assert allocation.objective <= mip + 1e-7
    assert mip <= allocation.dual_bound + 1e-7
    assert allocation.relative_gap < 1e-3


def test_partitioning_does_not_change_the_allocation_shape_and_value():
    value, cost = instance(30_000, 21, identical_segments=40)
    budget = 0.5 * cost.max(axis=1).sum()
    one = allocate_customers(value, cost, budget, partition_rows=30_000)
    many = allocate_customers(value, cost, budget, partition_rows=7_000)
    assert many.objective == pytest.approx(one.objective, rel=1e-9)
    assert many.dual_bound == pytest.approx(one.dual_bound, rel=1e-9)
    assert (many.offer != one.offer).sum() <= 1  # only a tie broken across a partition edge may differ


def test_slack_budget_takes_every_improving_offer_and_hull_drops_dominated_offers():
    value = np.array([[0.0, 0.1, 0.3], [0.0, 0.2, 0.1], [0.0, -0.1, 0.05]])
    cost = np.array([[0.0, 2.0, 8.0], [0.0, 3.0, 5.0], [0.0, 1.0, 1.0]])
    allocation = allocate_customers(value, cost, budget=1e6)
    assert allocation.offer.tolist() == [2, 1, 2]
    assert allocation.gap == 0 and allocation.threshold == 0
    hull = build_partition(value, cost)
    # customer 0: 0.1/2 = 0.05 then 0.2/6 = 0.033 (concave); customer 1: dm3 is dominated by dm2
    assert hull.step_to[:, 0].tolist() == [1, 2] and hull.step_to[:, 1].tolist() == [1, -1]


def test_hand_solved_budget_split():
    # two identical customers, dm2 step costs 2 for 0.1; budget 3 -> one customer upgraded,
    # the LP would upgrade the other by half: dual bound 0.15, gap 0.05
    value = np.array([[0.0, 0.1], [0.0, 0.1]])
    cost = np.array([[0.0, 2.0], [0.0, 2.0]])
    allocation = allocate_customers(value, cost, budget=3.0)
    assert allocation.offer.tolist() == [1, 0]
    assert allocation.objective == pytest.approx(0.1)
    assert allocation.dual_bound == pytest.approx(0.15)
    assert allocation.threshold == pytest.approx(0.05)


def test_budget_below_the_cheapest_offers_is_infeasible():
    value = np.array([[0.0, 0.1]])
    cost = np.array([[1.0, 2.0]])
    with pytest.raises(CustomerBudgetInfeasible, match="smallest feasible budget: 1.00 USD"):
        allocate_customers(value, cost, budget=0.5)
