"""Debiasing on targeted (non-randomized) history: the naive difference in rates is biased, the doubly
robust estimate recovers the simulator's true effect within its confidence interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, SEED
from offerflow.config import PropensityConfig, TrainConfig
from offerflow.simulation import simulate_history, targeted_propensities
from offerflow.uplift.model import design_matrix
from offerflow.uplift.debias import PropensityModel, aipw_pseudo_outcomes, clustered_mean
from offerflow.uplift.training import train_and_evaluate

ARMS = ["dm1", "dm2", "dm3"]
SEGMENTS = ["age_cat", "freq_cat"]
FAST = {"evaluation": {"heuristic": None, "figures": False}}


@pytest.fixture(scope="module")
def targeted():
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    history = simulate_history(
        customers, truth, ARMS, SEGMENTS, campaigns=4, seed=SEED,
        assignment="targeted", targeting_column="freq_cat", targeting_strength=2.0,
    )
    return customers, history.merge(customers, on="customer_id")


def effects(history, features, source):
    config = TrainConfig.model_validate({"features": features, "base_model": "logistic", "propensity": {"source": source}, **FAST})
    return train_and_evaluate(history, features, ARMS, "dm1", config).metrics["effects"]


@pytest.mark.parametrize("source", ["estimate", "logged"])
def test_naive_difference_is_biased_and_doubly_robust_estimate_covers_the_truth(targeted, source):
    _, history = targeted
    report = effects(history, SEGMENTS, source)
    for arm in ("dm2", "dm3"):
        entry = report[arm]
        true = entry["true"]
        assert true == pytest.approx((history[f"true_prob_{arm}"] - history["true_prob_dm1"]).mean(), abs=1e-6)
        naive, aipw = entry["naive"], entry["aipw"]
        # frequent customers convert more anyway and got the bigger coupons more often: the raw
        # difference overstates the effect by far more than its own interval allows
        assert naive["ci_low"] > true, (arm, naive, true)
        assert naive["estimate"] - true > 0.03
        assert aipw["ci_low"] <= true <= aipw["ci_high"], (arm, aipw, true)
        assert abs(aipw["estimate"] - true) < abs(naive["estimate"] - true) / 3


def test_logged_propensity_rescues_an_outcome_model_that_misses_the_confounder(targeted):
    # freq_cat drove the assignment but is left out of the model: only the logged propensity knows it
    _, history = targeted
    report = effects(history, ["age_cat"], "logged")["dm3"]
    assert report["naive"]["ci_low"] > report["true"]
    assert report["aipw"]["ci_low"] <= report["true"] <= report["aipw"]["ci_high"]
    blind = effects(history, ["age_cat"], "estimate")["dm3"]  # neither nuisance model sees freq_cat
    assert blind["aipw"]["ci_low"] > report["true"]


def test_estimated_propensity_matches_the_logging_policy(targeted):
    customers, history = targeted
    design = design_matrix(history, SEGMENTS, ARMS)
    model = PropensityModel(PropensityConfig(), ARMS, seed=1).fit(design.X, design.arm_index)
    estimated = model.predict(design.X)
    rank = history["freq_cat"].map({"freq0": 0, "freq1": 1, "freq2": 2, "freq3~": 3}).to_numpy(dtype=float)
    rank_all = customers["freq_cat"].map({"freq0": 0, "freq1": 1, "freq2": 2, "freq3~": 3}).to_numpy(dtype=float)
    # the policy standardizes the score over customers; rows repeat customers, so map per customer
    policy = targeted_propensities(rank_all, 3, 2.0)
    per_rank = {r: policy[np.flatnonzero(rank_all == r)[0]] for r in range(4)}
    expected = np.array([per_rank[r] for r in rank])
    assert np.abs(estimated - expected).max() < 0.05


def test_aipw_pseudo_outcomes_and_clustered_interval_by_hand():
    mu = np.array([[0.2, 0.5], [0.3, 0.4], [0.1, 0.6]])
    phi = aipw_pseudo_outcomes(mu, np.array([0, 1, 1]), np.array([1, 0, 1]), np.array([0.5, 0.25, 0.5]))
    expected = np.array([[0.2 + 0.8 / 0.5, 0.5], [0.3, 0.4 - 0.4 / 0.25], [0.1, 0.6 + 0.4 / 0.5]])
    np.testing.assert_allclose(phi, expected)
    values, clusters = np.array([1.0, 3.0, 2.0, 6.0]), np.array([1, 1, 2, 2])
    stats = clustered_mean(values, clusters, 0.95)
    # cluster sums of deviations from 3: (-2 + 0) and (-1 + 3) -> se = sqrt(4 + 4) / 4
    assert stats["estimate"] == 3.0
    assert stats["se"] == pytest.approx(np.sqrt(8) / 4)
    assert stats["ci_high"] - stats["estimate"] == pytest.approx(1.959964 * np.sqrt(8) / 4, rel=1e-6)
