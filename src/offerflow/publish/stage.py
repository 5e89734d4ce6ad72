"""The publish stage: a plan + customers -> per-customer assignments in the target and on disk.

Order is what makes it safe: the target's credentials are resolved and every input is checked
before anything is written; the target's transaction comes next (all or nothing); the DVC
outputs (assignments.csv, publish_metrics.json) are replaced atomically only after it committed.
A failure anywhere leaves the previous publication current.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from offerflow.config import Params
from offerflow.io import CUSTOMER_ID, Layout, read_customers, read_json, read_table, write_csv, write_json
from offerflow.publish.assign import OFFER, PlanError, assign_from_plan, check_plan, plan_segments, segment_mismatches
from offerflow.publish.customer_plan import PROBABILITY, assign_from_customer_plan
from offerflow.publish.lineage import RunRecord, file_md5, git_revision, hash_files, make_run_id
from offerflow.publish.target import open_store, resolve_target
from offerflow.segments import SEGMENT_ID, attach_segment_ids

log = logging.getLogger("offerflow.publish")

# Params that change which customer gets which offer (through the plan or the shuffle). Output
# paths and the target are left out: where a run is written does not change the run.
ALLOCATION_PARAMS = ("data", "arms", "simulate", "train", "probabilities", "optimize", "publish.seed", "publish.source")
MAX_LISTED_PROBLEMS = 10


def lineage_files(params: Params, layout: Layout) -> dict[str, Path | None]:
    """Input files whose contents determine the assignment, by role (None: not used in this setup)."""
    true_table = params.data.true_probabilities
    table = params.optimize.probability_table
    files: dict[str, Path | None] = {
        "customers": params.path(params.data.customers),
        "history": params.path(params.data.history),
        "true_probabilities": params.path(true_table) if true_table is not None else None,
    }
    if params.publish.source == "customer_plan":
        files["customer_probabilities"] = layout.customer_probabilities
        files["customer_plan"] = params.path(params.publish.customer_plan)
    else:
        files["probability_table"] = layout.segment_probabilities if table == "learned" else params.path(table)
        files["segment_plan"] = layout.segment_plan
    return files


def read_optimize_metrics(path: Path, need_solver: bool = True) -> dict[str, Any]:
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


def build_run_record(params: Params, layout: Layout, optimize: dict[str, Any] | None, assigned: pd.DataFrame) -> RunRecord:
    """Lineage of this publication; its hashes (not the clock) make the run id."""
    params_hash = params.params_hash(*ALLOCATION_PARAMS)
    inputs = hash_files(lineage_files(params, layout), params.root)
    model = file_md5(layout.model) if layout.model.is_file() else None
    solver = (optimize or {}).get("solver") or {}
    return RunRecord(
        run_id=make_run_id(params_hash, inputs, model, params.publish.seed),
        params_hash=params_hash,
        input_hashes=inputs,
        model_md5=model,
        git_revision=git_revision(params.root),
        solver_status=str(solver["termination"]) if "termination" in solver else None,
        objective=float(optimize["objective"]) if optimize else None,
        expected_cost=float(optimize["expected_cost"]) if optimize else round(float(assigned["expected_cost"].sum()), 6),
        source=params.publish.source,
    )


def order_plan_offers(plan: pd.DataFrame, arms: list[str], source: str) -> pd.DataFrame:
    """Plan rows by segment, then in params.yaml arm order (the order that breaks rounding ties)."""
    unknown = sorted(set(plan[OFFER].astype(str)) - set(arms))
    if unknown:
        raise PlanError(f"{source}: column 'offer' has values {unknown} that are not arms in params.yaml {arms}")
    rank = plan[OFFER].map({arm: i for i, arm in enumerate(arms)})
    return plan.assign(_rank=rank).sort_values([SEGMENT_ID, "_rank"], kind="stable").drop(columns="_rank").reset_index(drop=True)


def _check_customers(customers: pd.DataFrame, segment_columns: list[str], source: Path) -> None:
    missing = [column for column in (CUSTOMER_ID, *segment_columns) if column not in customers.columns]
    if missing:
        raise PlanError(f"{source}: missing columns {missing} (has {list(customers.columns)})")
    duplicated = customers.loc[customers[CUSTOMER_ID].duplicated(), CUSTOMER_ID]
    if len(duplicated):
        raise PlanError(f"{source}: duplicate customer ids {duplicated.head(5).tolist()}")


def customers_with_plan_segments(params: Params, plan: pd.DataFrame, plan_source: Path) -> pd.DataFrame:
    """Customers tagged with the plan's segment ids; a plan for other customers is rejected here."""
    source = params.path(params.data.customers)
    columns = list(params.data.segment_columns)
    customers = read_customers(params)
    _check_customers(customers, columns, source)
    catalog = plan_segments(plan, columns, str(plan_source))
    problems = segment_mismatches(catalog, customers, columns)
    if problems:
        listed = "\n  - ".join(problems[:MAX_LISTED_PROBLEMS])
        more = f"\n  ... and {len(problems) - MAX_LISTED_PROBLEMS} more" if len(problems) > MAX_LISTED_PROBLEMS else ""
        raise PlanError(f"{plan_source} does not match the customers in {source}:\n  - {listed}{more}")
    return attach_segment_ids(customers, catalog, columns)


