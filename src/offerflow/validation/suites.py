"""Expectation suites as JSON templates in expectations/, expanded with the names in params.yaml.

Column names, arms, segment columns and features are configuration, so a suite cannot name
them literally. A suite says `"${customer_id}"` or `"prob_${arm}"` and repeats an expectation
per segment column / feature / arm with `"meta": {"for_each": {"column": "${segment_columns}"}}`;
this module turns such a template into concrete (type, kwargs) pairs for GX.

Placeholders: a string that is exactly `"${name}"` becomes the variable's value (a list stays a
list); `${name}` inside a longer string is replaced by its text. `for_each` maps a loop variable
to a list placeholder, or to a list of them (concatenated, duplicates dropped); several loop
variables iterate over their product.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offerflow.config import ConfigError, Params
from offerflow.schema import prob_columns

SUITE_FILES = {
    "customers": "customers.json",
    "history": "history.json",
    "true_probabilities": "probability_table.json",
    "probability_table": "probability_table.json",
    "journey_log": "journey_log.json",
}

INTEGER_DTYPES = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
]
NUMERIC_DTYPES = INTEGER_DTYPES + ["float16", "float32", "float64", "Float32", "Float64"]

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ExpectationSpec:
    """One concrete expectation: a GX expectation type with its kwargs, names filled in."""

    type: str
    kwargs: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        return json.dumps({"type": self.type, "kwargs": self.kwargs}, sort_keys=True, default=str)


def suite_variables(params: Params) -> dict[str, Any]:
    """The placeholder values a suite may use, all taken from params.yaml."""
    from offerflow.journey.journey_log import journey_suite_variables

    return {
        **journey_suite_variables(params.journey),
        "customer_id": params.data.customer_id,
        "arm_column": params.data.arm_column,
        "outcome_column": params.data.outcome_column,
        "segment_columns": list(params.data.segment_columns),
        "features": list(params.train.features),
        "arms": params.arms.names,
        "control": params.arms.control,
        "prob_columns": prob_columns(params.arms.names),
        "integer_dtypes": list(INTEGER_DTYPES),
        "numeric_dtypes": list(NUMERIC_DTYPES),
    }


def suite_path(dataset: str, params: Params) -> Path:
    if dataset not in SUITE_FILES:
        raise ConfigError(f"no expectation suite for dataset {dataset!r}; known: {sorted(SUITE_FILES)}")
    return params.path(params.validate_.suites_dir) / SUITE_FILES[dataset]


def load_suite(dataset: str, params: Params) -> list[ExpectationSpec]:
    """Read the dataset's suite file and expand it with params.yaml's names."""
    path = suite_path(dataset, params)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: expectation suite not found (validate.suites_dir)") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: expectation suite is not valid JSON: {exc}") from None
    templates = document.get("expectations") if isinstance(document, dict) else None
    if not isinstance(templates, list) or not templates:
        raise ConfigError(f"{path}: a suite needs a non-empty 'expectations' list")
    return expand_expectations(templates, suite_variables(params), path)


def expand_expectations(templates: list[Any], variables: dict[str, Any], source: Path) -> list[ExpectationSpec]:
    """Concrete expectations in template order; duplicates (e.g. a feature that is also a
    segment column) are kept once so each rule is evaluated and reported once."""
    specs: dict[str, ExpectationSpec] = {}
    for position, template in enumerate(templates):
        if not isinstance(template, dict) or not isinstance(template.get("type"), str):
            raise ConfigError(f"{source}: expectations[{position}] needs a 'type' string")
        meta = dict(template.get("meta") or {})
        loops = meta.pop("for_each", None) or {}
        for binding in _loop_bindings(loops, variables, source):
            scope = {**variables, **binding}
            kwargs = substitute(template.get("kwargs") or {}, scope, source)
            spec = _normalise(ExpectationSpec(template["type"], kwargs, plain_meta(meta)))
            specs.setdefault(spec.key(), spec)
    return list(specs.values())


def plain_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(meta, sort_keys=True))


def _loop_bindings(loops: Any, variables: dict[str, Any], source: Path) -> list[dict[str, Any]]:
    if not isinstance(loops, dict):
        raise ConfigError(f"{source}: meta.for_each must map a loop variable to a list placeholder")
    names, choices = [], []
    for name, spec in loops.items():
        parts = spec if isinstance(spec, list) else [spec]
        values: list[Any] = []
        for part in parts:
            resolved = substitute(part, variables, source)
            for item in resolved if isinstance(resolved, list) else [resolved]:
                if item not in values:
                    values.append(item)
        names.append(name)
        choices.append(values)
    return [dict(zip(names, combo)) for combo in itertools.product(*choices)]


def substitute(value: Any, variables: dict[str, Any], source: Path) -> Any:
    """Fill `${name}` placeholders in a JSON value; an unknown name is a ConfigError."""
    if isinstance(value, dict):
        return {key: substitute(item, variables, source) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, variables, source) for item in value]
    if not isinstance(value, str):
        return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole:
        return _lookup(whole.group(1), variables, source)
    return _PLACEHOLDER.sub(lambda match: str(_lookup(match.group(1), variables, source)), value)


def _lookup(name: str, variables: dict[str, Any], source: Path) -> Any:
    if name not in variables:
        raise ConfigError(f"{source}: unknown placeholder ${{{name}}}; known: {sorted(variables)}")
    return variables[name]


def _normalise(spec: ExpectationSpec) -> ExpectationSpec:
    """GX refuses a one-column compound-uniqueness check; with one segment column it is plain uniqueness."""
    columns = spec.kwargs.get("column_list")
    if spec.type == "expect_compound_columns_to_be_unique" and isinstance(columns, list) and len(columns) == 1:
        kwargs = {key: item for key, item in spec.kwargs.items() if key != "column_list"}
        return ExpectationSpec("expect_column_values_to_be_unique", {**kwargs, "column": columns[0]}, spec.meta)
    return spec
