"""The journey pipeline: every customer's next action from a sequential policy learned on the journey log."""

from __future__ import annotations

from offerflow import dvcplots, stages
from offerflow.catalog import stamp_name
from offerflow.config import Params
from offerflow.declarations.stage import Input, Output, Stage


def journey_on(params: Params) -> bool:
    return params.journey.enabled


STAGES: tuple[Stage, ...] = (
    Stage(
        name="journey_simulate", phase="prepare data", pipeline="journey",
        enabled=lambda p: p.journey.enabled and p.journey.testbed is not None,
        does="simulate customer journeys",
        help="the journey testbed's log under the behaviour policy (example only)",
        runner=stages.run_journey_simulate,
        params=("journey",),
        inputs=(),
        outputs=(Output("simulated_journey_log"),),
        code=("journey",),
    ),
    Stage(
        name="journey_validate", phase="prepare data", pipeline="journey", enabled=journey_on,
        does="validate the journey log",
        help="the journey log against expectations/journey_log.json, then its campaign structure",
        runner=stages.run_journey_validate,
        params=("journey", "validate"),
        inputs=(Input("journey_log"), Input("suites")),
        outputs=(Output("journey_validation", "report"),),
        code=("journey", "validation"),
        headline=(("journey_validation_passed", "journey_validation:success"),
                  ("journey_log_rows", "journey_validation:datasets.journey_log.rows")),
    ),
    Stage(
        name="journey_train", phase="learn responses", pipeline="journey", enabled=journey_on,
        does="learn sequential policies",
        help="fitted Q iteration, look-alike baselines and the one-step optimizer, tuned to the budget",
        runner=stages.run_journey_train,
        params=("journey",),
        inputs=(Input("journey_log"), Input(stamp_name("journey_validate"))),
        outputs=(Output("journey_models"), Output("journey_train_metrics", "report")),
        code=("journey", "optimize/customer_allocation.py"),
        headline=(("journey_tuning_spend", "journey_train_metrics:tuning.*.tuning_spend"),),  # per policy, at its tuned knob
    ),
    Stage(
        name="journey_evaluate", phase="check against simple rules", pipeline="journey", enabled=journey_on,
        does="check the journey policy against simple rules",
        help="off-policy estimates on held-out customers (and the testbed's truth); the publish gate",
        runner=stages.run_journey_evaluate,
        params=("journey", "evaluate.gate"),
        inputs=(Input("journey_log"), Input("journey_models")),
        outputs=(
            Output("journey_evaluation_table", "report"),
            Output("journey_metrics", "report"),
            Output("journey_action_shares", "plot", plot=dvcplots.journey_action_shares),
            Output("journey_values_figure", "figure"),
            Output("journey_actions_figure", "figure"),
        ),
        code=("journey", "evaluation"),
        headline=(
            ("journey_gate_choice", "journey_metrics:gate.published"),
            ("journey_best_baseline", "journey_metrics:gate.best_competitor?"),
            ("journey_minus_best_baseline", "journey_metrics:gate.difference?"),
            ("journey_lower_bound", "journey_metrics:gate.lower_bound?"),
            ("journey_true_value", "journey_metrics:policies.*.true_value?"),  # testbed only
        ),
    ),
    Stage(
        name="journey_publish", phase="publish", pipeline="journey", enabled=journey_on,
        does="publish the next actions",
        help="publish every customer's next action under the policy the gate chose (tables journey_*)",
        runner=stages.run_journey_publish,
        params=("journey", "publish"),
        inputs=(Input("journey_log"), Input("journey_models"), Input("journey_metrics")),
        outputs=(Output("journey_next_actions"), Output("journey_assignments"), Output("journey_publish_metrics", "report")),
        code=("journey", "publish", "stages/scenario_publish.py"),
        headline=(("journey_published_rows", "journey_publish_metrics:rows"),
                  ("journey_published_value", "journey_publish_metrics:expected_value?"),
                  ("journey_published_cost", "journey_publish_metrics:expected_cost?")),
    ),
)
