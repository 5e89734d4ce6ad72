"""params.yaml sections about the input data: data, arms, simulate, validate."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from offerflow.sections import Section as _Section


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
