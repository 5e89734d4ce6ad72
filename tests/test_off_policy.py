"""Off-policy estimators: hand-computed values on tiny logs, and coverage of the true value over many simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit

from offerflow.errors import ConfigError, InputDataError
from offerflow.evaluation.off_policy import (
    BoundSettings,
    CampaignLog,
    Reward,
    constant_policy_values,
    design_propensity,
    estimate_contrasts,
    estimate_difference,
    estimate_value,
    logged_arm_propensity,
)

SEED = 20261124

# A tiny randomized log: 3 arms, propensity 1/3, rewards 0/1.
ARMS = np.array([0, 1, 2, 1])
REWARDS = np.array([1.0, 0.0, 1.0, 1.0])
ONE_HOT = np.eye(3)[[0, 1, 1, 1]]  # deterministic target: arm 0 for row 0, arm 1 for the others
MU = np.array([[0.5, 0.2, 0.1], [0.4, 0.4, 0.4], [0.0, 1.0, 0.5], [0.3, 0.6, 0.9]])


def tiny_log(clusters=None) -> CampaignLog:
    return CampaignLog(ARMS, np.full(4, 1 / 3), 3, clusters=clusters)


def test_ips_and_snips_with_a_deterministic_target_by_hand():
    settings = BoundSettings(bootstrap_samples=0)
    ips = estimate_value(ONE_HOT, tiny_log(), Reward(REWARDS), "ips", settings)
    snips = estimate_value(ONE_HOT, tiny_log(), Reward(REWARDS), "snips", settings)
    # weights 3, 3, 0, 3 (row 2 received arm 2, the target gives arm 1)
    assert ips.value == pytest.approx((3 + 0 + 0 + 3) / 4, rel=1e-12)
    assert snips.value == pytest.approx(6 / 9, rel=1e-12)
    # IPS terms 3, 0, 0, 3: standard error sd / sqrt(n)
    assert ips.se == pytest.approx(np.std([3, 0, 0, 3], ddof=1) / 2, rel=1e-12)
    # SNIPS delta method: psi = w (r - 2/3) / (9/4) = 4/9, -8/9, 0, 4/9
    assert snips.se == pytest.approx(math.sqrt(4 / 3 * 96 / 81) / 4, rel=1e-12)
    assert math.isnan(ips.lower_bound_bootstrap)


def test_doubly_robust_by_hand():
    terms = []
    for i in range(4):
        direct = float(ONE_HOT[i] @ MU[i])
        weight = ONE_HOT[i, ARMS[i]] * 3
        terms.append(direct + weight * (REWARDS[i] - MU[i, ARMS[i]]))
    # row 0: 0.5 + 3 * 0.5; row 1: 0.4 + 3 * (-0.4); row 2: 1.0 + 0; row 3: 0.6 + 3 * 0.4
    assert terms == pytest.approx([2.0, -0.8, 1.0, 1.8])
    dr = estimate_value(ONE_HOT, tiny_log(), Reward(REWARDS, predicted=MU), "dr", BoundSettings(bootstrap_samples=0))
    assert dr.value == pytest.approx(np.mean(terms), rel=1e-12)
    assert dr.se == pytest.approx(np.std(terms, ddof=1) / 2, rel=1e-12)


def test_cluster_robust_standard_error_by_hand():
    log = tiny_log(clusters=np.array(["x", "x", "y", "z"]))
    ips = estimate_value(ONE_HOT, log, Reward(REWARDS), "ips", BoundSettings(bootstrap_samples=0))
    # centred terms 1.5, -1.5, -1.5, 1.5; cluster totals 0, -1.5, 1.5; sqrt(3/2 * 4.5) / 4
    assert ips.se == pytest.approx(math.sqrt(1.5 * 4.5) / 4, rel=1e-12)


def test_bernstein_lower_bound_uses_the_range_of_the_terms():
    log = CampaignLog(np.tile(ARMS, 10), np.full(40, 1 / 3), 3)
    settings = BoundSettings(confidence=0.95, bootstrap_samples=0)
    ips = estimate_value(np.tile(ONE_HOT, (10, 1)), log, Reward(np.tile(REWARDS, 10)), "ips", settings)
    terms = np.tile([3.0, 0.0, 0.0, 3.0], 10)
    log_term = math.log(40)
    expected = terms.mean() - math.sqrt(2 * terms.var(ddof=1) * log_term / 40) - 7 * 3.0 * log_term / (3 * 39)
    assert ips.lower_bound_bernstein == pytest.approx(expected, rel=1e-12)  # IPS range [0, W b] = [0, 3]


def test_cost_goes_through_the_same_code_path():
    coupon = np.array([0.0, 10.0, 20.0])
    realized = REWARDS * coupon[ARMS]  # 0, 0, 20, 10
    cost = estimate_value(ONE_HOT, tiny_log(), Reward(realized, bounds=(0.0, 20.0)), "ips", BoundSettings(bootstrap_samples=0))
    assert cost.value == pytest.approx((3 * 0 + 3 * 0 + 0 * 20 + 3 * 10) / 4, rel=1e-12)


def test_paired_difference_is_the_difference_of_values():
    baseline = np.tile([0.5, 0.25, 0.25], (4, 1))
    reward = Reward(REWARDS, predicted=MU)
    for estimator in ("ips", "snips", "dr"):
        result = estimate_contrasts(tiny_log(), reward, BoundSettings(bootstrap_samples=50), {"c": ONE_HOT, "b": baseline}, {"d": (ONE_HOT, baseline)}, (estimator,))[estimator]
        assert result["d"].value == pytest.approx(result["c"].value - result["b"].value, rel=1e-12, abs=1e-12)


def test_propensity_helpers():
    matrix = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert logged_arm_propensity(matrix, np.array([1, 0])).tolist() == [0.8, 0.6]
    assert design_propensity(np.array([0, 2]), n_arms=3).tolist() == pytest.approx([1 / 3, 1 / 3])
    assert design_propensity(np.array([0, 2]), np.array([0.5, 0.3, 0.2])).tolist() == [0.5, 0.2]
    with pytest.raises(InputDataError, match="sum to 1"):
        design_propensity(np.array([0]), np.array([0.5, 0.3]))


def test_duplicated_customers_change_nothing_once_clustered():
    """Each customer logged twice with the same outcome: with cluster ids the estimate's uncertainty is unchanged."""
    rng = np.random.default_rng(SEED)
    arms, rewards = rng.integers(0, 3, 300), (rng.random(300) < 0.3).astype(float)
    policy = np.eye(3)[rng.integers(0, 3, 300)]
    settings = BoundSettings(bootstrap_samples=500, seed=3)
    once = estimate_value(policy, CampaignLog(arms, np.full(300, 1 / 3), 3), Reward(rewards), "ips", settings)
    twice_log = CampaignLog(np.repeat(arms, 2), np.full(600, 1 / 3), 3, clusters=np.repeat(np.arange(300), 2))
    twice = estimate_value(np.repeat(policy, 2, axis=0), twice_log, Reward(np.repeat(rewards, 2)), "ips", settings)
    assert twice.value == pytest.approx(once.value, rel=1e-12)
    assert twice.se == pytest.approx(once.se, rel=1e-12)
    assert twice.lower_bound_bernstein == pytest.approx(once.lower_bound_bernstein, rel=1e-12)
    assert twice.lower_bound_bootstrap == pytest.approx(once.lower_bound_bootstrap, rel=1e-12)
    naive_log = CampaignLog(np.repeat(arms, 2), np.full(600, 1 / 3), 3)
    naive = estimate_value(np.repeat(policy, 2, axis=0), naive_log, Reward(np.repeat(rewards, 2)), "ips", settings)
    assert naive.se == pytest.approx(once.se / math.sqrt(2), rel=0.01)  # ignoring the clusters: falsely precise


