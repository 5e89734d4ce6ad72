"""The publication schema: tables, the current-assignments view, and idempotent migrations.

Table and schema names come from params.yaml (publish.schema, publish.table_prefix), so they are
checked against a strict identifier pattern and always quoted: a name is never pasted into SQL
unchecked. The schema carries a version number; `migrate` brings any database (empty, created by
the foundation publish stage, or current) to the latest version under the publisher lock, so
concurrent first publications cannot race each other into half-created tables.

Assignments have no foreign key to runs on purpose: the check costs a trigger per row (it tripled
the time of a 1M-row COPY) and adds nothing, because a run row and its assignment rows are only
ever written together in one transaction.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection

from offerflow.publish.lineage import StoreError

SCHEMA_VERSION = 2  # 2: runs.settings (budget, objective, learner, constraints, gate), assignments.expected_value
POINTER_SLOT = 1
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_PREFIX_LENGTH = 40
MAX_SCHEMA_LENGTH = 63
VIEW = "current_assignments"
ASSIGNMENT_FIELDS = ("run_id", "customer_id", "segment_id", "offer", "predicted_probability", "expected_cost", "expected_value")


def check_identifier(value: str, key: str, max_length: int, allow_empty: bool = False) -> str:
    """`value` if it is a safe SQL name (lower-case letters, digits, underscores), else a StoreError naming `key`."""
    if value == "" and allow_empty:
        return value
    if not IDENTIFIER.match(value) or len(value) > max_length:
        raise StoreError(
            f"{key} must match {IDENTIFIER.pattern} and have at most {max_length} characters, got {value!r}"
        )
    return value


def _key(length: int) -> String:
    """Text key compared byte-wise: PostgreSQL's "C" collation (SQLite's default BINARY is already byte-wise).

    Byte-wise keys make B-tree inserts of pre-sorted rows append-only, which speeds up a 1M-row COPY.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


