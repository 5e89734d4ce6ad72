"""The segment-level LP: which share of each segment gets which offer, within the coupon budget.

    max  sum_{s,d} N_s w[s,d] x[s,d]        w: the objective per customer (objectives.py), by default
                                            incremental conversions p[s,d] - p[s,control]
    s.t. sum_d x[s,d] = 1                   for every s  (every customer gets one offer)
         sum_{s,d} c_d N_s p[s,d] x[s,d] <= B          (expected coupon cost; a coupon costs when redeemed)
         min_share[d] <= x[s,d] <= max_share[d]        (one number or per offer)
         sum_s N_s x[s,d] <= capacity[d]               (optional, per offer)

Fairness mode first finds the largest common minimum share t (x[s,d] >= t everywhere) the budget
allows, then maximizes the objective with every minimum share raised to t. When no plan exists,
the error says why: conflicting share/capacity settings by offer and number, or the smallest
budget that can pay for the minimum shares (the min-cost LP with the same constraints).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from offerflow.errors import InputDataError
from offerflow.io import round_significant
from offerflow.optimize.constraints import (
    InfeasiblePlanError,
    ShareBounds,
    ShareSetting,
    explain_share_conflicts,
    share_bounds,
)
from offerflow.optimize.lp_model import (
    HIGHS_OPTIONS,
    Solution,
    SolverError,
    largest_common_share,
    maximize,
    minimum_cost,
)
from offerflow.optimize.objectives import check_objective, incremental_per_usd, objective_coefficients
from offerflow.schema import N_CUSTOMERS, OFFER, SEGMENT_ID, prob_column

__all__ = [
    "InfeasiblePlanError", "ProbabilityTableError", "SegmentPlan", "SolverError", "optimize_segments",
]

PLAN_COLUMNS = (
    "share",
    "expected_customers",
    "prob",
    "expected_conversions",
    "expected_incremental_conversions",
    "expected_cost",
)
BOUND_SNAP = 1e-9  # a share this close to a bound is exactly at that bound
DUAL_NOISE = 1e-9  # |dual| below this is round-off, not a price
PRICE_STEP = 1e-4  # budget step (share of the budget) of the left/right price re-solves: exact unless a kink is closer
SHARE_GRID = 1e9  # fairness: the common share is rounded down to this grid so the re-solve stays feasible
MAX_LISTED = 5


class ProbabilityTableError(InputDataError):
    """The segment probability table cannot be optimized; names the column and offending rows."""


@dataclass(frozen=True)
class SegmentPlan:
    """Long-format plan (one row per segment and offer) and its JSON-ready metrics."""

    plan: pd.DataFrame
    metrics: dict


@dataclass(frozen=True)
class LPData:
    """The LP's coefficients as arrays (segments x arms), so the model and the reports share them."""

    sizes: np.ndarray  # N_s
    value: np.ndarray  # N_s w[s,d]: the objective if all of s gets d
    gain: np.ndarray  # N_s (p[s,d] - p[s,control]): incremental conversions if all of s gets d
    spend: np.ndarray  # c_d N_s p[s,d]: expected coupon cost if all of s gets d
    conversions: np.ndarray  # N_s p[s,d]
    prob: np.ndarray  # p[s,d]
    unit_cost: np.ndarray  # c_d: paid when the offer converts (a redeemed coupon)
    contact: np.ndarray = field(default_factory=lambda: np.zeros(0))  # k_d: paid for every customer contacted


@dataclass(frozen=True)
class SegmentProblem:
    """A checked table turned into LP coefficients plus the constraints: solved at many budgets by the frontier."""

    table: pd.DataFrame  # populated segments sorted by segment_id
    segment_columns: tuple[str, ...]
    arms: tuple[str, ...]
    data: LPData
    bounds: ShareBounds
    objective: str
    value_per_conversion: float | None
    time_limit_seconds: float

    @property
    def customers(self) -> float:
        return float(self.data.sizes.sum())


def _rows(frame: pd.DataFrame, mask: pd.Series, columns: list[str]) -> list[dict]:
    return frame.loc[mask, columns].head(MAX_LISTED).to_dict("records")


def check_arguments(arms: Sequence[str], control: str, coupon_cost: Mapping[str, float], budget: float) -> None:
    """Reject arguments no table could fix: unknown control, missing or negative costs, bad budget."""
    if len(arms) < 2 or len(set(arms)) != len(arms):
        raise ValueError(f"arms must be at least two distinct names, got {list(arms)}")
    if control not in arms:
        raise ValueError(f"control arm {control!r} is not one of the arms {list(arms)}")
    missing = [arm for arm in arms if arm not in coupon_cost]
    if missing:
        raise ValueError(f"coupon_cost has no entry for arm(s) {missing}; has {sorted(coupon_cost)}")
    bad_cost = {
        arm: coupon_cost[arm]
        for arm in arms if not (math.isfinite(coupon_cost[arm]) and coupon_cost[arm] >= 0)
    }
    if bad_cost:
        raise ValueError(f"coupon_cost must be finite and >= 0, got {bad_cost}")
    if not (math.isfinite(budget) and budget >= 0):
        raise ValueError(f"budget must be a finite number >= 0, got {budget!r}")