def test_extreme_inputs_stay_inside_the_declared_term_ranges():
    """Adversarial rewards, predictions and policies: the Bernstein bound (which checks its range) never refuses."""
    rng = np.random.default_rng(SEED)
    n = 400
    arms = rng.integers(0, 3, n)
    propensity = np.where(rng.random(n) < 0.5, 0.1, 0.9)
    log = CampaignLog(arms, propensity, 3, min_propensity=0.1)
    reward = Reward(rng.choice([-2.0, 5.0], n), bounds=(-2.0, 5.0), predicted=rng.choice([-2.0, 5.0], (n, 3)))
    a, b = np.eye(3)[rng.integers(0, 3, n)], np.eye(3)[rng.integers(0, 3, n)]
    result = estimate_contrasts(log, reward, BoundSettings(bootstrap_samples=0), {"a": a}, {"d": (a, b)}, ("ips", "snips", "dr"))
    assert all(np.isfinite(e.lower_bound_bernstein) for by_name in result.values() for e in by_name.values())


def test_clear_errors():
    log = tiny_log()
    with pytest.raises(InputDataError, match="summing to 1"):
        estimate_value(ONE_HOT * 0.5, log, Reward(REWARDS), "ips")
    with pytest.raises(InputDataError, match="outside the declared range"):
        estimate_value(ONE_HOT, log, Reward(REWARDS * 2), "ips")
    with pytest.raises(InputDataError, match="predicted rewards"):
        estimate_value(ONE_HOT, log, Reward(REWARDS), "dr")
    with pytest.raises(ConfigError, match="estimators"):
        estimate_value(ONE_HOT, log, Reward(REWARDS), "magic")
    with pytest.raises(InputDataError, match="propensities must lie in"):
        CampaignLog(ARMS, np.array([0.3, 0.0, 0.3, 0.3]), 3)
    with pytest.raises(InputDataError, match="arm_index"):
        CampaignLog(np.array([0, 3]), np.array([0.5, 0.5]), 3)
    with pytest.raises(ConfigError, match="confidence"):
        BoundSettings(confidence=1.0)


