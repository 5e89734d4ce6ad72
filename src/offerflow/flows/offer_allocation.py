"""The offer-allocation flow: coupons within a budget, as the business process it automates.

The flow body reads as that process: prepare the data, learn how customers respond, decide the offers,
check them against simple rules, publish. Each step runs the stages the declaration (offerflow.pipeline)
puts in it (offerflow.flows.steps).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from offerflow.config import Params, load_params
from offerflow.flows.artifacts import publish_artifacts
from offerflow.flows.logs import offerflow_logs_to_api
from offerflow.flows.steps import Step, keep_dvc_in_step
from offerflow.publish.recovery import recover_publication
from offerflow.summary import pipeline_summary


@flow(name="offer-allocation", log_prints=True)
def offer_allocation(params_file: str = "params.yaml", overrides: dict[str, Any] | None = None) -> dict:
    """Prepare and validate the data, learn how customers respond, decide the offers within the budget, publish."""
    with offerflow_logs_to_api():  # offerflow's own lines reach the Prefect UI too
        params_path = str(Path(params_file).resolve())
        params = load_params(params_path, overrides=overrides)
        recover_publication(params)  # a publication killed after its commit: bring the files in line first
        step = Step(params, params_path, overrides)
        step("prepare data")  # the example draws its history; every input passes its expectation suite
        step("learn responses")  # uplift models compared out of fold; every customer scored under every offer
        step("decide offers")  # the segment plan and the exact customer-level allocation within the budget
        step("check against simple rules")  # held-out history: does the plan beat simple rules at the same spend?
        step("publish")  # one offer per customer, with lineage, to the database and files
        keep_dvc_in_step(params, overrides)
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
        cluster_kwargs={"n_workers": config.dask_workers, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"}
    )


def flow_of(pipeline: str):
    """The Prefect flow that runs one pipeline of the declaration."""
    if pipeline == "offers":
        return offer_allocation
    if pipeline == "discounts":
        from offerflow.flows.discount_policy import discount_policy

        return discount_policy
    from offerflow.flows.customer_journeys import customer_journeys

    return customer_journeys


def configured_flow(params: Params, pipeline: str = "offers"):
    """The pipeline's flow with the task runner params.yaml asks for."""
    runner = task_runner_for(params)
    chosen = flow_of(pipeline)
    return chosen if runner is None else chosen.with_options(task_runner=runner)


def run_offer_allocation(params_file: str = "params.yaml", overrides: dict[str, Any] | None = None, pipeline: str = "offers") -> dict:
    params = load_params(params_file, overrides=overrides)
    return configured_flow(params, pipeline)(params_file=params_file, overrides=overrides)
