"""The Prefect flow runs the same stages as the CLI and `dvc repro` and produces the same allocation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import copy_project, dvc, init_repo
from offerflow.io import file_sha256

OFFERFLOW = str(Path(sys.executable).parent / "offerflow")


def declared_outputs(root: Path) -> list[str]:
    """Every file the declaration says the example's stages write: data, metrics, plots, figures, stamps."""
    from offerflow.catalog import Catalog
    from offerflow.config import load_params
    from offerflow.pipeline import enabled_stages

    params = load_params(root / "params.yaml")
    catalog = Catalog(params)
    return [catalog.relative(out.name) for stage in enabled_stages(params) for out in stage.outputs_for(params)]


GX_RUN_TIME = re.compile(r"/\d{8}T\d{6}\.\d+Z/")  # Great Expectations names each Data Docs page by its run time
DATA_DOCS = "reports/validation/data_docs/"
DATABASE = "data/published/offerflow.sqlite"
WHEN_AND_WHERE = re.compile(r"(_at|^git_revision)$")  # when a row was written; the commit (each copy is its own repo)


def written_files(root: Path) -> dict[str, Path]:
    """Every file under data/, models/ and reports/, declared or not, by path (DVC's .gitignore files aside)."""
    files = {}
    for folder in ("data", "models", "reports"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path.name != ".gitignore":
                files[GX_RUN_TIME.sub("/<run time>/", path.relative_to(root).as_posix())] = path
    return files


def database_rows(path: Path) -> dict[str, list[tuple]]:
    """Every table of the publication database, without the columns that say when and from which commit."""
    import sqlite3

    with sqlite3.connect(path) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        rows = {}
        for table in tables:
            columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            kept = ", ".join(column for column in columns if not WHEN_AND_WHERE.search(column))
            rows[table] = connection.execute(f"SELECT {kept} FROM {table} ORDER BY {kept}").fetchall()
    return rows


@pytest.mark.slow
def test_flow_dvc_and_cli_write_byte_identical_files(tmp_path, example_repro, example_cli_run):
    by_flow = copy_project(tmp_path / "flow")
    init_repo(by_flow)
    # `offerflow flow` as the README shows it, without make's environment: the CLI sets Prefect's home and timeout
    bare = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    flow = subprocess.run([OFFERFLOW, "flow"], cwd=by_flow, env=bare, capture_output=True, text=True, timeout=900)
    assert flow.returncode == 0, flow.stderr[-3000:]
    assert "budget:                           10,000.00 USD" in flow.stdout and "published run" in flow.stdout
    assert (by_flow / ".prefect/prefect.db").is_file()  # Prefect's state stays in the project, not in ~/.prefect
    # the flow ran `dvc commit`: DVC agrees that everything is up to date
    assert "up to date" in dvc(by_flow, "status").stdout

    by_dvc = example_repro.project  # the session's `dvc repro` and `offerflow run` of the example (conftest)
    by_cli = example_cli_run.project

    # every file each entry point wrote, declared or not, figures included
    outputs = declared_outputs(by_cli)
    written = [written_files(root) for root in (by_flow, by_dvc, by_cli)]
    assert set(written[0]) == set(written[1]) == set(written[2]), "the entry points wrote different files"
    assert set(outputs) <= set(written[2]) and len([name for name in written[2] if name.endswith(".png")]) >= 9
    compared = 0
    for relative in sorted(written[2]):
        if relative.startswith(DATA_DOCS):  # GX stamps its run time into the HTML; its results are in validation/*.json
            continue
        if relative == DATABASE:
            rows = [database_rows(files[relative]) for files in written]
            assert rows[0] == rows[1] == rows[2] and len(rows[0]["assignments"]) == 5000
            continue
        digests = {file_sha256(files[relative]) for files in written}
        assert len(digests) == 1, f"{relative} differs between flow, dvc repro and offerflow run"
        compared += 1
    assert compared >= len(outputs) >= 25


def latest_artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC, limit=1
        )
    return found[0] if found else None


