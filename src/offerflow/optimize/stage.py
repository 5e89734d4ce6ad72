"""Optimize stage runner: pick the probability table, solve the segment LP, write plan and metrics.

The table is the learned one (written by the probabilities stage) or a given file such as
visit_probability.csv, which is sized with the customer file. When the true table is known, the
chosen plan is also scored on it: how much of the truly best plan's gain the learned table delivers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from offerflow.config import Params
from offerflow.io import InputFileError, Layout, read_customers, read_table, write_csv, write_json
from offerflow.optimize.segment_lp import (
    N_CUSTOMERS,
    InfeasiblePlanError,
    ProbabilityTableError,
    SegmentPlan,
    optimize_segments,
    round_significant,
    score_plan,
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


def solve_for_params(table: pd.DataFrame, params: Params, source: Path, budget: float | None = None) -> SegmentPlan:
    """optimize_segments with params.yaml's knobs (budget overridable); a bad table's error names its file."""
    try:
        return optimize_segments(
            table,
            params.data.segment_columns,
            params.arms.names,
            params.arms.control,
            params.arms.coupon_cost,
            params.optimize.budget if budget is None else budget,
            params.optimize.min_share,
            params.optimize.solver.time_limit_seconds,
        )
    except ProbabilityTableError as error:
        raise InputFileError(f"{source}: {error}") from error


def _ratio(value: float, reference: float | None) -> float | None:
    return round_significant(value / reference) if reference is not None and reference > 0 else None


def evaluate_on_truth(plan: pd.DataFrame, params: Params) -> dict:
    """Decision quality of the plan under the true table.

    Two yardsticks: the true optimum at the budget (what was asked for), and the true optimum at the
    plan's true cost (fair when a wrong table makes the plan overspend: then the first ratio can exceed 1,
    while the equal-cost ratio stays <= 1 and measures targeting alone).
    """
    path = params.path(params.data.true_probabilities)
    segment_columns = list(params.data.segment_columns)
    customers = check_customers(read_customers(params), params)
    truth = size_given_table(read_table(path), customers, segment_columns, path)
    try:
        arms = params.arms
        scored = score_plan(plan, truth, segment_columns, arms.names, arms.control, arms.coupon_cost)
    except ProbabilityTableError as error:
        raise InputFileError(f"{path}: {error}") from error
    value, cost, budget = scored["incremental_conversions"], scored["expected_cost"], params.optimize.budget
    evaluation = {
        "true_objective_of_plan": round_significant(value),
        "true_cost_of_plan": round_significant(cost),
        "true_cost_within_budget": bool(cost <= budget + COST_TOLERANCE),
        "true_optimum": None,
        "ratio_to_true_optimum": None,
    }
    try:
        evaluation["true_optimum"] = solve_for_params(truth, params, path).metrics["objective"]
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


def run_optimize(params: Params, layout: Layout) -> dict:
    """Solve the segment LP for params.yaml's budget; write the plan CSV and metrics JSON; return the metrics."""
    table, source = load_probability_table(params, layout)
    result = solve_for_params(table, params, source)
    metrics = dict(result.metrics)
    metrics["probability_table"] = str(params.optimize.probability_table)
    if params.data.true_probabilities is not None:
        metrics["evaluation_on_truth"] = evaluate_on_truth(result.plan, params)
    write_csv(result.plan, layout.segment_plan)
    write_json(metrics, layout.optimize_metrics)
    return metrics
