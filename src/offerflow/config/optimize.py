"""params.yaml sections about deciding offers: optimize (the segment plan) and allocate (the customer plan)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from offerflow.sections import Section as _Section


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


class AllocateConfig(_Section):
    """Customer-level allocation: one offer per customer from per-customer probabilities."""

    partition_rows: int = Field(1_000_000, ge=1)  # fixes the arithmetic: same allocation on 1 or N workers
