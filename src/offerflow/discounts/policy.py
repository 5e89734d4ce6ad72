"""Which discount level each customer gets, and what each policy is worth on the randomized test.

Decision: the grid levels are the offers. value[i, l] = expected profit change of customer i at
level l versus no discount (from the effect model), cost[i, l] = the level in USD; offerflow's exact
customer allocator picks one level per customer with total discount <= budget (none: unlimited).

Valuation (honest, on the randomized file, which the model never saw): the randomized discounts
are multiples of 10 drawn independently of the customers' features, i.e. discrete arms with design
probabilities estimated by their frequencies. A deterministic level policy is then valued with the
plain discrete doubly robust estimator: a profit model mu(x, d) cross-fitted on the randomized file
plus the inverse-propensity-weighted error on the rows whose random discount equals the policy's
level. No kernel smoothing is needed because the levels are arms that were actually drawn; a level
drawn for fewer than `min_arm_rows` customers cannot be valued and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from offerflow.discounts.config import NuisanceConfig
from offerflow.discounts.effects import nuisance_model
from offerflow.errors import ConfigError, InputDataError
from offerflow.optimize.customer_allocation import allocate_customers


@dataclass(frozen=True)
class LevelPlan:
    """A policy: the level index (into the grid) of every customer, plus how it was made."""

    name: str
    level_index: np.ndarray
    predicted_gain: float  # model-expected profit change per customer vs no discount
    detail: dict


def level_value_and_cost(profit_change: np.ndarray, levels: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The allocator's inputs: value = expected profit change, cost = discount dollars."""
    cost = np.broadcast_to(np.asarray(levels, float)[None, :], profit_change.shape).copy()
    return np.asarray(profit_change, float), cost


def personalized_plan(value: np.ndarray, cost: np.ndarray, budget: float | None, partition_rows: int) -> LevelPlan:
    """One level per customer maximizing expected profit with total discount <= budget."""
    limit = float("inf") if budget is None else float(budget)
    allocation = allocate_customers(value, cost, limit, partition_rows)
    rows = np.arange(len(value))
    detail = {
        "budget": budget,
        "expected_discount_total": float(cost[rows, allocation.offer].sum()),
        "optimality_gap": float(allocation.gap),
        "budget_price": float(allocation.threshold),
    }
    return LevelPlan("personalized", allocation.offer, float(value[rows, allocation.offer].mean()), detail)


def nobody_plan(n: int) -> LevelPlan:
    return LevelPlan("no discount", np.zeros(n, dtype=int), 0.0, {})


def uniform_plan(value: np.ndarray, levels: tuple[float, ...], budget: float | None) -> LevelPlan:
    """Everyone the same level: the one with the best model-expected profit that fits the budget."""
    n = len(value)
    totals = value.sum(axis=0)
    feasible = np.array([budget is None or n * level <= budget + 1e-9 for level in levels])
    best = int(np.flatnonzero(feasible)[np.argmax(totals[feasible])])
    plan = np.full(n, best, dtype=int)
    return LevelPlan(f"everyone {levels[best]:g} USD", plan, float(totals[best] / n), {"level": levels[best]})


def rule_plan(
    name: str,
    score: np.ndarray,
    descending: bool,
    share: float,
    level: float,
    levels: tuple[float, ...],
    value: np.ndarray,
    budget: float | None,
    tie_key: np.ndarray,
) -> LevelPlan:
    """The marketer's rule: the first `share` of customers by `score` get `level`, within the budget."""
    if level not in levels:
        raise ConfigError(
            f"discounts.evaluation.rule.level {level:g} is not one of discounts.policy.levels {list(levels)}"
        )
    n = len(score)
    count = int(round(share * n))
    if budget is not None and level > 0:
        count = min(count, int(np.floor(budget / level + 1e-9)))
    primary = -np.asarray(score, float) if descending else np.asarray(score, float)
    chosen = np.lexsort((tie_key, primary))[:count]
    plan = np.zeros(n, dtype=int)
    plan[chosen] = levels.index(level)
    rows = np.arange(n)
    return LevelPlan(name, plan, float(value[rows, plan].mean()), {"level": level, "customers": count})


def randomized_design(
    discount: np.ndarray, levels: tuple[float, ...], min_arm_rows: int, max_arms: int, source: str
) -> np.ndarray:
    """Design probability of each grid level in the randomized file (its empirical frequency).

    Refuses a design that is not a small set of discrete levels, and levels drawn too rarely.
    """
    values, counts = np.unique(np.asarray(discount, float), return_counts=True)
    if len(values) > max_arms:
        raise InputDataError(
            f"{source}: the randomized discount takes {len(values)} distinct values (> discounts.policy.max_arms "
            f"{max_arms}); offerflow values policies on discrete randomized levels only"
        )
    frequency = dict(zip(values.tolist(), (counts / counts.sum()).tolist()))
    count = dict(zip(values.tolist(), counts.tolist()))
    rare = {level: count.get(float(level), 0) for level in levels if count.get(float(level), 0) < min_arm_rows}
    if rare:
        raise ConfigError(
            f"discounts.policy.levels {sorted(rare)} were drawn for too few customers in {source} "
            f"(rows per level {rare}, need >= discounts.policy.min_arm_rows {min_arm_rows}): "
            "a policy using them cannot be valued; use levels the randomized test drew"
        )
    return np.array([frequency[float(level)] for level in levels])


