"""Decision quality (issue item 7): plans optimized on learned tables, valued on the true table.

On the randomized example with the default history size (params.yaml: simulate.campaigns) and the
default learner, over 10 seeds: the learned plan reaches >= 97% of the true optimum's incremental
conversions on average, and its true expected coupon cost is within 1% of the budget on average.
A single seed's cost misses the budget by about 1% either way: the coupon arms' conversion rates
are known from ~6,700 history rows each, a relative standard error of about 1% on what a plan spends.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import ROOT, SEED, set_params
from offerflow.config import load_params
from offerflow.stages import run_simulate, run_train
from offerflow.catalog import Catalog
from offerflow.uplift.decision_quality import decision_quality


def test_learned_tables_lead_to_near_optimal_plans_within_budget():
    params = load_params(ROOT / "params.yaml")
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    report = decision_quality(
        customers, truth, params.arms.names, params.arms.control, params.arms.coupon_cost,
        list(params.data.segment_columns), params.train, params.simulate.campaigns,
        seeds=[SEED + k for k in range(10)], budget=10_000, min_share=0.1,
        monotone_arms=params.probabilities.monotone_arms,
    )
    assert report["seeds"] == 10 and len(report["per_seed"]) == 10
    assert report["ratio_to_true_optimum_mean"] >= 0.97, report
    assert abs(report["cost_deviation_mean"]) <= 0.01, report
    assert report["ratio_to_true_optimum_min"] >= 0.93, report
    assert report["cost_deviation_abs_max"] <= 0.03, report


def test_train_stage_reports_decision_quality_when_enabled(project):
    set_params(project, train__decision_quality={"enabled": True, "seeds": 2, "budget": 10000, "min_share": 0.1},
               train__candidates=[], train__evaluation__figures=False)
    params = load_params(project / "params.yaml")
    layout = Catalog(params)
    run_simulate(params)
    run_train(params)
    report = json.loads(layout.train_metrics.read_text())["decision_quality"]
    assert [row["seed"] for row in report["per_seed"]] == [params.simulate.seed, params.simulate.seed + 1]
    assert 0.9 < report["ratio_to_true_optimum_mean"] < 1.05  # above 1 only by overspending
    assert report["true_optimum"] > 0
