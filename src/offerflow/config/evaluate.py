"""params.yaml section evaluate: the held-out history, the simple baselines and the publish gate."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from offerflow.config.train import HeuristicConfig
from offerflow.sections import Section as _Section


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
