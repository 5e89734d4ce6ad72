"""Customer-level allocation: exact against HiGHS (LP bound and MIP optimum) on instances up to 10,000 customers;
collinear offers and exact ties never overspend; left/right budget prices against HiGHS re-solves."""

from __future__ import annotations

import math

import highspy
import numpy as np
import pytest

from reference.highs_models import solve_constrained_with_highs, solve_with_highs
from offerflow.distributed import LocalExecutor
from offerflow.optimize.customer_allocation import (
    CustomerBudgetInfeasible,
    allocate_customers,
    build_partition,
    hull_by_wrapping,
    hull_of_three,
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


# ---- collinear offers, ties, exactness of the reported cost ----


@pytest.mark.parametrize(
    ("value", "cost", "budget"),
    [
        # 0.38 per dollar on every offer: in floats 3.496/9.2 > 17.936/47.2 but (17.936-3.496)/38 > 3.496/9.2, so
        # the old gift wrapping made the dear offer's step look better than its predecessor, took it alone and
        # counted only its 38 USD: offer 2 (47.2 USD, 24% over) was reported as costing exactly the budget
        ([0.0, 3.496, 17.936], [0.0, 9.2, 47.2], 38.0),
        ([0.0, 6.396, 15.142666666666665], [0.0, 7.8, 18.466666666666665], 10.666666666666664),
    ],
)
def test_collinear_offers_never_overspend_and_keep_the_middle_offer(value, cost, budget):
    value, cost = np.array([value]), np.array([cost])
    allocation = allocate_customers(value, cost, budget)
    assert cost[0, allocation.offer[0]] <= budget
    assert allocation.expected_cost == cost[0, allocation.offer[0]]
    # the middle offer lies on the line, so it is the integer optimum; the LP bound is the line at the budget
    assert allocation.offer.tolist() == [1]
    assert allocation.objective == value[0, 1]
    assert allocation.dual_bound == pytest.approx(budget * value[0, 2] / cost[0, 2], rel=1e-12)


def tie_heavy_instance(seed: int):
    """Dyadic costs and values on a coarse grid (sums are exact in floats), many identical customers and
    many exactly collinear offers (value = slope x cost with a few slopes)."""
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(5, 300)), int(rng.integers(2, 6))
    cost = rng.integers(0, 12, size=(n, k)) * 0.5
    cost[:, 0] = 0.0
    slope = rng.choice([0.25, 0.5, 0.125], size=(n, 1))
    value = np.where(rng.random((n, k)) < 0.6, slope * cost, rng.integers(-2, 8, size=(n, k)) * 0.25)
    copies = rng.integers(0, max(n // 4, 1), size=n)
    value, cost = value[copies], cost[copies]
    budget = float(rng.integers(0, int(cost.max(axis=1).sum() * 2) + 2)) * 0.5
    return value, cost, budget


@pytest.mark.parametrize("seed", range(300))
def test_reported_cost_is_the_cost_of_the_chosen_offers_and_within_budget_on_tie_heavy_instances(seed):
    value, cost, budget = tie_heavy_instance(seed)
    rows = np.arange(len(value))
    allocation = allocate_customers(value, cost, budget, partition_rows=len(value) if seed % 2 else 37)
    chosen_cost, chosen_value = cost[rows, allocation.offer], value[rows, allocation.offer]
    assert allocation.expected_cost == math.fsum(chosen_cost)  # dyadic grid: every partial sum is exact
    assert math.fsum(chosen_cost) <= budget
    assert allocation.objective == pytest.approx(math.fsum(chosen_value), abs=1e-9)
    assert allocation.objective <= allocation.dual_bound + 1e-9


@pytest.mark.parametrize("seed", range(0, 300, 10))
def test_tie_heavy_dual_bound_equals_the_highs_lp(seed):
    value, cost, budget = tie_heavy_instance(seed)
    allocation = allocate_customers(value, cost, budget, partition_rows=41)
    lp = highs_optimum(value, cost, budget, integer=False)
    assert allocation.dual_bound == pytest.approx(lp, rel=1e-9, abs=1e-9)


def test_in_process_threads_and_serial_give_byte_identical_allocations():
    value, cost = instance(40_000, 31, identical_segments=50)
    budget = 0.45 * cost.max(axis=1).sum()
    serial = allocate_customers(value, cost, budget, partition_rows=6_000, executor=LocalExecutor(), threads=1)
    pooled = allocate_customers(value, cost, budget, partition_rows=6_000, threads=2)
    assert serial.offer.tobytes() == pooled.offer.tobytes()
    assert (serial.objective, serial.expected_cost, serial.dual_bound, serial.threshold) == (
        pooled.objective, pooled.expected_cost, pooled.dual_bound, pooled.threshold)


# ---- marginal value of the budget ----


def lp_value(value, cost, budget) -> float:
    return highs_optimum(value, cost, budget, integer=False)


@pytest.mark.parametrize("seed", range(12))
def test_left_and_right_budget_prices_match_highs_resolves(seed):
    value, cost = instance(int(60 + 40 * seed), 100 + seed)
    budget = (0.15 + 0.06 * seed) * cost.max(axis=1).sum()
    allocation = allocate_customers(value, cost, budget, partition_rows=50)
    step = 1e-3
    here = lp_value(value, cost, budget)
    assert allocation.budget_price_left == pytest.approx((here - lp_value(value, cost, budget - step)) / step, abs=2e-5)
    assert allocation.budget_price_right == pytest.approx((lp_value(value, cost, budget + step) - here) / step, abs=2e-5)


def test_budget_prices_at_a_kink_differ_and_are_zero_past_saturation():
    # steps: customer 0: 2 USD for 1.0 (0.5/USD), then 4 USD for 1.0 (0.25/USD); customer 1: 4 USD for 0.5 (0.125/USD)
    value = np.array([[0.0, 1.0, 2.0], [0.0, 0.5, 0.5]])
    cost = np.array([[0.0, 2.0, 6.0], [0.0, 4.0, 9.0]])
    prices = {}
    for budget in (0.0, 1.0, 2.0, 6.0, 8.0, 10.0, 11.0):
        allocation = allocate_customers(value, cost, budget)
        prices[budget] = (allocation.budget_price_left, allocation.budget_price_right)
        if 1 <= budget <= 10:  # HiGHS re-solves one dollar either side (no other kink within a dollar)
            here = lp_value(value, cost, budget)
            assert prices[budget][0] == pytest.approx(here - lp_value(value, cost, budget - 1), abs=1e-9)
            assert prices[budget][1] == pytest.approx(lp_value(value, cost, budget + 1) - here, abs=1e-9)
    assert prices[0.0] == (math.inf, 0.5)  # the smallest feasible budget: one dollar less is infeasible
    assert prices[1.0] == (0.5, 0.5)
    assert prices[2.0] == (0.5, 0.25)  # exactly the first step: a kink
    assert prices[6.0] == (0.25, 0.125)
    assert prices[10.0] == (0.125, 0.0)  # exactly everything: saturated to the right
    assert prices[11.0] == (0.0, 0.0)


def test_excluded_customers_keep_the_control_offer_and_match_highs():
    value, cost = instance(3_000, 41)
    excluded = np.random.default_rng(41).random(3_000) < 0.3
    allowed = np.ones(value.shape, bool)
    allowed[excluded] = [True, False, False]
    budget = 0.3 * cost.max(axis=1).sum()
    allocation = allocate_customers(value, cost, budget, partition_rows=700, allowed=allowed)
    assert (allocation.offer[excluded] == 0).all()
    reference = solve_constrained_with_highs(value, cost, budget, excluded=excluded, control=0)
    assert allocation.dual_bound == pytest.approx(reference.getInfo().objective_function_value, rel=1e-9)
    assert allocation.expected_cost <= budget


@pytest.mark.parametrize("seed", range(40))
def test_closed_form_hull_of_three_offers_equals_gift_wrapping(seed):
    value, cost, _ = tie_heavy_instance(seed)
    if value.shape[1] < 3:
        return
    value, cost = value[:, :3], cost[:, :3]
    allowed = np.random.default_rng(seed).random(value.shape) < 0.8
    allowed[:, 0] = True
    for mask in (None, allowed):
        cols_c = [cost[:, j] if mask is None else np.where(mask[:, j], cost[:, j], np.inf) for j in range(3)]
        cols_v = [value[:, j] if mask is None else np.where(mask[:, j], value[:, j], -np.inf) for j in range(3)]
        with np.errstate(divide="ignore", invalid="ignore"):
            closed, wrapped = hull_of_three(cols_c, cols_v), hull_by_wrapping(cols_c, cols_v)
        for a, b in zip(closed, wrapped):
            np.testing.assert_array_equal(a, b)
