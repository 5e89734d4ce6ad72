"""Every file the pipeline reads or writes, named once.

Inputs come from params.yaml keys (the user's files); everything a stage generates has a fixed
path under the project root. Stage runners, the pipeline declaration (and so dvc.yaml, the Prefect
cache keys and the staleness checks) and the tests all find files here, never by spelling a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from offerflow.config import Params

# User inputs: catalog name -> the params.yaml key that holds the path.
INPUTS: dict[str, str] = {
    "customers": "data.customers",
    "user_history": "data.history",
    "true_probabilities": "data.true_probabilities",
    "given_probability_table": "optimize.probability_table",
    "suites": "validate.suites_dir",
    "exclude_list": "data.exclude",
    "discounts_observational_file": "discounts.observational.path",
    "discounts_randomized_file": "discounts.randomized.path",
    "user_journey_log": "journey.log.path",
}

# Generated files: catalog name -> path relative to the project root.
GENERATED: dict[str, str] = {
    "simulated_history": "data/raw/simulated_history.csv",
    "validation_dir": "reports/validation",
    "validation_summary": "reports/validation/summary.json",
    "model": "models/uplift_model.joblib",
    "model_metadata": "models/uplift_model.json",
    "train_metrics": "reports/train_metrics.json",
    "train_gain_curve": "reports/plots/train_cumulative_gain.csv",
    "train_qini_curve": "reports/plots/train_qini.csv",
    "train_figure": "reports/figures/train_uplift_curves.png",
    "customer_probabilities": "data/processed/customer_probabilities.parquet",
    "segment_probabilities": "data/processed/segment_probabilities.csv",
    "probabilities_metrics": "reports/probabilities_metrics.json",
    "segment_plan": "data/processed/segment_plan.csv",
    "optimize_metrics": "reports/optimize_metrics.json",
    "budget_frontier": "reports/plots/budget_frontier.csv",
    "budget_recommendation": "reports/plots/budget_recommendation.csv",
    "budget_frontier_figure": "reports/figures/budget_frontier.png",
    "allocation_figure": "reports/figures/allocation_shares.png",
    "segment_customers_figure": "reports/figures/segment_customers.png",
    "segment_probabilities_figure": "reports/figures/segment_probabilities.png",
    "true_probabilities_figure": "reports/figures/true_probabilities.png",
    "probability_lines_figure": "reports/figures/segment_probability_lines.png",
    "customer_allocation_figure": "reports/figures/customer_allocation.png",
    "customer_plan": "data/processed/customer_plan.parquet",
    "allocate_metrics": "reports/allocate_metrics.json",
    "policy_evaluation": "reports/policy_evaluation.json",
    "policy_evaluation_details": "reports/policy_evaluation_details.json",
    "policy_evaluation_plot": "reports/plots/policy_evaluation.csv",
    "policy_evaluation_figure": "reports/figures/policy_evaluation.png",
    "gate_plan": "data/processed/gate_plan.parquet",
    "assignments": "data/published/assignments.csv",
    "publish_metrics": "reports/publish_metrics.json",
    "stamps_dir": "reports/lineage",
    # personalized discounts
    "discounts_validation": "reports/validation/discounts.json",
    "discounts_observational": "data/processed/discounts_observational.parquet",
    "discounts_randomized": "data/processed/discounts_randomized.parquet",
    "discount_model": "models/discount_effect.joblib",
    "discount_effects": "data/processed/discount_effects.parquet",
    "discounts_train_metrics": "reports/discounts_train_metrics.json",
    "discounts_evaluation": "reports/discounts_evaluation.json",
    "discounts_elasticity_plot": "reports/plots/discounts_cumulative_elasticity.csv",
    "discounts_gain_plot": "reports/plots/discounts_cumulative_gain.csv",
    "discounts_scatter_figure": "reports/figures/discounts_profit_vs_discount.png",
    "discounts_effects_figure": "reports/figures/discounts_effect_distribution.png",
    "discounts_curves_figure": "reports/figures/discounts_curves.png",
    "discount_plan": "data/processed/discount_plan.parquet",
    "discounts_policy": "reports/discounts_policy.json",
    "discounts_policy_figure": "reports/figures/discounts_policy_values.png",
    "discounts_assignments": "data/published/discount_assignments.csv",
    "discounts_publish_metrics": "reports/discounts_publish_metrics.json",
    # customer journeys
    "simulated_journey_log": "data/raw/journey_log.csv",
    "journey_validation": "reports/validation/journey_log.json",
    "journey_models": "models/journey_models.joblib",
    "journey_train_metrics": "reports/journey_train_metrics.json",
    "journey_evaluation_table": "reports/journey_evaluation.csv",
    "journey_metrics": "reports/journey_metrics.json",
    "journey_action_shares": "reports/plots/journey_action_shares.csv",
    "journey_values_figure": "reports/figures/journey_policy_values.png",
    "journey_actions_figure": "reports/figures/journey_action_shares.png",
    "journey_next_actions": "data/processed/journey_next_actions.parquet",
    "journey_assignments": "data/published/journey_assignments.csv",
    "journey_publish_metrics": "reports/journey_publish_metrics.json",
}


def stamp_name(stage: str) -> str:
    """Catalog name of the lineage stamp a stage writes (see offerflow.lineage)."""
    return f"stamp:{stage}"


def headline_name(stage: str) -> str:
    """Catalog name of a stage's headline metrics, reports/metrics/<stage>.json (see offerflow.headline)."""
    return f"headline:{stage}"