def flow_run_records(flow_run_id):
    """The flow run's API log records and artifacts, read back through the Prefect client as the UI does."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return logs, {artifact.key: artifact for artifact in artifacts}


@pytest.mark.slow
def test_flow_leaves_logs_tables_pictures_and_failure_artifacts(project):
    import base64
    import json

    import pandas as pd

    from offerflow.flows import offer_allocation

    state = offer_allocation(params_file=str(project / "params.yaml"), return_state=True)
    summary = state.result()

    # offerflow's own log lines reach the flow run's logs (not only prefect.*), without the CLI's environment;
    # Prefect sends log records in background batches, so give the last ones a few seconds to arrive
    deadline = time.monotonic() + 30
    while True:
        logs, artifacts = flow_run_records(state.state_details.flow_run_id)
        own = [record for record in logs if record.name == "offerflow.publish" and summary["run_id"] in record.message]
        if own or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert own, sorted({record.name for record in logs})

    # everything opens from the Prefect UI: no link to a file on the machine that ran the flow
    assert not [key for key, artifact in artifacts.items() if "file://" in str(artifact.data)]
    markdown = artifacts["offer-allocation-summary"]
    assert summary["run_id"] in markdown.data and "Cost per incremental conversion" in markdown.data
    assert "segment_id" in str(artifacts["offer-allocation-plan"].data)

    frontier = pd.read_csv(project / "reports/plots/budget_frontier.csv")
    table = json.loads(artifacts["budget-frontier"].data)
    assert len(table) == len(frontier) >= 5
    assert table[2]["budget"] == pytest.approx(frontier["budget"][2]) and table[2]["objective"] == pytest.approx(frontier["objective"][2])
    selection = json.loads((project / "reports/train_metrics.json").read_text())["selection"]
    learners = json.loads(artifacts["learner-comparison"].data)
    assert sorted(row["learner"] for row in learners) == sorted(selection["scores"])
    assert [row["learner"] for row in learners if row["chosen"]] == [selection["chosen"]]
    validation = json.loads((project / "reports/validation/summary.json").read_text())
    results = {row["dataset"]: row for row in json.loads(artifacts["validation-results"].data)}
    assert set(results) == set(validation["datasets"]) and all(row["success"] and row["failed"] == 0 for row in results.values())
    assert sum(row["expectations_evaluated"] for row in results.values()) == sum(
        d["expectations_evaluated"] for d in validation["datasets"].values())
    policies = json.loads(artifacts["policy-evaluation"].data)
    assert any(row["role"] == "candidate" for row in policies)
    figures = sorted((project / "reports/figures").glob("*.png"))
    assert len(figures) >= 5
    for figure in figures:  # each picture travels inside its artifact, byte for byte
        data = artifacts[f"figure-{figure.stem.replace('_', '-')}"].data
        embedded = data.split("data:image/png;base64,", 1)[1].split(")", 1)[0]
        assert base64.b64decode(embedded) == figure.read_bytes(), figure.name

    table = project / "data/external/visit_probability.csv"
    table.write_text(table.read_text().replace("0.29", "1.29", 1))
    with pytest.raises(Exception, match="prob_dm3"):
        offer_allocation(params_file=str(project / "params.yaml"))
    failure = latest_artifact("offerflow-simulate-failure")  # the simulator checks the table before reading it
    assert failure is not None and "prob_dm3" in failure.data and "1.29" in failure.data and "exit code 3" in failure.data


class CountingRunners:
    """Wrap the declared stages' runners to count calls and inject failures (the flow runs in this process)."""

    def __init__(self, monkeypatch, fail: dict[str, list[BaseException]] | None = None):
        import dataclasses

        import offerflow.pipeline as pipeline

        self.calls: dict[str, int] = {}
        self.fail = fail or {}
        original = getattr(pipeline, "_original_stages", pipeline.STAGES)
        monkeypatch.setattr(pipeline, "_original_stages", original, raising=False)
        wrapped = tuple(dataclasses.replace(stage, runner=self._wrap(stage.name, stage.runner)) for stage in original)
        monkeypatch.setattr(pipeline, "STAGES", wrapped)

    def _wrap(self, name, runner):
        def counted(params):
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.fail.get(name):
                raise self.fail[name].pop(0)
            return runner(params)

        return counted


@pytest.mark.slow
def test_rerun_after_a_failure_resumes_at_the_failed_stage(project, monkeypatch):
    from conftest import set_params
    from offerflow.flows import offer_allocation

    set_params(project, orchestration__retries=0, orchestration__retry_delay_seconds=0)
    failing = CountingRunners(monkeypatch, fail={"optimize": [RuntimeError("solver host went away")]})
    with pytest.raises(RuntimeError, match="solver host went away"):
        offer_allocation(params_file=str(project / "params.yaml"))
    assert failing.calls == {"simulate": 1, "validate": 1, "train": 1, "probabilities": 1, "optimize": 1}

    resumed = CountingRunners(monkeypatch)
    offer_allocation(params_file=str(project / "params.yaml"))
    assert resumed.calls == {"optimize": 1, "allocate": 1, "evaluate": 1, "publish": 1}

    # only the budget changes: only the stages that read it recompute
    set_params(project, optimize__budget=8000)
    budget_only = CountingRunners(monkeypatch)
    summary = offer_allocation(params_file=str(project / "params.yaml"))
    assert budget_only.calls == {"optimize": 1, "allocate": 1, "evaluate": 1, "publish": 1}
    assert summary["budget"] == 8000

    # back to the first budget: its cached results exist, but the files on disk are the 8000 run's, so they rerun
    set_params(project, optimize__budget=10_000)
    back = CountingRunners(monkeypatch)
    summary = offer_allocation(params_file=str(project / "params.yaml"))
    assert back.calls == {"optimize": 1, "allocate": 1, "evaluate": 1, "publish": 1}
    assert summary["budget"] == 10_000 and summary["expected_coupon_cost"] > 8000


@pytest.mark.slow
def test_transient_fault_is_survived_by_a_retry_and_bad_data_is_not_retried(project, monkeypatch):
    from conftest import set_params
    from offerflow.flows import offer_allocation
    from offerflow.publish.target import PublishTargetError

    set_params(project, orchestration__retries=2, orchestration__retry_delay_seconds=0)
    refused = PublishTargetError("cannot publish to postgresql://***@db/x: connection refused", retryable=True)
    runners = CountingRunners(monkeypatch, fail={"publish": [refused]})
    summary = offer_allocation(params_file=str(project / "params.yaml"))
    assert runners.calls["publish"] == 2
    assert summary["run_id"]

    customers = project / "data/external/customers.csv"
    lines = customers.read_text().splitlines()
    lines[2] = lines[1]  # a duplicated customer id: the simulator's own check must stop the flow
    customers.write_text("\n".join(lines) + "\n")
    broken = CountingRunners(monkeypatch)
    with pytest.raises(Exception, match="customer_id"):
        offer_allocation(params_file=str(project / "params.yaml"))
    assert broken.calls == {"simulate": 1}  # a validation failure is permanent: no retry, nothing downstream
