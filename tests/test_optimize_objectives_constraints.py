"""Objectives and constraints of the segment LP, against hand algebra and a numpy vertex enumeration.

The reference `vertex_optimum` knows nothing of Pyomo or HiGHS: it solves every basis of the LP
(the equalities plus any n - m active inequalities) with numpy and keeps the best feasible vertex.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from offerflow.config import ConfigError, load_params
from offerflow.errors import InputDataError
from offerflow.optimize.objectives import customer_value_and_cost, objective_coefficients
from offerflow.evaluation.truth import segment_plan_counts, value_on_truth
from offerflow.optimize.segment_lp import InfeasiblePlanError, optimize_segments
from test_optimize_segment_lp import ARMS, COST, FLOOR, MIN_SHARE, greedy_optimum, tiny_table

P = tiny_table()[[f"prob_{a}" for a in ARMS]].to_numpy(float)
N = tiny_table()["n_customers"].to_numpy(float)
UNIT = np.array([COST[a] for a in ARMS])
SPEND = N[:, None] * P * UNIT  # per segment: A (0, 200, 800), B (0, 520, 1200), C (0, 1260, 2400)
GAIN = N[:, None] * (P - P[:, [0]])  # A (0, 10, 30), B (0, 12, 20), C (0, 36, 30)


def vertex_optimum(
    objective: np.ndarray,
    budget: float | None,
    lower: np.ndarray,
    upper: np.ndarray | None = None,
    capacity: dict[int, float] | None = None,
) -> tuple[float, np.ndarray]:
    """max objective . x over x (segments x arms, flattened): rows sum to 1, bounds per arm, capacities, budget."""
    n_seg, n_arms = objective.shape
    n = n_seg * n_arms
    equalities = np.kron(np.eye(n_seg), np.ones(n_arms))
    rows, limits = [], []
    for i in range(n):  # x >= lower[arm], x <= upper[arm] (the upper row only when it can bind)
        unit = np.eye(n)[i]
        rows.append(-unit), limits.append(-lower[i % n_arms])
        if upper is not None and upper[i % n_arms] < 1:
            rows.append(unit), limits.append(upper[i % n_arms])
    for arm, cap in (capacity or {}).items():
        rows.append(np.kron(N, np.eye(n_arms)[arm])), limits.append(cap)
    if budget is not None:
        rows.append(SPEND.ravel()), limits.append(budget)
    G, h = np.array(rows), np.array(limits, dtype=float)
    combos = np.array(list(itertools.combinations(range(len(G)), n - n_seg)))
    A = np.concatenate([np.broadcast_to(equalities, (len(combos), n_seg, n)), G[combos]], axis=1)
    b = np.concatenate([np.ones((len(combos), n_seg)), h[combos]], axis=1)
    regular = np.abs(np.linalg.det(A)) > 1e-9
    x = np.linalg.solve(A[regular], b[regular][..., None])[..., 0]
    x = x[(x @ G.T <= h + 1e-7).all(axis=1)]
    values = x @ objective.ravel()
    best = int(np.argmax(values))
    return float(values[best]), x[best]


def solve(budget: float, min_share=MIN_SHARE, **options):
    return optimize_segments(tiny_table(), ["seg"], ARMS, "dm1", COST, budget, min_share, **options)


def shares_of(result) -> np.ndarray:
    return result.plan["share"].to_numpy().reshape(3, 3)


# -- objectives ----------------------------------------------------------------------------------------


def test_objective_coefficients_by_hand():
    prob = np.array([[0.1, 0.2, 0.4], [0.3, 0.42, 0.4]])
    assert objective_coefficients(prob, ARMS, "dm1", COST) == pytest.approx(np.array([[0, 0.1, 0.3], [0, 0.12, 0.1]]))
    assert objective_coefficients(prob, ARMS, "dm2", COST, "incremental_conversions")[0] == pytest.approx([-0.1, 0, 0.2])
    assert objective_coefficients(prob, ARMS, "dm1", COST, "conversions") == pytest.approx(prob)
    assert objective_coefficients(prob, ARMS, "dm1", COST, "revenue", 50.0)[1] == pytest.approx([15, 21, 20])
    # profit = v p - c p: second row 50*0.42 - 10*0.42 = 16.8, 50*0.4 - 20*0.4 = 12
    assert objective_coefficients(prob, ARMS, "dm1", COST, "profit", 50.0)[1] == pytest.approx([15, 16.8, 12])
    per_row = objective_coefficients(prob, ARMS, "dm1", COST, "profit", np.array([10.0, 100.0]))
    assert per_row == pytest.approx(np.array([[1, 0, -4], [30, 37.8, 32]]))


@pytest.mark.parametrize(
    "objective, value, message",
    [
        ("margin", None, "objective must be one of"),
        ("revenue", None, "needs the value of a conversion"),
        ("profit", -1.0, "finite and >= 0"),
        ("revenue", np.array([1.0, 2.0, 3.0]), "one value per row"),
    ],
)
def test_objective_errors(objective, value, message):
    with pytest.raises(ValueError, match=message):
        objective_coefficients(np.full((2, 3), 0.2), ARMS, "dm1", COST, objective, value)


@pytest.mark.parametrize(
    "objective, value, coefficients",
    [
        ("conversions", None, N[:, None] * P),
        ("revenue", 50.0, 50 * N[:, None] * P),
        ("profit", 50.0, 50 * N[:, None] * P - SPEND),
        ("profit", 30.0, 30 * N[:, None] * P - SPEND),
    ],
)
def test_each_objective_reaches_the_vertex_optimum(objective, value, coefficients):
    for budget in (1000.0, 2500.0):
        result = solve(budget, objective=objective, value_per_conversion=value)
        expected, _ = vertex_optimum(coefficients, budget, np.full(3, MIN_SHARE))
        assert result.metrics["objective"] == pytest.approx(expected, rel=1e-9)
        assert result.metrics["objective_name"] == objective
        # profit at 30 USD ties two offers in a segment, so the optimal plan need not be the enumeration's vertex:
        # the chosen plan must reach the optimum, and its conversions and cost are what is reported
        x = shares_of(result).ravel()
        assert coefficients.ravel() @ x == pytest.approx(expected, rel=1e-9)
        assert SPEND.ravel() @ x <= budget + 1e-6
        assert result.metrics["expected_incremental_conversions"] == pytest.approx(GAIN.ravel() @ x, abs=1e-6)
        assert result.metrics["expected_cost"] == pytest.approx(SPEND.ravel() @ x, abs=1e-6)


def test_one_value_per_conversion_gives_every_objective_the_same_plan_and_marginal_cost():
    # at 1500 USD the last dollar moves C from dm1 to dm2: 36 conversions for 1260 USD = 35 USD each
    plans = {
        name: solve(1500.0, objective=name, value_per_conversion=value)
        for name, value in [("incremental_conversions", None), ("conversions", None), ("revenue", 50.0), ("profit", 50.0)]
    }
    base = shares_of(plans["incremental_conversions"])
    for name, result in plans.items():
        assert shares_of(result) == pytest.approx(base, abs=1e-9), name
        assert result.metrics["marginal_cost_per_incremental_conversion"] == pytest.approx(35.0, rel=1e-9), name
    assert plans["revenue"].metrics["budget_shadow_price"] == pytest.approx(50 * 36 / 1260, rel=1e-9)
    assert plans["profit"].metrics["budget_shadow_price"] == pytest.approx(50 * 36 / 1260 - 1, rel=1e-9)


def test_profit_stops_spending_where_a_conversion_costs_more_than_it_is_worth():
    # worth 40 USD: buy A's edges (20 and 30 USD per conversion) and C's (35), not B's (43.3, 85): spend 2080
    result = solve(10_000.0, objective="profit", value_per_conversion=40.0)
    assert result.metrics["expected_cost"] == pytest.approx(2080.0, abs=1e-6)
    assert result.metrics["budget_binding"] is False
    assert result.metrics["marginal_cost_per_incremental_conversion"] is None
    assert shares_of(result) == pytest.approx(np.array([[0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]), abs=1e-12)


def test_value_on_truth_values_a_segment_plan_with_the_chosen_objective():
    plan = solve(1500.0).plan
    scored = value_on_truth(segment_plan_counts(plan, ["seg"]), tiny_table(), ["seg"], ARMS, "dm1", COST, "profit", 50.0)
    x = plan["share"].to_numpy()
    assert scored["objective"] == pytest.approx((50 * N[:, None] * P - SPEND).ravel() @ x, rel=1e-12)
    assert scored["incremental_conversions"] == pytest.approx(GAIN.ravel() @ x, rel=1e-12)


def test_customer_values_and_costs_read_a_per_customer_value_column(project):
    customers = pd.read_csv(project / "data/external/customers.csv").head(4)
    customers["ltv"] = [10.0, 0.0, 250.5, 40.0]
    prob = np.array([[0.1, 0.2, 0.4], [0.3, 0.3, 0.3], [0.05, 0.1, 0.2], [0.5, 0.6, 0.9]])
    probabilities = pd.DataFrame({"customer_id": customers["customer_id"][::-1].to_numpy()})  # other row order
    probabilities[["prob_dm1", "prob_dm2", "prob_dm3"]] = prob
    params = load_params(
        project / "params.yaml",
        overrides={"optimize.objective": "profit", "optimize.value_column": "ltv"},
    )
    ltv = customers.set_index("customer_id").loc[probabilities["customer_id"], "ltv"].to_numpy()
    expected = ltv[:, None] * prob - UNIT[None, :] * prob
    value, cost = customer_value_and_cost(probabilities, customers, params)
    assert value == pytest.approx(expected, rel=1e-12)
    assert cost == pytest.approx(UNIT[None, :] * prob, rel=1e-12)
    default = load_params(project / "params.yaml")  # incremental conversions need no value
    assert customer_value_and_cost(probabilities, customers, default)[0] == pytest.approx(prob - prob[:, [0]])

    broken = customers.assign(ltv=[10.0, -3.0, None, 1.0])
    with pytest.raises(InputDataError, match=r"customers.csv: optimize.value_column 'ltv' must be .*2 in all"):
        customer_value_and_cost(probabilities, broken, params)
    wrong = load_params(project / "params.yaml", overrides={"optimize.objective": "revenue", "optimize.value_column": "clv"})
    with pytest.raises(InputDataError, match=r"customers.csv: optimize.value_column 'clv' is not a column"):
        customer_value_and_cost(probabilities, customers, wrong)


def test_params_need_a_value_for_revenue_profit_and_max_profit(project):
    for overrides in (
        {"optimize.objective": "revenue", "optimize.value_per_conversion": None},
        {"optimize.frontier.recommend": {"rule": "max_profit"}, "optimize.value_per_conversion": None},
    ):
        with pytest.raises(ConfigError, match="value_per_conversion"):
            load_params(project / "params.yaml", overrides=overrides)
    with pytest.raises(ConfigError, match="marginal_cost_below needs target"):
        load_params(project / "params.yaml", overrides={"optimize.frontier.recommend": {"rule": "marginal_cost_below"}})
    with pytest.raises(ConfigError, match=r"optimize.min_share.*within \[0, 1\]"):
        load_params(project / "params.yaml", overrides={"optimize.min_share": {"dm2": 1.2}})


# -- constraints --------------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [900.0, 1800.0, 5000.0])
def test_per_offer_min_and_max_shares_reach_the_vertex_optimum(budget):
    lower, upper = np.array([0.0, 0.05, 0.15]), np.array([1.0, 0.6, 0.5])
    result = solve(budget, {"dm2": 0.05, "dm3": 0.15}, max_share={"dm2": 0.6, "dm3": 0.5})
    expected, _ = vertex_optimum(GAIN, budget, lower, upper)
    assert result.metrics["objective"] == pytest.approx(expected, abs=1e-7)
    shares = shares_of(result)
    assert (shares >= lower - 1e-12).all() and (shares <= upper + 1e-12).all()
    assert result.metrics["min_share"] == {"dm1": 0.0, "dm2": 0.05, "dm3": 0.15}
    assert result.metrics["max_share"] == {"dm1": 1.0, "dm2": 0.6, "dm3": 0.5}


@pytest.mark.parametrize("budget", [1200.0, 2500.0])
def test_capacity_caps_the_customers_of_an_offer(budget):
    result = solve(budget, capacity={"dm3": 90, "dm2": 150})
    expected, x = vertex_optimum(GAIN, budget, np.full(3, MIN_SHARE), capacity={2: 90, 1: 150})
    assert result.metrics["objective"] == pytest.approx(expected, abs=1e-7)
    assert result.metrics["offer_customers"]["dm3"] <= 90 + 1e-6
    assert result.metrics["offer_customers"]["dm2"] <= 150 + 1e-6
    assert result.metrics["capacity"] == {"dm2": 150, "dm3": 90}
    unconstrained = solve(budget).metrics["objective"]
    assert result.metrics["objective"] < unconstrained - 1  # the caps bind at these budgets


def test_smallest_feasible_budget_counts_per_offer_minimums_and_capacities():
    # dm3 at >= 0.2 everywhere, dm2 >= 0.1, and at most 100 customers on dm1: the cheapest way is the min-cost vertex
    options = {"min_share": {"dm2": 0.1, "dm3": 0.2}, "capacity": {"dm1": 100}}
    cheapest, _ = vertex_optimum(-SPEND, None, np.array([0.0, 0.1, 0.2]), capacity={0: 100})
    with pytest.raises(InfeasiblePlanError, match="Smallest feasible budget") as caught:
        solve(500.0, options["min_share"], capacity=options["capacity"])
    assert caught.value.smallest_feasible_budget == pytest.approx(-cheapest, abs=1e-6)
    assert -cheapest > 0.1 * SPEND[:, 1].sum() + 0.2 * SPEND[:, 2].sum() + 1  # the capacity makes it dearer
    floor = caught.value.smallest_feasible_budget
    assert solve(floor + 1e-6, options["min_share"], capacity=options["capacity"]).metrics["expected_cost"] <= floor + 1e-5


@pytest.mark.parametrize(
    "options, message",
    [
        ({"capacity": {"dm3": 50}}, r"offer dm3: min_share 0.1 x 600 customers = 60.0 > capacity 50; raise "
                                    r"optimize.capacity.dm3 to at least 60 or lower its min_share to at most 0.08333"),
        ({"max_share": {"dm1": 0.3}, "capacity": {"dm2": 100, "dm3": 100}},
         r"the offers can reach at most 380 of 600 customers \(dm1 180, dm2 100, dm3 100"),
        ({"min_share": {"dm2": 0.5}, "max_share": {"dm2": 0.4}}, r"offer dm2: min_share 0.5 > max_share 0.4"),
        ({"min_share": {"dm2": 0.6, "dm3": 0.5}}, r"the minimum shares .* add up to 1.1 > 1"),
    ],
)
def test_conflicting_constraints_are_named_with_their_numbers(options, message):
    min_share = options.pop("min_share", MIN_SHARE)
    with pytest.raises(InfeasiblePlanError, match=message) as caught:
        solve(1e6, min_share, **options)
    assert caught.value.smallest_feasible_budget is None  # no budget can fix these


def test_unknown_offers_in_per_offer_settings_are_named():
    with pytest.raises(ValueError, match=r"optimize.capacity names offer\(s\) \['dm9'\]"):
        solve(1500.0, capacity={"dm9": 5})
    with pytest.raises(ValueError, match=r"optimize.max_share names offer\(s\) \['dm0'\]"):
        solve(1500.0, max_share={"dm0": 0.5})


# -- fairness -----------------------------------------------------------------------------------------


def test_fairness_under_a_binding_budget_spends_it_all_on_the_common_share():
    # the cheapest plan with every share >= t puts the rest on the free dm1 and costs t x 6380 USD
    budget = 1000.0
    result = solve(budget, 0.0, fairness=True)
    t = budget / SPEND.sum()
    assert result.metrics["fairness"] == {"enabled": True, "common_min_share": pytest.approx(t, abs=2e-9)}
    assert shares_of(result) == pytest.approx(np.array([[1 - 2 * t, t, t]] * 3), abs=1e-7)  # t floored to 1e-9
    assert result.metrics["objective"] == pytest.approx(GAIN.sum() * t, abs=1e-6)


def test_fairness_limited_by_a_capacity_then_maximizes_the_objective():
    # 50 dm3 mails for 600 customers: t = 1/12; then dm3 stays at t and every segment's rest goes to dm2
    result = solve(50_000.0, 0.0, capacity={"dm3": 50}, fairness=True)
    t = result.metrics["fairness"]["common_min_share"]
    assert t == pytest.approx(1 / 12, abs=2e-9)
    assert shares_of(result) == pytest.approx(np.array([[t, 1 - 2 * t, t]] * 3), abs=1e-8)
    expected, _ = vertex_optimum(GAIN, 50_000.0, np.full(3, t), capacity={2: 50})
    assert result.metrics["objective"] == pytest.approx(expected, abs=1e-6)
    assert result.metrics["objective"] == pytest.approx(138 / 12 + (9 / 12) * (10 + 12 + 36), abs=1e-6)


def test_fairness_below_the_smallest_feasible_budget_names_it():
    with pytest.raises(InfeasiblePlanError, match=r"Smallest feasible budget: 638\.00 USD"):
        solve(600.0, fairness=True)
    assert greedy_optimum(GAIN, SPEND, FLOOR, MIN_SHARE) == pytest.approx(13.8)
