"""The journey log: one row per customer and step, and the decision-level data learners need.

Log schema (column names are params: `journey.log`):

| column | meaning |
|---|---|
| customer_id | integer id |
| step | 0 .. horizon - 1 |
| features... | the customer's features (numeric, the same on every row of a customer) |
| action | no action (`journey.no_action`) or an offer name; offers only at campaign steps |
| behaviour_probability | the logging policy's probability of that action in that state, in (0, 1] (1 off-campaign) |
| purchase | 0/1: the customer bought in that step |
| revenue | USD of the purchase (0 without one) |
| cost | USD spent on the customer in that step: contact cost plus the discount redeemed |
| reward | revenue - cost |

Learners work per campaign wave: the state at the wave's decision step, the action taken there, and
the wave's summed reward, cost, revenue and purchases until the next wave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from offerflow.errors import InputDataError
from offerflow.journey.config import JourneyConfig
from offerflow.journey.policies import BehaviourPolicy
from offerflow.journey.simulator import Journeys
from offerflow.journey.state import replay_decision_features, state_feature_names
from offerflow.validation.suites import INTEGER_DTYPES, NUMERIC_DTYPES

PROBABILITY_TOLERANCE = 1e-9
REWARD_TOLERANCE = 1e-6


def feature_names(config: JourneyConfig) -> list[str]:
    """Names of the state features every policy and model sees."""
    return state_feature_names(list(config.log.features), list(config.offers))


def behaviour_policy(config: JourneyConfig) -> BehaviourPolicy:
    """The testbed's logging policy: epsilon-random over the win-back rule of `journey.behaviour`."""
    return BehaviourPolicy(
        actions=len(config.actions),
        epsilon=config.behaviour.epsilon,
        rule_action=config.actions.index(config.behaviour.rule_offer),
        inactive_steps=config.behaviour.inactive_steps,
        since_purchase_column=feature_names(config).index("since_purchase"),
    )


def log_columns(config: JourneyConfig) -> list[str]:
    c = config.log
    return [c.customer_id, c.step, *c.features, c.action, c.behaviour_probability, c.purchase, c.revenue, c.cost, c.reward]


def journey_log_frame(journeys: Journeys, config: JourneyConfig) -> pd.DataFrame:
    """The log table of simulated journeys, sorted by customer and step."""
    c = config.log
    n, horizon = journeys.actions.shape
    names = np.array(config.actions, dtype=object)
    columns = {
        c.customer_id: np.repeat(journeys.customer_id, horizon),
        c.step: np.tile(np.arange(horizon), n),
    }
    for position, feature in enumerate(c.features):
        columns[feature] = np.repeat(journeys.static[:, position], horizon)
    columns[c.action] = names[journeys.actions.ravel()]
    columns[c.behaviour_probability] = journeys.probability.ravel()
    columns[c.purchase] = journeys.purchase.ravel().astype(np.int64)
    columns[c.revenue] = journeys.revenue.ravel()
    columns[c.cost] = journeys.cost.ravel()
    columns[c.reward] = journeys.reward.ravel()
    return pd.DataFrame(columns)


def journeys_from_log(frame: pd.DataFrame, config: JourneyConfig, complete: bool = True) -> Journeys:
    """Arrays of a validated log; structural rules a single-table suite cannot state are checked here.

    complete=True: every customer has every step 0 .. horizon-1. complete=False (journeys so far): every
    customer has the same steps 0 .. now-1 (now <= horizon).
    """
    c = config.log
    missing = [column for column in log_columns(config) if column not in frame.columns]
    if missing:
        raise InputDataError(f"journey log: missing columns {missing}")
    table = frame.sort_values([c.customer_id, c.step], kind="stable")
    ids = pd.unique(table[c.customer_id])
    n = len(ids)
    steps = len(table) // n if n else 0
    expected = config.horizon if complete else steps
    if n == 0 or len(table) != n * expected or steps > config.horizon:
        raise InputDataError(f"journey log: every customer needs one row per step 0..{expected - 1}; "
                             f"got {len(table)} rows for {n} customers")
    step = table[c.step].to_numpy().reshape(n, steps)
    bad = np.flatnonzero((step != np.arange(steps)).any(axis=1))
    if len(bad):
        raise InputDataError(f"journey log: customers without exactly the steps 0..{steps - 1}: "
                             f"{[ids[i] for i in bad[:10]]} ({len(bad)} customers)")
    action_index = {name: index for index, name in enumerate(config.actions)}
    action_names = table[c.action].astype(str)
    unknown = sorted(set(action_names) - set(action_index))
    if unknown:
        raise InputDataError(f"journey log column {c.action!r}: unknown actions {unknown[:10]}; known: {config.actions}")
    actions = action_names.map(action_index).to_numpy(dtype=np.int64).reshape(n, steps)
    probability = table[c.behaviour_probability].to_numpy(dtype=float).reshape(n, steps)
    _check_calendar(actions, probability, config, ids)
    static = table[list(c.features)].to_numpy(dtype=float).reshape(n, steps, len(c.features))
    varying = np.flatnonzero((static != static[:, :1]).any(axis=(1, 2)))
    if len(varying):
        raise InputDataError(f"journey log: features {list(c.features)} change within a customer's journey "
                             f"(customers {[ids[i] for i in varying[:10]]})")
    purchase = table[c.purchase].to_numpy().reshape(n, steps).astype(np.int8)
    revenue = table[c.revenue].to_numpy(dtype=float).reshape(n, steps)
    cost = table[c.cost].to_numpy(dtype=float).reshape(n, steps)
    reward = table[c.reward].to_numpy(dtype=float).reshape(n, steps)
    off = np.abs(reward - (revenue - cost)) > REWARD_TOLERANCE * np.maximum(1.0, np.abs(revenue) + np.abs(cost))
    if off.any():
        rows = np.flatnonzero(off.any(axis=1))
        raise InputDataError(f"journey log: {c.reward!r} must equal {c.revenue!r} - {c.cost!r}; it does not in "
                             f"{int(off.sum())} rows (customers {[ids[i] for i in rows[:10]]})")
    return Journeys(
        customer_id=np.asarray(ids),
        static=static[:, 0, :],
        actions=actions,
        probability=probability,
        purchase=purchase,
        revenue=revenue,
        cost=cost,
        decision_features=replay_decision_features(
            static[:, 0, :], actions, purchase, config.decision_steps, len(config.offers), config.horizon,
            config.learn.contact_decay, config.campaign_every,
        ),
    )


