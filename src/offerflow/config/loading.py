"""Reading params.yaml: unique keys, required sections, dotted overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from offerflow.config.params import REQUIRED_SECTIONS, Params
from offerflow.config.publish import looks_like_credential
from offerflow.errors import ConfigError


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML loader that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"key {key!r} appears twice in one section (lines {seen[key] + 1} and {key_node.start_mark.line + 1}); "
                "keep one"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def read_params_tree(path: Path) -> dict:
    """params.yaml as a dict; empty files, non-mappings, duplicated keys and missing sections are errors."""
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        raise ConfigError(f"{path}: the params file is empty; offerflow never runs on built-in defaults")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections, got {type(raw).__name__}")
    missing = [section for section in REQUIRED_SECTIONS if section not in raw]
    if missing:
        raise ConfigError(f"{path}: missing section(s) {missing}; every section of the example params.yaml is required")
    return raw


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
    node[leaf] = value


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<root>"
        key = key.replace("validate_", "validate")
        if item["type"] == "extra_forbidden":
            lines.append(f"  - {key}: unknown key")
        else:
            shown = item.get("input")
            secret = looks_like_credential(shown) or key.startswith(("publish.url_env", "publish.secret_block"))
            shown = "" if isinstance(shown, (dict, list)) or secret else f" (got {shown!r})"
            message = item["msg"].replace("Value error, ", "")
            lines.append(f"  - {key}: {message}{shown}")
    return "\n".join(lines)


def load_params(
    path: Path | str = "params.yaml",
    overrides: dict[str, Any] | None = None,
    check_files: bool = True,
) -> Params:
    """Read params.yaml (plus dotted-key overrides such as {"optimize.budget": 5000}) into Params."""
    path = Path(path)
    raw = read_params_tree(path)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    try:
        params = Params.model_validate({**raw, "root": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(str(path), exc)) from None
    problems = cross_section_problems(params)
    if problems:
        raise ConfigError(f"{path}: invalid configuration\n" + "\n".join(f"  - {problem}" for problem in problems))
    if check_files:
        _check_input_files(params, path)
    return params


def _unknown_arms(params: Params, key: str, names: Any) -> list[str]:
    arms = params.arms.names
    unknown = [name for name in names if name not in arms]
    return [f"{key}: {unknown} {'is not an arm' if len(unknown) == 1 else 'are not arms'} of arms.coupon_cost {arms}"] if unknown else []


def cross_section_problems(params: Params) -> list[str]:
    """Settings that are each valid but contradict another section; every one names its keys."""
    problems: list[str] = []
    settings = params.optimize
    for key in ("min_share", "max_share"):
        value = getattr(settings, key)
        if isinstance(value, dict):
            problems += _unknown_arms(params, f"optimize.{key}", value)
    problems += _unknown_arms(params, "optimize.capacity", settings.capacity)
    for name, group in settings.groups.items():
        problems += _unknown_arms(params, f"optimize.groups.{name}.offers", group.offers)
    customer_plan = params.publish.source == "customer_plan"
    if customer_plan and settings.fairness:
        problems.append("optimize.fairness applies to the segment plan only; publish.source is customer_plan")
    if customer_plan and settings.risk.cap_quantile is not None:
        problems.append("optimize.risk.cap_quantile applies to the segment plan only; publish.source is customer_plan")
    excluding = params.data.exclude is not None or params.data.exclude_column is not None
    if excluding and not customer_plan:
        problems.append("data.exclude / data.exclude_column keep listed customers on the control offer, which only the "
                        "customer-level plan can honour: set publish.source: customer_plan")
    if params.data.exclude is not None and params.data.exclude_column is not None:
        problems.append("set one of data.exclude (a file of ids) and data.exclude_column (a customers column), not both")
    monotone = params.probabilities.monotone_arms
    problems += _unknown_arms(params, "probabilities.monotone_arms", monotone)
    if len(set(monotone)) != len(monotone):
        problems.append(f"probabilities.monotone_arms: lists an arm twice {list(monotone)}")
    data, simulate = params.data, params.simulate
    if simulate.enabled and data.history is not None:
        problems.append(
            "data.history is set while simulate.enabled is true: the simulator writes its own history "
            "(data/raw/simulated_history.csv) and never touches yours; set data.history: null, or "
            "simulate.enabled: false to learn from data.history"
        )
    if not simulate.enabled and data.history is None:
        problems.append("data.history: not set; with simulate.enabled false offerflow learns from your history file")
    if simulate.enabled and data.true_probabilities is None:
        problems.append("simulate.enabled is true but data.true_probabilities is null (the simulator draws from it)")
    if params.train.decision_quality.enabled and data.true_probabilities is None:
        problems.append("train.decision_quality.enabled needs data.true_probabilities (the simulator's truth)")
    if (simulate.enabled and params.train.propensity.source == "logged" and not simulate.log_propensity):
        problems.append("train.propensity.source is logged but simulate.log_propensity is false (no propensity column)")
    return problems


def _check_input_files(params: Params, source: Path) -> None:
    required = {"data.customers": params.data.customers, "validate.suites_dir": params.validate_.suites_dir}
    if params.data.true_probabilities is not None:
        required["data.true_probabilities"] = params.data.true_probabilities
    if params.data.history is not None:
        required["data.history"] = params.data.history
    if params.optimize.probability_table != "learned":
        required["optimize.probability_table"] = params.optimize.probability_table
    if params.data.exclude is not None:
        required["data.exclude"] = params.data.exclude
    if params.discounts.enabled:
        required["discounts.observational.path"] = params.discounts.observational.path
        required["discounts.randomized.path"] = params.discounts.randomized.path
    if params.journey.enabled and params.journey.log.path is not None:
        required["journey.log.path"] = params.journey.log.path
    for key, relative in required.items():
        if not params.path(relative).exists():
            raise ConfigError(f"{source}: {key}: file not found: {params.path(relative)}")
