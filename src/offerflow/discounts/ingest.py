"""Read a messy discount history into a typed table, declaratively, and say exactly what is wrong.

Real exports mix delimiters, write money as "US$ 125.0", code states as "MA"/"MG" and gender as
0/1 floats with gaps. params.yaml declares all of it (discounts.* in discounts/config.py); this module applies
it. A value that cannot be what the declaration says is an InputDataError naming the file, the column,
the offending values and their row numbers (data rows counted from 1; file line = row + 1), because
that is what a person needs to fix the export.

Domain functions take text or frames; only `read_discount_file` touches the file system.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from offerflow.discounts.config import DiscountFileConfig, DiscountsConfig, EncodingConfig
from offerflow.errors import InputDataError, InputFileError

MISSING_TOKENS = {"", "na", "nan", "null", "none"}


def read_discount_file(
    path: Path, spec: DiscountFileConfig, config: DiscountsConfig, required: list[str], optional: list[str] = ()
) -> pd.DataFrame:
    """The file at `path` parsed per `spec`: renamed, numbers and codes typed (see parse_discount_text)."""
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: not UTF-8 text ({exc})") from None
    return parse_discount_text(text, str(path), spec, config, required, optional)


def parse_discount_text(
    text: str,
    source: str,
    spec: DiscountFileConfig,
    config: DiscountsConfig,
    required: list[str],
    optional: list[str] = (),
) -> pd.DataFrame:
    """Parse one history file's text; `required` columns must be there, `optional` ones are kept if they are.

    Every cell is read as text first (so nothing is silently coerced), then converted column by
    column; all problems of all columns are collected before raising.
    """
    if not text.strip():
        raise InputFileError(f"{source}: file is empty (no header, no rows)")
    try:
        raw = pd.read_csv(io.StringIO(text), sep=spec.delimiter, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputFileError(f"{source}: cannot be read with delimiter {spec.delimiter!r}: {exc}") from None
    raw = raw.rename(columns=spec.rename)
    missing = [column for column in required if column not in raw.columns]
    if missing:
        hint = ""
        if len(raw.columns) == 1 and spec.delimiter not in str(raw.columns[0]):
            hint = f" (the header was read as one column: is the delimiter {spec.delimiter!r} right?)"
        raise InputDataError(
            f"{source}: missing column(s) {missing}{hint}; columns present: {[str(c) for c in raw.columns]}"
        )
    problems: list[str] = []
    typed = pd.DataFrame(index=raw.index)
    limit = config.max_sample_values
    for column in [*required, *(c for c in optional if c in raw.columns and c not in required)]:
        cells = raw[column]
        if column in config.encodings:
            typed[column], problem = parse_codes(cells, config.encodings[column], limit)
        else:
            typed[column], problem = parse_numbers(cells, spec.decimal, spec.currency.get(column), limit)
        if problem:
            problems.append(f"column {column!r}: {problem}")
    if problems:
        raise InputDataError(f"{source}: malformed values\n" + "\n".join(f"  - {line}" for line in problems))
    if spec.profit_check is not None:
        check_profit_identity(typed, source, config, spec.profit_check.margin, spec.profit_check.tolerance)
    return typed.reset_index(drop=True)


def parse_numbers(cells: pd.Series, decimal: str, currency: str | None, limit: int) -> tuple[pd.Series, str]:
    """Text cells -> floats (empty cells -> NaN); a currency prefix such as "US$" is stripped first.

    Returns the numbers and a description of the offending cells ("" when all parse).
    """
    text = cells.astype(str).str.strip()
    empty = text.str.lower().isin(MISSING_TOKENS)
    cleaned = text
    if currency:
        cleaned = cleaned.str.replace(re.escape(currency), "", n=1, regex=True).str.strip()
    if decimal != ".":
        cleaned = cleaned.str.replace(".", "\x00", regex=False).str.replace(decimal, ".", regex=False)
    numbers = pd.to_numeric(cleaned.where(~empty), errors="coerce")
    bad = numbers.isna() & ~empty
    if currency:  # a currency column must carry its prefix on every filled cell (else units are unknown)
        bad |= ~empty & ~text.str.startswith(currency)
    numbers = numbers.where(~bad)
    if not bad.any():
        return numbers.astype(float), ""
    expected = f"numbers written like '{currency} 125.0'" if currency else f"numbers (decimal mark {decimal!r})"
    return numbers.astype(float), f"expected {expected}; {describe_cells(text, bad, limit)}"


def parse_codes(cells: pd.Series, encoding: EncodingConfig, limit: int) -> tuple[pd.Series, str]:
    """Text cells -> the declared category (as declared: str or number); unknown codes are errors."""
    text = cells.astype(str).str.strip()
    empty = text.str.lower().isin(MISSING_TOKENS)
    lookup = {_code_key(category): category for category in encoding.categories}
    keys = text.map(_code_key)
    known = keys.isin(list(lookup))
    values = pd.Series(
        [lookup.get(key) if ok else None for key, ok in zip(keys, known)], index=cells.index, dtype=object
    )
    bad = ~known & ~empty
    lines = []
    if bad.any():
        lines.append(f"unknown codes (allowed {list(encoding.categories)}); {describe_cells(text, bad, limit)}")
    if encoding.missing == "error" and empty.any():
        lines.append(f"empty cells are not allowed (encodings.missing: error); {describe_cells(text, empty, limit)}")
    return values, "; ".join(lines)


def _code_key(value: object) -> str:
    """One spelling per code: "1", "1.0" and 1 are the same category; text codes compare stripped."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return repr(number) if np.isfinite(number) else text


