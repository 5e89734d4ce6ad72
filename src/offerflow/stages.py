"""Stage runners: read a stage's inputs, call its pure function, write its outputs.

These are the only functions the CLI (and therefore dvc.yaml) and the Prefect flow call, so every
entry point reads and writes exactly the same files. Each returns a small dict of metrics for logs.
Heavy imports (GX, causalml, Pyomo) happen inside the runner that needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import joblib

from offerflow.config import Params
from offerflow.io import (
    ARM,
    CONVERTED,
    CUSTOMER_ID,
    Layout,
    atomic_path,
    file_sha256,
    read_customers,
    read_history,
    read_table,
    write_csv,
    write_json,
    write_parquet,
)
from offerflow.segments import attach_segment_ids, segment_catalog

STAGES = ("simulate", "validate", "train", "probabilities", "optimize", "publish")


def layout_for(params: Params) -> Layout:
    return Layout(params.root)


def run_simulate(params: Params, layout: Layout) -> dict:
    """Draw a randomized campaign history from the true table into params.data.history."""
    from offerflow.simulate import simulate_history

    if not params.simulate.enabled:
        return {"skipped": "simulate.enabled is false"}
    if params.data.true_probabilities is None:
        raise ValueError("simulate needs data.true_probabilities")
    customers = read_customers(params)
    truth = read_table(params.path(params.data.true_probabilities))
    history = simulate_history(
        customers,
        truth,
        params.arms.names,
        params.data.segment_columns,
        params.simulate.campaigns,
        params.simulate.seed,
    )
    history = history.rename(
        columns={
            CUSTOMER_ID: params.data.customer_id,
            ARM: params.data.arm_column,
            CONVERTED: params.data.outcome_column,
        }
    )
    write_csv(history, params.path(params.data.history))
    return {"rows": len(history), "conversion_rate": round(float(history[params.data.outcome_column].mean()), 6)}


def run_validate(params: Params, layout: Layout) -> dict:
    from offerflow.validate import run_validate as validate_stage

    return validate_stage(params, layout)


def run_train(params: Params, layout: Layout) -> dict:
    """Fit the uplift model on history joined to customer features; save model, metadata, fit report."""
    from offerflow.train import fit_report, train_uplift, training_frame

    customers = read_customers(params)
    history = training_frame(read_history(params), customers, list(params.train.features))
    model = train_uplift(history, list(params.train.features), params.arms.names, params.arms.control, params.train)
    model.metadata["history_sha256"] = file_sha256(params.path(params.data.history))
    model.metadata["customers_sha256"] = file_sha256(params.path(params.data.customers))
    report = fit_report(model, history)
    with atomic_path(layout.model) as tmp:
        joblib.dump(model, tmp)
    write_json({**model.metadata, "fit": report}, layout.model_metadata)
    write_json(report, layout.train_metrics)
    return {"rows": len(history), "mae_vs_truth": report.get("mae_vs_truth")}


def customers_with_segments(params: Params):
    """Customers plus segment ids numbered like the true table when there is one."""
    customers = read_customers(params)
    reference = None
    if params.data.true_probabilities is not None:
        reference = read_table(params.path(params.data.true_probabilities))
    catalog = segment_catalog(customers, params.data.segment_columns, reference_table=reference)
    return attach_segment_ids(customers, catalog, params.data.segment_columns), catalog


def run_probabilities(params: Params, layout: Layout) -> dict:
    """Score every customer under every arm; aggregate to the segment table the LP reads."""
    from offerflow.probabilities import aggregate_segment_probabilities, predict_customer_probabilities

    model = joblib.load(layout.model)
    customers, catalog = customers_with_segments(params)
    customer_probs = predict_customer_probabilities(model, customers, params.probabilities.clip)
    segment_table = aggregate_segment_probabilities(customer_probs, catalog, params.arms.names)
    write_parquet(customer_probs, layout.customer_probabilities)
    write_csv(segment_table, layout.segment_probabilities)
    return {"customers": len(customer_probs), "segments": len(segment_table)}


def run_optimize(params: Params, layout: Layout) -> dict:
    from offerflow.optimize.stage import run_optimize as optimize_stage

    return optimize_stage(params, layout)


def run_publish(params: Params, layout: Layout) -> dict:
    from offerflow.publish.stage import run_publish as publish_stage

    return publish_stage(params, layout)


RUNNERS: dict[str, Callable[[Params, Layout], dict]] = {
    "simulate": run_simulate,
    "validate": run_validate,
    "train": run_train,
    "probabilities": run_probabilities,
    "optimize": run_optimize,
    "publish": run_publish,
}


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
        "expected_incremental_conversions": optimize.get("objective"),
        "expected_coupon_cost": optimize.get("expected_cost"),
        "cost_per_incremental_conversion": optimize.get("cost_per_incremental_conversion"),
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
        "publish": customers + history + truth + optimize_table_deps(params, layout)
        + [layout.model, layout.segment_plan, layout.optimize_metrics],
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
        "probabilities": [layout.customer_probabilities, layout.segment_probabilities],
        "optimize": [layout.segment_plan, layout.optimize_metrics],
        "publish": [layout.assignments, layout.publish_metrics],
    }[stage]


STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    # the params.yaml keys each stage reads; dvc.yaml lists the same keys (checked by a test)
    "simulate": ("data", "arms", "simulate"),
    "validate": ("data", "arms", "validate", "train.features", "optimize.probability_table"),
    "train": ("data", "arms", "train"),
    "probabilities": ("data", "arms", "probabilities"),
    "optimize": ("data", "arms", "optimize"),
    # the run id is a lineage hash over everything that shaped the plan
    "publish": ("data", "arms", "simulate", "train", "probabilities", "optimize", "publish"),
}
