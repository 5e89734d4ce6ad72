"""The whole of params.yaml: one model holding every section."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import Field

from offerflow.config.data import ArmsConfig, DataConfig, SimulateConfig, ValidateConfig
from offerflow.config.evaluate import EvaluateConfig
from offerflow.config.optimize import AllocateConfig, OptimizeConfig
from offerflow.config.publish import FiguresConfig, OrchestrationConfig, PublishConfig
from offerflow.config.train import ProbabilitiesConfig, TrainConfig
from offerflow.discounts.config import DiscountsConfig  # scenario sections, defined beside their code
from offerflow.journey.config import JourneyConfig
from offerflow.sections import Section as _Section


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
