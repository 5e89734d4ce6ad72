"""Runner of the allocate stage: one offer per customer from per-customer probabilities, under the budget.

Where the segment LP decides shares of segments, this stage uses every customer's own probabilities
(so customers of one segment can get different offers) and the exact allocator in
optimize/customer_allocation.py, partitioned in process or on Dask (orchestration.task_runner).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.io import read_table, write_json, write_parquet
from offerflow.schema import CUSTOMER_ID, OFFER, SEGMENT_ID, prob_columns
from offerflow.stages.inputs import read_customers, read_truth

DIGITS = 10


def run_allocate(params: Params) -> dict:
    import numpy as np
    import pandas as pd

    from offerflow.distributed import partition_executor
    from offerflow.evaluation.truth import customer_plan_on_truth
    from offerflow.optimize.customer_allocation import allocate_customers
    from offerflow.optimize.objectives import customer_value_and_cost

    catalog = Catalog(params)
    probabilities = read_table(catalog.path("customer_probabilities"))
    customers = read_customers(catalog)
    value, cost = customer_value_and_cost(probabilities, customers, params)
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
            OFFER: arms[allocation.offer],
            "predicted_probability": prob[rows, allocation.offer],
            "expected_cost": cost[rows, allocation.offer],
        }
    )
    incremental = float((prob[rows, allocation.offer] - prob[:, control]).sum())
    counts = plan[OFFER].value_counts()
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
    truth = read_truth(catalog)
    if truth is not None:
        metrics["evaluation_on_truth"] = customer_plan_on_truth(plan, truth, customers, params, params.optimize.budget)
    write_parquet(plan, catalog.path("customer_plan"))
    write_json(metrics, catalog.path("allocate_metrics"))
    return metrics


def _round(value: float) -> float:
    return float(f"{value:.{DIGITS}g}")
