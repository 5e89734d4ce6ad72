"""One offer per customer under a budget plus capacities, group caps, min/max shares and exclusions.

Without count rows the exact single-budget allocator answers (exclusions become 'control only'
customers). With them, the LP is solved exactly by sifting (relaxation.py), rounded to whole
customers (rounding.py), and the integer plan is checked against every row with exact integer counts
and its recomputed cost before it is returned. Partitions live where the executor puts them (a thread
pool here, or Dask workers): only working-set rows and sums travel to the driver.
"""

from __future__ import annotations

import math

import numpy as np

from offerflow.distributed import partition_bounds
from offerflow.errors import InputDataError
from offerflow.optimize.coupled_allocation.blocks import excluded_sums, finish_block, make_block
from offerflow.optimize.coupled_allocation.relaxation import (
    DIRECT_MAX,
    LPInfeasible,
    Rows,
    cheapest_plan,
    resolve,
    solve_relaxation,
)
from offerflow.optimize.coupled_allocation.rounding import round_working_set
from offerflow.optimize.coupled_allocation.spec import CustomerConstraints, Problem, build_problem
from offerflow.optimize.customer_allocation import (
    ConstraintUse,
    CustomerAllocation,
    CustomerBudgetInfeasible,
    allocate_customers,
    in_process,
)

PRICE_STEP = 1e-6  # relative budget step over which the left and right budget prices are read


def allocate_with_constraints(
    value: np.ndarray,
    cost: np.ndarray,
    budget: float | None,
    constraints: CustomerConstraints | None = None,
    partition_rows: int = 1_000_000,
    executor=None,
    *,
    threads: int | None = None,
    direct_max: int = DIRECT_MAX,
) -> CustomerAllocation:
    """Best offer per customer with total expected cost <= budget (None or inf: no budget) and every
    constraint in `constraints` met exactly; raises InfeasiblePlanError naming the conflict."""
    constraints = constraints or CustomerConstraints()
    value, cost = _checked(value, cost)
    n, k = value.shape
    excluded = _excluded(constraints.excluded, n)
    problem = build_problem(constraints, k, n, int(excluded.sum()))
    limit = None if budget is None or math.isinf(budget) else float(budget)
    if not problem.rows:
        allowed = None
        if excluded.any():
            allowed = np.ones((n, k), bool)
            allowed[excluded] = np.arange(k) == problem.control
        return allocate_customers(value, cost, math.inf if limit is None else limit, partition_rows, executor,
                                  allowed=allowed, threads=threads)
    executor = in_process(executor, threads)
    bounds = partition_bounds(n, partition_rows)
    free = ~excluded

    blocks = executor.build(make_block, [value[a:b] for a, b in bounds], [cost[a:b] for a, b in bounds],
                            [free[a:b] for a, b in bounds], [a for a, _ in bounds])
    fixed = executor.map(excluded_sums, blocks, [problem.control] * len(blocks))
    excluded_cost, excluded_value = sum(f["cost"] for f in fixed), sum(f["value"] for f in fixed)
    rows = Rows(problem.matrix, problem.free_lower, problem.free_upper,
                None if limit is None else limit - excluded_cost)

    try:
        if rows.budget is not None and rows.budget < 0:  # the excluded customers alone overspend
            raise LPInfeasible(cheapest_plan(blocks, executor.map, rows, problem.free, partition_rows, direct_max))
        state = solve_relaxation(blocks, executor.map, rows, problem.free, partition_rows, direct_max)
    except LPInfeasible as infeasible:
        raise _budget_error(limit, excluded_cost + infeasible.cheapest, problem) from None
    result = _integer_plan(blocks, executor.map, state, limit, problem)
    offer, objective, spent, counts = result
    report = _report(problem, rows, state, counts, limit, spent)
    left, right = _budget_prices(blocks, executor.map, state, rows, limit)
    return CustomerAllocation(
        offer=offer,
        objective=objective,
        expected_cost=spent,
        dual_bound=state.dual + excluded_value,
        threshold=state.prices.budget,
        iterations=state.rounds,
        budget_price_left=left,
        budget_price_right=right,
        constraints=report,
    )


