"""Runner of the evaluate stage: the plan, simple baselines and the incumbent valued on held-out history; the gate.

The held-out customers' history was never seen by training (evaluate.holdout), so the doubly robust
estimates here are honest. The gate's verdict is written for publish (which publishes the candidate, or
the best baseline, drawn one offer per customer within the candidate's spend) and for people
(reports/policy_evaluation.json, a plot, the CLI summary). With `evaluate.gate.fallback: nothing` a
candidate that fails the gate stops the run here with exit 5, after the reports are written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.errors import InputDataError
from offerflow.io import read_table, write_csv, write_json, write_parquet
from offerflow.schema import ARM, CONVERTED, CUSTOMER_ID, OFFER, prob_columns
from offerflow.stages.inputs import customers_with_segments, read_history

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def candidate_policy(params: Params, catalog: Catalog, customers: pd.DataFrame) -> np.ndarray:
    """The plan publish.source names, as one row of offer probabilities per customer."""
    import numpy as np

    from offerflow.evaluation.baselines import customer_plan_policy

    arms = params.arms.names
    if params.publish.source == "customer_plan":
        plan = read_table(catalog.path("customer_plan"))
        offers = customers[[CUSTOMER_ID]].merge(plan[[CUSTOMER_ID, OFFER]], on=CUSTOMER_ID, how="left")[OFFER]
        if offers.isna().any():
            raise InputDataError(f"{catalog.relative('customer_plan')}: no offer for {int(offers.isna().sum())} customers")
        return customer_plan_policy(offers.to_numpy(), arms)
    plan = read_table(catalog.path("segment_plan"))
    columns = list(params.data.segment_columns)
    shares = plan.pivot_table(index=columns, columns=OFFER, values="share", aggfunc="sum", fill_value=0.0)
    shares = shares.reindex(columns=arms, fill_value=0.0).reset_index()
    joined = customers[columns].merge(shares, on=columns, how="left")
    if joined[arms].isna().any().any():
        raise InputDataError(f"{catalog.relative('segment_plan')}: customers in segments the plan does not cover")
    return joined[arms].to_numpy(dtype=float) / joined[arms].to_numpy(dtype=float).sum(axis=1, keepdims=True)


def incumbent_policy(params: Params, customers: pd.DataFrame) -> tuple[str, np.ndarray] | None:
    """The current publication in the target as per-customer offers (customers it did not cover: control)."""
    from offerflow.evaluation.baselines import customer_plan_policy
    from offerflow.publish.target import open_store, resolve_target

    target = resolve_target(params)
    if target.kind == "sqlite" and not params.path(params.publish.sqlite_path).exists():
        return None
    with open_store(target) as store:
        if not store.exists():
            return None
        run_id = store.current_run_id()
        if run_id is None:
            return None
        published = store.read_assignments(run_id)
    lookup = dict(zip(published[CUSTOMER_ID].astype(str), published[OFFER].astype(str)))
    offers = [lookup.get(str(customer), params.arms.control) for customer in customers[CUSTOMER_ID]]
    return run_id, customer_plan_policy(offers, params.arms.names)


def held_out_log(params: Params, catalog: Catalog, customers: pd.DataFrame):
    """The held-out history rows of known customers, with the logging propensity of the arm each received."""
    import joblib
    import numpy as np

    from offerflow.evaluation.holdout import split_history
    from offerflow.evaluation.off_policy import design_propensity, logged_arm_propensity
    from offerflow.evaluation.policies import HeldOutLog
    from offerflow.uplift.model import training_frame

    _, held_out = split_history(read_history(catalog), CUSTOMER_ID, params.evaluate.holdout)
    position = {customer: row for row, customer in enumerate(customers[CUSTOMER_ID])}
    known = held_out[CUSTOMER_ID].map(position)
    held_out = held_out.loc[known.notna()].reset_index(drop=True)
    if len(held_out) < 2:
        raise InputDataError(
            f"{catalog.relative('history')}: fewer than two held-out history rows belong to customers of "
            f"{catalog.relative('customers')} (evaluate.holdout.fraction {params.evaluate.holdout.fraction})"
        )
    arms = params.arms.names
    arm_index = held_out[ARM].astype(str).map({arm: j for j, arm in enumerate(arms)}).to_numpy(dtype=np.int64)
    propensity_config = params.train.propensity
    floor = None
    if propensity_config.source == "logged":
        propensity = held_out[propensity_config.column].to_numpy(dtype=float)
    elif propensity_config.source == "uniform":
        propensity = design_propensity(arm_index, n_arms=len(arms))
    else:  # the propensity model fitted with the learner, on the training customers only
        model = joblib.load(catalog.path("model"))
        frame = training_frame(held_out, customers, list(model.features))
        matrix = model.propensity.predict(model.encoder.transform(frame[model.features]))
        propensity = logged_arm_propensity(matrix, arm_index)
        floor = min(float(propensity_config.clip[0]), float(propensity.min()))
    return HeldOutLog(
        customer_row=held_out[CUSTOMER_ID].map(position).to_numpy(dtype=np.int64),
        arm_index=arm_index,
        converted=held_out[CONVERTED].to_numpy(dtype=float),
        propensity=propensity,
        customer_ids=held_out[CUSTOMER_ID].to_numpy(),
        min_propensity=floor,
    )


def heuristics_for(params: Params, customers: pd.DataFrame) -> list:
    from offerflow.evaluation.baselines import Heuristic, heuristic_score

    return [
        Heuristic(config.name.replace(" ", "_"), config.name, heuristic_score(customers, config), config.descending)
        for config in params.evaluate.baselines.heuristics
    ]


def run_evaluate(params: Params) -> dict:
    import numpy as np

    from offerflow.evaluation.gate import plot_policy_values, policy_frame, policy_table
    from offerflow.evaluation.policies import Economics, draw_assignment, evaluate_candidate, refusal

    catalog = Catalog(params)
    arms = params.arms.names
    customers, _ = customers_with_segments(catalog)
    probabilities = read_table(catalog.path("customer_probabilities"))
    predicted = customers[[CUSTOMER_ID]].merge(probabilities, on=CUSTOMER_ID, how="left")[prob_columns(arms)]
    predicted = predicted.to_numpy(dtype=float)
    economics = Economics(
        control=arms.index(params.arms.control),
        coupon=np.array([params.arms.coupon_cost[arm] for arm in arms]),
        objective=params.optimize.objective,
        value_per_conversion=params.optimize.value_per_conversion,
        contact=np.array([params.arms.contact(arm) for arm in arms]),
    )
    candidate = candidate_policy(params, catalog, customers)
    incumbent = incumbent_policy(params, customers)
    log = held_out_log(params, catalog, customers)
    result = evaluate_candidate(
        candidate, predicted, log, economics, params.evaluate, heuristics_for(params, customers), arms, incumbent
    )
    decision = result.decision
    method = params.evaluate.gate.method
    expected_cost = economics.expected_cost(predicted)
    chosen = next(p for p in result.policies if p.name == decision.published)
    spend_cap = float((candidate * expected_cost).sum())
    # what publish uses when the gate falls back: the chosen policy drawn one offer per customer within the spend
    fallback = draw_assignment(chosen.matrix, expected_cost, economics.control, spend_cap, params.evaluate.baselines.seed)
    rows = np.arange(len(customers))
    write_parquet(
        customers[[CUSTOMER_ID]].assign(
            **{OFFER: np.asarray(arms, dtype=object)[fallback], "predicted_probability": predicted[rows, fallback],
               "expected_cost": expected_cost[rows, fallback]}
        ),
        catalog.path("gate_plan"),
    )
    table = policy_table(result.evaluations, method)
    headline = headline_metrics(result, log, params, result.refused, incumbent[0] if incumbent else None)
    write_json(headline, catalog.path("policy_evaluation"))
    write_json({"decision": decision.as_dict(), "policies": table, "held_out": headline["held_out"]},
               catalog.path("policy_evaluation_details"))
    write_csv(policy_frame(result.evaluations, method), catalog.path("policy_evaluation_plot"))
    if params.evaluate.figures:
        unit = "incremental conversions" if economics.unit == "conversions" else "USD"
        plot_policy_values(result.evaluations, catalog.path("policy_evaluation_figure"), f"{unit} per 1,000 customers")
    else:
        catalog.path("policy_evaluation_figure").unlink(missing_ok=True)
    if result.refused:
        raise refusal(result)
    return headline


def headline_metrics(result, log, params: Params, refused: bool, incumbent_id: str | None) -> dict:
    """The dozen numbers a person compares across runs (DVC metrics); details live beside them."""
    decision = result.decision
    candidate = next(e for e in result.evaluations if e.role == "candidate")
    customers = int(len(set(log.customer_ids.tolist())))
    return {
        "published": "nothing" if refused else decision.published,
        "candidate_published": decision.candidate_published,
        "reason": decision.reason if not refused else decision.reason.split("; published")[0] + "; nothing published",
        "best_competitor": decision.best_competitor,
        "incumbent_run_id": incumbent_id,
        "difference": decision.difference,
        "difference_ci": [decision.ci_low, decision.ci_high],
        "lower_bound": decision.lower_bound,
        "candidate_value": round(candidate.value.value, 6),
        "candidate_gain_over_nobody": None if candidate.over_reference is None else round(candidate.over_reference.value, 6),
        "estimator": decision.estimator,
        "lower_bound_method": decision.method,
        "unit": decision.unit + " per customer",
        "held_out": {
            "method": "held-out customers (never seen by training or model selection)",
            "fraction": params.evaluate.holdout.fraction,
            "seed": params.evaluate.holdout.seed,
            "rows": int(len(log.arm_index)),
            "customers": customers,
            "propensity": params.train.propensity.source,
        },
    }
