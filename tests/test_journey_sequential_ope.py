"""Sequential off-policy estimators: exact unbiasedness by enumeration, bound validity, coverage in the testbed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from offerflow.journey.sequential_ope import (
    clipped_lower_bound,
    cumulative_weights,
    doubly_robust_terms,
    empirical_bernstein_lower_bound,
    estimate_policy_value,
    per_decision_terms,
    weighted_per_decision,
)

# A two-decision problem small enough to enumerate: actions {0, 1}, a reward of LOW or HIGH after each
# decision whose chance depends on the history; the second action's probabilities depend on the first
# action and reward (the state is the history, as in a customer journey).
LOW, HIGH = -1.0, 3.0
P_HIGH_FIRST = {0: 0.2, 1: 0.5}  # P(high | a0)
P_HIGH_SECOND = {(0, 0): 0.1, (0, 1): 0.6, (1, 0): 0.7, (1, 1): 0.3}  # P(high | a0, a1), a1 "pays off" after a0
MU_FIRST = [0.7, 0.3]
MU_SECOND = {(0, LOW): [0.5, 0.5], (0, HIGH): [0.8, 0.2], (1, LOW): [0.4, 0.6], (1, HIGH): [0.9, 0.1]}


def pi_first(stochastic: bool) -> list[float]:
    return [0.25, 0.75] if stochastic else [0.0, 1.0]


def pi_second(a0: int, r0: float, stochastic: bool) -> list[float]:
    if stochastic:
        return [0.6, 0.4] if r0 == HIGH else [0.3, 0.7]
    return [1.0, 0.0] if (a0, r0) == (1, HIGH) else [0.0, 1.0]


def enumerate_trajectories(first, second):
    """Every (a0, r0, a1, r1) with its probability under the policy given by `first` and `second`."""
    for a0, h0, a1, h1 in itertools.product([0, 1], [False, True], [0, 1], [False, True]):
        r0, r1 = (HIGH if h0 else LOW), (HIGH if h1 else LOW)
        p = first[a0] * (P_HIGH_FIRST[a0] if h0 else 1 - P_HIGH_FIRST[a0])
        p *= second(a0, r0)[a1] * (P_HIGH_SECOND[(a0, a1)] if h1 else 1 - P_HIGH_SECOND[(a0, a1)])
        yield p, (a0, r0, a1, r1)


def arbitrary_q(a0: int, r0: float | None, action: int) -> float:
    """A deliberately wrong model (doubly robust must stay unbiased anyway)."""
    return 2.0 * action - 0.5 + (0.0 if r0 is None else 0.3 * r0 + a0)


@pytest.mark.parametrize("stochastic", [False, True])
def test_estimators_are_exactly_unbiased_by_enumeration(stochastic: bool) -> None:
    truth = sum(p * (r0 + r1) for p, (a0, r0, a1, r1) in
                enumerate_trajectories(pi_first(stochastic), lambda a0, r0: pi_second(a0, r0, stochastic)))
    rows = list(enumerate_trajectories(MU_FIRST, lambda a0, r0: MU_SECOND[(a0, r0)]))
    prob = np.array([p for p, _ in rows])
    assert prob.sum() == pytest.approx(1.0)
    rewards = np.array([[r0, r1] for _, (a0, r0, a1, r1) in rows])
    behaviour = np.array([[MU_FIRST[a0], MU_SECOND[(a0, r0)][a1]] for _, (a0, r0, a1, r1) in rows])
    target = np.array([[pi_first(stochastic)[a0], pi_second(a0, r0, stochastic)[a1]] for _, (a0, r0, a1, r1) in rows])
    q_logged = np.array([[arbitrary_q(0, None, a0), arbitrary_q(a0, r0, a1)] for _, (a0, r0, a1, r1) in rows])
    v_target = np.array([
        [sum(pi_first(stochastic)[b] * arbitrary_q(0, None, b) for b in (0, 1)),
         sum(pi_second(a0, r0, stochastic)[b] * arbitrary_q(a0, r0, b) for b in (0, 1))]
        for _, (a0, r0, a1, r1) in rows
    ])
    weights = cumulative_weights(target, behaviour)
    assert prob @ per_decision_terms(rewards, weights) == pytest.approx(truth, abs=1e-12)
    assert prob @ doubly_robust_terms(rewards, weights, q_logged, v_target) == pytest.approx(truth, abs=1e-12)
    # the reference testbed's mistake: weighting the whole return by a ratio that treats an action the
    # target never takes as chosen at random; the per-decision weights give it weight zero instead
    if not stochastic:
        assert (weights[target[:, 0] == 0] == 0).all()


def test_weights_are_cumulative_products_and_zero_after_a_deviation() -> None:
    target = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    behaviour = np.array([[0.5, 0.25, 0.5], [0.5, 0.5, 0.25]])
    assert cumulative_weights(target, behaviour).tolist() == [[2.0, 0.0, 0.0], [2.0, 4.0, 16.0]]
    with pytest.raises(ValueError, match="probability 0"):
        cumulative_weights(target, np.zeros_like(behaviour))


def test_on_policy_data_make_every_estimator_the_plain_mean() -> None:
    rng = np.random.default_rng(1)
    rewards = rng.normal(5.0, 2.0, size=(300, 4))
    same = np.full((300, 4), 0.4)
    weights = cumulative_weights(same, same)
    assert per_decision_terms(rewards, weights).mean() == pytest.approx(rewards.sum(axis=1).mean())
    assert weighted_per_decision(rewards, weights) == pytest.approx(rewards.sum(axis=1).mean())
    zeros = np.zeros_like(rewards)
    assert doubly_robust_terms(rewards, weights, zeros, zeros).mean() == pytest.approx(rewards.sum(axis=1).mean())


def test_empirical_bernstein_bound_holds_at_least_at_its_level() -> None:
    a, b = 0.5, 2.0
    truth = a / (a + b)
    holds = [empirical_bernstein_lower_bound(np.random.default_rng(s).beta(a, b, 200), 0.05) <= truth for s in range(400)]
    assert np.mean(holds) >= 0.95


def test_clipped_bound_holds_for_heavy_tailed_terms_and_is_informative() -> None:
    sigma = 1.5
    truth = np.exp(sigma**2 / 2)  # mean of a lognormal(0, sigma)
    bounds = [clipped_lower_bound(np.random.default_rng(s).lognormal(0.0, sigma, 2_000), 0.05, 0.05, s)[0]
              for s in range(200)]
    assert np.mean(np.array(bounds) <= truth) >= 0.95
    assert np.median(bounds) > 0.4 * truth  # not vacuous
    with pytest.raises(ValueError, match="non-negative"):
        clipped_lower_bound(np.array([1.0, -1.0, 2.0]), 0.05, 0.05, 0)


def test_rewards_below_the_declared_floor_are_refused() -> None:
    rewards = np.array([[-2.0, 0.0]])
    ones = np.ones_like(rewards)
    with pytest.raises(ValueError, match="floor"):
        estimate_policy_value(rewards, ones, ones, None, None, reward_floor=-1.0)