def _check_calendar(actions: np.ndarray, probability: np.ndarray, config: JourneyConfig, ids) -> None:
    """Offers only at campaign steps, where nothing else could happen (probability 1 of no action)."""
    off_campaign = np.ones(actions.shape[1], dtype=bool)
    off_campaign[[s for s in config.decision_steps if s < actions.shape[1]]] = False
    offers_off = (actions[:, off_campaign] != 0).any(axis=1)
    if offers_off.any():
        raise InputDataError(
            f"journey log: offers outside campaign steps {config.decision_steps} (journey.campaign_every) for "
            f"customers {[ids[i] for i in np.flatnonzero(offers_off)[:10]]}"
        )
    not_one = (np.abs(probability[:, off_campaign] - 1.0) > PROBABILITY_TOLERANCE).any(axis=1)
    if not_one.any():
        raise InputDataError(
            f"journey log: behaviour_probability must be 1 outside campaign steps (no choice was made) for "
            f"customers {[ids[i] for i in np.flatnonzero(not_one)[:10]]}"
        )


@dataclass(frozen=True)
class DecisionData:
    """One row per customer and campaign wave; arrays are (D, n) unless noted."""

    customer_id: np.ndarray  # (n,)
    features: np.ndarray  # (D, n, p) state at the wave's decision step
    actions: np.ndarray
    behaviour_probability: np.ndarray
    value: np.ndarray  # reward summed over the wave (revenue - cost)
    cost: np.ndarray
    revenue: np.ndarray
    purchases: np.ndarray

    @property
    def customers(self) -> int:
        return len(self.customer_id)

    @property
    def waves(self) -> int:
        return self.actions.shape[0]

    def subset(self, rows: np.ndarray) -> "DecisionData":
        return DecisionData(
            customer_id=self.customer_id[rows],
            features=self.features[:, rows],
            actions=self.actions[:, rows],
            behaviour_probability=self.behaviour_probability[:, rows],
            value=self.value[:, rows],
            cost=self.cost[:, rows],
            revenue=self.revenue[:, rows],
            purchases=self.purchases[:, rows],
        )


def decision_data(journeys: Journeys, config: JourneyConfig) -> DecisionData:
    """Sum each wave's steps; the behaviour probability of a wave is that of its decision step."""
    steps = config.decision_steps
    bounds = [*steps, config.horizon]

    def per_wave(values: np.ndarray) -> np.ndarray:
        return np.stack([values[:, a:b].sum(axis=1) for a, b in zip(bounds[:-1], bounds[1:])])

    return DecisionData(
        customer_id=journeys.customer_id,
        features=journeys.decision_features,
        actions=journeys.actions[:, steps].T.copy(),
        behaviour_probability=journeys.probability[:, steps].T.copy(),
        value=per_wave(journeys.reward),
        cost=per_wave(journeys.cost),
        revenue=per_wave(journeys.revenue),
        purchases=per_wave(journeys.purchase.astype(float)),
    )


def split_customers(data: DecisionData, train_share: float, seed: int) -> tuple[DecisionData, DecisionData]:
    """Learn on one share of the customers, evaluate off-policy on the others (estimates stay unbiased)."""
    order = np.random.default_rng(seed).permutation(data.customers)
    cut = int(round(train_share * data.customers))
    if cut < 1 or cut >= data.customers:
        raise InputDataError(f"journey log: {data.customers} customers cannot be split {train_share:.0%} / rest")
    return data.subset(np.sort(order[:cut])), data.subset(np.sort(order[cut:]))


def journey_suite_variables(config: JourneyConfig) -> dict[str, object]:
    """Placeholders of expectations/journey_log.json (to merge into offerflow.validation.suites.suite_variables)."""
    c = config.log
    return {
        "journey_customer_id": c.customer_id,
        "journey_step": c.step,
        "journey_action": c.action,
        "journey_behaviour_probability": c.behaviour_probability,
        "journey_purchase": c.purchase,
        "journey_revenue": c.revenue,
        "journey_cost": c.cost,
        "journey_reward": c.reward,
        "journey_features": list(c.features),
        "journey_actions": config.actions,
        "journey_last_step": config.horizon - 1,
        "journey_reward_floor": config.reward_floor_per_wave,
        "integer_dtypes": list(INTEGER_DTYPES),
        "numeric_dtypes": list(NUMERIC_DTYPES),
    }
