"""The customer-journeys flow: sequences of offers learned by fitted Q iteration, checked against simple rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from offerflow.config import load_params
from offerflow.flows.artifacts import figure_artifacts
from offerflow.flows.logs import offerflow_logs_to_api
from offerflow.flows.steps import Step, keep_dvc_in_step
from offerflow.publish.recovery import recover_publication
from offerflow.summary import scenario_summary


@flow(name="customer-journeys", log_prints=True)
def customer_journeys(params_file: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict:
    """Validate the journey log, learn sequential policies within the budget, check them, publish the next actions."""
    with offerflow_logs_to_api():  # offerflow's own lines reach the Prefect UI too
        params_path = str(Path(params_file).resolve())
        params = load_params(params_path, overrides=overrides)
        recover_publication(params)
        step = Step(params, params_path, overrides, pipeline="journey")
        step("prepare data")  # the testbed's log (example only) and its checks
        step("learn responses")  # fitted Q iteration and the one-step baselines, tuned to the budget
        step("check against simple rules")  # off-policy values on held-out customers; the gate
        step("publish")  # every customer's next action, in the journey_* tables
        keep_dvc_in_step(params, overrides)
        summary = scenario_summary(params, "journey")
        create_markdown_artifact(summary["markdown"], key="customer-journeys-summary", description="customer journeys")
        figure_artifacts(params, "journey")
        return summary
