"""Typed configuration loaded once from params.yaml.

Every knob a data scientist turns lives in params.yaml; this package turns it into frozen
pydantic models so that a typo, a wrong type or an impossible value fails before any stage
runs, with an error that names the offending key. One module per group of params.yaml sections
(data, train, optimize, evaluate, publish), the whole file's model (params) and its reading (loading);
everything is importable from here, as `from offerflow.config import Params, load_params`.
"""

from __future__ import annotations

from offerflow.config.data import (
    ArmsConfig,
    DataConfig,
    DriftConfig,
    DuplicatesConfig,
    HeterogeneityConfig,
    SimulateConfig,
    TargetingConfig,
    ValidateConfig,
)
from offerflow.config.evaluate import BaselinesConfig, EvaluateConfig, GateConfig, HoldoutConfig
from offerflow.config.loading import cross_section_problems, load_params, read_params_tree
from offerflow.config.optimize import (
    AllocateConfig,
    FrontierConfig,
    ObjectiveName,
    OfferGroupConfig,
    OptimizeConfig,
    RecommendConfig,
    RiskConfig,
    ShareSetting,
    SolverConfig,
)
from offerflow.config.params import REQUIRED_SECTIONS, Params
from offerflow.config.publish import (
    ENV_VAR_NAME,
    SQL_IDENTIFIER,
    FiguresConfig,
    OrchestrationConfig,
    PublishConfig,
    ScheduleConfig,
    looks_like_credential,
)
from offerflow.config.train import (
    BaseModelName,
    DecisionQualityConfig,
    EvaluationConfig,
    HeuristicConfig,
    LearnerConfig,
    LearnerName,
    ProbabilitiesConfig,
    PropensityConfig,
    TrainConfig,
)
from offerflow.discounts.config import DiscountsConfig
from offerflow.errors import ConfigError
from offerflow.journey.config import JourneyConfig

__all__ = [
    "ENV_VAR_NAME", "REQUIRED_SECTIONS", "SQL_IDENTIFIER", "AllocateConfig", "ArmsConfig", "BaseModelName",
    "BaselinesConfig", "ConfigError", "DataConfig", "DecisionQualityConfig", "DiscountsConfig", "DriftConfig",
    "DuplicatesConfig", "EvaluateConfig", "EvaluationConfig", "FiguresConfig", "FrontierConfig", "GateConfig",
    "HeterogeneityConfig", "HeuristicConfig", "HoldoutConfig", "JourneyConfig", "LearnerConfig", "LearnerName",
    "ObjectiveName", "OfferGroupConfig", "OptimizeConfig", "OrchestrationConfig", "Params", "ProbabilitiesConfig",
    "PropensityConfig", "PublishConfig", "RecommendConfig", "RiskConfig", "ScheduleConfig", "ShareSetting",
    "SimulateConfig", "SolverConfig", "TargetingConfig", "TrainConfig", "ValidateConfig", "cross_section_problems",
    "load_params", "looks_like_credential", "read_params_tree",
]
