"""Fitted Q iteration over campaign waves, with a budget enforced by a cost multiplier.

Finite horizon, so the iteration runs backwards once: the model of the last wave regresses the wave's
reward on (state, action); the model of wave k regresses the wave's reward plus the next wave's value
under the policy, Q_k(s, a) = E[r_k + V_{k+1}(s') | s, a]. Every wave has two heads fitted on the
same rows: value (revenue - cost) and cost (spend), both following the same policy from the next wave
on. The learned policy is greedy on value - lambda x cost, i.e. on revenue - (1 + lambda) x cost (the
Lagrangian of "maximize value subject to expected spend <= budget", as in budget-constrained bidding);
lambda is tuned by `offerflow.journey.budget`. With lambda fixed, the heads are the policy's own value
and spend from each wave on, which is what publishing and the doubly robust estimator need.

The same backward pass with a given policy at the next wave instead of the greedy one is fitted Q
evaluation (FQE): the model of any policy's value, for doubly robust off-policy estimates. Cut to one
wave (no next-wave term), it is the one-step model the myopic optimizer uses.

The backward pass is written here because the regressors are the point (LightGBM or scikit-learn, as
everywhere in offerflow): offline-RL libraries (d3rlpy) fit neural Q functions with torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from offerflow.journey.config import ModelConfig
from offerflow.journey.journey_log import DecisionData
from offerflow.journey.models import TreeModel, every_action, fit_regressor, with_action
from offerflow.journey.policies import Policy, greedy_choice, one_hot

NextPolicy = Callable[[int, np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (wave, features, qv, qc) -> probs


@dataclass
class QModels:
    """Per-wave value and cost heads: expected value / spend from the wave to the campaign's end."""

    value: list[TreeModel]
    cost: list[TreeModel]
    actions: int
    seconds_per_wave: list[float]

    def predict(self, wave: int, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, A) value and cost of every action for customers in state `features` at `wave`."""
        rows = every_action(features, self.actions)
        shape = (len(features), self.actions)
        spend = np.maximum(self.cost[wave].predict(rows), 0.0)  # spend is never negative; trees may dip below
        return self.value[wave].predict(rows).reshape(shape), spend.reshape(shape)


@dataclass
class GreedyQPolicy:
    """Greedy on value - multiplier x cost of its Q heads (fitted Q iteration, or one-step when myopic)."""

    models: QModels
    multiplier: float
    name: str = "fitted_q"
    heads_are_own_value: bool = True  # False for one-step heads: they ignore what the policy does later

    def choose(self, wave: int, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Chosen action per customer, with its expected value and expected cost."""
        qv, qc = self.models.predict(wave, features)
        choice = greedy_choice(qv - self.multiplier * qc)
        rows = np.arange(len(features))
        return choice, qv[rows, choice], qc[rows, choice]

    def probabilities(self, wave: int, features: np.ndarray) -> np.ndarray:
        return one_hot(self.choose(wave, features)[0], self.models.actions)


def fit_backward(
    data: DecisionData,
    actions: int,
    model: ModelConfig,
    seed: int,
    next_policy: NextPolicy | None,
    last_wave: tuple[TreeModel, TreeModel] | None = None,
) -> QModels:
    """Backward pass over the waves; next_policy=None fits one-wave (myopic) heads.

    The last wave's heads regress its own reward only, whatever the policy: pass them as `last_wave`
    (from `fit_last_wave`, same seeds, so the result is identical) to skip refitting them.
    """
    waves = data.waves
    value: list[TreeModel] = [None] * waves  # type: ignore[list-item]
    cost: list[TreeModel] = [None] * waves  # type: ignore[list-item]
    seconds = [0.0] * waves
    for k in range(waves - 1, -1, -1):
        started = time.perf_counter()
        target_value, target_cost = data.value[k].copy(), data.cost[k].copy()
        if next_policy is not None and k + 1 < waves:
            following = data.features[k + 1]
            qv, qc = QModels(value, cost, actions, seconds).predict(k + 1, following)
            probs = next_policy(k + 1, following, qv, qc)
            target_value += (probs * qv).sum(axis=1)
            target_cost += (probs * qc).sum(axis=1)
        if k == waves - 1 and last_wave is not None:
            value[k], cost[k] = last_wave
        else:
            x = with_action(data.features[k], data.actions[k])
            value[k] = fit_regressor(model, seed + 2 * k, x, target_value)
            cost[k] = fit_regressor(model, seed + 2 * k + 1, x, target_cost)
        seconds[k] = time.perf_counter() - started
    return QModels(value=value, cost=cost, actions=actions, seconds_per_wave=seconds)


def fit_last_wave(data: DecisionData, model: ModelConfig, seed: int) -> tuple[TreeModel, TreeModel]:
    """The last wave's value and cost heads (what `fit_backward` fits there with the same seed)."""
    k = data.waves - 1
    x = with_action(data.features[k], data.actions[k])
    return fit_regressor(model, seed + 2 * k, x, data.value[k]), fit_regressor(model, seed + 2 * k + 1, x, data.cost[k])


def fit_fitted_q(
    data: DecisionData,
    actions: int,
    multiplier: float,
    model: ModelConfig,
    seed: int,
    last_wave: tuple[TreeModel, TreeModel] | None = None,
) -> GreedyQPolicy:
    """Fitted Q iteration for the reward revenue - (1 + multiplier) x cost; returns the greedy policy."""

    def greedy(wave: int, features: np.ndarray, qv: np.ndarray, qc: np.ndarray) -> np.ndarray:
        return one_hot(greedy_choice(qv - multiplier * qc), actions)

    return GreedyQPolicy(fit_backward(data, actions, model, seed, greedy, last_wave), multiplier, name="fitted_q")


def fit_q_evaluation(data: DecisionData, actions: int, policy: Policy, model: ModelConfig, seed: int) -> QModels:
    """Fitted Q evaluation: value and cost heads of a fixed policy (the model of doubly robust estimates)."""

    def follow(wave: int, features: np.ndarray, qv: np.ndarray, qc: np.ndarray) -> np.ndarray:
        return policy.probabilities(wave, features)

    return fit_backward(data, actions, model, seed, follow)


def fit_one_step(data: DecisionData, actions: int, model: ModelConfig, seed: int) -> QModels:
    """Heads of each wave's own value and cost only: what a one-step (myopic) optimizer predicts."""
    return fit_backward(data, actions, model, seed, None)
