"""Publishing to a real PostgreSQL (127.0.0.1:5432, a throwaway database per module) and keeping secrets secret."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from offerflow.catalog import Catalog
from offerflow.publish import (
    ALREADY_PUBLISHED,
    PUBLISHED,
    PublishTargetError,
    StoreError,
    open_store,
    resolve_target,
)
from offerflow.stages import run_publish
from offerflow.publish.schema import SCHEMA_VERSION
from offerflow.publish.store import SqlStore
from test_publish_support import (
    make_project,
    pg_count,
    postgres_target,
    run_record,
    sqlite_target,
    throwaway_database,
    write_plan,
)

PASSWORD = "S3cr3t-pa55word"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


def with_password(url: str) -> str:
    """Trust auth ignores the password, so a URL carrying one still connects: the masking is what we test."""
    return url.replace("postgres@", f"postgres:{PASSWORD}@")


def all_text_under(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file())


def test_publish_to_postgres_with_reserved_schema_name_and_prefix(pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("OFFERFLOW_DB_URL", with_password(pg_url))
    params = make_project(tmp_path / "p", **{"publish.target": "postgresql", "publish.schema": "user", "publish.table_prefix": "of_"})
    layout = Catalog(params)
    write_plan(params, layout)
    first = run_publish(params)
    assert first["status"] == PUBLISHED and first["current_run_id"] == first["run_id"]
    database = pg_url.rsplit("/", 1)[1]
    assert first["target"] == f"postgresql+psycopg://postgres:***@127.0.0.1:5432/{database}"
    csv_bytes, metrics_bytes = layout.assignments.read_bytes(), layout.publish_metrics.read_bytes()

    # "user" is a reserved word: only quoting makes this schema work. Everything landed in it.
    tables = pg_count(pg_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'user' AND table_name LIKE 'of\\_%'")
    assert tables == 6  # runs, assignments, current_run, events, schema_version + the view
    assert pg_count(pg_url, 'SELECT count(*) FROM "user".of_assignments') == 5000
    assert pg_count(pg_url, 'SELECT version FROM "user".of_schema_version') == SCHEMA_VERSION
    csv = pd.read_csv(layout.assignments, dtype={"customer_id": str})
    engine = create_engine(pg_url, poolclass=NullPool)
    with engine.connect() as connection:
        view = pd.read_sql_query(text('SELECT * FROM "user".of_current_assignments ORDER BY customer_id'), connection)
    engine.dispose()
    csv = csv.sort_values("customer_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(view[csv.columns], csv, check_dtype=False, rtol=1e-9)  # the CSV keeps 10 digits

    second = run_publish(params)
    assert second["status"] == ALREADY_PUBLISHED and second["run_id"] == first["run_id"]
    assert pg_count(pg_url, 'SELECT count(*) FROM "user".of_assignments') == 5000
    assert pg_count(pg_url, 'SELECT count(*) FROM "user".of_events') == 1
    assert layout.assignments.read_bytes() == csv_bytes and layout.publish_metrics.read_bytes() == metrics_bytes
    assert PASSWORD not in all_text_under(params.root)
    with open_store(resolve_target(params)) as store:
        assert store.run(first["run_id"])["row_count"] == 5000


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_values_round_trip_exactly_through_copy_and_executemany(kind, pg_url, tmp_path):
    """Ids with CSV-hostile characters and doubles that need all 17 digits come back unchanged."""
    ids = ["plain", "with,comma", 'with "quotes"', "back\\slash", "tab\tand\nnewline", "ünïcödé", "NULL", "", " padded "]
    probabilities = [1 / 3, 0.1, 1e-300, 0.9999999999999999, 2 ** -52, 0.5, 0.0, 1.0, 0.123456789012345678]
    frame = pd.DataFrame({"customer_id": ids, "segment_id": range(1, 10), "offer": ["dm2"] * 9,
                          "predicted_probability": probabilities, "expected_cost": [10 * p for p in probabilities]})
    target = sqlite_target(tmp_path / "x.sqlite") if kind == "sqlite" else postgres_target(pg_url, prefix="roundtrip_")
    with open_store(target) as store:
        assert store.publish(run_record("r1"), frame) == PUBLISHED
        stored = store.read_assignments("r1")
    expected = frame.sort_values("customer_id", key=lambda s: s.map(lambda v: v.encode())).reset_index(drop=True)
    assert stored["customer_id"].tolist() == expected["customer_id"].tolist()  # byte order, empty id kept
    assert stored["predicted_probability"].tolist() == expected["predicted_probability"].tolist()  # bit-exact
    assert stored["expected_cost"].tolist() == expected["expected_cost"].tolist()


def test_schema_creation_is_idempotent_and_adopts_nothing_foreign(pg_url):
    target = postgres_target(pg_url, schema="idem", prefix="a_")
    with SqlStore(target) as store:
        assert store.ensure_schema() == "created"
        assert store.ensure_schema() == "current"
        assert store.exists() and store.runs() == [] and store.current_run_id() is None
    engine = create_engine(pg_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE idem.b_runs (id int)")  # someone else's table with our name
    engine.dispose()
    with SqlStore(postgres_target(pg_url, schema="idem", prefix="b_")) as store:
        with pytest.raises(StoreError, match=r"table b_runs exists but has no schema version and is not an offerflow layout"):
            store.publish(run_record("r"), pd.DataFrame({"customer_id": [1], "segment_id": [1], "offer": ["dm1"],
                                                         "predicted_probability": [0.1], "expected_cost": [0.0]}))
        assert pg_count(pg_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'idem' AND table_name LIKE 'b\\_%'") == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/offerflow", r"cannot .*postgresql\+psycopg://postgres:\*\*\*@127\.0\.0\.1:1/offerflow"),
        (f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/offerflow_missing_db", r"offerflow_missing_db.*does not exist"),
        (f"mysql://root:{PASSWORD}@127.0.0.1/x", r"must hold a postgresql:// URL.*mysql://root:\*\*\*@127\.0\.0\.1/x"),
    ],
    ids=["refused", "no-such-database", "not-postgresql"],
)
def test_unreachable_database_fails_clearly_without_the_password(url, expected, tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setenv("OFFERFLOW_DB_URL", url)
    params = make_project(tmp_path / "p", **{"publish.target": "postgresql", "publish.connect_timeout_seconds": 2})
    layout = Catalog(params)
    write_plan(params, layout)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PublishTargetError, match=expected) as failure:
        run_publish(params)
    error = failure.value
    shown = "".join(traceback.format_exception(error)) + repr(error) + caplog.text + "".join(capsys.readouterr())
    if "postgresql" in url:
        shown += repr(resolve_target(params))
    assert PASSWORD not in shown
    assert error.__cause__ is None and error.__context__ is None  # no chained driver error holding the URL
    assert not layout.assignments.exists() and not layout.publish_metrics.exists()


def test_missing_credentials_name_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("MY_DB", raising=False)
    params = make_project(tmp_path / "p", **{"publish.target": "postgresql", "publish.url_env": "MY_DB"})
    layout = Catalog(params)
    write_plan(params, layout)
    with pytest.raises(PublishTargetError, match=r"environment variable MY_DB \(publish.url_env\) is not set"):
        run_publish(params)
    assert not layout.assignments.exists()


def test_lock_timeout_names_the_wait(pg_url):
    """A publisher that cannot get the advisory lock within busy_timeout_seconds fails clearly, writing nothing."""
    target = postgres_target(pg_url, prefix="locked_", busy_timeout_seconds=0.5)
    frame = pd.DataFrame({"customer_id": [1, 2], "segment_id": [1, 1], "offer": ["dm1", "dm2"],
                          "predicted_probability": [0.1, 0.2], "expected_cost": [0.0, 2.0]})
    with SqlStore(target) as holder, SqlStore(target) as waiter:
        holder.ensure_schema()
        with holder._write():  # another publisher mid-transaction
            with pytest.raises(PublishTargetError, match=r"lock timeout.*publish.busy_timeout_seconds"):
                waiter.publish(run_record("blocked"), frame)
        assert waiter.run_ids() == [] and waiter.assignment_count() == 0
        assert waiter.publish(run_record("blocked"), frame) == PUBLISHED  # lock released with the transaction
