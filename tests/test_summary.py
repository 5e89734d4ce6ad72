"""The summary a marketer reads: the model's ranking check is shown before the gate's verdict."""

from __future__ import annotations

from offerflow.flows.artifacts import summary_markdown
from offerflow.summary import offers_lines

SUMMARY = {
    "budget": 10_000.0, "plan_source": "customer_plan", "expected_incremental_conversions": 412.5,
    "expected_coupon_cost": 9_990.0, "cost_per_incremental_conversion": 24.22, "recommended_budget": None,
    "model_warnings": ["t_logistic does not beat the heuristic 'most frequent first' for dm2 outside its interval"],
    "gate": "candidate beats the best baseline", "published_source": "customer_plan",
    "published_offer_counts": {"dm1": 3000, "dm2": 1500, "dm3": 500}, "published_expected_cost": 9_990.0,
    "published_incremental_conversions": 412.5, "run_id": "r1", "published_to": ["assignments.csv", None],
}


def test_model_warnings_come_before_the_gate_in_the_cli_summary():
    lines = offers_lines(SUMMARY)
    check = next(i for i, line in enumerate(lines) if line.startswith("  model check: t_logistic does not beat"))
    gate = next(i for i, line in enumerate(lines) if line.startswith("  publish gate:"))
    assert check < gate
    assert not any("model check" in line for line in offers_lines({**SUMMARY, "model_warnings": []}))


def test_the_prefect_summary_names_the_model_check():
    assert "| Model check | t_logistic does not beat the heuristic" in summary_markdown(SUMMARY)
    assert "| Model check | no warning |" in summary_markdown({**SUMMARY, "model_warnings": []})