def check_table(table: pd.DataFrame, segment_columns: Sequence[str], arms: Sequence[str]) -> None:
    """Reject a table the LP would silently misread: missing columns, duplicate ids, bad counts or probabilities."""
    required = [SEGMENT_ID, *segment_columns, N_CUSTOMERS, *(prob_column(arm) for arm in arms)]
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise ProbabilityTableError(f"probability table lacks column(s) {missing}; it has {list(table.columns)}")
    duplicated = table[SEGMENT_ID].duplicated(keep=False)
    if duplicated.any():
        repeated = sorted(set(table.loc[duplicated, SEGMENT_ID]))[:MAX_LISTED]
        raise ProbabilityTableError(f"segment_id must be unique; repeated: {repeated}")
    sizes = pd.to_numeric(table[N_CUSTOMERS], errors="coerce")
    bad_size = sizes.isna() | (sizes < 0) | (sizes != sizes.round())
    if bad_size.any():
        raise ProbabilityTableError(
            "n_customers must be a whole number >= 0; "
            f"offending rows: {_rows(table, bad_size, [SEGMENT_ID, N_CUSTOMERS])}"
        )
    populated = sizes > 0
    for arm in arms:
        column = prob_column(arm)
        values = pd.to_numeric(table[column], errors="coerce")
        bad = populated & (values.isna() | (values < 0) | (values > 1))
        if bad.any():
            raise ProbabilityTableError(
                f"{column} must be within [0, 1] for every segment with customers; "
                f"offending rows: {_rows(table, bad, [SEGMENT_ID, column])}"
            )
    if not populated.any():
        raise ProbabilityTableError("probability table has no segment with customers (n_customers > 0 nowhere)")


def lp_data(
    table: pd.DataFrame,
    arms: Sequence[str],
    control: str,
    coupon_cost: Mapping[str, float],
    objective: str = "incremental_conversions",
    value_per_conversion: float | None = None,
    contact_cost: Mapping[str, float] | None = None,
) -> LPData:
    """Coefficient arrays of the LP, rows in table order, columns in arm order."""
    sizes = table[N_CUSTOMERS].to_numpy(dtype="float64")
    prob = table[[prob_column(arm) for arm in arms]].to_numpy(dtype="float64")
    prob = np.where(sizes[:, None] > 0, prob, 0.0)  # an empty segment may have no probabilities at all
    unit_cost = np.array([coupon_cost[arm] for arm in arms], dtype="float64")
    contact = np.array([(contact_cost or {}).get(arm, 0.0) for arm in arms], dtype="float64")
    conversions = sizes[:, None] * prob
    per_customer = objective_coefficients(
        prob, arms, control, dict(coupon_cost), objective, value_per_conversion, dict(contact_cost or {})
    )
    return LPData(
        sizes=sizes,
        value=sizes[:, None] * per_customer,
        gain=conversions - conversions[:, [list(arms).index(control)]],
        spend=conversions * unit_cost[None, :] + sizes[:, None] * contact[None, :],
        conversions=conversions,
        prob=prob,
        unit_cost=unit_cost,
        contact=contact,
    )


def prepare_problem(
    table: pd.DataFrame,
    segment_columns: Sequence[str],
    arms: Sequence[str],
    control: str,
    coupon_cost: Mapping[str, float],
    min_share: ShareSetting = 0.1,
    max_share: ShareSetting = None,
    capacity: Mapping[str, float] | None = None,
    objective: str = "incremental_conversions",
    value_per_conversion: float | None = None,
    time_limit_seconds: float = 60,
    contact_cost: Mapping[str, float] | None = None,
    groups: Mapping[str, tuple[Sequence[str], int]] | None = None,
) -> SegmentProblem:
    """Check everything that does not depend on the budget, once, and keep the LP's coefficients.

    Segments without customers are left out: they change neither objective nor cost, and the LP
    would give them arbitrary shares.
    """
    check_arguments(arms, control, coupon_cost, 0.0)
    check_objective(objective, value_per_conversion)
    bounds = share_bounds(arms, min_share, max_share, capacity, groups)
    check_table(table, list(segment_columns), arms)
    populated = table[pd.to_numeric(table[N_CUSTOMERS]) > 0]
    populated = populated.sort_values(SEGMENT_ID, kind="stable").reset_index(drop=True)
    data = lp_data(populated, arms, control, coupon_cost, objective, value_per_conversion, contact_cost)
    explain_share_conflicts(bounds, float(data.sizes.sum()))
    return SegmentProblem(
        populated, tuple(segment_columns), tuple(arms), data, bounds, objective, value_per_conversion, time_limit_seconds
    )


