"""The publishable table: the learned policy's next action for every customer now, with value and cost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_journey_support import small_study

from offerflow.errors import InputDataError
from offerflow.journey.next_action import NEXT_ACTION_COLUMNS, next_best_actions
from offerflow.journey.simulator import simulate_journeys
from offerflow.journey.study import split_log


def test_campaign_start_from_the_customer_table() -> None:
    config, log, models, _ = small_study()
    policy = models.policies["fitted_q"]
    customers = log[log["step"] == 0][["customer_id", *config.log.features]].sample(frac=1.0, random_state=2)
    table = next_best_actions(policy, config, customers=customers)
    assert list(table.columns) == NEXT_ACTION_COLUMNS
    assert table["customer_id"].is_monotonic_increasing and len(table) == len(customers)
    assert set(table["offer"]) <= set(config.actions)
    train, held_out = split_log(log, config)
    rows = np.searchsorted(table["customer_id"].to_numpy(), held_out.customer_id)
    choice, value, cost = policy.choose(0, held_out.features[0])
    assert np.array_equal(table["offer"].to_numpy()[rows], np.array(config.actions, dtype=object)[choice])
    assert np.allclose(table["expected_value"].to_numpy()[rows], value)
    assert np.allclose(table["expected_cost"].to_numpy()[rows], cost)
    assert (table["offer"] == "ad").mean() > 0.3  # the sequence starts with the preparatory offer


def test_mid_campaign_from_the_journeys_so_far() -> None:
    config, _, models, _ = small_study()
    policy = models.policies["fitted_q"]
    journeys = simulate_journeys(config, policy, 3_000, 31)
    from offerflow.journey.journey_log import journey_log_frame

    now = config.decision_steps[1]
    frame = journey_log_frame(journeys, config)
    table = next_best_actions(policy, config, history=frame[frame["step"] < now])
    sent = np.array(config.actions, dtype=object)[journeys.actions[:, now]]
    assert np.array_equal(table["offer"].to_numpy(), sent)  # what the policy did in the simulation
    prepared = journeys.actions[:, config.decision_steps[0]] == 1
    large = (table["offer"] == "large_discount").to_numpy()
    assert large[prepared].mean() > 3 * large[~prepared].mean()  # the payoff offer goes to the prepared
    assert table["expected_cost"].ge(0).all()


def test_next_actions_only_at_campaign_steps_and_with_known_customers() -> None:
    config, log, models, _ = small_study()
    policy = models.policies["fitted_q"]
    with pytest.raises(InputDataError, match="the next campaign step is 3"):
        next_best_actions(policy, config, history=log[log["step"] < 2])
    with pytest.raises(InputDataError, match="give the journeys so far"):
        next_best_actions(policy, config)
    with pytest.raises(InputDataError, match="missing columns \\['income', 'tenure_months', 'activity'\\]"):
        next_best_actions(policy, config, customers=pd.DataFrame({"customer_id": [1], "age": [30.0]}))
