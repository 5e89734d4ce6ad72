"""Publishing a customer-level plan: exactly one row per customer of the input, or nothing at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from offerflow.config import load_params
from offerflow.errors import InputFileError
from offerflow.catalog import Catalog
from offerflow.io import read_json, write_parquet
from offerflow.publish import PUBLISHED, PlanError, assign_from_customer_plan, open_store, resolve_target
from offerflow.stages import run_publish
from offerflow.io import file_md5
from test_publish_support import COST, make_project, write_customer_plan, write_plan

CUSTOMERS = pd.DataFrame({"customer_id": [30, 10, 20, 40], "segment_id": [2, 1, 1, 2],
                          "prob_dm1": [0.1, 0.2, 0.3, 0.4], "prob_dm2": [0.15, 0.25, 0.35, 0.45],
                          "prob_dm3": [0.2, 0.3, 0.4, 0.5]})


def test_assign_from_customer_plan_takes_the_plan_values():
    plan = pd.DataFrame({"customer_id": [10, 20, 30, 40], "offer": ["dm1", "dm3", "dm2", "dm3"],
                         "predicted_probability": [0.5, 0.6, 0.7, 0.8], "expected_cost": [0.0, 12.0, 7.0, 16.0]})
    result = assign_from_customer_plan(plan, CUSTOMERS[["customer_id", "segment_id"]])
    assert list(result.columns) == ["customer_id", "segment_id", "offer", "predicted_probability", "expected_cost"]
    assert result.to_dict("list") == {
        "customer_id": [10, 20, 30, 40], "segment_id": [1, 1, 2, 2], "offer": ["dm1", "dm3", "dm2", "dm3"],
        "predicted_probability": [0.5, 0.6, 0.7, 0.8], "expected_cost": [0.0, 12.0, 7.0, 16.0]}


def test_assign_from_customer_plan_fills_probability_and_cost_from_the_customers():
    plan = pd.DataFrame({"customer_id": [40, 30, 20, 10], "offer": ["dm2", "dm1", "dm3", "dm2"]})
    result = assign_from_customer_plan(plan, CUSTOMERS, coupon_cost=COST)
    assert result["customer_id"].tolist() == [10, 20, 30, 40]
    assert result["predicted_probability"].tolist() == [0.25, 0.4, 0.1, 0.45]  # prob_<offer> of each customer
    assert result["expected_cost"].tolist() == pytest.approx([2.5, 8.0, 0.0, 4.5])


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"customer_id": [10, 20, 30], "offer": ["dm1"] * 3}, r"1 customers have no plan row \(e.g. \[40\]\), 0 plan rows"),
        ({"customer_id": [10, 20, 30, 40, 99], "offer": ["dm1"] * 5}, r"1 plan rows name unknown customers \(e.g. \[99\]\)"),
        ({"customer_id": [10, 20, 30, 40, 40], "offer": ["dm1"] * 5}, r"1 customer_id values appear more than once.*\[40\]"),
        ({"customer_id": [10, 20, 30, 40], "offer": ["dm1", "dm9", "dm2", "dm1"]}, r"'offer' has values \['dm9'\] that are not arms"),
        ({"customer_id": [10, 20, 30, 40], "offer": ["dm1", None, "dm2", "dm1"]}, r"1 rows without customer_id or offer"),
        ({"customer_id": [10, 20, 30, 40], "offer": ["dm1"] * 4, "predicted_probability": [0.1, 1.5, 0.2, 0.3]},
         r"'predicted_probability' must be a finite number in \[0, 1\].*'customer_id': 20"),
        ({"customer_id": [10, 20, 30, 40], "offer": ["dm2"] * 4, "expected_cost": [1.0, -2.0, 1.0, 1.0]},
         r"'expected_cost' must be a finite number >= 0.*'customer_id': 20"),
        ({"customer_id": ["10", "20", "30", "40"], "offer": ["dm1"] * 4}, r"plan customer_id dtype .* customers int64"),
        ({"customer": [10], "offer": ["dm1"]}, r"missing columns \['customer_id'\]"),
        ({"customer_id": [10, 20, 30, 40], "offer": ["dm1"] * 4, "segment_id": [1, 1, 2, 9]},
         r"1 customers have another segment_id than in the customer file.*'customer_id': 40"),
    ],
    ids=["missing", "unknown", "duplicate", "bad-offer", "no-offer", "probability", "cost", "id-type", "no-id-column", "segment"],
)
def test_assign_from_customer_plan_rejects_plans_naming_the_offenders(plan, message):
    with pytest.raises(PlanError, match=message):
        assign_from_customer_plan(pd.DataFrame(plan), CUSTOMERS, coupon_cost=COST, source="plan.parquet")


def customer_plan_project(tmp_path: Path, with_probabilities: bool = True):
    params = make_project(tmp_path / "p", **{"publish.source": "customer_plan"})
    layout = Catalog(params)
    return params, layout, write_customer_plan(params, with_probabilities=with_probabilities)


def test_run_publish_from_a_customer_plan(tmp_path):
    params, layout, plan = customer_plan_project(tmp_path)
    result = run_publish(params)
    assert result["status"] == PUBLISHED and result["source"] == "customer_plan" and result["rows"] == 5000
    csv = pd.read_csv(layout.assignments)
    expected = plan.sort_values("customer_id").reset_index(drop=True)
    pd.testing.assert_series_equal(csv["customer_id"], expected["customer_id"])
    assert csv["offer"].tolist() == expected["offer"].tolist()
    np.testing.assert_allclose(csv["predicted_probability"], expected["predicted_probability"], rtol=1e-9)
    customers = pd.read_csv(params.path(params.data.customers))
    truth = pd.read_csv(params.path(params.data.true_probabilities))
    segments = customers.merge(truth[["age_cat", "freq_cat", "segment_id"]], on=["age_cat", "freq_cat"]).sort_values("customer_id")
    assert csv["segment_id"].tolist() == segments["segment_id"].tolist()  # numbered like visit_probability.csv
    assert result["offer_counts"] == {arm: int((plan["offer"] == arm).sum()) for arm in COST}
    # Objective and cost as the allocate stage reported them; its certified gap stands in for a solver status.
    assert (result["objective"], result["solver_status"]) == (321.5, "relative gap 0")
    assert result["expected_cost"] == pytest.approx(plan["expected_cost"].sum())
    with open_store(resolve_target(params)) as store:
        record = store.run(result["run_id"])
    assert record["source"] == "customer_plan"
    assert record["input_hashes"]["customer_plan"]["md5"] == file_md5(Catalog(params).customer_plan)
    assert "segment_plan" not in record["input_hashes"]


def test_customer_plan_without_probabilities_uses_the_customer_probability_table(tmp_path):
    params, layout, plan = customer_plan_project(tmp_path, with_probabilities=False)
    customers = pd.read_csv(params.path(params.data.customers))
    rng = np.random.default_rng(5)
    table = pd.DataFrame({"customer_id": customers["customer_id"], **{f"prob_{a}": rng.uniform(0, 0.5, len(customers)) for a in COST}})
    write_parquet(table, layout.customer_probabilities)
    layout.allocate_metrics.write_text('{"objective": 123.5, "expected_cost": 9000.0, "budget": 9000, "solver": {"termination": "optimal"}}')
    params = load_params(params.root / "params.yaml", overrides={"publish.source": "customer_plan"})
    result = run_publish(params)
    csv = pd.read_csv(layout.assignments).merge(table, on="customer_id")
    chosen = np.array([row[f"prob_{row['offer']}"] for _, row in csv.iterrows()])
    np.testing.assert_allclose(csv["predicted_probability"], chosen, rtol=1e-9)
    np.testing.assert_allclose(csv["expected_cost"], csv["offer"].map(COST) * chosen, rtol=1e-9)
    assert (result["objective"], result["expected_cost"], result["solver_status"]) == (123.5, 9000.0, "optimal")
    assert read_json(layout.publish_metrics)["budget"] == 9000


def test_missing_customer_plan_file_is_a_clear_error(tmp_path):
    params = make_project(tmp_path / "p", **{"publish.source": "customer_plan"})
    with pytest.raises(InputFileError, match=r"customer_plan.parquet: file not found"):
        run_publish(params)


def test_customer_plan_for_other_customers_is_rejected_before_anything_is_written(tmp_path):
    params, layout, plan = customer_plan_project(tmp_path)
    segment_params = load_params(params.root / "params.yaml", overrides={"publish.source": "segment_plan"})
    write_plan(segment_params, layout)
    first = run_publish(segment_params)  # a previous publication that must stay current
    before = {p: p.read_bytes() for p in (layout.assignments, layout.publish_metrics, params.path(params.publish.sqlite_path))}
    write_parquet(plan[plan["customer_id"] != plan["customer_id"].iloc[7]], Catalog(params).customer_plan)
    with pytest.raises(PlanError, match=rf"1 customers have no plan row \(e.g. \[{plan['customer_id'].iloc[7]}\]\)"):
        run_publish(params)
    assert {p: p.read_bytes() for p in before} == before
    with open_store(resolve_target(params)) as store:
        assert store.run_ids() == [first["run_id"]] and store.current_run_id() == first["run_id"]
