"""Runner of the evaluate stage: the plan, simple baselines and the incumbent valued on held-out history; the gate.

The held-out customers' history was never seen by training (evaluate.holdout), so the doubly robust
estimates here are honest. The gate's verdict is written for publish (which publishes the candidate, or
the best baseline, drawn one offer per customer within the candidate's spend) and for people
(reports/policy_evaluation.json, a plot, the CLI summary). With `evaluate.gate.fallback: nothing` a
candidate that fails the gate stops the run here with exit 5, after the reports are written.

When the customers file is a new batch (evaluate.population, offerflow.evaluation.population), the plan rule
is re-applied to the held-out history customers and valued there; the policy the gate chooses is then built
for the batch at the candidate's spend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.errors import InputDataError
from offerflow.evaluation.population import CUSTOMERS, PopulationChoice, choose_population, held_out_customers_frame
from offerflow.io import read_table, write_csv, write_json, write_parquet
from offerflow.schema import ARM, CONVERTED, CUSTOMER_ID, OFFER, prob_columns
from offerflow.stages.inputs import customers_with_segments, read_history, read_truth

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def candidate_policy(params: Params, catalog: Catalog, customers: pd.DataFrame) -> np.ndarray:
    """The plan publish.source names, as one row of offer probabilities per customer."""
    from offerflow.evaluation.baselines import customer_plan_policy

    if params.publish.source == "customer_plan":
        plan = read_table(catalog.path("customer_plan"))
        offers = customers[[CUSTOMER_ID]].merge(plan[[CUSTOMER_ID, OFFER]], on=CUSTOMER_ID, how="left")[OFFER]
        if offers.isna().any():
            raise InputDataError(f"{catalog.relative('customer_plan')}: no offer for {int(offers.isna().sum())} customers")
        return customer_plan_policy(offers.to_numpy(), params.arms.names)
    return segment_plan_policy(params, catalog, customers, uncovered="fail")


def segment_plan_policy(params: Params, catalog: Catalog, frame: pd.DataFrame, uncovered: str) -> np.ndarray:
    """The segment plan's shares for every row of `frame` by its segment columns. Rows in segments the plan
    does not cover fail (uncovered="fail") or get the control offer (uncovered="control": the rule never
    contacts customers of segments it has never seen)."""
    import numpy as np

    arms = params.arms.names
    plan = read_table(catalog.path("segment_plan"))
    columns = list(params.data.segment_columns)
    shares = plan.pivot_table(index=columns, columns=OFFER, values="share", aggfunc="sum", fill_value=0.0)
    shares = shares.reindex(columns=arms, fill_value=0.0).reset_index()
    joined = frame[columns].merge(shares, on=columns, how="left")
    missing = joined[arms].isna().any(axis=1).to_numpy()
    if missing.any() and uncovered == "fail":
        raise InputDataError(f"{catalog.relative('segment_plan')}: customers in segments the plan does not cover")
    matrix = joined[arms].to_numpy(dtype=float)
    matrix[missing] = np.eye(len(arms))[arms.index(params.arms.control)]
    return matrix / matrix.sum(axis=1, keepdims=True)


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


def held_out_log(params: Params, catalog: Catalog, customers: pd.DataFrame, held_out: pd.DataFrame):
    """The held-out history rows of `customers`, with the logging propensity of the arm each received."""
    import joblib
    import numpy as np

    from offerflow.evaluation.off_policy import design_propensity, logged_arm_propensity
    from offerflow.evaluation.policies import HeldOutLog
    from offerflow.uplift.model import training_frame

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


@dataclass
class Population:
    """The customers the policies are valued on, their predicted probabilities and the candidate for them."""

    choice: PopulationChoice
    customers: pd.DataFrame
    predicted: np.ndarray
    candidate: np.ndarray


def rule_columns(params: Params) -> list[str]:
    """Customer columns the plan rule and the baselines read (features, segments, heuristics, value)."""
    columns = [*params.train.features, *params.data.segment_columns]
    columns += [config.column for config in params.evaluate.baselines.heuristics]
    if params.optimize.value_column:
        columns.append(params.optimize.value_column)
    return list(dict.fromkeys(columns))


def evaluation_population(params: Params, catalog: Catalog, customers: pd.DataFrame, predicted: np.ndarray,
                          candidate: np.ndarray, held_out: pd.DataFrame) -> Population:
    """The customers file with its plan, or the held-out customers with the plan rule re-applied to them."""
    import joblib

    from offerflow.evaluation.baselines import customer_plan_policy
    from offerflow.segments import attach_segment_ids, segment_catalog
    from offerflow.stages.allocate import allocate_customers, customer_constraints, excluded_customers
    from offerflow.uplift.probabilities import predict_customer_probabilities

    needed = rule_columns(params)
    choice = choose_population(params.evaluate.population, held_out[CUSTOMER_ID], customers[CUSTOMER_ID],
                               list(held_out.columns), needed)
    if choice.kind == CUSTOMERS:
        return Population(choice, customers, predicted, candidate)
    frame = held_out_customers_frame(held_out, [*needed, *filter(None, [params.data.exclude_column])])
    columns = list(params.data.segment_columns)
    frame = attach_segment_ids(frame, segment_catalog(frame, columns, reference_table=read_truth(catalog)), columns)
    model = joblib.load(catalog.path("model"))
    scored = predict_customer_probabilities(model, frame, params.probabilities.clip, params.probabilities.monotone_arms)
    scored_matrix = scored[prob_columns(params.arms.names)].to_numpy(dtype=float)
    if params.publish.source == "segment_plan":
        return Population(choice, frame, scored_matrix, segment_plan_policy(params, catalog, frame, uncovered="control"))
    scale = len(frame) / len(customers)
    exclude = params.data.exclude_column
    excluded = excluded_customers(params, catalog, frame[CUSTOMER_ID], frame) if (
        params.data.exclude is not None or (exclude is not None and exclude in frame.columns)) else None
    budget = None if params.optimize.budget is None else params.optimize.budget * scale
    allocation, _ = allocate_customers(params, scored, frame, customer_constraints(params, excluded, scale), budget)
    offers = [params.arms.names[d] for d in allocation.offer]
    return Population(choice, frame, scored_matrix, customer_plan_policy(offers, params.arms.names))


def publication_policy(params: Params, name: str, result, population: Population, customers: pd.DataFrame,
                       candidate: np.ndarray, expected_cost: np.ndarray, control: int) -> np.ndarray:
    """The chosen policy for the customers file: as valued, or (valued on held-out customers) rebuilt for them."""
    from offerflow.evaluation.baselines import build_baselines, target_of

    if name == "candidate":
        return candidate
    if population.choice.kind == CUSTOMERS:
        return next(p.matrix for p in result.policies if p.name == name)
    if name == "incumbent":
        return incumbent_policy(params, customers)[1]
    target = target_of(candidate, expected_cost, control, params.evaluate.baselines.match)
    rebuilt = build_baselines(expected_cost, control, target, result.arm_values, heuristics_for(params, customers),
                              params.evaluate.baselines.seed, params.arms.names)
    return next(p.matrix for p in rebuilt if p.name == name)


def run_evaluate(params: Params) -> dict:
    import numpy as np

    from offerflow.evaluation.gate import plot_policy_values, policy_frame, policy_table
    from offerflow.evaluation.holdout import split_history
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
    _, held_out = split_history(read_history(catalog), CUSTOMER_ID, params.evaluate.holdout)
    population = evaluation_population(params, catalog, customers, predicted, candidate, held_out)
    incumbent = incumbent_policy(params, population.customers)
    log = held_out_log(params, catalog, population.customers, held_out)
    result = evaluate_candidate(
        population.candidate, population.predicted, log, economics, params.evaluate,
        heuristics_for(params, population.customers), arms, incumbent,
    )
    decision = result.decision
    method = params.evaluate.gate.method
    expected_cost = economics.expected_cost(predicted)
    chosen = publication_policy(params, decision.published, result, population, customers, candidate, expected_cost,
                                economics.control)
    spend_cap = float((candidate * expected_cost).sum())
    # what publish uses when the gate falls back: the chosen policy drawn one offer per customer within the spend
    fallback = draw_assignment(chosen, expected_cost, economics.control, spend_cap, params.evaluate.baselines.seed)
    rows = np.arange(len(customers))
    write_parquet(
        customers[[CUSTOMER_ID]].assign(
            **{OFFER: np.asarray(arms, dtype=object)[fallback], "predicted_probability": predicted[rows, fallback],
               "expected_cost": expected_cost[rows, fallback]}
        ),
        catalog.path("gate_plan"),
    )
    table = policy_table(result.evaluations, method)
    headline = headline_metrics(result, log, params, result.refused, incumbent[0] if incumbent else None, population.choice)
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


def headline_metrics(result, log, params: Params, refused: bool, incumbent_id: str | None,
                     population: PopulationChoice) -> dict:
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
            "population": population.kind,
            "population_reason": population.reason,
            "customers_not_in_customers_file": population.unknown_customers,
        },
    }
