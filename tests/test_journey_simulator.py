"""The testbed: determinism, common random numbers, accounting, and each documented sequencing effect
checked against its closed form (purchase rates predicted from the drawn customers' features)."""

from __future__ import annotations

import numpy as np
import pytest

from offerflow.journey.config import FatigueConfig, JourneyConfig, JourneyTestbedConfig
from offerflow.journey.journey_log import behaviour_policy
from offerflow.journey.policies import RandomPolicy, SequencePolicy
from offerflow.journey.simulator import simulate_journeys

AD, SMALL, LARGE = 1, 2, 3
N = 40_000


def isolated(**testbed) -> JourneyConfig:
    """The default journey with every effect off unless switched on: purchase rate 0.04 for everyone."""
    settings = dict(activity_effect=0.0, lift_income_slope=0.0, fatigue=FatigueConfig(logit_penalty=0.0),
                    offer_lift={"ad": 0.0, "small_discount": 0.0, "large_discount": 0.0})
    return JourneyConfig(testbed=JourneyTestbedConfig(**{**settings, **testbed}))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def within(observed: np.ndarray, expected_p: np.ndarray, sigmas: float = 4.0) -> bool:
    """Observed 0/1 purchases agree with their predicted probabilities (independent Bernoulli draws)."""
    se = np.sqrt((expected_p * (1 - expected_p)).sum()) / observed.size
    return abs(observed.mean() - expected_p.mean()) < sigmas * se


def test_same_seed_same_journeys_and_common_random_numbers() -> None:
    config = JourneyConfig()
    a = simulate_journeys(config, RandomPolicy(4, 0.75), 2_000, 5)
    b = simulate_journeys(config, RandomPolicy(4, 0.75), 2_000, 5)
    for field in ("static", "actions", "probability", "purchase", "revenue", "cost", "decision_features"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    other = simulate_journeys(config, SequencePolicy([AD, LARGE, 0, 0], 4), 2_000, 5)
    assert np.array_equal(other.static, a.static)  # same customers for every policy
    assert not np.array_equal(simulate_journeys(config, RandomPolicy(4, 0.75), 2_000, 6).static, a.static)


def test_accounting_revenue_cost_and_reward() -> None:
    config = JourneyConfig()
    j = simulate_journeys(config, RandomPolicy(4, 0.75), 5_000, 1)
    contact = np.array(config.contact_costs)[j.actions]
    discount = np.array(config.discounts)[j.actions]
    assert np.allclose(j.cost, contact + discount * j.revenue)
    assert np.allclose(j.reward, j.revenue - j.cost)
    assert (j.revenue[j.purchase == 0] == 0).all()
    buyers = j.purchase.sum(axis=1) > 0
    basket = np.where(j.purchase > 0, j.revenue, np.nan)[buyers]
    spread = np.nanmax(basket, axis=1) - np.nanmin(basket, axis=1)
    assert np.nanmax(spread) < 1e-9  # one basket value per customer
    assert j.reward.min() >= config.reward_floor_per_wave
    off = np.setdiff1d(np.arange(config.horizon), config.decision_steps)
    assert (j.actions[:, off] == 0).all() and (j.probability[:, off] == 1).all()


def test_logged_probabilities_are_the_behaviour_policy_s() -> None:
    config = JourneyConfig()
    policy = behaviour_policy(config)
    j = simulate_journeys(config, policy, 3_000, 2)
    for wave, step in enumerate(config.decision_steps):
        probs = policy.probabilities(wave, j.decision_features[wave])
        assert np.allclose(j.probability[:, step], probs[np.arange(3_000), j.actions[:, step]])
    shares = np.bincount(j.actions[:, config.decision_steps].ravel(), minlength=4) / (3_000 * config.waves)
    assert shares.min() > 0.15  # epsilon 0.8: every action is well represented in the log


@pytest.mark.parametrize(
    ("sequence", "engaged_from"),
    [([AD, LARGE, 0, 0], 5), ([AD, 0, LARGE, 0], 10), ([LARGE, AD, 0, 0], None), ([AD, SMALL, 0, 0], None)],
)
def test_payoff_offer_pays_off_only_after_the_preparatory_offer(sequence, engaged_from) -> None:
    config = isolated()
    j = simulate_journeys(config, SequencePolicy(sequence, 4), N, 3)
    base, engaged = config.testbed.base_purchase_rate, config.testbed.engaged_purchase_rate
    cut = engaged_from if engaged_from is not None else config.horizon
    assert within(j.purchase[:, :cut], np.full(j.purchase[:, :cut].shape, base))
    if engaged_from is not None:
        assert within(j.purchase[:, cut:], np.full(j.purchase[:, cut:].shape, engaged))


def test_offers_convert_better_as_customers_mature() -> None:
    config = isolated(offer_lift={"ad": 0.0, "small_discount": 1.0, "large_discount": 0.0})
    testbed = config.testbed
    rates = {}
    for wave, step in enumerate(config.decision_steps):
        sequence = [0] * config.waves
        sequence[wave] = SMALL
        j = simulate_journeys(config, SequencePolicy(sequence, 4), N, 4)
        tenure = j.static[:, 2]
        maturity0 = 1 - np.exp(-tenure / testbed.maturity.tenure_scale_months)
        maturity = 1 - (1 - maturity0) * np.exp(-step / testbed.maturity.growth_steps)
        expected = sigmoid(np.log(0.04 / 0.96) + maturity * 1.0)
        assert within(j.purchase[:, step], expected)
        rates[step] = expected.mean()
    steps = config.decision_steps
    assert all(rates[a] < rates[b] for a, b in zip(steps, steps[1:]))


def test_contacts_tire_customers_and_older_ones_more() -> None:
    config = isolated(fatigue=FatigueConfig(decay=0.7, logit_penalty=0.4, age_slope=0.4))
    j = simulate_journeys(config, SequencePolicy([AD, 0, 0, 0], 4), N, 6)
    z_age = (j.static[:, 0] - 49.0) / (62.0 / np.sqrt(12))
    scale = np.maximum(0.0, 1 + 0.4 * z_age)
    for step in range(1, 5):
        expected = sigmoid(np.log(0.04 / 0.96) - 0.4 * scale * 0.7**step)
        assert within(j.purchase[:, step], expected)
    rested = simulate_journeys(config, SequencePolicy([0, 0, 0, 0], 4), N, 6)
    assert j.purchase[:, 1:5].mean() < rested.purchase[:, 1:5].mean()


def test_default_testbed_rewards_the_sequence_one_step_targeting_cannot_see() -> None:
    """Reference behaviour: the ad then the large discount beats random offers, which beat repeating the
    offer a one-step model likes best (the large discount) at every wave."""
    config = JourneyConfig()
    value = {name: simulate_journeys(config, policy, 20_000, 7).reward.sum(axis=1).mean()
             for name, policy in {"sequence": SequencePolicy([AD, LARGE, 0, 0], 4),
                                  "random": RandomPolicy(4, 0.75),
                                  "large_every_wave": SequencePolicy([LARGE] * 4, 4),
                                  "nothing": SequencePolicy([0] * 4, 4)}.items()}
    assert value["sequence"] > 2.5 * value["random"]
    assert value["random"] > value["large_every_wave"] > 0.9 * value["nothing"]
