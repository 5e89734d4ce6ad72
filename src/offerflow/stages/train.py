"""Runner of the train stage: compare learners out of fold, keep the best, refit; save model and reports."""

from __future__ import annotations

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.io import atomic_path, file_sha256, write_csv, write_json
from offerflow.schema import CUSTOMER_ID
from offerflow.stages.inputs import read_customers, read_history, read_truth


def training_columns(params: Params, customer_columns) -> list[str]:
    """Customer columns the train stage joins onto the history: features, segments, the heuristic's column."""
    columns = [*params.train.features, *params.data.segment_columns]
    heuristic = params.train.evaluation.heuristic
    if heuristic is not None and heuristic.column in customer_columns:
        columns.append(heuristic.column)
    return list(dict.fromkeys(columns))


def selection_economics(params: Params, n_customers: int):
    """Budget per customer and the arms' costs for the policy_value criterion (None for the other criteria)."""
    from offerflow.uplift.selection import SelectionEconomics

    if params.train.selection_criterion != "policy_value":
        return None
    arms = params.arms
    return SelectionEconomics(
        budget_per_customer=params.optimize.budget / max(n_customers, 1),
        coupon_cost=tuple(float(arms.coupon_cost[arm]) for arm in arms.names),
        contact_cost=tuple(float(arms.contact_cost.get(arm, 0.0)) for arm in arms.names),
    )


def run_train(params: Params) -> dict:
    import joblib

    from offerflow.evaluation.holdout import split_history
    from offerflow.uplift.model import fit_report, training_frame
    from offerflow.uplift.training import train_and_evaluate

    catalog = Catalog(params)
    customers = read_customers(catalog)
    history, held_out = split_history(read_history(catalog), CUSTOMER_ID, params.evaluate.holdout)
    history = training_frame(history, customers, training_columns(params, customers.columns))
    arms, control = params.arms.names, params.arms.control
    result = train_and_evaluate(
        history, list(params.train.features), arms, control, params.train, params.data.segment_columns,
        economics=selection_economics(params, len(customers)),
    )
    model = result.model
    model.metadata["history_sha256"] = file_sha256(catalog.path("history"))
    model.metadata["customers_sha256"] = file_sha256(catalog.path("customers"))
    report = fit_report(model, history)
    metrics = {"rows": report["rows"], "held_out_rows": int(len(held_out)), "mae_vs_truth": report.get("mae_vs_truth"),
               "fit": report, **result.metrics}
    if params.train.decision_quality.enabled:
        chosen = {key: model.metadata[key] for key in ("learner", "base_model", "model_params")}
        metrics["decision_quality"] = train_decision_quality(params, catalog, customers, params.train.model_copy(update=chosen))
    with atomic_path(catalog.path("model")) as tmp:
        joblib.dump(model, tmp)
    write_json({**model.metadata, "selection": result.metrics["selection"], "fit": report}, catalog.path("model_metadata"))
    write_json(metrics, catalog.path("train_metrics"))
    write_csv(result.curves["cumulative_gain"], catalog.path("train_gain_curve"))
    write_csv(result.curves["qini"], catalog.path("train_qini_curve"))
    figure = catalog.path("train_figure")
    if params.train.evaluation.figures:
        from offerflow.uplift.figures import plot_uplift_curves

        title = f"{model.metadata['name']}: out-of-fold uplift curves"
        plot_uplift_curves(result.curves, [a for a in arms if a != control], title, figure)
    else:
        figure.unlink(missing_ok=True)  # a switched-off figure must not show an old run
    return {
        "rows": report["rows"],
        "learner": model.metadata["name"],
        "mae_vs_truth": report.get("mae_vs_truth"),
        "qini": {arm: entry["qini"]["model"] for arm, entry in result.metrics["evaluation"]["arms"].items()},
        "model_beats_heuristic": result.metrics["model_beats_heuristic"],
        "warnings": result.metrics.get("warnings", []),
    }


def train_decision_quality(params: Params, catalog: Catalog, customers, config) -> dict:
    """The decision-quality simulation for the chosen learner's train config (needs the true table)."""
    from offerflow.uplift.decision_quality import decision_quality

    check = params.train.decision_quality
    seeds = [params.simulate.seed + k for k in range(check.seeds)]
    return decision_quality(
        customers,
        read_truth(catalog),
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
        simulation=params.simulate,
    )
