"""Runner of the optimize stage: the segment LP at the budget, its risk, the budget frontier, figures.

The table is the learned one (written by the probabilities stage) or a given file such as
visit_probability.csv, which is sized with the customer file. When the true table is known, the plan
is also valued on it (offerflow.evaluation.truth).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.errors import InputFileError
from offerflow.io import read_table, write_csv, write_json
from offerflow.stages.inputs import read_customers, read_truth


def load_probability_table(params: Params, catalog: Catalog) -> tuple[pd.DataFrame, Path]:
    """The table to optimize on, and the file it came from (named in every error about it)."""
    from offerflow.optimize.planning import size_given_table

    path = catalog.path("probability_table")
    if params.optimize.probability_table == "learned":
        if not path.is_file():
            raise InputFileError(f"{path}: learned segment table not found (run the probabilities stage first)")
        return read_table(path), path
    table = size_given_table(read_table(path), read_customers(catalog), list(params.data.segment_columns), path)
    return table, path


SEGMENT_FIGURES = ("segment_customers_figure", "segment_probabilities_figure", "probability_lines_figure",
                   "true_probabilities_figure")


def draw_segment_figures(params: Params, catalog: Catalog, table: pd.DataFrame) -> None:
    """Who the customers are and how likely each segment converts under each offer: drawn before the LP, so the
    pictures exist even when no plan fits the budget."""
    from offerflow.optimize.study_figures import plot_customer_counts, plot_probability_heatmaps, plot_probability_lines
    from offerflow.optimize.study_grids import offer_tick_labels

    columns, arms, look = params.data.segment_columns, params.arms.names, params.figures
    offers = offer_tick_labels(arms, params.arms.coupon_cost, look.currency)
    learned = params.optimize.probability_table == "learned"
    source = "learned from the campaign history" if learned else f"given table {catalog.relative('probability_table')}"
    plot_customer_counts(read_customers(catalog), columns, catalog.path("segment_customers_figure"), look.segment_names)
    plot_probability_heatmaps(table, columns, arms, catalog.path("segment_probabilities_figure"), look.segment_names,
                              offers, look.outcome, source)
    plot_probability_lines(table, columns, arms, catalog.path("probability_lines_figure"), offers, look.outcome,
                           look.segment_names, params.arms.coupon_cost)
    truth = read_truth(catalog)
    if learned and truth is not None:
        plot_probability_heatmaps(truth, columns, arms, catalog.path("true_probabilities_figure"), look.segment_names,
                                  offers, look.outcome, f"the true table {catalog.relative('true_probabilities')}")
    else:
        catalog.path("true_probabilities_figure").unlink(missing_ok=True)


def plan_minimum(params: Params, metrics: dict):
    """The minimum share the plan was held to: optimize.min_share, raised to the common share in fairness mode."""
    from offerflow.optimize.constraints import per_offer

    settings, arms = params.optimize, params.arms.names
    common = (metrics.get("fairness") or {}).get("common_min_share")
    if not settings.fairness or not common:
        return settings.min_share
    floors = per_offer(settings.min_share, arms, 0.0, "min_share")
    return {arm: max(float(floor), common) for arm, floor in zip(arms, floors)}


def write_infeasible(params: Params, catalog: Catalog, problem, error) -> dict:
    """The segment plan cannot meet its constraints at this budget, but publish uses the customer-level plan:
    record why (and the frontier, which does not depend on the budget) instead of stopping the run."""
    import pandas as pd

    from offerflow.optimize.planning import frontier_report
    from offerflow.optimize.segment_lp import PLAN_COLUMNS
    from offerflow.schema import N_CUSTOMERS, OFFER, SEGMENT_ID

    metrics = {"budget": params.optimize.budget, "feasible": False, "reason": str(error),
               "smallest_feasible_budget": error.smallest_feasible_budget, "frontier": None, "recommended_budget": None}
    settings = params.optimize
    if settings.frontier.enabled:
        frontier, metrics["frontier"] = frontier_report(problem, params)
        write_csv(frontier, catalog.path("budget_frontier"))
        recommendation = metrics["frontier"]["recommendation"]
        metrics["recommended_budget"] = None if recommendation is None else recommendation["budget"]
        if settings.figures:
            from offerflow.optimize.plots import plot_budget_frontier

            plot_budget_frontier(frontier, settings.budget, metrics["recommended_budget"], catalog.path("budget_frontier_figure"))
    if settings.figures:
        from offerflow.figures import plot_message

        plot_message(f"No segment plan at {settings.budget:,.0f} USD:\n{str(error)[:160]}...", catalog.path("allocation_figure"))
    columns = [SEGMENT_ID, *params.data.segment_columns, N_CUSTOMERS, OFFER, *PLAN_COLUMNS]
    write_csv(pd.DataFrame(columns=columns), catalog.path("segment_plan"))
    write_json(metrics, catalog.path("optimize_metrics"))
    return metrics


def run_optimize(params: Params) -> dict:
    """Solve the segment LP for params.yaml's budget; write plan, metrics, frontier and figures."""
    from offerflow.evaluation.truth import segment_plan_on_truth
    from offerflow.optimize.planning import budget_risk_metrics, capped_mean_budget, frontier_report, problem_for_params
    from offerflow.optimize.plots import plot_allocation_shares, plot_budget_frontier
    from offerflow.errors import InfeasiblePlanError
    from offerflow.optimize.segment_lp import budget_prices, plan_problem, round_significant

    catalog = Catalog(params)
    settings = params.optimize
    table, source = load_probability_table(params, catalog)
    problem = problem_for_params(table, params, source)  # checks the table first: its errors name the file
    if settings.figures:
        draw_segment_figures(params, catalog, table)
    mean_budget = settings.budget
    try:
        if settings.risk.cap_quantile is not None:
            mean_budget = capped_mean_budget(problem, settings.budget, settings.risk.cap_quantile, settings.fairness)
        result = plan_problem(problem, mean_budget, settings.fairness)
    except InfeasiblePlanError as error:
        if params.publish.source == "segment_plan":
            raise
        return write_infeasible(params, catalog, problem, error)  # only the customer-level plan is published
    metrics = dict(result.metrics)
    metrics["budget"] = round_significant(settings.budget)
    if not settings.fairness:  # (fairness re-solves its bounds per budget: the dual above is its price)
        left, right = budget_prices(problem, mean_budget)
        metrics["budget_price_left"] = round_significant(left) if left != float("inf") else None  # one dollar less loses
        metrics["budget_price_right"] = round_significant(right)  # one dollar more buys (0 past saturation)
    metrics["probability_table"] = str(settings.probability_table)
    metrics["budget_risk"] = budget_risk_metrics(problem, result, params, mean_budget)
    metrics["frontier"] = None
    if settings.frontier.enabled:
        frontier, metrics["frontier"] = frontier_report(problem, params)
        write_csv(frontier, catalog.path("budget_frontier"))
        if settings.figures:
            recommendation = metrics["frontier"]["recommendation"]
            worth = None if recommendation is None else recommendation.get("target", recommendation.get("value_per_conversion"))
            recommended = None if recommendation is None else recommendation["budget"]
            rule = getattr(settings.frontier.recommend, "rule", None)
            worth_label = "what a conversion is worth" if rule == "max_profit" else "target cost of one more conversion"
            plot_budget_frontier(frontier, settings.budget, recommended, catalog.path("budget_frontier_figure"), worth, worth_label)
    recommendation = (metrics["frontier"] or {}).get("recommendation")
    metrics["recommended_budget"] = None if recommendation is None else recommendation["budget"]
    truth = read_truth(catalog)
    if truth is not None:
        customers = read_customers(catalog)
        metrics["evaluation_on_truth"] = segment_plan_on_truth(
            result.plan, truth, customers, params, catalog.relative("true_probabilities"), mean_budget
        )
    if settings.figures:
        from offerflow.optimize.study_grids import offer_tick_labels

        offers = offer_tick_labels(params.arms.names, params.arms.coupon_cost, params.figures.currency)
        plot_allocation_shares(result.plan, params.data.segment_columns, params.arms.names, catalog.path("allocation_figure"),
                               plan_minimum(params, metrics), params.figures.segment_names, offers)
    stale = [] if settings.frontier.enabled and settings.figures else ["budget_frontier_figure"]
    stale += [] if settings.frontier.enabled else ["budget_frontier"]
    stale += [] if settings.figures else ["allocation_figure", *SEGMENT_FIGURES]
    for name in stale:  # a switched-off output must not show an old run's numbers
        catalog.path(name).unlink(missing_ok=True)
    write_csv(result.plan, catalog.path("segment_plan"))
    write_json(metrics, catalog.path("optimize_metrics"))
    return metrics
