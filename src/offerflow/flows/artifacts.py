"""What a flow run leaves in the Prefect UI: the summary, the plan, and why a stage failed."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from offerflow.catalog import Catalog
from offerflow.config import Params
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
        ("Publish gate", summary.get("gate") or "n/a"),
        ("Published", f"{summary.get('published_source')}: {summary.get('published_offer_counts')}"),
        ("Published expected incremental conversions", fmt(summary.get("published_incremental_conversions"))),
        ("Published expected coupon cost", fmt(summary.get("published_expected_cost"), " USD")),
        ("Run id", summary["run_id"]),
        ("Published to", ", ".join(str(x) for x in summary["published_to"] if x)),
    ]
    lines = ["# offerflow allocation", "", "| | |", "|---|---|"]
    return "\n".join(lines + [f"| {name} | {value} |" for name, value in rows])


def publish_artifacts(params: Params, summary: dict) -> None:
    import pandas as pd

    catalog = Catalog(params)
    create_markdown_artifact(summary_markdown(summary), key="offer-allocation-summary", description="allocation summary")
    plan_path = catalog.path("segment_plan")
    if plan_path.is_file():
        plan = pd.read_csv(plan_path)
        create_table_artifact(plan.round(6).to_dict("records"), key="offer-allocation-plan", description="segment plan")
    details = catalog.path("policy_evaluation_details")
    if details.is_file():
        from offerflow.io import read_json

        keys = ("label", "role", "value", "value_ci_low", "value_ci_high", "incremental_value", "candidate_minus_this",
                "candidate_minus_this_lower_bound", "cost", "share_treated")
        rows = [{key: row.get(key) for key in keys} for row in read_json(details)["policies"]]
        create_table_artifact(rows, key="policy-evaluation", description="the plan vs simple rules at the same spend, held-out history")
    docs = catalog.path("validation_dir") / "data_docs" / "index.html"
    if docs.exists():
        create_link_artifact(docs.resolve().as_uri(), link_text="validation Data Docs", key="offer-allocation-validation")
    for figure in sorted((params.root / "reports/figures").glob("*.png")):
        create_link_artifact(figure.resolve().as_uri(), link_text=figure.stem, key=f"figure-{figure.stem.replace('_', '-')}")

