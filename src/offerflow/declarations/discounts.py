"""The discounts pipeline: a discount level per customer from the debiased effect of a discount dollar on profit."""

from __future__ import annotations

from offerflow import dvcplots, stages
from offerflow.config import Params
from offerflow.declarations.stage import Input, Output, Stage


def discounts_on(params: Params) -> bool:
    return params.discounts.enabled


def discount_figures(params: Params) -> bool:
    return params.discounts.enabled and params.discounts.evaluation.figures


STAGES: tuple[Stage, ...] = (
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
)
