"""Runner of the allocate stage: one offer per customer from per-customer probabilities, under the budget and
every constraint of params.yaml (capacities, min/max shares of all customers, caps over offer groups,
customers excluded from any contact), each met exactly by the integer plan.

Where the segment LP decides shares of segments, this stage uses every customer's own probabilities
(so customers of one segment can get different offers): the exact single-budget allocator, or the coupled
allocator when there are more constraints, partitioned in process or on Dask (orchestration.task_runner).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.errors import InputDataError
from offerflow.io import read_table, round_significant, write_json, write_parquet
from offerflow.schema import CUSTOMER_ID, OFFER, SEGMENT_ID, prob_columns
from offerflow.stages.inputs import read_customers, read_truth

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd



def excluded_customers(params: Params, catalog: Catalog, ids: pd.Series, customers: pd.DataFrame) -> np.ndarray | None:
    """True for customers who must get the control offer (data.exclude file or data.exclude_column), in `ids` order."""
    import numpy as np

    data = params.data
    if data.exclude_column is not None:
        if data.exclude_column not in customers.columns:
            raise InputDataError(f"{catalog.relative('customers')}: data.exclude_column {data.exclude_column!r} is not a column")
        flags = customers.set_index(CUSTOMER_ID)[data.exclude_column]
        bad = flags[~flags.isin([True, False, 0, 1, "true", "false", "True", "False"])]
        if len(bad):
            raise InputDataError(f"{catalog.relative('customers')}: column {data.exclude_column!r} must be true/false; "
                                 f"offending values {bad.head(5).tolist()}")
        mask = flags.astype(str).str.lower().isin(["true", "1"]).reindex(ids).fillna(False)
        return mask.to_numpy(dtype=bool)
    if data.exclude is None:
        return None
    listed = read_table(params.path(data.exclude))
    if data.customer_id not in listed.columns:
        raise InputDataError(f"{data.exclude}: no column {data.customer_id!r} (data.customer_id); columns {list(listed.columns)}")
    return np.asarray(ids.isin(listed[data.customer_id]).to_numpy(), dtype=bool)


def customer_constraints(params: Params, excluded: np.ndarray | None = None, scale: float = 1.0):
    """optimize's capacities, shares (of all customers) and offer groups, plus exclusions, for the allocator.

    `scale` < 1 sizes the counts (capacities, group caps) to a population `scale` times the customer file's,
    as when the plan rule is re-applied to held-out customers; shares are shares and do not scale."""
    from offerflow.optimize.coupled_allocation import CustomerConstraints

    settings, arms = params.optimize, params.arms
    capacity = {arm: math.floor(count * scale + 1e-9) for arm, count in settings.capacity.items()}
    groups = {name: (g.offers, math.floor(g.max * scale + 1e-9)) for name, g in settings.groups.items()}
    return CustomerConstraints.from_settings(
        arms.names, arms.control, capacity=capacity, min_share=settings.min_share,
        max_share=settings.max_share, groups=groups, excluded=excluded,
    )


def allocate_customers(params: Params, probabilities: pd.DataFrame, customers: pd.DataFrame, constraints,
                       budget: float | None, executor=None):
    """The plan rule: every customer's best offer under the budget and constraints, from their probabilities.
    Returns (allocation, expected cost matrix)."""
    from offerflow.optimize.coupled_allocation import allocate_with_constraints
    from offerflow.optimize.objectives import customer_value_and_cost

    value, cost = customer_value_and_cost(probabilities, customers, params)
    allocation = allocate_with_constraints(value, cost, budget, constraints, params.allocate.partition_rows, executor=executor)
    return allocation, cost


def run_allocate(params: Params) -> dict:
    import numpy as np
    import pandas as pd

    from offerflow.distributed import partition_executor
    from offerflow.evaluation.truth import customer_plan_on_truth

    catalog = Catalog(params)
    probabilities = read_table(catalog.path("customer_probabilities"))
    customers = read_customers(catalog)
    excluded = excluded_customers(params, catalog, probabilities[CUSTOMER_ID], customers)
    constraints = customer_constraints(params, excluded)
    with partition_executor(params.orchestration) as executor:
        allocation, cost = allocate_customers(params, probabilities, customers, constraints, params.optimize.budget, executor)
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
        "objective": round_significant(allocation.objective),
        "dual_bound": round_significant(allocation.dual_bound),
        "optimality_gap": round_significant(allocation.gap),
        "relative_gap": round_significant(allocation.relative_gap),
        "expected_incremental_conversions": round_significant(incremental),
        "expected_cost": round_significant(allocation.expected_cost),
        "budget_price": round_significant(allocation.threshold),
        "budget_price_left": _finite(allocation.budget_price_left),  # what one dollar less loses
        "budget_price_right": _finite(allocation.budget_price_right),  # what one dollar more buys
        "offer_counts": {arm: int(counts.get(arm, 0)) for arm in params.arms.names},
        "excluded_customers": int(excluded.sum()) if excluded is not None else 0,
        "constraints": [_rounded_use(use.describe()) for use in allocation.constraints],
        "partitions": int(-(-len(plan) // params.allocate.partition_rows)),
    }
    truth = read_truth(catalog)
    if truth is not None:
        metrics["evaluation_on_truth"] = customer_plan_on_truth(plan, truth, customers, params, params.optimize.budget)
    if params.optimize.figures:
        from offerflow.optimize.study_figures import plot_customer_plan
        from offerflow.optimize.study_grids import offer_tick_labels
        from offerflow.segments import segment_catalog

        columns, look = params.data.segment_columns, params.figures
        segments = segment_catalog(customers, columns, reference_table=truth)  # numbered as the probabilities stage did
        plot_customer_plan(plan, segments, columns, params.arms.names, catalog.path("customer_allocation_figure"),
                           look.segment_names, offer_tick_labels(params.arms.names, params.arms.coupon_cost, look.currency))
    else:
        catalog.path("customer_allocation_figure").unlink(missing_ok=True)
    write_parquet(plan, catalog.path("customer_plan"))
    write_json(metrics, catalog.path("allocate_metrics"))
    return metrics


def _finite(value: float) -> float | None:
    """JSON has no infinity: an infinite price (at the smallest feasible budget) is written as null."""
    return round_significant(value) if math.isfinite(value) else None


def _rounded_use(entry: dict) -> dict:
    return {key: (_finite(value) if isinstance(value, float) else value) for key, value in entry.items()}
