"""Runners of the personalized-discount stages: read through the catalog, call offerflow.discounts, write.

  discounts_validate  both files parsed per params.yaml, GX suites, features checked to be pre-discount
  discounts_train     econml effect models on the observational file; average effects on both files
  discounts_evaluate  curves of the model's ranking on the randomized file; the study's figures
  discounts_optimize  a level per customer within the budget; every policy valued on the randomized file;
                      the publish gate (offerflow.evaluation.gate) decides which policy to publish
  discounts_publish   the chosen policy's discount per customer, through the same publishing layer
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.discounts.config import DiscountFileConfig, DiscountsConfig
from offerflow.io import file_sha256, read_json, significant, write_csv, write_json, write_parquet, write_with
from offerflow.validation.failures import plain

if TYPE_CHECKING:
    import pandas as pd


def required_columns(config: DiscountsConfig, observational: bool) -> list[str]:
    """What each file must hold: the observational file also the controls the staff targeted on."""
    core = [config.treatment, config.outcome, config.sales, *config.features]
    return core + list(config.controls) if observational else core


def run_discounts_validate(params: Params) -> dict:
    """Parse and check both files; write them typed (parquet) and a validation report."""
    from offerflow.discounts.ingest import encode_features, read_discount_file
    from offerflow.discounts.validation import check_pre_treatment, validate_discount_frame
    from offerflow.validation.gx_session import GxSession

    config, catalog, session = params.discounts, Catalog(params), GxSession(None)
    report, frames = {}, {}
    files: dict[str, tuple[DiscountFileConfig, bool]] = {
        "observational": (config.observational, True),
        "randomized": (config.randomized, False),
    }
    for name, (spec, observational) in files.items():
        path = catalog.path(f"discounts_{name}_file")
        required = required_columns(config, observational)
        optional = [] if observational else list(config.controls)
        frame = read_discount_file(path, spec, config, required, optional)
        source = catalog.relative(f"discounts_{name}_file")
        suites = [catalog.path("suites") / suite for suite in spec.suites]
        documents = validate_discount_frame(frame, source, suites, config, [c for c in required], session)
        frames[name] = frame
        report[name] = {"path": source, "sha256": file_sha256(path), "rows": len(frame), "gx_results": documents}
    randomized = frames["randomized"]
    inputs = [c for c in [*config.features, *config.controls] if c in randomized.columns]
    check_pre_treatment(
        encode_features(randomized, inputs, config), randomized[config.treatment], report["randomized"]["path"]
    )
    report["pre_treatment_checked"] = inputs
    write_parquet(frames["observational"], catalog.path("discounts_observational"))
    write_parquet(frames["randomized"], catalog.path("discounts_randomized"))
    write_json(plain(report), catalog.path("discounts_validation"))
    return {name: report[name]["rows"] for name in files}


def _matrices(frame: pd.DataFrame, config: DiscountsConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    from offerflow.discounts.ingest import encode_features

    controls = [c for c in config.controls if c in frame.columns]
    return encode_features(frame, list(config.features), config), encode_features(frame, controls, config)


def run_discounts_train(params: Params) -> dict:
    """Fit the effect models on the observational file; average effects (naive and debiased) on both."""
    import joblib
    import pandas as pd

    from offerflow.discounts.effects import fit_discount_effects, naive_slope

    config, catalog = params.discounts, Catalog(params)
    observational = pd.read_parquet(catalog.path("discounts_observational"))
    randomized = pd.read_parquet(catalog.path("discounts_randomized"))
    t, y = config.treatment, config.outcome
    X, W = _matrices(observational, config)
    model = fit_discount_effects(X, W, observational[t].to_numpy(), observational[y].to_numpy(), config.effect)
    X_r, W_r = _matrices(randomized, config)
    slope_only = config.effect.model_copy(update={"knots": ()})
    randomized_model = fit_discount_effects(X_r, W_r, randomized[t].to_numpy(), randomized[y].to_numpy(), slope_only)
    effects = model.customer_effects(X_r)
    debiased, benchmark = model.average_effect(X), randomized_model.average_effect(X_r)
    naive = naive_slope(observational[t], observational[y], config.effect.interval_level)
    metrics = {
        "observational": {"naive": naive.as_dict(), "debiased": debiased.as_dict()},
        "randomized": {
            "naive": naive_slope(randomized[t], randomized[y], config.effect.interval_level).as_dict(),
            "debiased": benchmark.as_dict(),
        },
        "observational_model_on_randomized_customers": model.average_effect(X_r).as_dict(),
        "sign_flipped": bool(naive.estimate > 0 > debiased.estimate),
        "agrees_with_randomized": debiased.overlaps(benchmark.ci_low, benchmark.ci_high),
        "customers_with_positive_effect": round(float((effects["effect"] > 0).mean()), 6),
        "features": list(X.columns),
        "controls": list(W.columns),
        "knots": list(config.effect.knots),
    }
    write_with(catalog.path("discount_model"), lambda tmp: joblib.dump(model, tmp))
    write_parquet(effects.reset_index(names="customer_id"), catalog.path("discount_effects"))
    write_json(plain(metrics), catalog.path("discounts_train_metrics"))
    return {"sign_flipped": metrics["sign_flipped"], "agrees_with_randomized": metrics["agrees_with_randomized"]}


def run_discounts_evaluate(params: Params) -> dict:
    """Rank the randomized customers by the model, the rule and at random; curves, areas, figures."""
    import pandas as pd

    from offerflow.discounts.evaluation import Ranking, evaluate_rankings

    config, catalog = params.discounts, Catalog(params)
    evaluation = config.evaluation
    randomized = pd.read_parquet(catalog.path("discounts_randomized"))
    effects = pd.read_parquet(catalog.path("discount_effects"))
    rule = evaluation.rule
    result = evaluate_rankings(
        Ranking("model", effects["effect"].to_numpy()),
        Ranking(rule.name, randomized[rule.column].to_numpy(float), rule.descending),
        randomized[config.treatment].to_numpy(),
        randomized[config.outcome].to_numpy(),
        evaluation.points,
        evaluation.min_rows,
        evaluation.bootstrap,
        evaluation.seed,
        config.effect.interval_level,
    )
    write_csv(result["elasticity_curve"], catalog.path("discounts_elasticity_plot"))
    write_csv(result["gain_curve"], catalog.path("discounts_gain_plot"))
    metrics = {"areas": result["areas"], "rule": rule.model_dump(), "rows": len(randomized)}
    if evaluation.figures:
        _study_figures(config, catalog, randomized, effects, result)
    write_json(plain(metrics), catalog.path("discounts_evaluation"))
    return {"rows": len(randomized)}


def _study_figures(config: DiscountsConfig, catalog: Catalog, randomized, effects, result) -> None:
    import numpy as np
    import pandas as pd

    from offerflow.discounts import figures

    observational = pd.read_parquet(catalog.path("discounts_observational"))
    panels = []
    for title, frame in (("Randomized test", randomized), ("Past campaigns (staff chose the discount)", observational)):
        table = frame[[config.treatment, config.outcome]].set_axis(["discount", "profit"], axis=1)
        slope, intercept = np.polyfit(table["discount"], table["profit"], 1)
        panels.append((title, table, float(slope), float(intercept)))
    figures.plot_profit_vs_discount(panels, catalog.path("discounts_scatter_figure"))
    average = read_json(catalog.path("discounts_train_metrics"))["observational_model_on_randomized_customers"]["estimate"]
    figures.plot_effect_distribution(effects["effect"].to_numpy(), average, catalog.path("discounts_effects_figure"))
    figures.plot_response_curves(
        result["elasticity_curve"], result["gain_curve"], config.evaluation.rule.name, catalog.path("discounts_curves_figure")
    )


def run_discounts_optimize(params: Params) -> dict:
    """A level per randomized-file customer maximizing expected profit; all policies valued off-policy; the gate."""
    import joblib
    import numpy as np
    import pandas as pd

    from offerflow.discounts import figures, policy

    config, catalog = params.discounts, Catalog(params)
    settings = config.policy
    randomized, model = pd.read_parquet(catalog.path("discounts_randomized")), joblib.load(catalog.path("discount_model"))
    levels = tuple(settings.levels)
    discount, profit = randomized[config.treatment].to_numpy(float), randomized[config.outcome].to_numpy(float)
    propensity = policy.randomized_design(
        discount, levels, settings.min_arm_rows, settings.max_arms, catalog.relative("discounts_randomized_file")
    )
    X, _ = _matrices(randomized, config)
    value, cost = policy.level_value_and_cost(model.profit_change(X, levels, settings.uncertainty_penalty), levels)
    rule = config.evaluation.rule
    tie_key = np.random.default_rng(settings.seed).permutation(len(randomized))
    plans = [
        policy.personalized_plan(value, cost, settings.budget, settings.partition_rows),
        policy.nobody_plan(len(randomized)),
        policy.uniform_plan(value, levels, settings.budget),
        policy.rule_plan(rule.name, randomized[rule.column].to_numpy(float), rule.descending, rule.share, rule.level,
                         levels, value, settings.budget, tie_key),
    ]
    mu_levels, mu_observed = policy.cross_fitted_profit(
        X, discount, profit, levels, settings.outcome_model, settings.folds, settings.seed
    )
    estimates = policy.compare_policies(
        plans, levels, discount, profit, mu_levels, mu_observed, propensity, config.effect.interval_level
    )
    decision, _ = gate_discount_policies(params, plans, levels, discount, profit, mu_levels, mu_observed)
    chosen = next(plan for plan in plans if policy.slug(plan.name) == decision.published)
    table = policy.plan_table(np.arange(len(randomized)), chosen, levels, value)
    table["policy"] = chosen.name
    for plan in plans:
        table[f"level_{policy.slug(plan.name)}"] = np.asarray(levels, float)[plan.level_index]
    write_parquet(table, catalog.path("discount_plan"))
    metrics = {
        "estimates": estimates,
        "gate": decision.as_dict(),
        "published": chosen.name,
        "personalized": plans[0].detail,
        "levels": list(levels),
        "budget": settings.budget,
        "design_probability": dict(zip(map(str, levels), propensity.round(6).tolist())),
    }
    if config.evaluation.figures:
        figures.plot_policy_values(estimates, catalog.path("discounts_policy_figure"))
    write_json(plain(significant(metrics)), catalog.path("discounts_policy"))
    if not decision.candidate_published and params.evaluate.gate.fallback == "nothing":
        from offerflow.errors import GateRefusedError

        raise GateRefusedError(f"discount gate: {decision.reason}; nothing was published (evaluate.gate.fallback: nothing)")
    return {"published": chosen.name, "gate": decision.reason}


def gate_discount_policies(params: Params, plans, levels, discount, profit, mu_levels, mu_observed):
    """The publish gate on the randomized file: the personalized plan against the simple policies.

    The randomized discounts are discrete arms drawn with known (empirical) frequencies, so every plan is a
    one-hot policy over those arms and the same off-policy estimators and gate as the coupon plan apply;
    the value is profit per customer (the discount is already netted out).
    """
    import numpy as np

    from offerflow.discounts import policy
    from offerflow.evaluation.baselines import NamedPolicy
    from offerflow.evaluation.gate import decide_publication, evaluate_policies
    from offerflow.evaluation.off_policy import CampaignLog, Reward

    arms, arm_index = np.unique(discount, return_inverse=True)
    shares = np.bincount(arm_index) / len(arm_index)
    column = {float(level): int(np.searchsorted(arms, level)) for level in levels}
    predicted = np.repeat(mu_observed[:, None], len(arms), axis=1)  # off-grid arms: weight 0 for every plan
    for j, level in enumerate(levels):
        predicted[:, column[float(level)]] = mu_levels[:, j]
    span = (float(min(profit.min(), predicted.min())), float(max(profit.max(), predicted.max())))
    log = CampaignLog(arm_index.astype(np.int64), shares[arm_index], len(arms))
    matrices = []
    for plan in plans:
        matrix = np.zeros((len(discount), len(arms)))
        matrix[np.arange(len(discount)), [column[float(levels[i])] for i in plan.level_index]] = 1.0
        role = "candidate" if plan.name == "personalized" else "baseline"
        matrices.append(NamedPolicy(policy.slug(plan.name), plan.name, role, matrix))
    gate = params.evaluate.gate.model_copy(update={"unit": "USD profit"})
    evaluations = evaluate_policies(matrices, log, Reward(profit, span, predicted), gate,
                                    control=column[float(levels[0])], reference="no_discount")
    decision = decide_publication(evaluations, gate.model_copy(update={"fallback": "best_baseline"}))
    return decision, evaluations


def run_discounts_publish(params: Params) -> dict:
    """The plan the gate chose: each randomized-file customer's discount, published like any allocation."""
    import numpy as np
    import pandas as pd

    from offerflow.stages.scenario_publish import publish_scenario

    catalog = Catalog(params)
    plan = pd.read_parquet(catalog.path("discount_plan"))
    verdict = read_json(catalog.path("discounts_policy"))
    assigned = pd.DataFrame({
        "customer_id": plan["customer_id"], "segment_id": 0, "offer": plan["offer"], "predicted_probability": np.nan,
        "expected_cost": plan["expected_cost"], "expected_value": plan["expected_profit_change"],
    })
    settings = {"scenario": "discounts", "levels": verdict["levels"], "budget": verdict["budget"],
                "gate": {"published": verdict["published"], "reason": verdict["gate"]["reason"]}}
    inputs = {"plan": "discount_plan", "policy_evaluation": "discounts_policy"}
    return publish_scenario(params, "discounts", assigned, inputs, settings, "discounts_assignments", "discounts_publish_metrics")
