"""The learned policy as a publishable allocation: the next action for every customer now.

Given the journeys so far (the log's rows for steps 0 .. now-1, `now` being a campaign step) or, at the
start of a campaign, just the customers and their features, the fitted-Q policy picks each customer's
next action. Expected value and cost are the policy's Q heads for that action: the customer's value
(revenue - cost, USD) and spend (USD) from now to the end of the campaign if the policy keeps deciding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from offerflow.errors import InputDataError
from offerflow.journey.config import JourneyConfig
from offerflow.journey.fqi import GreedyQPolicy
from offerflow.journey.journey_log import journeys_from_log
from offerflow.journey.state import HistoryTracker

NEXT_ACTION_COLUMNS = ["customer_id", "offer", "expected_value", "expected_cost"]


def current_states(
    config: JourneyConfig, history: pd.DataFrame | None = None, customers: pd.DataFrame | None = None
) -> tuple[np.ndarray, int, np.ndarray]:
    """Customer ids, the current step and each customer's state features at that step."""
    c = config.log
    if history is not None and len(history):
        journeys = journeys_from_log(history, config, complete=False)
        ids, static = journeys.customer_id, journeys.static
        actions, purchases = journeys.actions, journeys.purchase
    else:
        if customers is None or not len(customers):
            raise InputDataError("next actions: give the journeys so far or, at the campaign start, the customers")
        missing = [column for column in [c.customer_id, *c.features] if column not in customers.columns]
        if missing:
            raise InputDataError(f"customers: missing columns {missing}")
        if customers[c.customer_id].duplicated().any():
            raise InputDataError(f"customers: column {c.customer_id!r} has duplicate ids")
        table = customers.sort_values(c.customer_id, kind="stable")
        ids, static = table[c.customer_id].to_numpy(), table[list(c.features)].to_numpy(dtype=float)
        actions = purchases = np.zeros((len(ids), 0), dtype=np.int64)
    now = actions.shape[1]
    if now not in config.decision_steps:
        upcoming = [step for step in config.decision_steps if step >= now]
        hint = f"the next campaign step is {upcoming[0]}" if upcoming else "the campaign is over"
        raise InputDataError(f"next actions: the journeys end at step {now - 1}, but offers go out only at campaign "
                             f"steps {config.decision_steps} ({hint})")
    tracker = HistoryTracker(static, len(config.offers), config.horizon, config.learn.contact_decay, config.campaign_every)
    for step in range(now):
        tracker.record(actions[:, step], purchases[:, step])
    return ids, now, tracker.features()


def next_best_actions(
    policy: GreedyQPolicy,
    config: JourneyConfig,
    history: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """customer_id, offer (action name), expected_value and expected_cost per customer, sorted by customer_id."""
    ids, now, features = current_states(config, history, customers)
    choice, value, cost = policy.choose(config.decision_steps.index(now), features)
    names = np.array(config.actions, dtype=object)
    table = pd.DataFrame({"customer_id": ids, "offer": names[choice], "expected_value": value, "expected_cost": cost})
    return table.sort_values("customer_id", kind="stable").reset_index(drop=True)
