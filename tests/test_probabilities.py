"""Probability tables: monotone in coupon value when declared, intervals that cover the truth, counts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression

from conftest import ROOT, SEED, set_params
from offerflow.config import ConfigError, TrainConfig, load_params
from offerflow.stages import run_probabilities, run_simulate, run_train
from offerflow.uplift.probabilities import aggregate_segment_probabilities, predict_customer_probabilities
from offerflow.segments import attach_segment_ids, segment_catalog
from offerflow.simulation import simulate_history
from offerflow.catalog import Catalog
from offerflow.uplift.monotone import isotonic_rows, monotone_columns
from offerflow.uplift.training import train_and_evaluate

ARMS = ["dm1", "dm2", "dm3"]
SEGMENTS = ["age_cat", "freq_cat"]


def test_isotonic_rows_equal_scikit_learns_isotonic_regression():
    rng = np.random.default_rng(SEED)
    values, weights = rng.random((500, 4)), rng.random((500, 4)) + 0.05
    expected = np.array(
        [IsotonicRegression().fit(np.arange(4), v, sample_weight=w).predict(np.arange(4)) for v, w in zip(values, weights)]
    )
    np.testing.assert_allclose(isotonic_rows(values, weights), expected, atol=1e-12)


def test_monotone_columns_pool_only_violations_and_respect_the_declared_order():
    matrix = np.array([[0.30, 0.20, 0.50], [0.10, 0.20, 0.30]])
    weights = np.array([[1.0, 3.0, 1.0], [1.0, 1.0, 1.0]])
    result = monotone_columns(matrix, ARMS, ["dm1", "dm2", "dm3"], weights)
    np.testing.assert_allclose(result[0], [0.225, 0.225, 0.5])  # (0.3*1 + 0.2*3) / 4
    np.testing.assert_array_equal(result[1], matrix[1])
    # an order over a subset leaves the other arm alone
    np.testing.assert_allclose(monotone_columns(matrix, ARMS, ["dm3", "dm1"], weights)[0], [0.4, 0.2, 0.4])
    with pytest.raises(ValueError, match=r"unknown arm\(s\) \['dm9'\]"):
        monotone_columns(matrix, ARMS, ["dm1", "dm9"], weights)


@pytest.fixture(scope="module")
def small_history_table():
    """A thin history (one campaign, ~100 rows per segment and arm): noisy enough to break monotonicity."""
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    history = simulate_history(customers, truth, ARMS, SEGMENTS, campaigns=1, seed=SEED + 3).merge(customers, on="customer_id")
    config = TrainConfig.model_validate(
        {"base_model": "lightgbm", "model_params": {"n_estimators": 60, "num_leaves": 8, "min_child_samples": 5},
         "evaluation": {"figures": False}}
    )
    model = train_and_evaluate(history, SEGMENTS, ARMS, "dm1", config, SEGMENTS).model
    catalog = segment_catalog(customers, SEGMENTS, reference_table=truth)
    return model, attach_segment_ids(customers, catalog, SEGMENTS), catalog, truth, history


def test_declared_monotonicity_holds_in_customer_and_segment_tables(small_history_table):
    model, customers, catalog, truth, _ = small_history_table
    raw = predict_customer_probabilities(model, customers)
    fitted = predict_customer_probabilities(model, customers, monotone_arms=ARMS)
    cols = [f"prob_{a}" for a in ARMS]
    assert (np.diff(raw[cols].to_numpy(), axis=1) < 0).any()  # the noisy model does violate it
    assert (np.diff(fitted[cols].to_numpy(), axis=1) >= -1e-12).all()
    table = aggregate_segment_probabilities(fitted, catalog, ARMS)
    assert (np.diff(table[cols].to_numpy(), axis=1) >= -1e-12).all()
    # pooling toward the known structure does not hurt, and usually helps, accuracy
    def error(t):
        merged = t.merge(truth, on=SEGMENTS, suffixes=("", "_true"))
        return np.mean([np.abs(merged[c] - merged[f"{c}_true"]).mean() for c in cols])
    assert error(table) <= error(aggregate_segment_probabilities(raw, catalog, ARMS)) + 1e-12


def test_segment_intervals_count_the_history_and_cover_the_truth(small_history_table):
    model, customers, catalog, truth, history = small_history_table
    scored = predict_customer_probabilities(model, customers)
    table = aggregate_segment_probabilities(scored, catalog, ARMS, model.segment_evidence, 0.95)
    head = [*SEGMENTS, "segment_id", "prob_dm1", "prob_dm2", "prob_dm3", "n_customers"]
    assert list(table.columns[: len(head)]) == head
    counts = history.groupby([*SEGMENTS, "arm"]).size().unstack("arm").reset_index()
    merged = table.merge(counts, on=SEGMENTS).merge(truth, on=SEGMENTS, suffixes=("", "_true"))
    covered = []
    for arm in ARMS:
        np.testing.assert_array_equal(merged[f"n_obs_{arm}"], merged[arm])
        low, high = merged[f"prob_{arm}_ci_low"], merged[f"prob_{arm}_ci_high"]
        assert ((low <= high) & (low >= 0) & (high <= 1)).all()
        # randomized history, one feature cell per segment: the doubly robust interval is about as
        # wide as the textbook binomial (Wald) interval of the cell's observed rate
        n = merged[f"n_obs_{arm}"]
        rate = history[history["arm"] == arm].groupby(SEGMENTS)["converted"].mean().rename("rate")
        p = merged.merge(rate.reset_index(), on=SEGMENTS)["rate"]
        wald = 1.959964 * np.sqrt(p * (1 - p) / n)
        inner = (high - low)[(low > 0) & (high < 1)] / 2  # intervals not cut at 0 or 1
        ratio = inner / wald[inner.index]
        assert ratio.between(0.7, 1.4).all(), ratio.describe()
        covered.append(merged[f"prob_{arm}_true"].between(low, high))
    coverage = float(pd.concat(covered).mean())
    assert coverage >= 0.85, coverage  # 48 cells at a nominal 95%


def test_probabilities_stage_writes_metrics_and_rejects_unknown_monotone_arms(project):
    set_params(project, train__candidates=[], train__evaluation__figures=False)
    params = load_params(project / "params.yaml")
    layout = Catalog(params)
    run_simulate(params)
    run_train(params)
    run_probabilities(params)
    metrics = json.loads(layout.probabilities_metrics.read_text())
    assert metrics["monotone_arms"] == ARMS and metrics["segments"] == 16
    assert metrics["vs_truth"]["weighted_mae"] < 0.03
    assert metrics["vs_truth"]["ci_coverage"] >= 0.85
    table = pd.read_csv(layout.segment_probabilities)
    trained_on = json.loads(layout.train_metrics.read_text())["rows"]
    assert (table["n_obs_dm1"] + table["n_obs_dm2"] + table["n_obs_dm3"]).sum() == trained_on  # held-out rows excluded
    set_params(project, probabilities__monotone_arms=["dm1", "dm4"])
    with pytest.raises(ConfigError, match="probabilities.monotone_arms"):
        run_probabilities(load_params(project / "params.yaml"))
