"""A seeded testbed of customer journeys: n customers simulated step by step, all at once (numpy).

Customers have four observed features: age, income (k USD a year), tenure (months) and activity
(purchases last year). At each campaign wave (every `campaign_every` steps) a policy picks no action
or one of K offers; between waves nothing is sent. Each step a customer buys (at most one basket) with

    logit p = base(activity) + engaged x shift + maturity_t x lift[a] x sensitivity(income)
              - fatigue_penalty x (1 + slope x age z) x fatigue_t

Sequencing effects, all documented knobs of `journey.testbed`:
- preparation: the payoff offer (large discount) sent at least `min_gap` steps after the preparatory
  offer (ad) engages the customer for good: the purchase rate jumps from `base_purchase_rate` to
  `engaged_purchase_rate` (0.04 -> 0.22 per step for an average customer, as in the reference testbed).
  The ad sells nothing by itself and costs money, so a one-step policy never sends it;
- maturity: offers convert better as the customer matures, from 1 - exp(-tenure / scale) at the start
  towards 1 with time, so discounts are worth more later than sooner;
- fatigue: every contact adds one unit of fatigue that decays by `decay` per step and lowers the
  purchase rate, more so for older customers, so sending an offer every wave backfires.

Reward per step: basket revenue if the customer buys, minus the offer's cost (contact cost plus the
discount on that purchase). The sum over the campaign is the customer's value for the campaign.
Purchases use pre-drawn uniforms per customer and step, so two policies simulated with the same seed
face the same customers and the same luck (common random numbers give tight paired comparisons).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offerflow.errors import ConfigError
from offerflow.journey.config import JourneyConfig, JourneyTestbedConfig
from offerflow.journey.policies import Policy, draw_actions
from offerflow.journey.state import HistoryTracker

MEDIAN_INCOME = 45.0  # k USD
AGE_RANGE = (18.0, 80.0)
TENURE_MAX = 48.0  # months
ACTIVITY_SHAPE, ACTIVITY_SCALE = 2.0, 2.0  # gamma: mean 4 purchases a year


@dataclass(frozen=True)
class Customers:
    """Observed features and the hidden traits the testbed derives from them (plus basket noise)."""

    features: np.ndarray  # (n, 4): age, income, tenure_months, activity
    base_logit: np.ndarray
    maturity0: np.ndarray
    lift_scale: np.ndarray
    fatigue_scale: np.ndarray
    basket: np.ndarray  # USD per purchase


@dataclass(frozen=True)
class Journeys:
    """n simulated journeys of T steps; `probability` is the acting policy's probability of each action."""

    customer_id: np.ndarray  # (n,)
    static: np.ndarray  # (n, p) customer features
    actions: np.ndarray  # (n, T) action index, 0 = none
    probability: np.ndarray  # (n, T)
    purchase: np.ndarray  # (n, T) 0/1
    revenue: np.ndarray  # (n, T) USD
    cost: np.ndarray  # (n, T) USD
    decision_features: np.ndarray  # (D, n, p_state) state features seen at each wave

    @property
    def reward(self) -> np.ndarray:
        return self.revenue - self.cost


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def draw_customers(testbed: JourneyTestbedConfig, n: int, rng: np.random.Generator) -> Customers:
    age = rng.uniform(*AGE_RANGE, size=n)
    income = MEDIAN_INCOME * np.exp(0.5 * rng.standard_normal(n))
    tenure = rng.uniform(0.0, TENURE_MAX, size=n)
    activity = rng.gamma(ACTIVITY_SHAPE, ACTIVITY_SCALE, size=n)
    z_age = (age - np.mean(AGE_RANGE)) / ((AGE_RANGE[1] - AGE_RANGE[0]) / np.sqrt(12))
    z_income = np.log(income / MEDIAN_INCOME) / 0.5
    z_activity = (activity - ACTIVITY_SHAPE * ACTIVITY_SCALE) / (np.sqrt(ACTIVITY_SHAPE) * ACTIVITY_SCALE)
    noise = rng.standard_normal(n)
    return Customers(
        features=np.column_stack([age, income, tenure, activity]),
        base_logit=logit(testbed.base_purchase_rate) + testbed.activity_effect * z_activity,
        maturity0=1.0 - np.exp(-tenure / testbed.maturity.tenure_scale_months),
        lift_scale=np.maximum(0.0, 1.0 - testbed.lift_income_slope * z_income),
        fatigue_scale=np.maximum(0.0, 1.0 + testbed.fatigue.age_slope * z_age),
        basket=testbed.basket_value
        * np.exp(testbed.basket_income_elasticity * 0.5 * z_income + testbed.basket_noise * noise),
    )