def describe_cells(text: pd.Series, bad: pd.Series, limit: int) -> str:
    """'N rows; values 'x' (rows 3, 17), ...' for the first `limit` distinct offending values."""
    offending = text[bad]
    parts = []
    for value, rows in offending.groupby(offending, sort=False).groups.items():
        numbers = [int(position) + 1 for position in list(rows)[:5]]
        more = "" if len(rows) <= 5 else f", ... {len(rows)} rows"
        parts.append(f"{value!r} (row{'s' if len(rows) > 1 else ''} {', '.join(map(str, numbers))}{more})")
        if len(parts) == limit:
            break
    return f"{int(bad.sum())} row(s); values {', '.join(parts)} [rows count data rows from 1; file line = row + 1]"


def check_profit_identity(
    frame: pd.DataFrame, source: str, config: DiscountsConfig, margin: float, tolerance: float
) -> None:
    """Profit must equal margin x sales - discount; rows that break it are named (exported wrongly)."""
    profit, sales, discount = (frame[c] for c in (config.outcome, config.sales, config.treatment))
    gap = (profit - (margin * sales - discount)).abs()
    bad = gap > tolerance
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())[: config.max_sample_values] + 1
        raise InputDataError(
            f"{source}: column {config.outcome!r} is not {margin:g} x {config.sales!r} - {config.treatment!r} "
            f"(tolerance {tolerance:g}) in {int(bad.sum())} row(s), e.g. rows {rows.tolist()} "
            f"(largest gap {gap.max():.4g}); fix the file or discounts.<file>.profit_check"
        )


def encode_features(frame: pd.DataFrame, columns: list[str], config: DiscountsConfig) -> pd.DataFrame:
    """Model matrix of `columns`: numbers as they are, declared categories as indicator columns.

    The first declared category is the reference (no column), so a model with an intercept is not
    collinear; `missing: own_category` adds an `<column>=missing` indicator and fills the cell with
    the reference. The same declaration gives the same columns in every file.
    """
    parts = {}
    for column in columns:
        if column not in config.encodings:
            values = frame[column].astype(float)
            if values.isna().any():
                rows = np.flatnonzero(values.isna().to_numpy())[:10] + 1
                raise InputDataError(
                    f"column {column!r} has empty cells (rows {rows.tolist()}); declare it in discounts.encodings "
                    "with missing: own_category, or fill the file"
                )
            parts[column] = values.to_numpy()
            continue
        encoding = config.encodings[column]
        values = frame[column]
        for category in encoding.categories[1:]:
            parts[f"{column}={category}"] = (values == category).to_numpy(dtype=float)
        if encoding.missing == "own_category":
            parts[f"{column}=missing"] = values.isna().to_numpy(dtype=float)
    return pd.DataFrame(parts, index=frame.index)
