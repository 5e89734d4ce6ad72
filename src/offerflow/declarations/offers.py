"""The offers pipeline: coupons per segment or customer within a budget, from history to the published plan."""

from __future__ import annotations

from offerflow import dvcplots, stages
from offerflow.catalog import stamp_name
from offerflow.config import Params
from offerflow.declarations.stage import Input, Output, Stage


def simulating(params: Params) -> bool:
    return params.simulate.enabled


def has_truth(params: Params) -> bool:
    return params.data.true_probabilities is not None


def given_table(params: Params) -> bool:
    return params.optimize.probability_table != "learned"


def frontier_on(params: Params) -> bool:
    return params.optimize.frontier.enabled


def train_figures(params: Params) -> bool:
    return params.train.evaluation.figures


def optimize_figures(params: Params) -> bool:
    return params.optimize.figures


def publishes_segment_plan(params: Params) -> bool:
    return params.publish.source == "segment_plan"


def publishes_customer_plan(params: Params) -> bool:
    return params.publish.source == "customer_plan"


VALIDATED = Input(stamp_name("validate"))  # stages reading user files run only after they passed validation

STAGES: tuple[Stage, ...] = (
    Stage(
        name="simulate",
        phase="prepare data",
        does="simulate campaign history",
        help="draw a campaign history from the true probability table (example data only)",
        runner=stages.run_simulate,
        params=("data", "arms", "simulate"),
        inputs=(Input("customers"), Input("true_probabilities"), Input("suites")),
        outputs=(Output("simulated_history"),),
        code=("simulation", "validation"),
        enabled=simulating,
    ),
    Stage(
        name="validate",
        phase="prepare data",
        does="validate inputs",
        help="check every input with the Great Expectations suites in expectations/",
        runner=stages.run_validate,
        params=("data", "arms", "validate", "train.features", "optimize.probability_table"),
        inputs=(
            Input("customers"),
            Input("history"),
            Input("true_probabilities", has_truth),
            Input("given_probability_table", given_table),
            Input("suites"),
        ),
        outputs=(Output("validation_summary", "report"),),
        code=("validation",),
        headline=(
            ("validation_passed", "validation_summary:success"),
            ("failed_expectations", "validation_summary:failure_count"),
            ("customers", "validation_summary:datasets.customers.rows"),
            ("history_rows", "validation_summary:datasets.history.rows"),
        ),
    ),
    Stage(
        name="train",
        phase="learn responses",
        does="learn response models",
        help="compare uplift learners out of fold (causalml) and fit the best on the history",
        runner=stages.run_train,
        params=("data", "arms", "train", "evaluate.holdout"),
        extra_params=lambda p: (("simulate", "probabilities") if p.train.decision_quality.enabled else ())
        + (("optimize.budget",) if p.train.selection_criterion == "policy_value" else ()),
        extra_code=lambda p: ("optimize", "evaluation")
        if p.train.decision_quality.enabled or p.train.selection_criterion == "policy_value" else (),
        inputs=(Input("customers"), Input("history"), VALIDATED, Input("true_probabilities", lambda p: p.train.decision_quality.enabled)),
        outputs=(
            Output("model"),
            Output("model_metadata", "report"),
            Output("train_metrics", "report"),
            Output("train_gain_curve", "plot", plot=dvcplots.uplift_curves("cumulative_gain")),
            Output("train_qini_curve", "plot", plot=dvcplots.uplift_curves("qini")),
            Output("train_figure", "figure", train_figures),
        ),
        code=("uplift", "simulation", "segments.py"),
        headline=(  # the chosen learner's out-of-fold scores, and per offer its Qini against the heuristic's
            ("learner", "model_metadata:selection.chosen"),
            ("selected_by", "model_metadata:selection.criterion"),
            ("brier", "model_metadata:selection.scores.{selection.chosen}.brier"),
            ("log_loss", "model_metadata:selection.scores.{selection.chosen}.log_loss"),
            ("auuc", "model_metadata:selection.scores.{selection.chosen}.auuc"),
            ("qini", "train_metrics:evaluation.arms.*.qini.model"),
            ("qini_heuristic", "train_metrics:evaluation.arms.*.qini.heuristic?"),
            ("oof_mae_vs_truth", "model_metadata:selection.scores.{selection.chosen}.mae_vs_truth?"),
            ("training_rows", "train_metrics:rows"),
        ),
    ),
    Stage(
        name="probabilities",
        phase="learn responses",
        does="score customers",
        help="score every customer under every offer; aggregate the segment table",
        runner=stages.run_probabilities,
        params=("data", "arms", "probabilities", "allocate.partition_rows"),
        inputs=(Input("customers"), Input("true_probabilities", has_truth), Input("model"), VALIDATED),
        outputs=(
            Output("customer_probabilities"),
            Output("segment_probabilities"),
            Output("probabilities_metrics", "report"),
        ),
        code=("uplift", "segments.py", "distributed.py"),
        headline=(
            ("scored_customers", "probabilities_metrics:customers"),
            ("segments", "probabilities_metrics:segments"),
            ("monotonicity_fixes", "probabilities_metrics:customers_adjusted_for_monotonicity"),
            ("probability_mae_vs_truth", "probabilities_metrics:vs_truth.weighted_mae?"),
            ("interval_coverage_vs_truth", "probabilities_metrics:vs_truth.ci_coverage?"),
        ),
    ),
    Stage(
        name="optimize",
        phase="decide offers",
        does="plan offers per segment",
        help="solve the segment LP (Pyomo + HiGHS) for the budget; budget frontier",
        runner=stages.run_optimize,
        params=("data", "arms", "optimize", "figures"),
        inputs=(Input("customers"), Input("true_probabilities", has_truth), Input("probability_table"), VALIDATED),
        outputs=(
            Output("segment_plan", plot=dvcplots.allocation_shares),
            Output("optimize_metrics", "report"),
            Output("budget_frontier", "plot", frontier_on, plot=dvcplots.budget_frontier),
            Output("budget_recommendation", "plot", frontier_on, derive=dvcplots.write_budget_recommendation),
            Output("budget_frontier_figure", "figure", lambda p: frontier_on(p) and optimize_figures(p)),
            Output("allocation_figure", "figure", optimize_figures),
            Output("segment_customers_figure", "figure", optimize_figures),
            Output("segment_probabilities_figure", "figure", optimize_figures),
            Output("probability_lines_figure", "figure", optimize_figures),
            Output("true_probabilities_figure", "figure", lambda p: optimize_figures(p) and has_truth(p) and not given_table(p)),
        ),
        code=("optimize", "segments.py", "evaluation", "dvcplots.py"),
        headline=(  # a segment plan can be infeasible while publish uses the customer plan: then only the why
            ("budget", "optimize_metrics:budget"),
            ("segment_plan_feasible", "optimize_metrics:feasible?"),
            ("objective", "optimize_metrics:objective?"),
            ("cost_per_conversion", "optimize_metrics:cost_per_incremental_conversion?"),
            ("marginal_cost_per_conversion", "optimize_metrics:marginal_cost_per_incremental_conversion?"),
            ("recommended_budget", "optimize_metrics:recommended_budget?"),
            ("share_of_true_optimum", "optimize_metrics:evaluation_on_truth.ratio_to_true_optimum?"),
        ),
    ),
    Stage(
        name="allocate",
        phase="decide offers",
        does="allocate offers per customer",
        help="exact customer-level allocation under the budget (in process or on Dask)",
        runner=stages.run_allocate,
        params=("data", "arms", "optimize", "allocate", "figures"),
        inputs=(Input("customers"), Input("true_probabilities", has_truth), Input("customer_probabilities"), VALIDATED,
                Input("exclude_list", lambda p: p.data.exclude is not None)),
        outputs=(Output("customer_plan"), Output("allocate_metrics", "report"),
                 Output("customer_allocation_figure", "figure", optimize_figures)),
        code=("optimize", "distributed.py", "evaluation", "segments.py"),  # customer_allocation.py, coupled_allocation/
        headline=(
            ("customer_plan_objective", "allocate_metrics:objective"),
            ("customer_plan_cost", "allocate_metrics:expected_cost"),
            ("customers_per_offer", "allocate_metrics:offer_counts"),
        ),
    ),
    Stage(
        name="evaluate",
        phase="check against simple rules",
        does="check the plan against simple rules",
        help="value the plan, simple baselines at the same spend and the incumbent on held-out history; the gate",
        runner=stages.run_evaluate,
        # optimize, probabilities and allocate: the plan rule is re-applied to held-out customers of a new batch
        params=("data", "arms", "evaluate", "train.propensity", "optimize", "probabilities", "allocate", "publish"),
        inputs=(
            Input("customers"),
            Input("history"),
            Input("true_probabilities", has_truth),
            Input("customer_probabilities"),
            Input("model"),
            Input("segment_plan", publishes_segment_plan),
            Input("customer_plan", publishes_customer_plan),
            Input("exclude_list", lambda p: p.data.exclude is not None),
            VALIDATED,
        ),
        outputs=(
            Output("gate_plan"),
            Output("policy_evaluation", "report"),
            Output("policy_evaluation_details", "report"),
            Output("policy_evaluation_plot", "plot", plot=dvcplots.policy_values),
            Output("policy_evaluation_figure", "figure", lambda p: p.evaluate.figures),
        ),
        code=("evaluation", "segments.py", "uplift", "optimize", "distributed.py", "stages/allocate.py", "publish"),
        headline=(  # per customer of the held-out history
            ("gate_choice", "policy_evaluation:published"),
            ("best_baseline", "policy_evaluation:best_competitor?"),
            ("plan_value", "policy_evaluation:candidate_value"),
            ("plan_minus_best_baseline", "policy_evaluation:difference?"),
            ("lower_bound", "policy_evaluation:lower_bound?"),
        ),
    ),
    Stage(
        name="publish",
        phase="publish",
        does="publish the plan",
        help="assign one offer per customer and publish to the database and files",
        runner=stages.run_publish,
        # the run id is a lineage hash over everything that shaped the plan
        params=("data", "arms", "simulate", "train", "probabilities", "optimize", "allocate", "publish"),
        inputs=(
            Input("customers"),
            Input("history"),
            Input("true_probabilities", has_truth),
            Input("probability_table", publishes_segment_plan),
            Input("model"),
            Input("segment_plan", publishes_segment_plan),
            Input("optimize_metrics", publishes_segment_plan),
            Input("customer_plan", publishes_customer_plan),
            Input("allocate_metrics", publishes_customer_plan),
            Input("customer_probabilities", publishes_customer_plan),
            Input("policy_evaluation"),
            Input("gate_plan"),
            VALIDATED,
        ),
        outputs=(Output("assignments"), Output("publish_metrics", "report")),
        code=("publish", "segments.py"),
        headline=(
            ("published_rows", "publish_metrics:rows"),
            ("published_from", "publish_metrics:source"),
            ("published_cost", "publish_metrics:assigned_expected_cost"),
            ("published_conversions_gain", "publish_metrics:expected_incremental_conversions?"),
        ),
    ),
)
