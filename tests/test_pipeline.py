"""The declaration is the single source of the pipeline; provenance stops stale or unchecked inputs."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_project, set_params, write_user_history
from offerflow import stages as runners
from offerflow.catalog import Catalog
from offerflow.config import load_params
from offerflow.errors import StaleInputError
from offerflow.pipeline import PHASES, STAGE_NAMES, STAGES, enabled_stages, phase_stages, run_stage

OFFERFLOW = str(Path(sys.executable).parent / "offerflow")


def test_each_stage_is_declared_once_with_a_real_runner_and_a_phase():
    assert len(set(STAGE_NAMES)) == len(STAGES)
    for stage in STAGES:
        assert inspect.isfunction(stage.runner) and stage.runner is getattr(runners, f"run_{stage.name}")
        assert stage.phase in PHASES and stage.does and stage.help
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    for pipeline in ("offers", "discounts", "journey"):
        everything = params.model_copy(update={"discounts": params.discounts.model_copy(update={"enabled": True}),
                                               "journey": params.journey.model_copy(update={"enabled": True})})
        by_phase = [stage.name for phase in PHASES for stage in phase_stages(everything, phase, pipeline)]
        assert by_phase == [stage.name for stage in enabled_stages(everything, pipeline=pipeline)]  # each flow runs them all in order


def test_every_declared_code_path_and_catalog_entry_exists():
    package = Path(runners.__file__).resolve().parents[1]
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    catalog = Catalog(params)
    for stage in STAGES:
        for entry in stage.code_for(params):
            assert (package / entry).exists(), (stage.name, entry)
        for name in stage.inputs_for(params) + [out.name for out in stage.outputs_for(params)]:
            assert catalog.relative(name), (stage.name, name)


def test_switches_change_which_stages_run(project):
    history = write_user_history(project)
    set_params(project, simulate__enabled=False, data__history=str(history.relative_to(project)))
    params = load_params(project / "params.yaml")
    offers = [stage.name for stage in STAGES if stage.pipeline == "offers"]
    assert [stage.name for stage in enabled_stages(params)] == [n for n in offers if n != "simulate"]
    set_params(project, discounts__enabled=True, journey__enabled=True)
    both = load_params(project / "params.yaml")
    assert [s.name for s in enabled_stages(both, pipeline="discounts")] == [n for n in STAGE_NAMES if n.startswith("discounts_")]
    assert "journey_simulate" in [s.name for s in enabled_stages(both)]
    assert Catalog(params).path("history") == history
    assert enabled_stages(params, "optimize")[0].name == "optimize"


@pytest.fixture(scope="module")
def ran_project(tmp_path_factory) -> Path:
    """The example run once through every stage (in this process, as `offerflow run` does)."""
    from offerflow.cli import run_pipeline

    project = copy_project(tmp_path_factory.mktemp("ran") / "project")
    set_params(project, train__candidates=[], train__evaluation__figures=False)
    run_pipeline(load_params(project / "params.yaml"), progress=False)
    return project


@pytest.fixture
def ran_copy(ran_project, tmp_path) -> Path:
    return Path(shutil.copytree(ran_project, tmp_path / "copy"))


def test_publish_refuses_a_plan_made_under_other_params(ran_copy):
    params = load_params(ran_copy / "params.yaml", overrides={"optimize.budget": 12_000})
    run_stage("allocate", params)  # as `offerflow allocate --set optimize.budget=12000`
    with pytest.raises(StaleInputError, match=r"optimize\.budget: 12000\.0 then, 10000\.0 now"):
        run_stage("publish", load_params(ran_copy / "params.yaml"))
    record = json.loads((ran_copy / "reports/lineage/allocate.json").read_text())
    assert record["params"]["optimize"]["budget"] == 12_000


def test_a_changed_input_or_output_makes_downstream_refuse(ran_copy):
    params = load_params(ran_copy / "params.yaml")
    plan = ran_copy / "reports/policy_evaluation.json"
    plan.write_text(plan.read_text().replace('"candidate_published": true', '"candidate_published": false'))
    with pytest.raises(StaleInputError, match="policy_evaluation.json changed since evaluate ran"):
        run_stage("publish", params)
    customers = ran_copy / "data/external/customers.csv"
    customers.write_text(customers.read_text() + "99999,age20~34,freq2\n")
    with pytest.raises(StaleInputError, match="customers.csv changed since"):
        run_stage("train", params)


def test_from_stage_after_a_failed_validation_exits_3_and_names_it(ran_copy):
    customers = ran_copy / "data/external/customers.csv"
    lines = customers.read_text().splitlines()
    customers.write_text("\n".join([lines[0], lines[1], lines[1], *lines[2:]]) + "\n")  # a duplicated id
    assert subprocess.run([OFFERFLOW, "validate"], cwd=ran_copy, capture_output=True).returncode == 3
    before = (ran_copy / "data/published/assignments.csv").read_bytes()
    result = subprocess.run([OFFERFLOW, "run", "--from-stage", "train", "--no-progress"], cwd=ran_copy, capture_output=True, text=True)
    assert result.returncode == 3
    assert "failed validation" in result.stderr and "Traceback" not in result.stderr
    assert (ran_copy / "data/published/assignments.csv").read_bytes() == before


def test_stamps_record_params_inputs_and_outputs(ran_project):
    stamp = json.loads((ran_project / "reports/lineage/publish.json").read_text())
    assert stamp["stage"] == "publish"
    assert stamp["params"]["optimize"]["budget"] == 10_000
    assert "data/processed/customer_plan.parquet" in stamp["inputs"]
    assert set(stamp["outputs"]) == {"data/published/assignments.csv", "reports/publish_metrics.json",
                                     "reports/metrics/publish.json"}
