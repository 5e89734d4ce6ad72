"""The publish stage: segment plan + customers -> per-customer assignments in the database and on disk.

The run id is a hash of what determines the assignment (the allocation params, the input files'
contents, the seed), never of time or place, so `dvc repro`, a Prefect flow or a colleague's
clone with the same inputs all name the same run, and publishing it again changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import URL

from offerflow.config import Params
from offerflow.io import CUSTOMER_ID, Layout, file_sha256, read_customers, read_json, read_table, write_csv, write_json
from offerflow.publish.assign import (
    OFFER,
    PlanError,
    assign_from_plan,
    check_plan,
    plan_segments,
    segment_mismatches,
)
from offerflow.publish.store import AssignmentStore, RunRecord, describe_url
from offerflow.segments import SEGMENT_ID, attach_segment_ids

# Params that change which customer gets which offer (through the plan or the shuffle). Paths of
# outputs and the publish target are left out: where a run is written does not change the run.
ALLOCATION_PARAMS = ("data", "arms", "simulate", "train", "probabilities", "optimize", "publish.seed")
RUN_ID_LENGTH = 16
MAX_LISTED_PROBLEMS = 10


def lineage_files(params: Params, layout: Layout) -> dict[str, Path | None]:
    """Input files whose contents determine the assignment, by role (None: not used in this setup)."""
    true_table = params.data.true_probabilities
    table = params.optimize.probability_table
    return {
        "customers": params.path(params.data.customers),
        "history": params.path(params.data.history),
        "true_probabilities": params.path(true_table) if true_table is not None else None,
        "probability_table": layout.segment_probabilities if table == "learned" else params.path(table),
        "segment_plan": layout.segment_plan,
    }


def hash_files(files: dict[str, Path | None]) -> dict[str, str | None]:
    """sha256 per role; a role whose file does not exist (e.g. no history when a table is given) is None."""
    return {role: file_sha256(path) if path is not None and path.is_file() else None for role, path in files.items()}


def git_revision(root: Path) -> str | None:
    """HEAD of the git repository holding the project, or None outside git (or without any commit)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True, text=True, timeout=15, check=False,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    revision = done.stdout.strip()
    return revision if done.returncode == 0 and revision else None


def make_run_id(params_hash: str, input_hashes: dict[str, str | None], model_sha256: str | None, seed: int) -> str:
    """Short content hash of everything the assignment depends on: same inputs, same run id."""
    blob = json.dumps(
        {"params": params_hash, "inputs": input_hashes, "model": model_sha256, "seed": seed},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:RUN_ID_LENGTH]


def read_optimize_metrics(path: Path) -> dict[str, Any]:
    """The optimizer's objective, expected cost, budget and solver status; a missing key names the file."""
    if not path.is_file():
        raise PlanError(f"{path}: optimize metrics not found (run the optimize stage first)")
    metrics = read_json(path)
    for key in ("objective", "expected_cost"):
        if not isinstance(metrics.get(key), (int, float)):
            raise PlanError(f"{path}: key {key!r} must be a number, got {metrics.get(key)!r}")
    solver = metrics.get("solver")
    if not isinstance(solver, dict) or "termination" not in solver:
        raise PlanError(f"{path}: key 'solver' must hold 'name' and 'termination', got {solver!r}")
    return metrics


def build_run_record(params: Params, layout: Layout, optimize: dict[str, Any]) -> RunRecord:
    """Lineage of this publication; its hashes (not the clock) make the run id."""
    params_hash = params.params_hash(*ALLOCATION_PARAMS)
    inputs = hash_files(lineage_files(params, layout))
    model = file_sha256(layout.model) if layout.model.is_file() else None
    return RunRecord(
        run_id=make_run_id(params_hash, inputs, model, params.publish.seed),
        params_hash=params_hash,
        input_hashes=inputs,
        model_sha256=model,
        git_revision=git_revision(params.root),
        solver_status=str(optimize["solver"]["termination"]),
        objective=float(optimize["objective"]),
        expected_cost=float(optimize["expected_cost"]),
    )


def database_url(params: Params) -> str:
    """SQLAlchemy URL of the publish target (an absolute SQLite path, so the working dir does not matter)."""
    return URL.create("sqlite", database=str(params.path(params.publish.sqlite_path).resolve())).render_as_string()


def target_description(params: Params) -> str:
    """The target as configured (relative path, no password): identical on every machine."""
    return describe_url(URL.create("sqlite", database=str(params.publish.sqlite_path)).render_as_string())


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


def publish_metrics(record: RunRecord, assigned: pd.DataFrame, optimize: dict[str, Any], arms: list[str], target: str) -> dict[str, Any]:
    """Metrics file content: only values fixed by the inputs, so reruns write identical bytes."""
    counts = assigned[OFFER].value_counts()
    return {
        "run_id": record.run_id,
        "rows": int(len(assigned)),
        "offer_counts": {arm: int(counts.get(arm, 0)) for arm in arms},
        "objective": record.objective,
        "expected_cost": record.expected_cost,
        "assigned_expected_cost": round(float(assigned["expected_cost"].sum()), 6),
        "budget": optimize.get("budget"),
        "solver_status": record.solver_status,
        "target": target,
    }


def run_publish(params: Params, layout: Layout) -> dict[str, Any]:
    """Publish the segment plan as customer assignments; returns the metrics plus status and revision.

    Order matters for failure safety: every check runs before anything is written, the database
    transaction comes next (all or nothing), and the files are replaced atomically only after it
    committed, so a failure anywhere leaves the previous publication in place.
    """
    plan_path = layout.segment_plan
    plan = read_table(plan_path)
    check_plan(plan, str(plan_path))
    plan = order_plan_offers(plan, params.arms.names, str(plan_path))
    optimize = read_optimize_metrics(layout.optimize_metrics)
    customers = customers_with_plan_segments(params, plan, plan_path)
    assigned = assign_from_plan(plan, customers, params.publish.seed)
    record = build_run_record(params, layout, optimize)

    database = params.path(params.publish.sqlite_path)
    database.parent.mkdir(parents=True, exist_ok=True)
    with AssignmentStore(database_url(params), params.publish.busy_timeout_seconds) as store:
        status = store.publish(record, assigned)

    write_csv(assigned.assign(run_id=record.run_id)[["run_id", *assigned.columns]], layout.assignments)
    metrics = publish_metrics(record, assigned, optimize, params.arms.names, target_description(params))
    write_json(metrics, layout.publish_metrics)
    return {**metrics, "status": status, "git_revision": record.git_revision, "params_hash": record.params_hash}
