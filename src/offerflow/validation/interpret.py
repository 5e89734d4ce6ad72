"""Turn GX expectation results into ValidationFailure records a person can act on.

GX answers per expectation; people need per problem. A missing column makes GX raise on every
expectation that touches it, so those collapse into one "missing column" failure; an exception
on a column that already failed another rule (e.g. a range check on a text column whose type
check failed) is a consequence and is dropped; type failures get sample offending values from
the data, since GX only reports the column's dtype.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from offerflow.validation.failures import ValidationFailure, plain
from offerflow.validation.gx_session import exception_summary
from offerflow.validation.suites import INTEGER_DTYPES

TYPE_LIST = "expect_column_values_to_be_in_type_list"


def failures_from_results(
    dataset: str, path: str, frame: pd.DataFrame, results: list[Any], max_sample: int
) -> list[ValidationFailure]:
    """Failures of one dataset, in suite order: missing columns first, then broken rules."""
    present = [str(column) for column in frame.columns]
    missing: list[str] = []
    broken: list[ValidationFailure] = []
    raised: list[tuple[list[str], ValidationFailure]] = []
    failed_columns: set[str] = set()
    for result in results:
        if result.success:
            continue
        config = result.expectation_config
        kwargs = dict(config.kwargs)
        columns = columns_of(kwargs)
        absent = [column for column in columns if column not in present]
        if absent or (config.type == "expect_column_to_exist" and columns):
            missing += [column for column in (absent or columns) if column not in missing]
            continue
        message = exception_summary(result.exception_info)["exception_message"]
        if message:
            raised.append((columns, _failure(dataset, path, config.type, columns, detail=f"raised: {message}")))
            continue
        broken.append(describe_result(dataset, path, frame, config.type, kwargs, result.result or {}, max_sample))
        failed_columns.update(columns)
    missing_failures = [
        _failure(dataset, path, "expect_column_to_exist", [column], detail=f"column missing; columns present: {present}")
        for column in missing
    ]
    consequences = [failure for columns, failure in raised if not failed_columns.intersection(columns)]
    return missing_failures + broken + consequences


def columns_of(kwargs: dict[str, Any]) -> list[str]:
    if isinstance(kwargs.get("column"), str):
        return [kwargs["column"]]
    return [str(column) for column in kwargs.get("column_list") or []]


def _failure(dataset: str, path: str, expectation: str, columns: list[str], **fields: Any) -> ValidationFailure:
    return ValidationFailure(dataset, path, ", ".join(columns) or None, expectation, **fields)


def describe_result(
    dataset: str,
    path: str,
    frame: pd.DataFrame,
    expectation: str,
    kwargs: dict[str, Any],
    result: dict[str, Any],
    max_sample: int,
) -> ValidationFailure:
    """One failed (non-raising) expectation as a failure with count, sample values and the rule."""
    columns = columns_of(kwargs)
    sample = sample_values(result, max_sample)
    count = result.get("unexpected_count")
    observed = result.get("observed_value")
    if expectation == TYPE_LIST and observed is not None and columns:
        integer = set(kwargs.get("type_list") or []) <= set(INTEGER_DTYPES)
        series = frame[columns[0]]
        sample = values_not_of_kind(series, integer, max_sample)
        kind = "an integer" if integer else "a numeric"
        detail = f"observed dtype {observed!r}, expected {kind} dtype"
        if integer and not sample and series.isna().any():
            detail += " (empty cells make pandas read whole numbers as float)"
        rows = rows_of(series, sample, max_sample) if sample else ()
        return _failure(
            dataset, path, expectation, columns, unexpected_count=count, sample=tuple(sample), detail=detail, rows=rows
        )
    detail = expected_text(expectation, kwargs)
    if columns and read_as_text(frame[columns[0]], kwargs):
        # one bad cell makes pandas read the whole column as text: name the cells that are not allowed numbers
        count, sample = text_offenders(frame[columns[0]], kwargs, max_sample)
        detail += "; the column was read as text because of these values"
    if observed is not None:
        detail = f"observed {plain(observed)!r}; {detail}" if detail else f"observed {plain(observed)!r}"
    rows = rows_of(frame[columns[0]], sample, max_sample) if columns and len(columns) == 1 and sample else ()
    return _failure(
        dataset, path, expectation, columns, unexpected_count=count, sample=tuple(sample), detail=detail, rows=rows
    )


def text_offenders(series: pd.Series, kwargs: dict[str, Any], limit: int) -> tuple[int, list[Any]]:
    """(count, distinct values) of cells that are not numbers, or numbers outside the allowed set or range."""
    present = series[series.notna()]
    numeric = pd.to_numeric(present, errors="coerce")
    bad = numeric.isna()
    if "value_set" in kwargs:
        bad |= ~numeric.isin([v for v in kwargs["value_set"] if isinstance(v, (int, float))])
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None:
        bad |= numeric < low
    if high is not None:
        bad |= numeric > high
    offending = present[bad.to_numpy()]
    distinct: list[Any] = []
    for value in offending.tolist():
        value = plain(value)
        if value not in distinct:
            distinct.append(value)
        if len(distinct) == limit:
            break
    return int(len(offending)), distinct


def rows_of(series: pd.Series, sample: list[Any], limit: int) -> tuple[int, ...]:
    """1-based data rows of the first cells holding the sample values (so a user can find them)."""
    wanted = {str(value) for value in sample}
    hits = series.astype(str).isin(wanted).to_numpy().nonzero()[0][:limit]
    return tuple(int(position) + 1 for position in hits)


def sample_values(result: dict[str, Any], limit: int) -> list[Any]:
    """Distinct offending values, most frequent first (GX's partial counts), at most `limit`."""
    counted = result.get("partial_unexpected_counts")
    values = [item.get("value") for item in counted] if counted else list(result.get("partial_unexpected_list") or [])
    distinct: list[Any] = []
    for value in (plain(value) for value in values):
        if value not in distinct:
            distinct.append(value)
    return distinct[:limit]


def values_not_of_kind(series: pd.Series, integer: bool, limit: int) -> list[Any]:
    """Non-null values that are not numbers (or not whole numbers): the cause of a dtype failure."""
    present = series[series.notna()]
    numeric = pd.to_numeric(present, errors="coerce")
    offending = numeric.isna()
    if integer:
        offending |= (numeric % 1) != 0
    distinct: list[Any] = []
    for value in present[offending.to_numpy()].tolist():
        value = plain(value)
        if value not in distinct:
            distinct.append(value)
        if len(distinct) == limit:
            break
    return distinct


def read_as_text(series: pd.Series, kwargs: dict[str, Any]) -> bool:
    """True when numbers were expected but the column holds text (one bad cell does that)."""
    expected = list(kwargs.get("value_set") or []) + [kwargs.get("min_value"), kwargs.get("max_value")]
    numbers = [value for value in expected if isinstance(value, (int, float)) and not isinstance(value, bool)]
    return bool(numbers) and not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def expected_text(expectation: str, kwargs: dict[str, Any]) -> str:
    """The rule in words, so the message says what would have been accepted."""
    if "value_set" in kwargs:
        return f"allowed values {plain(kwargs['value_set'])!r}"
    if "min_value" in kwargs or "max_value" in kwargs:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        unit = " rows" if expectation == "expect_table_row_count_to_be_between" else ""
        return f"allowed range [{low}, {high}]{unit}"
    return ""
