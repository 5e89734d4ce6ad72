"""Allocate stage runner: one offer per customer from per-customer probabilities, under the budget.

Where the segment LP decides shares of segments, this stage uses every customer's own probabilities
(so customers of one segment can get different offers) and the exact allocator in
customer_allocation.py, partitioned in process or on Dask (orchestration.task_runner).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from offerflow.config import Params
from offerflow.distributed import partition_executor
from offerflow.io import CUSTOMER_ID, Layout, prob_columns, read_table, write_json, write_parquet
from offerflow.optimize.customer_allocation import allocate_customers
from offerflow.segments import SEGMENT_ID

DIGITS = 10


def customer_value_and_cost(probabilities: pd.DataFrame, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Objective value and expected coupon cost of every (customer, offer)."""
    arms = params.arms.names
    prob = probabilities[prob_columns(arms)].to_numpy(dtype=float)
    coupon = np.array([params.arms.coupon_cost[arm] for arm in arms])
    control = arms.index(params.arms.control)
    try:
        from offerflow.optimize.objectives import customer_objective_values
    except ImportError:  # only incremental conversions before objectives are configurable
        value = prob - prob[:, [control]]
    else:
        value = customer_objective_values(prob, probabilities, params)
    return value, prob * coupon


def run_allocate(params: Params, layout: Layout) -> dict:
    probabilities = read_table(layout.customer_probabilities)
    value, cost = customer_value_and_cost(probabilities, params)
    with partition_executor(params.orchestration) as executor:
        allocation = allocate_customers(
            value, cost, params.optimize.budget, params.allocate.partition_rows, executor=executor
        )
    arms = np.asarray(params.arms.names, dtype=object)
    rows = np.arange(len(probabilities))
    prob = probabilities[prob_columns(params.arms.names)].to_numpy(dtype=float)
    control = params.arms.names.index(params.arms.control)
    plan = pd.DataFrame(
        {
            CUSTOMER_ID: probabilities[CUSTOMER_ID].to_numpy(),
            SEGMENT_ID: probabilities[SEGMENT_ID].to_numpy(),
            "offer": arms[allocation.offer],
            "predicted_probability": prob[rows, allocation.offer],
            "expected_cost": cost[rows, allocation.offer],
        }
    )
    incremental = float((prob[rows, allocation.offer] - prob[:, control]).sum())
    counts = plan["offer"].value_counts()
    metrics = {
        "customers": int(len(plan)),
        "budget": params.optimize.budget,
        "objective": _round(allocation.objective),
        "dual_bound": _round(allocation.dual_bound),
        "optimality_gap": _round(allocation.gap),
        "relative_gap": _round(allocation.relative_gap),
        "expected_incremental_conversions": _round(incremental),
        "expected_cost": _round(allocation.expected_cost),
        "budget_price": _round(allocation.threshold),
        "offer_counts": {arm: int(counts.get(arm, 0)) for arm in params.arms.names},
        "partitions": int(-(-len(plan) // params.allocate.partition_rows)),
    }
    write_parquet(plan, layout.customer_plan)
    write_json(metrics, layout.allocate_metrics)
    return metrics


def _round(value: float) -> float:
    return float(f"{value:.{DIGITS}g}")