def smallest_feasible_budget(problem: SegmentProblem, bounds: ShareBounds | None = None) -> float:
    """Cheapest expected coupon cost of any plan meeting the share and capacity constraints (the min-cost LP)."""
    data = problem.data
    floor = minimum_cost(data.spend, data.sizes, bounds or problem.bounds, problem.time_limit_seconds)
    if floor is None:
        raise SolverError("the min-cost LP is infeasible although the share constraints passed their checks")
    return floor


def infeasible_budget_error(budget: float, floor: float, bounds: ShareBounds) -> InfeasiblePlanError:
    shown_floor = math.ceil(floor * 100 - 1e-6) / 100  # rounded up to the cent, so the quoted budget is feasible
    described = bounds.describe()
    what = f"giving every offer at least {described['min_share']} of every segment"
    if described["capacity"] or described["max_share"] != 1.0:
        what += f" (with max_share {described['max_share']}, capacity {described['capacity']})"
    return InfeasiblePlanError(
        f"no plan fits the budget of {budget:,.2f} USD: {what} already costs {floor:,.2f} USD in expected coupons. "
        f"Smallest feasible budget: {shown_floor:,.2f} USD (raise optimize.budget or lower optimize.min_share).",
        smallest_feasible_budget=floor,
    )


def solve_at(problem: SegmentProblem, budget: float, bounds: ShareBounds | None = None, prefer: str | None = None) -> Solution:
    """Optimal plan at `budget`; a budget below the minimum shares' cost raises naming the smallest feasible one."""
    bounds = bounds or problem.bounds
    data = problem.data
    solution = maximize(data.value, data.spend, data.sizes, bounds, budget, problem.time_limit_seconds, prefer)
    if solution is not None:
        return solution
    floor = smallest_feasible_budget(problem, bounds)
    if floor <= budget:
        raise SolverError(f"HiGHS called budget {budget:,.2f} infeasible, yet the cheapest plan costs {floor:,.2f}")
    raise infeasible_budget_error(budget, floor, bounds)


def budget_prices(problem: SegmentProblem, budget: float, bounds: ShareBounds | None = None) -> tuple[float, float]:
    """(left, right) marginal value of the budget in objective units per USD: what one dollar less loses and
    what one dollar more buys. They differ at a kink, where the LP dual is only one of them; beyond the
    saturation budget the right one is 0, and at the smallest feasible budget the left one is infinite.
    """
    step = max(PRICE_STEP * budget, 1e-3)
    at = solve_at(problem, budget, bounds).objective
    above = solve_at(problem, budget + step, bounds).objective
    try:
        below = solve_at(problem, budget - step, bounds).objective
        left = (at - below) / step
    except InfeasiblePlanError:
        left = math.inf
    right = (above - at) / step
    return max(left, 0.0), max(right, 0.0) if right > DUAL_NOISE else 0.0


def fair_bounds(problem: SegmentProblem, budget: float) -> tuple[ShareBounds, float]:
    """Bounds with the largest common minimum share the budget allows, and that share."""
    data = problem.data
    share = largest_common_share(data.spend, data.sizes, problem.bounds, budget, problem.time_limit_seconds)
    if share is None:
        raise infeasible_budget_error(budget, smallest_feasible_budget(problem), problem.bounds)
    share = math.floor(share * SHARE_GRID) / SHARE_GRID
    return problem.bounds.with_common_minimum(share), share


def clean_shares(values: np.ndarray, bounds: ShareBounds) -> np.ndarray:
    """Solver shares snapped onto their bounds and rounded as the plan file holds them.

    Metrics are computed from these very shares, so plan file, plan frame and metrics agree exactly.
    """
    lower, upper = bounds.lower[None, :], bounds.upper[None, :]
    shares = np.clip(values, lower, upper)
    shares = np.where(np.abs(shares - lower) < BOUND_SNAP, lower, shares)
    shares = np.where(np.abs(shares - upper) < BOUND_SNAP, upper, shares)
    return np.array([[round_significant(v) for v in row] for row in shares], dtype="float64").reshape(shares.shape)


