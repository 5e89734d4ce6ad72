"""Typed configuration loaded once from params.yaml.

Every knob a data scientist turns lives in params.yaml; this module turns it into frozen
pydantic models so that a typo, a wrong type or an impossible value fails before any stage
runs, with an error that names the offending key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from offerflow.errors import ConfigError
from offerflow.sections import Section
from offerflow.discounts.config import DiscountsConfig  # noqa: E402 - scenario sections, defined beside their code
from offerflow.journey.config import JourneyConfig

__all__ = ["ConfigError", "Params", "load_params"]


_Section = Section  # every section below; scenario packages import offerflow.sections.Section


class DataConfig(_Section):
    customers: Path = Path("data/external/customers.csv")
    history: Path | None = None  # your campaign log; null while simulate.enabled (the simulator writes its own)
    true_probabilities: Path | None = Path("data/external/visit_probability.csv")
    customer_id: str = "customer_id"
    segment_columns: tuple[str, ...] = ("age_cat", "freq_cat")
    arm_column: str = "arm"
    outcome_column: str = "converted"
    campaign_column: str | None = None  # history column naming the campaign: a customer appears once per campaign
    exclude: Path | None = None  # file of customer ids (in its data.customer_id column) that must get the control offer
    exclude_column: str | None = None  # or a true/false customers column: true = control offer only (do-not-contact)

    @field_validator("segment_columns")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one segment column is required")
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate segment columns: {list(value)}")
        return value


class ArmsConfig(_Section):
    control: str = "dm1"
    coupon_cost: dict[str, float] = Field(default_factory=lambda: {"dm1": 0.0, "dm2": 10.0, "dm3": 20.0})
    contact_cost: dict[str, float] = Field(default_factory=dict)  # USD per customer contacted (printing, postage)

    @model_validator(mode="after")
    def _check(self) -> "ArmsConfig":
        if len(self.coupon_cost) < 2:
            raise ValueError("coupon_cost needs at least two arms (a control and a treatment)")
        negative = {arm: c for arm, c in self.coupon_cost.items() if c < 0}
        if negative:
            raise ValueError(f"coupon_cost must be >= 0, got {negative}")
        unknown = sorted(set(self.contact_cost) - set(self.coupon_cost))
        if unknown:
            raise ValueError(f"contact_cost names {unknown}, which are not arms of coupon_cost {list(self.coupon_cost)}")
        negative = {arm: c for arm, c in self.contact_cost.items() if c < 0}
        if negative:
            raise ValueError(f"contact_cost must be >= 0, got {negative}")
        if self.control not in self.coupon_cost:
            raise ValueError(
                f"control arm {self.control!r} is not one of the arms {list(self.coupon_cost)}"
            )
        return self

    @property
    def names(self) -> list[str]:
        """Arms in params.yaml order; the order of every per-arm column downstream."""
        return list(self.coupon_cost)

    def contact(self, arm: str) -> float:
        """Cost of contacting one customer with `arm`, paid whether or not they convert (0 unless declared)."""
        return float(self.contact_cost.get(arm, 0.0))

    @property
    def treatments(self) -> list[str]:
        return [arm for arm in self.coupon_cost if arm != self.control]


class TargetingConfig(_Section):
    """How a non-randomized (targeted) past campaign chose arms: higher `column` values got costlier arms."""

    column: str = "freq_cat"
    strength: float = Field(1.5, ge=0)  # 0: uniform; larger: arms depend more on the column
    order: tuple[str, ...] | None = None  # categories low -> high; default: sorted values


class HeterogeneityConfig(_Section):
    """Customer-level spread of the true probability inside a segment (segment means stay the table's)."""

    strength: float = Field(0.0, ge=0)  # logit-scale spread per standard deviation of the features' score
    features: tuple[str, ...] = ()  # numeric customer columns that move a customer's probability

    @model_validator(mode="after")
    def _features_when_on(self) -> "HeterogeneityConfig":
        if self.strength > 0 and not self.features:
            raise ValueError("heterogeneity.strength > 0 needs at least one numeric column in heterogeneity.features")
        return self


class SimulateConfig(_Section):
    enabled: bool = True
    campaigns: int = Field(4, ge=1)
    seed: int = 20261124
    assignment: Literal["randomized", "targeted"] = "randomized"
    targeting: TargetingConfig = TargetingConfig()
    log_propensity: bool = True  # store the logging probability of the arm received (column `propensity`)
    heterogeneity: HeterogeneityConfig = HeterogeneityConfig()


class DuplicatesConfig(_Section):
    """Exact repeats of history rows (or of customer and campaign): a file appended twice, an export gone wrong."""

    action: Literal["fail", "warn"] = "fail"
    max_share: float = Field(0.01, ge=0, le=1)  # without a campaign column: repeated rows tolerated up to this share


class DriftConfig(_Section):
    """Customers to score (a new batch) compared with the customers the model learned from."""

    max_psi: float = Field(0.25, gt=0)  # population stability index above this: the feature moved
    action: Literal["warn", "fail"] = "warn"


class ValidateConfig(_Section):
    suites_dir: Path = Path("expectations")
    data_docs: bool = True
    max_sample_values: int = Field(10, ge=1, le=20)  # offending values shown per failure (GX keeps 20)
    min_rows_per_arm: int = Field(50, ge=1)  # fewer history rows for an arm: its response cannot be learned
    duplicates: DuplicatesConfig = DuplicatesConfig()
    drift: DriftConfig = DriftConfig()


LearnerName = Literal["s_learner", "t_learner", "x_learner", "dr_learner", "uplift_forest"]
BaseModelName = Literal["lightgbm", "logistic"]


class LearnerConfig(_Section):
    """One candidate uplift learner: causalml meta-learner (or uplift forest) plus its base model."""

    learner: LearnerName = "t_learner"
    base_model: BaseModelName = "lightgbm"
    model_params: dict[str, Any] = Field(default_factory=dict)


class PropensityConfig(_Section):
    """Where P(arm | customer) of the history comes from: needed to debias non-randomized history."""

    source: Literal["estimate", "logged", "uniform"] = "estimate"
    column: str = "propensity"  # history column with the probability of the arm received (source: logged)
    clip: tuple[float, float] = (0.01, 0.99)

    @field_validator("clip")
    @classmethod
    def _clip(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0.0 < low < high < 1.0:
            raise ValueError(f"clip must satisfy 0 < low < high < 1, got {list(value)}")
        return value


class HeuristicConfig(_Section):
    """The targeting rule a marketer would use without a model; the uplift model must beat it."""

    name: str = "highest purchase frequency first"
    column: str = "freq_cat"
    descending: bool = True
    order: tuple[str, ...] | None = None  # categories low -> high; default: sorted values


class EvaluationConfig(_Section):
    folds: int = Field(3, ge=2, le=20)  # cross-fitting folds (grouped by customer)
    top_shares: tuple[float, ...] = (0.1, 0.2, 0.3)
    heuristic: HeuristicConfig | None = HeuristicConfig()
    figures: bool = True  # PNG figures besides the plot CSVs
    bootstrap_samples: int = Field(200, ge=0)  # customer resamples for the Qini/AUUC intervals (0: none, no verdict)

    @field_validator("top_shares")
    @classmethod
    def _shares(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        bad = [share for share in value if not 0 < share <= 1]
        if bad:
            raise ValueError(f"top_shares must be in (0, 1], got {bad}")
        return value


class DecisionQualityConfig(_Section):
    """Simulation check: plans optimized on learned tables, valued on the true table (needs the truth)."""

    enabled: bool = False
    seeds: int = Field(10, ge=1)
    budget: float = Field(10_000.0, gt=0)
    min_share: float = Field(0.1, ge=0, le=1)


class TrainConfig(_Section):
    learner: LearnerName = "t_learner"
    base_model: BaseModelName = "lightgbm"
    features: tuple[str, ...] = ("age_cat", "freq_cat")
    model_params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 7
    candidates: tuple[LearnerConfig, ...] = ()  # more learners to compare; the best by selection_criterion wins
    # policy_value: cross-fitted DR value of the plan each candidate leads to at optimize.budget (uplift/selection.py)
    selection_criterion: Literal["brier", "log_loss", "qini", "auuc", "policy_value"] = "brier"
    propensity: PropensityConfig = PropensityConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    decision_quality: DecisionQualityConfig = DecisionQualityConfig()

    @field_validator("features")
    @classmethod
    def _features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one feature is required")
        return value

    @property
    def default_learner(self) -> LearnerConfig:
        return LearnerConfig(learner=self.learner, base_model=self.base_model, model_params=dict(self.model_params))

    @property
    def learners(self) -> list[LearnerConfig]:
        """The default learner first, then the candidates (duplicates dropped)."""
        unique: list[LearnerConfig] = []
        for spec in (self.default_learner, *self.candidates):
            if spec not in unique:
                unique.append(spec)
        return unique


class ProbabilitiesConfig(_Section):
    clip: tuple[float, float] = (0.0, 1.0)
    monotone_arms: tuple[str, ...] = ()  # e.g. [dm1, dm2, dm3]: conversion never decreases along this order
    interval_level: float = Field(0.95, gt=0, lt=1)

    @field_validator("clip")
    @classmethod
    def _clip(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"clip must satisfy 0 <= low < high <= 1, got {list(value)}")
        return value


class SolverConfig(_Section):
    time_limit_seconds: float = Field(60.0, gt=0, allow_inf_nan=False)


ObjectiveName = Literal["incremental_conversions", "conversions", "revenue", "profit"]
ShareSetting = float | dict[str, float]  # one share for every offer, or per offer (offers left out: no bound)


class RecommendConfig(_Section):
    """How the frontier picks a budget: the most profitable one, or the last one buying conversions cheaply enough."""

    rule: Literal["max_profit", "marginal_cost_below"] = "max_profit"
    target: float | None = Field(None, gt=0, allow_inf_nan=False)  # USD per incremental conversion (marginal_cost_below)

    @model_validator(mode="after")
    def _target_when_needed(self) -> "RecommendConfig":
        if self.rule == "marginal_cost_below" and self.target is None:
            raise ValueError("rule marginal_cost_below needs target (USD per extra incremental conversion)")
        return self


class FrontierConfig(_Section):
    """Budget frontier: the optimum from the smallest feasible budget up to where more money stops helping."""

    enabled: bool = True
    points: int = Field(25, ge=2, le=500)
    recommend: RecommendConfig | None = None  # None: no recommended budget


class RiskConfig(_Section):
    """Redeemed-coupon cost is random: report its spread; optionally keep a quantile of it within the budget."""

    quantile: float = Field(0.95, gt=0.5, lt=1)  # reported quantile of the realized cost
    cap_quantile: float | None = Field(None, gt=0.5, lt=1)  # e.g. 0.95: this quantile (not the mean) <= budget


class OfferGroupConfig(_Section):
    """At most `max` customers get any offer of `offers` (e.g. every e-mail offer)."""

    offers: tuple[str, ...] = Field(min_length=1)
    max: int = Field(ge=0)


class OptimizeConfig(_Section):
    probability_table: Literal["learned"] | Path = "learned"
    budget: float = Field(10_000.0, ge=0, allow_inf_nan=False)  # USD of expected coupon cost
    objective: ObjectiveName = "incremental_conversions"
    value_per_conversion: float | None = Field(None, gt=0, allow_inf_nan=False)  # USD; revenue, profit, max_profit
    value_column: str | None = Field(None, min_length=1)  # per-customer value (customer level only)
    min_share: ShareSetting = 0.1  # sum over offers must be <= 1
    max_share: ShareSetting | None = None
    capacity: dict[str, int] = Field(default_factory=dict)  # offer -> most customers that may get it
    groups: dict[str, OfferGroupConfig] = Field(default_factory=dict)  # caps over offers, e.g. {email: {offers: [a, b], max: 32000}}
    fairness: bool = False  # first maximize the common minimum share, then the objective with it
    frontier: FrontierConfig = FrontierConfig()
    risk: RiskConfig = RiskConfig()
    figures: bool = True  # allocation heatmap and frontier PNGs
    solver: SolverConfig = SolverConfig()

    @field_validator("min_share", "max_share")
    @classmethod
    def _shares(cls, value: ShareSetting | None) -> ShareSetting | None:
        values = value.values() if isinstance(value, dict) else [] if value is None else [value]
        bad = [v for v in values if not (v == v and 0 <= v <= 1)]
        if bad:
            raise ValueError(f"shares must be within [0, 1], got {value}")
        return value

    @field_validator("capacity")
    @classmethod
    def _capacity(cls, value: dict[str, int]) -> dict[str, int]:
        negative = {offer: n for offer, n in value.items() if n < 0}
        if negative:
            raise ValueError(f"capacity must be >= 0 customers, got {negative}")
        return value

    @model_validator(mode="after")
    def _value_when_needed(self) -> "OptimizeConfig":
        needs_value = []
        if self.objective in ("revenue", "profit"):
            needs_value.append(f"objective {self.objective}")
        recommend = self.frontier.recommend
        if self.frontier.enabled and recommend is not None and recommend.rule == "max_profit":
            needs_value.append("frontier.recommend.rule max_profit")
        if needs_value and self.value_per_conversion is None:
            raise ValueError(f"{' and '.join(needs_value)} needs optimize.value_per_conversion (USD a conversion is worth)")
        return self


class HoldoutConfig(_Section):
    """Customers whose history no learner, model selection or calibration ever sees: the policy evaluation's data."""

    fraction: float = Field(0.3, gt=0, lt=1)
    seed: int = Field(17, ge=0)


class BaselinesConfig(_Section):
    """How the baselines are sized and which heuristics a marketer would use (params.yaml: evaluate.baselines)."""

    match: Literal["spend", "contacts"] = "spend"
    heuristics: tuple[HeuristicConfig, ...] = (HeuristicConfig(),)
    seed: int = Field(13, ge=0)  # tie-breaking shuffle of the heuristics


class GateConfig(_Section):
    """Publish gate settings (params.yaml: evaluate.gate)."""

    estimator: Literal["dr", "ips", "snips"] = "dr"
    method: Literal["bernstein", "bootstrap", "normal"] = "bernstein"
    margin: float = 0.0  # value per customer the candidate must beat the best competitor by (lower bound)
    fallback: Literal["best_baseline", "nothing"] = "best_baseline"
    level: float = Field(0.95, ge=0.5, lt=1)  # two-sided intervals
    confidence: float = Field(0.975, ge=0.5, lt=1)  # one-sided lower bounds
    bootstrap_samples: int = Field(1000, ge=0)
    seed: int = Field(0, ge=0)
    unit: str = "conversions"  # what one unit of the value reward is


class EvaluateConfig(_Section):
    """Off-policy evaluation of the plan on held-out history, simple baselines at the same spend, the publish gate."""

    holdout: HoldoutConfig = HoldoutConfig()
    # whom policies are valued on: the customers file (its plan), or the held-out history's customers (the plan
    # rule re-applied to them: the customers file is a new batch); auto picks by whether the batch is new
    population: Literal["auto", "customers", "held_out_customers"] = "auto"
    baselines: BaselinesConfig = BaselinesConfig()
    gate: GateConfig = GateConfig()
    figures: bool = True  # reports/figures/policy_evaluation.png


SQL_IDENTIFIER = r"^[a-z_][a-z0-9_]*$"  # lower case: PostgreSQL folds unquoted names, so users can type them
ENV_VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Keys that would put a credential into params.yaml (which is committed to git): refused with a pointer.
_CREDENTIAL_KEYS = ("url", "database_url", "db_url", "password", "dsn", "connection_string")


class AllocateConfig(_Section):
    """Customer-level allocation: one offer per customer from per-customer probabilities."""

    partition_rows: int = Field(1_000_000, ge=1)  # fixes the arithmetic: same allocation on 1 or N workers


class PublishConfig(_Section):
    """Where and how assignments are published. Credentials never live here: see url_env / secret_block."""

    source: Literal["segment_plan", "customer_plan"] = "segment_plan"
    target: Literal["sqlite", "postgresql", "files"] = "sqlite"
    sqlite_path: Path = Path("data/published/offerflow.sqlite")
    files_dir: Path = Path("data/published")
    url_env: str = Field("OFFERFLOW_DB_URL", pattern=ENV_VAR_NAME)  # env var holding the PostgreSQL URL
    secret_block: str | None = Field(None, min_length=1)  # Prefect Secret block holding the URL (wins over url_env)
    db_schema: str | None = Field(None, alias="schema", pattern=SQL_IDENTIFIER, max_length=63)  # PostgreSQL only
    table_prefix: str = Field("", pattern=r"^$|" + SQL_IDENTIFIER, max_length=40)
    seed: int = Field(11, ge=0)
    busy_timeout_seconds: float = Field(30.0, gt=0)  # SQLite busy timeout / PostgreSQL lock timeout
    connect_timeout_seconds: int = Field(10, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            for key in ("url_env", "secret_block"):
                if looks_like_credential(raw.get(key)):
                    raise ValueError(
                        f"publish.{key} holds what looks like a database URL or password (not shown); it must hold a "
                        f"{'variable' if key == 'url_env' else 'Prefect Secret block'} name, and the URL goes into that "
                        f"{'environment variable' if key == 'url_env' else 'block'}, never into params.yaml"
                    )
            found = sorted(key for key in raw if str(key).lower() in _CREDENTIAL_KEYS)
            if found:
                raise ValueError(
                    f"publish.{found[0]}: database URLs and passwords never go in params.yaml; put the URL in the "
                    "environment variable named by publish.url_env (default OFFERFLOW_DB_URL) or in a Prefect "
                    "Secret block named by publish.secret_block"
                )
        return raw


def looks_like_credential(value: Any) -> bool:
    """A URL with a scheme or a user@host part: never to be echoed in a message."""
    return isinstance(value, str) and ("://" in value or "@" in value)


class ScheduleConfig(_Section):
    cron: str = "0 6 * * 1"
    timezone: str = "Europe/Berlin"


class OrchestrationConfig(_Section):
    retries: int = Field(2, ge=0)
    retry_delay_seconds: float = Field(5.0, ge=0)
    task_timeout_seconds: float = Field(1800.0, gt=0)
    dvc_commit: bool = True
    deployment_name: str = "weekly"
    schedule: ScheduleConfig = ScheduleConfig()  # the coupon plan's flow
    scenario_schedules: dict[Literal["discounts", "journey"], ScheduleConfig] = Field(
        default_factory=lambda: {
            "discounts": ScheduleConfig(cron="0 7 1 * *"),  # monthly
            "journey": ScheduleConfig(cron="0 5 * * *"),  # daily: next actions move with the journeys
        }
    )
    task_runner: Literal["thread", "dask"] = "thread"
    dask_address: str | None = None  # an existing dask.distributed scheduler; None: a LocalCluster
    dask_workers: int = Field(2, ge=1)


class FiguresConfig(_Section):
    # plain-language name of each segment column, for axis labels; a column left out is shown by its name
    segment_names: dict[str, str] = Field(
        default_factory=lambda: {"age_cat": "age group", "freq_cat": "purchase frequency (visits)"}
    )
    outcome: str = "visit"  # what a conversion is, in the analyst's words: "probability of a visit"
    currency: str = "USD"  # shown with coupon values: "dm2: 10 USD coupon"

    @field_validator("outcome", "currency")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("segment_names")
    @classmethod
    def _names_not_blank(cls, value: dict[str, str]) -> dict[str, str]:
        blank = sorted(column for column, name in value.items() if not str(name).strip())
        if blank:
            raise ValueError(f"blank names for segment columns {blank}")
        return {column: name.strip() for column, name in value.items()}


class Params(_Section):
    """The whole of params.yaml. Relative paths resolve against `root` (the params file's folder)."""

    data: DataConfig = DataConfig()
    arms: ArmsConfig = ArmsConfig()
    simulate: SimulateConfig = SimulateConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    train: TrainConfig = TrainConfig()
    probabilities: ProbabilitiesConfig = ProbabilitiesConfig()
    optimize: OptimizeConfig = OptimizeConfig()
    allocate: AllocateConfig = AllocateConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    publish: PublishConfig = PublishConfig()
    discounts: DiscountsConfig = DiscountsConfig()
    journey: JourneyConfig = JourneyConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    figures: FiguresConfig = FiguresConfig()
    root: Path = Field(Path("."), exclude=True)

    def path(self, relative: Path | str) -> Path:
        """Resolve a params.yaml path against the project root."""
        p = Path(relative)
        return p if p.is_absolute() else self.root / p

    def value(self, dotted: str) -> Any:
        """The value of one params.yaml key, e.g. "optimize.budget" (Python objects, not JSON)."""
        node: Any = self
        for part in dotted.split("."):
            node = getattr(node, "validate_" if part == "validate" and node is self else part)
        return node

    def subset(self, *keys: str) -> dict[str, Any]:
        """JSON-ready values of the named dotted keys: what a stage read, recorded with its outputs."""
        dumped = self.model_dump(mode="json", by_alias=True)
        chosen = {}
        for key in sorted(keys):
            node = dumped
            for part in key.split("."):
                node = node[part]
            chosen[key] = node
        return chosen

    def params_hash(self, *keys: str) -> str:
        """Stable hash of the named params.yaml keys (dotted, e.g. "optimize.budget"; none: all keys)."""
        chosen = self.subset(*keys) if keys else self.model_dump(mode="json", by_alias=True)
        blob = json.dumps(chosen, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


REQUIRED_SECTIONS = ("data", "arms", "simulate", "validate", "train", "probabilities", "optimize", "allocate",
                     "evaluate", "publish", "orchestration")


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
