"""params.yaml section for the customer-level plan's hard constraints (allocate.constraints), and the
translation into CustomerConstraints. The budget stays optimize.budget; offers are named by arm."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import Field, field_validator

from offerflow.config import _Section
from offerflow.optimize.coupled_allocation.spec import CustomerConstraints

ShareSetting = float | dict[str, float]


class OfferGroupConfig(_Section):
    """At most `max` customers get any offer of `offers` (e.g. the email offers)."""

    offers: tuple[str, ...] = Field(min_length=1)
    max: int = Field(ge=0)


class AllocateConstraintsConfig(_Section):
    """Hard constraints of the customer-level plan besides the budget; every one is met exactly."""

    capacity: dict[str, int] = Field(default_factory=dict)  # most customers per offer, e.g. {dm3: 2000}
    min_share: ShareSetting | None = None  # least share of ALL customers per offer, e.g. {dm2: 0.1}
    max_share: ShareSetting | None = None  # most share of all customers per offer, e.g. {dm3: 0.5}
    groups: dict[str, OfferGroupConfig] = Field(default_factory=dict)  # e.g. {email: {offers: [mens, womens], max: 32000}}
    exclude_column: str | None = Field(None, min_length=1)  # boolean customers column: true = control only

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


def customer_constraints(config: AllocateConstraintsConfig, arms: Sequence[str], control: str,
                         excluded: np.ndarray | None = None) -> CustomerConstraints:
    """The allocator's constraints from the params section (offer names checked against the arms)."""
    return CustomerConstraints.from_settings(
        arms, control, capacity=config.capacity, min_share=config.min_share, max_share=config.max_share,
        groups={name: (group.offers, group.max) for name, group in config.groups.items()}, excluded=excluded,
    )
