"""Runners of the modeling stages (simulate, train, probabilities): read inputs, fit/score, write outputs."""

from __future__ import annotations

from pathlib import Path

import joblib
import pandas as pd
import numpy as np

from offerflow.config import ConfigError, Params
from offerflow.io import (
    ARM,
    CONVERTED,
    CUSTOMER_ID,
    Layout,
    atomic_path,
    file_sha256,
    prob_columns,
    read_customers,
    read_history,
    read_table,
    write_csv,
    write_json,
    write_parquet,
)
from offerflow.segments import attach_segment_ids, segment_catalog


def modeling_outputs(layout: Layout) -> dict[str, Path]:
    """Outputs of train and probabilities beyond the Layout's contract files (dvc.yaml plots/metrics)."""
    return {
        "train_gain_curve": layout.root / "reports/plots/train_cumulative_gain.csv",
        "train_qini_curve": layout.root / "reports/plots/train_qini.csv",
        "train_figure": layout.root / "reports/figures/train_uplift_curves.png",
        "probabilities_metrics": layout.root / "reports/probabilities_metrics.json",
    }


def run_simulate(params: Params, layout: Layout) -> dict:
    """Draw a campaign history (randomized or targeted) from the true table into params.data.history."""
    from offerflow.simulate import simulate_history

    if not params.simulate.enabled:
        return {"skipped": "simulate.enabled is false"}
    if params.data.true_probabilities is None:
        raise ValueError("simulate needs data.true_probabilities")
    config = params.simulate
    customers = read_customers(params)
    columns = [config.targeting.column] if config.assignment == "targeted" else []
    columns += list(config.heterogeneity.features)
    missing = [c for c in columns if c not in customers.columns]
    if missing:
        raise ConfigError(
            f"simulate: column(s) {missing} named in simulate.targeting / simulate.heterogeneity are not in "
            f"{params.path(params.data.customers)}"
        )
    truth = read_table(params.path(params.data.true_probabilities))
    history = simulate_history(
        customers,
        truth,
        params.arms.names,
        params.data.segment_columns,
        config.campaigns,
        config.seed,
        assignment=config.assignment,
        targeting_column=config.targeting.column,
        targeting_strength=config.targeting.strength,
        targeting_order=config.targeting.order,
        log_propensity=config.log_propensity,
        heterogeneity=config.heterogeneity.strength,
        heterogeneity_features=config.heterogeneity.features,
    )
    history = history.rename(
        columns={CUSTOMER_ID: params.data.customer_id, ARM: params.data.arm_column, CONVERTED: params.data.outcome_column}
    )
    write_csv(history, params.path(params.data.history))
    return {"rows": len(history), "conversion_rate": round(float(history[params.data.outcome_column].mean()), 6)}


def training_columns(params: Params, customer_columns) -> list[str]:
    """Customer columns the train stage joins onto the history: features, segments, the heuristic's column."""
    columns = [*params.train.features, *params.data.segment_columns]
    heuristic = params.train.evaluation.heuristic
    if heuristic is not None and heuristic.column in customer_columns:
        columns.append(heuristic.column)
    return list(dict.fromkeys(columns))


def run_train(params: Params, layout: Layout) -> dict:
    """Compare learners out of fold, keep the best, refit; save model, metadata, metrics, curves, figure."""
    from offerflow.train import fit_report, training_frame
    from offerflow.uplift.training import train_and_evaluate

    customers = read_customers(params)
    history = training_frame(read_history(params), customers, training_columns(params, customers.columns))
    arms, control = params.arms.names, params.arms.control
    result = train_and_evaluate(
        history, list(params.train.features), arms, control, params.train, params.data.segment_columns
    )
    model = result.model
    model.metadata["history_sha256"] = file_sha256(params.path(params.data.history))
    model.metadata["customers_sha256"] = file_sha256(params.path(params.data.customers))
    report = fit_report(model, history)
    metrics = {"rows": report["rows"], "mae_vs_truth": report.get("mae_vs_truth"), "fit": report, **result.metrics}
    if params.train.decision_quality.enabled:
        chosen = {key: model.metadata[key] for key in ("learner", "base_model", "model_params")}
        metrics["decision_quality"] = train_decision_quality(params, customers, params.train.model_copy(update=chosen))
    outputs = modeling_outputs(layout)
    with atomic_path(layout.model) as tmp:
        joblib.dump(model, tmp)
    write_json({**model.metadata, "selection": result.metrics["selection"], "fit": report}, layout.model_metadata)
    write_json(metrics, layout.train_metrics)
    write_csv(result.curves["cumulative_gain"], outputs["train_gain_curve"])
    write_csv(result.curves["qini"], outputs["train_qini_curve"])
    if params.train.evaluation.figures:
        from offerflow.uplift.figures import plot_uplift_curves

        title = f"{model.metadata['name']}: out-of-fold uplift curves"
        plot_uplift_curves(result.curves, [a for a in arms if a != control], title, outputs["train_figure"])
    return {
        "rows": report["rows"],
        "learner": model.metadata["name"],
        "mae_vs_truth": report.get("mae_vs_truth"),
        "qini": {arm: entry["qini"]["model"] for arm, entry in result.metrics["evaluation"]["arms"].items()},
    }


