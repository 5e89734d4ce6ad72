"""The segment-level LP: which share of each segment gets which offer, within the coupon budget.

    max  sum_{s,d} N_s (p[s,d] - p[s,control]) x[s,d]      expected incremental conversions
    s.t. sum_d x[s,d] = 1                        for every s  (every customer gets one offer)
         sum_{s,d} c_d N_s p[s,d] x[s,d] <= B                 (expected coupon cost; a coupon costs when redeemed)
         x[s,d] >= min_share                                  (every offer keeps being tested everywhere)

Modelled in Pyomo and solved by HiGHS's simplex through Pyomo's APPSI interface. Simplex (not
PDLP, whose duals had a flipped sign) gives a vertex and exact duals: the budget row's dual is the
number of extra incremental conversions one more dollar buys. When the budget cannot pay for the
minimum shares, the min-cost LP with the same constraints names the smallest budget that can.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from offerflow.io import prob_column
from offerflow.segments import SEGMENT_ID

N_CUSTOMERS = "n_customers"
OFFER = "offer"
PLAN_COLUMNS = (
    "share",
    "expected_customers",
    "prob",
    "expected_conversions",
    "expected_incremental_conversions",
    "expected_cost",
)
DIGITS = 10  # significant digits kept in outputs: absorbs solver round-off, keeps files byte-stable
BOUND_SNAP = 1e-9  # a share this close to min_share (or 1) is exactly at that bound
DUAL_NOISE = 1e-9  # |dual| below this is round-off, not a price
HIGHS_OPTIONS = {"solver": "simplex", "random_seed": 0, "presolve": "on"}
MAX_LISTED = 5


class ProbabilityTableError(ValueError):
    """The segment probability table cannot be optimized; names the column and offending rows."""


class InfeasiblePlanError(ValueError):
    """No plan satisfies the constraints; the message says why and the smallest budget that would do."""

    def __init__(self, message: str, smallest_feasible_budget: float | None = None) -> None:
        super().__init__(message)
        self.smallest_feasible_budget = smallest_feasible_budget


class SolverError(RuntimeError):
    """HiGHS did not prove optimality (time limit, numerical trouble) or returned an implausible dual."""


@dataclass(frozen=True)
class SegmentPlan:
    """Long-format plan (one row per segment and offer) and its JSON-ready metrics."""

    plan: pd.DataFrame
    metrics: dict


@dataclass(frozen=True)
class LPData:
    """The LP's coefficients as arrays (segments x arms), so the model and the reports share them."""

    sizes: np.ndarray  # N_s
    gain: np.ndarray  # N_s (p[s,d] - p[s,control]): incremental conversions if all of s gets d
    spend: np.ndarray  # c_d N_s p[s,d]: expected coupon cost if all of s gets d
    conversions: np.ndarray  # N_s p[s,d]


def round_significant(value: float, digits: int = DIGITS) -> float:
    """Round to `digits` significant digits so solver round-off never changes a written byte."""
    return float(f"{float(value):.{digits}g}")


def _rows(frame: pd.DataFrame, mask: pd.Series, columns: list[str]) -> list[dict]:
    return frame.loc[mask, columns].head(MAX_LISTED).to_dict("records")


def check_arguments(
    arms: Sequence[str], control: str, coupon_cost: dict[str, float], budget: float, min_share: float
) -> None:
    """Reject arguments no table could fix: unknown control, missing or negative costs, bad budget or min_share."""
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
    if not (math.isfinite(min_share) and 0 <= min_share <= 1):
        raise ValueError(f"min_share must be within [0, 1], got {min_share!r}")
    if min_share * len(arms) > 1 + 1e-12:
        raise InfeasiblePlanError(
            f"min_share {min_share:g} x {len(arms)} offers = {min_share * len(arms):.4g} > 1: no segment can give "
            f"every offer that share, whatever the budget; lower optimize.min_share to at most {1 / len(arms):.4g}"
        )


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


def lp_data(table: pd.DataFrame, arms: Sequence[str], control: str, coupon_cost: dict[str, float]) -> LPData:
    """Coefficient arrays of the LP, rows in table order, columns in arm order."""
    sizes = table[N_CUSTOMERS].to_numpy(dtype="float64")
    prob = table[[prob_column(arm) for arm in arms]].to_numpy(dtype="float64")
    prob = np.where(sizes[:, None] > 0, prob, 0.0)  # an empty segment may have no probabilities at all
    unit_cost = np.array([coupon_cost[arm] for arm in arms], dtype="float64")
    conversions = sizes[:, None] * prob
    control_conversions = conversions[:, [list(arms).index(control)]]
    return LPData(
        sizes=sizes,
        gain=conversions - control_conversions,
        spend=conversions * unit_cost[None, :],
        conversions=conversions,
    )


