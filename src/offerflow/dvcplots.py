"""The plots `dvc plots show` draws, declared with the outputs they read (see offerflow.pipeline).

Each definition names x, every y column (a plot with only `x:` draws just the CSV's last column), a
title and axis labels, so the rendered page says what is compared: the model's uplift curves against
random targeting and the heuristic, the budget frontier with the recommended budget, the allocation
shares, the plan against the baselines. Column lists follow params (the offers, the heuristic), which
is why dvc.yaml is generated. Custom templates live in .dvc/plots/ (DVC's template folder).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from offerflow.io import read_json, write_csv

if TYPE_CHECKING:
    from offerflow.catalog import Catalog
    from offerflow.config import Params

PlotDefinitions = Callable[["Params", str], dict[str, dict]]

CURVES = {
    "cumulative_gain": ("cumulative gain", "incremental conversions per customer, cumulated"),
    "qini": ("Qini curve", "Qini: incremental conversions per customer vs control, cumulated"),
}


def _treated(params: "Params") -> list[str]:
    return [arm for arm in params.arms.names if arm != params.arms.control]


def uplift_curves(kind: str) -> PlotDefinitions:
    """One plot per treated offer: the chosen model's curve, random targeting and the heuristic (out of fold)."""
    title, y_label = CURVES[kind]

    def definitions(params: "Params", path: str) -> dict[str, dict]:
        rankings = ["model", "random"] + (["heuristic"] if params.train.evaluation.heuristic is not None else [])
        return {
            f"uplift_{kind}_{arm}": {
                "template": "simple",
                "x": "population_share",
                "y": {path: [f"{arm}_{ranking}" for ranking in rankings]},
                "title": f"{arm} vs {params.arms.control}: {title}, model vs {' vs '.join(rankings[1:])} (out of fold)",
                "x_label": "share of customers targeted, best-scored first",
                "y_label": y_label,
            }
            for arm in _treated(params)
        }

    return definitions


def budget_frontier(params: "Params", path: str) -> dict[str, dict]:
    """Conversions by budget with the recommended budget as a separate point, and the cost per conversion."""
    from offerflow.catalog import Catalog

    point = Catalog(params).relative("budget_recommendation")
    return {
        "budget_frontier": {
            "template": "line_points",
            "x": "budget",
            "y": {path: "expected_incremental_conversions", point: "expected_incremental_conversions"},
            "title": "Budget frontier: expected incremental conversions by budget (single point: the recommended budget)",
            "x_label": "budget (USD of expected coupon cost)",
            "y_label": "expected incremental conversions",
        },
        "budget_frontier_costs": {
            "template": "simple",
            "x": "budget",
            "y": {path: ["cost_per_incremental_conversion", "marginal_cost_per_incremental_conversion"]},
            "title": "Cost per incremental conversion by budget: average and marginal",
            "x_label": "budget (USD of expected coupon cost)",
            "y_label": "USD per incremental conversion",
        },
    }


def allocation_shares(params: "Params", path: str) -> dict[str, dict]:
    """The segment plan as stacked bars: each segment's customers split across the offers."""
    return {
        "allocation_shares": {
            "template": "stacked_shares",
            "x": "share",
            "y": {path: "segment_id"},
            "title": "Segment plan at the budget: share of each segment's customers per offer",
            "x_label": "share of the segment's customers",
            "y_label": "segment (" + " x ".join(params.data.segment_columns) + ")",
        }
    }


def policy_values(params: "Params", path: str) -> dict[str, dict]:
    """The plan and the baselines on held-out history: incremental value over treating nobody."""
    return {
        "policy_evaluation": {
            "template": "bar_horizontal",
            "x": "incremental_value",
            "y": {path: "label"},
            "title": "Held-out history: incremental value of the plan and the simple baselines over treating nobody",
            "x_label": "incremental value per customer (conversions, or USD with a value objective)",
            "y_label": "policy",
        }
    }


def journey_action_shares(params: "Params", path: str) -> dict[str, dict]:
    return {
        "journey_action_shares": {
            "template": "stacked_actions",
            "x": "share",
            "y": {path: "step"},
            "title": "Customer journeys: share of customers per next action at each step",
            "x_label": "share of customers",
            "y_label": "journey step",
        }
    }


def discount_curves(kind: str) -> PlotDefinitions:
    """Every ranking's curve of the discount model against random and the rule (columns from the CSV header)."""
    labels = {"elasticity": ("cumulative profit elasticity of a discount dollar", "USD of profit per discount USD"),
              "gain": ("cumulative profit gain", "USD of profit per customer, cumulated")}
    title, y_label = labels[kind]

    def definitions(params: "Params", path: str) -> dict[str, dict]:
        return {
            f"discounts_{kind}": {
                "template": "simple",
                "x": "population_share",
                "y": {path: discount_rankings(params)},
                "title": f"Discounts on the randomized test: {title} by ranking",
                "x_label": "share of customers targeted, best-ranked first",
                "y_label": y_label,
            }
        }

    return definitions


def discount_rankings(params: "Params") -> list[str]:
    """Column names of the discount curves: the model, the rule and random (offerflow.stages.discounts)."""
    return ["model", params.discounts.evaluation.rule.name, "random"]


def write_budget_recommendation(params: "Params", catalog: "Catalog") -> None:
    """One row, the frontier's recommended budget (empty without a recommendation), for the frontier plot."""
    import pandas as pd

    metrics = read_json(catalog.path("optimize_metrics"))
    recommendation = (metrics.get("frontier") or {}).get("recommendation")
    columns = ["budget", "expected_incremental_conversions", "expected_cost", "rule"]
    rows = [] if recommendation is None else [{column: recommendation.get(column) for column in columns}]
    write_csv(pd.DataFrame(rows, columns=columns), catalog.path("budget_recommendation"))
