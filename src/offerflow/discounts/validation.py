"""Great Expectations gate for the discount files: the same suites machinery as every other input.

Parsing (ingest.py) already refuses cells that cannot be what params.yaml declares; the suites then
check the rules of the data itself (no negative discounts, no empty outcomes, discounts that vary,
a randomized file with few distinct levels). Failures become one InputDataError that names the file,
the column, the offending values and the rows holding them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from offerflow.discounts.config import DiscountsConfig
from offerflow.errors import ConfigError, InputDataError
from offerflow.validation.failures import ValidationFailure
from offerflow.validation.suites import NUMERIC_DTYPES, ExpectationSpec, expand_expectations

ROW_LIMIT = 10  # row numbers quoted per failure


def suite_variables(config: DiscountsConfig, required: list[str]) -> dict[str, Any]:
    """Placeholder values for the discount suites, all from params.yaml."""
    numeric_inputs = [c for c in [*config.features, *config.controls] if c in required and c not in config.encodings]
    return {
        "treatment": config.treatment,
        "outcome": config.outcome,
        "sales": config.sales,
        "required_columns": list(required),
        "numeric_inputs": numeric_inputs,
        "numeric_dtypes": list(NUMERIC_DTYPES),
        "min_rows": config.min_rows,
        "max_arms": config.policy.max_arms,
    }


def load_discount_suite(path: Path, variables: dict[str, Any]) -> list[ExpectationSpec]:
    """One suite file expanded with the discount variables; a broken suite is a ConfigError."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: expectation suite not found (discounts.<file>.suites in validate.suites_dir)"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: expectation suite is not valid JSON: {exc}") from None
    templates = document.get("expectations") if isinstance(document, dict) else None
    if not isinstance(templates, list) or not templates:
        raise ConfigError(f"{path}: a suite needs a non-empty 'expectations' list")
    return expand_expectations(templates, variables, path)


def validate_discount_frame(
    frame: pd.DataFrame, source: str, suites: list[Path], config: DiscountsConfig, required: list[str], session
) -> dict[str, Any]:
    """Run the suites on a parsed file; raise InputDataError listing every failure with rows.

    Returns the stable GX result documents (one per suite) for the validation report.
    """
    from offerflow.validation.interpret import failures_from_results

    variables = suite_variables(config, required)
    documents, failures = {}, []
    for suite in suites:
        specs = load_discount_suite(suite, variables)
        run = session.run(f"discounts_{Path(source).stem}_{suite.stem}", frame, specs, suite_label=str(suite))
        documents[suite.name] = run.document
        failures += failures_from_results("discounts", source, frame, run.results, config.max_sample_values)
    if failures:
        lines = [f"  - {describe_with_rows(failure, frame)}" for failure in failures]
        raise InputDataError(f"{source}: data validation failed: {len(failures)} failure(s)\n" + "\n".join(lines))
    return documents


def describe_with_rows(failure: ValidationFailure, frame: pd.DataFrame) -> str:
    """The failure's usual description plus the data rows (from 1) that hold the offending values."""
    text = failure.describe()
    column = failure.column
    if column is None or column not in frame.columns:
        return text
    values = frame[column]
    if failure.expectation == "expect_column_values_to_not_be_null":
        rows = values.isna()
    elif failure.sample:
        rows = values.isin(list(failure.sample))
    else:
        return text
    numbers = (rows.to_numpy().nonzero()[0][:ROW_LIMIT] + 1).tolist()
    return f"{text}; rows {numbers}" if numbers else text


def treatment_dependent_columns(
    model_columns: pd.DataFrame, discount: pd.Series, alpha: float = 0.001
) -> dict[str, dict]:
    """Columns of a randomized file that move with its random discount: measured after the discount.

    In a randomized test nothing known before the discount can depend on it. Two tests per column, so
    both a trend (rank correlation) and a shift at some levels only (one-way ANOVA across the drawn
    levels, e.g. extra spending above 100 USD) are caught; Bonferroni over columns and tests.
    """
    from scipy import stats

    columns = [c for c in model_columns.columns if model_columns[c].nunique() > 1]
    d = discount.to_numpy(float)
    levels, inverse = np.unique(d, return_inverse=True)
    tests = 2 if 1 < len(levels) < len(d) / 2 else 1
    flagged = {}
    for column in columns:
        values = model_columns[column].to_numpy(float)
        rho, p_rank = stats.spearmanr(values, d)
        p_value = float(p_rank)
        if tests == 2:
            groups = [values[inverse == k] for k in range(len(levels)) if (inverse == k).sum() > 1]
            p_value = min(p_value, float(stats.f_oneway(*groups).pvalue))
        if p_value * tests * max(1, len(columns)) < alpha:
            flagged[column] = {"spearman": round(float(rho), 4), "p_value": p_value}
    return flagged


def check_pre_treatment(model_columns: pd.DataFrame, discount: pd.Series, source: str) -> None:
    """Refuse features/controls that depend on the randomized discount (see treatment_dependent_columns)."""
    flagged = treatment_dependent_columns(model_columns, discount)
    if flagged:
        detail = ", ".join(f"{c!r} (p={v['p_value']:.1e})" for c, v in flagged.items())
        raise InputDataError(
            f"{source}: column(s) {detail} move with the randomized discount, so they were measured after it; "
            "a feature or control must be known before the discount: remove them from discounts.features/controls"
        )
