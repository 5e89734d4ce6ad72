"""The discount-policy flow: personalized discounts from past campaigns, checked on a randomized test."""

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


@flow(name="discount-policy", log_prints=True)
def discount_policy(params_file: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict:
    """Read both discount files, learn the debiased effect of a discount, choose a discount per customer, publish."""
    with offerflow_logs_to_api():  # offerflow's own lines reach the Prefect UI too
        params_path = str(Path(params_file).resolve())
        params = load_params(params_path, overrides=overrides)
        recover_publication(params)
        step = Step(params, params_path, overrides, pipeline="discounts")
        step("prepare data")  # both files parsed as params.yaml describes them and checked by their suites
        step("learn responses")  # the debiased effect per customer; its ranking checked on the randomized test
        step("decide offers")  # a discount level per customer within the budget; the gate against simple rules
        step("publish")  # the discount per customer, in the discounts_* tables
        keep_dvc_in_step(params, overrides)
        summary = scenario_summary(params, "discounts")
        create_markdown_artifact(summary["markdown"], key="discount-policy-summary", description="discount policy")
        figure_artifacts(params, "discounts")
        return summary
