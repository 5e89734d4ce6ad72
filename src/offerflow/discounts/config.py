"""params.yaml section `discounts`: the personalized-discount scenario, declared like every other input.

Everything a data scientist would otherwise hand-code per file lives here: how each file is written
(delimiter, decimal mark, currency strings, column names), which columns are numbers and which are codes,
which columns may explain the effect (features, present in both files) and which only correct for the
staff's targeting (controls, observational file), the dose-response shape, the evaluation baselines and
the decision grid. Defaults match the example files, so an empty section describes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from offerflow.sections import Section as _Section

EXAMPLE_STATES = (
    "SP",
    "AC",
    "AL",
    "AM",
    "AP",
    "BA",
    "CE",
    "DF",
    "ES",
    "GO",
    "MA",
    "MG",
    "MS",
    "MT",
    "PA",
    "PB",
    "PE",
    "PI",
    "PR",
    "RJ",
    "RN",
    "RO",
    "RR",
    "RS",
    "SC",
    "SE",
    "TO",
)


class ProfitCheckConfig(_Section):
    """profit = margin x sales - discount, row by row (a file that breaks it was exported wrongly)."""

    margin: float = Field(0.05, gt=0, lt=1)
    tolerance: float = Field(0.01, ge=0)  # USD per row (the files round to cents)


class DiscountFileConfig(_Section):
    """How one history file is written; `rename` maps the file's column names to offerflow's."""

    path: Path
    delimiter: str = Field(",", min_length=1, max_length=1)
    decimal: str = Field(".", min_length=1, max_length=1)
    rename: dict[str, str] = Field(default_factory=dict)  # file column -> name used everywhere else
    currency: dict[str, str] = Field(default_factory=dict)  # column -> prefix, e.g. {discount: "US$"}
    profit_check: ProfitCheckConfig | None = ProfitCheckConfig()
    suites: tuple[str, ...] = ("discounts_history.json",)  # Great Expectations suites in validate.suites_dir

    @model_validator(mode="after")
    def _separators_differ(self) -> "DiscountFileConfig":
        if self.delimiter == self.decimal:
            raise ValueError(f"delimiter and decimal are both {self.delimiter!r}")
        return self


class EncodingConfig(_Section):
    """A categorical column as indicator columns; the first category is the reference (no column)."""

    categories: tuple[str | int | float, ...]
    missing: Literal["error", "own_category"] = "error"  # own_category: an indicator for empty cells

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: tuple) -> tuple:
        if len(value) < 2:
            raise ValueError("a categorical column needs at least two categories")
        if len({str(item) for item in value}) != len(value):
            raise ValueError(f"duplicate categories: {list(value)}")
        return value


class NuisanceConfig(_Section):
    """First-stage models E[profit | x] and E[discount | x], cross-fitted (the residualizing step)."""

    model: Literal["lightgbm", "ridge"] = "lightgbm"
    params: dict[str, Any] = Field(
        default_factory=lambda: {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 8, "min_child_samples": 50}
    )


class EffectConfig(_Section):
    """The debiased effect model (econml): one slope per customer, plus the dose response for decisions."""

    estimator: Literal["linear_dml", "causal_forest_dml"] = "linear_dml"
    folds: int = Field(3, ge=2, le=10)
    seed: int = 7
    nuisance: NuisanceConfig = NuisanceConfig()
    forest_trees: int = Field(200, ge=4)  # causal_forest_dml only (econml wants a multiple of 4)
    # Dose response used by the decision: profit change = theta(x) . phi(d) - theta(x) . phi(0) with
    # phi(d) = [d] + for each knot k: [1{d > k}, (d - k)+]. No knots: straight lines (one slope per customer).
    knots: tuple[float, ...] = ()
    interval_level: float = Field(0.95, gt=0.5, lt=1)

    @field_validator("knots")
    @classmethod
    def _knots(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if list(value) != sorted(set(value)) or any(k <= 0 for k in value):
            raise ValueError(f"knots must be positive and strictly increasing, got {list(value)}")
        return value


class RuleConfig(_Section):
    """The rule a marketer would use without a model, e.g. younger customers first."""

    name: str = "younger first"
    column: str = "age"
    descending: bool = False  # False: smallest values first (younger first)
    share: float = Field(0.5, gt=0, le=1)  # share of customers the rule gives a discount (decision baseline)
    level: float = Field(50.0, ge=0)  # USD the rule gives them


class EvaluationConfig(_Section):
    """Curves on the randomized file (held out from fitting): model ranking vs random vs the rule."""

    points: int = Field(50, ge=5, le=200)  # population shares 1/points, 2/points, ..., 1
    min_rows: int = Field(30, ge=5)  # the slope of fewer rows than this is not drawn
    bootstrap: int = Field(200, ge=0)  # resamples of the randomized file for the areas' intervals
    seed: int = 11
    rule: RuleConfig = RuleConfig()
    figures: bool = True


class PolicyConfig(_Section):
    """The decision: one discount level per customer maximizing expected profit within a budget."""

    levels: tuple[float, ...] = tuple(float(level) for level in range(0, 101, 10))
    budget: float | None = Field(None, ge=0, allow_inf_nan=False)  # USD for the randomized file's customers
    # standard errors of the predicted profit change subtracted before optimizing: 0 = expected profit;
    # 1-2 = cautious (discount only customers whose gain is clear; noisy "responders" are often losses)
    uncertainty_penalty: float = Field(0.0, ge=0, le=5)
    partition_rows: int = Field(1_000_000, ge=1)
    max_arms: int = Field(60, ge=2)  # distinct randomized discounts above this: a continuous design
    min_arm_rows: int = Field(50, ge=1)  # randomized rows needed at a level to value a policy using it
    outcome_model: NuisanceConfig = NuisanceConfig()  # the doubly robust estimator's profit model
    folds: int = Field(3, ge=2, le=10)
    seed: int = 13

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or list(value) != sorted(set(value)) or value[0] < 0:
            raise ValueError(f"levels must be non-negative and strictly increasing, got {list(value)}")
        if value[0] != 0:
            raise ValueError(f"levels must start at 0 (no discount), got {list(value)}")
        return value


class DiscountsConfig(_Section):
    """Personalized discounts from an observational history, checked on a randomized test."""

    enabled: bool = False  # the discount stages and the discount-policy flow
    observational: DiscountFileConfig = DiscountFileConfig(
        path=Path("data/external/discounts/non_rand_discount.csv"),
        delimiter=";",
        currency={"discount": "US$"},
        profit_check=ProfitCheckConfig(margin=0.049),
    )
    randomized: DiscountFileConfig = DiscountFileConfig(
        path=Path("data/external/discounts/random_data.csv"),
        suites=("discounts_history.json", "discounts_randomized.json"),
    )
    treatment: str = "discount"
    outcome: str = "profit"
    sales: str = "sales"
    features: tuple[str, ...] = ("age", "gender", "cust_state")  # explain the effect; in both files
    controls: tuple[str, ...] = ("sales_prediction", "tenure")  # what the staff targeted on; observational
    encodings: dict[str, EncodingConfig] = Field(
        default_factory=lambda: {
            "cust_state": EncodingConfig(categories=EXAMPLE_STATES),
            "gender": EncodingConfig(categories=(0, 1), missing="own_category"),
        }
    )
    min_rows: int = Field(100, ge=10)  # fewer rows cannot be cross-fitted
    max_sample_values: int = Field(10, ge=1, le=50)  # offending values (with row numbers) per error
    # The example's profit falls with every dollar up to 100 USD and jumps once the discount passes 100 USD
    # (bigger baskets); levels are those the randomized test drew for >= min_arm_rows customers.
    effect: EffectConfig = EffectConfig(knots=(100.0,))
    evaluation: EvaluationConfig = EvaluationConfig()
    policy: PolicyConfig = PolicyConfig(levels=tuple(float(level) for level in range(0, 141, 10)))

    @model_validator(mode="after")
    def _roles(self) -> "DiscountsConfig":
        if not self.features:
            raise ValueError("discounts.features needs at least one column")
        named = [self.treatment, self.outcome, self.sales]
        overlap = sorted(set(named) & (set(self.features) | set(self.controls)))
        if overlap:
            raise ValueError(f"treatment/outcome/sales cannot be features or controls: {overlap}")
        both = sorted(set(self.features) & set(self.controls))
        if both:
            raise ValueError(f"columns are both features and controls: {both}")
        unknown = sorted(set(self.encodings) - set(self.features) - set(self.controls))
        if unknown:
            raise ValueError(f"encodings for columns that are neither features nor controls: {unknown}")
        if self.evaluation.rule.level not in self.policy.levels:
            raise ValueError(
                f"evaluation.rule.level {self.evaluation.rule.level:g} is not one of policy.levels {list(self.policy.levels)}"
            )
        return self

    @property
    def numeric_columns(self) -> list[str]:
        """Columns read as numbers (everything but the encoded categories)."""
        used = [self.treatment, self.outcome, self.sales, *self.features, *self.controls]
        return [column for column in used if column not in self.encodings]
