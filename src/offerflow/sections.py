"""The base of every params.yaml section model: unknown keys are errors, values are frozen.

Separate from the offerflow.config package so that scenario packages (discounts, journey) can define their own
sections and offerflow.config can assemble them without an import cycle.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
