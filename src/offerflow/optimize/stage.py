"""Optimize stage runner: pick the probability table, solve the LP, write plan and metrics."""

from __future__ import annotations

import pandas as pd

from offerflow.config import Params
from offerflow.io import Layout, read_customers, read_table, write_csv, write_json
from offerflow.optimize.segment_lp import optimize_segments
from offerflow.segments import segment_catalog


def load_segment_table(params: Params, layout: Layout) -> pd.DataFrame:
    """The learned segment table, or a given one (e.g. visit_probability.csv) sized by the customer file."""
    if params.optimize.probability_table == "learned":
        return read_table(layout.segment_probabilities)
    table = read_table(params.path(params.optimize.probability_table))
    catalog = segment_catalog(read_customers(params), params.data.segment_columns, reference_table=table)
    columns = list(params.data.segment_columns)
    return catalog.merge(table.drop(columns=["segment_id"], errors="ignore"), on=columns, how="left")


def evaluate_on_truth(plan: pd.DataFrame, params: Params, layout: Layout) -> dict:
    """Value of the chosen plan under the true table, against the true optimum at the same budget."""
    truth_table = read_table(params.path(params.data.true_probabilities))
    columns = list(params.data.segment_columns)
    arms, control, cost = params.arms.names, params.arms.control, params.arms.coupon_cost
    true_long = truth_table.melt(id_vars=columns, value_vars=[f"prob_{a}" for a in arms], var_name="offer", value_name="p")
    true_long["offer"] = true_long["offer"].str.removeprefix("prob_")
    control_p = truth_table[columns + [f"prob_{control}"]].rename(columns={f"prob_{control}": "p0"})
    scored = plan.merge(true_long, on=columns + ["offer"]).merge(control_p, on=columns)
    achieved = float((scored["expected_customers"] * (scored["p"] - scored["p0"])).sum())
    spent = float((scored["expected_customers"] * scored["p"] * scored["offer"].map(cost)).sum())
    catalog = segment_catalog(read_customers(params), columns, reference_table=truth_table)
    true_table = catalog.merge(truth_table.drop(columns=["segment_id"], errors="ignore"), on=columns)
    best = optimize_segments(
        true_table, columns, arms, control, cost, params.optimize.budget, params.optimize.min_share,
        params.optimize.solver.time_limit_seconds,
    ).metrics
    return {
        "true_objective_of_plan": round(achieved, 6),
        "true_cost_of_plan": round(spent, 6),
        "true_optimum": best["objective"],
        "ratio_to_true_optimum": round(achieved / best["objective"], 6) if best["objective"] > 0 else None,
    }


def run_optimize(params: Params, layout: Layout) -> dict:
    table = load_segment_table(params, layout)
    result = optimize_segments(
        table,
        params.data.segment_columns,
        params.arms.names,
        params.arms.control,
        params.arms.coupon_cost,
        params.optimize.budget,
        params.optimize.min_share,
        params.optimize.solver.time_limit_seconds,
    )
    metrics = dict(result.metrics)
    if params.data.true_probabilities is not None:
        metrics["evaluation_on_truth"] = evaluate_on_truth(result.plan, params, layout)
    write_csv(result.plan, layout.segment_plan)
    write_json(metrics, layout.optimize_metrics)
    return metrics
