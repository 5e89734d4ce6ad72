"""Stage runners: read a stage's inputs, call its pure function, write its outputs.

These are the only functions the CLI (and therefore dvc.yaml) and the Prefect flow call, so every
entry point reads and writes exactly the same files. Each returns a small dict of metrics for logs.
Heavy imports (GX, causalml, Pyomo) happen inside the runner that needs them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from offerflow.config import Params
from offerflow.io import Layout

STAGES = ("simulate", "validate", "train", "probabilities", "optimize", "allocate", "publish")


def layout_for(params: Params) -> Layout:
    return Layout(params.root)


RUNNER_PATHS = {
    # heavy imports (GX, causalml, Pyomo) happen only when the stage runs
    "simulate": "offerflow.modeling:run_simulate",
    "validate": "offerflow.validate:run_validate",
    "train": "offerflow.modeling:run_train",
    "probabilities": "offerflow.modeling:run_probabilities",
    "optimize": "offerflow.optimize.stage:run_optimize",
    "allocate": "offerflow.optimize.customer_stage:run_allocate",
    "publish": "offerflow.publish.stage:run_publish",
}


def _lazy_runner(path: str) -> Callable[[Params, Layout], dict]:
    module_name, name = path.split(":")

    def run(params: Params, layout: Layout) -> dict:
        return getattr(importlib.import_module(module_name), name)(params, layout)

    run.__name__ = name
    return run


RUNNERS: dict[str, Callable[[Params, Layout], dict]] = {stage: _lazy_runner(path) for stage, path in RUNNER_PATHS.items()}


def run_stage(name: str, params: Params) -> dict:
    return RUNNERS[name](params, layout_for(params))


def pipeline_summary(params: Params) -> dict:
    """The few numbers a marketer wants after a run, read back from the stage outputs."""
    from offerflow.io import read_json

    layout = layout_for(params)
    optimize = read_json(layout.optimize_metrics)
    publish = read_json(layout.publish_metrics) if layout.publish_metrics.exists() else {}
    return {
        "budget": optimize.get("budget"),
        "expected_incremental_conversions": optimize.get("expected_incremental_conversions", optimize.get("objective")),
        "expected_coupon_cost": optimize.get("expected_cost"),
        "cost_per_incremental_conversion": optimize.get("cost_per_incremental_conversion"),
        "recommended_budget": optimize.get("recommended_budget"),
        "run_id": publish.get("run_id"),
        "published_to": [str(Path(layout.assignments).relative_to(params.root)), publish.get("target")],
    }


def _optional(params: Params, path) -> list[Path]:
    return [] if path is None else [params.path(path)]


def optimize_table_deps(params: Params, layout: Layout) -> list[Path]:
    if params.optimize.probability_table == "learned":
        return [layout.segment_probabilities]
    return [params.path(params.optimize.probability_table)]


def stage_deps(stage: str, params: Params, layout: Layout) -> list[Path]:
    """Files a stage reads (its DVC deps and its Prefect cache key), beside the params it reads."""
    customers = [params.path(params.data.customers)]
    truth = _optional(params, params.data.true_probabilities)
    history = [params.path(params.data.history)]
    deps = {
        "simulate": customers + truth,
        "validate": customers + history + truth + sorted(params.path(params.validate_.suites_dir).glob("*.json")),
        "train": customers + history + [layout.validation_summary],
        "probabilities": customers + truth + [layout.model],
        "optimize": customers + truth + optimize_table_deps(params, layout),
        "allocate": [layout.customer_probabilities],
        "publish": customers + history + truth + optimize_table_deps(params, layout)
        + [layout.model, layout.segment_plan, layout.optimize_metrics, layout.customer_plan,
           layout.allocate_metrics, layout.customer_probabilities],
    }[stage]
    if stage == "validate" and params.optimize.probability_table != "learned":
        deps.append(params.path(params.optimize.probability_table))
    return deps


def stage_outs(stage: str, params: Params, layout: Layout) -> list[Path]:
    """Files a stage writes that later stages or people read (DVC outs and metrics)."""
    return {
        "simulate": [params.path(params.data.history)],
        "validate": [layout.validation_summary],
        "train": [layout.model, layout.model_metadata, layout.train_metrics],
        "probabilities": [layout.customer_probabilities, layout.segment_probabilities, layout.probabilities_metrics],
        "optimize": [layout.segment_plan, layout.optimize_metrics],
        "allocate": [layout.customer_plan, layout.allocate_metrics],
        "publish": [layout.assignments, layout.publish_metrics],
    }[stage]


STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    # the params.yaml keys each stage reads; dvc.yaml lists the same keys (checked by a test)
    "simulate": ("data", "arms", "simulate"),
    "validate": ("data", "arms", "validate", "train.features", "optimize.probability_table"),
    "train": ("data", "arms", "train"),
    "probabilities": ("data", "arms", "probabilities"),
    "optimize": ("data", "arms", "optimize"),
    "allocate": ("arms", "optimize", "allocate", "orchestration.task_runner"),
    # the run id is a lineage hash over everything that shaped the plan
    "publish": ("data", "arms", "simulate", "train", "probabilities", "optimize", "allocate", "publish"),
}
