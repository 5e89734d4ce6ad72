"""Runners of the modeling stages (simulate, train, probabilities): read inputs, fit/score, write outputs."""

from __future__ import annotations

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
