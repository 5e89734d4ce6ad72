"""Decision-aware selection and logged propensities, checked against the simulator's truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, SEED
from offerflow.config import PropensityConfig, TrainConfig
from offerflow.simulation import simulate_history
from offerflow.uplift.debias import PropensityModel
from offerflow.uplift.model import design_matrix, train_uplift
from offerflow.uplift.selection import SelectionEconomics, plan_from_probabilities, plan_value
from offerflow.uplift.training import logged_propensity, train_and_evaluate

ARMS = ["dm1", "dm2", "dm3"]
SEGMENTS = ["age_cat", "freq_cat"]
ECONOMICS = SelectionEconomics(budget_per_customer=2.0, coupon_cost=(0.0, 10.0, 20.0))
LGBM = {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 8, "min_child_samples": 20}


@pytest.fixture(scope="module")
def example():
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    return customers, truth


@pytest.fixture(scope="module")
def targeted(example):
    customers, truth = example
    history = simulate_history(
        customers, truth, ARMS, SEGMENTS, campaigns=4, seed=SEED,
        assignment="targeted", targeting_column="freq_cat", targeting_strength=2.0,
    )
    return history.merge(customers, on="customer_id")


def _true_policy(history):
    """The simulator's logging policy per row (it depends on freq_cat only)."""
    from offerflow.simulation import targeted_propensities

    customers = history.drop_duplicates("customer_id")
    rank = {"freq0": 0, "freq1": 1, "freq2": 2, "freq3~": 3}
    policy = targeted_propensities(customers["freq_cat"].map(rank).to_numpy(dtype=float), 3, 2.0)
    by_level = {level: policy[np.flatnonzero(customers["freq_cat"].to_numpy() == level)[0]] for level in rank}
    return np.array([by_level[level] for level in history["freq_cat"]])


def test_logged_propensities_recover_the_logging_policy_and_change_the_fit(targeted):
    history = targeted
    design = design_matrix(history, SEGMENTS, ARMS)
    logged = history["propensity"].to_numpy(dtype=float)
    truth = _true_policy(history)
    from_logs = PropensityModel(PropensityConfig(source="logged"), ARMS, 1).fit(design.X, design.arm_index, logged).predict(design.X)
    estimated = PropensityModel(PropensityConfig(source="estimate"), ARMS, 1).fit(design.X, design.arm_index).predict(design.X)
    logged_error, estimated_error = np.abs(from_logs - truth).max(), np.abs(estimated - truth).max()
    assert logged_error < 1e-4 < estimated_error  # a regression on exact values, not a classification of draws
    # the learners that take a propensity (X, DR) fit differently, and the logged fit is at least as close to the truth
    true_probabilities = history[[f"true_prob_{arm}" for arm in ARMS]].to_numpy()
    for learner in ("x_learner", "dr_learner"):
        fitted = {}
        for source in ("logged", "estimate"):
            config = TrainConfig(learner=learner, base_model="lightgbm", model_params=LGBM, features=tuple(SEGMENTS),
                                 propensity=PropensityConfig(source=source), seed=SEED)
            fitted[source] = train_uplift(history, SEGMENTS, ARMS, "dm1", config).predict_matrix(history)
        assert np.abs(fitted["logged"] - fitted["estimate"]).max() > 1e-4, learner
        errors = {source: np.abs(p - true_probabilities).mean() for source, p in fitted.items()}
        assert errors["logged"] <= errors["estimate"] + 0.002, (learner, errors)


def test_logged_propensity_column_is_read_only_with_source_logged(targeted):
    assert logged_propensity(targeted, TrainConfig(propensity=PropensityConfig(source="estimate"))) is None
    values = logged_propensity(targeted, TrainConfig(propensity=PropensityConfig(source="logged")))
    np.testing.assert_array_equal(values, targeted["propensity"].to_numpy(dtype=float))