def cross_fitted_profit(
    X: pd.DataFrame,
    discount: np.ndarray,
    profit: np.ndarray,
    levels: tuple[float, ...],
    config: NuisanceConfig,
    folds: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """mu(x, d) out of fold: (n, L) at every grid level and (n,) at each row's own discount."""
    from sklearn.model_selection import KFold

    x = X.to_numpy(dtype=float)
    d = np.asarray(discount, float)
    at_levels = np.zeros((len(x), len(levels)))
    at_observed = np.zeros(len(x))
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(x):
        model = nuisance_model(config, seed).fit(np.column_stack([x[train], d[train]]), profit[train])
        at_observed[test] = model.predict(np.column_stack([x[test], d[test]]))
        for j, level in enumerate(levels):
            at_levels[test, j] = model.predict(np.column_stack([x[test], np.full(len(test), level)]))
    return at_levels, at_observed


def policy_scores(
    plan: LevelPlan,
    levels: tuple[float, ...],
    discount: np.ndarray,
    profit: np.ndarray,
    mu_levels: np.ndarray,
    mu_observed: np.ndarray,
    propensity: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row doubly robust and IPS scores of a level policy, and which rows got its level at random."""
    rows = np.arange(len(profit))
    chosen = np.asarray(levels, float)[plan.level_index]
    match = np.isclose(np.asarray(discount, float), chosen)
    weight = match / propensity[plan.level_index]
    dr = mu_levels[rows, plan.level_index] + weight * (profit - mu_observed)
    return dr, weight * profit, match


def mean_interval(scores: np.ndarray, level: float) -> dict:
    """Mean of i.i.d. per-row scores with its normal interval and one-sided lower bound."""
    n = len(scores)
    estimate, se = float(scores.mean()), float(scores.std(ddof=1) / np.sqrt(n))
    z, one_sided = float(stats.norm.ppf(0.5 + level / 2)), float(stats.norm.ppf(level))
    return {
        "estimate": estimate,
        "ci_low": estimate - z * se,
        "ci_high": estimate + z * se,
        "lower_bound": estimate - one_sided * se,
        "standard_error": se,
    }


def compare_policies(
    plans: list[LevelPlan],
    levels: tuple[float, ...],
    discount: np.ndarray,
    profit: np.ndarray,
    mu_levels: np.ndarray,
    mu_observed: np.ndarray,
    propensity: np.ndarray,
    level: float = 0.95,
) -> list[dict]:
    """Each policy's profit per customer on the randomized rows (doubly robust, IPS alongside), and its
    paired difference to the first policy named "no discount" (same rows: a much tighter interval)."""
    scored = [
        (plan, *policy_scores(plan, levels, discount, profit, mu_levels, mu_observed, propensity)) for plan in plans
    ]
    reference = next((dr for plan, dr, _, _ in scored if plan.name == "no discount"), None)
    estimates = []
    for plan, dr, ips, match in scored:
        value = mean_interval(dr, level)
        entry = {
            "name": plan.name,
            "value_per_customer": value["estimate"],
            "ci_low": value["ci_low"],
            "ci_high": value["ci_high"],
            "lower_bound": value["lower_bound"],  # one-sided `level` lower confidence bound
            "standard_error": value["standard_error"],
            "mean_discount": float(np.asarray(levels, float)[plan.level_index].mean()),
            "ips_value_per_customer": float(ips.mean()),
            "ips_standard_error": float(ips.std(ddof=1) / np.sqrt(len(ips))),
            "matched_rows": int(match.sum()),
            "predicted_gain_per_customer": plan.predicted_gain,
            "estimator": "doubly robust, discrete randomized levels",
            "level": level,
        }
        if reference is not None:
            entry["versus_no_discount"] = mean_interval(dr - reference, level)
        estimates.append(entry)
    return estimates


def slug(name: str) -> str:
    """A column-safe version of a policy name ("everyone 10 USD" -> "everyone_10_usd")."""
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")


def offer_name(level: float) -> str:
    """The level as an offer name for the publish layer: 110.0 -> "discount_110"."""
    return f"discount_{level:g}"


def plan_table(customer_id: np.ndarray, plan: LevelPlan, levels: tuple[float, ...], value: np.ndarray) -> pd.DataFrame:
    """One row per customer in the publish layer's customer-plan shape (customer_id, offer, expected_cost),
    plus the level in USD and the model's expected profit change there. The example files have no id
    column: customer_id is the customer's row in the file (from 0)."""
    rows = np.arange(len(plan.level_index))
    chosen = np.asarray(levels, float)[plan.level_index]
    return pd.DataFrame(
        {
            "customer_id": customer_id,
            "offer": [offer_name(level) for level in chosen],
            "discount": chosen,
            "expected_cost": chosen,  # a discount is paid for sure, not only on conversion
            "expected_profit_change": value[rows, plan.level_index],
        }
    )
