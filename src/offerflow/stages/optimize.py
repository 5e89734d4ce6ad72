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
    from offerflow.optimize.segment_lp import plan_problem, round_significant

    catalog = Catalog(params)
    settings = params.optimize
    table, source = load_probability_table(params, catalog)
    problem = problem_for_params(table, params, source)
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
            plot_budget_frontier(frontier, settings.budget, recommended, catalog.path("budget_frontier_figure"), worth)
    recommendation = (metrics["frontier"] or {}).get("recommendation")
    metrics["recommended_budget"] = None if recommendation is None else recommendation["budget"]
    truth = read_truth(catalog)
    if truth is not None:
        customers = read_customers(catalog)
        metrics["evaluation_on_truth"] = segment_plan_on_truth(
            result.plan, truth, customers, params, catalog.relative("true_probabilities"), mean_budget
        )
    if settings.figures:
        plot_allocation_shares(result.plan, params.data.segment_columns, params.arms.names, catalog.path("allocation_figure"))
    stale = [] if settings.frontier.enabled and settings.figures else ["budget_frontier_figure"]
    stale += [] if settings.frontier.enabled else ["budget_frontier"]
    stale += [] if settings.figures else ["allocation_figure"]
    for name in stale:  # a switched-off output must not show an old run's numbers
        catalog.path(name).unlink(missing_ok=True)
    write_csv(result.plan, catalog.path("segment_plan"))
    write_json(metrics, catalog.path("optimize_metrics"))
    return metrics
