"""The journey section of params.yaml: defaults are the default testbed; mistakes name the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from offerflow.journey.config import JourneyConfig


def test_defaults_describe_the_default_testbed() -> None:
    config = JourneyConfig()
    assert config.actions == ["none", "ad", "small_discount", "large_discount"]
    assert config.decision_steps == [0, 5, 10, 15] and config.waves == 4
    assert config.reward_floor_per_wave == -1.0  # the ad's contact cost
    assert config.testbed.sequencing.preparatory_offer == "ad"
    assert config.budget.per_customer == 6.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"offers": {"none": {"contact_cost": 1.0}}}, "no-action name"),
        ({"campaign_every": 20}, "must be < horizon"),
        ({"behaviour": {"rule_offer": "coupon"}}, "behaviour.rule_offer 'coupon'"),
        ({"testbed": {"sequencing": {"payoff_offer": "coupon"}}}, "testbed.sequencing.payoff_offer"),
        ({"testbed": {"offer_lift": {"ad": 0.0}}}, "one lift per offer"),
        ({"testbed": None, "log": {"path": "journeys.csv"}}, "spend_source 'simulation' needs a testbed"),
        ({"testbed": None}, "log.path must name your journey log"),
        ({"log": {"path": "journeys.csv"}}, "log.path is set while a testbed simulates the log"),
        ({"log": {"customer_id": "step"}}, "must be distinct"),
        ({"learn": {"baselines": ["oracle"]}}, "unknown baselines"),
        ({"offers": {"ad": {"discount": 1.5}}}, "less than 1"),
        ({"budget": {"per_customer": -1}}, "greater than 0"),
        ({"horizon": 20, "colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_mistakes_are_refused_with_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        JourneyConfig.model_validate(raw)


def test_a_real_log_without_testbed_uses_the_log_for_spend() -> None:
    config = JourneyConfig.model_validate({"testbed": None, "budget": {"spend_source": "logs"},
                                           "log": {"path": "journeys.csv", "features": ["age", "recency"]}})
    assert config.testbed is None and config.log.features == ("age", "recency")
