"""Uplift metrics that tell the truth: numpy Qini/AUUC equal causalml's, bootstrap intervals and a random
ranking's range come with them, and the train stage warns when the chosen model does not beat the heuristic."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, SEED
from offerflow.config import TrainConfig
from offerflow.simulation import add_customer_features, simulate_history
from offerflow.uplift.evaluation import arm_uplift_evaluation, ranking_order
from offerflow.uplift.ranking_intervals import binned_scores, cell_matrix, random_ranking_scores, ranking_intervals
from offerflow.uplift.training import train_and_evaluate

ARMS = ["dm1", "dm2", "dm3"]
SEGMENTS = ["age_cat", "freq_cat"]


def _campaign(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    treated = rng.random(n) < 0.4
    y = (rng.random(n) < 0.2 + 0.3 * x * treated).astype(int)
    return x, treated, y, rng


def test_numpy_scores_equal_causalml_and_binned_scores_are_close():
    from causalml.metrics import auuc_score, get_cumlift, qini_score

    x, treated, y, rng = _campaign(3000, SEED)
    scores = {"a": x + rng.normal(0, 0.05, len(x)), "b": rng.random(len(x))}
    metrics, _, _ = arm_uplift_evaluation(y, treated, scores, seed=1, top_shares=(0.1,), true_effect=0.3 * x)
    frame = pd.DataFrame({"y": y, "w": treated.astype(int), **scores})
    reference = {"auuc": auuc_score(frame, normalize=True), "qini": qini_score(frame, normalize=True)}
    lift = get_cumlift(frame).loc[300]
    truth = auuc_score(pd.DataFrame({**scores, "tau": 0.3 * x}), treatment_effect_col="tau", normalize=True)
    for name in scores:
        assert metrics["auuc"][name] == pytest.approx(reference["auuc"][name], abs=1e-6)
        assert metrics["qini"][name] == pytest.approx(reference["qini"][name], abs=1e-6)
        assert metrics["uplift_at"]["top_10pct"][name] == pytest.approx(lift[name], abs=1e-6)
        assert metrics["auuc_true_effect"][name] == pytest.approx(truth[name], abs=1e-6)
        # the bootstrap's binned areas (1000 bins) on the unresampled rows: the same numbers to 1e-3
        order = ranking_order(scores[name], np.random.default_rng(1).permutation(len(y)))
        cells = np.asarray(cell_matrix(order, y, treated, np.zeros(len(y), dtype=np.int64), 1, 1000).sum(axis=0)).reshape(1, -1, 4)
        qini, auuc = binned_scores(cells)
        assert qini[0] == pytest.approx(metrics["qini"][name], abs=1e-3)
        assert auuc[0] == pytest.approx(metrics["auuc"][name], abs=1e-3)


def test_random_ranking_range_matches_explicit_permutations():
    """The hypergeometric bin draws give the same null distribution as shuffling the rows."""
    _, treated, y, rng = _campaign(4000, 3)
    drawn = random_ranking_scores(y, treated, 400, seed=5, bins=200)[0]
    shuffled = []
    for _ in range(400):
        order = rng.permutation(len(y))
        cells = np.asarray(cell_matrix(order, y, treated, np.zeros(len(y), dtype=np.int64), 1, 200).sum(axis=0)).reshape(1, -1, 4)
        shuffled.append(binned_scores(cells)[0][0])
    assert abs(np.mean(drawn)) < 0.01 and abs(np.mean(shuffled)) < 0.01
    assert np.std(drawn) == pytest.approx(np.std(shuffled), rel=0.15)


def test_bootstrap_intervals_cover_the_true_qini_of_a_fixed_ranking():
    """Over independent campaigns the 90% interval of a fixed ranking's Qini covers the score it has
    on a very large campaign (its population value) about 90% of the time; the difference of a ranking
    with itself plus noise is paired (narrower than either interval)."""
    big_x, big_t, big_y, _ = _campaign(400_000, 99)
    population = arm_uplift_evaluation(big_y, big_t, {"model": big_x}, seed=1, top_shares=(0.1,))[0]["qini"]["model"]
    covered = 0
    for seed in range(40):
        x, treated, y, rng = _campaign(3000, 1000 + seed)
        clusters = np.arange(len(y)) // 2
        rankings = {"model": x, "heuristic": x + rng.normal(0, 0.1, len(x))}
        entry = ranking_intervals({"dm2": (y, treated, rankings)}, clusters, {"dm2": np.arange(len(y))}, 200, seed, level=0.9)["dm2"]
        low, high = entry["qini"]["model"]
        covered += low <= population <= high
        difference = entry["qini"]["model_minus_heuristic"]
        assert difference[1] - difference[0] < high - low
    assert 0.8 <= covered / 40 <= 1.0


@pytest.fixture(scope="module")
def customers():
    return add_customer_features(pd.read_csv(ROOT / "data/external/customers.csv"), seed=SEED)


def _config(features):
    return TrainConfig.model_validate({
        "features": features, "learner": "t_learner", "base_model": "lightgbm",
        "model_params": {"n_estimators": 60, "learning_rate": 0.05, "num_leaves": 8, "min_child_samples": 50},
        "propensity": {"source": "uniform"},
        "evaluation": {"heuristic": {"name": "highest frequency first", "column": "freq_cat"}, "figures": False,
                       "bootstrap_samples": 200},
    })


def test_train_warns_when_there_is_no_heterogeneity_to_find(customers, caplog):
    """Every customer has the same probabilities under every arm: no ranking can beat another."""
    flat = pd.read_csv(ROOT / "data/external/visit_probability.csv").assign(prob_dm1=0.2, prob_dm2=0.3, prob_dm3=0.4)
    history = simulate_history(customers, flat, ARMS, SEGMENTS, campaigns=4, seed=SEED).merge(customers, on="customer_id")
    features = [*SEGMENTS, "recency_days", "past_spend", "tenure_years", "channel"]
    with caplog.at_level(logging.WARNING, logger="offerflow.train"):
        result = train_and_evaluate(history, features, ARMS, "dm1", _config(features), SEGMENTS)
    assert result.metrics["model_beats_heuristic"] is False
    for arm in ("dm2", "dm3"):
        entry = result.metrics["evaluation"]["intervals"][arm]
        assert entry["beats_heuristic"] is False
        low, high = entry["qini"]["model_minus_heuristic"]
        assert low <= 0
        # the model's Qini interval overlaps what random rankings score
        assert entry["qini"]["model"][0] < entry["qini"]["random_ranking"][1]
    assert any("does not beat the heuristic" in record.message for record in caplog.records)
    assert result.metrics["warnings"]


def test_train_does_not_warn_when_the_model_finds_strong_heterogeneity(customers, caplog):
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    history = simulate_history(
        customers, truth, ARMS, SEGMENTS, campaigns=8, seed=SEED,
        heterogeneity=2.0, heterogeneity_features=["recency_days", "past_spend"],
    ).merge(customers, on="customer_id")
    features = [*SEGMENTS, "recency_days", "past_spend", "tenure_years", "channel"]
    with caplog.at_level(logging.WARNING, logger="offerflow.train"):
        result = train_and_evaluate(history, features, ARMS, "dm1", _config(features), SEGMENTS)
    assert result.metrics["model_beats_heuristic"] is True and result.metrics["model_beats_random"] is True
    for arm in ("dm2", "dm3"):
        entry = result.metrics["evaluation"]["intervals"][arm]
        assert entry["qini"]["model_minus_heuristic"][0] > 0
        assert entry["qini"]["model"][0] > entry["qini"]["random_ranking"][1]
    assert not [r for r in caplog.records if r.name == "offerflow.train"]
    assert result.metrics["warnings"] == []
