"""The plans publish reads, checked against the customers before anything is written.

A segment plan (shares) or a customer plan (one offer per customer) is checked and turned into
assignments; the plan's metrics file supplies the promised objective and cost for the run record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from offerflow.io import read_json
from offerflow.publish.assign import OFFER, PlanError, plan_segments, segment_mismatches
from offerflow.schema import CUSTOMER_ID, SEGMENT_ID
from offerflow.segments import attach_segment_ids

MAX_LISTED_PROBLEMS = 10


def read_plan_metrics(path: Path, need_solver: bool = True) -> dict[str, Any]:
    """The optimizer's objective, expected cost, budget and solver status; a missing key names the file.

    The customer-level allocator reports no solver but a certified optimality gap: its status
    becomes "relative gap <value>" (need_solver=False).
    """
    if not path.is_file():
        raise PlanError(f"{path}: plan metrics not found (run the stage that writes the plan first)")
    metrics = read_json(path)
    for key in ("objective", "expected_cost"):
        if not isinstance(metrics.get(key), (int, float)):
            raise PlanError(f"{path}: key {key!r} must be a number, got {metrics.get(key)!r}")
    solver = metrics.get("solver")
    if isinstance(solver, dict) and "termination" in solver:
        return metrics
    if not need_solver and isinstance(metrics.get("relative_gap"), (int, float)):
        return {**metrics, "solver": {"termination": f"relative gap {metrics['relative_gap']:.3g}"}}
    raise PlanError(f"{path}: key 'solver' must hold 'name' and 'termination', got {solver!r}")


def order_plan_offers(plan: pd.DataFrame, arms: list[str], source: str) -> pd.DataFrame:
    """Plan rows by segment, then in params.yaml arm order (the order that breaks rounding ties)."""
    unknown = sorted(set(plan[OFFER].astype(str)) - set(arms))
    if unknown:
        raise PlanError(f"{source}: column 'offer' has values {unknown} that are not arms in params.yaml {arms}")
    rank = plan[OFFER].map({arm: i for i, arm in enumerate(arms)})
    return plan.assign(_rank=rank).sort_values([SEGMENT_ID, "_rank"], kind="stable").drop(columns="_rank").reset_index(drop=True)


def check_customers(customers: pd.DataFrame, segment_columns: list[str], source: str) -> None:
    missing = [column for column in (CUSTOMER_ID, *segment_columns) if column not in customers.columns]
    if missing:
        raise PlanError(f"{source}: missing columns {missing} (has {list(customers.columns)})")
    duplicated = customers.loc[customers[CUSTOMER_ID].duplicated(), CUSTOMER_ID]
    if len(duplicated):
        raise PlanError(f"{source}: duplicate customer ids {duplicated.head(5).tolist()}")


def customers_with_plan_segments(
    customers: pd.DataFrame, plan: pd.DataFrame, segment_columns: list[str], customers_source: str, plan_source: str
) -> pd.DataFrame:
    """Customers tagged with the plan's segment ids; a plan for other customers is rejected here."""
    check_customers(customers, segment_columns, customers_source)
    catalog = plan_segments(plan, segment_columns, plan_source)
    problems = segment_mismatches(catalog, customers, segment_columns)
    if problems:
        listed = "\n  - ".join(problems[:MAX_LISTED_PROBLEMS])
        more = f"\n  ... and {len(problems) - MAX_LISTED_PROBLEMS} more" if len(problems) > MAX_LISTED_PROBLEMS else ""
        raise PlanError(f"{plan_source} does not match the customers in {customers_source}:\n  - {listed}{more}")
    return attach_segment_ids(customers, catalog, segment_columns)
