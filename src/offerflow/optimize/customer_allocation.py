"""Exact customer-level allocation under one budget, for millions of customers.

Each customer gets one offer; value v[i,d] and expected cost c[i,d] are known per customer and offer.
One budget couples otherwise independent customers, which makes this a multiple-choice knapsack.
Its LP relaxation is solved exactly by a threshold on "efficiencies": per customer, walk the upper
concave hull of its (cost, value) points from the cheapest offer; every hull step has an efficiency
dv/dc. The LP optimum takes every step more efficient than a threshold e*, a part of the steps at e*,
and none below. The integer allocation takes the same steps except the single one the LP would take
fractionally; the LP value is the dual bound, so the gap is at most one customer's step.

Customers are split into partitions and the threshold is found from per-partition sums (a search on
e*), so partitions can live on Dask workers; a fixed partition size makes the float arithmetic, and
therefore the allocation, identical however many workers run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from offerflow.distributed import LocalExecutor, local_map, partition_bounds
from offerflow.errors import InfeasiblePlanError

EXACT_FINISH = 200_000  # candidates left in the search bracket before finishing exactly by sorting


@dataclass
class Partition:
    """Hull steps of a block of customers: base offer, then up to K-1 steps (dc, dv, to-offer)."""

    base: np.ndarray  # (n,) offer index of the cheapest point
    base_cost: np.ndarray
    base_value: np.ndarray
    step_dc: np.ndarray  # (n, K-1), NaN where the hull has no more steps
    step_dv: np.ndarray
    step_to: np.ndarray  # (n, K-1) offer index reached by the step (-1: none)

    @property
    def efficiency(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.step_dv / self.step_dc


def build_partition(value: np.ndarray, cost: np.ndarray) -> Partition:
    """Upper concave hull of each customer's (cost, value) points, vectorized over customers."""
    n, k = value.shape
    rows = np.arange(n)
    min_cost = cost.min(axis=1, keepdims=True)
    candidate_value = np.where(cost <= min_cost, value, -np.inf)
    current = candidate_value.argmax(axis=1)
    base = current.copy()
    step_dc = np.full((n, k - 1), np.nan)
    step_dv = np.full((n, k - 1), np.nan)
    step_to = np.full((n, k - 1), -1, dtype=np.int64)
    for step in range(k - 1):
        c0 = cost[rows, current][:, None]
        v0 = value[rows, current][:, None]
        dc, dv = cost - c0, value - v0
        usable = (dc > 0) & (dv > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.where(usable, dv / dc, -np.inf)
        best = slope.max(axis=1, keepdims=True)
        # among equal best slopes take the farthest point: collinear points merge into one step
        pick = np.where(usable & (slope == best), cost, -np.inf).argmax(axis=1)
        has = np.isfinite(best[:, 0])
        step_dc[has, step] = dc[rows, pick][has]
        step_dv[has, step] = dv[rows, pick][has]
        step_to[has, step] = pick[has]
        current = np.where(has, pick, current)
    return Partition(
        base=base,
        base_cost=cost[rows, base],
        base_value=value[rows, base],
        step_dc=step_dc,
        step_dv=step_dv,
        step_to=step_to,
    )


# ---- per-partition kernels: pure functions of (partition, scalars), mapped locally or on Dask ----


def base_totals(part: Partition) -> tuple[float, float, int]:
    return float(part.base_cost.sum()), float(part.base_value.sum()), int(np.isfinite(part.step_dc).sum())


def max_efficiency(part: Partition) -> float:
    eff = part.efficiency
    return float(np.nanmax(eff)) if np.isfinite(eff).any() else 0.0


def bracket_stats(part: Partition, low: float, mid: float, high: float) -> tuple[float, int, int]:
    """Cost of all steps with efficiency > mid; how many efficiencies lie in (low, mid] and (mid, high]."""
    eff = part.efficiency
    above = float(np.where(eff > mid, part.step_dc, 0.0).sum())
    return above, int(((eff > low) & (eff <= mid)).sum()), int(((eff > mid) & (eff <= high)).sum())


def bracket_values(part: Partition, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    eff = part.efficiency
    inside = (eff > low) & (eff <= high)
    return eff[inside], part.step_dc[inside]


def tie_cost(part: Partition, threshold: float) -> float:
    return float(np.where(part.efficiency == threshold, part.step_dc, 0.0).sum())


def allocate_partition(part: Partition, threshold: float, tie_budget: float) -> dict:
    """Offers for one partition: steps above the threshold, then tied steps in customer order while
    the partition's share of the remaining budget lasts."""
    eff = part.efficiency
    take = eff > threshold
    tied = eff == threshold
    fractional = None
    if tie_budget > 0 or tied.any():
        cost_in_order = np.where(tied, part.step_dc, 0.0).ravel()  # row-major: customer order
        cumulative = np.cumsum(cost_in_order)
        fits = tied.ravel() & (cumulative <= tie_budget + 1e-9)
        take |= fits.reshape(tied.shape)
        over = np.flatnonzero(tied.ravel() & ~fits)
        if len(over):
            first = over[0]
            left = tie_budget - (cumulative[first] - cost_in_order[first])
            fraction = max(0.0, min(1.0, left / cost_in_order[first]))
            fractional = fraction * float(part.step_dv.ravel()[first])
    offer = part.base.copy()
    for step in range(part.step_to.shape[1]):
        moved = take[:, step]
        offer[moved] = part.step_to[moved, step]
    dc = np.where(take, part.step_dc, 0.0).sum()
    dv = np.where(take, part.step_dv, 0.0).sum()
    return {
        "offer": offer,
        "cost": float(part.base_cost.sum() + dc),
        "value": float(part.base_value.sum() + dv),
        "fractional_value": fractional,
    }


@dataclass(frozen=True)
class CustomerAllocation:
    offer: np.ndarray  # offer index per customer, in input order
    objective: float
    expected_cost: float
    dual_bound: float  # LP relaxation optimum: no allocation can beat it
    threshold: float  # e*: the budget's dual price in value per dollar (0 if slack)
    iterations: int

    @property
    def gap(self) -> float:
        return self.dual_bound - self.objective

    @property
    def relative_gap(self) -> float:
        return self.gap / abs(self.dual_bound) if self.dual_bound else 0.0


class CustomerBudgetInfeasible(InfeasiblePlanError):
    """Even the cheapest offer for every customer costs more than the budget."""


def allocate_customers(
    value: np.ndarray,
    cost: np.ndarray,
    budget: float,
    partition_rows: int = 1_000_000,
    executor=None,
) -> CustomerAllocation:
    """Best offer per customer (rows of value/cost) with total expected cost <= budget.

    Partitions are built and scanned by `executor` (offerflow.distributed: in process or on Dask);
    the partition size, not the executor, fixes the arithmetic, so both give the same allocation.
    """
    executor = executor or LocalExecutor()
    bounds = partition_bounds(len(value), partition_rows)
    parts = executor.build(
        build_partition, [value[a:b] for a, b in bounds], [cost[a:b] for a, b in bounds], progress="allocate: hulls"
    )
    return allocate_partitions(parts, budget, executor.map)


def allocate_partitions(parts, budget: float, mapper: Callable = local_map) -> CustomerAllocation:
    """The allocation from prebuilt partitions (local objects or Dask futures)."""
    totals = mapper(base_totals, parts)
    base_cost = sum(t[0] for t in totals)
    if base_cost > budget * (1 + 1e-12) + 1e-9:
        raise CustomerBudgetInfeasible(
            f"even the cheapest offer for every customer costs {base_cost:,.2f} USD > budget {budget:,.2f} USD; "
            f"smallest feasible budget: {base_cost:,.2f} USD",
            smallest_feasible_budget=base_cost,
        )
    remaining = budget - base_cost
    everything = sum(s[0] for s in mapper(bracket_stats, parts, *_same(parts, 0.0, 0.0, np.inf)))
    iterations = 0
    if everything <= remaining:  # the budget is slack: every improving step is taken
        threshold, above_cost = 0.0, everything
    else:
        # invariant: steps above `high` fit the budget, steps above `low` do not
        low, high = 0.0, max(mapper(max_efficiency, parts))
        count = sum(s[2] for s in mapper(bracket_stats, parts, *_same(parts, low, low, high)))
        while count > EXACT_FINISH:
            mid = 0.5 * (low + high)
            if not low < mid < high:
                break
            iterations += 1
            stats = mapper(bracket_stats, parts, *_same(parts, low, mid, high))
            if sum(s[0] for s in stats) > remaining:
                low, count = mid, sum(s[2] for s in stats)
            else:
                high, count = mid, sum(s[1] for s in stats)
        threshold, above_cost = _finish_exactly(mapper, parts, low, high, remaining)
    tie_total = mapper(tie_cost, parts, *_same(parts, threshold))
    tie_budget_left = remaining - above_cost
    offsets = np.concatenate([[0.0], np.cumsum(tie_total)[:-1]])
    budgets = [tie_budget_left - offset for offset in offsets]
    results = mapper(allocate_partition, parts, *_same(parts, threshold), budgets)
    fractional = next((r["fractional_value"] for r in results if r["fractional_value"] is not None), 0.0)
    objective = float(sum(r["value"] for r in results))
    return CustomerAllocation(
        offer=np.concatenate([r["offer"] for r in results]),
        objective=objective,
        expected_cost=float(sum(r["cost"] for r in results)),
        dual_bound=objective + float(fractional or 0.0),
        threshold=threshold,
        iterations=iterations,
    )


def _same(parts, *values) -> list[list]:
    """Broadcast scalar arguments for a mapper call over partitions."""
    return [[value] * len(parts) for value in values]


def _finish_exactly(mapper, parts, low, high, remaining) -> tuple[float, float]:
    """Walk the few efficiencies left in (low, high] from the top until the budget runs out."""
    above_high = sum(s[0] for s in mapper(bracket_stats, parts, *_same(parts, low, high, high)))
    gathered = mapper(bracket_values, parts, *_same(parts, low, high))
    eff = np.concatenate([g[0] for g in gathered])
    dc = np.concatenate([g[1] for g in gathered])
    levels, inverse = np.unique(eff, return_inverse=True)  # ascending
    level_cost = np.bincount(inverse, weights=dc, minlength=len(levels))
    spent = above_high
    for level in range(len(levels) - 1, -1, -1):
        if spent + level_cost[level] > remaining:
            return float(levels[level]), spent
        spent += level_cost[level]
    return float(low), spent
