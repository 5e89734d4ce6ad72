"""params.yaml `figures:` section: the words the study's pictures use for the user's columns and outcome.

Column names are the data's (age_cat, freq_cat); an analyst reads "age group" and "purchase frequency
(visits)". Only the stages that draw read this section, so renaming a label redraws pictures and nothing else.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from offerflow.config import _Section


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
