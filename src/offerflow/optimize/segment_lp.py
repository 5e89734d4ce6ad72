"""The segment-level LP: which share of each segment gets which offer, within the coupon budget.

    max  sum_{s,d} N_s (p[s,d] - p[s,control]) x[s,d]
    s.t. sum_d x[s,d] = 1                        (every customer gets exactly one offer)
         sum_{s,d} c_d N_s p[s,d] x[s,d] <= B    (expected coupon cost within budget)
         x[s,d] >= min_share

Modelled in Pyomo and solved by HiGHS (simplex) through Pyomo's APPSI interface; the budget's dual
value is the marginal number of incremental conversions per extra dollar.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyomo.environ as pyo

from offerflow.io import prob_column
from offerflow.segments import SEGMENT_ID

DIGITS = 10  # significant digits kept in outputs: absorbs solver round-off, keeps files byte-stable


class InfeasiblePlanError(ValueError):
    """No plan satisfies the constraints; says why and the smallest budget that would."""

    def __init__(self, message: str, smallest_feasible_budget: float | None = None):
        super().__init__(message)
        self.smallest_feasible_budget = smallest_feasible_budget


class SolverError(RuntimeError):
    """HiGHS did not prove optimality (time limit, numerical trouble)."""


@dataclass(frozen=True)
class SegmentPlan:
    plan: pd.DataFrame
    metrics: dict


def rounded(value: float) -> float:
    return float(f"{value:.{DIGITS}g}")


def check_table(table: pd.DataFrame, arms: list[str], min_share: float) -> None:
    missing = [c for c in [SEGMENT_ID, "n_customers", *map(prob_column, arms)] if c not in table.columns]
    if missing:
        raise ValueError(f"probability table lacks column(s) {missing}; has {list(table.columns)}")
    for arm in arms:
        column = table[prob_column(arm)]
        bad = table.loc[column.isna() | (column < 0) | (column > 1), [SEGMENT_ID, prob_column(arm)]]
        if len(bad):
            raise ValueError(f"{prob_column(arm)} must be within [0, 1]; offending rows: {bad.head(5).to_dict('records')}")
    if (table["n_customers"] < 0).any():
        raise ValueError("n_customers must be >= 0")
    if min_share * len(arms) > 1 + 1e-12:
        raise InfeasiblePlanError(
            f"min_share {min_share} x {len(arms)} offers = {min_share * len(arms):.3g} > 1: "
            "no segment can give every offer that share"
        )


def _model(table, arms, control, coupon_cost, min_share, budget: float | None, minimize_cost: bool):
    segments = list(table[SEGMENT_ID])
    size = dict(zip(segments, table["n_customers"].astype(float)))
    prob = {(s, d): float(p) for d in arms for s, p in zip(segments, table[prob_column(d)])}
    m = pyo.ConcreteModel()
    m.x = pyo.Var(segments, arms, bounds=(min_share, 1.0))
    m.one_offer = pyo.Constraint(segments, rule=lambda m, s: sum(m.x[s, d] for d in arms) == 1)
    cost = sum(coupon_cost[d] * size[s] * prob[s, d] * m.x[s, d] for s in segments for d in arms)
    if minimize_cost:
        m.objective = pyo.Objective(expr=cost, sense=pyo.minimize)
    else:
        gain = sum(size[s] * (prob[s, d] - prob[s, control]) * m.x[s, d] for s in segments for d in arms)
        m.objective = pyo.Objective(expr=gain, sense=pyo.maximize)
        m.budget = pyo.Constraint(expr=cost <= budget)
    return m


def _solve(model, time_limit_seconds: float, with_budget_dual: bool):
    from pyomo.contrib.appsi.solvers import Highs

    solver = Highs()
    solver.config.load_solution = False
    solver.config.time_limit = time_limit_seconds
    solver.highs_options = {"solver": "simplex", "random_seed": 0, "threads": 1}
    result = solver.solve(model)
    status = result.termination_condition.name
    if status == "infeasible":
        return status, None
    if status != "optimal":
        raise SolverError(f"HiGHS stopped with status {status!r} (time limit {time_limit_seconds}s)")
    result.solution_loader.load_vars()
    dual = None
    if with_budget_dual:
        dual = result.solution_loader.get_duals([model.budget])[model.budget]
    return status, dual


def smallest_feasible_budget(table, arms, control, coupon_cost, min_share, time_limit_seconds: float = 60) -> float:
    """The cheapest expected coupon cost any plan meeting the share constraints can have."""
    model = _model(table, arms, control, coupon_cost, min_share, None, minimize_cost=True)
    _solve(model, time_limit_seconds, with_budget_dual=False)
    return float(pyo.value(model.objective))


def optimize_segments(
    table: pd.DataFrame,
    segment_columns,
    arms: list[str],
    control: str,
    coupon_cost: dict[str, float],
    budget: float,
    min_share: float,
    time_limit_seconds: float = 60,
) -> SegmentPlan:
    """Solve the segment LP; the plan is one row per (segment, offer) in segment_id then arm order."""
    table = table.sort_values(SEGMENT_ID).reset_index(drop=True)
    check_table(table, arms, min_share)
    model = _model(table, arms, control, coupon_cost, min_share, budget, minimize_cost=False)
    status, dual = _solve(model, time_limit_seconds, with_budget_dual=True)
    if status == "infeasible":
        floor = smallest_feasible_budget(table, arms, control, coupon_cost, min_share, time_limit_seconds)
        raise InfeasiblePlanError(
            f"no plan fits the budget of {budget:,.2f} USD: giving every offer its minimum share of "
            f"{min_share:g} already costs {floor:,.2f} USD in expected coupons. "
            f"Smallest feasible budget: {floor:,.2f} USD (raise optimize.budget or lower optimize.min_share).",
            smallest_feasible_budget=floor,
        )
    rows = []
    for record in table.to_dict("records"):
        s = record[SEGMENT_ID]
        for d in arms:
            share = min(max(pyo.value(model.x[s, d]), 0.0), 1.0)
            n, p = float(record["n_customers"]), float(record[prob_column(d)])
            rows.append(
                {
                    SEGMENT_ID: s,
                    **{c: record[c] for c in segment_columns},
                    "n_customers": int(record["n_customers"]),
                    "offer": d,
                    "share": rounded(share),
                    "expected_customers": rounded(n * share),
                    "prob": p,
                    "expected_conversions": rounded(n * share * p),
                    "expected_incremental_conversions": rounded(n * share * (p - record[prob_column(control)])),
                    "expected_cost": rounded(coupon_cost[d] * n * share * p),
                }
            )
    plan = pd.DataFrame(rows)
    objective = float(plan["expected_incremental_conversions"].sum())
    expected_cost = float(plan["expected_cost"].sum())
    shadow_price = max(float(dual or 0.0), 0.0)
    metrics = {
        "budget": rounded(budget),
        "objective": rounded(objective),
        "expected_conversions": rounded(float(plan["expected_conversions"].sum())),
        "expected_cost": rounded(expected_cost),
        "budget_shadow_price": rounded(shadow_price),
        "budget_binding": bool(expected_cost >= budget * (1 - 1e-7) and shadow_price > 1e-12),
        "cost_per_incremental_conversion": rounded(expected_cost / objective) if objective > 0 else None,
        "min_share": min_share,
        "segments": int(len(table)),
        "solver": {"name": "highs", "termination": status},
    }
    return SegmentPlan(plan=plan, metrics=metrics)
