"""Optimize stage runner: pick the probability table, solve the segment LP, write plan, metrics and plots.

The table is the learned one (written by the probabilities stage) or a given file such as
visit_probability.csv, which is sized with the customer file. Besides the plan at the budget the stage
reports the budget risk (chance the realized coupon cost exceeds the budget), the budget frontier
with a recommended budget, and, when the true table is known, how much of the truly best plan's
value the chosen plan delivers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from offerflow.config import Params
from offerflow.io import InputFileError, Layout, read_customers, read_table, write_csv, write_json
from offerflow.optimize.frontier import budget_frontier, recommend_budget
from offerflow.optimize.plots import plot_allocation_shares, plot_budget_frontier
from offerflow.optimize.risk import cost_quantile, cost_risk, largest_mean_budget
from offerflow.optimize.segment_lp import (
    N_CUSTOMERS,
    InfeasiblePlanError,
    ProbabilityTableError,
    SegmentPlan,
    SegmentProblem,
    plan_problem,
    prepare_problem,
    round_significant,
    score_plan,
    smallest_feasible_budget,
)
from offerflow.segments import SEGMENT_ID, segment_catalog

MAX_LISTED = 5
COST_TOLERANCE = 1e-6  # USD; expected costs within this of the budget count as within it


def size_given_table(
    table: pd.DataFrame, customers: pd.DataFrame, segment_columns: list[str], source: Path
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


def check_customers(customers: pd.DataFrame, params: Params) -> pd.DataFrame:
    missing = [column for column in params.data.segment_columns if column not in customers.columns]
    if missing:
        raise InputFileError(f"{params.path(params.data.customers)}: lacks segment column(s) {missing}")
    return customers


def load_probability_table(params: Params, layout: Layout) -> tuple[pd.DataFrame, Path]:
    """The table to optimize on, and the file it came from (named in every error about it)."""
    source = params.optimize.probability_table
    if source == "learned":
        path = layout.segment_probabilities
        if not path.is_file():
            raise InputFileError(f"{path}: learned segment table not found (run the probabilities stage first)")
        return read_table(path), path
    path = params.path(source)
    customers = check_customers(read_customers(params), params)
    return size_given_table(read_table(path), customers, list(params.data.segment_columns), path), path


def optimize_outputs(layout: Layout) -> dict[str, Path]:
    """Outputs of the optimize stage beyond the Layout's plan and metrics (dvc.yaml plots)."""
    return {
        "budget_frontier": layout.root / "reports/plots/budget_frontier.csv",
        "budget_frontier_figure": layout.root / "reports/figures/budget_frontier.png",
        "allocation_figure": layout.root / "reports/figures/allocation_shares.png",
    }


def problem_for_params(table: pd.DataFrame, params: Params, source: Path) -> SegmentProblem:
    """The segment LP with params.yaml's objective and constraints; a bad table's or setting's error names its source."""
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
        )
    except ProbabilityTableError as error:
        raise InputFileError(f"{source}: {error}") from error


def solve_for_params(table: pd.DataFrame, params: Params, source: Path, budget: float | None = None) -> SegmentPlan:
    """The plan for params.yaml's knobs (budget overridable)."""
    problem = problem_for_params(table, params, source)
    return plan_problem(problem, params.optimize.budget if budget is None else budget, params.optimize.fairness)


def plan_shares(problem: SegmentProblem, plan: SegmentPlan) -> np.ndarray:
    """The plan's shares as segments x offers (the plan is segment-major in arm order)."""
    return plan.plan["share"].to_numpy(dtype="float64").reshape(len(problem.table), len(problem.arms))


def plan_cost_risk(problem: SegmentProblem, plan: SegmentPlan, budget: float, level: float) -> dict:
    data = problem.data
    counts = data.sizes[:, None] * plan_shares(problem, plan)
    return cost_risk(counts, data.prob, data.unit_cost[None, :], budget, level)


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


def _ratio(value: float, reference: float | None) -> float | None:
    return round_significant(value / reference) if reference is not None and reference > 0 else None


