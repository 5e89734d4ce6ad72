"""Stage runners: one thin function per stage that reads its inputs through the catalog, calls the pure
domain functions, and writes its outputs. The pipeline declaration (offerflow.pipeline) references them;
domain packages never import them. Heavy libraries are imported inside each runner, so that listing
the pipeline (the CLI's --help, dvc.yaml generation) stays fast.
"""

from offerflow.stages.allocate import run_allocate
from offerflow.stages.evaluate import run_evaluate
from offerflow.stages.optimize import run_optimize
from offerflow.stages.probabilities import run_probabilities
from offerflow.stages.publish import run_publish
from offerflow.stages.simulate import run_simulate
from offerflow.stages.train import run_train
from offerflow.stages.validate import run_validate

__all__ = ["run_allocate", "run_evaluate", "run_optimize", "run_probabilities", "run_publish", "run_simulate", "run_train", "run_validate"]
