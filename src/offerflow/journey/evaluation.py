"""Every policy's value: the truth by Monte Carlo in the testbed, and off-policy estimates from the log alone.

Truth: each policy runs on the same simulated customers with the same luck (common random numbers), so
values carry normal 95% intervals and differences between two policies are paired per customer.
Off-policy: on the held-out customers of the log, per-decision importance sampling, its weighted form and
the doubly robust estimator whose model is the policy's fitted Q (its own heads for fitted Q iteration,
fitted Q evaluation on the training customers for every other policy), each with an interval and a
high-confidence lower bound (`offerflow.journey.sequential_ope`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from offerflow.journey.config import JourneyConfig
from offerflow.journey.fqi import GreedyQPolicy, QModels, fit_q_evaluation
from offerflow.journey.journey_log import DecisionData
from offerflow.journey.policies import Policy, greedy_choice, one_hot
from offerflow.journey.sequential_ope import estimate_policy_value, normal_interval
from offerflow.journey.simulator import simulate_journeys

ONE_STEP_POLICIES = ("propensity", "expected_value", "value_uplift", "one_step")
TRUTH_SEED_OFFSET = 202  # truth customers are independent of the log's and of the tuning customers


def truth_seed(config: JourneyConfig) -> int:
    return config.seed + TRUTH_SEED_OFFSET


@dataclass(frozen=True)
class MonteCarloRun:
    """A policy simulated in the testbed: per-customer return, spend and purchases, actions at each wave."""

    returns: np.ndarray  # (n,) USD
    spend: np.ndarray  # (n,) USD
    purchases: np.ndarray  # (n,)
    decisions: np.ndarray  # (n, D) action index at each campaign step


def simulate_policies(
    config: JourneyConfig, policies: dict[str, Policy], customers: int, seed: int
) -> dict[str, MonteCarloRun]:
    """Every policy on the same customers with the same luck (common random numbers)."""
    runs = {}
    for name, policy in policies.items():
        journeys = simulate_journeys(config, policy, customers, seed)
        runs[name] = MonteCarloRun(
            returns=journeys.reward.sum(axis=1),
            spend=journeys.cost.sum(axis=1),
            purchases=journeys.purchase.sum(axis=1).astype(float),
            decisions=journeys.actions[:, config.decision_steps],
        )
    return runs


def truth_table(runs: dict[str, MonteCarloRun], level: float) -> pd.DataFrame:
    """True value and spend per customer of each policy, with normal intervals."""
    rows = []
    for name, run in runs.items():
        value, value_low, value_high = normal_interval(run.returns, level)
        spend, spend_low, spend_high = normal_interval(run.spend, level)
        rows.append({
            "policy": name, "true_value": value, "true_value_low": value_low, "true_value_high": value_high,
            "true_spend": spend, "true_spend_low": spend_low, "true_spend_high": spend_high,
            "purchases": float(run.purchases.mean()),
        })
    return pd.DataFrame(rows)


def paired_difference(first: MonteCarloRun, second: MonteCarloRun, level: float) -> dict[str, float]:
    """True value (and spend) of `first` minus `second`, paired per customer, with intervals."""
    mean, low, high = normal_interval(first.returns - second.returns, level)
    spend, spend_low, spend_high = normal_interval(first.spend - second.spend, level)
    return {"difference": mean, "low": low, "high": high,
            "spend_difference": spend, "spend_low": spend_low, "spend_high": spend_high}


def action_shares(run: MonteCarloRun, config: JourneyConfig) -> pd.DataFrame:
    """Share of customers getting each action at each campaign step (the learned sequencing)."""
    rows = []
    for wave, step in enumerate(config.decision_steps):
        counts = np.bincount(run.decisions[:, wave], minlength=len(config.actions)) / len(run.decisions)
        rows += [{"step": step, "action": name, "share": float(share)} for name, share in zip(config.actions, counts)]
    return pd.DataFrame(rows)


def model_of(policy: Policy, train: DecisionData, config: JourneyConfig, seed: int) -> QModels:
    """The doubly robust model of a policy: its own heads when it has them, else fitted Q evaluation."""
    if isinstance(policy, GreedyQPolicy) and policy.heads_are_own_value:
        return policy.models
    return fit_q_evaluation(train, len(config.actions), policy, config.learn.q_model, seed)


@dataclass(frozen=True)
class PolicyOnLog:
    """What the estimators need about one policy on logged customers, all (n, D)."""

    target: np.ndarray  # the policy's probability of each logged action
    value_logged: np.ndarray | None  # model value of the logged action (None: no model)
    value_expected: np.ndarray | None  # model value the policy expects in the logged state
    cost_logged: np.ndarray | None
    cost_expected: np.ndarray | None


def policy_on_log(data: DecisionData, policy: Policy, models: QModels | None) -> PolicyOnLog:
    """One model prediction per wave serves the target probabilities and both heads' values."""
    rows = np.arange(data.customers)
    target, value_logged, value_expected, cost_logged, cost_expected = [], [], [], [], []
    for wave in range(data.waves):
        features, logged = data.features[wave], data.actions[wave]
        if models is None:
            target.append(policy.probabilities(wave, features)[rows, logged])
            continue
        qv, qc = models.predict(wave, features)
        if isinstance(policy, GreedyQPolicy) and policy.models is models:  # its own heads: no second prediction
            probs = one_hot(greedy_choice(qv - policy.multiplier * qc), models.actions)
        else:
            probs = policy.probabilities(wave, features)
        target.append(probs[rows, logged])
        value_logged.append(qv[rows, logged])
        value_expected.append((probs * qv).sum(axis=1))
        cost_logged.append(qc[rows, logged])
        cost_expected.append((probs * qc).sum(axis=1))

    def stack(columns: list[np.ndarray]) -> np.ndarray | None:
        return np.column_stack(columns) if columns else None

    return PolicyOnLog(np.column_stack(target), stack(value_logged), stack(value_expected), stack(cost_logged),
                       stack(cost_expected))


