"""params.yaml sections about learning responses: train (learners, propensity, evaluation) and probabilities."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from offerflow.sections import Section as _Section


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