def evaluate_on_truth(plan: pd.DataFrame, params: Params, budget: float | None = None) -> dict:
    """Decision quality of the plan under the true table, for the configured objective and constraints.

    Two yardsticks: the true optimum at the budget (what was asked for), and the true optimum at the
    plan's true cost (fair when a wrong table makes the plan overspend: then the first ratio can exceed 1,
    while the equal-cost ratio stays <= 1 and measures targeting alone).
    """
    path = params.path(params.data.true_probabilities)
    segment_columns = list(params.data.segment_columns)
    customers = check_customers(read_customers(params), params)
    truth = size_given_table(read_table(path), customers, segment_columns, path)
    settings, arms = params.optimize, params.arms
    budget = settings.budget if budget is None else budget
    try:
        scored = score_plan(
            plan, truth, segment_columns, arms.names, arms.control, arms.coupon_cost,
            settings.objective, settings.value_per_conversion,
        )
    except ProbabilityTableError as error:
        raise InputFileError(f"{path}: {error}") from error
    value, cost = scored["objective"], scored["expected_cost"]
    evaluation = {
        "true_objective_of_plan": round_significant(value),
        "true_incremental_conversions_of_plan": round_significant(scored["incremental_conversions"]),
        "true_cost_of_plan": round_significant(cost),
        "true_cost_within_budget": bool(cost <= settings.budget + COST_TOLERANCE),
        "true_optimum": None,
        "ratio_to_true_optimum": None,
    }
    try:
        evaluation["true_optimum"] = solve_for_params(truth, params, path, budget).metrics["objective"]
    except InfeasiblePlanError as error:  # the truth needs more budget than the learned table thought
        floor = error.smallest_feasible_budget
        evaluation["true_smallest_feasible_budget"] = None if floor is None else round_significant(floor)
    evaluation["ratio_to_true_optimum"] = _ratio(value, evaluation["true_optimum"])
    # the plan meets the share constraints, so its true cost is a feasible budget up to the round-off of its shares
    try:
        at_cost = solve_for_params(truth, params, path, budget=cost).metrics["objective"]
    except InfeasiblePlanError as error:
        at_cost = solve_for_params(truth, params, path, budget=error.smallest_feasible_budget).metrics["objective"]
    evaluation["true_optimum_at_true_cost_of_plan"] = at_cost
    evaluation["ratio_at_equal_cost"] = _ratio(value, at_cost)
    return evaluation


def frontier_metrics(problem: SegmentProblem, params: Params, outputs: dict[str, Path]) -> dict:
    """Solve the frontier, write its plot CSV (and PNG), and summarize it with the recommended budget."""
    settings = params.optimize
    frontier = budget_frontier(problem, settings.frontier.points, settings.risk.quantile)
    recommend = settings.frontier.recommend
    recommendation = None
    if recommend is not None:
        recommendation = recommend_budget(problem, frontier, recommend.rule, recommend.target)
    write_csv(frontier.table, outputs["budget_frontier"])
    if settings.figures:
        worth = None if recommend is None else recommendation.get("target", recommendation.get("value_per_conversion"))
        recommended = None if recommendation is None else recommendation["budget"]
        plot_budget_frontier(frontier.table, settings.budget, recommended, outputs["budget_frontier_figure"], worth)
    return {
        "points": int(len(frontier.table)),
        "smallest_feasible_budget": float(frontier.table["budget"].iloc[0]),  # to the cent, rounded up
        "saturation_budget": float(frontier.table["budget"].iloc[-1]),
        "constraints": "min_share, max_share and capacity as configured (no fairness: its share depends on the budget)",
        "recommendation": recommendation,
    }


def run_optimize(params: Params, layout: Layout) -> dict:
    """Solve the segment LP for params.yaml's budget; write plan, metrics, frontier and figures; return the metrics."""
    settings = params.optimize
    outputs = optimize_outputs(layout)
    table, source = load_probability_table(params, layout)
    problem = problem_for_params(table, params, source)
    mean_budget = settings.budget
    if settings.risk.cap_quantile is not None:
        mean_budget = capped_mean_budget(problem, settings.budget, settings.risk.cap_quantile, settings.fairness)
    result = plan_problem(problem, mean_budget, settings.fairness)
    metrics = dict(result.metrics)
    metrics["budget"] = round_significant(settings.budget)
    metrics["probability_table"] = str(settings.probability_table)
    metrics["budget_risk"] = budget_risk_metrics(problem, result, params, mean_budget)
    metrics["frontier"] = frontier_metrics(problem, params, outputs) if settings.frontier.enabled else None
    recommendation = (metrics["frontier"] or {}).get("recommendation")
    metrics["recommended_budget"] = None if recommendation is None else recommendation["budget"]
    if params.data.true_probabilities is not None:
        metrics["evaluation_on_truth"] = evaluate_on_truth(result.plan, params, mean_budget)
    if settings.figures:
        plot_allocation_shares(result.plan, params.data.segment_columns, params.arms.names, outputs["allocation_figure"])
    stale = [] if settings.frontier.enabled and settings.figures else [outputs["budget_frontier_figure"]]
    stale += [] if settings.frontier.enabled else [outputs["budget_frontier"]]
    stale += [] if settings.figures else [outputs["allocation_figure"]]
    for path in stale:  # a switched-off output must not show an old run's numbers
        path.unlink(missing_ok=True)
    write_csv(result.plan, layout.segment_plan)
    write_json(metrics, layout.optimize_metrics)
    return metrics
