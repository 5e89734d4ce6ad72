"""Uplift learners and the train stage, checked against the simulator's ground truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, SEED, set_params
from offerflow.config import TrainConfig, load_params
from offerflow.io import file_sha256
from offerflow.pipeline import run_stage
from offerflow.stages import run_probabilities, run_simulate, run_train
from offerflow.uplift.probabilities import aggregate_segment_probabilities, predict_customer_probabilities
from offerflow.segments import attach_segment_ids, segment_catalog
from offerflow.simulation import add_customer_features, simulate_history
from offerflow.catalog import Catalog
from offerflow.uplift.model import train_uplift
from offerflow.uplift.training import select_learner

ARMS = ["dm1", "dm2", "dm3"]
SEGMENTS = ["age_cat", "freq_cat"]
LGBM = {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 8, "min_child_samples": 20}


@pytest.fixture(scope="module")
def example():
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    history = simulate_history(customers, truth, ARMS, SEGMENTS, campaigns=4, seed=SEED).merge(
        customers, on="customer_id"
    )
    return customers, truth, history


LEARNERS = [
    (learner, base)
    for learner in ("s_learner", "t_learner", "x_learner", "dr_learner")
    for base in ("lightgbm", "logistic")
] + [("uplift_forest", "lightgbm")]


@pytest.mark.parametrize(("learner", "base_model"), LEARNERS)
def test_every_learner_recovers_the_true_segment_table(example, learner, base_model):
    customers, truth, history = example
    params = LGBM if base_model == "lightgbm" and learner != "uplift_forest" else {}
    config = TrainConfig(learner=learner, base_model=base_model, model_params=params, seed=SEED)
    model = train_uplift(history, SEGMENTS, ARMS, "dm1", config)
    catalog = segment_catalog(customers, SEGMENTS, reference_table=truth)
    scored = predict_customer_probabilities(model, attach_segment_ids(customers, catalog, SEGMENTS))
    table = aggregate_segment_probabilities(scored, catalog, ARMS)
    assert list(table.columns) == [*SEGMENTS, "segment_id", "prob_dm1", "prob_dm2", "prob_dm3", "n_customers"]
    assert table["n_customers"].sum() == len(customers)
    merged = table.merge(truth, on=SEGMENTS + ["segment_id"], suffixes=("", "_true"))
    errors = np.concatenate([(merged[f"prob_{a}"] - merged[f"prob_{a}_true"]).to_numpy() for a in ARMS])
    # ~417 rows per segment x arm: a binomial standard error of about 0.02 (0.04 in the smallest
    # segments); a model that ignored the features or swapped arms would be off by 0.1-0.4
    weights = np.tile(merged["n_customers"].to_numpy(), 3)
    assert np.average(np.abs(errors), weights=weights) < 0.03
    assert np.abs(errors).max() < 0.12


def test_history_with_a_missing_or_unknown_arm_is_an_error(example):
    _, _, history = example
    with pytest.raises(ValueError, match=r"no rows for arm\(s\) \['dm3'\]"):
        train_uplift(history[history["arm"] != "dm3"], SEGMENTS, ARMS, "dm1", TrainConfig())
    odd = history.assign(arm=history["arm"].replace({"dm3": "dm9"}))
    with pytest.raises(ValueError, match=r"arm\(s\) \['dm9'\] that are not in arms.coupon_cost"):
        train_uplift(odd, SEGMENTS, ["dm1", "dm2"], "dm1", TrainConfig())


def test_selection_keeps_the_best_by_the_stated_criterion():
    scores = {"a": {"brier": 0.20, "qini": 0.05}, "b": {"brier": 0.19, "qini": 0.04}, "c": {"brier": 0.19, "qini": 0.06}}
    assert select_learner(scores, "brier") == "b"  # lower wins; tie with c goes to the one listed first
    assert select_learner(scores, "qini") == "c"  # higher wins


def stage_outputs(layout):
    names = ("model", "model_metadata", "train_metrics", "customer_probabilities", "segment_probabilities",
             "train_gain_curve", "train_qini_curve", "train_figure", "probabilities_metrics")
    return [layout.path(name) for name in names]


def test_train_and_probabilities_stages_are_deterministic_and_report_all_candidates(project):
    params = load_params(project / "params.yaml")
    layout = Catalog(params)
    for stage in ("simulate", "validate", "train", "probabilities"):
        run_stage(stage, params)  # as the CLI runs them: provenance stamps included
    first = [file_sha256(path) for path in stage_outputs(layout)]
    # again in a fresh process with another hash seed: set ordering must not leak into the bytes
    env = {**os.environ, "PYTHONHASHSEED": "977"}
    code = "from offerflow.cli import main; import sys; sys.exit(main(sys.argv[1:]))"
    for stage in ("train", "probabilities"):
        subprocess.run([sys.executable, "-c", code, stage, "--params", str(project / "params.yaml")],
                       check=True, env=env, cwd=project, capture_output=True)
    assert [file_sha256(path) for path in stage_outputs(layout)] == first
    metrics = json.loads(layout.train_metrics.read_text())
    assert metrics["rows"] + metrics["held_out_rows"] == 12 * 5000  # 12 campaigns; held-out customers never trained on
    assert 0.25 < metrics["held_out_rows"] / (12 * 5000) < 0.35
    assert metrics["mae_vs_truth"] < 0.03
    selection = metrics["selection"]
    assert set(selection["scores"]) == {"t_learner/logistic", "t_learner/lightgbm"}
    best = min(selection["scores"], key=lambda name: selection["scores"][name]["brier"])
    assert selection["chosen"] == best and selection["criterion"] == "brier"
    for arm in ("dm2", "dm3"):
        entry = metrics["evaluation"]["arms"][arm]
        assert entry["auuc"]["model"] > entry["auuc"]["random"]
        assert entry["qini"]["model"] > entry["qini"]["random"]
    assert metrics["evaluation"]["error_vs_truth"]["all_arms"]["mae"] < 0.03
    scored = pd.read_parquet(layout.customer_probabilities)
    assert len(scored) == 5000 and scored["customer_id"].is_unique
    assert scored[["prob_dm1", "prob_dm2", "prob_dm3"]].apply(lambda c: c.between(0, 1).all()).all()
    curves = pd.read_csv(layout.train_gain_curve)
    assert len(curves) == 101 and curves["population_share"].iloc[-1] == 1.0
    assert layout.train_figure.read_bytes()[:4] == b"\x89PNG"


def write_campaign(project, arms: dict[str, float], probabilities: list[list[float]]):
    """A user's own data: other column names, arms and extra numeric + categorical features."""
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    customers = add_customer_features(customers, seed=SEED).rename(
        columns={"customer_id": "client_no", "age_cat": "band", "freq_cat": "loyalty"}
    )
    customers.to_csv(project / "data/external/customers.csv", index=False)
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")[["age_cat", "freq_cat", "segment_id"]]
    truth = truth.rename(columns={"age_cat": "band", "freq_cat": "loyalty"})
    base = np.linspace(0.6, 1.4, len(truth))  # segment-specific level, ordered like the example
    for j, arm in enumerate(arms):
        truth[f"prob_{arm}"] = np.round(np.clip(np.array(probabilities[j]) * base, 0.01, 0.97), 4)
    truth.to_csv(project / "data/external/visit_probability.csv", index=False)
    control = next(iter(arms))
    set_params(
        project,
        data__customer_id="client_no", data__segment_columns=["band", "loyalty"],
        data__arm_column="offer", data__outcome_column="bought",
        arms__control=control, arms__coupon_cost=arms,
        simulate__heterogeneity={"strength": 0.8, "features": ["recency_days", "past_spend"]},
        train__features=["band", "loyalty", "recency_days", "past_spend", "tenure_years", "channel"],
        train__base_model="lightgbm", train__model_params=LGBM, train__candidates=[],
        train__evaluation={"folds": 3, "heuristic": {"name": "biggest spenders first", "column": "past_spend"},
                           "figures": False},
        probabilities__monotone_arms=list(arms),
    )
    return truth


