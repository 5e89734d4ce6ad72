"""The pipelines, declared once: the offers, discounts and journey stages, and how entry points run them.

Each stage is an object (offerflow.declarations.stage.Stage): its name, what it does, its runner (a function),
the params keys it reads, the files it reads and writes (catalog names), the code it runs, and when it is
enabled. Each pipeline's stages are declared in its own module (offerflow.declarations.offers, .discounts,
.journey); STAGES here is all of them in order. Everything else derives from this list: the CLI subcommands,
dvc.yaml (`offerflow dvc-yaml`), the Prefect flows' tasks and their cache keys, the provenance checks, and the
tests' view of the pipeline. Adding a stage touches its pipeline's declaration module, its runner in
offerflow.stages, its domain code and its tests; nothing else.
"""

from __future__ import annotations

import os

from offerflow.catalog import Catalog, stamp_name
from offerflow.config import Params
from offerflow.declarations import discounts, journey, offers
from offerflow.declarations.stage import CORE_CODE, PHASES, Condition, Input, Output, Stage, always

__all__ = ["CORE_CODE", "PHASES", "PIPELINES", "STAGES", "STAGE_NAMES", "Condition", "Input", "Output", "Stage",
           "always", "enabled_stages", "phase_stages", "run_stage", "stage_named"]

STAGES: tuple[Stage, ...] = offers.STAGES + discounts.STAGES + journey.STAGES
PIPELINES = ("offers", "discounts", "journey")
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def stage_named(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(f"no stage {name!r}; stages: {list(STAGE_NAMES)}")


def enabled_stages(params: Params, from_stage: str | None = None, pipeline: str | None = None) -> list[Stage]:
    """The stages this params file runs, in order (of one pipeline, when named), optionally from `from_stage`."""
    chosen = [stage for stage in STAGES if stage.enabled(params) and pipeline in (None, stage.pipeline)]
    if from_stage is not None:
        start = stage_named(from_stage)
        order = [stage.name for stage in STAGES]
        chosen = [stage for stage in chosen if stage.pipeline != start.pipeline or order.index(stage.name) >= order.index(start.name)]
    return chosen


def phase_stages(params: Params, phase: str, pipeline: str = "offers") -> list[Stage]:
    """The enabled stages of one business step of one pipeline, in order."""
    if phase not in PHASES:
        raise KeyError(f"no phase {phase!r}; phases: {list(PHASES)}")
    return [stage for stage in enabled_stages(params, pipeline=pipeline) if stage.phase == phase]


def run_stage(name: str, params: Params) -> dict:
    """Run one stage as every entry point does: check upstream provenance, run, stamp the outputs."""
    from offerflow.headline import write_headline
    from offerflow.provenance import check_upstream, write_stamp

    stage = stage_named(name)
    catalog = Catalog(params)
    if os.environ.get("DVC_STAGE"):  # run by `dvc repro`/`dvc exp run`: dvc.yaml must match params.yaml
        from offerflow.dvcyaml import check_dvc_yaml

        check_dvc_yaml(params)
    if not stage.enabled(params):
        return {"skipped": f"{name} is disabled by params.yaml"}
    check_upstream(stage, params, catalog, enabled_stages(params))
    catalog.path(stamp_name(name)).unlink(missing_ok=True)
    metrics = stage.runner(params)
    for out in stage.outputs_for(params):
        if out.derive is not None:
            out.derive(params, catalog)
    write_headline(stage, params, catalog)
    write_stamp(stage, params, catalog)
    return metrics
