"""Probability tables handed to the optimizer: per customer and per segment, for every arm."""

from __future__ import annotations

import pandas as pd

from offerflow.io import CUSTOMER_ID, prob_columns
from offerflow.segments import SEGMENT_ID
from offerflow.train import UpliftModel


def predict_customer_probabilities(
    model: UpliftModel, customers: pd.DataFrame, clip: tuple[float, float] = (0.0, 1.0)
) -> pd.DataFrame:
    """customer_id, segment_id, prob_<arm>...: every customer's conversion probability under every arm."""
    probabilities = model.predict_arm_probabilities(customers).clip(*clip)
    return pd.concat([customers[[CUSTOMER_ID, SEGMENT_ID]], probabilities], axis=1).reset_index(drop=True)


def aggregate_segment_probabilities(
    customer_probabilities: pd.DataFrame, catalog: pd.DataFrame, arms: list[str]
) -> pd.DataFrame:
    """Segment table with the visit_probability.csv schema (segment columns, segment_id, prob_<arm>) + n_customers.

    A segment's probability is the mean over its customers, so that N_s * p[s,d] is exactly the
    expected number of conversions the customer-level model predicts for the segment.
    """
    columns = prob_columns(arms)
    means = customer_probabilities.groupby(SEGMENT_ID, sort=True)[columns].mean().reset_index()
    table = catalog.merge(means, on=SEGMENT_ID, how="left", validate="one_to_one")
    segment_columns = [c for c in catalog.columns if c not in (SEGMENT_ID, "n_customers")]
    return table[[*segment_columns, SEGMENT_ID, *columns, "n_customers"]]