def plan_frame(problem: SegmentProblem, shares: np.ndarray) -> pd.DataFrame:
    """Long plan: one row per (segment, offer), segments in table order and offers in arm order."""
    table, data, arms = problem.table, problem.data, list(problem.arms)
    keep = [SEGMENT_ID, *problem.segment_columns, N_CUSTOMERS]
    repeated = table.loc[table.index.repeat(len(arms)), keep].reset_index(drop=True)
    repeated[N_CUSTOMERS] = repeated[N_CUSTOMERS].astype("int64")
    values = {
        "share": shares,
        "expected_customers": data.sizes[:, None] * shares,
        "prob": table[[prob_column(arm) for arm in arms]].to_numpy(dtype="float64"),
        "expected_conversions": data.conversions * shares,
        "expected_incremental_conversions": data.gain * shares,
        "expected_cost": data.spend * shares,
    }
    repeated.insert(len(repeated.columns), OFFER, arms * len(table))
    for name in PLAN_COLUMNS:
        repeated[name] = [round_significant(v) for v in values[name].ravel()]
    return repeated


def _optional(value: float | None) -> float | None:
    return None if value is None else round_significant(value)


def plan_metrics(problem: SegmentProblem, shares: np.ndarray, budget: float, dual: float | None, bounds: ShareBounds) -> dict:
    """JSON-ready summary of the optimum; nothing time-dependent so reruns are byte-identical."""
    data = problem.data
    incremental = float((data.gain * shares).sum())
    cost = float((data.spend * shares).sum())
    if dual is not None and dual < -DUAL_NOISE:
        raise SolverError(
            f"budget dual {dual!r} is negative: more budget cannot lower the optimum (dual sign convention?)"
        )
    shadow_price = dual if dual is not None and dual > DUAL_NOISE else 0.0
    binding = shadow_price > 0 and cost >= budget - 1e-6 * max(1.0, budget)
    per_usd = incremental_per_usd(problem.objective, shadow_price, problem.value_per_conversion, binding)
    return {
        "budget": round_significant(budget),
        **bounds.describe(),
        "segments": int(data.gain.shape[0]),
        "customers": int(data.sizes.sum()),
        "objective_name": problem.objective,
        "value_per_conversion": _optional(problem.value_per_conversion),
        "objective": round_significant(float((data.value * shares).sum())),
        "expected_conversions": round_significant(float((data.conversions * shares).sum())),
        "expected_incremental_conversions": round_significant(incremental),
        "expected_cost": round_significant(cost),
        "offer_customers": {
            arm: round_significant(float(n)) for arm, n in zip(problem.arms, (data.sizes[:, None] * shares).sum(axis=0))
        },
        "budget_shadow_price": round_significant(shadow_price),
        "budget_binding": bool(binding),
        "cost_per_incremental_conversion": round_significant(cost / incremental) if incremental > 0 else None,
        "marginal_cost_per_incremental_conversion": round_significant(1.0 / per_usd) if per_usd > DUAL_NOISE else None,
        "solver": {"name": "highs", "method": HIGHS_OPTIONS["solver"], "termination": "optimal"},
    }


def plan_problem(problem: SegmentProblem, budget: float, fairness: bool = False) -> SegmentPlan:
    """Optimal plan at `budget` (fairness: with the largest common minimum share first), as plan and metrics."""
    if not (math.isfinite(budget) and budget >= 0):
        raise ValueError(f"budget must be a finite number >= 0, got {budget!r}")
    bounds, common = fair_bounds(problem, budget) if fairness else (problem.bounds, None)
    solution = solve_at(problem, budget, bounds)
    shares = clean_shares(solution.shares, bounds)
    metrics = plan_metrics(problem, shares, budget, solution.dual, bounds)
    metrics["fairness"] = {"enabled": fairness, "common_min_share": _optional(common)}
    return SegmentPlan(plan=plan_frame(problem, shares), metrics=metrics)


def optimize_segments(
    table: pd.DataFrame,
    segment_columns: Sequence[str],
    arms: list[str],
    control: str,
    coupon_cost: dict[str, float],
    budget: float,
    min_share: ShareSetting,
    time_limit_seconds: float = 60,
    *,
    max_share: ShareSetting = None,
    capacity: Mapping[str, float] | None = None,
    fairness: bool = False,
    objective: str = "incremental_conversions",
    value_per_conversion: float | None = None,
    contact_cost: Mapping[str, float] | None = None,
    groups: Mapping[str, tuple[Sequence[str], int]] | None = None,
) -> SegmentPlan:
    """Best shares of every offer per segment within the budget; plan sorted by segment_id, then arm order."""
    check_arguments(arms, control, coupon_cost, budget)
    problem = prepare_problem(
        table, segment_columns, arms, control, coupon_cost, min_share, max_share, capacity,
        objective, value_per_conversion, time_limit_seconds, contact_cost, groups,
    )
    return plan_problem(problem, budget, fairness)
