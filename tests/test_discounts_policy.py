"""Discount levels per customer (exact allocator vs brute force / HiGHS) and their off-policy values vs truth."""

from __future__ import annotations

import numpy as np
import pytest

from offerflow.discounts import policy
from offerflow.discounts.config import DiscountsConfig, EffectConfig, EncodingConfig, NuisanceConfig
from offerflow.discounts.effects import fit_discount_effects
from offerflow.discounts.ingest import encode_features
from offerflow.discounts.simulator import SIM_STATES, SlopeModel, simulate_discounts
from offerflow.errors import ConfigError, InputDataError
from reference.highs_models import solve_with_highs

SEED = 77
LEVELS = tuple(float(level) for level in range(0, 101, 10))
CONFIG = DiscountsConfig(
    encodings={
        "cust_state": EncodingConfig(categories=SIM_STATES),
        "gender": EncodingConfig(categories=(0, 1), missing="own_category"),
    },
    policy={"levels": LEVELS},
)
FAST = NuisanceConfig(params={"n_estimators": 40, "learning_rate": 0.1, "num_leaves": 8, "min_child_samples": 30})


def random_values(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    slope = rng.normal(-0.02, 0.05, n)[:, None]
    value = slope * np.asarray(LEVELS)[None, :] - 0.0004 * np.asarray(LEVELS)[None, :] ** 2 * rng.random((n, 1))
    return policy.level_value_and_cost(value, LEVELS)


def test_unlimited_budget_gives_every_customer_the_best_level():
    value, cost = random_values(300, SEED)
    plan = policy.personalized_plan(value, cost, None, partition_rows=128)
    np.testing.assert_array_equal(plan.level_index, value.argmax(axis=1))
    assert plan.predicted_gain == pytest.approx(value.max(axis=1).mean())


def test_budgeted_plan_is_within_one_step_of_the_highs_optimum():
    value, cost = random_values(150, SEED + 1)
    budget = 1500.0
    plan = policy.personalized_plan(value, cost, budget, partition_rows=64)
    rows = np.arange(len(value))
    spent = cost[rows, plan.level_index].sum()
    assert spent <= budget + 1e-9
    mip = solve_with_highs(value, cost, budget, integer=True)
    optimum = mip.getInfo().objective_function_value
    achieved = value[rows, plan.level_index].sum()
    largest_step = (value.max(axis=1) - value[:, 0]).max()
    assert optimum - largest_step - 1e-6 <= achieved <= optimum + 1e-6


def test_uniform_and_rule_baselines():
    value, _ = random_values(200, SEED + 2)
    uniform = policy.uniform_plan(value, LEVELS, None)
    assert uniform.level_index[0] == int(np.argmax(value.sum(axis=0))) and len(set(uniform.level_index)) == 1
    capped = policy.uniform_plan(value + 1.0 * np.asarray(LEVELS), LEVELS, budget=200 * 30.0)
    assert LEVELS[capped.level_index[0]] == 30.0  # the best level everyone can get within the budget
    age = np.random.default_rng(0).integers(18, 60, 200).astype(float)
    tie_key = np.arange(200)
    rule = policy.rule_plan("younger first", age, False, 0.25, 50.0, LEVELS, value, None, tie_key)
    chosen = rule.level_index == LEVELS.index(50.0)
    assert chosen.sum() == 50 and age[chosen].max() <= age[~chosen].min()
    budgeted = policy.rule_plan("younger first", age, False, 0.25, 50.0, LEVELS, value, 1000.0, tie_key)
    assert (budgeted.level_index > 0).sum() == 20
    with pytest.raises(ConfigError, match="rule.level 55 is not one of"):
        policy.rule_plan("r", age, False, 0.25, 55.0, LEVELS, value, None, tie_key)


def test_randomized_design_refuses_continuous_or_thin_designs():
    discount = np.repeat([0.0, 10.0, 20.0], [50, 30, 20])
    np.testing.assert_allclose(policy.randomized_design(discount, (0.0, 10.0, 20.0), 10, 60, "r.csv"), [0.5, 0.3, 0.2])
    with pytest.raises(ConfigError, match=r"levels \[20.0, 30.0\] were drawn for too few customers in r.csv"):
        policy.randomized_design(discount, (0.0, 10.0, 20.0, 30.0), 25, 60, "r.csv")
    with pytest.raises(InputDataError, match="takes 100 distinct values"):
        policy.randomized_design(np.linspace(0, 99, 100), (0.0,), 1, 60, "r.csv")


def test_doubly_robust_interval_covers_the_true_policy_value_over_seeds():
    """On 50 randomized histories the DR 95% interval covers the simulator's true expected profit of a
    personalized policy and of a uniform one; IPS agrees with DR within noise."""
    seeds, covered = 50, {"slope rule": 0, "everyone 30 USD": 0}
    for offset in range(seeds):
        simulated = simulate_discounts(3000, SEED + offset, design="randomized")
        frame = simulated.frame
        X = encode_features(frame, list(CONFIG.features), CONFIG)
        discount, profit = frame["discount"].to_numpy(), frame["profit"].to_numpy()
        propensity = policy.randomized_design(discount, LEVELS, 20, 60, "sim")
        mu_levels, mu_observed = policy.cross_fitted_profit(X, discount, profit, LEVELS, FAST, 3, offset)
        plans = [
            policy.LevelPlan("slope rule", np.where(simulated.slope > 0, LEVELS.index(100.0), 0), 0.0, {}),
            policy.LevelPlan("everyone 30 USD", np.full(len(frame), LEVELS.index(30.0)), 0.0, {}),
            policy.nobody_plan(len(frame)),
        ]
        estimates = policy.compare_policies(plans, LEVELS, discount, profit, mu_levels, mu_observed, propensity)
        for plan, estimate in zip(plans[:2], estimates[:2]):
            truth = simulated.policy_value(np.asarray(LEVELS), plan.level_index)
            covered[plan.name] += estimate["ci_low"] <= truth <= estimate["ci_high"]
            assert (
                abs(estimate["ips_value_per_customer"] - estimate["value_per_customer"])
                < 5 * estimate["ips_standard_error"]
            )
    rates = {name: count / seeds for name, count in covered.items()}
    print(f"\nDR 95% interval covers the true policy value: {rates} over {seeds} seeds")
    assert min(rates.values()) >= 0.88


def test_plan_from_observational_history_beats_the_simple_rules_on_the_truth():
    """Decision quality: fitted on confounded history, planned for new customers, valued on the truth."""
    truth = SlopeModel(base=-0.05, jump=6.0)  # a few respond below 100 USD, more once past it
    history = simulate_discounts(4000, SEED, design="observational", truth=truth)
    customers = simulate_discounts(3000, SEED + 1, design="randomized", truth=truth)
    levels = tuple(float(level) for level in range(0, 141, 10))
    X = encode_features(history.frame, list(CONFIG.features), CONFIG)
    W = encode_features(history.frame, list(CONFIG.controls), CONFIG)
    effect = EffectConfig(knots=(100.0,), nuisance=FAST)
    model = fit_discount_effects(X, W, history.frame["discount"], history.frame["profit"], effect)
    X_new = encode_features(customers.frame, list(CONFIG.features), CONFIG)
    value, cost = policy.level_value_and_cost(model.profit_change(X_new, levels), levels)
    grid = np.asarray(levels)
    personalized = policy.personalized_plan(value, cost, None, 10_000)
    uniform = policy.uniform_plan(value, levels, None)
    best_uniform_truth = max(customers.policy_value(grid, np.full(3000, j)) for j in range(len(levels)))
    achieved = customers.policy_value(grid, personalized.level_index)
    oracle = customers.expected_profit(grid).max(axis=1).mean()
    nobody = customers.policy_value(grid, np.zeros(3000, dtype=int))
    print(
        f"\ntrue profit per customer: personalized {achieved:.2f}, best uniform {best_uniform_truth:.2f}, "
        f"model's uniform {customers.policy_value(grid, uniform.level_index):.2f}, nobody {nobody:.2f}, oracle {oracle:.2f}"
    )
    assert achieved > best_uniform_truth + 0.5 and achieved > nobody + 0.5
    assert achieved >= nobody + 0.35 * (oracle - nobody)  # a good part of what perfect knowledge would add


def test_uncertainty_penalty_trades_gain_for_safety():
    """Weak signal (no jump; few customers truly gain): the expected-profit plan discounts noisy
    'responders' and loses against no discount; two standard errors of caution does not lose."""
    truth = SlopeModel(base=-0.05, jump=0.0)
    history = simulate_discounts(4000, 101, design="observational", truth=truth)
    customers = simulate_discounts(3000, 201, design="randomized", truth=truth)
    levels = tuple(float(level) for level in range(0, 141, 10))
    X = encode_features(history.frame, list(CONFIG.features), CONFIG)
    W = encode_features(history.frame, list(CONFIG.controls), CONFIG)
    model = fit_discount_effects(
        X, W, history.frame["discount"], history.frame["profit"], EffectConfig(knots=(100.0,), nuisance=FAST)
    )
    X_new = encode_features(customers.frame, list(CONFIG.features), CONFIG)
    grid = np.asarray(levels)
    nobody = customers.policy_value(grid, np.zeros(3000, dtype=int))
    achieved = {}
    for penalty in (0.0, 2.0):
        value, cost = policy.level_value_and_cost(model.profit_change(X_new, levels, penalty), levels)
        achieved[penalty] = customers.policy_value(
            grid, policy.personalized_plan(value, cost, None, 10_000).level_index
        )
    assert achieved[0.0] < nobody - 0.2
    assert achieved[2.0] >= nobody - 0.05
    # the penalty is the lower end of econml's interval: z = 1.96 reproduces the 95% interval's lower bound
    x = X_new.to_numpy(float)
    low, _ = model.dose_model.effect_interval(x, T0=np.zeros(len(x)), T1=np.full(len(x), 120.0), alpha=0.05)
    np.testing.assert_allclose(
        model.profit_change(X_new, (0.0, 120.0), 1.959963984540054)[:, 1], np.ravel(low), rtol=1e-6, atol=1e-8
    )
