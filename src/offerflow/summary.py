"""The few lines a marketer reads after a run: the budget, the plan, the gate's verdict, what was published."""

from __future__ import annotations

from typing import Any

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.io import read_json


def _read(catalog: Catalog, name: str) -> dict:
    path = catalog.path(name)
    return read_json(path) if path.is_file() else {}


def pipeline_summary(params: Params, pipelines: list[str] | None = None) -> dict:
    """The summary of the pipelines that ran (default: the coupon plan), as one dict."""
    ran = list(dict.fromkeys(pipelines or ["offers"]))
    summary = offers_summary(params) if "offers" in ran else {}
    if any(name != "offers" for name in ran):
        summary["scenarios"] = [scenario_summary(params, name) for name in ran if name != "offers"]
    return summary


def offers_summary(params: Params) -> dict:
    catalog = Catalog(params)
    optimize, publish, gate = _read(catalog, "optimize_metrics"), _read(catalog, "publish_metrics"), _read(catalog, "policy_evaluation")
    plan = optimize if params.publish.source == "segment_plan" else _read(catalog, "allocate_metrics")
    return {
        "budget": params.optimize.budget,
        "plan_source": params.publish.source,
        "expected_incremental_conversions": plan.get("expected_incremental_conversions", plan.get("objective")),
        "expected_coupon_cost": plan.get("expected_cost"),
        "cost_per_incremental_conversion": _per(plan.get("expected_cost"), plan.get("expected_incremental_conversions")),
        "recommended_budget": optimize.get("recommended_budget"),
        "model_warnings": _read(catalog, "train_metrics").get("warnings", []),
        "gate": gate.get("reason"),
        "gate_passed": gate.get("candidate_published"),
        "published_source": publish.get("source"),
        "published_offer_counts": publish.get("offer_counts"),
        "published_expected_cost": publish.get("assigned_expected_cost"),
        "published_incremental_conversions": publish.get("expected_incremental_conversions"),
        "run_id": publish.get("run_id"),
        "published_to": [catalog.relative("assignments"), publish.get("target")],
    }


def _per(cost: float | None, conversions: float | None) -> float | None:
    return None if cost is None or not conversions else cost / conversions


def _money(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.2f} USD"


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def summary_lines(summary: dict) -> list[str]:
    lines = offers_lines(summary) if "budget" in summary else []
    for scenario in summary.get("scenarios", []):
        lines += [f"offerflow {scenario['scenario']}", *scenario["lines"]]
    return lines


def offers_lines(summary: dict) -> list[str]:
    plan = "segment LP" if summary.get("plan_source") == "segment_plan" else "customer-level allocation"
    lines = [
        "offerflow summary",
        f"  budget:                           {_money(summary['budget'])}",
        f"  plan ({plan}):",
        f"    expected incremental conversions: {_number(summary['expected_incremental_conversions'])}",
        f"    expected coupon cost:             {_money(summary['expected_coupon_cost'])}",
        f"    cost per incremental conversion:  {_money(summary['cost_per_incremental_conversion'])}",
    ]
    if summary.get("recommended_budget") is not None:
        lines.append(f"  recommended budget (frontier):    {_money(summary['recommended_budget'])}")
    for warning in summary.get("model_warnings") or []:  # the ranking metrics' verdict, before the gate's
        lines.append(f"  model check: {warning}")
    if summary.get("gate"):
        lines.append(f"  publish gate: {summary['gate']}")
    counts = summary.get("published_offer_counts") or {}
    if summary.get("run_id"):
        offers = ", ".join(f"{n:,} x {offer}" for offer, n in counts.items())
        lines += [
            f"  published ({summary.get('published_source')}): {offers}",
            f"    expected incremental conversions: {_number(summary.get('published_incremental_conversions'))}",
            f"    expected coupon cost:             {_money(summary.get('published_expected_cost'))}",
            f"  published run {summary['run_id']} to: {', '.join(str(x) for x in summary['published_to'] if x)}",
        ]
    else:
        lines.append("  nothing was published")
    return lines


def scenario_summary(params: Params, scenario: str) -> dict:
    """A scenario run's verdict and publication in a few lines (CLI and Prefect markdown)."""
    catalog = Catalog(params)
    verdict_name = "discounts_policy" if scenario == "discounts" else "journey_metrics"
    published_name = f"{scenario}_publish_metrics" if scenario == "journey" else "discounts_publish_metrics"
    verdict = read_json(catalog.path(verdict_name)) if catalog.path(verdict_name).is_file() else {}
    published = read_json(catalog.path(published_name)) if catalog.path(published_name).is_file() else {}
    gate = verdict.get("gate", {})
    rows = [("Publish gate", gate.get("reason", "n/a")), ("Published policy", gate.get("published", "n/a")),
            ("Run id", published.get("run_id", "n/a")), ("Offers", published.get("offer_counts", {})),
            ("Expected value", published.get("expected_value")), ("Expected cost", published.get("expected_cost")),
            ("Published to", published.get("target"))]
    markdown = "\n".join([f"# offerflow {scenario}", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])
    return {"scenario": scenario, "gate": gate.get("reason"), "published": gate.get("published"),
            "run_id": published.get("run_id"), "markdown": markdown, "lines": [f"  {k}: {v}" for k, v in rows]}
