"""Thin runners of the discount pipeline: read through DiscountPaths, call the domain functions, write.

Four stages, each `offerflow discounts-<stage>` once the lead wires them:
  validate  both files parsed per params.yaml, GX suites, features checked to be pre-discount
  train     econml effect models on the observational file; average effects on both files
  evaluate  curves of the model's ranking on the randomized file; the study's figures
  optimize  a level per customer within the budget; every policy valued on the randomized file
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from offerflow.discounts import figures, policy
from offerflow.discounts.config import DiscountFileConfig, DiscountsConfig
from offerflow.discounts.effects import fit_discount_effects, naive_slope
from offerflow.discounts.evaluation import Ranking, evaluate_rankings
from offerflow.discounts.ingest import encode_features, read_discount_file
from offerflow.discounts.validation import check_pre_treatment, validate_discount_frame
from offerflow.io import file_sha256, read_json, write_csv, write_json, write_parquet, write_with
from offerflow.validation.failures import plain

DIGITS = 10


@dataclass(frozen=True)
class DiscountPaths:
    """Every output of the discount stages, relative to the project root (mirrors the stage declarations)."""

    root: Path

    def _at(self, relative: str) -> Path:
        return Path(self.root) / relative

    validation = property(lambda self: self._at("reports/validation/discounts.json"))
    observational = property(lambda self: self._at("data/processed/discounts_observational.parquet"))
    randomized = property(lambda self: self._at("data/processed/discounts_randomized.parquet"))
    model = property(lambda self: self._at("models/discount_effect.joblib"))
    effects = property(lambda self: self._at("data/processed/discount_effects.parquet"))
    train_metrics = property(lambda self: self._at("reports/discounts_train_metrics.json"))
    evaluation_metrics = property(lambda self: self._at("reports/discounts_evaluation.json"))
    elasticity_plot = property(lambda self: self._at("reports/plots/discounts_cumulative_elasticity.csv"))
    gain_plot = property(lambda self: self._at("reports/plots/discounts_cumulative_gain.csv"))
    scatter_figure = property(lambda self: self._at("reports/figures/discounts_profit_vs_discount.png"))
    effects_figure = property(lambda self: self._at("reports/figures/discounts_effect_distribution.png"))
    curves_figure = property(lambda self: self._at("reports/figures/discounts_curves.png"))
    plan = property(lambda self: self._at("data/processed/discount_plan.parquet"))
    policy_metrics = property(lambda self: self._at("reports/discounts_policy.json"))
    policy_figure = property(lambda self: self._at("reports/figures/discounts_policy_values.png"))


def required_columns(config: DiscountsConfig, observational: bool) -> list[str]:
    """What each file must hold: the observational file also the controls the staff targeted on."""
    core = [config.treatment, config.outcome, config.sales, *config.features]
    return core + list(config.controls) if observational else core


def _resolve(root: Path, path: Path) -> Path:
    return path if path.is_absolute() else Path(root) / path


def _display(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def run_discounts_validate(config: DiscountsConfig, root: Path, suites_dir: Path, session=None) -> dict:
    """Parse and check both files; write them typed (parquet) and a validation report."""
    if session is None:
        from offerflow.validation.gx_session import GxSession

        session = GxSession(None)
    paths, report, frames = DiscountPaths(root), {}, {}
    files: dict[str, tuple[DiscountFileConfig, bool]] = {
        "observational": (config.observational, True),
        "randomized": (config.randomized, False),
    }
    for name, (spec, observational) in files.items():
        path = _resolve(root, spec.path)
        required = required_columns(config, observational)
        optional = [] if observational else list(config.controls)
        frame = read_discount_file(path, spec, config, required, optional)
        source = _display(root, path)
        suites = [_resolve(root, suites_dir) / suite for suite in spec.suites]
        documents = validate_discount_frame(frame, source, suites, config, [c for c in required], session)
        frames[name] = frame
        report[name] = {"path": source, "sha256": file_sha256(path), "rows": len(frame), "gx_results": documents}
    randomized = frames["randomized"]
    inputs = [c for c in [*config.features, *config.controls] if c in randomized.columns]
    check_pre_treatment(
        encode_features(randomized, inputs, config), randomized[config.treatment], report["randomized"]["path"]
    )
    report["pre_treatment_checked"] = inputs
    write_parquet(frames["observational"], paths.observational)
    write_parquet(frames["randomized"], paths.randomized)
    write_json(plain(report), paths.validation)
    return {name: report[name]["rows"] for name in files}


def _matrices(frame: pd.DataFrame, config: DiscountsConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    controls = [c for c in config.controls if c in frame.columns]
    return encode_features(frame, list(config.features), config), encode_features(frame, controls, config)


def run_discounts_train(config: DiscountsConfig, root: Path) -> dict:
    """Fit the effect models on the observational file; average effects (naive and debiased) on both."""
    paths = DiscountPaths(root)
    observational, randomized = pd.read_parquet(paths.observational), pd.read_parquet(paths.randomized)
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
    write_with(paths.model, lambda tmp: joblib.dump(model, tmp))
    write_parquet(effects.reset_index(names="customer_id"), paths.effects)
    write_json(plain(metrics), paths.train_metrics)
    return metrics


def run_discounts_evaluate(config: DiscountsConfig, root: Path) -> dict:
    """Rank the randomized customers by the model, the rule and at random; curves, areas, figures."""
    paths, evaluation = DiscountPaths(root), config.evaluation
    randomized, effects = pd.read_parquet(paths.randomized), pd.read_parquet(paths.effects)
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
    write_csv(result["elasticity_curve"], paths.elasticity_plot)
    write_csv(result["gain_curve"], paths.gain_plot)
    metrics = {"areas": result["areas"], "rule": rule.model_dump(), "rows": len(randomized)}
    if evaluation.figures:
        _study_figures(config, paths, randomized, effects, result)
    write_json(plain(metrics), paths.evaluation_metrics)
    return metrics


def _study_figures(config: DiscountsConfig, paths: DiscountPaths, randomized, effects, result) -> None:
    observational = pd.read_parquet(paths.observational)
    panels = []
    for title, frame in (("Randomized test", randomized), ("Past campaigns (staff chose the discount)", observational)):
        table = frame[[config.treatment, config.outcome]].set_axis(["discount", "profit"], axis=1)
        slope, intercept = np.polyfit(table["discount"], table["profit"], 1)
        panels.append((title, table, float(slope), float(intercept)))
    figures.plot_profit_vs_discount(panels, paths.scatter_figure)
    average = read_json(paths.train_metrics)["observational_model_on_randomized_customers"]["estimate"]
    figures.plot_effect_distribution(effects["effect"].to_numpy(), average, paths.effects_figure)
    figures.plot_response_curves(
        result["elasticity_curve"], result["gain_curve"], config.evaluation.rule.name, paths.curves_figure
    )


def run_discounts_optimize(config: DiscountsConfig, root: Path) -> dict:
    """A level per randomized-file customer maximizing expected profit; all policies valued off-policy."""
    paths, settings = DiscountPaths(root), config.policy
    randomized, model = pd.read_parquet(paths.randomized), joblib.load(paths.model)
    levels = tuple(settings.levels)
    discount, profit = randomized[config.treatment].to_numpy(float), randomized[config.outcome].to_numpy(float)
    propensity = policy.randomized_design(
        discount, levels, settings.min_arm_rows, settings.max_arms, str(config.randomized.path)
    )
    X, _ = _matrices(randomized, config)
    value, cost = policy.level_value_and_cost(model.profit_change(X, levels, settings.uncertainty_penalty), levels)
    rule = config.evaluation.rule
    tie_key = np.random.default_rng(settings.seed).permutation(len(randomized))
    plans = [
        policy.personalized_plan(value, cost, settings.budget, settings.partition_rows),
        policy.nobody_plan(len(randomized)),
        policy.uniform_plan(value, levels, settings.budget),
        policy.rule_plan(
            rule.name,
            randomized[rule.column].to_numpy(float),
            rule.descending,
            rule.share,
            rule.level,
            levels,
            value,
            settings.budget,
            tie_key,
        ),
    ]
    mu_levels, mu_observed = policy.cross_fitted_profit(
        X, discount, profit, levels, settings.outcome_model, settings.folds, settings.seed
    )
    estimates = policy.compare_policies(
        plans, levels, discount, profit, mu_levels, mu_observed, propensity, config.effect.interval_level
    )
    table = policy.plan_table(np.arange(len(randomized)), plans[0], levels, value)
    for plan in plans[1:]:
        table[f"level_{policy.slug(plan.name)}"] = np.asarray(levels, float)[plan.level_index]
    write_parquet(table, paths.plan)
    metrics = {
        "estimates": estimates,
        "personalized": plans[0].detail,
        "levels": list(levels),
        "budget": settings.budget,
        "design_probability": dict(zip(map(str, levels), propensity.round(6).tolist())),
    }
    if config.evaluation.figures:
        figures.plot_policy_values(estimates, paths.policy_figure)
    write_json(plain(_rounded(metrics)), paths.policy_metrics)
    return metrics


def _rounded(value):
    """Floats to DIGITS significant digits, so reruns write the same text despite float noise."""
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    if isinstance(value, float):
        return float(f"{value:.{DIGITS}g}")
    return value
