"""What the optimizer maximizes: one switch shared by the segment LP, the frontier and the customer level.

Per customer (or per customer of a segment) and offer d with conversion probability p[d] and coupon c[d]:

    incremental_conversions   p[d] - p[control]          conversions the offer adds over the control arm
    conversions               p[d]
    revenue                   v p[d]                     v: value of a conversion (USD)
    profit                    v p[d] - c[d] p[d]         the coupon is paid only when redeemed

Every customer gets exactly one offer, so terms that do not depend on d (such as p[control]) shift
the objective by a constant and never change the plan: with one value v for everyone, all four
objectives trace the same budget path and differ only in where more money stops helping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from offerflow.config import Params

OBJECTIVES = ("incremental_conversions", "conversions", "revenue", "profit")
VALUED = ("revenue", "profit")  # objectives that need the value of a conversion


def check_objective(objective: str, value: float | np.ndarray | None) -> None:
    """Unknown objective names, or revenue/profit without a (finite, >= 0) conversion value, are errors."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {list(OBJECTIVES)}, got {objective!r}")
    if objective not in VALUED:
        return
    if value is None:
        raise ValueError(f"objective {objective!r} needs the value of a conversion (optimize.value_per_conversion)")
    values = np.asarray(value, dtype="float64")
    if not (np.isfinite(values).all() and (values >= 0).all()):
        raise ValueError(f"the value of a conversion must be finite and >= 0 for objective {objective!r}")


def objective_coefficients(
    prob: np.ndarray,
    arms: Sequence[str],
    control: str,
    coupon_cost: dict[str, float],
    objective: str = "incremental_conversions",
    value: float | np.ndarray | None = None,
    contact_cost: dict[str, float] | None = None,
) -> np.ndarray:
    """Objective value per (row, offer) of giving that row's customer the offer (rows x arms).

    `prob` is rows x arms in arm order; `value` is one USD value per conversion or one per row
    (e.g. predicted lifetime value). Multiply by a segment's size for the segment LP.
    """
    prob = np.asarray(prob, dtype="float64")
    if prob.ndim != 2 or prob.shape[1] != len(arms):
        raise ValueError(f"probabilities must be rows x {len(arms)} arms {list(arms)}, got shape {prob.shape}")
    check_objective(objective, value)
    if objective == "incremental_conversions":
        return prob - prob[:, [list(arms).index(control)]]
    if objective == "conversions":
        return prob.copy()
    per_row = np.asarray(value, dtype="float64").reshape(-1, 1) if np.ndim(value) else float(value)
    if np.ndim(per_row) and per_row.shape[0] != prob.shape[0]:
        raise ValueError(f"one value per row is needed: {per_row.shape[0]} values for {prob.shape[0]} rows")
    revenue = per_row * prob
    if objective == "revenue":
        return revenue
    unit_cost = np.array([coupon_cost[arm] for arm in arms], dtype="float64")
    contact = np.array([(contact_cost or {}).get(arm, 0.0) for arm in arms], dtype="float64")
    return revenue - unit_cost[None, :] * prob - contact[None, :]


def incremental_per_usd(objective: str, dual: float, value: float | None, budget_binding: bool) -> float:
    """Extra incremental conversions one more dollar of budget buys, from the budget row's dual.

    The dual prices the objective. With one value v for every conversion: conversions differ from
    incremental conversions by a constant, revenue is v x conversions, and a binding budget means
    cost = budget, so profit' = v conversions' - 1. A slack budget buys nothing more.
    """
    if not budget_binding:
        return 0.0
    if objective in ("incremental_conversions", "conversions"):
        return dual
    if value is None or value <= 0:
        raise ValueError(f"objective {objective!r} needs a positive value_per_conversion to price a conversion")
    return dual / value if objective == "revenue" else (dual + 1.0) / value


def customer_values(probabilities: pd.DataFrame, params: "Params", customers: pd.DataFrame) -> np.ndarray:
    """Value of a conversion for every row of the customer probability table (USD).

    optimize.value_column is looked up in the probability table first, then in the customer file
    (joined by customer id); without it every customer is worth optimize.value_per_conversion.
    """
    from offerflow.errors import InputDataError
    from offerflow.schema import CUSTOMER_ID

    column = params.optimize.value_column
    if column is None:
        return np.full(len(probabilities), float(params.optimize.value_per_conversion or 0.0))
    source = "the customer probability table"
    if column in probabilities.columns:
        values = probabilities[column]
    else:
        source = str(params.data.customers)
        if column not in customers.columns:
            raise InputDataError(f"{source}: optimize.value_column {column!r} is not a column; it has {list(customers.columns)}")
        lookup = customers.drop_duplicates(CUSTOMER_ID).set_index(CUSTOMER_ID)[column]
        values = probabilities[CUSTOMER_ID].map(lookup)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() | ~np.isfinite(numbers.fillna(0)) | (numbers < 0)
    if bad.any():
        sample = probabilities.loc[bad.to_numpy(), CUSTOMER_ID].head(5).tolist()
        raise InputDataError(
            f"{source}: optimize.value_column {column!r} must be a finite number >= 0 for every customer; "
            f"offending customers: {sample} ({int(bad.sum())} in all)"
        )
    return numbers.to_numpy(dtype="float64")


def customer_value_and_cost(
    probabilities: pd.DataFrame, customers: pd.DataFrame, params: "Params"
) -> tuple[np.ndarray, np.ndarray]:
    """customers x arms objective values and expected coupon costs for the customer-level allocator."""
    from offerflow.schema import prob_columns

    arms = params.arms
    prob = probabilities[prob_columns(arms.names)].to_numpy(dtype=float)
    objective = params.optimize.objective
    value = customer_values(probabilities, params, customers) if objective in VALUED else None
    coefficients = objective_coefficients(prob, arms.names, arms.control, arms.coupon_cost, objective, value,
                                          dict(arms.contact_cost))
    coupon = np.array([arms.coupon_cost[arm] for arm in arms.names])
    contact = np.array([arms.contact(arm) for arm in arms.names])
    return coefficients, prob * coupon[None, :] + contact[None, :]
