"""Runner of the publish stage: a plan + customers -> per-customer assignments in the target and on disk.

Order is what makes it safe: the target's credentials are resolved and every input is checked
before anything is written; the target's transaction comes next (all or nothing); the DVC
outputs (assignments.csv, publish_metrics.json) are replaced atomically only after it committed.
A failure anywhere leaves the previous publication current. Under `dvc exp run` nothing reaches the
target: an experiment writes its assignments and metrics (versioned with the experiment) only, so a
budget sweep never moves the run that downstream mailing reads.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.io import read_json, read_table, write_csv, write_json
from offerflow.schema import CUSTOMER_ID, OFFER
from offerflow.stages.inputs import customers_with_segments, read_customers

log = logging.getLogger("offerflow.publish")

# Params that change which customer gets which offer (through the plan or the shuffle). Output
# paths and the target are left out: where a run is written does not change the run.
ALLOCATION_PARAMS = ("data", "arms", "simulate", "train", "probabilities", "optimize", "publish.seed", "publish.source")
EXPERIMENT_ENV = "DVC_EXP_NAME"


def lineage_files(params: Params, catalog: Catalog) -> dict[str, Path | None]:
    """Input files whose contents determine the assignment, by role (None: not used in this setup)."""
    files: dict[str, Path | None] = {
        "customers": catalog.path("customers"),
        "history": catalog.path("history"),
        "true_probabilities": catalog.optional("true_probabilities"),
    }
    if params.publish.source == "customer_plan":
        files["customer_probabilities"] = catalog.path("customer_probabilities")
        files["customer_plan"] = catalog.path("customer_plan")
    else:
        files["probability_table"] = catalog.path("probability_table")
        files["segment_plan"] = catalog.path("segment_plan")
    files["policy_evaluation"] = catalog.path("policy_evaluation")
    files["gate_plan"] = catalog.path("gate_plan")
    return files


def run_settings(params: Params, catalog: Catalog, plan_metrics: dict[str, Any] | None) -> dict[str, Any]:
    """The knobs a reader of the run record needs first: budget, objective, learner, source, constraints."""
    settings = params.optimize
    metadata = catalog.path("model_metadata")
    learner = read_json(metadata).get("name") if metadata.is_file() else None
    return {
        "budget": settings.budget,
        "objective": settings.objective,
        "value_per_conversion": settings.value_per_conversion,
        "learner": learner,
        "source": params.publish.source,
        "probability_table": str(settings.probability_table),
        "min_share": settings.min_share,
        "max_share": settings.max_share,
        "capacity": dict(settings.capacity),
        "fairness": settings.fairness,
        "cap_quantile": settings.risk.cap_quantile,
        "planned_expected_cost": (plan_metrics or {}).get("expected_cost"),
        "gate": gate_summary(read_json(catalog.path("policy_evaluation"))),
    }


def gate_summary(evaluation: dict[str, Any]) -> dict[str, Any]:
    """What the publish gate decided and why (from reports/policy_evaluation.json)."""
    keys = ("published", "candidate_published", "reason", "best_competitor", "difference", "difference_ci", "lower_bound",
            "estimator", "lower_bound_method", "unit")
    return {key: evaluation.get(key) for key in keys}


def build_run_record(
    params: Params, catalog: Catalog, plan_metrics: dict[str, Any] | None, assigned: pd.DataFrame, source: str
):
    """Lineage of this publication; its hashes (not the clock) make the run id."""
    from offerflow.io import file_md5
    from offerflow.publish.lineage import RunRecord, git_revision, hash_files, make_run_id

    params_hash = params.params_hash(*ALLOCATION_PARAMS)
    inputs = hash_files(lineage_files(params, catalog), params.root)
    model_path = catalog.path("model")
    model = file_md5(model_path) if model_path.is_file() else None
    solver = (plan_metrics or {}).get("solver") or {}
    return RunRecord(
        run_id=make_run_id(params_hash, inputs, model, params.publish.seed),
        params_hash=params_hash,
        input_hashes=inputs,
        model_md5=model,
        git_revision=git_revision(params.root),
        solver_status=str(solver["termination"]) if "termination" in solver else None,
        objective=float(plan_metrics["objective"]) if plan_metrics else None,
        expected_cost=float(plan_metrics["expected_cost"]) if plan_metrics else round(float(assigned["expected_cost"].sum()), 6),
        source=source,
        settings=run_settings(params, catalog, plan_metrics),
    )


def assignments_from_segment_plan(params: Params, catalog: Catalog) -> tuple[pd.DataFrame, dict[str, Any]]:
    from offerflow.publish.assign import assign_from_plan, check_plan
    from offerflow.publish.rounding import PlanLimits
    from offerflow.publish.plans import customers_with_plan_segments, order_plan_offers, read_plan_metrics

    plan_path = catalog.path("segment_plan")
    plan = read_table(plan_path)
    check_plan(plan, str(plan_path))
    plan = order_plan_offers(plan, params.arms.names, str(plan_path))
    metrics = read_plan_metrics(catalog.path("optimize_metrics"))
    customers = customers_with_plan_segments(
        read_customers(catalog), plan, list(params.data.segment_columns), catalog.relative("customers"), str(plan_path)
    )
    settings = params.optimize
    limits = PlanLimits(settings.budget, dict(settings.capacity),
                        tuple((name, tuple(g.offers), float(g.max)) for name, g in settings.groups.items()))
    return assign_from_plan(plan, customers, params.publish.seed, limits), metrics


def assignments_from_customer_plan(params: Params, catalog: Catalog) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The customer-level allocator's plan, checked against the customer file, and its metrics."""
    from offerflow.publish.customer_plan import PROBABILITY, assign_from_customer_plan
    from offerflow.publish.plans import check_customers, read_plan_metrics

    plan_path = catalog.path("customer_plan")
    plan = read_table(plan_path)
    customers, _ = customers_with_segments(catalog)
    check_customers(customers, list(params.data.segment_columns), catalog.relative("customers"))
    if PROBABILITY not in plan.columns:
        probabilities = read_table(catalog.path("customer_probabilities"))
        columns = [c for c in probabilities.columns if c.startswith("prob_")]
        customers = customers.merge(probabilities[[CUSTOMER_ID, *columns]], on=CUSTOMER_ID, how="left", validate="one_to_one")
    assigned = assign_from_customer_plan(plan, customers, params.arms.coupon_cost, source=str(plan_path))
    return assigned, read_plan_metrics(catalog.path("allocate_metrics"), need_solver=False)


