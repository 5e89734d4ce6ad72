"""Costs per contact beside costs per conversion, and caps over groups of offers: the same in the segment LP,
the customer-level allocation, the truth and the off-policy evaluation, checked against an independent LP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from conftest import ROOT, set_params
from offerflow.config import ConfigError, load_params
from offerflow.evaluation.truth import value_on_truth
from offerflow.optimize.objectives import customer_value_and_cost
from offerflow.optimize.segment_lp import optimize_segments

ARMS, COST, CONTACT = ["dm1", "dm2", "dm3"], {"dm1": 0.0, "dm2": 10.0, "dm3": 20.0}, {"dm1": 0.3, "dm2": 0.8, "dm3": 0.8}
COLUMNS = ["age_cat", "freq_cat"]


def example_table() -> pd.DataFrame:
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    sizes = customers.groupby(COLUMNS).size().rename("n_customers").reset_index()
    return truth.merge(sizes, on=COLUMNS).sort_values("segment_id").reset_index(drop=True)


def reference_lp(table: pd.DataFrame, budget: float, min_share: float, group_cap: float | None, objective: str) -> float:
    """The segment LP written out for scipy's linprog: an independent formulation of the same problem."""
    n = table["n_customers"].to_numpy(float)
    p = table[[f"prob_{a}" for a in ARMS]].to_numpy(float)
    coupon, contact = np.array([COST[a] for a in ARMS]), np.array([CONTACT[a] for a in ARMS])
    value = n[:, None] * ((p - p[:, [0]]) if objective == "incremental_conversions" else (35 * p - coupon * p - contact))
    spend = n[:, None] * (coupon * p + contact)
    s, k = p.shape
    equality = np.kron(np.eye(s), np.ones(k))
    rows, bounds = [spend.ravel()], [budget]
    if group_cap is not None:
        rows.append(np.tile([0.0, 1.0, 1.0], s) * np.repeat(n, k))
        bounds.append(group_cap)
    result = linprog(-value.ravel(), A_ub=np.array(rows), b_ub=bounds, A_eq=equality, b_eq=np.ones(s),
                     bounds=[(min_share, 1.0)] * (s * k), method="highs")
    assert result.status == 0
    return -result.fun


@pytest.mark.parametrize("objective", ["incremental_conversions", "profit"])
@pytest.mark.parametrize("group_cap", [None, 1_800.0])
def test_segment_lp_with_contact_costs_and_a_group_cap_matches_an_independent_lp(objective, group_cap):
    table = example_table()
    groups = {} if group_cap is None else {"coupons": (["dm2", "dm3"], group_cap)}
    plan = optimize_segments(table, COLUMNS, ARMS, "dm1", COST, 12_000, 0.1, contact_cost=CONTACT, groups=groups,
                             objective=objective, value_per_conversion=35.0)
    assert plan.metrics["objective"] == pytest.approx(reference_lp(table, 12_000, 0.1, group_cap, objective), rel=1e-7)
    assert plan.metrics["expected_cost"] <= 12_000 + 1e-6
    coupons = plan.plan[plan.plan["offer"].isin(["dm2", "dm3"])]["expected_customers"].sum()
    assert group_cap is None or coupons <= group_cap + 1e-6
    # the contact cost is in the plan's cost: a control-only plan of 5,000 customers already costs 1,500 USD
    scored = value_on_truth(plan.plan.assign(customers=plan.plan["expected_customers"])[[*COLUMNS, "offer", "customers"]],
                            table, COLUMNS, ARMS, "dm1", COST, objective, 35.0, CONTACT)
    assert scored["expected_cost"] == pytest.approx(plan.metrics["expected_cost"], rel=1e-7)


def test_customer_costs_add_the_contact_and_profit_subtracts_it(project):
    set_params(project, arms__contact_cost=CONTACT, optimize__objective="profit", publish__source="customer_plan")
    params = load_params(project / "params.yaml")
    probabilities = pd.DataFrame({"customer_id": [1, 2], "prob_dm1": [0.1, 0.2], "prob_dm2": [0.3, 0.4], "prob_dm3": [0.5, 0.6]})
    value, cost = customer_value_and_cost(probabilities, pd.DataFrame({"customer_id": [1, 2]}), params)
    p = probabilities[["prob_dm1", "prob_dm2", "prob_dm3"]].to_numpy()
    coupon, contact = np.array([0.0, 10.0, 20.0]), np.array([0.3, 0.8, 0.8])
    assert cost == pytest.approx(p * coupon + contact)
    assert value == pytest.approx(35 * p - p * coupon - contact)
    set_params(project, arms__contact_cost={"dm9": 1.0})
    with pytest.raises(ConfigError, match="contact_cost names"):
        load_params(project / "params.yaml")


def test_a_customer_budget_below_the_cheapest_contacts_exits_4_and_is_not_retried(project):
    from offerflow.errors import exit_code_of, is_retryable
    from offerflow.optimize.coupled_allocation import allocate_with_constraints

    value = np.tile([0.0, 0.1, 0.2], (1000, 1))
    cost = np.tile([0.5, 1.0, 2.0], (1000, 1))  # even the control offer costs postage
    with pytest.raises(Exception) as caught:
        allocate_with_constraints(value, cost, 100.0)
    assert exit_code_of(caught.value) == 4 and not is_retryable(caught.value)
    assert "500" in str(caught.value)  # the smallest feasible budget: 1,000 x 0.5 USD