@dataclass(frozen=True)
class Catalog:
    """Paths of one project (params.root), resolved against its params."""

    params: Params

    @property
    def root(self) -> Path:
        return self.params.root

    def __getattr__(self, name: str) -> Path:
        """`catalog.segment_plan` is `catalog.path("segment_plan")`: generated files read as attributes."""
        if name in GENERATED or name in ("history", "probability_table", "journey_log"):
            return self.path(name)
        raise AttributeError(f"{type(self).__name__} has no file {name!r}")

    def relative(self, name: str) -> str | None:
        """Path relative to the root (as the user wrote it for inputs); None for an unset optional input."""
        if name.startswith("stamp:"):
            return f"{GENERATED['stamps_dir']}/{name.split(':', 1)[1]}.json"
        if name.startswith("headline:"):
            return f"reports/metrics/{name.split(':', 1)[1]}.json"
        if name == "history":
            return self.relative("simulated_history" if self.params.simulate.enabled else "user_history")
        if name == "probability_table":
            learned = self.params.optimize.probability_table == "learned"
            return self.relative("segment_probabilities" if learned else "given_probability_table")
        if name == "journey_log":
            return self.relative("simulated_journey_log" if self.params.journey.testbed is not None else "user_journey_log")
        if name in GENERATED:
            return GENERATED[name]
        if name not in INPUTS:
            raise KeyError(f"no file {name!r} in the catalog")
        value = self.params.value(INPUTS[name])
        if value is None or value == "learned":
            return None
        return Path(value).as_posix()

    def path(self, name: str) -> Path:
        """Absolute path of a catalog entry; an unset optional input is a KeyError naming its key."""
        relative = self.relative(name)
        if relative is None:
            raise KeyError(f"{name}: params key {INPUTS.get(name, name)} is not set")
        return self.params.path(relative)

    def optional(self, name: str) -> Path | None:
        """Absolute path, or None when the input is not configured."""
        relative = self.relative(name)
        return None if relative is None else self.params.path(relative)

    def dvc_path(self, name: str) -> str:
        """The path as dvc.yaml writes it: `${key}` for inputs (DVC reads params.yaml), literal otherwise."""
        if name == "journey_log":
            return self.dvc_path("simulated_journey_log" if self.params.journey.testbed is not None else "user_journey_log")
        if name == "history":
            return self.dvc_path("simulated_history" if self.params.simulate.enabled else "user_history")
        if name == "probability_table":
            learned = self.params.optimize.probability_table == "learned"
            return self.dvc_path("segment_probabilities" if learned else "given_probability_table")
        if name in INPUTS:
            return "${" + INPUTS[name] + "}"
        relative = self.relative(name)
        assert relative is not None
        return relative

    def is_input(self, name: str) -> bool:
        """Whether the file belongs to the user (never written by any stage)."""
        if name == "history":
            return not self.params.simulate.enabled
        if name == "probability_table":
            return self.params.optimize.probability_table != "learned"
        if name == "journey_log":
            return self.params.journey.testbed is None
        return name in INPUTS
