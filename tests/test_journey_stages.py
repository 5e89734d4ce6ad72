"""The journey scenario through its declared stages (as `offerflow run --pipeline journey` runs them) and its flow:
simulate, validate, train, evaluate with the gate, publish the next actions through the publishing layer."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from conftest import copy_project, set_params
from offerflow.catalog import Catalog
from offerflow.config import load_params
from offerflow.errors import StaleInputError
from offerflow.pipeline import enabled_stages, run_stage

SMALL = {  # the small testbed of tests/test_journey_support.py, as params.yaml keys
    "journey__enabled": True, "journey__horizon": 12, "journey__campaign_every": 3,
    "journey__budget": {"per_customer": 5.0, "spend_source": "simulation", "simulation_customers": 5000,
                        "tolerance": 0.03, "max_evaluations": 8},
    "journey__evaluation": {"monte_carlo_customers": 30000, "interval_level": 0.95, "delta": 0.05,
                            "bootstrap_samples": 200, "bound_split": 0.05},
}


def small_project(root: Path) -> Path:
    project = copy_project(root)
    set_params(project, **SMALL)
    tree_path = project / "params.yaml"
    import yaml

    tree = yaml.safe_load(tree_path.read_text())
    tree["journey"]["testbed"]["customers"] = 5000
    model = {"kind": "lightgbm", "params": {"n_estimators": 60, "learning_rate": 0.15, "num_leaves": 15, "min_child_samples": 40}}
    tree["journey"]["learn"]["q_model"] = tree["journey"]["learn"]["response_model"] = model
    tree_path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return project


@pytest.fixture(scope="module")
def journey_project(tmp_path_factory) -> Path:
    project = small_project(tmp_path_factory.mktemp("journey") / "project")
    params = load_params(project / "params.yaml")
    for stage in enabled_stages(params, pipeline="journey"):
        run_stage(stage.name, params)
    return project


@pytest.mark.slow
def test_the_journey_stages_learn_check_and_publish_next_actions(journey_project):
    params = load_params(journey_project / "params.yaml")
    catalog = Catalog(params)
    assert [s.name for s in enabled_stages(params, pipeline="journey")] == [
        "journey_simulate", "journey_validate", "journey_train", "journey_evaluate", "journey_publish"]
    metrics = json.loads(catalog.path("journey_metrics").read_text())
    gate = metrics["gate"]
    assert gate["candidate"] == "fitted_q" and {c["name"] for c in gate["comparisons"]} >= {"random", "one_step"}
    assert gate["ci_low"] <= gate["difference"] <= gate["ci_high"]
    truth = metrics["policies"]
    assert truth["fitted_q"]["true_value"] > truth["random"]["true_value"]  # the testbed's truth
    actions = pd.read_parquet(catalog.path("journey_next_actions"))
    assert len(actions) == 5000 and actions["customer_id"].is_unique
    assert set(actions["offer"]) <= {"none", "ad", "small_discount", "large_discount"}
    published = json.loads(catalog.path("journey_publish_metrics").read_text())
    assert published["published"] == gate["published"] and published["rows"] == 5000
    with sqlite3.connect(journey_project / "data/published/offerflow.sqlite") as connection:
        current = connection.execute("SELECT run_id FROM journey_current_run").fetchone()[0]
        settings = json.loads(connection.execute("SELECT settings FROM journey_runs WHERE run_id = ?", (current,)).fetchone()[0])
    assert current == published["run_id"] and settings["gate"]["published"] == gate["published"]
    for figure in ("journey_values_figure", "journey_actions_figure"):
        assert catalog.path(figure).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_evaluating_models_trained_on_another_log_refuses(journey_project, tmp_path):
    import shutil

    copy = Path(shutil.copytree(journey_project, tmp_path / "copy"))
    log = copy / "data/raw/journey_log.csv"
    frame = pd.read_csv(log)
    frame.loc[frame.index[-1], "revenue"] += 1.0  # one purchase worth a dollar more than the models saw
    frame.to_csv(log, index=False)
    with pytest.raises(StaleInputError):
        run_stage("journey_evaluate", load_params(copy / "params.yaml"))


def test_a_users_own_log_needs_its_path_and_no_testbed(project):
    set_params(project, journey__enabled=True, journey__testbed=None)
    with pytest.raises(Exception, match="log.path must name your journey log"):
        load_params(project / "params.yaml")
    set_params(project, journey__log__path="data/external/journeys.csv", journey__budget__spend_source="logs")
    params = load_params(project / "params.yaml", check_files=False)
    assert [s.name for s in enabled_stages(params, pipeline="journey")][0] == "journey_validate"  # no simulator
    assert Catalog(params).relative("journey_log") == "data/external/journeys.csv"
