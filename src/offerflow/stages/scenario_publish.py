"""Publishing for the discount and journey scenarios: the same target, store and run records as the coupon
plan, in tables of their own (`<publish.table_prefix><scenario>_runs`, ...; files under `<files_dir>/<scenario>`)
so each scenario has its own current run and rollback history. Experiments (`dvc exp run`) never reach the
target; the files view follows the database exactly as for the coupon plan (journal + recovery).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING, Any

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.io import write_csv, write_json

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("offerflow.publish")
ASSIGNMENT_COLUMNS = ["customer_id", "segment_id", "offer", "predicted_probability", "expected_cost", "expected_value"]


def scenario_target(params: Params, scenario: str):
    """The configured target, with the scenario's own tables (or folder)."""
    from offerflow.publish.target import resolve_target

    target = resolve_target(params)
    if target.kind == "files":
        return dataclasses.replace(target, directory=target.directory / scenario, description=f"{target.description}/{scenario}")
    return dataclasses.replace(target, prefix=f"{target.prefix}{scenario}_")


def publish_scenario(
    params: Params, scenario: str, assigned: pd.DataFrame, inputs: dict, settings: dict[str, Any],
    assignments_name: str, metrics_name: str,
) -> dict[str, Any]:
    """Publish one offer per customer for a scenario; returns the metrics written to `metrics_name`."""
    from offerflow.publish import recovery
    from offerflow.publish.lineage import RunRecord, git_revision, hash_files, make_run_id
    from offerflow.publish.target import open_store

    catalog = Catalog(params)
    params_hash = params.params_hash(scenario, "publish.seed")
    hashes = hash_files({role: catalog.path(name) for role, name in inputs.items()}, params.root)
    record = RunRecord(
        run_id=make_run_id(params_hash, hashes, None, params.publish.seed),
        params_hash=params_hash, input_hashes=hashes, model_md5=None, git_revision=git_revision(params.root),
        solver_status=None, objective=float(assigned["expected_value"].sum()),
        expected_cost=round(float(assigned["expected_cost"].sum()), 6), source=scenario, settings=settings,
    )
    experiment = os.environ.get("DVC_EXP_NAME")
    target = None if experiment else scenario_target(params, scenario)
    counts = assigned["offer"].value_counts()
    metrics = {
        "run_id": record.run_id, "scenario": scenario, "rows": int(len(assigned)),
        "offer_counts": {str(offer): int(n) for offer, n in sorted(counts.items())},
        "expected_value": round(float(assigned["expected_value"].sum()), 6), "expected_cost": record.expected_cost,
        "published": settings.get("gate", {}).get("published"),
        "target": f"none (dvc exp run {experiment})" if target is None else target.description,
    }
    table = assigned.assign(run_id=record.run_id)[["run_id", *ASSIGNMENT_COLUMNS]]
    files = {catalog.path(assignments_name): lambda path: write_csv(table, path),
             catalog.path(metrics_name): lambda path: write_json(metrics, path)}
    if target is None:
        for final, writer in files.items():
            writer(final)
        return metrics
    journal = recovery.journal_name(scenario)
    recovery.begin(catalog, record.run_id, files, journal=journal)
    try:
        if target.kind == "sqlite":
            params.path(params.publish.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        with open_store(target) as store:
            status = store.publish(record, assigned[ASSIGNMENT_COLUMNS])
    except BaseException:
        recovery.discard(catalog, journal=journal)
        raise
    recovery.finish(catalog, journal=journal)
    log.info("publish %s: %s run %s (%d rows) to %s", status, scenario, record.run_id, len(assigned), target.description)
    return metrics
