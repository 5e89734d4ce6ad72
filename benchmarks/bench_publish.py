"""Benchmark: publishing 100k and 1M assignments to SQLite and PostgreSQL, against naive row-by-row INSERTs.

Run:  .venv/bin/python benchmarks/bench_publish.py [--sizes 100000 1000000] [--naive-sample 20000]

"publish" is offerflow's real path (SqlStore.publish: one transaction with the run row, the rows
- COPY on PostgreSQL, executemany on SQLite - the current-run pointer and the event). "naive" is
the same transaction with one INSERT statement per row through SQLAlchemy, measured in this run:
in full up to --naive-full rows, above that extrapolated from a --naive-sample row sample (marked
"extrapolated"). PostgreSQL is the local server on 127.0.0.1:5432 (a throwaway database that is
dropped at the end); without it only SQLite is measured. Target: 1M rows into PostgreSQL < 10 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, insert
from sqlalchemy.pool import NullPool

from offerflow.publish.lineage import RunRecord
from offerflow.publish.store import SqlStore, utc_now
from offerflow.publish.target import PublishTarget

SEED = 20261124
PG_SERVER = os.environ.get("OFFERFLOW_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
COSTS = np.array([0.0, 10.0, 20.0])


def assignments(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    arm = rng.integers(0, 3, size=rows)
    probability = rng.uniform(0.01, 0.6, size=rows)
    return pd.DataFrame({
        "customer_id": np.arange(1, rows + 1, dtype="int64"),
        "segment_id": rng.integers(1, 17, size=rows),
        "offer": np.array(["dm1", "dm2", "dm3"])[arm],
        "predicted_probability": probability,
        "expected_cost": COSTS[arm] * probability,
    })


def record(run_id: str) -> RunRecord:
    return RunRecord(run_id=run_id, params_hash="0" * 64, input_hashes={}, model_md5=None, git_revision=None,
                     solver_status="optimal", objective=1.0, expected_cost=1.0)


def time_publish(store: SqlStore, frame: pd.DataFrame, run_id: str) -> float:
    started = time.perf_counter()
    store.publish(record(run_id), frame)
    seconds = time.perf_counter() - started
    assert store.assignment_count(run_id) == len(frame), "row count mismatch"
    return seconds


def time_naive(store: SqlStore, frame: pd.DataFrame, run_id: str) -> float:
    """One INSERT statement per row, inside one transaction (what straightforward ORM-style code does)."""
    tables = store.tables
    rows = frame.assign(run_id=run_id, customer_id=frame["customer_id"].astype(str)).to_dict("records")
    started = time.perf_counter()
    with store._write() as connection:
        connection.execute(insert(tables.runs).values(
            run_id=run_id, created_at=utc_now(), status="complete", params_hash="0" * 64, input_hashes="{}",
            row_count=len(rows)))
        for row in rows:
            connection.execute(insert(tables.assignments).values(**row))
    return time.perf_counter() - started


def throwaway_postgres() -> tuple[str, Callable[[], None]] | None:
    name = f"offerflow_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{PG_SERVER}/postgres", poolclass=NullPool, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as error:  # noqa: BLE001 - report and go on with SQLite only
        print(f"PostgreSQL not measured: {type(error).__name__}: {str(error).splitlines()[0]}")
        return None

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return f"{PG_SERVER}/{name}", drop


def measure(kind: str, target: PublishTarget, sizes: list[int], naive_full: int, naive_sample: int) -> list[dict]:
    results = []
    with SqlStore(target) as store:
        store.ensure_schema()
        for size in sizes:
            frame = assignments(size)
            seconds = time_publish(store, frame, f"fast{size}")
            if size <= naive_full:
                naive_seconds, note = time_naive(store, frame, f"naive{size}"), "measured"
            else:
                sample = min(naive_sample, size)
                naive_seconds = time_naive(store, frame.iloc[:sample], f"naive{size}") * size / sample
                note = f"extrapolated from {sample:,} rows"
            results.append({"target": kind, "rows": size, "seconds": seconds, "naive_seconds": naive_seconds, "naive_note": note})
            print(f"  {kind} {size:,} rows: publish {seconds:.2f} s, naive {naive_seconds:.1f} s ({note})", flush=True)
    return results


def print_table(results: list[dict]) -> None:
    header = f"{'target':<11} {'rows':>10} {'publish s':>10} {'rows/s':>12} {'naive s':>10} {'naive rows/s':>13} {'speedup':>8}  naive baseline"
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['target']:<11} {r['rows']:>10,} {r['seconds']:>10.2f} {r['rows'] / r['seconds']:>12,.0f} "
              f"{r['naive_seconds']:>10.1f} {r['rows'] / r['naive_seconds']:>13,.0f} {r['naive_seconds'] / r['seconds']:>7.1f}x  {r['naive_note']}")
    pg_1m = [r for r in results if r["target"] == "postgresql" and r["rows"] == 1_000_000]
    if pg_1m:
        verdict = "met" if pg_1m[0]["seconds"] < 10 else "MISSED"
        print(f"\ntarget 1M rows into PostgreSQL < 10 s: {verdict} ({pg_1m[0]['seconds']:.2f} s on {os.cpu_count()} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--naive-full", type=int, default=100_000, help="measure the naive baseline in full up to this size")
    parser.add_argument("--naive-sample", type=int, default=20_000, help="rows of the naive sample above --naive-full")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "bench.sqlite"
        target = PublishTarget("sqlite", "sqlite", url=f"sqlite:///{database}")
        results += measure("sqlite", target, args.sizes, args.naive_full, args.naive_sample)
    postgres = throwaway_postgres()
    if postgres is not None:
        url, drop = postgres
        try:
            results += measure("postgresql", PublishTarget("postgresql", "postgresql", url=url), args.sizes,
                               args.naive_full, args.naive_sample)
        finally:
            drop()
    print_table(results)


if __name__ == "__main__":
    main()
