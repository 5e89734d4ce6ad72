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
from prefect.artifacts import create_markdown_artifact

from offerflow.config import load_params
from offerflow.flows.caching import StageInputs
from offerflow.stages import STAGES, pipeline_summary, run_stage


@task(name="stage", cache_policy=StageInputs(), persist_result=True)
def stage_task(stage: str, params_file: str, overrides: dict[str, Any] | None = None) -> dict:
    """Run one stage; its metrics dict is the task result."""
    logger = get_run_logger()
    params = load_params(params_file, overrides=overrides)
    started = time.perf_counter()
    metrics = run_stage(stage, params)
    logger.info("%s finished in %.2fs: %s", stage, time.perf_counter() - started, metrics)
    return metrics


def dvc_commit(root: Path) -> None:
    """Record the flow's outputs in dvc.lock so `dvc status` is clean after a flow run."""
    subprocess.run(
        [sys.executable, "-m", "dvc", "commit", "--force", "--quiet"], cwd=root, check=True, capture_output=True, text=True
    )


def summary_markdown(summary: dict) -> str:
    def fmt(value: Any, unit: str = "") -> str:
        return "n/a" if value is None else f"{value:,.2f}{unit}"

    return "\n".join(
        [
            "# offerflow allocation",
            "",
            "| | |",
            "|---|---|",
            f"| Budget | {fmt(summary['budget'], ' USD')} |",
            f"| Expected incremental conversions | {fmt(summary['expected_incremental_conversions'])} |",
            f"| Expected coupon cost | {fmt(summary['expected_coupon_cost'], ' USD')} |",
            f"| Cost per incremental conversion | {fmt(summary['cost_per_incremental_conversion'], ' USD')} |",
            f"| Run id | {summary['run_id']} |",
            f"| Published to | {', '.join(str(x) for x in summary['published_to'] if x)} |",
        ]
    )


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
        )(stage, params_path, overrides)
    if orchestration.dvc_commit and (params.root / ".dvc").is_dir() and not overrides:
        dvc_commit(params.root)
    summary = pipeline_summary(params)
    create_markdown_artifact(summary_markdown(summary), key="offer-allocation-summary", description="allocation summary")
    return summary