@pytest.mark.parametrize(
    "arms,levels",
    [
        ({"mail": 0.0, "coupon": 15.0}, [[0.2], [0.35]]),
        ({"none": 0.0, "c5": 5.0, "c10": 10.0, "c15": 15.0}, [[0.15], [0.2], [0.28], [0.4]]),
    ],
    ids=["2-arm", "4-arm"],
)
def test_a_campaign_log_with_other_columns_and_arms_needs_only_params(project, arms, levels):
    truth = write_campaign(project, arms, levels)
    params = load_params(project / "params.yaml")
    layout = Catalog(params)
    run_simulate(params)
    history = pd.read_csv(layout.history)
    assert {"client_no", "offer", "bought"} <= set(history.columns) and set(history["offer"]) == set(arms)
    run_train(params)
    run_probabilities(params)
    names = list(arms)
    table = pd.read_csv(layout.segment_probabilities)
    assert list(table.columns[:4 + len(names)]) == ["band", "loyalty", "segment_id", *[f"prob_{a}" for a in names], "n_customers"]
    merged = table.merge(truth, on=["band", "loyalty", "segment_id"], suffixes=("", "_true"))
    errors = np.concatenate([(merged[f"prob_{a}"] - merged[f"prob_{a}_true"]).abs() for a in names])
    assert errors.mean() < 0.03
    scored = pd.read_parquet(layout.customer_probabilities)
    assert list(scored.columns) == ["customer_id", "segment_id", *[f"prob_{a}" for a in names]]
    # customers differ inside a segment now (continuous features), and the model sees it
    assert scored.groupby("segment_id")[f"prob_{names[-1]}"].std().min() > 0.005
    metrics = json.loads(layout.train_metrics.read_text())
    assert set(metrics["evaluation"]["arms"]) == set(names[1:])
    assert metrics["evaluation"]["error_vs_truth"]["all_arms"]["mae"] < 0.05
    for arm in names[1:]:
        truth_ranked = metrics["evaluation"]["arms"][arm]["auuc_true_effect"]
        assert truth_ranked["model"] > truth_ranked["random"]


def test_model_params_the_learner_does_not_take_and_a_missing_logged_propensity_are_errors(example):
    from offerflow.uplift.training import train_and_evaluate

    _, _, history = example
    forest = TrainConfig(learner="uplift_forest", model_params={"learning_rate": 0.1})
    with pytest.raises(ValueError, match=r"model_params \{'learning_rate': 0.1\} do not fit learner 'uplift_forest'"):
        train_uplift(history.head(3000), SEGMENTS, ARMS, "dm1", forest)
    logged = TrainConfig.model_validate({"propensity": {"source": "logged", "column": "p_logged"}})
    with pytest.raises(ValueError, match="no column 'p_logged' \\(train.propensity.column\\)"):
        train_and_evaluate(history, SEGMENTS, ARMS, "dm1", logged)
