"""`offerflow` end to end: the whole pipeline from the command line, and its exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import set_params

OFFERFLOW = str(Path(sys.executable).parent / "offerflow")


def offerflow(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([OFFERFLOW, *args], cwd=project, capture_output=True, text=True)


@pytest.mark.slow
def test_run_publishes_one_offer_per_customer_within_budget(example_cli_run):
    project, result = example_cli_run.project, example_cli_run.result  # the session's `offerflow run` (conftest)
    assert "expected incremental conversions" in result.stdout
    assert "recommended budget (frontier)" in result.stdout
    assert "publish gate: candidate beats the best baseline" in result.stdout  # the example's plan earns its place
    allocation = json.loads((project / "reports/allocate_metrics.json").read_text())
    assert allocation["expected_cost"] <= 10_000 + 1e-6 and allocation["objective"] > 0
    published = json.loads((project / "reports/publish_metrics.json").read_text())
    assert published["source"] == "customer_plan" and published["assigned_expected_cost"] <= 10_000 + 1e-6
    assignments = pd.read_csv(project / "data/published/assignments.csv")
    customers = pd.read_csv(project / "data/external/customers.csv")
    assert sorted(assignments["customer_id"]) == sorted(customers["customer_id"])
    assert set(assignments["offer"]) <= {"dm1", "dm2", "dm3"}
    assert published["offer_counts"] == assignments["offer"].value_counts().to_dict()
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 20  # quiet: offerflow's lines only


def test_bad_params_exit_2_and_name_the_key(project):
    set_params(project, optimize__budget=-3)
    result = offerflow(project, "optimize")
    assert result.returncode == 2
    assert "optimize.budget" in result.stderr


@pytest.mark.slow
def test_corrupt_input_exits_3_and_publishes_nothing(project):
    customers = pd.read_csv(project / "data/external/customers.csv")
    customers.loc[3, "customer_id"] = customers.loc[4, "customer_id"]
    customers.to_csv(project / "data/external/customers.csv", index=False)
    result = offerflow(project, "run", "--no-progress")
    assert result.returncode == 3, result.stderr
    assert "customer_id" in result.stderr
    assert not (project / "data/published").exists()
    assert not (project / "models").exists()


def test_infeasible_budget_exits_4(project):
    set_params(project, optimize__probability_table="data/external/visit_probability.csv", optimize__budget=100,
               publish__source="segment_plan")
    unchecked = offerflow(project, "optimize")  # no stage reads inputs that were never validated
    assert unchecked.returncode == 3 and "validate" in unchecked.stderr, unchecked.stderr
    for stage in ("simulate", "validate"):
        assert offerflow(project, stage).returncode == 0
    result = offerflow(project, "optimize")
    assert result.returncode == 4, result.stderr
    assert "smallest feasible budget" in result.stderr.lower()
    # publishing the customer-level plan: the segment plan's infeasibility is recorded, the run goes on
    set_params(project, publish__source="customer_plan")
    recorded = offerflow(project, "optimize")
    assert recorded.returncode == 0, recorded.stderr
    metrics = json.loads((project / "reports/optimize_metrics.json").read_text())
    table = pd.read_csv(project / "data/external/visit_probability.csv")
    sizes = pd.read_csv(project / "data/external/customers.csv").value_counts(["age_cat", "freq_cat"]).rename("n").reset_index()
    table = table.merge(sizes, on=["age_cat", "freq_cat"])
    floor = (0.1 * table["n"] * (10 * table["prob_dm2"] + 20 * table["prob_dm3"])).sum()  # 10% of each segment each coupon
    assert metrics["feasible"] is False and metrics["smallest_feasible_budget"] == pytest.approx(floor, abs=0.01)


def test_a_validating_run_prints_a_few_lines_of_its_own(project):
    """Great Expectations and the other libraries stay at WARNING unless --verbose: offerflow's lines only."""
    for stage in ("simulate", "validate"):
        result = offerflow(project, stage)
        assert result.returncode == 0, result.stderr
        lines = (result.stdout + result.stderr).splitlines()
        assert len(lines) <= 20, lines[:30]
        assert not [line for line in lines if line.startswith(("INFO", "DEBUG")) and not line.split()[1].startswith("offerflow")]
    assert json.loads(result.stdout)["validate"]["success"] is True
