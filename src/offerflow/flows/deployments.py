"""Serving the flow as a scheduled deployment, for teams without a work pool (`offerflow serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from offerflow.config import Params


def deployment_parameters(params_file: Path | str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    parameters: dict[str, Any] = {"params_file": str(Path(params_file).resolve())}
    if overrides:
        parameters["overrides"] = overrides
    return parameters


def serve_flow(params: Params, params_file: Path | str, overrides: dict[str, Any] | None, schedule: bool = True) -> None:
    """Block serving the deployment `offer-allocation/<orchestration.deployment_name>`."""
    from prefect.schedules import Cron

    from offerflow.flows.offer_allocation import configured_flow

    config = params.orchestration
    configured_flow(params).serve(
        name=config.deployment_name,
        schedules=[Cron(config.schedule.cron, timezone=config.schedule.timezone)] if schedule else None,
        parameters=deployment_parameters(params_file, overrides),
        description="Validate, learn, optimize within the budget and publish the offer allocation.",
        tags=["offerflow"],
    )
