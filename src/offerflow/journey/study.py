"""The journey scenario end to end, as pure functions the stages and the flow call one by one.

    log = simulate_journey_log(config)                    # testbed only; a real log comes from a file
    models = train_journey_models(log, config)            # learn on one share of customers, tune budgets
    result = evaluate_journey_models(log, models, config) # truth (testbed) and off-policy estimates

No function here reads or writes files; `run_journey_study` chains the three for benchmarks and tests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from offerflow.errors import StaleInputError
from offerflow.journey.config import JourneyConfig
from offerflow.journey.evaluation import (
    action_shares,
    best_one_step,
    evaluation_table,
    model_of,
    off_policy_estimates,
    paired_difference,
    simulate_policies,
    truth_seed,
    truth_table,
)
from offerflow.journey.fqi import QModels
from offerflow.journey.journey_log import (
    DecisionData,
    behaviour_policy,
    decision_data,
    journey_log_frame,
    journeys_from_log,
    split_customers,
)
from offerflow.journey.learning import TrainedPolicies, train_journey_policies
from offerflow.journey.simulator import require_testbed, simulate_journeys

SPLIT_SEED_OFFSET = 303
OPE_SEED_OFFSET = 404


def simulate_journey_log(config: JourneyConfig) -> pd.DataFrame:
    """The example log: the behaviour policy run on `testbed.customers` customers."""
    journeys = simulate_journeys(config, behaviour_policy(config), require_testbed(config).customers, config.seed)
    return journey_log_frame(journeys, config)


def split_log(log: pd.DataFrame, config: JourneyConfig) -> tuple[DecisionData, DecisionData]:
    """Training and held-out customers of a log (the same split every time for the same seed)."""
    data = decision_data(journeys_from_log(log, config), config)
    return split_customers(data, config.learn.train_share, config.seed + SPLIT_SEED_OFFSET)


def data_fingerprint(data: DecisionData) -> str:
    """sha256 of the logged decisions and outcomes: evaluation refuses models trained on another log."""
    digest = hashlib.sha256()
    for array in (data.customer_id, data.actions, data.behaviour_probability, data.value, data.cost, data.features):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclass
class JourneyModels:
    """What the train stage keeps: tuned policies, their doubly robust models, the held-out customers' fingerprint."""

    trained: TrainedPolicies
    dr_models: dict[str, QModels]
    held_out_fingerprint: str

    @property
    def policies(self):
        return self.trained.policies


def train_journey_models(log: pd.DataFrame, config: JourneyConfig) -> JourneyModels:
    """Every policy learned on the training customers and tuned to the budget, plus its doubly robust model."""
    train, held_out = split_log(log, config)
    trained = train_journey_policies(config, train)
    dr_models = {name: model_of(policy, train, config, config.seed + 7) for name, policy in trained.policies.items()}
    return JourneyModels(trained, dr_models, data_fingerprint(held_out))


@dataclass
class JourneyEvaluation:
    table: pd.DataFrame  # one row per policy and estimator, next to the truth (when a testbed exists)
    policies: pd.DataFrame  # one row per policy: knob, true value and spend, estimated spend
    comparison: dict = field(default_factory=dict)  # fitted Q minus the best one-step policy (testbed)
    action_shares: pd.DataFrame | None = None  # the learned policy's actions by campaign step (testbed)


def evaluate_journey_models(log: pd.DataFrame, models: JourneyModels, config: JourneyConfig) -> JourneyEvaluation:
    """Off-policy estimates on the held-out customers; with a testbed also the truth, fitted Q's margin over
    the best one-step policy (paired, same customers) and its actions by campaign step."""
    _, held_out = split_log(log, config)
    if data_fingerprint(held_out) != models.held_out_fingerprint:
        raise StaleInputError("journey models were trained on another log or split: retrain before evaluating")
    estimates, spends = [], []
    for position, (name, policy) in enumerate(models.policies.items()):
        result = off_policy_estimates(config, name, policy, held_out, models.dr_models.get(name),
                                      config.seed + OPE_SEED_OFFSET + position)
        estimates.append(result.table)
        spends.append(result.spend)
    estimates_frame = pd.concat(estimates, ignore_index=True)
    tuning = pd.DataFrame([{"policy": name, "knob": info["parameter"], "tuning_spend": info["tuning_spend"],
                            "budget_binding": info["budget_binding"]} for name, info in models.trained.tuning.items()])
    per_policy = tuning.merge(pd.concat(spends, ignore_index=True), on="policy", how="left")
    if config.testbed is None:
        return JourneyEvaluation(estimates_frame, per_policy)
    level = config.evaluation.interval_level
    runs = simulate_policies(config, models.policies, config.evaluation.monte_carlo_customers, truth_seed(config))
    truth = truth_table(runs, level)
    rival = best_one_step(truth)
    comparison = {} if rival is None else {
        "policy": "fitted_q", "rival": rival, **paired_difference(runs["fitted_q"], runs[rival], level)
    }
    return JourneyEvaluation(
        table=evaluation_table(truth, estimates_frame),
        policies=per_policy.merge(truth, on="policy", how="left"),
        comparison=comparison,
        action_shares=action_shares(runs["fitted_q"], config),
    )


def evaluation_metrics(evaluation: JourneyEvaluation) -> dict:
    """JSON-ready summary for reports/journey_metrics.json: per policy value and spend, and the comparison."""
    columns = [c for c in ("knob", "tuning_spend", "estimated_spend", "true_value", "true_value_low",
                           "true_value_high", "true_spend") if c in evaluation.policies.columns]
    policies = {
        row["policy"]: {column: float(row[column]) for column in columns if pd.notna(row[column])}
        for row in evaluation.policies.to_dict("records")
    }
    estimates = {
        f"{row['policy']}/{row['estimator']}": {
            "estimate": float(row["estimate"]), "low": float(row["low"]), "high": float(row["high"]),
            "lower_bound": float(row["lower_bound"]),
        }
        for row in evaluation.table.to_dict("records")
    }
    comparison = {key: (float(value) if isinstance(value, (int, float, np.floating)) else value)
                  for key, value in evaluation.comparison.items()}
    return {"policies": policies, "off_policy": estimates, "fitted_q_vs_best_one_step": comparison}


def run_journey_study(config: JourneyConfig) -> tuple[pd.DataFrame, JourneyModels, JourneyEvaluation]:
    log = simulate_journey_log(config)
    models = train_journey_models(log, config)
    return log, models, evaluate_journey_models(log, models, config)
