"""dvc.yaml is generated from the pipeline declaration and works under every params switch a user flips.

For each switch (simulate on/off, true table set/null, publish source segment/customer, target
sqlite/postgresql/files) `dvc repro` runs end to end, a second `dvc repro` does nothing, the user's history
is never touched, and `dvc exp run` never publishes to the target. The example and PostgreSQL start from the
session's `dvc repro` (conftest.example_repro); a user's own history, no true table and the customer plan
published to files is test_dvc_team's own-data test.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BIN, ROOT, copy_run, dvc, git, ran_stages, set_params, write_user_history
from offerflow.config import load_params
from offerflow.dvcyaml import render_dvc_yaml
from offerflow.pipeline import STAGES, enabled_stages

OFFER_STAGES = [stage.name for stage in STAGES if stage.pipeline == "offers"]



def test_committed_dvc_yaml_is_the_one_the_declaration_generates():
    params = load_params(ROOT / "params.yaml")
    assert (ROOT / "dvc.yaml").read_text() == render_dvc_yaml(params), "run `offerflow dvc-yaml` and commit dvc.yaml"


def test_generated_stages_follow_the_switches(project):
    params = load_params(project / "params.yaml")
    stages = yaml.safe_load(render_dvc_yaml(params))["stages"]
    assert list(stages) == OFFER_STAGES  # the scenarios are off in the example
    assert all(spec["cmd"] == f"offerflow {name}" for name, spec in stages.items())
    assert "src/offerflow/optimize" in stages["optimize"]["deps"]  # its own code
    assert "src/offerflow/uplift" not in stages["optimize"]["deps"]  # not the learners'
    assert "data/raw/simulated_history.csv" in stages["train"]["deps"]

    history = write_user_history(project)
    set_params(project, simulate__enabled=False, data__history=str(history.relative_to(project)),
               data__true_probabilities=None, publish__source="customer_plan")
    params = load_params(project / "params.yaml")
    stages = yaml.safe_load(render_dvc_yaml(params))["stages"]
    assert "simulate" not in stages
    body = render_dvc_yaml(params).split("stages:", 1)[1]
    assert "true_probabilities" not in body and "simulated_history" not in body
    assert "${data.history}" in stages["train"]["deps"]
    assert "data/processed/customer_plan.parquet" in stages["publish"]["deps"]
    assert "data/processed/segment_plan.csv" not in stages["publish"]["deps"]
    # every generated file a stage reads is written by an earlier enabled stage
    written: set[str] = set()
    for stage in enabled_stages(params):
        for dep in stages[stage.name]["deps"]:
            if dep.startswith(("data/", "models/", "reports/")):
                assert dep in written, (stage.name, dep)
        for group in ("outs", "metrics", "plots"):
            written |= {next(iter(entry)) if isinstance(entry, dict) else entry for entry in stages[stage.name].get(group, [])}


def offerflow(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "offerflow"), *args], cwd=project, capture_output=True, text=True)


def sqlite_current(project: Path) -> tuple[str, int]:
    with sqlite3.connect(project / "data/published/offerflow.sqlite") as connection:
        current = connection.execute("SELECT run_id FROM current_run").fetchone()[0]
        runs = connection.execute("SELECT count(*) FROM runs").fetchone()[0]
    return current, runs


@pytest.mark.slow
def test_example_repro_then_nothing_then_only_what_a_change_affects_and_experiments_never_publish(example_repro, tmp_path):
    assert ran_stages(example_repro.result.stdout) == set(OFFER_STAGES)  # the first `dvc repro` ran every stage
    project = copy_run(example_repro, tmp_path / "project")
    assert dvc(project, "repro").stdout.count("Running stage") == 0
    assert "up to date" in dvc(project, "status").stdout
    published = sqlite_current(project)

    set_params(project, optimize__budget=8000)
    assert ran_stages(dvc(project, "repro").stdout) == {"optimize", "allocate", "evaluate", "publish"}
    git(project, "add", "-A")
    git(project, "commit", "-qm", "budget 8000")

    # editing the optimizer's code reruns what runs it, never the learners
    code = project / "src/offerflow/optimize/planning.py"
    code.write_text(code.read_text() + "\n# a reviewer's note\n")
    ran = ran_stages(dvc(project, "repro").stdout)
    assert {"optimize", "allocate"} <= ran and not ran & {"simulate", "validate", "train", "probabilities"}
    git(project, "add", "-A")
    git(project, "commit", "-qm", "code note")

    before = sqlite_current(project)
    assert before != published  # the budget change was published by dvc repro (the richer incumbent does not compete)
    for budget in (9000, 12000):  # a budget sweep as experiments
        dvc(project, "exp", "run", "-S", f"optimize.budget={budget}")
    assert sqlite_current(project) == before  # no experiment reached the database

    # the sweep compared on one screen: headline metrics only, what the budget changed
    rows = list(csv.DictReader(io.StringIO(dvc(project, "exp", "show", "--only-changed", "--csv").stdout)))
    columns = [name for name in rows[0] if name not in ("rev", "typ")]  # csv-only columns
    assert len(columns) <= 25, columns  # was 311
    assert not [name for name in columns if name.startswith("reports/metrics/")], columns  # no file prefixes needed
    assert "learner" not in columns and "objective" in columns
    by_budget = {row["optimize.budget"]: float(row["objective"]) for row in rows}
    assert by_budget["8000"] < by_budget["9000"] < by_budget["12000"]  # more money, more conversions
    assert "12000" in dvc(project, "exp", "show", "--only-changed", "--no-pager", env={"COLUMNS": "400"}).stdout


@pytest.mark.slow
@pytest.mark.postgres
def test_postgresql_target_repro_and_experiments_leave_the_current_run(example_repro, tmp_path):
    from test_publish_support import pg_count, throwaway_database

    project = copy_run(example_repro, tmp_path / "project")
    with throwaway_database() as url:
        set_params(project, publish__target="postgresql")  # the team switches its target: only publishing reruns
        env = {"OFFERFLOW_DB_URL": url}
        ran = ran_stages(dvc(project, "repro", env=env).stdout)
        assert "publish" in ran and not ran & {"simulate", "validate", "train", "probabilities", "optimize"}, ran
        assert dvc(project, "repro", env=env).stdout.count("Running stage") == 0
        current = "SELECT count(*) FROM current_run WHERE run_id IS NOT NULL"
        assert pg_count(url, current) == 1 and pg_count(url, "SELECT count(*) FROM runs") == 1
        git(project, "add", "-A")
        git(project, "commit", "-qm", "published to PostgreSQL")
        dvc(project, "exp", "run", "-S", "optimize.budget=9000", env=env)
        assert pg_count(url, "SELECT count(*) FROM runs") == 1  # the experiment published nothing


def test_stage_run_by_dvc_refuses_a_stale_dvc_yaml(project):
    set_params(project, data__true_probabilities=None, simulate__enabled=False,
               data__history=str(write_user_history(project).relative_to(project)))
    env = {**os.environ, "DVC_STAGE": "validate"}
    result = subprocess.run([str(BIN / "offerflow"), "validate"], cwd=project, env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "offerflow dvc-yaml" in result.stderr and "Traceback" not in result.stderr
