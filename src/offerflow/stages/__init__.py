"""Stage runners: one thin function per stage that reads its inputs through the catalog, calls the pure
domain functions, and writes its outputs. The pipeline declaration (offerflow.pipeline) references them;
domain packages never import them. Heavy libraries are imported inside each runner, so that listing
the pipeline (the CLI's --help, dvc.yaml generation) stays fast.
"""

from offerflow.stages.allocate import run_allocate
from offerflow.stages.discounts import (
    run_discounts_evaluate,
    run_discounts_optimize,
    run_discounts_publish,
    run_discounts_train,
    run_discounts_validate,
)
from offerflow.stages.evaluate import run_evaluate
from offerflow.stages.journey import (
    run_journey_evaluate,
    run_journey_publish,
    run_journey_simulate,
    run_journey_train,
    run_journey_validate,
)
from offerflow.stages.optimize import run_optimize
from offerflow.stages.probabilities import run_probabilities
from offerflow.stages.publish import run_publish
from offerflow.stages.simulate import run_simulate
from offerflow.stages.train import run_train
from offerflow.stages.validate import run_validate

__all__ = [
    "run_allocate", "run_discounts_evaluate", "run_discounts_optimize", "run_discounts_publish", "run_discounts_train",
    "run_discounts_validate", "run_evaluate", "run_journey_evaluate", "run_journey_publish", "run_journey_simulate",
    "run_journey_train", "run_journey_validate", "run_optimize", "run_probabilities", "run_publish", "run_simulate",
    "run_train", "run_validate",
]
