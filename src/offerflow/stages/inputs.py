"""Readers the stage runners share: the user's files, renamed to the canonical columns of offerflow.schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from offerflow.catalog import Catalog
from offerflow.io import read_table
from offerflow.schema import ARM, CONVERTED, CUSTOMER_ID


def read_customers(catalog: Catalog) -> pd.DataFrame:
    """Customers with the id column renamed to the canonical `customer_id`."""
    frame = read_table(catalog.path("customers"))
    return frame.rename(columns={catalog.params.data.customer_id: CUSTOMER_ID})


def read_history(catalog: Catalog) -> pd.DataFrame:
    """Campaign history (simulated or the user's) with canonical `customer_id`, `arm` and `converted`."""
    data = catalog.params.data
    frame = read_table(catalog.path("history"))
    return frame.rename(columns={data.customer_id: CUSTOMER_ID, data.arm_column: ARM, data.outcome_column: CONVERTED})


def read_truth(catalog: Catalog) -> pd.DataFrame | None:
    """The known true probability table, or None when params.yaml has none."""
    path = catalog.optional("true_probabilities")
    return None if path is None else read_table(path)


def customers_with_segments(catalog: Catalog) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers plus segment ids (numbered like the true table when there is one), and the segment catalog."""
    from offerflow.segments import attach_segment_ids, segment_catalog

    customers = read_customers(catalog)
    columns = catalog.params.data.segment_columns
    segments = segment_catalog(customers, columns, reference_table=read_truth(catalog))
    return attach_segment_ids(customers, segments, columns), segments
