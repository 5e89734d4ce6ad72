"""Serving a flow as a scheduled deployment, for teams without a work pool (`offerflow serve`).

Each pipeline has its own flow and schedule: the coupon plan `orchestration.schedule`, the discount policy
and the customer journeys `orchestration.scenario_schedules`. params.yaml is the only source of truth: a
served run reads the params file when it starts, so an edit changes the next run.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from offerflow.config import Params
from offerflow.errors import OfferflowError

DESCRIPTIONS = {
    "offers": "Validate, learn, optimize within the budget, check against simple rules and publish the offer allocation.",
    "discounts": "Learn the debiased effect of discounts, choose a discount per customer, check it and publish.",
    "journey": "Learn sequential offer policies within the budget, check them against simple rules and publish next actions.",
}


class PrefectServerUnavailable(OfferflowError):
    """`offerflow serve` needs a running Prefect server; the message says how to get one."""


def require_server(timeout_seconds: float = 5.0) -> str:
    """The API URL of a reachable Prefect server, or an error within seconds (not Prefect's long hang)."""
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        raise PrefectServerUnavailable(
            "serving a deployment needs a Prefect server: start one with `prefect server start` and "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout_seconds) as response:
            if response.status == 200:
                return url
    except (urllib.error.URLError, OSError):
        pass
    raise PrefectServerUnavailable(f"no Prefect server answers at PREFECT_API_URL={url}: start it with `prefect server start`")


def deployment_parameters(params_file: Path | str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    parameters: dict[str, Any] = {"params_file": str(Path(params_file).resolve())}
    if overrides:
        parameters["overrides"] = overrides
    return parameters


def schedule_of(params: Params, pipeline: str):
    config = params.orchestration
    return config.schedule if pipeline == "offers" else config.scenario_schedules[pipeline]


def serve_flow(
    params: Params, params_file: Path | str, overrides: dict[str, Any] | None, schedule: bool = True,
    pipeline: str = "offers",
) -> None:
    """Block serving the deployment `<flow name>/<orchestration.deployment_name>` of one pipeline."""
    require_server()
    from prefect.schedules import Cron

    from offerflow.flows.offer_allocation import configured_flow

    cron = schedule_of(params, pipeline)
    configured_flow(params, pipeline).serve(
        name=params.orchestration.deployment_name,
        schedules=[Cron(cron.cron, timezone=cron.timezone)] if schedule else None,
        parameters=deployment_parameters(params_file, overrides),
        description=DESCRIPTIONS[pipeline],
        tags=["offerflow", pipeline],
    )
