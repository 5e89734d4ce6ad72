"""The offer-allocation pipeline, declared once.

Each stage is an object: its name, what it does, its runner (a function), the params keys it reads,
the files it reads and writes (catalog names), the code it runs, and when it is enabled. Everything
else derives from this list: the CLI subcommands, dvc.yaml (`offerflow dvc-yaml`), the Prefect flow's
tasks and their cache keys, the provenance checks, and the tests' view of the pipeline. Adding a stage
touches this declaration, its runner in offerflow.stages, its domain code and its tests; nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from offerflow import dvcplots, stages
from offerflow.catalog import Catalog, headline_name, stamp_name
from offerflow.config import Params

Condition = Callable[[Params], bool]


def always(_: Params) -> bool:
    return True


@dataclass(frozen=True)
class Output:
    """One file a stage writes. kind: out (data), report (detailed JSON), figure (PNG), plot (CSV a DVC plot
    reads), metric (the stage's headline numbers, written from `Stage.headline`, never declared by hand)."""

    name: str
    kind: str = "out"
    when: Condition = always
    plot: dvcplots.PlotDefinitions | None = None  # (params, path) -> dvc.yaml plot definitions reading this file
    derive: Callable[[Params, Catalog], None] | None = None  # written from the stage's other outputs after it ran

    @property
    def cache(self) -> bool:
        """Data, details, figures and stamps go to the DVC cache (and a remote); the small files people diff
        across commits and experiments, headline metrics and plot data, stay beside the code in git."""
        return self.kind not in ("metric", "plot")


@dataclass(frozen=True)
class Input:
    name: str
    when: Condition = always


@dataclass(frozen=True)
class Stage:
    name: str  # CLI subcommand, dvc.yaml stage
    does: str  # what it does, in the business's words: the Prefect task name
    help: str  # one line for `offerflow --help`
    runner: Callable[[Params], dict]  # reads and writes through Catalog(params)
    params: tuple[str, ...]  # params.yaml keys it reads
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    code: tuple[str, ...]  # offerflow modules it runs, relative to the package (besides CORE_CODE)
    phase: str  # the business step it belongs to (PHASES): the Prefect flow runs phase by phase
    enabled: Condition = always
    pipeline: str = "offers"  # offers (coupons within a budget) | discounts | journey: one Prefect flow each
    extra_params: Callable[[Params], tuple[str, ...]] = field(default=lambda _: ())
    extra_code: Callable[[Params], tuple[str, ...]] = field(default=lambda _: ())
    # headline metrics: (key, "output:dotted.path") pairs read from its reports (offerflow.headline)
    headline: tuple[tuple[str, str], ...] = ()

    def params_for(self, params: Params) -> tuple[str, ...]:
        return (*self.params, *self.extra_params(params))

    def inputs_for(self, params: Params) -> list[str]:
        return [item.name for item in self.inputs if item.when(params)]

    def outputs_for(self, params: Params) -> list[Output]:
        headline = (Output(headline_name(self.name), "metric"),) if self.headline else ()
        return [out for out in (*self.outputs, *headline, Output(stamp_name(self.name))) if out.when(params)]

    def code_for(self, params: Params) -> tuple[str, ...]:
        runner = f"stages/{self.name if self.pipeline == 'offers' else self.pipeline}.py"
        return (*CORE_CODE, runner, *self.code, *self.extra_code(params))


PHASES = ("prepare data", "learn responses", "decide offers", "check against simple rules", "publish")
# pipeline.py runs every stage and declares its headline; headline.py writes it
CORE_CODE = ("config", "catalog.py", "schema.py", "errors.py", "io.py", "provenance.py", "stages/inputs.py",
             "pipeline.py", "headline.py")


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

def discounts_on(params: Params) -> bool:
    return params.discounts.enabled


def journey_on(params: Params) -> bool:
    return params.journey.enabled


def discount_figures(params: Params) -> bool:
    return params.discounts.enabled and params.discounts.evaluation.figures


STAGES += (
    Stage(
        name="discounts_validate", phase="prepare data", pipeline="discounts", enabled=discounts_on,
        does="read and validate the discount files",
        help="parse both discount files per params.yaml (delimiter, currency, codes), GX suites, pre-discount features",
        runner=stages.run_discounts_validate,
        params=("discounts", "validate.suites_dir"),
        inputs=(Input("discounts_observational_file"), Input("discounts_randomized_file"), Input("suites")),
        outputs=(Output("discounts_validation", "report"), Output("discounts_observational"), Output("discounts_randomized")),
        code=("discounts", "validation"),
        headline=(("discounts_observational_rows", "discounts_validation:observational.rows"),
                  ("discounts_randomized_rows", "discounts_validation:randomized.rows")),
    ),
    Stage(
        name="discounts_train", phase="learn responses", pipeline="discounts", enabled=discounts_on,
        does="learn the discount's effect on profit",
        help="debiased effect of a discount dollar on profit (econml double ML), per customer and on average",
        runner=stages.run_discounts_train,
        params=("discounts",),
        inputs=(Input("discounts_observational"), Input("discounts_randomized")),
        outputs=(Output("discount_model"), Output("discount_effects"), Output("discounts_train_metrics", "report")),
        code=("discounts",),
        headline=(  # profit per discount dollar: naive and debiased on the observational file, debiased on the randomized
            ("discount_effect_naive", "discounts_train_metrics:observational.naive.estimate"),
            ("discount_effect_debiased", "discounts_train_metrics:observational.debiased.estimate"),
            ("discount_effect_randomized", "discounts_train_metrics:randomized.debiased.estimate?"),
            ("discount_sign_flipped", "discounts_train_metrics:sign_flipped?"),
            ("discount_agrees_with_randomized", "discounts_train_metrics:agrees_with_randomized?"),
            ("customers_with_positive_effect", "discounts_train_metrics:customers_with_positive_effect?"),
        ),
    ),
    Stage(
        name="discounts_evaluate", phase="learn responses", pipeline="discounts", enabled=discounts_on,
        does="check the effect ranking on the randomized test",
        help="elasticity and gain curves of the model's ranking vs random and the rule, on the randomized file",
        runner=stages.run_discounts_evaluate,
        params=("discounts",),
        inputs=(Input("discounts_randomized"), Input("discounts_observational"), Input("discount_effects"),
                Input("discounts_train_metrics")),
        outputs=(
            Output("discounts_evaluation", "report"),
            Output("discounts_elasticity_plot", "plot", plot=dvcplots.discount_curves("elasticity")),
            Output("discounts_gain_plot", "plot", plot=dvcplots.discount_curves("gain")),
            Output("discounts_scatter_figure", "figure", discount_figures),
            Output("discounts_effects_figure", "figure", discount_figures),
            Output("discounts_curves_figure", "figure", discount_figures),
        ),
        code=("discounts",),
        headline=(  # areas between the model's curve and random / the rule
            ("elasticity_area_vs_random", "discounts_evaluation:areas.elasticity_model_vs_random.estimate"),
            ("elasticity_area_vs_rule", "discounts_evaluation:areas.elasticity_model_vs_rule.estimate"),
            ("profit_gain_area_vs_random", "discounts_evaluation:areas.gain_model_vs_random.estimate"),
            ("profit_gain_area_vs_rule", "discounts_evaluation:areas.gain_model_vs_rule.estimate"),
        ),
    ),
    Stage(
        name="discounts_optimize", phase="decide offers", pipeline="discounts", enabled=discounts_on,
        does="choose a discount per customer",
        help="a discount level per customer within the budget; every policy valued on the randomized file; the gate",
        runner=stages.run_discounts_optimize,
        params=("discounts", "evaluate.gate"),
        inputs=(Input("discounts_randomized"), Input("discount_model")),
        outputs=(Output("discount_plan"), Output("discounts_policy", "report"),
                 Output("discounts_policy_figure", "figure", discount_figures)),
        code=("discounts", "evaluation", "optimize/customer_allocation.py"),
        headline=(
            ("discounts_gate_choice", "discounts_policy:gate.published"),
            ("discounts_best_baseline", "discounts_policy:gate.best_competitor?"),
            ("discounts_minus_best_baseline", "discounts_policy:gate.difference?"),
            ("discounts_lower_bound", "discounts_policy:gate.lower_bound?"),
            ("discounts_planned_total", "discounts_policy:personalized.expected_discount_total?"),
        ),
    ),
    Stage(
        name="discounts_publish", phase="publish", pipeline="discounts", enabled=discounts_on,
        does="publish the discounts",
        help="publish the discount per customer the gate chose (tables discounts_*)",
        runner=stages.run_discounts_publish,
        params=("discounts", "publish"),
        inputs=(Input("discount_plan"), Input("discounts_policy")),
        outputs=(Output("discounts_assignments"), Output("discounts_publish_metrics", "report")),
        code=("publish", "stages/scenario_publish.py"),
        headline=(("discounts_published_rows", "discounts_publish_metrics:rows"),
                  ("discounts_published_value", "discounts_publish_metrics:expected_value?"),
                  ("discounts_published_cost", "discounts_publish_metrics:expected_cost?")),
    ),
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
PIPELINES = ("offers", "discounts", "journey")
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def stage_named(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(f"no stage {name!r}; stages: {list(STAGE_NAMES)}")


def enabled_stages(params: Params, from_stage: str | None = None, pipeline: str | None = None) -> list[Stage]:
    """The stages this params file runs, in order (of one pipeline, when named), optionally from `from_stage`."""
    chosen = [stage for stage in STAGES if stage.enabled(params) and pipeline in (None, stage.pipeline)]
    if from_stage is not None:
        start = stage_named(from_stage)
        order = [stage.name for stage in STAGES]
        chosen = [stage for stage in chosen if stage.pipeline != start.pipeline or order.index(stage.name) >= order.index(start.name)]
    return chosen


def phase_stages(params: Params, phase: str, pipeline: str = "offers") -> list[Stage]:
    """The enabled stages of one business step of one pipeline, in order."""
    if phase not in PHASES:
        raise KeyError(f"no phase {phase!r}; phases: {list(PHASES)}")
    return [stage for stage in enabled_stages(params, pipeline=pipeline) if stage.phase == phase]


def run_stage(name: str, params: Params) -> dict:
    """Run one stage as every entry point does: check upstream provenance, run, stamp the outputs."""
    from offerflow.headline import write_headline
    from offerflow.provenance import check_upstream, write_stamp

    stage = stage_named(name)
    catalog = Catalog(params)
    if os.environ.get("DVC_STAGE"):  # run by `dvc repro`/`dvc exp run`: dvc.yaml must match params.yaml
        from offerflow.dvcyaml import check_dvc_yaml

        check_dvc_yaml(params)
    if not stage.enabled(params):
        return {"skipped": f"{name} is disabled by params.yaml"}
    check_upstream(stage, params, catalog, enabled_stages(params))
    catalog.path(stamp_name(name)).unlink(missing_ok=True)
    metrics = stage.runner(params)
    for out in stage.outputs_for(params):
        if out.derive is not None:
            out.derive(params, catalog)
    write_headline(stage, params, catalog)
    write_stamp(stage, params, catalog)
    return metrics
