"""Budget risk: the LP keeps the *expected* coupon cost within the budget, but the realized cost is random.

Each of the n[s,d] customers of segment s given offer d redeems independently with probability p[s,d]
and then costs c_d, so the realized cost has

    mean = sum n c p        variance = sum n c^2 p (1 - p)

and, being a sum of many small independent terms, is close to normal: P(cost > B) = 1 - Phi((B - mean) / sd).
A plan whose expected cost equals the budget overspends about half the time; capping a quantile
instead means handing the LP a smaller mean budget: the largest one whose plan's quantile still fits.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Callable

import numpy as np

from offerflow.optimize.constraints import InfeasiblePlanError

MAX_BISECTIONS = 60
STANDARD_NORMAL = NormalDist()


def cost_moments(
    counts: np.ndarray, prob: np.ndarray, unit_cost: np.ndarray, contact: np.ndarray | float = 0.0
) -> tuple[float, float]:
    """Mean and standard deviation of the realized cost (independent redemptions; contact costs are certain).

    Arrays broadcast: segments x offers with counts = N_s x[s,d], or one row per customer with count 1.
    """
    counts, prob, unit_cost, contact = (np.asarray(a, dtype="float64") for a in (counts, prob, unit_cost, contact))
    mean = float((counts * (unit_cost * prob + contact)).sum())
    variance = float((counts * unit_cost**2 * prob * (1.0 - prob)).sum())
    return mean, math.sqrt(max(variance, 0.0))


def exceed_probability(mean: float, std: float, budget: float) -> float:
    """P(realized cost > budget) under the normal approximation; a certain cost exceeds or not."""
    if std <= 0:
        return 1.0 if mean > budget * (1 + 1e-12) + 1e-9 else 0.0
    if abs(budget - mean) <= 1e-9 * max(1.0, abs(budget)):  # the LP spent the budget exactly, up to round-off
        return 0.5
    return 1.0 - STANDARD_NORMAL.cdf((budget - mean) / std)


def cost_quantile(mean: float, std: float, level: float) -> float:
    """The `level` quantile of the realized cost (normal approximation)."""
    return mean + STANDARD_NORMAL.inv_cdf(level) * std


def cost_risk(
    counts: np.ndarray, prob: np.ndarray, unit_cost: np.ndarray, budget: float, level: float, contact: np.ndarray | float = 0.0
) -> dict:
    """The numbers a budget owner asks for: expected cost, spread, chance of overspending, a high quantile."""
    mean, std = cost_moments(counts, prob, unit_cost, contact)
    return {
        "budget": budget,
        "mean_cost": mean,
        "std_cost": std,
        "prob_cost_exceeds_budget": exceed_probability(mean, std, budget),
        "quantile_level": level,
        "cost_quantile": cost_quantile(mean, std, level),
    }


def largest_mean_budget(
    quantile_at: Callable[[float], float], budget: float, smallest_budget: float
) -> float:
    """Largest mean budget in [smallest_budget, budget] whose plan's cost quantile is <= budget (bisection on cents).

    `quantile_at(b)` plans at mean budget b and returns that plan's quantile. The quantile grows with
    the budget in practice; the bisection keeps a feasible low end either way, so its answer always fits.
    """
    if quantile_at(budget) <= budget:
        return budget
    low_quantile = quantile_at(smallest_budget)
    if low_quantile > budget:
        raise InfeasiblePlanError(
            f"even the cheapest plan (expected cost {smallest_budget:,.2f} USD) has a cost quantile of "
            f"{low_quantile:,.2f} USD > the budget of {budget:,.2f} USD: raise optimize.budget to at least "
            f"{math.ceil(low_quantile * 100) / 100:,.2f} USD, lower optimize.min_share, or lower "
            "optimize.risk.cap_quantile",
            smallest_feasible_budget=low_quantile,
        )
    low, high = math.ceil(smallest_budget * 100 - 1e-6), math.ceil(budget * 100)  # cents; high is known to fail
    if low >= high or quantile_at(low / 100) > budget:
        return smallest_budget
    for _ in range(MAX_BISECTIONS):
        if high - low <= 1:
            break
        middle = (low + high) // 2
        if quantile_at(middle / 100) <= budget:
            low = middle
        else:
            high = middle
    return low / 100
