"""Segments: the combinations of segment columns (e.g. age_cat x freq_cat) the segment LP works on.

Segment ids must be stable across stages and runs, so they come from a reference table when one is
given (the classic visit_probability.csv numbers its 16 segments) and otherwise from the sorted
combinations of the segment columns.
"""

from __future__ import annotations

import pandas as pd

from offerflow.schema import SEGMENT_ID

__all__ = ["SEGMENT_ID", "attach_segment_ids", "segment_catalog"]


def segment_catalog(
    customers: pd.DataFrame,
    segment_columns: list[str] | tuple[str, ...],
    reference_table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per segment: segment_id, the segment columns and n_customers (customers in it).

    With a reference table carrying `segment_id`, its numbering is kept; segments present among the
    customers but missing from the reference are an error (they could not be priced).
    """
    columns = list(segment_columns)
    counts = (
        customers.groupby(columns, sort=True, observed=True).size().rename("n_customers").reset_index()
    )
    if reference_table is not None and SEGMENT_ID in reference_table.columns:
        ids = reference_table[columns + [SEGMENT_ID]]
        catalog = ids.merge(counts, on=columns, how="left")
        unknown = counts.merge(ids, on=columns, how="left", indicator=True)
        unknown = unknown[unknown["_merge"] == "left_only"]
        if len(unknown):
            sample = unknown[columns].head(5).to_dict("records")
            raise ValueError(f"customers fall in segments missing from the reference table: {sample}")
        catalog["n_customers"] = catalog["n_customers"].fillna(0).astype("int64")
        catalog[SEGMENT_ID] = catalog[SEGMENT_ID].astype("int64")
    else:
        catalog = counts.copy()
        catalog.insert(0, SEGMENT_ID, range(1, len(catalog) + 1))
        catalog["n_customers"] = catalog["n_customers"].astype("int64")
    return catalog.sort_values(SEGMENT_ID).reset_index(drop=True)[[SEGMENT_ID, *columns, "n_customers"]]


def attach_segment_ids(
    customers: pd.DataFrame, catalog: pd.DataFrame, segment_columns: list[str] | tuple[str, ...]
) -> pd.DataFrame:
    """Customers with a `segment_id` column, in their original order."""
    columns = list(segment_columns)
    merged = customers.merge(catalog[[SEGMENT_ID, *columns]], on=columns, how="left", validate="many_to_one")
    if merged[SEGMENT_ID].isna().any():
        sample = merged.loc[merged[SEGMENT_ID].isna(), columns].drop_duplicates().head(5).to_dict("records")
        raise ValueError(f"customers in segments without an id: {sample}")
    merged[SEGMENT_ID] = merged[SEGMENT_ID].astype("int64")
    return merged