def test_same_seed_same_estimate():
    reward = Reward(REWARDS, predicted=MU)
    first = estimate_value(ONE_HOT, tiny_log(), reward, "dr", BoundSettings(seed=5))
    assert first == estimate_value(ONE_HOT, tiny_log(), reward, "dr", BoundSettings(seed=5))


def test_constant_policy_values_on_a_randomized_log():
    # everyone gets arm d: IPS = 3 * sum of rewards of rows that received d / n
    values = constant_policy_values(tiny_log(), Reward(REWARDS), "ips")
    assert values.tolist() == pytest.approx([3 * 1 / 4, 3 * 1 / 4, 3 * 1 / 4])


# --- coverage against a known truth --------------------------------------------------------------------
# Population: 10 customer types x in [0, 1] (equally likely) and a customer effect u = +-1 shared by all of
# a customer's campaigns (so rows of one customer are correlated). True conversion p(d | x, u) is logistic;
# the truth of a policy defined on types is the exact expectation over types and u.
TYPES = np.arange(10) / 9.0
ALPHA, BETA, GAMMA = np.array([-1.4, -1.0, -0.7]), np.array([0.0, 1.2, 2.4]), 0.8
CUSTOMERS, CAMPAIGNS, SIMULATIONS, BOOTSTRAPPED = 1000, 2, 1000, 400


