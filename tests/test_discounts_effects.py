"""The debiased effect models against the simulator's known per-customer responses."""

from __future__ import annotations

import numpy as np
import pytest

from offerflow.discounts.config import DiscountsConfig, EffectConfig, EncodingConfig
from offerflow.discounts.effects import fit_discount_effects, naive_slope, treatment_basis
from offerflow.discounts.ingest import encode_features
from offerflow.discounts.simulator import SIM_STATES, SlopeModel, simulate_discounts

SEED = 20261201
CONFIG = DiscountsConfig(
    encodings={
        "cust_state": EncodingConfig(categories=SIM_STATES),
        "gender": EncodingConfig(categories=(0, 1), missing="own_category"),
    }
)
FAST = {"n_estimators": 40, "learning_rate": 0.1, "num_leaves": 8, "min_child_samples": 30}


def matrices(frame):
    return (
        encode_features(frame, list(CONFIG.features), CONFIG),
        encode_features(frame, list(CONFIG.controls), CONFIG),
    )


def fit(simulated, **effect):
    X, W = matrices(simulated.frame)
    config = EffectConfig(nuisance={"model": "lightgbm", "params": FAST}, **effect)
    return X, fit_discount_effects(X, W, simulated.frame["discount"], simulated.frame["profit"], config)


def test_treatment_basis_steps_and_bends_at_knots():
    basis = treatment_basis(np.array([0.0, 50.0, 100.0, 110.0, 150.0]), (100.0,))
    np.testing.assert_array_equal(basis[:, 0], [0, 50, 100, 110, 150])
    np.testing.assert_array_equal(basis[:, 1], [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(basis[:, 2], [0, 0, 0, 10, 50])
    assert treatment_basis(np.array([3.0])).shape == (1, 1)


def test_naive_slope_is_least_squares_and_biased_by_the_staff_rule():
    simulated = simulate_discounts(3000, SEED, design="observational")
    frame = simulated.frame
    naive = naive_slope(frame["discount"], frame["profit"])
    assert naive.estimate == pytest.approx(np.polyfit(frame["discount"], frame["profit"], 1)[0], rel=1e-9)
    # the staff gave more to customers who buy more anyway: the raw slope is positive, the truth negative
    assert naive.ci_low > 0 > simulated.average_slope


def test_average_and_customer_intervals_cover_the_truth_over_seeds():
    """100 seeded histories (1,500 customers, staff-rule confounding): ATE coverage >= 90% (target 95%)."""
    seeds = 100
    covered, customer_coverage, errors = 0, [], []
    for offset in range(seeds):
        simulated = simulate_discounts(1500, SEED + offset, design="observational")
        X, model = fit(simulated)
        average = model.average_effect(X)
        covered += average.ci_low <= simulated.average_slope <= average.ci_high
        errors.append(average.estimate - simulated.average_slope)
        customers = model.customer_effects(X)
        inside = (customers["ci_low"] <= simulated.slope) & (simulated.slope <= customers["ci_high"])
        customer_coverage.append(float(inside.mean()))
    rate, customer_rate = covered / seeds, float(np.mean(customer_coverage))
    print(
        f"\nATE 95% interval coverage {rate:.2f} over {seeds} seeds; per-customer interval coverage "
        f"{customer_rate:.3f}; mean error {np.mean(errors):+.4f}, sd {np.std(errors):.4f}"
    )
    assert rate >= 0.90
    assert customer_rate >= 0.88
    assert abs(np.mean(errors)) < 3 * np.std(errors) / np.sqrt(seeds)  # no detectable bias


def test_dose_response_with_a_knot_recovers_the_jump_over_seeds():
    """Profit jumps 25 USD above 100 USD: the knot model's average change at 50 and 130 USD is covered."""
    truth = SlopeModel(jump=25.0, knot=100.0)
    seeds, covered = 20, {50.0: 0, 130.0: 0}
    for offset in range(seeds):
        simulated = simulate_discounts(1500, SEED + 500 + offset, design="observational", truth=truth)
        X, model = fit(simulated, knots=(100.0,))
        x = X.to_numpy(float)
        true_change = truth.profit_change(simulated.frame, np.array([50.0, 130.0])).mean(axis=0)
        for level, true_value in zip((50.0, 130.0), true_change):
            zero, at = np.zeros(len(x)), np.full(len(x), level)
            low, high = model.dose_model.ate_interval(x, T0=zero, T1=at, alpha=0.05)
            covered[level] += float(low) <= true_value <= float(high)
        profit_change = model.profit_change(X, (0.0, 50.0, 130.0))
        assert profit_change.shape == (len(x), 3) and np.all(profit_change[:, 0] == 0)
    rates = {level: count / seeds for level, count in covered.items()}
    print(f"\nknot model: average profit change covered at 50 / 130 USD: {rates}")
    assert min(rates.values()) >= 0.85


def test_causal_forest_ranks_customers_and_keeps_a_tight_average():
    simulated = simulate_discounts(3000, SEED + 900, design="observational")
    X, model = fit(simulated, estimator="causal_forest_dml", forest_trees=200)
    assert model.method == "CausalForestDML"
    average = model.average_effect(X)  # from the LinearDML fitted alongside
    assert average.ci_low <= simulated.average_slope <= average.ci_high
    assert average.ci_high - average.ci_low < 0.2
    effects = model.customer_effects(X)["effect"].to_numpy()
    top = effects > np.median(effects)
    oracle = np.sort(simulated.slope)
    best_split = oracle[len(oracle) // 2 :].mean() - oracle[: len(oracle) // 2].mean()
    # customers the forest ranks in the top half truly respond better, by at least 40% of the oracle split
    assert simulated.slope[top].mean() - simulated.slope[~top].mean() > 0.4 * best_split
