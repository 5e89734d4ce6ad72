"""Runners of the customer-journey stages: read through the catalog, call offerflow.journey, write.

  journey_simulate  the testbed's log (example only; a user's log is an input, never written)
  journey_validate  the log against expectations/journey_log.json, then its structure (every step, waves)
  journey_train     fitted Q iteration, the look-alike baselines and the one-step optimizer, all tuned to
                    the budget on the training customers
  journey_evaluate  off-policy estimates on the held-out customers (and the testbed's Monte Carlo truth);
                    the publish gate: fitted Q against the best baseline, paired per customer
  journey_publish   the chosen policy's next action per customer, through the same publishing layer
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.io import read_json, significant, write_csv, write_json, write_parquet, write_with

if TYPE_CHECKING:
    import pandas as pd

LEARNED = "fitted_q"


def read_log(catalog: Catalog) -> pd.DataFrame:
    from offerflow.io import read_table

    return read_table(catalog.path("journey_log"))


def run_journey_simulate(params: Params) -> dict:
    from offerflow.journey.study import simulate_journey_log

    log = simulate_journey_log(params.journey)
    write_csv(log, Catalog(params).path("simulated_journey_log"))
    return {"rows": int(len(log)), "customers": int(log[params.journey.log.customer_id].nunique())}


def run_journey_validate(params: Params) -> dict:
    """The suite (names from journey.log), then the structure a single-table suite cannot see."""
    from offerflow.journey.journey_log import journeys_from_log
    from offerflow.validation.report import DatasetInput, display_path, raise_on_failures, summarize, validate_datasets

    catalog = Catalog(params)
    path = catalog.path("journey_log")
    reports = validate_datasets([DatasetInput("journey_log", path, display_path(path, params.root))], params)
    summary = summarize(reports)
    write_json(summary, catalog.path("journey_validation"))
    raise_on_failures(reports)
    journeys_from_log(read_log(catalog), params.journey)  # every step, offers only at campaign steps, ...
    return {"success": summary["success"], "rows": summary["datasets"]["journey_log"]["rows"]}


def run_journey_train(params: Params) -> dict:
    import joblib

    from offerflow.journey.study import train_journey_models

    catalog = Catalog(params)
    models = train_journey_models(read_log(catalog), params.journey)
    write_with(catalog.path("journey_models"), lambda tmp: joblib.dump(models, tmp))
    tuning = {name: {key: value for key, value in info.items() if isinstance(value, (int, float, bool, str))}
              for name, info in models.trained.tuning.items()}
    write_json({"tuning": tuning, "policies": list(models.policies)}, catalog.path("journey_train_metrics"))
    return {"policies": list(models.policies)}


def run_journey_evaluate(params: Params) -> dict:
    import joblib

    from offerflow.journey.figures import plot_action_shares, plot_policy_values
    from offerflow.journey.study import evaluate_journey_models, evaluation_metrics

    catalog, config = Catalog(params), params.journey
    log, models = read_log(catalog), joblib.load(catalog.path("journey_models"))
    evaluation = evaluate_journey_models(log, models, config)
    decision = gate_journey_policies(params, log, models)
    metrics = {**evaluation_metrics(evaluation), "gate": decision.as_dict()}
    write_csv(evaluation.table, catalog.path("journey_evaluation_table"))
    write_json(significant(metrics), catalog.path("journey_metrics"))
    shares = evaluation.action_shares
    if shares is None:  # no testbed: the learned policy's actions on the log's held-out customers are not simulated
        import pandas as pd

        shares = pd.DataFrame(columns=["step", "action", "share"])
    write_csv(shares, catalog.path("journey_action_shares"))
    plot_policy_values(evaluation.table, catalog.path("journey_values_figure"))
    plot_action_shares(shares, list(config.actions), catalog.path("journey_actions_figure"))
    if not decision.candidate_published and params.evaluate.gate.fallback == "nothing":
        from offerflow.errors import GateRefusedError

        raise GateRefusedError(f"journey gate: {decision.reason}; nothing was published (evaluate.gate.fallback: nothing)")
    return {"published": decision.published, "gate": decision.reason}


def gate_journey_policies(params: Params, log: pd.DataFrame, models):
    """Fitted Q against every baseline on the held-out customers: paired per-customer doubly robust terms, the same
    intervals, lower bounds and gate as the one-step plans."""
    import numpy as np

    from offerflow.evaluation.baselines import NamedPolicy  # noqa: F401 - the roles the gate knows
    from offerflow.evaluation.gate import PolicyEvaluation, bound_settings, decide_publication
    from offerflow.evaluation.off_policy import estimate_means
    from offerflow.journey.evaluation import policy_on_log
    from offerflow.journey.sequential_ope import cumulative_weights, doubly_robust_terms
    from offerflow.journey.study import split_log

    _, held_out = split_log(log, params.journey)
    behaviour = held_out.behaviour_probability.T
    terms = {}
    for name, policy in models.policies.items():
        on_log = policy_on_log(held_out, policy, models.dr_models.get(name))
        weights = cumulative_weights(on_log.target, behaviour)
        terms[name] = doubly_robust_terms(held_out.value.T, weights, on_log.value_logged, on_log.value_expected)
    gate = params.evaluate.gate.model_copy(update={"unit": "USD", "fallback": "best_baseline"})
    settings = bound_settings(gate)
    values = estimate_means(terms, {}, "dr", settings)
    differences = estimate_means({name: terms[LEARNED] - terms[name] for name in terms if name != LEARNED}, {}, "dr", settings)
    evaluations = [
        PolicyEvaluation(name, name.replace("_", " "), "candidate" if name == LEARNED else "baseline", "",
                         values[name], versus_candidate=differences.get(name))
        for name in terms
    ]
    return decide_publication(evaluations, gate)


def run_journey_publish(params: Params) -> dict:
    """The next action of every customer under the policy the gate chose (at the campaign's start for a testbed)."""
    import joblib
    import numpy as np
    import pandas as pd

    from offerflow.journey.next_action import next_best_actions
    from offerflow.stages.scenario_publish import publish_scenario

    catalog, config = Catalog(params), params.journey
    models = joblib.load(catalog.path("journey_models"))
    verdict = read_json(catalog.path("journey_metrics"))["gate"]
    chosen = models.policies[verdict["published"]]
    customers = campaign_start(read_log(catalog), config)
    if hasattr(chosen, "choose"):
        actions = next_best_actions(chosen, config, customers=customers)
    else:  # a baseline without value heads: its first action, valued by the learned policy's models
        actions = _baseline_actions(chosen, models, config, customers)
    write_parquet(actions, catalog.path("journey_next_actions"))
    assigned = pd.DataFrame({
        "customer_id": actions["customer_id"], "segment_id": 0, "offer": actions["offer"], "predicted_probability": np.nan,
        "expected_cost": actions["expected_cost"], "expected_value": actions["expected_value"],
    })
    settings = {"scenario": "journey", "policy": verdict["published"], "gate": {"published": verdict["published"],
                                                                                  "reason": verdict["reason"]}}
    inputs = {"models": "journey_models", "evaluation": "journey_metrics"}
    return publish_scenario(params, "journey", assigned, inputs, settings, "journey_assignments", "journey_publish_metrics")


def campaign_start(log: pd.DataFrame, config) -> pd.DataFrame:
    """Every customer of the log as at the start of the next campaign: id and features (the first decision)."""
    columns = [config.log.customer_id, *config.log.features]
    return log.sort_values([config.log.customer_id, config.log.step], kind="stable").drop_duplicates(config.log.customer_id)[columns]


def _baseline_actions(policy, models, config, customers) -> pd.DataFrame:
    """Next actions of a baseline: its most likely action, with the learned models' value and cost of it."""
    import numpy as np
    import pandas as pd

    from offerflow.journey.next_action import current_states

    ids, now, features = current_states(config, None, customers)
    wave = config.decision_steps.index(now)
    choice = policy.probabilities(wave, features).argmax(axis=1)
    value, cost = models.dr_models[LEARNED].predict(wave, features)
    rows = np.arange(len(ids))
    table = pd.DataFrame({"customer_id": ids, "offer": np.array(config.actions, dtype=object)[choice],
                          "expected_value": value[rows, choice], "expected_cost": cost[rows, choice]})
    return table.sort_values("customer_id", kind="stable").reset_index(drop=True)