def train_decision_quality(params: Params, customers, config) -> dict:
    """The decision-quality simulation for the chosen learner's train config (needs the true table)."""
    from offerflow.uplift.decision_quality import decision_quality

    if params.data.true_probabilities is None:
        raise ConfigError("train.decision_quality.enabled needs data.true_probabilities (the simulator's truth)")
    check = params.train.decision_quality
    truth = read_table(params.path(params.data.true_probabilities))
    seeds = [params.simulate.seed + k for k in range(check.seeds)]
    return decision_quality(
        customers,
        truth,
        params.arms.names,
        params.arms.control,
        params.arms.coupon_cost,
        list(params.data.segment_columns),
        config,
        params.simulate.campaigns,
        seeds,
        check.budget,
        check.min_share,
        params.probabilities.monotone_arms,
        params.probabilities.clip,
    )


def customers_with_segments(params: Params):
    """Customers plus segment ids numbered like the true table when there is one."""
    customers = read_customers(params)
    reference = None
    if params.data.true_probabilities is not None:
        reference = read_table(params.path(params.data.true_probabilities))
    catalog = segment_catalog(customers, params.data.segment_columns, reference_table=reference)
    return attach_segment_ids(customers, catalog, params.data.segment_columns), catalog


def check_monotone_arms(params: Params) -> tuple[str, ...]:
    order = params.probabilities.monotone_arms
    unknown = [arm for arm in order if arm not in params.arms.names]
    if unknown or len(set(order)) != len(order):
        raise ConfigError(
            f"probabilities.monotone_arms must list distinct arms of arms.coupon_cost {params.arms.names}; "
            f"got {list(order)}"
        )
    return order


def score_in_partitions(model, customers: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Per-customer probabilities computed partition by partition (allocate.partition_rows customers each),
    in process or on Dask workers (orchestration.task_runner); the same partitions either way."""
    from offerflow.distributed import partition_executor
    from offerflow.optimize.customer_allocation import partition_bounds

    bounds = partition_bounds(len(customers), params.allocate.partition_rows)
    with partition_executor(params.orchestration) as executor:
        parts = executor.map(
            score_partition,
            [customers.iloc[a:b] for a, b in bounds],
            clip=params.probabilities.clip,
            model=model,
            progress="probabilities: scoring",
        )
    return pd.concat(parts, ignore_index=True)


def score_partition(customers: pd.DataFrame, model, clip: tuple[float, float]) -> pd.DataFrame:
    """One partition's scores (module-level so Dask workers can unpickle it)."""
    from offerflow.probabilities import predict_customer_probabilities

    return predict_customer_probabilities(model, customers, clip)


def run_probabilities(params: Params, layout: Layout) -> dict:
    """Score every customer under every arm; aggregate to the segment table (with intervals) the LP reads."""
    from offerflow.probabilities import (
        aggregate_segment_probabilities,
        make_monotone,
        predict_customer_probabilities,
        table_vs_truth,
    )

    monotone = check_monotone_arms(params)
    model = joblib.load(layout.model)
    customers, catalog = customers_with_segments(params)
    raw = score_in_partitions(model, customers, params)
    customer_probs = make_monotone(raw, model, customers, monotone) if monotone else raw
    arms = params.arms.names
    segment_table = aggregate_segment_probabilities(
        customer_probs, catalog, arms, model.segment_evidence, params.probabilities.interval_level
    )
    changed = np.abs(customer_probs[prob_columns(arms)].to_numpy() - raw[prob_columns(arms)].to_numpy()) > 1e-12
    metrics = {
        "customers": int(len(customer_probs)),
        "segments": int(len(segment_table)),
        "monotone_arms": list(monotone),
        "customers_adjusted_for_monotonicity": int(changed.any(axis=1).sum()),
        "interval_level": params.probabilities.interval_level,
    }
    if params.data.true_probabilities is not None:
        truth = read_table(params.path(params.data.true_probabilities))
        metrics["vs_truth"] = table_vs_truth(segment_table, truth, list(params.data.segment_columns), arms)
    write_parquet(customer_probs, layout.customer_probabilities)
    write_csv(segment_table, layout.segment_probabilities)
    write_json(metrics, modeling_outputs(layout)["probabilities_metrics"])
    return {"customers": metrics["customers"], "segments": metrics["segments"], **({"vs_truth": metrics["vs_truth"]["weighted_mae"]} if "vs_truth" in metrics else {})}
