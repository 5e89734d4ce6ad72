"""What a flow run leaves in the Prefect UI: the summary, the tables behind the decision, the pictures,
and why a stage failed.

Everything is stored in the artifact itself (tables as table artifacts, pictures as PNG data inside
markdown), so it opens from any browser that reaches the Prefect UI; a file:// link to the machine that
ran the flow does not.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.io import read_json
from offerflow.summary import scenario_summary  # noqa: F401 - the flows' scenario artifacts


def report_failure(stage: str, error: BaseException, exit_code: int) -> None:
    """A failed stage leaves an artifact saying why (for validation: every failed expectation)."""
    create_markdown_artifact(
        f"# offerflow {stage} failed (exit code {exit_code})\n\n**{type(error).__name__}**\n\n```\n{error}\n```\n",
        key=f"offerflow-{stage}-failure",
        description=f"why {stage} failed",
    )


def summary_markdown(summary: dict) -> str:
    def fmt(value: Any, unit: str = "") -> str:
        return "n/a" if value is None else f"{value:,.2f}{unit}"

    rows = [
        ("Budget", fmt(summary["budget"], " USD")),
        ("Expected incremental conversions", fmt(summary["expected_incremental_conversions"])),
        ("Expected coupon cost", fmt(summary["expected_coupon_cost"], " USD")),
        ("Cost per incremental conversion", fmt(summary["cost_per_incremental_conversion"], " USD")),
        ("Recommended budget", fmt(summary.get("recommended_budget"), " USD")),
        ("Model check", "; ".join(summary.get("model_warnings") or []) or "no warning"),
        ("Publish gate", summary.get("gate") or "n/a"),
        ("Published", f"{summary.get('published_source')}: {summary.get('published_offer_counts')}"),
        ("Published expected incremental conversions", fmt(summary.get("published_incremental_conversions"))),
        ("Published expected coupon cost", fmt(summary.get("published_expected_cost"), " USD")),
        ("Run id", summary["run_id"]),
        ("Published to", ", ".join(str(x) for x in summary["published_to"] if x)),
    ]
    lines = ["# offerflow allocation", "", "| | |", "|---|---|"]
    return "\n".join(lines + [f"| {name} | {value} |" for name, value in rows])


def clean(value: Any) -> Any:
    """JSON-safe cell: NaN/inf become empty, numbers keep 6 significant decimals."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    if hasattr(value, "item"):  # numpy scalars
        return clean(value.item())
    return value


def records(frame) -> list[dict]:
    return [{key: clean(value) for key, value in row.items()} for row in frame.to_dict("records")]


def learner_rows(train_metrics: dict) -> list[dict]:
    """One row per uplift learner compared out of fold; the chosen one marked."""
    selection = train_metrics.get("selection") or {}
    chosen = selection.get("chosen")
    return [{"learner": name, "chosen": name == chosen, "criterion": selection.get("criterion"),
             **{key: clean(value) for key, value in sorted(scores.items())}}
            for name, scores in sorted((selection.get("scores") or {}).items())]


def validation_rows(summary: dict) -> list[dict]:
    """One row per validated dataset: its suite, size, expectations evaluated and what failed."""
    rows = []
    for name, result in sorted((summary.get("datasets") or {}).items()):
        failures = result.get("failures") or []
        rows.append({"dataset": name, "path": result.get("path"), "suite": result.get("suite"), "rows": result.get("rows"),
                     "expectations_evaluated": result.get("expectations_evaluated"), "success": result.get("success"),
                     "failed": len(failures), "failures": "; ".join(str(f) for f in failures)[:500]})
    return rows


def image_markdown(figure: Path) -> str:
    """The PNG inside the markdown as a data: URI, which the Prefect UI renders."""
    data = base64.b64encode(figure.read_bytes()).decode("ascii")
    return f"# {figure.stem.replace('_', ' ')}\n\n![{figure.stem}](data:image/png;base64,{data})\n"


def publish_artifacts(params: Params, summary: dict) -> None:
    """Summary, segment plan, budget frontier, learner comparison, validation, policy evaluation, figures."""
    import pandas as pd

    catalog = Catalog(params)
    create_markdown_artifact(summary_markdown(summary), key="offer-allocation-summary", description="allocation summary")
    plan_path = catalog.path("segment_plan")
    if plan_path.is_file():
        create_table_artifact(records(pd.read_csv(plan_path)), key="offer-allocation-plan", description="segment plan")
    frontier = catalog.path("budget_frontier")
    if frontier.is_file():
        create_table_artifact(records(pd.read_csv(frontier)), key="budget-frontier",
                              description="what each budget buys: incremental conversions, cost, marginal cost")
    train = catalog.path("train_metrics")
    rows = learner_rows(read_json(train)) if train.is_file() else []
    if rows:
        create_table_artifact(rows, key="learner-comparison", description="uplift learners compared out of fold")
    validation = catalog.path("validation_summary")
    if validation.is_file():
        create_table_artifact(validation_rows(read_json(validation)), key="validation-results",
                              description="Great Expectations suites per input (Data Docs: reports/validation/data_docs)")
    details = catalog.path("policy_evaluation_details")
    if details.is_file():
        keys = ("label", "role", "value", "value_ci_low", "value_ci_high", "incremental_value", "candidate_minus_this",
                "candidate_minus_this_lower_bound", "cost", "share_treated")
        rows = [{key: clean(row.get(key)) for key in keys} for row in read_json(details)["policies"]]
        create_table_artifact(rows, key="policy-evaluation", description="the plan vs simple rules at the same spend, held-out history")
    figure_artifacts(params, "offers")


def figure_artifacts(params: Params, pipeline: str) -> list[Path]:
    """Each picture the pipeline's stages declare and wrote, as a markdown artifact with the PNG inside."""
    from offerflow.pipeline import enabled_stages

    catalog = Catalog(params)
    figures = [catalog.path(out.name) for stage in enabled_stages(params, pipeline=pipeline) for out in stage.outputs_for(params)]
    figures = [figure for figure in figures if figure.suffix == ".png" and figure.is_file()]
    for figure in figures:
        create_markdown_artifact(image_markdown(figure), key=f"figure-{figure.stem.replace('_', '-')}", description=figure.stem)
    return figures