def test_plan_value_is_the_doubly_robust_value_of_the_plan_and_covers_its_true_value(example):
    """Over seeds the cross-fitted DR value of a fixed plan is centred on the plan's true conversions."""
    customers, truth = example
    errors = []
    for seed in range(12):
        history = simulate_history(customers, truth, ARMS, SEGMENTS, campaigns=2, seed=seed)
        true_p = history[[f"true_prob_{arm}" for arm in ARMS]].to_numpy()
        arm_index = history["arm"].map({a: j for j, a in enumerate(ARMS)}).to_numpy()
        y = history["converted"].to_numpy()
        mu = np.clip(true_p + np.random.default_rng(seed).normal(0, 0.05, true_p.shape), 0, 1)  # a noisy model
        plan = plan_from_probabilities(mu, 0, ECONOMICS)
        estimate = plan_value(plan, mu, arm_index, y, np.full(len(y), 1 / 3), 0, ECONOMICS)
        true_value = true_p[np.arange(len(y)), plan].mean()
        true_cost = (true_p * np.array(ECONOMICS.coupon_cost))[np.arange(len(y)), plan].mean()
        errors.append(estimate["policy_value"] - true_value)
        assert estimate["policy_cost"] == pytest.approx(true_cost, abs=0.4)
        # the plan respects the budget by the model's own expected cost
        assert (ECONOMICS.costs(mu)[np.arange(len(y)), plan]).mean() <= ECONOMICS.budget_per_customer + 1e-9
    errors = np.array(errors)
    assert abs(errors.mean()) < 3 * errors.std() / np.sqrt(len(errors)) + 1e-3
    assert np.abs(errors).max() < 0.02


def test_policy_value_selection_reports_every_candidate_and_keeps_the_best(example):
    customers, truth = example
    history = simulate_history(customers, truth, ARMS, SEGMENTS, campaigns=4, seed=SEED).merge(customers, on="customer_id")
    config = TrainConfig.model_validate({
        "features": SEGMENTS, "learner": "t_learner", "base_model": "logistic",
        "candidates": [{"learner": "t_learner", "base_model": "lightgbm", "model_params": LGBM},
                       {"learner": "s_learner", "base_model": "logistic"}],
        "selection_criterion": "policy_value", "propensity": {"source": "uniform"},
        "evaluation": {"heuristic": None, "figures": False, "bootstrap_samples": 0},
    })
    with pytest.raises(ValueError, match="policy_value needs the budget"):
        train_and_evaluate(history, SEGMENTS, ARMS, "dm1", config)
    result = train_and_evaluate(history, SEGMENTS, ARMS, "dm1", config, economics=ECONOMICS)
    selection = result.metrics["selection"]
    scores = selection["scores"]
    assert selection["criterion"] == "policy_value" and len(scores) == 3
    assert selection["chosen"] == max(scores, key=lambda name: scores[name]["policy_value"])
    for entry in scores.values():
        assert 0.3 < entry["policy_value"] < 0.6 and 0 < entry["treated_share"] <= 1
        assert entry["policy_cost"] == pytest.approx(ECONOMICS.budget_per_customer, abs=0.3)


def test_policy_value_makes_the_train_stage_read_the_budget():
    """The criterion values plans at optimize.budget: the stage depends on that key (dvc.yaml, caches) and
    hands the budget per customer and the arms' costs to the selection."""
    from offerflow.config import load_params
    from offerflow.pipeline import stage_named
    from offerflow.stages.train import selection_economics

    default = load_params(ROOT / "params.yaml", check_files=False)
    chosen = load_params(ROOT / "params.yaml", {"train.selection_criterion": "policy_value", "arms.contact_cost": {"dm2": 0.5}},
                         check_files=False)
    train = stage_named("train")
    assert "optimize.budget" not in train.params_for(default) and selection_economics(default, 5000) is None
    assert "optimize.budget" in train.params_for(chosen)
    economics = selection_economics(chosen, 5000)
    assert economics.budget_per_customer == pytest.approx(chosen.optimize.budget / 5000)
    assert economics.coupon_cost == (0.0, 10.0, 20.0) and economics.contact_cost == (0.0, 0.5, 0.0)


def test_cross_fitting_on_threads_gives_the_same_predictions_as_one_thread(example):
    from offerflow.config import LearnerConfig
    from offerflow.uplift.crossfit import cross_fit_learners, cross_fit_propensities, customer_folds

    customers, truth = example
    history = simulate_history(customers, truth, ARMS, SEGMENTS, campaigns=2, seed=SEED).merge(customers, on="customer_id")
    design = design_matrix(history, SEGMENTS, ARMS)
    folds = customer_folds(design.clusters, 3, SEED)
    propensities = cross_fit_propensities(design.X, design.arm_index, folds, PropensityConfig(source="estimate"), ARMS, SEED)
    specs = [LearnerConfig(learner="t_learner", base_model="logistic"), LearnerConfig(learner="x_learner", model_params=LGBM)]
    runs = [cross_fit_learners(design.X, design.arm_labels, design.y, folds, propensities, specs, ARMS, "dm1", SEED, threads)
            for threads in (1, 2)]
    for single, threaded in zip(*runs):
        assert single.tobytes() == threaded.tobytes()
        assert (single > 0).all() and (single < 1).all()