@dataclass(frozen=True)
class OffPolicyResult:
    table: pd.DataFrame  # one row per estimator
    spend: pd.DataFrame  # doubly robust spend estimate


def off_policy_estimates(
    config: JourneyConfig, name: str, policy: Policy, held_out: DecisionData, models: QModels | None, seed: int
) -> OffPolicyResult:
    """PDIS, weighted PDIS and doubly robust value (and DR spend) of one policy from held-out log rows."""
    ev = config.evaluation
    on_log = policy_on_log(held_out, policy, models)
    behaviour = held_out.behaviour_probability.T
    common = dict(level=ev.interval_level, delta=ev.delta, bootstrap_samples=ev.bootstrap_samples,
                  split_share=ev.bound_split, seed=seed)
    value = estimate_policy_value(held_out.value.T, on_log.target, behaviour, on_log.value_logged,
                                  on_log.value_expected, config.reward_floor_per_wave, **common)
    table = pd.DataFrame([{"policy": name, **vars(estimate)} for estimate in value])
    spend_rows = []
    if models is not None:
        spend = estimate_policy_value(held_out.cost.T, on_log.target, behaviour, on_log.cost_logged,
                                      on_log.cost_expected, 0.0, **common)
        dr = next(item for item in spend if item.estimator == "doubly_robust")
        spend_rows.append({"policy": name, "estimated_spend": dr.estimate, "estimated_spend_low": dr.low,
                           "estimated_spend_high": dr.high})
    return OffPolicyResult(table, pd.DataFrame(spend_rows))


def evaluation_table(truth: pd.DataFrame, estimates: pd.DataFrame) -> pd.DataFrame:
    """Estimates next to the truth, with whether the interval covers it and the lower bound holds."""
    merged = estimates.merge(truth[["policy", "true_value", "true_value_low", "true_value_high", "true_spend"]],
                             on="policy", how="left")
    merged["interval_covers_truth"] = (merged["low"] <= merged["true_value"]) & (merged["true_value"] <= merged["high"])
    merged["lower_bound_holds"] = merged["lower_bound"] <= merged["true_value"]
    return merged


def best_one_step(truth: pd.DataFrame) -> str | None:
    """The one-step (look-alike or myopic) policy with the highest true value; None if the study has none."""
    candidates = truth[truth["policy"].isin(ONE_STEP_POLICIES)]
    if candidates.empty:
        return None
    return str(candidates.sort_values(["true_value", "policy"], ascending=[False, True]).iloc[0]["policy"])
