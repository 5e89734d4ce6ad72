"""Uplift model + probability tables, checked against the simulator's ground truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, SEED
from offerflow.config import TrainConfig, load_params
from offerflow.io import file_sha256
from offerflow.probabilities import aggregate_segment_probabilities, predict_customer_probabilities
from offerflow.segments import attach_segment_ids, segment_catalog
from offerflow.simulate import simulate_history
from offerflow.modeling import run_probabilities, run_simulate, run_train
from offerflow.stages import layout_for
from offerflow.train import train_uplift

ARMS = ["dm1", "dm2", "dm3"]
SEGMENTS = ["age_cat", "freq_cat"]


@pytest.fixture(scope="module")
def example():
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    history = simulate_history(customers, truth, ARMS, SEGMENTS, campaigns=4, seed=SEED).merge(
        customers, on="customer_id"
    )
    return customers, truth, history


@pytest.mark.parametrize("base_model", ["lightgbm", "logistic"])
def test_learned_segment_table_is_close_to_the_truth(example, base_model):
    customers, truth, history = example
    model = train_uplift(history, SEGMENTS, ARMS, "dm1", TrainConfig(base_model=base_model, seed=SEED))
    catalog = segment_catalog(customers, SEGMENTS, reference_table=truth)
    scored = predict_customer_probabilities(model, attach_segment_ids(customers, catalog, SEGMENTS))
    table = aggregate_segment_probabilities(scored, catalog, ARMS)
    assert list(table.columns) == [*SEGMENTS, "segment_id", "prob_dm1", "prob_dm2", "prob_dm3", "n_customers"]
    assert table["n_customers"].sum() == len(customers)
    merged = table.merge(truth, on=SEGMENTS + ["segment_id"], suffixes=("", "_true"))
    errors = np.concatenate([(merged[f"prob_{a}"] - merged[f"prob_{a}_true"]).to_numpy() for a in ARMS])
    # ~417 rows per segment x arm: a binomial standard error of about 0.02; a model that ignored
    # the features or swapped arms would be off by 0.1-0.4
    weights = np.tile(merged["n_customers"].to_numpy(), 3)
    assert np.average(np.abs(errors), weights=weights) < 0.03
    assert np.abs(errors).max() < 0.12


def test_missing_arm_in_history_is_an_error(example):
    _, _, history = example
    with pytest.raises(ValueError, match=r"no rows for arm\(s\) \['dm3'\]"):
        train_uplift(history[history["arm"] != "dm3"], SEGMENTS, ARMS, "dm1", TrainConfig())


def test_train_and_probabilities_stages_are_deterministic(project):
    params = load_params(project / "params.yaml")
    layout = layout_for(params)
    run_simulate(params, layout)
    hashes = []
    for _ in range(2):
        run_train(params, layout)
        run_probabilities(params, layout)
        outputs = [layout.model, layout.model_metadata, layout.train_metrics, layout.customer_probabilities,
                   layout.segment_probabilities]
        hashes.append([file_sha256(path) for path in outputs])
    assert hashes[0] == hashes[1]
    metrics = json.loads(layout.train_metrics.read_text())
    assert metrics["rows"] == 20_000
    assert metrics["mae_vs_truth"] < 0.03
    scored = pd.read_parquet(layout.customer_probabilities)
    assert len(scored) == 5000 and scored["customer_id"].is_unique
    assert scored[["prob_dm1", "prob_dm2", "prob_dm3"]].apply(lambda c: c.between(0, 1).all()).all()
