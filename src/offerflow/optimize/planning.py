"""The segment plan for params.yaml's settings: table sizing, the LP with its constraints, risk and frontier.

These functions sit between the pure LP (segment_lp) and the optimize stage's runner: they read the
typed settings and turn a table error into one naming its file, but they never touch the file system.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from offerflow.config import Params
from offerflow.errors import InputFileError
from offerflow.optimize.frontier import budget_frontier, recommend_budget
from offerflow.optimize.risk import cost_quantile, cost_risk, largest_mean_budget
from offerflow.optimize.segment_lp import (
    ProbabilityTableError,
    SegmentPlan,
    SegmentProblem,
    plan_problem,
    prepare_problem,
    round_significant,
    smallest_feasible_budget,
)
from offerflow.schema import N_CUSTOMERS, SEGMENT_ID
from offerflow.segments import segment_catalog

MAX_LISTED = 5


def size_given_table(
    table: pd.DataFrame, customers: pd.DataFrame, segment_columns: list[str], source: Path | str
) -> pd.DataFrame:
    """A given probability table with segment_id and n_customers from the customer file attached.

    Every customer's segment must be priced by the table; its own segment_id numbering is kept.
    """
    missing = [column for column in segment_columns if column not in table.columns]
    if missing:
        raise InputFileError(f"{source}: lacks segment column(s) {missing}; it has {list(table.columns)}")
    repeated = table.duplicated(segment_columns, keep=False)
    if repeated.any():
        sample = table.loc[repeated, segment_columns].drop_duplicates().head(MAX_LISTED).to_dict("records")
        raise InputFileError(f"{source}: more than one row for segment(s) {sample}")
    if SEGMENT_ID in table.columns:
        ids = pd.to_numeric(table[SEGMENT_ID], errors="coerce")
        bad = ids.isna() | (ids != ids.round()) | ids.duplicated(keep=False)
        if bad.any():
            raise InputFileError(
                f"{source}: segment_id must be unique whole numbers; offending rows: "
                f"{table.loc[bad, [SEGMENT_ID, *segment_columns]].head(MAX_LISTED).to_dict('records')}"
            )
    priced = customers[segment_columns].drop_duplicates().merge(table[segment_columns], how="left", indicator=True)
    unpriced = priced[priced["_merge"] == "left_only"]
    if len(unpriced):
        sample = unpriced[segment_columns].head(MAX_LISTED).to_dict("records")
        raise InputFileError(f"{source}: no row for segment(s) of the customer file {sample}")
    catalog = segment_catalog(customers, segment_columns, reference_table=table)
    probabilities = table.drop(columns=[SEGMENT_ID, N_CUSTOMERS], errors="ignore")
    return catalog.merge(probabilities, on=segment_columns, how="left", validate="one_to_one")


def problem_for_params(table: pd.DataFrame, params: Params, source: Path | str) -> SegmentProblem:
    """The segment LP with params.yaml's objective and constraints; a bad table's error names its source."""
    settings, arms = params.optimize, params.arms
    try:
        return prepare_problem(
            table,
            params.data.segment_columns,
            arms.names,
            arms.control,
            arms.coupon_cost,
            min_share=settings.min_share,
            max_share=settings.max_share,
            capacity=settings.capacity,
            objective=settings.objective,
            value_per_conversion=settings.value_per_conversion,
            time_limit_seconds=settings.solver.time_limit_seconds,
            contact_cost=dict(arms.contact_cost),
            groups={name: (group.offers, group.max) for name, group in settings.groups.items()},
        )
    except ProbabilityTableError as error:
        raise InputFileError(f"{source}: {error}") from error


def solve_for_params(table: pd.DataFrame, params: Params, source: Path | str, budget: float | None = None) -> SegmentPlan:
    """The plan for params.yaml's knobs (budget overridable)."""
    problem = problem_for_params(table, params, source)
    return plan_problem(problem, params.optimize.budget if budget is None else budget, params.optimize.fairness)


def plan_shares(problem: SegmentProblem, plan: SegmentPlan) -> np.ndarray:
    """The plan's shares as segments x offers (the plan is segment-major in arm order)."""
    return plan.plan["share"].to_numpy(dtype="float64").reshape(len(problem.table), len(problem.arms))


def plan_cost_risk(problem: SegmentProblem, plan: SegmentPlan, budget: float, level: float) -> dict:
    data = problem.data
    counts = data.sizes[:, None] * plan_shares(problem, plan)
    return cost_risk(counts, data.prob, data.unit_cost[None, :], budget, level, data.contact[None, :])


def capped_mean_budget(problem: SegmentProblem, budget: float, level: float, fairness: bool) -> float:
    """Largest expected-cost budget whose plan keeps the `level` quantile of the realized cost within `budget`."""

    def quantile_at(mean_budget: float) -> float:
        risk = plan_cost_risk(problem, plan_problem(problem, mean_budget, fairness), budget, level)
        return cost_quantile(risk["mean_cost"], risk["std_cost"], level)

    return largest_mean_budget(quantile_at, budget, smallest_feasible_budget(problem))


def budget_risk_metrics(problem: SegmentProblem, plan: SegmentPlan, params: Params, mean_budget: float) -> dict:
    risk_settings = params.optimize.risk
    risk = plan_cost_risk(problem, plan, params.optimize.budget, risk_settings.quantile)
    report = {key: round_significant(value) for key, value in risk.items()}
    report.update(
        method="normal approximation of the realized coupon cost (independent redemptions)",
        cap_quantile=risk_settings.cap_quantile,
        mean_budget=round_significant(mean_budget),
    )
    if risk_settings.cap_quantile is not None:
        report["capped_cost_quantile"] = round_significant(
            cost_quantile(risk["mean_cost"], risk["std_cost"], risk_settings.cap_quantile)
        )
    return report


def frontier_report(problem: SegmentProblem, params: Params) -> tuple[pd.DataFrame, dict]:
    """The budget frontier's table and its summary with the recommended budget."""
    settings = params.optimize
    frontier = budget_frontier(problem, settings.frontier.points, settings.risk.quantile)
    recommend = settings.frontier.recommend
    recommendation = None
    if recommend is not None:
        recommendation = recommend_budget(problem, frontier, recommend.rule, recommend.target)
    summary = {
        "points": int(len(frontier.table)),
        "smallest_feasible_budget": float(frontier.table["budget"].iloc[0]),  # to the cent, rounded up
        "saturation_budget": float(frontier.table["budget"].iloc[-1]),
        "constraints": "min_share, max_share and capacity as configured (no fairness: its share depends on the budget)",
        "recommendation": recommendation,
    }
    return frontier.table, summary
