"""The publication database (SQLite or PostgreSQL): runs, their assignments, the current run, events.

A publication is one transaction: the run row, all its assignment rows, the current-run pointer
and the event commit together or not at all, so readers (and the `current_assignments` view)
only ever see the previous complete run or the new complete run. Publishers are serialized: on
PostgreSQL by a transaction-scoped advisory lock, on SQLite by BEGIN IMMEDIATE (the write lock),
so two flows (or a flow and `dvc repro`) never interleave. A killed publisher holds no lock: the
server releases it with the dead connection, SQLite with the dead process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pandas as pd
from sqlalchemy import create_engine, event, func, insert, make_url, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from offerflow.publish.bulk import assignment_rows, bulk_load
from offerflow.publish.lineage import ALREADY_PUBLISHED, COMPLETE, PUBLISHED, RunRecord, StoreError, record_as_dict
from offerflow.publish.schema import POINTER_SLOT, SCHEMA_VERSION, build_tables, migrate, qualified, read_version
from offerflow.publish.target import PublishTarget, PublishTargetError

ROLLED_BACK = "rolled_back"
ALREADY_CURRENT = "already_current"
CELL_COLUMNS = ["segment_id", "offer", "customers", "expected_conversions", "expected_cost"]
_T = TypeVar("_T")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: Any) -> str | None:
    """A stored timestamp as ISO 8601 UTC (SQLite hands back naive datetimes; they were written in UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _switch_to_wal(cursor: Any, busy_timeout_seconds: float) -> None:
    """PRAGMA journal_mode = WAL, waiting like any writer would.

    On a new database file two connections switching at once get "database is locked" at once:
    SQLite does not call the busy handler for this pragma. Retry until the busy timeout instead.
    """
    import sqlite3

    deadline = time.monotonic() + busy_timeout_seconds
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _configure_sqlite(engine: Any, busy_timeout_seconds: float) -> None:
    """WAL (readers never block the writer), a busy timeout, and real transactions.

    The sqlite3 driver's legacy mode delays BEGIN until the first INSERT, so "is this run already
    published?" would be read outside the transaction; SQLAlchemy takes over BEGIN instead, and
    writers use BEGIN IMMEDIATE so the check and the inserts hold one write lock.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
        _switch_to_wal(cursor, busy_timeout_seconds)
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("offerflow_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


TRANSIENT = re.compile(
    r"connection refused|could not connect|connection timed out|timeout expired|server closed the connection"
    r"|terminating connection|lock timeout|database is locked|LockNotAvailable|could not obtain lock",
    re.IGNORECASE,
)
PERMANENT = re.compile(r"password authentication failed|authentication|does not exist|permission denied", re.IGNORECASE)


def transient_fault(message: str) -> bool:
    """Whether a database fault may pass on its own (retry) or will repeat (wrong login, missing database)."""
    return bool(TRANSIENT.search(message)) and not PERMANENT.search(message)


def _guarded(action: str) -> Callable[[Callable[..., _T]], Callable[..., _T]]:
    """Turn driver errors into a PublishTargetError naming the target, with every secret masked.

    The new error is raised after the `except` block has finished, so it carries no chained
    original exception whose text (or traceback locals) could still hold the password.
    """

    def wrap(method: Callable[..., _T]) -> Callable[..., _T]:
        @functools.wraps(method)
        def guarded(self: "SqlStore", *args: Any, **kwargs: Any) -> _T:
            try:
                return method(self, *args, **kwargs)
            except (DBAPIError, self.driver_error) as error:
                original = getattr(error, "orig", None) or error
                message = self.target.mask(f"{type(original).__name__}: {str(original).strip()}")
            hint = ""
            if re.search(r"lock timeout|database is locked|LockNotAvailable", message):
                hint = " (another publisher held the lock longer than publish.busy_timeout_seconds)"
            raise PublishTargetError(
                f"cannot {action} {self.target.description}: {message}{hint}", retryable=transient_fault(message)
            )

        return guarded

    return wrap


class SqlStore:
    """Publish runs to, and read them back from, the SQLite or PostgreSQL target."""

    def __init__(self, target: PublishTarget) -> None:
        self.target = target
        url = make_url(target.url)
        self.dialect = url.get_backend_name()
        self.tables = build_tables(target.schema if self.dialect == "postgresql" else None, target.prefix)
        if self.dialect == "postgresql":
            connect_args: dict[str, Any] = {"connect_timeout": target.connect_timeout_seconds, "application_name": "offerflow"}
        else:
            connect_args = {"timeout": target.busy_timeout_seconds}
        # No pool: connections never outlive a call, so a forked or killed process shares nothing.
        self.engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, target.busy_timeout_seconds)
        self.driver_error = self.engine.dialect.loaded_dbapi.Error
        self._writer = self.engine.execution_options(offerflow_write=True)

    def __enter__(self) -> "SqlStore":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    # --- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction holding the publisher lock (advisory lock / SQLite write lock)."""
        with self._writer.begin() as connection:
            if self.dialect == "postgresql":
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(self.target.busy_timeout_seconds * 1000)}")
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.tables.lock_key()})
            yield connection

    @_guarded("prepare the publication tables in")
    def ensure_schema(self) -> str:
        """Create or migrate the tables and view; "current" when nothing had to change."""
        return self._ensure_schema()

    def _ensure_schema(self) -> str:
        with self.engine.connect() as connection:
            if read_version(connection, self.tables) == SCHEMA_VERSION:
                return "current"
        with self._write() as connection:
            return migrate(connection, self.tables)

    @_guarded("publish to")
    def publish(self, record: RunRecord, frame: pd.DataFrame) -> str:
        """Write the run, its rows, the pointer and an event in one transaction; "published" or "already_published".

        An existing complete run is never rewritten (no duplicate rows). If it is no longer the
        current run, publishing it again makes it current (a "republish" event): running a
        configuration means "this is what we mail".
        """
        rows = assignment_rows(record.run_id, frame)
        self._ensure_schema()
        tables = self.tables
        with self._write() as connection:
            started = utc_now()
            existing = connection.execute(
                select(tables.runs.c.status, tables.runs.c.row_count).where(tables.runs.c.run_id == record.run_id)
            ).first()
            current = self._pointer(connection)
            if existing is not None:
                _check_existing(record.run_id, existing, len(rows))
                if current != record.run_id:
                    self._move_pointer(connection, "republish", record.run_id, current, started)
                return ALREADY_PUBLISHED
            connection.execute(insert(tables.runs).values(**_run_values(record, len(rows), started)))
            loaded = bulk_load(connection, tables.assignments, rows)
            if loaded != len(rows):
                raise StoreError(f"run {record.run_id}: the database loaded {loaded} rows of {len(rows)}; rolled back")
            self._move_pointer(connection, "publish", record.run_id, current, started)
        return PUBLISHED

    @_guarded("roll back in")
    def rollback(self, run_id: str) -> str:
        """Make an earlier complete run current again, recorded as a "rollback" event."""
        with self._write() as connection:
            if read_version(connection, self.tables) is None:
                raise StoreError(f"no publications in {self.target.description}")
            started = utc_now()
            status = connection.execute(select(self.tables.runs.c.status).where(self.tables.runs.c.run_id == run_id)).scalar()
            if status is None:
                raise StoreError(f"no run {run_id!r} in {self.target.description}")
            if status != COMPLETE:
                raise StoreError(f"run {run_id} has status {status!r}; only complete runs can be made current")
            current = self._pointer(connection)
            if current == run_id:
                return ALREADY_CURRENT
            self._move_pointer(connection, "rollback", run_id, current, started)
        return ROLLED_BACK

    def _move_pointer(self, connection: Connection, kind: str, run_id: str, previous: str | None, started: datetime) -> None:
        tables = self.tables
        moved = connection.execute(
            update(tables.current_run).where(tables.current_run.c.slot == POINTER_SLOT).values(run_id=run_id, published_at=started)
        )
        if moved.rowcount != 1:
            raise StoreError(f"{tables.current_run.name}: the pointer row is missing; the table was not created by offerflow")
        connection.execute(
            insert(tables.events).values(
                kind=kind, run_id=run_id, previous_run_id=previous, started_at=started, recorded_at=utc_now()
            )
        )

    def _pointer(self, connection: Connection) -> str | None:
        current_run = self.tables.current_run
        return connection.execute(select(current_run.c.run_id).where(current_run.c.slot == POINTER_SLOT)).scalar()

    # --- reading ------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether offerflow ever published here (never creates a database file just by looking)."""
        if self.dialect == "sqlite" and not Path(make_url(self.target.url).database or "").is_file():
            return False
        return self._version() is not None

    @_guarded("read from")
    def _version(self) -> int | None:
        with self.engine.connect() as connection:
            return read_version(connection, self.tables)

    @_guarded("read from")
    def _read(self, reader: Callable[[Connection], _T], empty: _T) -> _T:
        if self.dialect == "sqlite" and not Path(make_url(self.target.url).database or "").is_file():
            return empty
        with self.engine.connect() as connection:
            if read_version(connection, self.tables) is None:
                return empty
            return reader(connection)

    def current_run_id(self) -> str | None:
        """The run readers should use, or None before the first publication."""
        return self._read(self._pointer, None)

    def run(self, run_id: str) -> dict[str, Any] | None:
        """The run record (input_hashes parsed, timestamps ISO, plus is_current), or None."""
        runs = self.tables.runs

        def read(connection: Connection) -> dict[str, Any] | None:
            row = connection.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
            return None if row is None else _run_dict(row, self._pointer(connection))

        return self._read(read, None)

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Run records, newest first."""
        runs = self.tables.runs

        def read(connection: Connection) -> list[dict[str, Any]]:
            query = select(runs).order_by(runs.c.created_at.desc(), runs.c.run_id).limit(limit)
            current = self._pointer(connection)
            return [_run_dict(row, current) for row in connection.execute(query).mappings()]

        return self._read(read, [])

    def run_ids(self) -> list[str]:
        return sorted(record["run_id"] for record in self.runs())

    def assignment_count(self, run_id: str | None = None) -> int:
        """Rows of one run (or of all runs): the check that nothing was duplicated or half-written."""
        assignments = self.tables.assignments
        query = select(func.count()).select_from(assignments)
        if run_id is not None:
            query = query.where(assignments.c.run_id == run_id)
        return self._read(lambda connection: int(connection.execute(query).scalar_one()), 0)

    def read_assignments(self, run_id: str) -> pd.DataFrame:
        """A run's assignments ordered by customer id (stored as text)."""
        a = self.tables.assignments
        query = select(a.c.customer_id, a.c.segment_id, a.c.offer, a.c.predicted_probability, a.c.expected_cost,
                       a.c.expected_value)
        query = query.where(a.c.run_id == run_id).order_by(a.c.customer_id)
        columns = ["customer_id", "segment_id", "offer", "predicted_probability", "expected_cost", "expected_value"]
        return self._read(lambda c: pd.DataFrame(c.execute(query).all(), columns=columns), pd.DataFrame(columns=columns))

    def read_current_view(self) -> pd.DataFrame:
        """The `current_assignments` view: what downstream systems read."""
        def read(connection: Connection) -> pd.DataFrame:
            view = qualified(connection, self.tables, self.tables.view_name)
            frame = pd.read_sql_query(text(f"SELECT * FROM {view} ORDER BY customer_id"), connection)
            return frame

        return self._read(read, pd.DataFrame())

    def offer_segment_cells(self, run_id: str) -> pd.DataFrame:
        """Per (segment, offer): customers, expected conversions (sum of probabilities), expected cost."""
        a = self.tables.assignments
        query = (
            select(a.c.segment_id, a.c.offer, func.count(), func.sum(a.c.predicted_probability), func.sum(a.c.expected_cost))
            .where(a.c.run_id == run_id)
            .group_by(a.c.segment_id, a.c.offer)
            .order_by(a.c.segment_id, a.c.offer)
        )
        return self._read(lambda c: pd.DataFrame(c.execute(query).all(), columns=CELL_COLUMNS), pd.DataFrame(columns=CELL_COLUMNS))

    def events(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Publish, republish and rollback events, oldest first."""
        events = self.tables.events
        query = select(events).order_by(events.c.event_id)
        if run_id is not None:
            query = query.where(events.c.run_id == run_id)

        def read(connection: Connection) -> list[dict[str, Any]]:
            rows = connection.execute(query).mappings().all()
            return [{**row, "started_at": iso(row["started_at"]), "recorded_at": iso(row["recorded_at"])} for row in rows]

        return self._read(read, [])


def _check_existing(run_id: str, existing: Any, row_count: int) -> None:
    if existing.status != COMPLETE or existing.row_count != row_count:
        raise StoreError(
            f"run {run_id} already exists with status={existing.status!r}, row_count={existing.row_count}, "
            f"but this publication has {row_count} rows: refusing to overwrite a different run with the same id"
        )


def _run_values(record: RunRecord, row_count: int, created_at: datetime) -> dict[str, Any]:
    """The runs-table row: the record as the files target writes it, with the input hashes as JSON text."""
    values = record_as_dict(record, row_count, created_at)
    values["input_hashes"] = json.dumps(record.input_hashes, sort_keys=True)
    values["settings"] = json.dumps(record.settings, sort_keys=True)
    return values


def _run_dict(row: Any, current: str | None) -> dict[str, Any]:
    record = dict(row)
    record["input_hashes"] = json.loads(record["input_hashes"])
    record["settings"] = json.loads(record["settings"]) if record.get("settings") else {}
    record["created_at"] = iso(record["created_at"])
    record["is_current"] = record["run_id"] == current
    return record