def assignments_from_gate_plan(params: Params, catalog: Catalog) -> pd.DataFrame:
    """The policy the gate chose instead of the candidate, one offer per customer (written by evaluate)."""
    from offerflow.publish.customer_plan import assign_from_customer_plan
    from offerflow.publish.plans import check_customers

    customers, _ = customers_with_segments(catalog)
    check_customers(customers, list(params.data.segment_columns), catalog.relative("customers"))
    plan = read_table(catalog.path("gate_plan"))
    return assign_from_customer_plan(plan, customers, params.arms.coupon_cost, source=catalog.relative("gate_plan"))


def expected_incremental(assigned: pd.DataFrame, params: Params, catalog: Catalog) -> float | None:
    """Conversions the published offers add over the control offer, by the model's probabilities."""
    from offerflow.schema import prob_column

    path = catalog.path("customer_probabilities")
    if not path.is_file():
        return None
    control = read_table(path)[[CUSTOMER_ID, prob_column(params.arms.control)]]
    joined = assigned[[CUSTOMER_ID, "predicted_probability"]].merge(control, on=CUSTOMER_ID, how="left")
    gain = joined["predicted_probability"] - joined[prob_column(params.arms.control)]
    return round(float(gain.sum()), 6)


def publish_metrics(record, assigned: pd.DataFrame, plan_metrics: dict[str, Any] | None, arms: list[str], target: str) -> dict[str, Any]:
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
        "budget": (plan_metrics or {}).get("budget", record.settings.get("budget")),
        "solver_status": record.solver_status,
        "gate": record.settings.get("gate", {}).get("published"),
        "target": target,
    }


def run_publish(params: Params) -> dict[str, Any]:
    """Publish the plan as customer assignments; returns the metrics plus status, current run and revision."""
    from offerflow.publish import recovery
    from offerflow.publish.target import open_store, resolve_target

    catalog = Catalog(params)
    experiment = os.environ.get(EXPERIMENT_ENV)
    target = None if experiment else resolve_target(params)
    gate = read_json(catalog.path("policy_evaluation"))
    if not gate.get("candidate_published"):  # the gate fell back: publish the best simple policy instead
        assigned, plan_metrics = assignments_from_gate_plan(params, catalog), None
        source = "baseline"  # which one: settings.gate.published
    elif params.publish.source == "customer_plan":
        (assigned, plan_metrics), source = assignments_from_customer_plan(params, catalog), params.publish.source
    else:
        (assigned, plan_metrics), source = assignments_from_segment_plan(params, catalog), params.publish.source
    record = build_run_record(params, catalog, plan_metrics, assigned, source)
    if gate.get("published") == "incumbent":  # nothing beat what is live: keep it, publish nothing new
        import dataclasses

        record = dataclasses.replace(record, run_id=gate["incumbent_run_id"], source="incumbent")
        status, current, description = "incumbent kept", gate["incumbent_run_id"], "none (the incumbent stays current)"
        log.info("publish: the gate kept the incumbent %s; nothing new published", current)
    elif target is None:
        status, current = "experiment", None
        description = f"none (dvc exp run {experiment}: experiments never publish to the target)"
        log.info("publish: experiment %s, run %s not published (assignments.csv only)", experiment, record.run_id)
    else:
        description, status, current = target.description, None, None
    metrics = publish_metrics(record, assigned, plan_metrics, params.arms.names, description)
    metrics["expected_incremental_conversions"] = expected_incremental(assigned, params, catalog)
    table = assigned.assign(run_id=record.run_id)[["run_id", *assigned.columns]]
    files = {
        catalog.path("assignments"): lambda path: write_csv(table, path),
        catalog.path("publish_metrics"): lambda path: write_json(metrics, path),
    }
    if status is not None:  # nothing reaches the target: the files are all there is
        for final, writer in files.items():
            writer(final)
    else:  # files first as pending, then the target's transaction, then the files into place
        recovery.begin(catalog, record.run_id, files)
        try:
            if target.kind == "sqlite":
                params.path(params.publish.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
            with open_store(target) as store:
                status = store.publish(record, assigned)
                current = store.current_run_id()
        except BaseException:
            recovery.discard(catalog)
            raise
        recovery.finish(catalog)
        log.info("publish %s: run %s (%d rows) to %s; current run %s",
                 status, record.run_id, len(assigned), description, current)
    return {**metrics, "status": status, "current_run_id": current, "git_revision": record.git_revision,
            "params_hash": record.params_hash}