@dataclass(frozen=True)
class Tables:
    """The publication tables for one (schema, prefix), with quoted names."""

    metadata: MetaData
    runs: Table
    assignments: Table
    current_run: Table
    events: Table
    schema_version: Table
    schema: str | None
    prefix: str

    @property
    def view_name(self) -> str:
        return f"{self.prefix}{VIEW}"

    def lock_key(self) -> int:
        """PostgreSQL advisory lock id shared by every publisher of these tables (signed 64-bit)."""
        digest = hashlib.sha256(f"offerflow.publish|{self.schema or ''}|{self.prefix}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


def build_tables(schema: str | None = None, prefix: str = "") -> Tables:
    """Table objects named `<prefix>runs`, ... in `schema` (None: the connection's default schema)."""
    if schema is not None:
        check_identifier(schema, "publish.schema", MAX_SCHEMA_LENGTH)
    check_identifier(prefix, "publish.table_prefix", MAX_PREFIX_LENGTH, allow_empty=True)
    metadata = MetaData()
    options = {"schema": schema, "quote": True, "quote_schema": True}
    runs = Table(
        f"{prefix}runs", metadata,
        Column("run_id", _key(64), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("status", String(32), nullable=False),
        Column("params_hash", String(64), nullable=False),
        Column("input_hashes", Text, nullable=False),
        Column("model_md5", String(64)),
        Column("git_revision", String(64)),
        Column("solver_status", String(64)),
        Column("objective", Double),
        Column("expected_cost", Double),
        Column("row_count", BigInteger, nullable=False),
        Column("source", String(32)),
        Column("settings", Text),
        **options,
    )
    assignments = Table(
        f"{prefix}assignments", metadata,
        Column("run_id", _key(64), nullable=False),
        Column("customer_id", _key(255), nullable=False),
        Column("segment_id", BigInteger, nullable=False),
        Column("offer", String(64), nullable=False),
        Column("predicted_probability", Double),  # a conversion probability: null where the offer has none
        Column("expected_cost", Double, nullable=False),
        Column("expected_value", Double),  # the objective's value of the offer (discount profit, journey value)
        PrimaryKeyConstraint("run_id", "customer_id", name=f"{prefix}assignments_pkey"),
        sqlite_with_rowid=False,
        **options,
    )
    current_run = Table(
        f"{prefix}current_run", metadata,
        Column("slot", Integer, primary_key=True, autoincrement=False),
        Column("run_id", _key(64), ForeignKey(runs.c.run_id)),
        Column("published_at", DateTime(timezone=True)),
        CheckConstraint(f"slot = {POINTER_SLOT}", name=f"{prefix}current_run_single_row"),
        **options,
    )
    events = Table(
        f"{prefix}events", metadata,
        Column("event_id", Integer, primary_key=True, autoincrement=True),
        Column("kind", String(16), nullable=False),
        Column("run_id", _key(64), nullable=False),
        Column("previous_run_id", _key(64)),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
        **options,
    )
    schema_version = Table(
        f"{prefix}schema_version", metadata,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("migrated_at", DateTime(timezone=True), nullable=False),
        **options,
    )
    return Tables(metadata, runs, assignments, current_run, events, schema_version, schema, prefix)


def qualified(connection: Connection, tables: Tables, name: str) -> str:
    """A quoted (schema-qualified) name for hand-written SQL."""
    preparer = connection.dialect.identifier_preparer
    quoted = preparer.quote_identifier(name)
    return f"{preparer.quote_identifier(tables.schema)}.{quoted}" if tables.schema else quoted


def quoted_table(connection: Connection, table: Table) -> str:
    return connection.dialect.identifier_preparer.format_table(table)


def read_version(connection: Connection, tables: Tables) -> int | None:
    """Schema version recorded in the database, or None when offerflow never migrated it."""
    if not inspect(connection).has_table(tables.schema_version.name, schema=tables.schema):
        return None
    return connection.execute(select(tables.schema_version.c.version)).scalar()


def _create_schema(connection: Connection, schema: str) -> None:
    """CREATE SCHEMA only when missing (IF NOT EXISTS still needs the CREATE privilege on the database)."""
    exists = connection.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": schema}).first()
    if exists is None:
        connection.exec_driver_sql(f"CREATE SCHEMA {connection.dialect.identifier_preparer.quote_identifier(schema)}")


def _create_view(connection: Connection, tables: Tables) -> None:
    columns = ", ".join(f"a.{name}" for name in ASSIGNMENT_FIELDS)
    create = "CREATE OR REPLACE VIEW" if connection.dialect.name == "postgresql" else "CREATE VIEW IF NOT EXISTS"
    connection.exec_driver_sql(
        f"{create} {qualified(connection, tables, tables.view_name)} AS SELECT {columns} "
        f"FROM {quoted_table(connection, tables.assignments)} AS a "
        f"JOIN {quoted_table(connection, tables.current_run)} AS c ON c.run_id = a.run_id"
    )


def _adopt_foundation_layout(connection: Connection, tables: Tables) -> None:
    """Bring a database written by the first publish stage (sha256 model hash, no source, no events) up to date."""
    columns = {column["name"] for column in inspect(connection).get_columns(tables.runs.name, schema=tables.schema)}
    if "model_sha256" not in columns or "model_md5" in columns:
        raise StoreError(
            f"table {tables.runs.name} exists but has no schema version and is not an offerflow layout "
            f"(columns {sorted(columns)}): choose another publish.table_prefix or publish.schema"
        )
    runs = quoted_table(connection, tables.runs)
    connection.exec_driver_sql(f"ALTER TABLE {runs} RENAME COLUMN model_sha256 TO model_md5")
    connection.exec_driver_sql(f"ALTER TABLE {runs} ADD COLUMN source VARCHAR(32)")


def migrate(connection: Connection, tables: Tables) -> str:
    """Bring the schema to SCHEMA_VERSION inside the caller's locked transaction; says what it did.

    Idempotent: a current schema is left alone, so every publication can call it at startup.
    """
    if tables.schema and connection.dialect.name == "postgresql":
        _create_schema(connection, tables.schema)
    version = read_version(connection, tables)
    if version == SCHEMA_VERSION:
        return "current"
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(
            f"the publication schema is at version {version}, newer than this offerflow ({SCHEMA_VERSION}): upgrade offerflow"
        )
    adopted = version is None and inspect(connection).has_table(tables.runs.name, schema=tables.schema)
    if adopted:
        _adopt_foundation_layout(connection, tables)
    if adopted or version == 1:
        connection.exec_driver_sql(f"ALTER TABLE {quoted_table(connection, tables.runs)} ADD COLUMN settings TEXT")
        assignments = quoted_table(connection, tables.assignments)
        connection.exec_driver_sql(f"ALTER TABLE {assignments} ADD COLUMN expected_value DOUBLE PRECISION")
        if connection.dialect.name == "sqlite":  # SQLite cannot replace a view: drop it, it is recreated below
            connection.exec_driver_sql(f"DROP VIEW IF EXISTS {qualified(connection, tables, tables.view_name)}")
    tables.metadata.create_all(connection, checkfirst=True)
    if connection.execute(select(tables.current_run.c.slot)).first() is None:
        connection.execute(insert(tables.current_run).values(slot=POINTER_SLOT, run_id=None))
    _create_view(connection, tables)
    connection.execute(delete(tables.schema_version))
    connection.execute(insert(tables.schema_version).values(version=SCHEMA_VERSION, migrated_at=datetime.now(timezone.utc)))
    if adopted:
        return "migrated from the foundation layout"
    return "migrated from version 1" if version == 1 else "created"
