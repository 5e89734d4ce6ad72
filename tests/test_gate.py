"""The publish gate: decision logic on fixed numbers, and end to end on simulated campaigns with a known truth."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, replace

import numpy as np
import pytest

from offerflow.errors import GateRefusedError, exit_code_of
from offerflow.evaluation.baselines import Heuristic, NamedPolicy, build_baselines, target_of
from offerflow.config import GateConfig
from offerflow.evaluation.gate import PolicyEvaluation, decide_publication, evaluate_policies, plot_policy_values, policy_frame, policy_table
from offerflow.evaluation.off_policy import CampaignLog, PolicyEstimate, Reward, constant_policy_values

SEED = 20261124
COUPON = np.array([0.0, 10.0, 20.0])  # dm1 (control, no coupon), dm2, dm3: paid only on conversion


def estimate(value: float, half_width: float = 0.01, bernstein: float | None = None) -> PolicyEstimate:
    low = value - half_width
    return PolicyEstimate("dr", value, half_width / 1.96, low, value + half_width, low, low - 0.005 if bernstein is None else bernstein, low + 0.001, 0.95, 0.975, 1000, 500, 200)


def evaluation(name: str, role: str, value: float, versus: PolicyEstimate | None) -> PolicyEvaluation:
    return PolicyEvaluation(name, name.replace("_", " "), role, "", estimate(value), versus_candidate=versus)


def fixed_evaluations(gap: float, bernstein: float) -> list[PolicyEvaluation]:
    return [
        evaluation("model", "candidate", 0.20, None),
        evaluation("nobody_treated", "baseline", 0.05, estimate(0.15, 0.02)),
        evaluation("best_offer", "baseline", 0.20 - gap, estimate(gap, 0.007, bernstein)),
        # lower value, wider difference: never the best competitor although its bound is lower
        evaluation("recency_first", "baseline", 0.19 - gap, estimate(gap + 0.01, 0.05, -0.2)),
    ]


def test_gate_publishes_the_candidate_when_its_bound_clears_the_margin():
    decision = decide_publication(fixed_evaluations(0.0123, 0.0041), GateConfig())
    assert decision.candidate_published and decision.published == "model"
    assert decision.best_competitor == "best_offer"
    assert decision.reason == (
        "candidate beats the best baseline (best offer) by 0.0123 conversions per customer [0.0053, 0.0193]; "
        "lower bound (bernstein) 0.0041 > margin 0"
    )
    assert decision.lower_bound == pytest.approx(0.0041)
    payload = json.loads(json.dumps(decision.as_dict()))
    assert payload["published"] == "model" and len(payload["comparisons"]) == 3
    with pytest.raises(FrozenInstanceError):
        decision.published = "other"  # type: ignore[misc]


def test_gate_falls_back_to_the_best_baseline_below_the_margin():
    decision = decide_publication(fixed_evaluations(0.0123, 0.0041), GateConfig(margin=0.005))
    assert not decision.candidate_published and decision.published == "best_offer"
    assert decision.reason.startswith("candidate is not better than the best baseline (best offer): difference 0.0123")
    assert decision.reason.endswith("lower bound (bernstein) 0.0041 <= margin 0.005; published best offer instead")


def test_gate_method_chooses_the_bound():
    evaluations = fixed_evaluations(0.0123, -0.001)
    assert not decide_publication(evaluations, GateConfig(method="bernstein")).candidate_published
    normal = decide_publication(evaluations, GateConfig(method="normal"))
    assert normal.candidate_published and normal.lower_bound == pytest.approx(0.0123 - 0.007)


def test_gate_refuses_with_a_message_naming_the_winner_and_numbers():
    with pytest.raises(GateRefusedError) as refused:
        decide_publication(fixed_evaluations(-0.004, -0.02), GateConfig(fallback="nothing"))
    message = str(refused.value)
    assert "best offer" in message and "-0.0040" in message and "-0.0200 <= margin 0" in message and "nothing was published" in message
    assert exit_code_of(refused.value) == 5


def test_gate_needs_paired_differences():
    evaluations = fixed_evaluations(0.01, 0.001)
    evaluations[1] = replace(evaluations[1], versus_candidate=None)
    with pytest.raises(ValueError, match="nobody_treated"):
        decide_publication(evaluations)


# --- end to end on a simulated campaign with a known truth ---------------------------------------------
CUSTOMERS, CAMPAIGNS = 8000, 2


def simulated_campaign(seed: int, heterogeneous: bool):
    """Randomized campaigns (propensity 1/3), customers logged twice; returns what the gate needs and the truth."""
    rng = np.random.default_rng(seed)
    x, recency = rng.random(CUSTOMERS), rng.exponential(60.0, CUSTOMERS)
    if heterogeneous:  # the big coupon only moves the top fifth of x; the small one grows with x
        truth = np.column_stack([np.full(CUSTOMERS, 0.10), 0.10 + 0.12 * x, 0.10 + 0.45 * (x > 0.8)])
    else:
        truth = np.tile([0.10, 0.16, 0.22], (CUSTOMERS, 1))
    predicted = np.clip(truth + rng.normal(0.0, 0.03, truth.shape), 0.01, 0.99)  # a model's probabilities
    if heterogeneous:  # a model that learned who responds: big coupon where it pays, small where it helps
        gain = predicted - predicted[:, :1]
        offer = np.where(gain[:, 2] > 0.3, 2, np.where(gain[:, 1] > 0.07, 1, 0))
    else:  # a model fitting noise: the big coupon to the 40% with the highest predicted gain
        gain = predicted[:, 2] - predicted[:, 0]
        offer = np.where(gain >= np.quantile(gain, 0.6), 2, 0)
    rows = np.tile(np.arange(CUSTOMERS), CAMPAIGNS)
    arms = rng.integers(0, 3, len(rows))
    converted = (rng.random(len(rows)) < truth[rows, arms]).astype(float)
    log = CampaignLog(arms, np.full(len(rows), 1 / 3), 3, clusters=rows)
    value = Reward(converted, (0.0, 1.0), predicted[rows])
    expected_cost = COUPON * predicted[rows]
    cost = Reward(converted * COUPON[arms], (0.0, 20.0), expected_cost)
    candidate = NamedPolicy("model", "uplift model allocation", "candidate", np.eye(3)[offer][rows])
    arm_values = constant_policy_values(log, value, "dr")
    heuristics = [Heuristic("recency", "most recently active first", recency[rows], descending=False)]
    target = target_of(candidate.matrix, expected_cost, 0, "spend")
    baselines = build_baselines(expected_cost, 0, target, arm_values, heuristics, seed=3, arms=["dm1", "dm2", "dm3"])
    policies = [candidate, *baselines]
    true_value = {p.name: float((p.matrix * truth[rows]).sum(axis=1).mean()) for p in policies}
    return policies, log, value, cost, expected_cost, true_value


CONFIG = GateConfig(bootstrap_samples=200, seed=1)


@pytest.mark.parametrize("seed", [SEED, SEED + 1])
def test_gate_publishes_a_model_that_found_real_heterogeneity(seed):
    policies, log, value, cost, expected_cost, truth = simulated_campaign(seed, heterogeneous=True)
    assert truth["model"] > max(v for name, v in truth.items() if name != "model") + 0.02  # the scenario is what it claims
    evaluations = evaluate_policies(policies, log, value, CONFIG, cost, expected_cost, control=0)
    decision = decide_publication(evaluations, CONFIG)
    assert decision.candidate_published, decision.reason
    assert decision.reason.startswith("candidate beats the best baseline (")
    best = next(e for e in evaluations if e.name == decision.best_competitor)
    assert best.value.value == max(e.value.value for e in evaluations if e.role != "candidate")
    # the spend-matched baselines cost what the candidate costs (planned), and the realized cost estimate agrees
    model = next(e for e in evaluations if e.role == "candidate")
    for e in evaluations:
        if e.name in ("random_offers", "best_offer_random_subset", "heuristic_recency") and not e.note:
            assert e.planned_cost == pytest.approx(model.planned_cost, rel=1e-9)
    assert model.cost.ci_low - 0.1 <= model.planned_cost <= model.cost.ci_high + 0.1


@pytest.mark.parametrize("seed", [SEED, SEED + 1])
def test_gate_falls_back_when_the_model_fits_noise(seed):
    policies, log, value, cost, expected_cost, truth = simulated_campaign(seed, heterogeneous=False)
    evaluations = evaluate_policies(policies, log, value, CONFIG, cost, expected_cost, control=0)
    decision = decide_publication(evaluations, CONFIG)
    assert not decision.candidate_published, decision.reason
    assert decision.published == decision.best_competitor != "model"
    assert truth[decision.published] >= truth["model"]  # what it published instead is really no worse
    assert decision.reason.endswith(f"published {decision.published_label} instead")
    with pytest.raises(GateRefusedError, match=decision.best_competitor_label.split(" (")[0]):
        decide_publication(evaluations, CONFIG.model_copy(update={"fallback": "nothing"}))


def test_table_and_figure(tmp_path):
    import matplotlib.pyplot as plt

    policies, log, value, cost, expected_cost, _ = simulated_campaign(SEED, heterogeneous=True)
    evaluations = evaluate_policies(policies, log, value, CONFIG, cost, expected_cost, control=0)
    table = policy_table(evaluations, "bernstein")
    assert [row["policy"] for row in table] == [p.name for p in policies]
    for key in ("value", "value_ci_low", "value_ci_high", "value_lower_bound", "cost", "planned_cost", "share_treated", "estimator"):
        assert all(key in row for row in table), key
    assert "incremental_value" not in table[1] and table[0]["incremental_value"] > 0  # nobody treated is the reference
    assert table[1]["share_treated"] == 0.0
    json.dumps(table)
    assert list(policy_frame(evaluations).columns[:3]) == ["policy", "label", "role"]
    first = plot_policy_values(evaluations, tmp_path / "a.png")
    with plt.style.context("ggplot"):  # a global style (causalml sets one) must not change the figure
        second = plot_policy_values(evaluations, tmp_path / "b.png")
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.read_bytes() == second.read_bytes()
