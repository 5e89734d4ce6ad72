"""Assignments from a customer-level plan: the allocator already chose one offer per customer.

The plan (Parquet or CSV) has customer_id and offer, and optionally predicted_probability and
expected_cost. Publishing it must not silently drop, duplicate or invent customers, so the plan
has to cover exactly the customers of the customer file, each once; anything else is rejected
with the offending ids before anything is written.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from offerflow.schema import CUSTOMER_ID, SEGMENT_ID, prob_column
from offerflow.publish.assign import ASSIGNMENT_COLUMNS, OFFER, PlanError

PROBABILITY = "predicted_probability"
COST = "expected_cost"
SAMPLE = 5


def _sample(values: pd.Series | pd.Index) -> list:
    return sorted(pd.unique(values.to_numpy()).tolist(), key=str)[:SAMPLE]


def check_customer_plan(plan: pd.DataFrame, customers: pd.DataFrame, source: str) -> None:
    """Exactly one plan row per customer of the input, no unknown customers, an offer on every row."""
    missing = [column for column in (CUSTOMER_ID, OFFER) if column not in plan.columns]
    if missing:
        raise PlanError(f"{source}: missing columns {missing} (has {list(plan.columns)})")
    for column in (CUSTOMER_ID, SEGMENT_ID):
        if column not in customers.columns:
            raise PlanError(f"customers: missing column {column!r}")
    if plan.empty:
        raise PlanError(f"{source}: no rows")
    empty = plan[CUSTOMER_ID].isna() | plan[OFFER].isna() | (plan[OFFER].astype(str).str.strip() == "")
    if empty.any():
        rows = plan.index[empty][:SAMPLE].tolist()
        raise PlanError(f"{source}: {int(empty.sum())} rows without customer_id or offer, e.g. rows {rows}")
    repeated = plan.loc[plan[CUSTOMER_ID].duplicated(keep=False), CUSTOMER_ID]
    if len(repeated):
        raise PlanError(
            f"{source}: {repeated.nunique()} customer_id values appear more than once (one offer per customer), "
            f"e.g. {_sample(repeated)}"
        )
    known = customers[CUSTOMER_ID]
    if known.duplicated().any():
        raise PlanError(f"customers: duplicate customer_id values {_sample(known[known.duplicated()])}")
    extra = plan.loc[~plan[CUSTOMER_ID].isin(known), CUSTOMER_ID]
    absent = known[~known.isin(plan[CUSTOMER_ID])]
    if len(extra) or len(absent):
        dtypes = ""
        if plan[CUSTOMER_ID].dtype != known.dtype:
            dtypes = f" (plan customer_id dtype {plan[CUSTOMER_ID].dtype}, customers {known.dtype})"
        raise PlanError(
            f"{source} does not match the customers{dtypes}: {len(absent)} customers have no plan row "
            f"(e.g. {_sample(absent)}), {len(extra)} plan rows name unknown customers (e.g. {_sample(extra)})"
        )


def _check_range(values: pd.Series, plan: pd.DataFrame, column: str, source: str, upper: float | None) -> None:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() | ~np.isfinite(numbers.fillna(0)) | (numbers < 0)
    if upper is not None:
        bad |= numbers > upper
    if bad.any():
        rows = plan.loc[bad.to_numpy(), [CUSTOMER_ID, OFFER]].assign(**{column: values[bad].to_numpy()})
        bound = f"in [0, {upper:g}]" if upper is not None else ">= 0"
        raise PlanError(f"{source}: column {column!r} must be a finite number {bound}, bad rows: {rows.head(SAMPLE).to_dict('records')}")


def _probabilities_from_customers(merged: pd.DataFrame, source: str) -> np.ndarray:
    """Each customer's probability under the offer the plan gives them, from the prob_<arm> columns."""
    offers = merged[OFFER].astype(str)
    needed = sorted({prob_column(offer) for offer in offers.unique()})
    missing = [column for column in needed if column not in merged.columns]
    if missing:
        raise PlanError(
            f"{source}: has no {PROBABILITY!r} column and the customer probabilities lack {missing}: "
            "add predicted_probability to the plan or provide the per-customer probability table"
        )
    result = np.empty(len(merged), dtype="float64")
    for offer in offers.unique():
        mask = (offers == offer).to_numpy()
        result[mask] = merged.loc[mask, prob_column(offer)].to_numpy(dtype="float64")
    return result


def assign_from_customer_plan(
    customer_plan: pd.DataFrame,
    customers: pd.DataFrame,
    coupon_cost: Mapping[str, float] | None = None,
    source: str = "customer plan",
) -> pd.DataFrame:
    """Assignment rows (customer_id, segment_id, offer, predicted_probability, expected_cost) from a customer plan.

    `customers` needs customer_id and segment_id, plus prob_<arm> columns when the plan has no
    predicted_probability. Without expected_cost in the plan it is coupon x probability, which
    needs `coupon_cost`; with `coupon_cost`, offers that are not arms are rejected.
    """
    check_customer_plan(customer_plan, customers, source)
    plan = customer_plan.assign(**{OFFER: customer_plan[OFFER].astype(str)})
    if coupon_cost is not None:
        unknown = sorted(set(plan[OFFER]) - set(coupon_cost))
        if unknown:
            raise PlanError(f"{source}: column 'offer' has values {unknown} that are not arms {list(coupon_cost)}")
    keep = [c for c in customers.columns if c in (CUSTOMER_ID, SEGMENT_ID) or c.startswith("prob_")]
    merged = customers[keep].merge(plan, on=CUSTOMER_ID, how="inner", validate="one_to_one", suffixes=("", "_plan"))
    if SEGMENT_ID in plan.columns:
        differ = merged[merged[SEGMENT_ID] != merged[f"{SEGMENT_ID}_plan"]]
        if len(differ):
            shown = differ[[CUSTOMER_ID, SEGMENT_ID, f"{SEGMENT_ID}_plan"]].head(SAMPLE).to_dict("records")
            raise PlanError(f"{source}: {len(differ)} customers have another segment_id than in the customer file, e.g. {shown}")
    if PROBABILITY in plan.columns:
        probability = merged[PROBABILITY]
    else:
        probability = pd.Series(_probabilities_from_customers(merged, source), index=merged.index)
    _check_range(probability, merged, PROBABILITY, source, upper=1.0)
    probability = pd.to_numeric(probability).astype("float64")
    if COST in plan.columns:
        cost = merged[COST]
    elif coupon_cost is None:
        raise PlanError(f"{source}: has no {COST!r} column and no coupon costs were given to compute it")
    else:
        cost = merged[OFFER].map(dict(coupon_cost)).astype("float64") * probability
    _check_range(cost, merged, COST, source, upper=None)
    result = pd.DataFrame(
        {
            CUSTOMER_ID: merged[CUSTOMER_ID].to_numpy(),
            SEGMENT_ID: merged[SEGMENT_ID].astype("int64").to_numpy(),
            OFFER: merged[OFFER].to_numpy(),
            PROBABILITY: probability.to_numpy(),
            COST: pd.to_numeric(cost).astype("float64").to_numpy(),
        }
    )
    return result.sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)[ASSIGNMENT_COLUMNS]
