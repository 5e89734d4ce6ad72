"""The offer-allocation flow: the business process, one Prefect task per declared stage.

The flow body reads as the process it automates: prepare the data, learn how customers respond,
decide the offers, publish. Each step runs the stages the declaration (offerflow.pipeline) puts in it,
as tasks named for what they do, retried only for faults a retry can fix, and cached by the files,
params keys and code they read. After the last stage the flow runs `dvc commit` (when the project is a
DVC repo) so the outputs it wrote are recorded in dvc.lock and `dvc status` stays clean.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from offerflow.catalog import Catalog
from offerflow.config import Params, load_params
from offerflow.errors import exit_code_of, is_retryable
from offerflow.flows.artifacts import publish_artifacts, report_failure
from offerflow.flows.caching import StageInputs
from offerflow.pipeline import phase_stages, run_stage, stage_named
from offerflow.publish.recovery import recover_publication
from offerflow.summary import pipeline_summary


def retry_only_transient(task_, task_run, state) -> bool:
    """Bad data, bad params or an infeasible budget fail the same way every time: don't retry them."""
    return is_retryable(state.result(raise_on_failure=False))


@task(cache_policy=StageInputs(), persist_result=True, retry_condition_fn=retry_only_transient)
def stage_task(stage: str, params_file: str, overrides: dict[str, Any] | None = None) -> dict:
    """Run one declared stage; its metrics dict is the task result."""
    logger = get_run_logger()
    params = load_params(params_file, overrides=overrides)
    try:
        metrics = run_stage(stage, params)
    except Exception as error:
        if not is_retryable(error):
            report_failure(stage, error, exit_code_of(error))
        raise
    logger.info("%s finished: %s", stage, str(metrics)[:500])
    return metrics


def outputs_present(stage: str, params: Params) -> bool:
    """A cached result is only valid while the files the stage wrote are still there."""
    catalog = Catalog(params)
    return all(catalog.path(out.name).exists() for out in stage_named(stage).outputs_for(params))


class Step:
    """Runs the stages of one business step as configured tasks (retries, timeout, cache refresh)."""

    def __init__(self, params: Params, params_file: str, overrides: dict[str, Any] | None):
        self.params, self.params_file, self.overrides = params, params_file, overrides

    def __call__(self, phase: str) -> list[dict]:
        config = self.params.orchestration
        results = []
        for stage in phase_stages(self.params, phase):
            configured = stage_task.with_options(
                name=stage.does,
                task_run_name=stage.does,
                retries=config.retries,
                retry_delay_seconds=config.retry_delay_seconds,
                timeout_seconds=config.task_timeout_seconds,
                refresh_cache=not outputs_present(stage.name, self.params),
            )
            results.append(configured(stage.name, self.params_file, self.overrides))
        return results


def dvc_commit(root: Path) -> None:
    """Record the flow's outputs in dvc.lock so `dvc status` is clean after a flow run."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "commit", "--force", "--quiet"], cwd=root, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"dvc commit failed in {root}: {result.stderr.strip()}")


@flow(name="offer-allocation", log_prints=True)
def offer_allocation(params_file: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict:
    """Prepare and validate the data, learn how customers respond, decide the offers within the budget, publish."""
    params_path = str(Path(params_file).resolve())
    params = load_params(params_path, overrides=overrides)
    recover_publication(params)  # a publication killed after its commit: bring the files in line first
    step = Step(params, params_path, overrides)
    step("prepare data")  # the example draws its history; every input passes its expectation suite
    step("learn responses")  # uplift models compared out of fold; every customer scored under every offer
    step("decide offers")  # the segment plan and the exact customer-level allocation within the budget
    step("check against simple rules")  # held-out history: does the plan beat simple rules at the same spend?
    step("publish")  # one offer per customer, with lineage, to the database and files
    if params.orchestration.dvc_commit and (params.root / ".dvc").is_dir() and not overrides:
        dvc_commit(params.root)
    summary = pipeline_summary(params)
    publish_artifacts(params, summary)
    return summary


def task_runner_for(params: Params):
    """prefect-dask's DaskTaskRunner when orchestration.task_runner is dask (an existing scheduler at
    dask_address, else a LocalCluster); the customer-level stages then fan out on its cluster."""
    config = params.orchestration
    if config.task_runner != "dask":
        return None
    from prefect_dask import DaskTaskRunner

    if config.dask_address:
        return DaskTaskRunner(address=config.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": config.dask_workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    )


def configured_flow(params: Params):
    """The flow with the task runner params.yaml asks for."""
    runner = task_runner_for(params)
    return offer_allocation if runner is None else offer_allocation.with_options(task_runner=runner)


def run_offer_allocation(params_file: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict:
    params = load_params(params_file, overrides=overrides)
    return configured_flow(params)(params_file=params_file, overrides=overrides)
