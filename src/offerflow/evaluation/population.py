"""Whom the policies are valued on: the customers to score, or the held-out history's own customers.

A policy is valued on the held-out history rows of the customers it decides for. When the customers file
holds the history's customers (the classic case: the next campaign goes to the same people), the plan for
them is valued directly. When the customers file is a new batch (none, or not all, of the held-out history
customers are in it), the plan itself cannot be valued on logs of other people; what can be valued is the
*plan rule*: the same model, optimizer and budget per customer applied to the held-out customers, whose
features the history carries. The gate then compares rules, and the winning rule is applied to the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from offerflow.errors import InputDataError
from offerflow.schema import CUSTOMER_ID

CUSTOMERS = "customers"
HELD_OUT_CUSTOMERS = "held_out_customers"


@dataclass(frozen=True)
class PopulationChoice:
    kind: str  # CUSTOMERS or HELD_OUT_CUSTOMERS
    reason: str
    unknown_customers: int  # held-out history customers not in the customers file


def choose_population(mode: str, held_out_ids: pd.Series, customer_ids: pd.Series, carried: list[str],
                      needed: list[str]) -> PopulationChoice:
    """evaluate.population (auto | customers | held_out_customers) resolved against the data.

    auto values the plan on the customers file when every held-out history customer is in it, else the plan
    rule on the held-out customers when the history carries the columns the rule needs (`needed`), else the
    plan on the held-out customers that are in the file (the others are counted and reported)."""
    distinct = pd.Series(held_out_ids.unique())
    unknown = int((~distinct.isin(customer_ids)).sum())
    missing = [column for column in needed if column not in carried]
    if mode == CUSTOMERS or (mode == "auto" and unknown == 0):
        why = "every held-out history customer is in the customers file" if unknown == 0 else (
            f"evaluate.population: customers ({unknown} held-out history customers are not in the customers file and are left out)")
        return PopulationChoice(CUSTOMERS, why, unknown)
    if missing:
        if mode == HELD_OUT_CUSTOMERS:
            raise InputDataError(
                f"evaluate.population: held_out_customers values the plan rule on the history's own customers, "
                f"so the history must carry column(s) {missing} (it has {carried[:20]})")
        return PopulationChoice(CUSTOMERS, (
            f"{unknown} of {len(distinct)} held-out history customers are not in the customers file and the history "
            f"lacks {missing} to score them: they are left out"), unknown)
    why = "evaluate.population: held_out_customers" if mode == HELD_OUT_CUSTOMERS else (
        f"{unknown} of {len(distinct)} held-out history customers are not in the customers file (a new batch)")
    return PopulationChoice(HELD_OUT_CUSTOMERS, why + ": the plan rule is re-applied to the held-out customers "
                            "at the same budget per customer", unknown)


def held_out_customers_frame(held_out: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One row per held-out customer with the columns the rule needs, from their latest history row."""
    kept = [CUSTOMER_ID, *dict.fromkeys(c for c in columns if c in held_out.columns and c != CUSTOMER_ID)]
    frame = held_out[kept].drop_duplicates(CUSTOMER_ID, keep="last")
    return frame.sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)
