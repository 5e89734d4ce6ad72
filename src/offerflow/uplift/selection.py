"""Choose learners by the decisions they lead to: cross-fitted policy value at the configured budget.

A better Brier score is not a better plan: a learner can predict conversion a little better on average
and still rank the few customers worth a coupon worse. So with `train.selection_criterion:
policy_value` each candidate's out-of-fold probabilities are turned into the plan the optimizer would
make (best offer per history row by incremental conversions, total expected cost within the budget
scaled to the rows: optimize.budget per customer of the customers file; the budget only, not the
segment shares or capacities) and that plan is valued on the same rows by the doubly robust estimator
(offerflow.evaluation.off_policy):
    V(plan) = mean_i [ mu[i, plan_i] + 1[A_i = plan_i] (y_i - mu[i, A_i]) / e_i ].
The plan of row i comes from models that never saw row i's customer, so it is independent of y_i and
the estimate is unbiased when the propensities e are right (known 1/K on a randomized history). Every
candidate is valued with the same direct-method part mu (the mean of all candidates' out-of-fold
predictions), so the comparison is paired and favours no candidate's own optimism. The plan's cost is
estimated the same way (reward: coupon paid if converted plus contact cost).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offerflow.evaluation.off_policy import CampaignLog, Reward, dr_terms


@dataclass(frozen=True)
class SelectionEconomics:
    """What a plan may spend, per history row: the configured budget per customer, and the arms' costs."""

    budget_per_customer: float
    coupon_cost: tuple[float, ...]  # per arm, in arms order: paid when the customer converts
    contact_cost: tuple[float, ...] = ()  # per arm: paid whatever the outcome (default 0)

    def costs(self, probabilities: np.ndarray) -> np.ndarray:
        """n x arms expected cost of each offer to each row."""
        contact = np.asarray(self.contact_cost or (0.0,) * probabilities.shape[1], dtype=float)
        return probabilities * np.asarray(self.coupon_cost, dtype=float)[None, :] + contact[None, :]


def plan_from_probabilities(probabilities: np.ndarray, control: int, economics: SelectionEconomics) -> np.ndarray:
    """Offer index per row: the budget-constrained plan that maximizes predicted incremental conversions."""
    from offerflow.optimize.customer_allocation import allocate_customers

    value = probabilities - probabilities[:, [control]]
    budget = economics.budget_per_customer * len(probabilities)
    return allocate_customers(value, economics.costs(probabilities), budget, threads=1).offer


def plan_value(
    plan: np.ndarray,
    mu: np.ndarray,
    arm_index: np.ndarray,
    y: np.ndarray,
    e_received: np.ndarray,
    control: int,
    economics: SelectionEconomics,
) -> dict:
    """Doubly robust conversions and cost per row of a deterministic plan on the logged rows."""
    n, k = mu.shape
    policy = np.zeros((n, k))
    policy[np.arange(n), plan] = 1.0
    log = CampaignLog(arm_index=arm_index, propensity=e_received, n_arms=k)
    conversions = dr_terms(policy, log, Reward(observed=y.astype(float), predicted=mu))
    coupon = np.asarray(economics.coupon_cost, dtype=float)
    contact = np.asarray(economics.contact_cost or (0.0,) * k, dtype=float)
    realized = coupon[arm_index] * y + contact[arm_index]
    cost = dr_terms(policy, log, Reward(observed=realized, predicted=economics.costs(mu)))
    return {
        "policy_value": float(conversions.mean()),
        "policy_cost": float(cost.mean()),
        "treated_share": float((plan != control).mean()),
    }


def policy_values(
    probabilities: dict[str, np.ndarray],
    arm_index: np.ndarray,
    y: np.ndarray,
    e_received: np.ndarray,
    control: int,
    economics: SelectionEconomics,
) -> dict[str, dict]:
    """Per candidate: the DR value and cost per row of the plan its out-of-fold probabilities lead to."""
    mu = np.mean(list(probabilities.values()), axis=0)
    return {
        name: plan_value(plan_from_probabilities(p, control, economics), mu, arm_index, y, e_received, control, economics)
        for name, p in probabilities.items()
    }
