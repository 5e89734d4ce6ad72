"""Baselines match the target spend exactly and pick what a marketer would pick; plans become policy matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from offerflow.config import BaselinesConfig, HeuristicConfig
from offerflow.errors import InfeasiblePlanError, InputDataError
from offerflow.evaluation.baselines import (
    Heuristic,
    SpendTarget,
    best_average_offer,
    best_offer_random_subset,
    build_baselines,
    customer_plan_policy,
    expected_spend,
    heuristic_policy,
    heuristic_score,
    nobody_treated,
    random_offers,
    segment_plan_policy,
    target_of,
    treated_count,
)

SEED = 20261124
COUPON = np.array([0.0, 10.0, 20.0])
CONTACT = np.array([0.0, 0.5, 0.5])


@pytest.fixture(scope="module")
def cost_matrix() -> np.ndarray:
    """Expected cost per customer and arm: coupon x predicted conversion + contact cost (control free)."""
    rng = np.random.default_rng(SEED)
    probability = np.sort(rng.uniform(0.02, 0.4, (2000, 3)), axis=1)
    return COUPON * probability + CONTACT


def assert_spend(policy: np.ndarray, cost: np.ndarray, target: float) -> None:
    assert np.allclose(policy.sum(axis=1), 1.0) and (policy >= 0).all()
    assert expected_spend(policy, cost) == pytest.approx(target, rel=1e-9)


@pytest.mark.parametrize("spend", [0.0, 1234.5, 4000.0])
def test_every_baseline_matches_the_target_spend(cost_matrix, spend):
    target = SpendTarget("spend", spend)
    values = np.array([0.10, 0.16, 0.20])
    assert_spend(random_offers(cost_matrix, 0, target), cost_matrix, spend)
    assert_spend(best_offer_random_subset(values, cost_matrix, 0, target), cost_matrix, spend)
    score = np.random.default_rng(1).exponential(60.0, len(cost_matrix)).round()  # many ties
    for arm in (1, 2):
        assert_spend(heuristic_policy(score, False, arm, cost_matrix, 0, target, seed=3), cost_matrix, spend)


def test_contacts_target_is_matched_exactly(cost_matrix):
    target = SpendTarget("contacts", 777.25)
    score = np.arange(len(cost_matrix), dtype=float)
    for policy in (
        random_offers(cost_matrix, 0, target),
        best_offer_random_subset(np.array([0.1, 0.2, 0.15]), cost_matrix, 0, target),
        heuristic_policy(score, True, 2, cost_matrix, 0, target, seed=0),
    ):
        assert treated_count(policy, 0) == pytest.approx(777.25, rel=1e-12)


def test_heuristic_treats_the_top_customers_and_one_fractional(cost_matrix):
    score = np.random.default_rng(2).normal(size=len(cost_matrix))
    policy = heuristic_policy(score, True, 2, cost_matrix, 0, SpendTarget("spend", 2500.0), seed=0)
    treated = policy[:, 2]
    assert ((treated > 0) & (treated < 1)).sum() == 1
    boundary = score[(treated > 0) & (treated < 1)][0]
    assert (treated[score > boundary] == 1).all() and (treated[score < boundary] == 0).all()
    assert (policy[:, 1] == 0).all()


def test_heuristic_ties_are_broken_by_the_seed(cost_matrix):
    flat = np.zeros(len(cost_matrix))
    target = SpendTarget("contacts", 500.0)
    first = heuristic_policy(flat, True, 1, cost_matrix, 0, target, seed=1)
    assert np.array_equal(first, heuristic_policy(flat, True, 1, cost_matrix, 0, target, seed=1))
    assert not np.array_equal(first, heuristic_policy(flat, True, 1, cost_matrix, 0, target, seed=2))


def test_best_average_offer_is_the_best_at_the_target_spend():
    cost = np.column_stack([np.zeros(100), np.ones(100), np.full(100, 3.0)])  # extra cost 100 and 300 in total
    values = np.array([0.10, 0.15, 0.22])  # gains 0.05 and 0.12 per customer
    # spend 60: arm 1 to 60% gains 0.030, arm 2 to 20% gains 0.024 -> arm 1 (better per dollar)
    assert best_average_offer(values, cost, 0, SpendTarget("spend", 60.0)) == (1, pytest.approx(0.6))
    # spend 250: arm 1 saturates (100%: 0.05), arm 2 to 83% gains 0.1 -> arm 2
    assert best_average_offer(values, cost, 0, SpendTarget("spend", 250.0)) == (2, pytest.approx(250 / 300))
    # per contact the larger gain wins
    assert best_average_offer(values, cost, 0, SpendTarget("contacts", 30.0))[0] == 2


def test_random_offers_spread_over_the_treatments(cost_matrix):
    policy = random_offers(cost_matrix, 0, SpendTarget("spend", 1000.0))
    assert np.allclose(policy[:, 1], policy[:, 2]) and np.allclose(policy[:, 1], policy[0, 1])


def test_build_baselines_labels_and_notes(cost_matrix):
    rng = np.random.default_rng(4)
    candidate = np.eye(3)[np.where(rng.random(len(cost_matrix)) < 0.4, rng.integers(1, 3, len(cost_matrix)), 0)]
    target = target_of(candidate, cost_matrix, 0, "spend")
    heuristics = [Heuristic("recency", "most recently active first", np.arange(len(cost_matrix), dtype=float), descending=False)]
    baselines = build_baselines(cost_matrix, 0, target, np.array([0.1, 0.16, 0.2]), heuristics, seed=5, arms=["dm1", "dm2", "dm3"])
    assert [b.name for b in baselines] == ["nobody_treated", "random_offers", "best_offer_random_subset", "heuristic_recency"]
    assert all(b.role == "baseline" for b in baselines)
    assert baselines[3].label.startswith("most recently active first (dm")
    for baseline in baselines[1:]:
        assert_spend(baseline.matrix, cost_matrix, target.amount)
        assert baseline.note == ""
    assert np.array_equal(baselines[0].matrix, nobody_treated(len(cost_matrix), 3, 0))
    # a spend no baseline can reach: everyone treated, and the note says so
    too_much = build_baselines(cost_matrix, 0, SpendTarget("spend", 1e7), np.array([0.1, 0.16, 0.2]))
    assert all("reaches only" in b.note for b in too_much[1:])


def test_impossible_targets_are_refused(cost_matrix):
    free_control = cost_matrix.copy()
    free_control[:, 0] = 1.0
    with pytest.raises(InfeasiblePlanError, match="below the spend of treating nobody"):
        random_offers(free_control, 0, SpendTarget("spend", 10.0))
    with pytest.raises(InfeasiblePlanError, match="contacts"):
        random_offers(cost_matrix, 0, SpendTarget("contacts", 1e6))
    with pytest.raises(InputDataError, match="missing or infinite"):
        heuristic_policy(np.full(len(cost_matrix), np.nan), True, 1, cost_matrix, 0, SpendTarget("contacts", 1.0), 0)


def test_segment_plan_becomes_each_rows_segment_shares():
    plan = pd.DataFrame({"segment_id": [1, 1, 2, 2, 2], "offer": ["dm1", "dm3", "dm1", "dm2", "dm3"], "share": [0.25, 0.75, 0.1, 0.2, 0.7]})
    policy = segment_plan_policy(np.array([2, 1, 1]), plan, ["dm1", "dm2", "dm3"])
    assert policy.tolist() == [[0.1, 0.2, 0.7], [0.25, 0.0, 0.75], [0.25, 0.0, 0.75]]
    with pytest.raises(InputDataError, match=r"segments \[9\]"):
        segment_plan_policy(np.array([9]), plan, ["dm1", "dm2", "dm3"])
    with pytest.raises(InputDataError, match="sum to 1"):
        segment_plan_policy(np.array([1]), plan.assign(share=0.3), ["dm1", "dm2", "dm3"])
    with pytest.raises(InputDataError, match="not arms"):
        segment_plan_policy(np.array([1]), plan, ["dm1", "dm2"])


def test_customer_plan_becomes_one_hot_rows():
    assert customer_plan_policy(["dm2", "dm1"], ["dm1", "dm2", "dm3"]).tolist() == [[0, 1, 0], [1, 0, 0]]
    with pytest.raises(InputDataError, match="dm9"):
        customer_plan_policy(["dm9"], ["dm1", "dm2", "dm3"])


def test_heuristic_score_ranks_categories_and_names_missing_columns():
    frame = pd.DataFrame({"freq_cat": ["freq2", "freq0", "freq3~"]})
    config = HeuristicConfig(name="frequent first", column="freq_cat", descending=True)
    assert heuristic_score(frame, config).tolist() == [1.0, 0.0, 2.0]
    with pytest.raises(InputDataError, match="'recency_days'"):
        heuristic_score(frame, HeuristicConfig(column="recency_days"))
    assert BaselinesConfig().match == "spend"
