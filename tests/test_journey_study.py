"""The stages' domain functions chained on a real log (no testbed): by params only, deterministic."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_journey_support import SMALL_MODEL, small_config

from offerflow.errors import StaleInputError
from offerflow.journey.config import BudgetConfig, JourneyEvaluationConfig, JourneyTestbedConfig, LearnConfig
from offerflow.journey.study import evaluate_journey_models, simulate_journey_log, train_journey_models


def test_a_log_without_its_simulator_is_learned_and_evaluated_reproducibly() -> None:
    simulated = small_config(
        testbed=JourneyTestbedConfig(customers=2_000),
        learn=LearnConfig(q_model=SMALL_MODEL, response_model=SMALL_MODEL, baselines=("random", "one_step")),
        evaluation=JourneyEvaluationConfig(bootstrap_samples=100),
    )
    log = simulate_journey_log(simulated)
    real = small_config(  # what a user with a real log sets: no testbed, spend estimated from the log
        testbed=None,
        log=simulated.log.model_copy(update={"path": Path("journeys.csv")}),
        budget=BudgetConfig(per_customer=5.0, spend_source="logs", max_evaluations=6, tolerance=0.05),
        learn=simulated.learn,
        evaluation=simulated.evaluation,
    )
    runs = []
    for _ in range(2):
        models = train_journey_models(log, real)
        runs.append(evaluate_journey_models(log, models, real))
    first, second = runs
    pd.testing.assert_frame_equal(first.table, second.table, check_exact=True)
    pd.testing.assert_frame_equal(first.policies, second.policies, check_exact=True)
    assert set(first.table["policy"]) == {"fitted_q", "random", "one_step"}
    assert "true_value" not in first.table.columns and first.comparison == {}
    assert (first.policies["tuning_spend"] <= 5.0).all()  # tuned on the log's weighted IS spend estimate

    other_log = simulate_journey_log(simulated.model_copy(update={"seed": simulated.seed + 1}))
    with pytest.raises(StaleInputError, match="another log or split"):
        evaluate_journey_models(other_log, models, real)
