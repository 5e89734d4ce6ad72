"""Failure records of the validate stage and the error that carries them.

One record per broken rule, whether GX found it or a pandas cross-dataset check did, so the
CLI, the Prefect flow and the tests all read the same fields: which dataset and file, which
column, which rule, how many offending rows and a few offending values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from offerflow.errors import InputDataError


def plain(value: Any) -> Any:
    """A JSON-safe, deterministic copy of a value (numpy scalars -> Python, NaN -> None).

    Why: GX results and pandas samples hold numpy types, NaN and tuples, which the standard
    json module either rejects or writes as the non-standard `NaN`.
    """
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [plain(item) for item in items]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if value is None or isinstance(value, (str, int, bool)):
        return value
    try:
        if value != value:  # pandas NA / NaT compare unequal to themselves
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


@dataclass(frozen=True)
class ValidationFailure:
    """One broken rule in one dataset; `sample` holds a few offending values (JSON-safe)."""

    dataset: str
    path: str
    column: str | None
    expectation: str
    unexpected_count: int | None = None
    sample: tuple = field(default_factory=tuple)
    detail: str = ""
    rows: tuple = field(default_factory=tuple)  # 1-based data rows holding the sample values (file line = row + 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "path": self.path,
            "column": self.column,
            "expectation": self.expectation,
            "unexpected_count": self.unexpected_count,
            "sample": plain(list(self.sample)),
            "rows": plain(list(self.rows)),
            "detail": self.detail,
        }

    def describe(self) -> str:
        """One line a person can act on: file, column, rule, count, sample values."""
        where = f"column {self.column!r}" if self.column else "table"
        parts = [f"{self.dataset} ({self.path}) {where}: {self.expectation}"]
        if self.unexpected_count is not None:
            parts.append(f"{self.unexpected_count} unexpected")
        if self.sample:
            parts.append(f"sample values {plain(list(self.sample))!r}")
        if self.rows:
            parts.append(f"at data row(s) {', '.join(f'{row:,}' for row in self.rows)} (file line = row + 1)")
        if self.detail:
            parts.append(self.detail)
        return "; ".join(parts)


class DataValidationError(InputDataError):
    """Inputs broke their expectation suites; `.failures` lists every ValidationFailure."""

    def __init__(self, failures: list[ValidationFailure]) -> None:
        self.failures = list(failures)
        super().__init__(self.failures)

    def __str__(self) -> str:
        lines = [f"data validation failed: {len(self.failures)} failure(s)"]
        lines += [f"  - {failure.describe()}" for failure in self.failures]
        return "\n".join(lines)
