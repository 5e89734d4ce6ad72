"""The journey log: table round trip, structural checks with clear errors, decision data, split, and the
Great Expectations suite template (a renamed log passes by params only; a corrupt one is named)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from offerflow.errors import InputDataError
from offerflow.journey.config import JourneyConfig, JourneyLogConfig
from offerflow.journey.journey_log import (
    behaviour_policy,
    decision_data,
    journey_log_frame,
    journey_suite_variables,
    journeys_from_log,
    split_customers,
)
from offerflow.journey.simulator import simulate_journeys
from offerflow.validation.suites import expand_expectations

SUITE = Path(__file__).resolve().parents[1] / "expectations" / "journey_log.json"


@pytest.fixture(scope="module")
def config() -> JourneyConfig:
    return JourneyConfig()


@pytest.fixture(scope="module")
def log(config: JourneyConfig) -> pd.DataFrame:
    return journey_log_frame(simulate_journeys(config, behaviour_policy(config), 300, 3), config)


def test_log_round_trip(config: JourneyConfig) -> None:
    j = simulate_journeys(config, behaviour_policy(config), 300, 3)
    frame = journey_log_frame(j, config)
    assert list(frame.columns) == ["customer_id", "step", "age", "income", "tenure_months", "activity", "action",
                                   "behaviour_probability", "purchase", "revenue", "cost", "reward"]
    assert len(frame) == 300 * config.horizon
    back = journeys_from_log(frame.sample(frac=1.0, random_state=1), config)  # row order does not matter
    for field in ("customer_id", "static", "actions", "probability", "purchase", "revenue", "cost", "decision_features"):
        assert np.array_equal(getattr(back, field), getattr(j, field)), field


def test_decision_data_sums_each_wave(config: JourneyConfig, log: pd.DataFrame) -> None:
    j = journeys_from_log(log, config)
    data = decision_data(j, config)
    assert data.features.shape[:2] == (config.waves, 300)
    assert np.allclose(data.value.sum(axis=0), j.reward.sum(axis=1))
    assert np.allclose(data.cost.sum(axis=0), j.cost.sum(axis=1))
    assert np.allclose(data.value[1], j.reward[:, 5:10].sum(axis=1))
    assert np.array_equal(data.actions, j.actions[:, config.decision_steps].T)
    train, held = split_customers(data, 0.5, 4)
    assert len(np.intersect1d(train.customer_id, held.customer_id)) == 0
    assert train.customers + held.customers == 300
    assert np.array_equal(split_customers(data, 0.5, 4)[0].customer_id, train.customer_id)


def _edit(frame: pd.DataFrame, case: str) -> pd.DataFrame:
    frame = frame.copy()
    if case == "missing column":
        return frame.drop(columns=["cost"])
    if case == "missing step":
        return frame.drop(index=7)
    if case == "unknown action":
        frame.loc[5, "action"] = "coupon"
    elif case == "offer off campaign":
        frame.loc[1, "action"] = "ad"
    elif case == "probability off campaign":
        frame.loc[2, "behaviour_probability"] = 0.5
    elif case == "feature changes":
        frame.loc[3, "age"] = frame.loc[3, "age"] + 1
    elif case == "reward mismatch":
        frame.loc[4, "reward"] = frame.loc[4, "reward"] + 1
    return frame


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing column", "missing columns \\['cost'\\]"),
        ("missing step", "one row per step"),
        ("unknown action", "unknown actions \\['coupon'\\]"),
        ("offer off campaign", "offers outside campaign steps"),
        ("probability off campaign", "must be 1 outside campaign steps"),
        ("feature changes", "change within a customer"),
        ("reward mismatch", "'reward' must equal 'revenue' - 'cost'"),
    ],
)
def test_structural_problems_are_named(config: JourneyConfig, log: pd.DataFrame, case: str, message: str) -> None:
    with pytest.raises(InputDataError, match=message):
        journeys_from_log(_edit(log, case), config)


def _specs(config: JourneyConfig):
    return expand_expectations(json.loads(SUITE.read_text())["expectations"], journey_suite_variables(config), SUITE)


def test_suite_passes_a_renamed_log_by_params_and_names_corrupt_columns(config: JourneyConfig, log: pd.DataFrame) -> None:
    from offerflow.validation.gx_session import GxSession
    from offerflow.validation.interpret import failures_from_results

    session = GxSession()

    def failures(frame: pd.DataFrame, cfg: JourneyConfig):
        run = session.run("journey_log", frame, _specs(cfg), str(SUITE))
        return failures_from_results("journey_log", "journey_log.csv", frame, run.results, 5)

    assert failures(log, config) == []
    names = {"customer_id": "cid", "step": "week", "action": "sent", "behaviour_probability": "mu",
             "purchase": "bought", "revenue": "usd_in", "cost": "usd_out", "reward": "net"}
    renamed_config = config.model_copy(update={"log": JourneyLogConfig(**names)})
    renamed = log.rename(columns=names)
    assert failures(renamed, renamed_config) == []
    assert np.array_equal(journeys_from_log(renamed, renamed_config).actions, journeys_from_log(log, config).actions)

    bad = log.copy()
    bad.loc[0, "behaviour_probability"] = 0.0
    bad.loc[1, "reward"] = -3.0
    bad.loc[2, "step"] = 25
    bad.loc[3, "purchase"] = 2
    bad = pd.concat([bad, bad.iloc[[5]]], ignore_index=True)
    found = {(f.column, f.expectation) for f in failures(bad, config)}
    assert ("behaviour_probability", "expect_column_values_to_be_between") in found
    assert ("reward", "expect_column_values_to_be_between") in found  # below the dearest contact cost
    assert ("step", "expect_column_values_to_be_between") in found
    assert ("purchase", "expect_column_values_to_be_in_set") in found
    assert any(f[1] == "expect_compound_columns_to_be_unique" for f in found)
