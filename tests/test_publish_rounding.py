"""Whole customers never break the limits the shares kept: budget, capacities, caps over offer groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, SEED
from offerflow.optimize.segment_lp import InfeasiblePlanError, optimize_segments
from offerflow.publish.assign import assign_from_plan
from offerflow.publish.rounding import PlanLimits, repair_counts
from offerflow.segments import attach_segment_ids, segment_catalog

ARMS, COST, COLUMNS = ["dm1", "dm2", "dm3"], {"dm1": 0.0, "dm2": 10.0, "dm3": 20.0}, ["age_cat", "freq_cat"]


@pytest.fixture(scope="module")
def example():
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    catalog = segment_catalog(customers, COLUMNS, reference_table=truth)
    table = catalog.merge(truth.drop(columns="segment_id"), on=COLUMNS)
    return attach_segment_ids(customers, catalog, COLUMNS), table


def publish(example, budget, **constraints):
    customers, table = example
    groups = constraints.pop("groups", {})
    plan = optimize_segments(table, COLUMNS, ARMS, "dm1", COST, budget, constraints.pop("min_share", 0.1),
                             groups=groups, **constraints).plan
    limits = PlanLimits(budget, dict(constraints.get("capacity") or {}),
                        tuple((name, tuple(offers), float(cap)) for name, (offers, cap) in groups.items()))
    return assign_from_plan(plan, customers, SEED, limits), assign_from_plan(plan, customers, SEED)


def test_66_budgets_never_overspend_after_rounding(example):
    overspent_before = 0
    for budget in np.linspace(7_700, 40_000, 66):
        repaired, plain = publish(example, float(budget))
        assert repaired["expected_cost"].sum() <= budget + 1e-6, budget
        overspent_before += plain["expected_cost"].sum() > budget + 1e-6
        moved = (repaired.sort_values("customer_id")["offer"].to_numpy() != plain.sort_values("customer_id")["offer"].to_numpy()).sum()
        assert moved <= 16  # at most about one customer per segment moves
    assert overspent_before > 0  # the repair is needed: plain rounding overspends some of these budgets


def test_random_capacities_groups_and_fairness_hold_after_rounding(example):
    rng = np.random.default_rng(SEED)
    checked = 0
    for trial in range(60):
        budget = float(rng.uniform(8_000, 30_000))
        capacity = {"dm3": int(rng.integers(600, 2_500))} if rng.random() < 0.7 else {}
        groups = {"coupons": (["dm2", "dm3"], int(rng.integers(1_200, 4_000)))} if rng.random() < 0.5 else {}
        try:
            repaired, _ = publish(example, budget, capacity=capacity, groups=groups, fairness=bool(rng.random() < 0.4),
                                  min_share=float(rng.choice([0.0, 0.05, 0.1])))
        except InfeasiblePlanError:
            continue
        counts = repaired["offer"].value_counts()
        assert repaired["expected_cost"].sum() <= budget + 1e-6, trial
        for offer, cap in capacity.items():
            assert counts.get(offer, 0) <= cap, (trial, offer)
        for offers, cap in groups.values():
            assert counts.reindex(offers).fillna(0).sum() <= cap, trial
        checked += 1
    assert checked >= 40


def test_repair_moves_the_dearest_rounded_customer_to_a_cheaper_offer():
    cells = pd.DataFrame({"segment_id": [1, 1, 2, 2], "offer": ["dm1", "dm3", "dm1", "dm3"], "count": [5, 5, 5, 5],
                          "unit_cost": [0.0, 8.0, 0.0, 6.0], "expected_cost": [0.0, 36.0, 0.0, 30.0]})
    repaired = repair_counts(cells, PlanLimits(budget=66.0))  # 5 x 8 + 5 x 6 = 70 > 66: one dm3 from segment 1
    assert repaired["count"].tolist() == [6, 4, 5, 5]
    capped = repair_counts(cells, PlanLimits(budget=1e9, capacity={"dm3": 9}))
    assert capped.groupby("offer")["count"].sum()["dm3"] == 9
