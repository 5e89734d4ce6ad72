"""The pieces every offerflow flow shares: one task per declared stage, run business step by business step.

Tasks are named for what they do, retried only for faults a retry can fix (offerflow.errors), cached by the
files, params keys and code they read, and refreshed when the outputs on disk are gone or not theirs. After
its last step a flow runs `dvc commit` (when the project is a DVC repo and the run used params.yaml as it is), so the
outputs it wrote are recorded in dvc.lock and `dvc status` stays clean.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from offerflow.catalog import Catalog
from offerflow.config import Params, load_params
from offerflow.errors import exit_code_of, is_retryable
from offerflow.flows.artifacts import report_failure
from offerflow.flows.caching import StageInputs
from offerflow.pipeline import phase_stages, run_stage, stage_named


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


def outputs_current(stage: str, params: Params) -> bool:
    """A cached result is only valid while the files on disk are the ones it wrote: present, and stamped with
    these params and inputs. (The cache key knows params and inputs, not which run's outputs are on disk: after
    budgets 8000, 10000, 8000 the third run's key matches the first run's result, while the files are the
    second run's.)"""
    from offerflow.provenance import stamp_problems

    catalog = Catalog(params)
    declared = stage_named(stage)
    present = all(catalog.path(out.name).exists() for out in declared.outputs_for(params))
    return present and not stamp_problems(declared, params, catalog)


class Step:
    """Runs the stages of one business step as configured tasks (retries, timeout, cache refresh)."""

    def __init__(self, params: Params, params_file: str, overrides: dict[str, Any] | None, pipeline: str = "offers"):
        self.params, self.params_file, self.overrides, self.pipeline = params, params_file, overrides, pipeline

    def __call__(self, phase: str) -> list[dict]:
        config = self.params.orchestration
        results = []
        for stage in phase_stages(self.params, phase, self.pipeline):
            configured = stage_task.with_options(
                name=stage.does,
                task_run_name=stage.does,
                retries=config.retries,
                retry_delay_seconds=config.retry_delay_seconds,
                timeout_seconds=config.task_timeout_seconds,
                refresh_cache=not outputs_current(stage.name, self.params),
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




def keep_dvc_in_step(params: Params, overrides: dict[str, Any] | None) -> None:
    """`dvc commit` after a run that used params.yaml as it is (overrides are not in dvc.lock's params)."""
    if params.orchestration.dvc_commit and (params.root / ".dvc").is_dir() and not overrides:
        dvc_commit(params.root)