def true_probability(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    return expit(ALPHA[None] + BETA[None] * (2 * x[:, None] - 1) + GAMMA * u[:, None])


P_BAR = 0.5 * (true_probability(TYPES, np.ones(10)) + true_probability(TYPES, -np.ones(10)))
CANDIDATE = np.eye(3)[np.where(TYPES < 0.3, 0, np.where(TYPES < 0.7, 1, 2))]  # deterministic, by type
BASELINE = np.tile([0.5, 0.3, 0.2], (10, 1))  # stochastic
OUTCOME_MODEL = 0.5 * P_BAR + 0.5 * P_BAR.mean(axis=0, keepdims=True)  # deliberately part wrong


def logging_policy(design: str) -> np.ndarray:
    if design == "randomized":
        return np.full((10, 3), 1 / 3)
    logits = 1.5 * (2 * TYPES[:, None] - 1) * np.array([-1.0, 0.0, 1.0])[None]
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def true_value(policy: np.ndarray) -> float:
    return float((policy * P_BAR).sum(axis=1).mean())


def simulate_log(seed: int, design: str) -> tuple[np.ndarray, CampaignLog, Reward]:
    rng = np.random.default_rng(seed)
    kind, u = rng.integers(0, 10, CUSTOMERS), rng.choice([-1.0, 1.0], CUSTOMERS)
    propensities, p = logging_policy(design)[kind], true_probability(TYPES[kind], u)
    arms, rewards, logged = [], [], []
    for _ in range(CAMPAIGNS):
        arm = (rng.random(CUSTOMERS)[:, None] > propensities.cumsum(axis=1)).sum(axis=1).clip(0, 2)
        arms.append(arm)
        rewards.append((rng.random(CUSTOMERS) < p[np.arange(CUSTOMERS), arm]).astype(float))
        logged.append(propensities[np.arange(CUSTOMERS), arm])
    kinds = np.tile(kind, CAMPAIGNS)
    log = CampaignLog(np.concatenate(arms), np.concatenate(logged), 3, clusters=np.tile(np.arange(CUSTOMERS), CAMPAIGNS), min_propensity=float(logging_policy(design).min()))
    return kinds, log, Reward(np.concatenate(rewards), (0.0, 1.0), OUTCOME_MODEL[kinds])


@pytest.mark.parametrize("design", ["randomized", "targeted"])
def test_intervals_cover_and_lower_bounds_hold(design):
    truth = {"candidate": true_value(CANDIDATE), "baseline": true_value(BASELINE)}
    truth["difference"] = truth["candidate"] - truth["baseline"]
    covered, below = {}, {}
    for simulation in range(SIMULATIONS):
        kinds, log, reward = simulate_log(SEED + simulation, design)
        samples = 200 if simulation < BOOTSTRAPPED else 0
        result = estimate_contrasts(
            log, reward, BoundSettings(bootstrap_samples=samples, seed=simulation),
            {"candidate": CANDIDATE[kinds], "baseline": BASELINE[kinds]},
            {"difference": (CANDIDATE[kinds], BASELINE[kinds])},
            ("ips", "snips", "dr"),
        )
        for estimator, by_name in result.items():
            for name, estimate in by_name.items():
                key, target = (estimator, name), truth[name]
                covered[key] = covered.get(key, 0) + (estimate.ci_low <= target <= estimate.ci_high)
                counts = below.setdefault(key, {"normal": 0, "bernstein": 0, "bootstrap": 0})
                for method in ("normal", "bernstein"):
                    counts[method] += estimate.lower_bound(method) <= target
                if samples:
                    counts["bootstrap"] += estimate.lower_bound_bootstrap <= target
    rates = {key: covered[key] / SIMULATIONS for key in covered}
    bound_rates = {
        key: {"normal": c["normal"] / SIMULATIONS, "bernstein": c["bernstein"] / SIMULATIONS, "bootstrap": c["bootstrap"] / BOOTSTRAPPED}
        for key, c in below.items()
    }
    print(f"\n{design}: 95% interval coverage {rates}\n{design}: lower bound below truth {bound_rates}")
    for key, rate in rates.items():
        assert 0.93 <= rate <= 0.97, (design, key, rate)
    for key, by_method in bound_rates.items():
        for method, rate in by_method.items():
            assert rate >= 0.95, (design, key, method, rate)
