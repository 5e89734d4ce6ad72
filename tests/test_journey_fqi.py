"""Fitted Q iteration and evaluation: the learned policy finds the sequence, fitted Q evaluation matches the
testbed's truth, the budget multiplier is the exact Lagrangian of the customer allocation, fits are
deterministic."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from test_journey_support import SMALL_MODEL, small_config, small_study

from offerflow.journey.fqi import GreedyQPolicy, fit_fitted_q, fit_last_wave, fit_one_step, fit_q_evaluation
from offerflow.journey.journey_log import behaviour_policy
from offerflow.journey.policies import RandomPolicy, SequencePolicy
from offerflow.journey.simulator import simulate_journeys
from offerflow.journey.study import split_log
from offerflow.optimize.customer_allocation import allocate_customers

AD, SMALL, LARGE = 1, 2, 3
MC = 30_000


@lru_cache(maxsize=None)
def training_data():
    config, log, _, _ = small_study()
    train, held_out = split_log(log, config)
    return config, train, held_out


def true_value(config, policy, seed: int = 77) -> float:
    return float(simulate_journeys(config, policy, MC, seed).reward.sum(axis=1).mean())


def test_unbudgeted_fitted_q_learns_the_sequence_and_nearly_matches_the_best_one() -> None:
    config, train, _ = training_data()
    policy = fit_fitted_q(train, 4, 0.0, SMALL_MODEL, 3)
    sequences = {(AD, LARGE, 0, 0), (AD, LARGE, 0, LARGE), (AD, 0, LARGE, 0), (AD, LARGE, SMALL, SMALL), (0, AD, LARGE, 0)}
    best = max(true_value(config, SequencePolicy(list(s), 4)) for s in sequences)
    learned = true_value(config, policy)
    assert learned >= 0.95 * best
    assert learned > 2.0 * true_value(config, RandomPolicy(4, 0.75))
    journeys = simulate_journeys(config, policy, 5_000, 78)
    steps = config.decision_steps
    first, second = journeys.actions[:, steps[0]], journeys.actions[:, steps[1]]
    assert (first == AD).mean() > 0.8
    assert (second[first == AD] == LARGE).mean() > 0.8  # the payoff offer follows the preparation


def test_fitted_q_evaluation_matches_the_truth_of_well_logged_policies() -> None:
    """Policies the log supports well (the logging policy itself, uniformly random offers): the backward
    pass must reproduce their true value and spend from the wave-0 states alone."""
    config, train, _ = training_data()
    for policy in (behaviour_policy(config), RandomPolicy(4, 0.75)):
        models = fit_q_evaluation(train, 4, policy, SMALL_MODEL, 5)
        qv, qc = models.predict(0, train.features[0])
        predicted = (policy.probabilities(0, train.features[0]) * qv).sum(axis=1).mean()
        truth = simulate_journeys(config, policy, MC, 79)
        # the training customers are a sample: allow four of their standard errors
        checks = ((predicted, truth.reward.sum(axis=1)), (spend_of(policy, qc, train), truth.cost.sum(axis=1)))
        for estimate, outcome in checks:
            se = outcome.std(ddof=1) / np.sqrt(train.customers)
            assert abs(estimate - outcome.mean()) < 4 * se


def spend_of(policy, qc, train) -> float:
    return float((policy.probabilities(0, train.features[0]) * qc).sum(axis=1).mean())


def test_cost_multiplier_is_the_lagrangian_of_the_exact_customer_allocation() -> None:
    """Greedy on value - lambda x cost is optimal for the budget it spends: the exact allocator
    (offerflow.optimize.customer_allocation) cannot do better at that budget."""
    _, train, held_out = training_data()
    heads = fit_one_step(train, 4, SMALL_MODEL, 11)
    features = held_out.features[1]
    qv, qc = heads.predict(1, features)
    for multiplier in (0.5, 1.5, 4.0):
        choice = np.argmax(qv - multiplier * qc, axis=1)
        rows = np.arange(len(features))
        spend, value = qc[rows, choice].sum(), qv[rows, choice].sum()
        exact = allocate_customers(qv, qc, spend)
        assert exact.dual_bound >= value - 1e-6 * abs(value)
        assert exact.objective <= value + 1e-6 * abs(value)
        assert exact.expected_cost <= spend + 1e-6


def test_fits_are_deterministic_and_reusing_the_last_wave_changes_nothing() -> None:
    _, train, held_out = training_data()
    config = small_config()
    plain = fit_fitted_q(train, 4, 2.0, config.learn.q_model, 21)
    reused = fit_fitted_q(train, 4, 2.0, config.learn.q_model, 21, fit_last_wave(train, config.learn.q_model, 21))
    for wave in range(train.waves):
        a, b = plain.models.predict(wave, held_out.features[wave]), reused.models.predict(wave, held_out.features[wave])
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert isinstance(plain, GreedyQPolicy) and plain.multiplier == 2.0
    assert len(plain.models.seconds_per_wave) == train.waves
