"""Train every policy of the study on the training customers, each tuned to the same budget.

Policies: fitted Q iteration (its cost multiplier tuned with a refit per trial), the one-step optimizer
(greedy on one-wave heads, multiplier tuned), the look-alike baselines (thresholds tuned) and random
offers (contact share tuned). Spend is measured in the testbed (`spend_source: simulation`, the same
simulated customers for every trial) or estimated from the training log by weighted per-decision
importance sampling (`spend_source: logs`, all a real log allows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from offerflow.journey.baselines import ScorePolicy, fit_response_models
from offerflow.journey.budget import TunedPolicy, tune_to_budget
from offerflow.journey.config import JourneyConfig
from offerflow.journey.fqi import GreedyQPolicy, fit_fitted_q, fit_last_wave, fit_one_step
from offerflow.journey.journey_log import DecisionData
from offerflow.journey.policies import Policy, RandomPolicy
from offerflow.journey.sequential_ope import cumulative_weights, weighted_per_decision
from offerflow.journey.simulator import simulate_journeys

SpendMeter = Callable[[Policy], float]
TUNING_SEED_OFFSET = 101  # simulated spend uses customers independent of the log and of the truth


def logged_action_probabilities(data: DecisionData, policy: Policy) -> np.ndarray:
    """(n, D) the policy's probability of each logged action in its logged state."""
    columns = []
    for wave in range(data.waves):
        probs = policy.probabilities(wave, data.features[wave])
        columns.append(probs[np.arange(data.customers), data.actions[wave]])
    return np.column_stack(columns)


def logged_spend(data: DecisionData, policy: Policy) -> float:
    """Weighted per-decision importance-sampling estimate of the policy's spend per customer."""
    weights = cumulative_weights(logged_action_probabilities(data, policy), data.behaviour_probability.T)
    return weighted_per_decision(data.cost.T, weights)


def simulated_spend(config: JourneyConfig, customers: int, seed: int) -> SpendMeter:
    def spend(policy: Policy) -> float:
        return float(simulate_journeys(config, policy, customers, seed).cost.sum(axis=1).mean())

    return spend


def spend_meter(config: JourneyConfig, train: DecisionData) -> SpendMeter:
    if config.budget.spend_source == "simulation":
        return simulated_spend(config, config.budget.simulation_customers, config.seed + TUNING_SEED_OFFSET)
    return lambda policy: logged_spend(train, policy)


@dataclass
class TrainedPolicies:
    policies: dict[str, Policy]
    tuning: dict[str, dict] = field(default_factory=dict)  # knob, spend measured while tuning, binding, trials


def _tune(config: JourneyConfig, build, spend_of: SpendMeter, low: float, high: float | None, label: str) -> TunedPolicy:
    budget = config.budget.per_customer
    if budget is None:
        policy = build(low)
        return TunedPolicy(policy, low, float(spend_of(policy)), binding=False, evaluations=[])
    return tune_to_budget(build, spend_of, budget, low, high, config.budget.tolerance,
                          config.budget.max_evaluations, f"journey policy {label}")


def train_fitted_q(config: JourneyConfig, train: DecisionData, spend_of: SpendMeter, seed: int) -> TunedPolicy:
    """Fitted Q iteration with its cost multiplier tuned to the budget (one refit per trial)."""
    actions = len(config.actions)
    last_wave = fit_last_wave(train, config.learn.q_model, seed)  # the same for every multiplier
    return _tune(config, lambda lam: fit_fitted_q(train, actions, lam, config.learn.q_model, seed, last_wave),
                 spend_of, 0.0, None, "fitted_q")


def train_baselines(config: JourneyConfig, train: DecisionData, spend_of: SpendMeter, seed: int) -> dict[str, TunedPolicy]:
    actions = len(config.actions)
    chosen = config.learn.baselines
    tuned: dict[str, TunedPolicy] = {}
    if "random" in chosen:
        # knob: the share of decisions without an offer, from uniform over all actions up to always none
        tuned["random"] = _tune(config, lambda abstain: RandomPolicy(actions, 1.0 - abstain), spend_of,
                                1.0 / actions, 1.0, "random")
    if {"propensity", "expected_value", "value_uplift"} & set(chosen):
        models = fit_response_models(train, actions, config.learn.response_model, seed)
        states = train.features.reshape(-1, train.features.shape[-1])
        for kind in ("propensity", "expected_value", "value_uplift"):
            if kind in chosen:
                low, high = ScorePolicy(models, kind, 0.0, kind).score_range(states)
                tuned[kind] = _tune(config, lambda tau, kind=kind: ScorePolicy(models, kind, tau, kind),
                                    spend_of, low, high, kind)
    if "one_step" in chosen:
        heads = fit_one_step(train, actions, config.learn.q_model, seed + 10)
        myopic = lambda lam: GreedyQPolicy(heads, lam, "one_step", heads_are_own_value=False)  # noqa: E731
        tuned["one_step"] = _tune(config, myopic, spend_of, 0.0, None, "one_step")
    return tuned


def train_journey_policies(
    config: JourneyConfig, train: DecisionData, spend_of: SpendMeter | None = None
) -> TrainedPolicies:
    """Fitted Q iteration plus the configured baselines, all at the same budget."""
    spend_of = spend_of or spend_meter(config, train)
    seed = config.seed
    tuned = {"fitted_q": train_fitted_q(config, train, spend_of, seed), **train_baselines(config, train, spend_of, seed)}
    return TrainedPolicies(
        policies={name: result.policy for name, result in tuned.items()},
        tuning={
            name: {"parameter": result.parameter, "tuning_spend": result.spend, "budget_binding": result.binding,
                   "trials": [list(trial) for trial in result.evaluations]}
            for name, result in tuned.items()
        },
    )
