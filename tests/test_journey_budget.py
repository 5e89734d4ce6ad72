"""Budget tuning: the search finds the knob where spend meets the budget, never returns an overspending
policy, reports a slack budget, and names an impossible one."""

from __future__ import annotations

import pytest

from offerflow.errors import InfeasiblePlanError
from offerflow.journey.budget import tune_to_budget


def test_finds_the_knob_where_a_smooth_spend_meets_the_budget() -> None:
    result = tune_to_budget(lambda x: x, lambda x: 12.0 / (1.0 + x), budget=4.0, low=0.0, high=None,
                            tolerance=0.005, max_evaluations=30, label="test")
    assert result.binding
    assert 4.0 * (1 - 0.005) <= result.spend <= 4.0
    assert result.parameter == pytest.approx(2.0, rel=0.01)  # 12 / (1 + 2) = 4
    assert all(spend > 4.0 for knob, spend in result.evaluations if knob < result.parameter)
    assert len(result.evaluations) <= 12  # false position, not plain bisection


def test_staircase_spend_still_ends_within_budget() -> None:
    steps = lambda x: 10.0 - int(x)  # noqa: E731 - spend drops by whole dollars
    result = tune_to_budget(lambda x: x, steps, budget=6.5, low=0.0, high=10.0, tolerance=0.01, max_evaluations=12,
                            label="test")
    assert result.spend == 6.0 and 4.0 <= result.parameter < 5.0


def test_slack_budget_keeps_the_lowest_knob() -> None:
    result = tune_to_budget(lambda x: x, lambda x: 3.0, budget=4.0, low=0.0, high=None, tolerance=0.01,
                            max_evaluations=10, label="test")
    assert (result.parameter, result.binding, result.spend) == (0.0, False, 3.0)


def test_impossible_budget_names_the_smallest_spend_seen() -> None:
    with pytest.raises(InfeasiblePlanError, match="spends 9.00 USD per customer > budget 5.00") as info:
        tune_to_budget(lambda x: x, lambda x: 10.0 - x, budget=5.0, low=0.0, high=1.0, tolerance=0.01,
                       max_evaluations=10, label="journey policy test")
    assert info.value.smallest_feasible_budget == 9.0
    with pytest.raises(InfeasiblePlanError, match="journey.budget.per_customer"):
        tune_to_budget(lambda x: x, lambda x: 10.0, budget=5.0, low=0.0, high=None, tolerance=0.01,
                       max_evaluations=6, label="journey policy test")
