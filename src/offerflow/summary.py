"""The few numbers a marketer wants after a run, read back from the stage outputs (CLI and Prefect)."""

from __future__ import annotations

from typing import Any

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.io import read_json


def pipeline_summary(params: Params) -> dict:
    catalog = Catalog(params)
    optimize_path = catalog.path("optimize_metrics")
    optimize = read_json(optimize_path) if optimize_path.is_file() else {}
    publish_path = catalog.path("publish_metrics")
    publish = read_json(publish_path) if publish_path.is_file() else {}
    return {
        "budget": optimize.get("budget", params.optimize.budget),
        "expected_incremental_conversions": optimize.get("expected_incremental_conversions", optimize.get("objective")),
        "expected_coupon_cost": optimize.get("expected_cost"),
        "cost_per_incremental_conversion": optimize.get("cost_per_incremental_conversion"),
        "recommended_budget": optimize.get("recommended_budget"),
        "run_id": publish.get("run_id"),
        "published_to": [catalog.relative("assignments"), publish.get("target")],
    }


def _money(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.2f} USD"


def summary_lines(summary: dict) -> list[str]:
    conversions = summary["expected_incremental_conversions"]
    lines = [
        "offerflow summary",
        f"  budget:                           {_money(summary['budget'])}",
        f"  expected incremental conversions: {conversions:,.2f}" if conversions is not None else "  expected incremental conversions: n/a",
        f"  expected coupon cost:             {_money(summary['expected_coupon_cost'])}",
        f"  cost per incremental conversion:  {_money(summary['cost_per_incremental_conversion'])}",
    ]
    if summary.get("recommended_budget") is not None:
        lines.append(f"  recommended budget (frontier):    {_money(summary['recommended_budget'])}")
    lines.append(f"  published run {summary['run_id']} to: {', '.join(str(x) for x in summary['published_to'] if x)}")
    return lines
