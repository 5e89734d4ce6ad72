"""What a plan is worth when the true conversion probabilities are known (the simulator's truth).

One function values any plan: a plan is first reduced to customers per (segment, offer) — shares of a
segment plan times the segment's size, or counts of a customer plan — and then priced with the true
table. Optimize, allocate, the decision-quality check and the tests all use it, so they cannot disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from offerflow.config import Params
from offerflow.errors import InfeasiblePlanError, InputFileError
from offerflow.schema import N_CUSTOMERS, OFFER, prob_column

CUSTOMERS = "customers"
COST_TOLERANCE = 1e-6  # USD; expected costs within this of the budget count as within it


def segment_plan_counts(plan: pd.DataFrame, segment_columns: Sequence[str]) -> pd.DataFrame:
    """Customers per (segment, offer) of a segment plan: n_customers x share."""
    columns = list(segment_columns)
    counts = plan[[*columns, OFFER]].copy()
    counts[CUSTOMERS] = plan[N_CUSTOMERS].to_numpy(dtype=float) * plan["share"].to_numpy(dtype=float)
    return counts


def customer_plan_counts(plan: pd.DataFrame, customers: pd.DataFrame, segment_columns: Sequence[str]) -> pd.DataFrame:
    """Customers per (segment, offer) of a per-customer plan (customer_id, offer) joined to the customers' segments."""
    columns = list(segment_columns)
    joined = plan[["customer_id", OFFER]].merge(customers[["customer_id", *columns]], on="customer_id", how="left")
    counts = joined.groupby([*columns, OFFER], sort=True, observed=True).size().rename(CUSTOMERS).reset_index()
    counts[CUSTOMERS] = counts[CUSTOMERS].astype(float)
    return counts


def value_on_truth(
    counts: pd.DataFrame,
    truth: pd.DataFrame,
    segment_columns: Sequence[str],
    arms: Sequence[str],
    control: str,
    coupon_cost: dict[str, float],
    objective: str = "incremental_conversions",
    value_per_conversion: float | None = None,
    contact_cost: dict[str, float] | None = None,
) -> dict[str, float]:
    """Objective, incremental conversions, conversions and expected coupon cost of `counts` under `truth`.

    A planned segment the true table cannot price is an InputFileError naming it.
    """
    from offerflow.optimize.objectives import objective_coefficients

    columns, arms = list(segment_columns), list(arms)
    prob_cols = [prob_column(arm) for arm in arms]
    joined = counts.merge(truth[[*columns, *prob_cols]], on=columns, how="left")
    unpriced = joined[prob_cols].isna().any(axis=1) & (joined[CUSTOMERS] > 0)
    if unpriced.any():
        missing = joined.loc[unpriced, columns].drop_duplicates().head(5).to_dict("records")
        raise InputFileError(f"the true table has no probabilities for planned segment(s) {missing}")
    unknown = sorted(set(joined[OFFER].astype(str)) - set(arms))
    if unknown:
        raise InputFileError(f"the plan has offer(s) {unknown} that are not arms {arms}")
    prob = joined[prob_cols].fillna(0.0).to_numpy(dtype=float)
    chosen = joined[OFFER].map({arm: j for j, arm in enumerate(arms)}).to_numpy()
    rows = np.arange(len(joined))
    n = joined[CUSTOMERS].to_numpy(dtype=float)
    per_customer = objective_coefficients(prob, arms, control, dict(coupon_cost), objective, value_per_conversion,
                                          dict(contact_cost or {}))
    unit_cost = np.array([coupon_cost[arm] for arm in arms], dtype=float)
    contact = np.array([(contact_cost or {}).get(arm, 0.0) for arm in arms], dtype=float)
    p_chosen = prob[rows, chosen]
    return {
        "objective": float((n * per_customer[rows, chosen]).sum()),
        "incremental_conversions": float((n * (p_chosen - prob[:, arms.index(control)])).sum()),
        "conversions": float((n * p_chosen).sum()),
        "expected_cost": float((n * (p_chosen * unit_cost[chosen] + contact[chosen])).sum()),
    }


def _ratio(value: float, reference: float | None) -> float | None:
    from offerflow.optimize.segment_lp import round_significant

    return round_significant(value / reference) if reference is not None and reference > 0 else None


def segment_plan_on_truth(
    plan: pd.DataFrame, truth: pd.DataFrame, customers: pd.DataFrame, params: Params, source: Path | str,
    budget: float | None = None,
) -> dict:
    """Decision quality of a segment plan under the true table, for the configured objective and constraints.

    Two yardsticks: the true optimum at the budget (what was asked for), and the true optimum at the
    plan's true cost (fair when a wrong table makes the plan overspend: then the first ratio can exceed 1,
    while the equal-cost ratio stays <= 1 and measures targeting alone).
    """
    from offerflow.optimize.planning import size_given_table, solve_for_params
    from offerflow.optimize.segment_lp import round_significant

    columns = list(params.data.segment_columns)
    settings, arms = params.optimize, params.arms
    budget = settings.budget if budget is None else budget
    sized = size_given_table(truth, customers, columns, source)
    scored = value_on_truth(
        segment_plan_counts(plan, columns), sized, columns, arms.names, arms.control, arms.coupon_cost,
        settings.objective, settings.value_per_conversion, dict(arms.contact_cost),
    )
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
        evaluation["true_optimum"] = solve_for_params(sized, params, source, budget).metrics["objective"]
    except InfeasiblePlanError as error:  # the truth needs more budget than the learned table thought
        floor = error.smallest_feasible_budget
        evaluation["true_smallest_feasible_budget"] = None if floor is None else round_significant(floor)
    evaluation["ratio_to_true_optimum"] = _ratio(value, evaluation["true_optimum"])
    # the plan meets the share constraints, so its true cost is a feasible budget up to the round-off of its shares
    try:
        at_cost = solve_for_params(sized, params, source, budget=cost).metrics["objective"]
    except InfeasiblePlanError as error:
        at_cost = solve_for_params(sized, params, source, budget=error.smallest_feasible_budget).metrics["objective"]
    evaluation["true_optimum_at_true_cost_of_plan"] = at_cost
    evaluation["ratio_at_equal_cost"] = _ratio(value, at_cost)
    return evaluation


def customer_plan_on_truth(
    plan: pd.DataFrame, truth: pd.DataFrame, customers: pd.DataFrame, params: Params, budget: float
) -> dict:
    """A customer plan's true objective, incremental conversions and cost (segment-level truth)."""
    from offerflow.optimize.segment_lp import round_significant

    columns = list(params.data.segment_columns)
    arms, settings = params.arms, params.optimize
    scored = value_on_truth(
        customer_plan_counts(plan, customers, columns), truth, columns, arms.names, arms.control, arms.coupon_cost,
        settings.objective, settings.value_per_conversion, dict(arms.contact_cost),
    )
    return {
        "true_objective_of_plan": round_significant(scored["objective"]),
        "true_incremental_conversions_of_plan": round_significant(scored["incremental_conversions"]),
        "true_cost_of_plan": round_significant(scored["expected_cost"]),
        "true_cost_within_budget": bool(scored["expected_cost"] <= budget + COST_TOLERANCE),
    }