def _integer_plan(blocks, mapper, state, limit: float | None, problem: Problem):
    """Round, assemble per block, recompute; shrink the budget by the rounding excess if it shows."""
    cushion = 0.0
    for _ in range(6):
        offers = round_working_set(state, cushion)
        members = [state.local[state.owner == b] for b in range(len(blocks))]
        chosen = [offers[state.owner == b] for b in range(len(blocks))]
        finished = mapper(finish_block, blocks, state.fixed_offer, members, chosen, [problem.control] * len(blocks))
        spent = float(sum(f["cost"] for f in finished))
        if limit is None or spent <= limit:
            break
        cushion += 2 * (spent - limit) + 1e-12 * max(1.0, abs(limit))
    else:
        raise RuntimeError(f"the integer plan's cost {spent!r} stays above the budget {limit!r}")
    counts = np.sum([f["counts"] for f in finished], axis=0)
    for row in problem.rows:
        used = int(counts[row.offers].sum())
        if not row.lower <= used <= row.upper:
            raise RuntimeError(f"internal error: {row.name} has {used} customers outside [{row.lower}, {row.upper}]")
    offer = np.concatenate([f["offer"] for f in finished])
    return offer, float(sum(f["value"] for f in finished)), spent, counts


def _budget_prices(blocks, mapper, state, rows: Rows, limit: float | None) -> tuple[float, float]:
    """LP value per dollar just above and just below the budget: re-solves at budget +- a tiny step
    (warm, on the working set; any customer the new multipliers move joins it first)."""
    if limit is None:
        return 0.0, 0.0
    step = PRICE_STEP * max(1.0, abs(rows.budget))
    above = resolve(blocks, mapper, state, rows.budget + step)
    below = resolve(blocks, mapper, state, rows.budget - step)
    right = above.prices.budget if above.status == "optimal" else state.prices.budget
    left = below.prices.budget if below.status == "optimal" else math.inf
    return float(left), float(right)


def _report(problem: Problem, rows: Rows, state, counts: np.ndarray, limit, spent: float) -> tuple[ConstraintUse, ...]:
    report = []
    if limit is not None:
        report.append(ConstraintUse("budget", "<=", limit, spent, state.prices.budget))
    for r, row in enumerate(problem.rows):
        used, price = float(counts[row.offers].sum()), float(state.prices.rows[r])
        if row.lower > 0:
            report.append(ConstraintUse(f"{row.name} at least ({row.lower_source})", ">=", row.lower, used,
                                        max(-price, 0.0) + 0.0))
        if row.upper < problem.customers:
            report.append(ConstraintUse(f"{row.name} at most ({row.upper_source})", "<=", row.upper, used,
                                        max(price, 0.0) + 0.0))
    return tuple(report)


def _budget_error(limit: float, cheapest: float, problem: Problem) -> CustomerBudgetInfeasible:
    rows = "; ".join(f"{row.name} in [{row.lower:,}, {row.upper:,}]" for row in problem.rows)
    return CustomerBudgetInfeasible(
        f"budget {limit:,.2f} USD is below the cheapest plan that meets the constraints ({rows}; "
        f"{problem.excluded:,} excluded customers on {problem.names[problem.control]}): {cheapest:,.2f} USD; "
        f"smallest feasible budget: {cheapest:,.2f} USD",
        smallest_feasible_budget=cheapest,
    )


def _checked(value, cost) -> tuple[np.ndarray, np.ndarray]:
    value, cost = np.ascontiguousarray(value, float), np.ascontiguousarray(cost, float)
    if value.ndim != 2 or value.shape != cost.shape or value.shape[1] < 2:
        raise InputDataError(f"value and cost must be (customers, offers>=2) arrays of one shape, got "
                             f"{value.shape} and {cost.shape}")
    for name, array in (("value", value), ("cost", cost)):
        if not np.isfinite(array).all():
            raise InputDataError(f"{name} has {int((~np.isfinite(array)).sum()):,} missing or infinite entries")
    if (cost < 0).any():
        raise InputDataError(f"cost has {int((cost < 0).sum()):,} negative entries (expected costs are >= 0)")
    return value, cost


def _excluded(mask, n: int) -> np.ndarray:
    if mask is None:
        return np.zeros(n, bool)
    mask = np.asarray(mask)
    if mask.shape != (n,) or mask.dtype != bool:
        raise InputDataError(f"the exclusion mask must be a boolean array of {n:,} customers, got {mask.dtype} "
                             f"{mask.shape}")
    return mask
