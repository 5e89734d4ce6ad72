"""Valuing plans on a known truth: one function for segment and customer plans, checked by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from offerflow.errors import InputFileError
from offerflow.evaluation.truth import customer_plan_counts, segment_plan_counts, value_on_truth

TRUTH = pd.DataFrame({"seg": ["x", "y"], "prob_a": [0.1, 0.2], "prob_b": [0.3, 0.5]})
COST = {"a": 0.0, "b": 10.0}


def test_segment_plan_value_and_cost_by_hand():
    plan = pd.DataFrame({
        "seg": ["x", "x", "y", "y"], "offer": ["a", "b", "a", "b"],
        "n_customers": [100, 100, 50, 50], "share": [0.6, 0.4, 0.0, 1.0],
    })
    counts = segment_plan_counts(plan, ["seg"])
    assert counts["customers"].tolist() == [60.0, 40.0, 0.0, 50.0]
    scored = value_on_truth(counts, TRUTH, ["seg"], ["a", "b"], "a", COST)
    assert scored["incremental_conversions"] == pytest.approx(40 * 0.2 + 50 * 0.3)
    assert scored["conversions"] == pytest.approx(60 * 0.1 + 40 * 0.3 + 50 * 0.5)
    assert scored["expected_cost"] == pytest.approx(10 * (40 * 0.3 + 50 * 0.5))
    assert scored["objective"] == scored["incremental_conversions"]
    profit = value_on_truth(counts, TRUTH, ["seg"], ["a", "b"], "a", COST, "profit", 35.0)
    assert profit["objective"] == pytest.approx(35 * scored["conversions"] - scored["expected_cost"])


def test_customer_plan_is_counted_per_segment_and_valued_the_same_way():
    customers = pd.DataFrame({"customer_id": [1, 2, 3, 4], "seg": ["x", "x", "y", "y"]})
    plan = pd.DataFrame({"customer_id": [4, 3, 2, 1], "offer": ["b", "b", "b", "a"]})
    counts = customer_plan_counts(plan, customers, ["seg"])
    assert counts.to_dict("records") == [
        {"seg": "x", "offer": "a", "customers": 1.0},
        {"seg": "x", "offer": "b", "customers": 1.0},
        {"seg": "y", "offer": "b", "customers": 2.0},
    ]
    scored = value_on_truth(counts, TRUTH, ["seg"], ["a", "b"], "a", COST)
    assert scored["incremental_conversions"] == pytest.approx(0.2 + 2 * 0.3)
    assert scored["expected_cost"] == pytest.approx(10 * (0.3 + 2 * 0.5))


def test_a_segment_the_truth_cannot_price_is_named():
    counts = pd.DataFrame({"seg": ["z"], "offer": ["b"], "customers": [3.0]})
    with pytest.raises(InputFileError, match="'seg': 'z'"):
        value_on_truth(counts, TRUTH, ["seg"], ["a", "b"], "a", COST)