def build_model(data: LPData, min_share: float, budget: float | None) -> pyo.ConcreteModel:
    """Max-gain LP under `budget`, or (budget None) the min-cost LP with the same share constraints."""
    n_segments, n_arms = data.gain.shape
    model = pyo.ConcreteModel()
    model.x = pyo.Var(range(n_segments), range(n_arms), bounds=(min_share, 1.0))
    model.one_offer = pyo.Constraint(range(n_segments), rule=lambda m, s: sum(m.x[s, d] for d in range(n_arms)) == 1)
    pairs = [(s, d) for s in range(n_segments) for d in range(n_arms)]
    cost = sum(float(data.spend[s, d]) * model.x[s, d] for s, d in pairs if data.spend[s, d] != 0)
    if budget is None:
        model.objective = pyo.Objective(expr=cost, sense=pyo.minimize)
        return model
    gain = sum(float(data.gain[s, d]) * model.x[s, d] for s, d in pairs)
    model.objective = pyo.Objective(expr=gain, sense=pyo.maximize)
    if not isinstance(cost, (int, float)):
        model.budget_con = pyo.Constraint(expr=cost <= float(budget))  # absent when no plan can cost anything
    return model


def solve_model(model: pyo.ConcreteModel, time_limit_seconds: float) -> tuple[str, float | None]:
    """Solve with HiGHS simplex; return the termination name and the budget row's dual (None without one)."""
    from pyomo.contrib.appsi.solvers import Highs

    solver = Highs()
    solver.config.load_solution = False
    solver.config.time_limit = float(time_limit_seconds)
    solver.highs_options = dict(HIGHS_OPTIONS)
    result = solver.solve(model)
    status = result.termination_condition.name
    if status in ("infeasible", "infeasibleOrUnbounded"):  # every x is boxed, so never unbounded
        return "infeasible", None
    if status != "optimal":
        raise SolverError(
            f"HiGHS stopped with status {status!r} (time limit {time_limit_seconds:g} s); no plan written"
        )
    result.solution_loader.load_vars()
    if not hasattr(model, "budget_con"):
        return status, None
    return status, float(result.solution_loader.get_duals([model.budget_con])[model.budget_con])


def smallest_feasible_budget(data: LPData, min_share: float, time_limit_seconds: float = 60) -> float:
    """Cheapest expected coupon cost of any plan meeting the share constraints (the min-cost LP)."""
    model = build_model(data, min_share, budget=None)
    status, _ = solve_model(model, time_limit_seconds)
    if status != "optimal":
        raise SolverError(f"the min-cost LP ended {status!r}; the share constraints alone should be feasible")
    return float(pyo.value(model.objective))


def _infeasible_budget_error(budget: float, min_share: float, floor: float) -> InfeasiblePlanError:
    shown_floor = math.ceil(floor * 100 - 1e-6) / 100  # rounded up to the cent, so the quoted budget is feasible
    return InfeasiblePlanError(
        f"no plan fits the budget of {budget:,.2f} USD: giving every offer at least {min_share:g} of every segment "
        f"already costs {floor:,.2f} USD in expected coupons. Smallest feasible budget: {shown_floor:,.2f} USD "
        "(raise optimize.budget or lower optimize.min_share).",
        smallest_feasible_budget=floor,
    )


def clean_shares(values: np.ndarray, min_share: float) -> np.ndarray:
    """Solver shares snapped onto their bounds and rounded as the plan file holds them.

    Metrics are computed from these very shares, so plan file, plan frame and metrics agree exactly.
    """
    shares = np.clip(values, min_share, 1.0)
    shares = np.where(np.abs(shares - min_share) < BOUND_SNAP, min_share, shares)
    shares = np.where(np.abs(shares - 1.0) < BOUND_SNAP, 1.0, shares)
    return np.array([[round_significant(v) for v in row] for row in shares], dtype="float64").reshape(shares.shape)


def plan_frame(
    table: pd.DataFrame, segment_columns: Sequence[str], arms: Sequence[str], data: LPData, shares: np.ndarray
) -> pd.DataFrame:
    """Long plan: one row per (segment, offer), segments in table order and offers in arm order."""
    n_arms = len(arms)
    repeated = table.loc[table.index.repeat(n_arms), [SEGMENT_ID, *segment_columns, N_CUSTOMERS]].reset_index(drop=True)
    repeated[N_CUSTOMERS] = repeated[N_CUSTOMERS].astype("int64")
    prob = table[[prob_column(arm) for arm in arms]].to_numpy(dtype="float64")
    values = {
        "share": shares,
        "expected_customers": data.sizes[:, None] * shares,
        "prob": prob,
        "expected_conversions": data.conversions * shares,
        "expected_incremental_conversions": data.gain * shares,
        "expected_cost": data.spend * shares,
    }
    repeated.insert(len(repeated.columns), OFFER, list(arms) * len(table))
    for name in PLAN_COLUMNS:
        repeated[name] = [round_significant(v) for v in values[name].ravel()]
    return repeated


