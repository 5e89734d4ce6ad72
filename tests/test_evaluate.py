"""Out-of-fold evaluation: metrics equal hand computations, folds never split a customer, and a model
that sees the customer-level features beats random targeting and the named heuristic on the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, SEED
from offerflow.config import TrainConfig
from offerflow.simulation import add_customer_features, simulate_history
from offerflow.uplift.crossfit import customer_folds
from offerflow.uplift.evaluation import arm_uplift_evaluation, truth_errors, uplift_evaluation
from offerflow.uplift.training import train_and_evaluate

ARMS = ["dm1", "dm2", "dm3"]
SEGMENTS = ["age_cat", "freq_cat"]


def test_customer_folds_keep_customers_together_and_are_balanced_and_seeded():
    ids = np.repeat(np.arange(1000), 4)
    folds = customer_folds(ids, 5, seed=1)
    assert pd.Series(folds).groupby(ids).nunique().max() == 1
    assert np.bincount(folds).tolist() == [800] * 5
    np.testing.assert_array_equal(folds, customer_folds(ids, 5, seed=1))
    assert not np.array_equal(folds, customer_folds(ids, 5, seed=2))
    with pytest.raises(ValueError, match="at least 5 customers"):
        customer_folds(np.array([1, 2, 3]), 5, seed=1)


def test_uplift_metrics_equal_hand_computations():
    rng = np.random.default_rng(SEED)
    n = 4000
    x = rng.random(n)
    treated = rng.random(n) < 0.5
    y = (rng.random(n) < 0.2 + 0.3 * x * treated).astype(int)  # uplift grows with x
    score = x + rng.normal(0, 0.05, n)  # distinct scores: the ranking is unique
    metrics, gain, _ = arm_uplift_evaluation(y, treated, {"model": score}, seed=3, top_shares=(0.1, 0.3))
    order = np.argsort(-score)
    for share in (0.1, 0.3):
        top = order[: int(np.ceil(share * n))]
        expected = y[top][treated[top]].mean() - y[top][~treated[top]].mean()
        assert metrics["uplift_at"][f"top_{round(share * 100)}pct"]["model"] == pytest.approx(expected, abs=1e-6)
    # cumulative gain per customer ends at the overall difference in rates
    assert gain["model"].iloc[-1] == pytest.approx(y[treated].mean() - y[~treated].mean(), abs=1e-9)
    # AUUC (normalized) by hand: mean over k = 0..n of gain(k) / gain(n)
    k = np.arange(1, n + 1)
    t_cum, y_t = np.cumsum(treated[order]), np.cumsum((y * treated)[order])
    c_cum, y_c = k - t_cum, np.cumsum((y * ~treated)[order])
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = (y_t / t_cum - y_c / c_cum) * k
    curve = pd.Series(np.concatenate([[0.0], curve])).interpolate().to_numpy()
    assert metrics["auuc"]["model"] == pytest.approx((curve / curve[-1]).mean(), abs=1e-6)


def test_truth_errors_by_hand():
    predicted = np.array([[0.1, 0.5], [0.3, 0.2]])
    truth = np.array([[0.2, 0.5], [0.3, 0.6]])
    report = truth_errors(predicted, truth, ["a", "b"])
    assert report["a"] == {"mae": 0.05, "rmse": round(np.sqrt(0.005), 6)}
    assert report["all_arms"]["mae"] == pytest.approx(0.125)


@pytest.fixture(scope="module")
def heterogeneous_history():
    customers = add_customer_features(pd.read_csv(ROOT / "data/external/customers.csv"), seed=SEED)
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    history = simulate_history(
        customers, truth, ARMS, SEGMENTS, campaigns=4, seed=SEED,
        heterogeneity=1.2, heterogeneity_features=["recency_days", "past_spend"],
    )
    return history.merge(customers, on="customer_id")


def test_model_with_customer_features_beats_random_and_heuristic_on_the_true_uplift(heterogeneous_history):
    features = [*SEGMENTS, "recency_days", "past_spend", "tenure_years", "channel"]
    config = TrainConfig.model_validate({
        "features": features, "base_model": "lightgbm",
        "model_params": {"n_estimators": 80, "learning_rate": 0.05, "num_leaves": 8, "min_child_samples": 50},
        "evaluation": {"heuristic": {"name": "highest frequency first", "column": "freq_cat"}, "figures": False},
    })
    result = train_and_evaluate(heterogeneous_history, features, ARMS, "dm1", config, SEGMENTS)
    for arm in ("dm2", "dm3"):
        entry = result.metrics["evaluation"]["arms"][arm]
        on_truth = entry["auuc_true_effect"]
        assert on_truth["model"] > on_truth["heuristic"] > on_truth["random"] - 0.02, (arm, on_truth)
        assert entry["qini"]["model"] > entry["qini"]["random"]
        top = entry["uplift_at_true_effect"]["top_10pct"]
        assert top["model"] > top["random"]
    curves = result.curves["cumulative_gain"]
    assert list(curves.columns) == ["population_share", *[f"{a}_{r}" for a in ("dm2", "dm3") for r in ("model", "random", "heuristic")]]
    # with the truth known, the out-of-fold probabilities' error is reported and small
    assert result.metrics["evaluation"]["error_vs_truth"]["all_arms"]["mae"] < 0.05


def test_evaluation_without_heuristic_or_truth_reports_model_and_random_only():
    rng = np.random.default_rng(1)
    n = 3000
    arm_index = rng.integers(0, 3, n)
    y = (rng.random(n) < 0.3).astype(int)
    probabilities = rng.random((n, 3))
    metrics, curves = uplift_evaluation(probabilities, arm_index, y, ARMS, "dm1", None, seed=1)
    assert set(metrics) == {"dm2", "dm3"}
    assert set(metrics["dm2"]["auuc"]) == {"model", "random"} and "auuc_true_effect" not in metrics["dm2"]
    assert metrics["dm2"]["rows"] == int(((arm_index == 0) | (arm_index == 1)).sum())
