"""prefect.yaml written from params.yaml (`offerflow prefect-yaml`), so schedules live in one place.

Prefect's deploy reads prefect.yaml and cannot read params.yaml, so the file is generated the way dvc.yaml
is: one deployment per enabled pipeline, named orchestration.deployment_name, with the cron schedule and
timezone of orchestration.schedule (offers) or orchestration.scenario_schedules, and only the params file
as a parameter: a run reads params.yaml when it starts, so an edit changes the next scheduled run, and
the run records its outputs in dvc.lock (`dvc commit`) as a local flow run does.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from offerflow.config import Params
from offerflow.errors import ConfigError
from offerflow.flows.deployments import DESCRIPTIONS, schedule_of

WORK_POOL = "offerflow-process"
ENTRYPOINTS = {
    "offers": "flows/offer_allocation.py:offer_allocation",
    "discounts": "flows/discount_policy.py:discount_policy",
    "journey": "flows/customer_journeys.py:customer_journeys",
}
HEADER = """\
# Prefect deployments for offerflow (Prefect 3), written by `offerflow prefect-yaml` from params.yaml:
# edit the schedules there (orchestration.schedule, orchestration.scenario_schedules) and rerun it.
# With a server and a process work pool:
#   prefect server start &                                   # or point PREFECT_API_URL at yours
#   prefect work-pool create offerflow-process --type process
#   OFFERFLOW_PROJECT_DIR=$PWD prefect deploy --all          # from this folder
#   OFFERFLOW_PROJECT_DIR=$PWD prefect worker start --pool offerflow-process
# Without a work pool: `offerflow serve` (see README).
"""


def deployed_pipelines(params: Params) -> list[str]:
    """The coupon plan always; the discount and journey scenarios when params.yaml enables them."""
    from offerflow.pipeline import PIPELINES, enabled_stages

    return [name for name in PIPELINES if name == "offers" or enabled_stages(params, pipeline=name)]


def render_prefect_yaml(params: Params, params_file: Path | str = "params.yaml") -> str:
    import yaml

    deployments = []
    for pipeline in deployed_pipelines(params):
        schedule = schedule_of(params, pipeline)
        deployments.append({
            "name": params.orchestration.deployment_name,
            "description": DESCRIPTIONS[pipeline],
            "entrypoint": ENTRYPOINTS[pipeline],
            "tags": ["offerflow", pipeline],
            "parameters": {"params_file": Path(params_file).name},  # the only parameter: no overrides
            "schedules": [{"cron": schedule.cron, "timezone": schedule.timezone}],
            "work_pool": {"name": WORK_POOL},
        })
    document = {
        "name": "offerflow",
        "prefect-version": version("prefect"),
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $OFFERFLOW_PROJECT_DIR }}"}}],
        "deployments": deployments,
    }
    return HEADER + "\n" + yaml.safe_dump(document, sort_keys=False, width=120)


def write_prefect_yaml(params: Params, params_file: Path | str = "params.yaml") -> Path:
    path = params.root / "prefect.yaml"
    path.write_text(render_prefect_yaml(params, params_file))
    return path


def check_prefect_yaml(params: Params, params_file: Path | str = "params.yaml") -> None:
    """Exit 2 when prefect.yaml's deployments no longer follow params.yaml (a schedule edited there)."""
    path = params.root / "prefect.yaml"
    if not path.is_file() or path.read_text() != render_prefect_yaml(params, params_file):
        raise ConfigError(
            f"{path} does not match {Path(params_file).name} (orchestration.schedule, scenario_schedules, "
            "deployment_name or an enabled scenario changed): run `offerflow prefect-yaml`, then `prefect deploy --all`"
        )