def plan_metrics(
    data: LPData, shares: np.ndarray, budget: float, min_share: float, dual: float | None, status: str
) -> dict:
    """JSON-ready summary of the optimum; nothing time-dependent so reruns are byte-identical."""
    objective = float((data.gain * shares).sum())
    cost = float((data.spend * shares).sum())
    if dual is not None and dual < -DUAL_NOISE:
        raise SolverError(
            f"budget dual {dual!r} is negative: more budget cannot lower the optimum (dual sign convention?)"
        )
    shadow_price = dual if dual is not None and dual > DUAL_NOISE else 0.0
    binding = shadow_price > 0 and cost >= budget - 1e-6 * max(1.0, budget)
    return {
        "budget": round_significant(budget),
        "min_share": round_significant(min_share),
        "segments": int(data.gain.shape[0]),
        "customers": int(data.sizes.sum()),
        "objective": round_significant(objective),
        "expected_conversions": round_significant(float((data.conversions * shares).sum())),
        "expected_cost": round_significant(cost),
        "budget_shadow_price": round_significant(shadow_price),
        "budget_binding": bool(binding),
        "cost_per_incremental_conversion": round_significant(cost / objective) if objective > 0 else None,
        "solver": {"name": "highs", "method": HIGHS_OPTIONS["solver"], "termination": status},
    }


def optimize_segments(
    table: pd.DataFrame,
    segment_columns: Sequence[str],
    arms: list[str],
    control: str,
    coupon_cost: dict[str, float],
    budget: float,
    min_share: float,
    time_limit_seconds: float = 60,
) -> SegmentPlan:
    """Best shares of every offer per segment within the budget; plan sorted by segment_id, then arm order.

    Segments without customers are left out: they change neither objective nor cost, and the LP
    would give them arbitrary shares.
    """
    segment_columns = list(segment_columns)
    check_arguments(arms, control, coupon_cost, budget, min_share)
    check_table(table, segment_columns, arms)
    populated = table[pd.to_numeric(table[N_CUSTOMERS]) > 0]
    populated = populated.sort_values(SEGMENT_ID, kind="stable").reset_index(drop=True)
    data = lp_data(populated, arms, control, coupon_cost)
    model = build_model(data, min_share, budget)
    status, dual = solve_model(model, time_limit_seconds)
    if status == "infeasible":
        floor = smallest_feasible_budget(data, min_share, time_limit_seconds)
        if floor <= budget:
            raise SolverError(f"HiGHS called budget {budget:,.2f} infeasible, yet the cheapest plan costs {floor:,.2f}")
        raise _infeasible_budget_error(budget, min_share, floor)
    raw = np.array(
        [[pyo.value(model.x[s, d]) for d in range(len(arms))] for s in range(len(populated))], dtype="float64"
    )
    shares = clean_shares(raw, min_share)
    metrics = plan_metrics(data, shares, budget, min_share, dual, status)
    return SegmentPlan(plan=plan_frame(populated, segment_columns, arms, data, shares), metrics=metrics)


def score_plan(
    plan: pd.DataFrame,
    table: pd.DataFrame,
    segment_columns: Sequence[str],
    arms: Sequence[str],
    control: str,
    coupon_cost: dict[str, float],
) -> dict:
    """Expected incremental conversions and coupon cost of a plan's shares if `table` held the true probabilities.

    Segments are matched by their segment columns (ids may be numbered differently) and sized by the
    table's n_customers; a planned segment the table cannot price is an error naming it.
    """
    segment_columns = list(segment_columns)
    shares = plan.pivot_table(index=segment_columns, columns=OFFER, values="share", aggfunc="sum")
    shares = shares.reindex(columns=list(arms), fill_value=0.0).fillna(0.0)
    share_columns = [f"__share_of_{arm}" for arm in arms]
    shares = shares.set_axis(share_columns, axis=1).reset_index()
    joined = shares.merge(table, on=segment_columns, how="left", indicator=True)
    unpriced = joined["_merge"] == "left_only"
    if unpriced.any():
        missing = _rows(joined, unpriced, segment_columns)
        raise ProbabilityTableError(f"planned segments missing from the table: {missing}")
    check_table(joined.drop(columns="_merge"), segment_columns, arms)
    data = lp_data(joined, arms, control, coupon_cost)
    x = joined[share_columns].to_numpy(dtype="float64")
    return {
        "incremental_conversions": float((data.gain * x).sum()),
        "expected_cost": float((data.spend * x).sum()),
    }
