"""Targets and schema: the files target, params.yaml checks of names and credentials, migrating old databases."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from offerflow.config import ConfigError, load_params
from offerflow.catalog import Catalog
from offerflow.io import read_json
from offerflow.publish import ALREADY_PUBLISHED, PUBLISHED, StoreError, open_store, resolve_target
from offerflow.stages import run_publish
from offerflow.publish.schema import SCHEMA_VERSION, build_tables
from test_publish_support import make_project, write_plan


FILES_TARGET = {"publish.target": "files", "publish.files_dir": "data/published/files"}


def test_files_target_writes_each_run_once_and_moves_the_pointer_atomically(tmp_path):
    params = make_project(tmp_path / "p", **FILES_TARGET)
    layout = Catalog(params)
    write_plan(params, layout)
    first = run_publish(params)
    assert first["status"] == PUBLISHED and first["target"] == "files:data/published/files"
    folder = params.root / "data/published/files/runs" / first["run_id"]
    csv = pd.read_csv(layout.assignments, dtype={"customer_id": str}).drop(columns="run_id")
    parquet = pd.read_parquet(folder / "assignments.parquet")
    per_run_csv = pd.read_csv(folder / "assignments.csv", dtype={"customer_id": str})
    for frame in (parquet, per_run_csv):
        assert frame.pop("expected_value").isna().all()
        got = frame.sort_values("customer_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, csv.sort_values("customer_id").reset_index(drop=True), check_dtype=False, rtol=1e-9)
    assert parquet["predicted_probability"].tolist() == per_run_csv["predicted_probability"].tolist()  # CSV keeps full precision
    assert read_json(folder / "run.json")["input_hashes"]["segment_plan"]["path"] == "data/processed/segment_plan.csv"

    state_path = params.root / "data/published/files/state.json"
    state_bytes = state_path.read_bytes()
    assert run_publish(params)["status"] == ALREADY_PUBLISHED
    assert state_path.read_bytes() == state_bytes

    # Leftovers of a killed publisher (a temporary folder, a renamed but uncommitted run) disappear.
    (folder.parent / ".incoming-dead-1234").mkdir()
    (folder.parent / "0123456789abcdef").mkdir()
    reseeded = load_params(params.root / "params.yaml", overrides={**FILES_TARGET, "publish.seed": 12})
    second = run_publish(reseeded)
    assert sorted(p.name for p in folder.parent.iterdir()) == sorted([first["run_id"], second["run_id"]])
    state = json.loads(state_path.read_text())
    assert state["current_run_id"] == second["run_id"]
    assert [(e["kind"], e["run_id"], e["previous_run_id"]) for e in state["events"]] == [
        ("publish", first["run_id"], None), ("publish", second["run_id"], first["run_id"])]
    with open_store(resolve_target(params)) as store:
        assert [r["run_id"] for r in store.runs()] == [second["run_id"], first["run_id"]]
        assert store.assignment_count() == 10_000
        assert store.rollback(first["run_id"]) == "rolled_back"
        assert store.current_run_id() == first["run_id"]
        assert store.read_current_view()["run_id"].unique().tolist() == [first["run_id"]]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("publish.schema", "Marketing", r"publish.schema: String should match pattern"),
        ("publish.table_prefix", "of; drop table runs; --", r"publish.table_prefix: String should match pattern"),
        ("publish.target", "oracle", r"publish.target: Input should be 'sqlite', 'postgresql' or 'files'"),
        ("publish.url_env", "MY-DB", r"publish.url_env: String should match pattern"),
        ("publish.source", "plan", r"publish.source: Input should be 'segment_plan' or 'customer_plan'"),
    ],
)
def test_params_reject_unsafe_names_and_unknown_choices(tmp_path, key, value, message):
    make_project(tmp_path / "p")
    with pytest.raises(ConfigError, match=message):
        load_params(tmp_path / "p/params.yaml", overrides={key: value})


def test_params_refuse_credentials_without_echoing_them(tmp_path):
    make_project(tmp_path / "p")
    with pytest.raises(ConfigError) as failure:
        load_params(tmp_path / "p/params.yaml", overrides={"publish.url": "postgresql://u:hunter2@db/x"})
    assert "publish.url: database URLs and passwords never go in params.yaml" in str(failure.value)
    assert "hunter2" not in str(failure.value)


@pytest.mark.parametrize(("schema", "prefix"), [("Public", ""), (None, "x-y_"), (None, "1abc_"), ('a"b', "")])
def test_store_refuses_unsafe_identifiers_even_without_params(schema, prefix):
    with pytest.raises(StoreError, match=r"publish\.(schema|table_prefix) must match"):
        build_tables(schema, prefix)


FOUNDATION_DDL = """
CREATE TABLE runs (run_id VARCHAR(64) NOT NULL PRIMARY KEY, created_at DATETIME NOT NULL, status VARCHAR(32) NOT NULL,
  params_hash VARCHAR(64) NOT NULL, input_hashes TEXT NOT NULL, model_sha256 VARCHAR(64), git_revision VARCHAR(64),
  solver_status VARCHAR(64), objective FLOAT, expected_cost FLOAT, row_count INTEGER NOT NULL);
CREATE TABLE assignments (run_id VARCHAR(64) NOT NULL REFERENCES runs (run_id), customer_id VARCHAR(255) NOT NULL,
  segment_id BIGINT NOT NULL, offer VARCHAR(64) NOT NULL, predicted_probability FLOAT NOT NULL, expected_cost FLOAT NOT NULL,
  PRIMARY KEY (run_id, customer_id));
CREATE TABLE current_run (slot INTEGER NOT NULL PRIMARY KEY, run_id VARCHAR(64) REFERENCES runs (run_id),
  published_at DATETIME, CONSTRAINT current_run_single_row CHECK (slot = 1));
INSERT INTO runs VALUES ('oldrun', '2026-11-01 10:00:00.000000', 'complete', 'h', '{"customers": "sha"}', 'abc', NULL,
  'optimal', 1.5, 2.5, 2);
INSERT INTO assignments VALUES ('oldrun', '1', 1, 'dm1', 0.1, 0.0), ('oldrun', '2', 1, 'dm2', 0.2, 2.0);
INSERT INTO current_run VALUES (1, 'oldrun', '2026-11-01 10:00:00.000000');
"""


def test_a_database_of_the_foundation_layout_is_migrated_in_place(tmp_path):
    """The first publish stage wrote runs/assignments/current_run without a version: keep its runs, add the rest."""
    params = make_project(tmp_path / "p")
    layout = Catalog(params)
    write_plan(params, layout)
    database = params.path(params.publish.sqlite_path)
    database.parent.mkdir(parents=True)
    with sqlite3.connect(database) as raw:
        raw.executescript(FOUNDATION_DDL)
    result = run_publish(params)
    assert result["status"] == PUBLISHED
    with open_store(resolve_target(params)) as store:
        old = store.run("oldrun")
        assert (old["model_md5"], old["row_count"], old["is_current"]) == ("abc", 2, False)
        assert store.assignment_count("oldrun") == 2 and store.assignment_count(result["run_id"]) == 5000
        assert [(e["kind"], e["previous_run_id"]) for e in store.events()] == [("publish", "oldrun")]
        assert store.rollback("oldrun") == "rolled_back"
        assert store.read_current_view()["customer_id"].tolist() == ["1", "2"]
        assert store.ensure_schema() == "current"
    with sqlite3.connect(database) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
