"""Checks that need two datasets at once, done in pandas and reported like GX failures.

A suite sees one table; these rules tie tables together: every customer in the history must be
a known customer (otherwise training rows have no features), and every customer segment must
have a row in each probability table (otherwise the optimizer cannot price that segment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from offerflow.validation.failures import ValidationFailure, plain


@dataclass(frozen=True)
class CrossCheck:
    """The outcome of one cross-dataset rule, attributed to the dataset that would be fixed."""

    name: str
    dataset: str
    failures: list[ValidationFailure] = field(default_factory=list)
    skipped: str = ""

    @property
    def evaluated(self) -> bool:
        return not self.skipped

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"check": self.name, "success": not self.failures}
        if self.skipped:
            entry["skipped"] = self.skipped
        entry["failures"] = [failure.as_dict() for failure in self.failures]
        return entry


def _absent(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return [column for column in columns if column not in frame.columns]


def history_customers_known(
    history: pd.DataFrame,
    customers: pd.DataFrame,
    id_column: str,
    history_path: str,
    max_sample: int,
    skip: str = "",
) -> CrossCheck:
    """History rows whose customer id is not in the customer file; `skip` gives a reason not to check."""
    name = "history_customer_ids_in_customers"
    gaps = _absent(history, [id_column]) + _absent(customers, [id_column])
    if gaps or skip:
        return CrossCheck(name, "history", skipped=skip or f"column {gaps[0]!r} missing (reported by its suite)")
    ids = history[id_column]
    unknown = ids[ids.notna() & ~ids.isin(customers[id_column].dropna())]
    if unknown.empty:
        return CrossCheck(name, "history")
    sample = [plain(value) for value in pd.unique(unknown)[:max_sample]]
    failure = ValidationFailure(
        "history", history_path, id_column, name, unexpected_count=int(len(unknown)), sample=tuple(sample),
        detail=f"{unknown.nunique()} distinct ids not among the customers",
    )
    return CrossCheck(name, "history", [failure])


def segments_covered(
    customers: pd.DataFrame,
    table: pd.DataFrame,
    segment_columns: list[str],
    table_dataset: str,
    table_path: str,
    max_sample: int,
    skip: str = "",
) -> CrossCheck:
    """Customer segments (combinations of the segment columns) without a row in the table.

    Compared as Python tuples rather than merged, so a dtype mismatch (e.g. 1 vs "1") shows up
    as a missing segment instead of a pandas merge error.
    """
    name = "customer_segments_in_table"
    gaps = _absent(customers, segment_columns) + _absent(table, segment_columns)
    if gaps or skip:
        reason = skip or f"column {gaps[0]!r} missing (reported by its suite)"
        return CrossCheck(name, table_dataset, skipped=reason)
    known = set(table[segment_columns].drop_duplicates().itertuples(index=False, name=None))
    counts = customers.groupby(segment_columns, sort=True, dropna=True, observed=True).size()
    missing = [(key if isinstance(key, tuple) else (key,), int(n)) for key, n in counts.items()]
    missing = [(key, n) for key, n in missing if key not in known]
    if not missing:
        return CrossCheck(name, table_dataset)
    sample = [dict(zip(segment_columns, plain(list(key)))) for key, _ in missing[:max_sample]]
    failure = ValidationFailure(
        table_dataset, table_path, ", ".join(segment_columns), name, unexpected_count=len(missing),
        sample=tuple(sample), detail=f"{sum(n for _, n in missing)} customers fall in segments missing from the table",
    )
    return CrossCheck(name, table_dataset, [failure])
