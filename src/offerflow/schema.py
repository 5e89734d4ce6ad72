"""Column names every stage agrees on, in one place.

Readers rename the user's columns (params.yaml `data.customer_id`, `data.arm_column`,
`data.outcome_column`) to these canonical names on the way in, so domain code never needs params
to find a column.
"""

from __future__ import annotations

CUSTOMER_ID = "customer_id"
ARM = "arm"
CONVERTED = "converted"
SEGMENT_ID = "segment_id"
N_CUSTOMERS = "n_customers"
OFFER = "offer"
PREDICTED_PROBABILITY = "predicted_probability"
EXPECTED_COST = "expected_cost"
PROPENSITY = "propensity"  # probability of the arm received, as logged by the campaign
TRUE_PROB = "true_prob"  # simulator only: the true conversion probability of the arm received


def prob_column(arm: str) -> str:
    """Column holding the conversion probability of `arm` (the visit_probability.csv convention)."""
    return f"prob_{arm}"


def prob_columns(arms: list[str]) -> list[str]:
    return [prob_column(arm) for arm in arms]


def true_prob_column(arm: str) -> str:
    """History column with the customer's true conversion probability under `arm` (simulator only)."""
    return f"{TRUE_PROB}_{arm}"
