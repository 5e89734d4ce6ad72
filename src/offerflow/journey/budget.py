"""Tune one policy parameter so that the policy's expected campaign spend meets the budget.

Every budgeted policy here has one knob that spends less as it grows: the cost multiplier lambda of
fitted Q iteration and of the one-step optimizer (revenue - (1 + lambda) x cost), the score threshold
of a look-alike ranking, the abstention share of random offers. The search brackets the knob (growing
the upper end x4 while it still overspends), then narrows the bracket by false position with the
Illinois correction, falling back to bisection when a step would land next to an end (spend is smooth
in the knob, so this needs a few trials where plain bisection needs many; each fitted-Q trial is a
refit). It keeps the best knob that spends at most the budget: the returned policy never overspends by
its measured spend, and spends within `tolerance` of the budget unless the evaluations run out. The
caller measures spend (a simulation in the testbed, or an off-policy estimate on the log), so the
search itself is generic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar

from offerflow.errors import InfeasiblePlanError

P = TypeVar("P")


@dataclass
class TunedPolicy(Generic[P]):
    policy: P
    parameter: float
    spend: float
    binding: bool  # False: the budget is not reached even at the knob's lowest value
    evaluations: list[tuple[float, float]] = field(default_factory=list)  # (parameter, spend) tried


def tune_to_budget(
    build: Callable[[float], P],
    spend_of: Callable[[P], float],
    budget: float,
    low: float,
    high: float | None,
    tolerance: float,
    max_evaluations: int,
    label: str,
) -> TunedPolicy[P]:
    """The policy at the smallest knob in [low, high] (high=None: unbounded) whose spend is <= budget."""
    tried: list[tuple[float, float]] = []

    def evaluate(parameter: float) -> tuple[P, float]:
        policy = build(parameter)
        spend = float(spend_of(policy))
        tried.append((parameter, spend))
        return policy, spend

    policy, spend = evaluate(low)
    if spend <= budget:
        return TunedPolicy(policy, low, spend, binding=False, evaluations=tried)
    over, over_spend = low, spend
    upper = high if high is not None else max(1.0, 4.0 * abs(low))
    best, best_spend = evaluate(upper)
    while best_spend > budget:  # still overspending: grow the knob (x4) until the budget holds
        if high is not None or len(tried) >= max_evaluations:
            raise InfeasiblePlanError(
                f"{label}: even at {upper:g} the policy spends {best_spend:,.2f} USD per customer > budget "
                f"{budget:,.2f} (journey.budget.per_customer)",
                smallest_feasible_budget=best_spend,
            )
        over, over_spend, upper = upper, best_spend, 4.0 * upper
        best, best_spend = evaluate(upper)
    under = upper
    # Illinois false position on spend(knob) - budget, bisection when it would stall
    over_gap, under_gap, kept = over_spend - budget, best_spend - budget, None
    while len(tried) < max_evaluations and budget - best_spend > tolerance * budget:
        guess = under - under_gap * (under - over) / (under_gap - over_gap)
        width = under - over
        if not over + 0.05 * width < guess < under - 0.05 * width:
            guess = 0.5 * (over + under)
        candidate, spend = evaluate(guess)
        if spend <= budget:
            best, best_spend, under, under_gap = candidate, spend, guess, spend - budget
            over_gap = over_gap / 2 if kept == "over" else over_gap
            kept = "over"
        else:
            over, over_gap = guess, spend - budget
            under_gap = under_gap / 2 if kept == "under" else under_gap
            kept = "under"
    return TunedPolicy(best, under, best_spend, binding=True, evaluations=tried)