def simulation_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for customers, purchase luck and action draws, all from one seed."""
    customers, purchases, actions = np.random.SeedSequence(seed).spawn(3)
    return np.random.default_rng(customers), np.random.default_rng(purchases), np.random.default_rng(actions)


def simulate_journeys(config: JourneyConfig, policy: Policy, customers: int, seed: int) -> Journeys:
    """Run `policy` for `customers` new customers over the whole campaign in the testbed."""
    testbed = require_testbed(config)
    customer_rng, purchase_rng, action_rng = simulation_streams(seed)
    people = draw_customers(testbed, customers, customer_rng)
    horizon, n = config.horizon, customers
    luck = purchase_rng.random((n, horizon))
    action_luck = action_rng.random((n, config.waves))
    offers = len(config.offers)
    actions = config.actions
    lift = np.array([0.0, *(testbed.offer_lift[name] for name in config.offers)])
    contact_cost, discount = np.array(config.contact_costs), np.array(config.discounts)
    prepare = actions.index(testbed.sequencing.preparatory_offer)
    payoff = actions.index(testbed.sequencing.payoff_offer)
    shift = logit(testbed.engaged_purchase_rate) - logit(testbed.base_purchase_rate)
    decay, penalty = testbed.fatigue.decay, testbed.fatigue.logit_penalty

    tracker = HistoryTracker(people.features, offers, horizon, config.learn.contact_decay, config.campaign_every)
    prepared_at = np.full(n, -1)
    engaged = np.zeros(n, dtype=bool)
    fatigue = np.zeros(n)
    out_actions = np.zeros((n, horizon), dtype=np.int64)
    out_prob = np.ones((n, horizon))
    purchase = np.zeros((n, horizon), dtype=np.int8)
    states = []
    decision = {step: wave for wave, step in enumerate(config.decision_steps)}
    for t in range(horizon):
        if t in decision:
            features = tracker.features()
            states.append(features)
            probs = policy.probabilities(decision[t], features)
            chosen = draw_actions(probs, action_luck[:, decision[t]])
            out_actions[:, t] = chosen
            out_prob[:, t] = probs[np.arange(n), chosen]
        a = out_actions[:, t]
        engaged |= (a == payoff) & (prepared_at >= 0) & (t - prepared_at >= testbed.sequencing.min_gap)
        prepared_at = np.where((a == prepare) & (prepared_at < 0), t, prepared_at)
        maturity = 1.0 - (1.0 - people.maturity0) * np.exp(-t / testbed.maturity.growth_steps)
        score = (
            people.base_logit
            + shift * engaged
            + maturity * people.lift_scale * lift[a]
            - penalty * people.fatigue_scale * fatigue
        )
        purchase[:, t] = luck[:, t] < 1.0 / (1.0 + np.exp(-score))
        fatigue = decay * (fatigue + (a > 0))
        tracker.record(a, purchase[:, t])
    revenue = purchase * people.basket[:, None]
    cost = contact_cost[out_actions] + revenue * discount[out_actions]
    return Journeys(
        customer_id=np.arange(1, n + 1),
        static=people.features,
        actions=out_actions,
        probability=out_prob,
        purchase=purchase,
        revenue=revenue,
        cost=cost,
        decision_features=np.stack(states),
    )


def require_testbed(config: JourneyConfig) -> JourneyTestbedConfig:
    """The testbed settings, or a ConfigError when params say the log is real (journey.testbed: null)."""
    if config.testbed is None:
        raise ConfigError("journey.testbed is null: there is no simulator to run (a real log has no testbed)")
    return config.testbed
