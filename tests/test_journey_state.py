"""The history summary every policy sees: hand-computed on a tiny journey, and identical in simulation and replay."""

from __future__ import annotations

import numpy as np

from offerflow.journey.config import JourneyConfig
from offerflow.journey.journey_log import behaviour_policy, feature_names
from offerflow.journey.simulator import simulate_journeys
from offerflow.journey.state import HistoryTracker, replay_decision_features, state_feature_names


def test_features_of_a_hand_written_history() -> None:
    tracker = HistoryTracker(np.array([[1.0], [2.0]]), offers=2, horizon=6, contact_decay=0.5, window=2)
    for actions, purchases in [([1, 0], [0, 1]), ([2, 0], [1, 0]), ([0, 2], [0, 0])]:
        tracker.record(np.array(actions), np.array(purchases))
    names = state_feature_names(["x"], ["a", "b"])
    got = [dict(zip(names, row)) for row in tracker.features()]
    assert got[0] == {"x": 1.0, "step": 3.0, "count_a": 1.0, "count_b": 1.0, "since_a": 3.0, "since_b": 2.0,
                      "a_then_b": 1.0, "b_then_a": 0.0, "recent_contacts": 0.375, "purchases": 1.0,
                      "since_purchase": 2.0, "recent_purchases": 1.0}
    assert got[1] == {"x": 2.0, "step": 3.0, "count_a": 0.0, "count_b": 1.0, "since_a": 6.0, "since_b": 1.0,
                      "a_then_b": 0.0, "b_then_a": 0.0, "recent_contacts": 0.5, "purchases": 1.0,
                      "since_purchase": 3.0, "recent_purchases": 0.0}


def test_order_flags_follow_the_order_and_ignore_repeats() -> None:
    tracker = HistoryTracker(np.zeros((1, 1)), offers=2, horizon=5, contact_decay=0.0, window=1)
    for action in (2, 2, 1):
        tracker.record(np.array([action]), np.array([0]))
    row = dict(zip(state_feature_names(["x"], ["a", "b"]), tracker.features()[0]))
    assert (row["a_then_b"], row["b_then_a"], row["count_b"]) == (0.0, 1.0, 2.0)


def test_replaying_a_log_gives_the_states_the_simulation_acted_on() -> None:
    config = JourneyConfig()
    j = simulate_journeys(config, behaviour_policy(config), 1_000, 9)
    replayed = replay_decision_features(j.static, j.actions, j.purchase, config.decision_steps, len(config.offers),
                                        config.horizon, config.learn.contact_decay, config.campaign_every)
    assert np.array_equal(replayed, j.decision_features)
    assert j.decision_features.shape == (config.waves, 1_000, len(feature_names(config)))
    partial = replay_decision_features(j.static, j.actions[:, :10], j.purchase[:, :10], config.decision_steps,
                                       len(config.offers), config.horizon, config.learn.contact_decay, config.campaign_every)
    assert np.array_equal(partial, j.decision_features[:3])  # steps 0, 5 and now = 10
