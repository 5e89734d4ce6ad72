"""The offer-allocation flow: one Prefect task per stage, each retryable and cached by its inputs.

Tasks call the same runners as the CLI and dvc.yaml (offerflow.stages), so every entry point writes
the same files. After the last stage the flow runs `dvc commit` (when the project is a DVC repo) so
that outputs it wrote are recorded in dvc.lock and `dvc status` stays clean.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from offerflow.config import load_params
from offerflow.flows.caching import StageInputs
from offerflow.stages import STAGES, layout_for, pipeline_summary, run_stage, stage_outs

# failures that repeat identically on retry; PublishTargetError (database unreachable) stays transient
PERMANENT_ERRORS = {
    "ConfigError", "DataValidationError", "InputFileError", "InfeasiblePlanError", "PlanError", "StoreError",
    "ProbabilityTableError",
}


def retry_only_transient(task_, task_run, state) -> bool:
    """Bad data, bad params or an infeasible budget fail the same way every time: don't retry them."""
    error = state.result(raise_on_failure=False)
    return not ({cls.__name__ for cls in type(error).__mro__} & PERMANENT_ERRORS)


def report_failure(stage: str, error: BaseException) -> None:
    """A failed stage leaves an artifact saying why (for validation: every failed expectation)."""
    create_markdown_artifact(
        f"# offerflow {stage} failed\n\n**{type(error).__name__}**\n\n```\n{error}\n```\n",
        key=f"offerflow-{stage}-failure",
        description=f"why {stage} failed",
    )


@task(name="stage", cache_policy=StageInputs(), persist_result=True, retry_condition_fn=retry_only_transient)
def stage_task(stage: str, params_file: str, overrides: dict[str, Any] | None = None) -> dict:
    """Run one stage; its metrics dict is the task result."""
    logger = get_run_logger()
    params = load_params(params_file, overrides=overrides)
    started = time.perf_counter()
    try:
        metrics = run_stage(stage, params)
    except Exception as error:
        if {cls.__name__ for cls in type(error).__mro__} & PERMANENT_ERRORS:
            report_failure(stage, error)
        raise
    logger.info("%s finished in %.2fs: %s", stage, time.perf_counter() - started, metrics)
    return metrics


def outputs_present(stage: str, params) -> bool:
    """A cached result is only valid while the files the stage wrote are still there."""
    return all(path.exists() for path in stage_outs(stage, params, layout_for(params)))


def dvc_commit(root: Path) -> None:
    """Record the flow's outputs in dvc.lock so `dvc status` is clean after a flow run."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "commit", "--force", "--quiet"], cwd=root, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"dvc commit failed in {root}: {result.stderr.strip()}")


def summary_markdown(summary: dict) -> str:
    def fmt(value: Any, unit: str = "") -> str:
        return "n/a" if value is None else f"{value:,.2f}{unit}"

    rows = [
        ("Budget", fmt(summary["budget"], " USD")),
        ("Expected incremental conversions", fmt(summary["expected_incremental_conversions"])),
        ("Expected coupon cost", fmt(summary["expected_coupon_cost"], " USD")),
        ("Cost per incremental conversion", fmt(summary["cost_per_incremental_conversion"], " USD")),
        ("Recommended budget", fmt(summary.get("recommended_budget"), " USD")),
        ("Run id", summary["run_id"]),
        ("Published to", ", ".join(str(x) for x in summary["published_to"] if x)),
    ]
    lines = ["# offerflow allocation", "", "| | |", "|---|---|"]
    return "\n".join(lines + [f"| {name} | {value} |" for name, value in rows])


def publish_artifacts(params, summary: dict) -> None:
    import pandas as pd

    layout = layout_for(params)
    create_markdown_artifact(summary_markdown(summary), key="offer-allocation-summary", description="allocation summary")
    plan = pd.read_csv(layout.segment_plan)
    create_table_artifact(plan.round(6).to_dict("records"), key="offer-allocation-plan", description="segment plan")
    docs = layout.validation_dir / "data_docs" / "index.html"
    if docs.exists():
        create_link_artifact(docs.resolve().as_uri(), link_text="validation Data Docs", key="offer-allocation-validation")
    for figure in sorted((params.root / "reports/figures").glob("*.png")):
        create_link_artifact(figure.resolve().as_uri(), link_text=figure.stem, key=f"figure-{figure.stem.replace('_', '-')}")


@flow(name="offer-allocation", log_prints=True)
def offer_allocation(params_file: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict:
    """Validate inputs, learn probabilities, optimize within the budget and publish the allocation."""
    params_path = str(Path(params_file).resolve())
    params = load_params(params_path, overrides=overrides)
    orchestration = params.orchestration
    for stage in STAGES:
        if stage == "simulate" and not params.simulate.enabled:
            continue
        stage_task.with_options(
            name=stage,
            retries=orchestration.retries,
            retry_delay_seconds=orchestration.retry_delay_seconds,
            timeout_seconds=orchestration.task_timeout_seconds,
            refresh_cache=not outputs_present(stage, params),
        )(stage, params_path, overrides)
    if orchestration.dvc_commit and (params.root / ".dvc").is_dir() and not overrides:
        dvc_commit(params.root)
    summary = pipeline_summary(params)
    publish_artifacts(params, summary)
    return summary


def task_runner_for(params):
    """prefect-dask's DaskTaskRunner when orchestration.task_runner is dask (an existing scheduler at
    dask_address, else a LocalCluster); the customer-level stage then fans out on its cluster."""
    config = params.orchestration
    if config.task_runner != "dask":
        return None
    from prefect_dask import DaskTaskRunner

    if config.dask_address:
        return DaskTaskRunner(address=config.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": config.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )


def configured_flow(params):
    """The flow with the task runner params.yaml asks for."""
    runner = task_runner_for(params)
    return offer_allocation if runner is None else offer_allocation.with_options(task_runner=runner)


def run_offer_allocation(params_file: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict:
    params = load_params(params_file, overrides=overrides)
    return configured_flow(params)(params_file=params_file, overrides=overrides)