def assignments_from_segment_plan(params: Params, layout: Layout) -> tuple[pd.DataFrame, dict[str, Any]]:
    plan_path = layout.segment_plan
    plan = read_table(plan_path)
    check_plan(plan, str(plan_path))
    plan = order_plan_offers(plan, params.arms.names, str(plan_path))
    optimize = read_optimize_metrics(layout.optimize_metrics)
    customers = customers_with_plan_segments(params, plan, plan_path)
    return assign_from_plan(plan, customers, params.publish.seed), optimize


def assignments_from_customer_plan(params: Params, layout: Layout) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """The customer-level allocator's plan, checked against the customer file; its metrics if configured."""
    from offerflow.modeling import customers_with_segments  # the segment numbering every stage uses

    plan_path = params.path(params.publish.customer_plan)
    if not plan_path.is_file():
        raise PlanError(
            f"publish.source is customer_plan but publish.customer_plan does not exist: {plan_path} "
            "(run the customer-level allocation first, or set publish.source: segment_plan)"
        )
    plan = read_table(plan_path)
    customers, _ = customers_with_segments(params)
    _check_customers(customers, list(params.data.segment_columns), params.path(params.data.customers))
    if PROBABILITY not in plan.columns and layout.customer_probabilities.is_file():
        probabilities = read_table(layout.customer_probabilities)
        columns = [c for c in probabilities.columns if c.startswith("prob_")]
        customers = customers.merge(probabilities[[CUSTOMER_ID, *columns]], on=CUSTOMER_ID, how="left", validate="one_to_one")
    assigned = assign_from_customer_plan(plan, customers, params.arms.coupon_cost, source=str(plan_path))
    metrics_path = params.publish.customer_plan_metrics
    if metrics_path is None:
        return assigned, None
    return assigned, read_optimize_metrics(params.path(metrics_path), need_solver=False)


def publish_metrics(
    record: RunRecord, assigned: pd.DataFrame, optimize: dict[str, Any] | None, arms: list[str], target: str
) -> dict[str, Any]:
    """Metrics file content: only values fixed by the inputs, so reruns write identical bytes."""
    counts = assigned[OFFER].value_counts()
    return {
        "run_id": record.run_id,
        "source": record.source,
        "rows": int(len(assigned)),
        "offer_counts": {arm: int(counts.get(arm, 0)) for arm in arms},
        "objective": record.objective,
        "expected_cost": record.expected_cost,
        "assigned_expected_cost": round(float(assigned["expected_cost"].sum()), 6),
        "budget": (optimize or {}).get("budget"),
        "solver_status": record.solver_status,
        "target": target,
    }


def run_publish(params: Params, layout: Layout) -> dict[str, Any]:
    """Publish the plan as customer assignments; returns the metrics plus status, current run and revision."""
    target = resolve_target(params)
    if params.publish.source == "customer_plan":
        assigned, optimize = assignments_from_customer_plan(params, layout)
    else:
        assigned, optimize = assignments_from_segment_plan(params, layout)
    record = build_run_record(params, layout, optimize, assigned)

    if target.kind == "sqlite":
        params.path(params.publish.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    with open_store(target) as store:
        status = store.publish(record, assigned)
        current = store.current_run_id()
    log.info("publish %s: run %s (%d rows) to %s; current run %s",
             status, record.run_id, len(assigned), target.description, current)

    write_csv(assigned.assign(run_id=record.run_id)[["run_id", *assigned.columns]], layout.assignments)
    metrics = publish_metrics(record, assigned, optimize, params.arms.names, target.description)
    write_json(metrics, layout.publish_metrics)
    return {**metrics, "status": status, "current_run_id": current, "git_revision": record.git_revision,
            "params_hash": record.params_hash}
