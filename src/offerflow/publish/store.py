"""The publication database: runs, their assignments and a pointer to the current run.

Everything goes through SQLAlchemy Core with a URL, so the same code serves SQLite (the default,
a file next to the data) and a server database. A publication is one transaction: the run row,
all its assignment rows and the pointer move commit together or not at all, so readers only ever
see the previous complete run or the new complete run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

import pandas as pd
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    make_url,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

PUBLISHED = "published"
ALREADY_PUBLISHED = "already_published"
COMPLETE = "complete"
_POINTER_SLOT = 1
_INSERT_CHUNK_ROWS = 10_000

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status", String(32), nullable=False),
    Column("params_hash", String(64), nullable=False),
    Column("input_hashes", Text, nullable=False),
    Column("model_sha256", String(64)),
    Column("git_revision", String(64)),
    Column("solver_status", String(64)),
    Column("objective", Double),
    Column("expected_cost", Double),
    Column("row_count", Integer, nullable=False),
)

assignments = Table(
    "assignments",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.run_id"), primary_key=True),
    Column("customer_id", String(255), primary_key=True),
    Column("segment_id", BigInteger, nullable=False),
    Column("offer", String(64), nullable=False),
    Column("predicted_probability", Double, nullable=False),
    Column("expected_cost", Double, nullable=False),
)

current_run = Table(
    "current_run",
    metadata,
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("run_id", String(64), ForeignKey("runs.run_id")),
    Column("published_at", DateTime(timezone=True)),
    CheckConstraint(f"slot = {_POINTER_SLOT}", name="current_run_single_row"),
)


class StoreError(RuntimeError):
    """The publication database is inconsistent with what is being published."""


@dataclass(frozen=True)
class RunRecord:
    """Lineage of one publication: what went in (hashes) and what the optimizer promised."""

    run_id: str
    params_hash: str
    input_hashes: dict[str, str | None]
    model_sha256: str | None
    git_revision: str | None
    solver_status: str | None
    objective: float | None
    expected_cost: float | None


def describe_url(url: str) -> str:
    """The URL with any password masked: safe for logs, metrics and error messages."""
    return make_url(url).render_as_string(hide_password=True)


def _configure_sqlite(engine: Engine, busy_timeout_seconds: float) -> None:
    """WAL (readers never block the writer), a busy timeout, foreign keys, and real transactions.

    The sqlite3 driver's legacy mode delays BEGIN until the first INSERT, so the "is this run
    already published?" read would sit outside the transaction; SQLAlchemy takes over BEGIN and
    writers use BEGIN IMMEDIATE so the check and the inserts hold one write lock.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("offerflow_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _assignment_rows(run_id: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain Python rows for executemany; customer ids are stored as text so any id type fits."""
    rows = pd.DataFrame(
        {
            "run_id": run_id,
            "customer_id": frame["customer_id"].astype(str),
            "segment_id": frame["segment_id"].astype("int64"),
            "offer": frame["offer"].astype(str),
            "predicted_probability": frame["predicted_probability"].astype("float64"),
            "expected_cost": frame["expected_cost"].astype("float64"),
        }
    )
    return rows.to_dict("records")


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _insert_run(connection: Connection, record: RunRecord, row_count: int, now: datetime) -> None:
    connection.execute(
        insert(runs).values(
            run_id=record.run_id,
            created_at=now,
            status=COMPLETE,
            params_hash=record.params_hash,
            input_hashes=json.dumps(record.input_hashes, sort_keys=True),
            model_sha256=record.model_sha256,
            git_revision=record.git_revision,
            solver_status=record.solver_status,
            objective=record.objective,
            expected_cost=record.expected_cost,
            row_count=row_count,
        )
    )


def _insert_assignments(connection: Connection, rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows, _INSERT_CHUNK_ROWS):
        connection.execute(insert(assignments), chunk)


def _point_current(connection: Connection, run_id: str, now: datetime) -> None:
    moved = connection.execute(
        update(current_run).where(current_run.c.slot == _POINTER_SLOT).values(run_id=run_id, published_at=now)
    )
    if moved.rowcount != 1:
        raise StoreError("current_run pointer row is missing; the schema was not created by offerflow")


class AssignmentStore:
    """Publish runs to, and read them back from, the database at an SQLAlchemy URL."""

    def __init__(self, url: str, busy_timeout_seconds: float = 30.0) -> None:
        self.url = url
        self.engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            _configure_sqlite(self.engine, busy_timeout_seconds)
        self._writer = self.engine.execution_options(offerflow_write=True)

    def __enter__(self) -> "AssignmentStore":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    def ensure_schema(self) -> None:
        """Create the tables and the pointer row if absent; safe to call on every publish."""
        metadata.create_all(self._writer, checkfirst=True)
        try:
            with self._writer.begin() as connection:
                exists = connection.execute(select(current_run.c.slot)).first()
                if exists is None:
                    connection.execute(insert(current_run).values(slot=_POINTER_SLOT, run_id=None))
        except IntegrityError:
            pass  # another process inserted the pointer row first: the state we wanted

    def publish(self, record: RunRecord, frame: pd.DataFrame) -> str:
        """Write the run, its rows and the pointer in one transaction; "published" or "already_published".

        An existing complete run is never rewritten (no duplicate rows); if it is not the current
        run any more, the pointer moves back to it, because re-running that configuration means
        "this is what we mail".
        """
        self.ensure_schema()
        rows = _assignment_rows(record.run_id, frame)
        now = datetime.now(timezone.utc)
        try:
            with self._writer.begin() as connection:
                existing = connection.execute(
                    select(runs.c.status, runs.c.row_count).where(runs.c.run_id == record.run_id)
                ).first()
                if existing is not None:
                    self._check_existing(record.run_id, existing, len(rows))
                    if self._current(connection) != record.run_id:
                        _point_current(connection, record.run_id, now)
                    return ALREADY_PUBLISHED
                _insert_run(connection, record, len(rows), now)
                _insert_assignments(connection, rows)
                _point_current(connection, record.run_id, now)
            return PUBLISHED
        except IntegrityError:
            # A concurrent writer committed the same run id between our check and our insert.
            if self.run(record.run_id) is not None:
                return ALREADY_PUBLISHED
            raise

    @staticmethod
    def _check_existing(run_id: str, existing: Any, row_count: int) -> None:
        if existing.status != COMPLETE or existing.row_count != row_count:
            raise StoreError(
                f"run {run_id} already exists with status={existing.status!r}, row_count={existing.row_count}, "
                f"but this publication has {row_count} rows: refusing to overwrite a different run with the same id"
            )

    @staticmethod
    def _current(connection: Connection) -> str | None:
        return connection.execute(select(current_run.c.run_id).where(current_run.c.slot == _POINTER_SLOT)).scalar()

    def current_run_id(self) -> str | None:
        """The run readers should use, or None before the first publication."""
        with self.engine.connect() as connection:
            if not self.engine.dialect.has_table(connection, "current_run"):
                return None
            return self._current(connection)

    def run(self, run_id: str) -> dict[str, Any] | None:
        """The run record as a dict (input_hashes parsed), or None if no such run."""
        with self.engine.connect() as connection:
            if not self.engine.dialect.has_table(connection, "runs"):
                return None
            row = connection.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
        if row is None:
            return None
        record = dict(row)
        record["input_hashes"] = json.loads(record["input_hashes"])
        return record

    def run_ids(self) -> list[str]:
        with self.engine.connect() as connection:
            if not self.engine.dialect.has_table(connection, "runs"):
                return []
            return list(connection.execute(select(runs.c.run_id).order_by(runs.c.run_id)).scalars())

    def assignment_count(self, run_id: str | None = None) -> int:
        """Rows of one run (or of all runs): the check that nothing was duplicated or half-written."""
        query = select(func.count()).select_from(assignments)
        if run_id is not None:
            query = query.where(assignments.c.run_id == run_id)
        with self.engine.connect() as connection:
            if not self.engine.dialect.has_table(connection, "assignments"):
                return 0
            return int(connection.execute(query).scalar_one())

    def read_assignments(self, run_id: str) -> pd.DataFrame:
        """A run's assignments ordered by customer id (as stored, text)."""
        query = (
            select(assignments.c.customer_id, assignments.c.segment_id, assignments.c.offer,
                   assignments.c.predicted_probability, assignments.c.expected_cost)
            .where(assignments.c.run_id == run_id)
            .order_by(assignments.c.customer_id)
        )
        with self.engine.connect() as connection:
            return pd.DataFrame(connection.execute(query).mappings().all(),
                                columns=["customer_id", "segment_id", "offer", "predicted_probability", "expected_cost"])

