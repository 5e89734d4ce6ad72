"""Off-policy estimates against the testbed's truth over many seeds, and the study's acceptance claims on
the small testbed (the default testbed's numbers: benchmarks/bench_journey.py --acceptance)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_journey_support import small_study

from offerflow.journey.evaluation import MonteCarloRun, off_policy_estimates, paired_difference, truth_table
from offerflow.journey.journey_log import behaviour_policy, decision_data
from offerflow.journey.simulator import simulate_journeys
from offerflow.journey.study import evaluation_metrics

SEEDS = 100
HELD_OUT = 2_500


@pytest.fixture(scope="module")
def coverage() -> pd.DataFrame:
    """The learned policy (and its fitted Q) fixed; a fresh log of held-out customers per seed."""
    config, _, models, evaluation = small_study()
    config = config.model_copy(update={"evaluation": config.evaluation.model_copy(update={"bootstrap_samples": 100})})
    truth = float(evaluation.policies.set_index("policy").loc["fitted_q", "true_value"])
    rows = []
    for seed in range(SEEDS):
        journeys = simulate_journeys(config, behaviour_policy(config), HELD_OUT, 50_000 + seed)
        result = off_policy_estimates(config, "fitted_q", models.policies["fitted_q"], decision_data(journeys, config),
                                      models.dr_models["fitted_q"], seed)
        rows.append(result.table.assign(seed=seed))
    table = pd.concat(rows, ignore_index=True)
    table["covers"] = (table["low"] <= truth) & (truth <= table["high"])
    table["bound_holds"] = table["lower_bound"] <= truth
    return table.assign(truth=truth)


def _rates(table: pd.DataFrame, estimator: str) -> pd.Series:
    return table[table["estimator"] == estimator][["covers", "bound_holds"]].mean()


def test_high_confidence_lower_bound_holds_at_least_95_percent_of_seeds(coverage: pd.DataFrame) -> None:
    # the clipped empirical Bernstein bound of PDIS is a guarantee (any sample size, probability >= 95%)
    assert _rates(coverage, "pdis")["bound_holds"] >= 0.95
    # the percentile-bootstrap bounds of weighted PDIS and DR are approximate 95% bounds
    assert _rates(coverage, "doubly_robust")["bound_holds"] >= 0.90
    assert _rates(coverage, "weighted_pdis")["bound_holds"] >= 0.90


def test_doubly_robust_interval_covers_the_truth_at_its_level(coverage: pd.DataFrame) -> None:
    assert 0.90 <= _rates(coverage, "doubly_robust")["covers"] <= 0.98


@pytest.mark.parametrize("estimator", ["pdis", "doubly_robust"])
def test_unbiased_estimators_average_to_the_monte_carlo_truth(coverage: pd.DataFrame, estimator: str) -> None:
    estimates = coverage.loc[coverage["estimator"] == estimator, "estimate"]
    se = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - coverage["truth"].iloc[0]) < 3 * se


def test_doubly_robust_is_tighter_than_importance_sampling(coverage: pd.DataFrame) -> None:
    spread = coverage.groupby("estimator")["estimate"].std()
    assert spread["doubly_robust"] < 0.9 * spread["pdis"]


def test_fitted_q_beats_the_best_one_step_policy_at_the_same_budget() -> None:
    config, _, _, evaluation = small_study()
    comparison = evaluation.comparison
    assert comparison["low"] > 0  # the 95% interval of the paired difference excludes zero
    spend = evaluation.policies.set_index("policy")["true_spend"]
    budget = config.budget.per_customer
    # every policy was tuned to the same budget on independent simulated customers
    assert (spend <= budget * 1.05).all()
    assert spend["fitted_q"] <= spend[comparison["rival"]] + 0.05 * budget


def test_the_study_table_puts_every_estimate_next_to_the_truth() -> None:
    config, _, models, evaluation = small_study()
    table = evaluation.table
    assert set(table["policy"]) == set(models.policies) == {"fitted_q", "random", "propensity", "expected_value",
                                                             "value_uplift", "one_step"}
    assert set(table["estimator"]) == {"pdis", "weighted_pdis", "doubly_robust"}
    assert table[["estimate", "low", "high", "lower_bound", "true_value"]].notna().all().all()
    assert (table["low"] <= table["estimate"]).all() and (table["estimate"] <= table["high"]).all()
    assert table["lower_bound_holds"].mean() >= 0.9
    metrics = json.loads(json.dumps(evaluation_metrics(evaluation)))
    assert metrics["fitted_q_vs_best_one_step"]["rival"] == evaluation.comparison["rival"]
    assert metrics["policies"]["fitted_q"]["true_value"] == pytest.approx(
        float(evaluation.policies.set_index("policy").loc["fitted_q", "true_value"]))
    assert len(metrics["off_policy"]) == len(table)
    shares = evaluation.action_shares.pivot(index="step", columns="action", values="share")
    first, second = config.decision_steps[:2]
    assert shares.loc[first, "ad"] > 0.3  # the learned sequence: the ad first ...
    assert shares.loc[second, "large_discount"] > 0.2  # ... then the large discount


def test_truth_table_and_paired_difference_arithmetic() -> None:
    a = MonteCarloRun(np.array([1.0, 3.0, 5.0, 7.0]), np.array([1.0, 1.0, 2.0, 2.0]), np.zeros(4), np.zeros((4, 1)))
    b = MonteCarloRun(np.array([0.0, 2.0, 5.0, 5.0]), np.array([1.0, 1.0, 1.0, 1.0]), np.zeros(4), np.zeros((4, 1)))
    truth = truth_table({"a": a, "b": b}, 0.95).set_index("policy")
    assert truth.loc["a", "true_value"] == 4.0 and truth.loc["b", "true_spend"] == 1.0
    half = 1.959963984540054 * np.std([1.0, 3.0, 5.0, 7.0], ddof=1) / 2
    assert truth.loc["a", "true_value_high"] == pytest.approx(4.0 + half)
    diff = paired_difference(a, b, 0.95)
    assert diff["difference"] == pytest.approx(1.0) and diff["spend_difference"] == pytest.approx(0.5)
    assert diff["high"] - diff["difference"] == pytest.approx(1.959963984540054 * np.std([1, 1, 0, 2], ddof=1) / 2)
