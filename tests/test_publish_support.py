"""Shared helpers of the publish tests (no tests here): throwaway projects, plans, PostgreSQL databases."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from offerflow.config import Params, load_params
from offerflow.catalog import Catalog
from offerflow.io import write_csv, write_json, write_parquet
from offerflow.publish.lineage import RunRecord
from offerflow.publish.target import PublishTarget

REPO = Path(__file__).resolve().parents[1]
ARMS = ["dm1", "dm2", "dm3"]
COST = {"dm1": 0.0, "dm2": 10.0, "dm3": 20.0}
SEGMENT_COLUMNS = ["age_cat", "freq_cat"]
# Segment i gets SHARE_PATTERNS[i % 4]; the patterns include a tie (1/3 each) and a 0.5 remainder.
SHARE_PATTERNS = [(0.5, 0.3, 0.2), (0.1, 0.1, 0.8), (1 / 3, 1 / 3, 1 / 3), (0.2, 0.45, 0.35)]
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def exact_hamilton(total: int, shares: list[float]) -> list[int]:
    """Reference apportionment in exact rational arithmetic (ties to the earlier arm)."""
    exact = [Fraction(s) for s in shares]
    quotas = [Fraction(total) * s / sum(exact) for s in exact]
    counts = [q.numerator // q.denominator for q in quotas]
    order = sorted(range(len(shares)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def make_project(root: Path, **overrides) -> Params:
    """A throwaway project: params.yaml and the example inputs copied into `root`."""
    root.mkdir(parents=True, exist_ok=True)
    tree = yaml.safe_load((REPO / "params.yaml").read_text())
    tree["publish"]["source"] = "segment_plan"  # these tests publish hand-written segment plans unless they say so
    (root / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    shutil.copytree(REPO / "data" / "external", root / "data" / "external", dirs_exist_ok=True)
    (root / "expectations").mkdir(exist_ok=True)
    params = load_params(root / "params.yaml", overrides=overrides or None)
    write_gate_verdict(params, candidate_published=True)
    return params


def write_gate_verdict(params: Params, candidate_published: bool, published: str = "candidate") -> None:
    """The evaluate stage's verdict that publish reads (these tests exercise publishing, not the gate)."""
    write_json({"candidate_published": candidate_published, "published": published, "reason": "set by the test",
                "incumbent_run_id": None}, params.root / "reports/policy_evaluation.json")


def write_plan(params: Params, layout: Catalog) -> pd.DataFrame:
    """A valid segment plan for the example customers, in the optimize stage's long format."""
    customers = pd.read_csv(params.path(params.data.customers))
    table = pd.read_csv(params.path(params.data.true_probabilities))
    sizes = customers.groupby(SEGMENT_COLUMNS).size().rename("n_customers").reset_index()
    segments = table.merge(sizes, on=SEGMENT_COLUMNS, how="left").sort_values("segment_id")
    rows = []
    for i, segment in enumerate(segments.itertuples(index=False)):
        n = int(segment.n_customers)
        for arm, share in zip(ARMS, SHARE_PATTERNS[i % len(SHARE_PATTERNS)]):
            p = getattr(segment, f"prob_{arm}")
            rows.append({
                "segment_id": segment.segment_id, "age_cat": segment.age_cat, "freq_cat": segment.freq_cat,
                "n_customers": n, "offer": arm, "share": share, "expected_customers": n * share, "prob": p,
                "expected_conversions": n * share * p,
                "expected_incremental_conversions": n * share * (p - segment.prob_dm1),
                "expected_cost": COST[arm] * n * share * p,
            })
    plan = pd.DataFrame(rows)
    write_csv(plan, layout.segment_plan)
    write_json(
        {"objective": float(plan["expected_conversions"].sum()), "expected_cost": float(plan["expected_cost"].sum()),
         "budget": 10000.0, "solver": {"name": "appsi_highs", "termination": "optimal"}},
        layout.optimize_metrics,
    )
    return plan


def write_customer_plan(params: Params, seed: int = 3, with_probabilities: bool = True) -> pd.DataFrame:
    """A customer-level plan for the example customers (a seeded offer each, probabilities from the true table),
    and metrics in the format of the allocate stage's reports/allocate_metrics.json."""
    customers = pd.read_csv(params.path(params.data.customers))
    table = pd.read_csv(params.path(params.data.true_probabilities))
    merged = customers.merge(table, on=SEGMENT_COLUMNS, how="left")
    offers = np.random.default_rng(seed).choice(ARMS, size=len(merged))
    probability = np.array([merged.loc[i, f"prob_{offer}"] for i, offer in enumerate(offers)])
    plan = pd.DataFrame({"customer_id": merged["customer_id"], "offer": offers})
    if with_probabilities:
        plan["predicted_probability"] = probability
        plan["expected_cost"] = [COST[o] * p for o, p in zip(offers, probability)]
    write_parquet(plan, Catalog(params).customer_plan)
    cost = float(sum(COST[o] * p for o, p in zip(offers, probability)))
    write_json({"customers": len(plan), "budget": 10000.0, "objective": 321.5, "dual_bound": 321.5, "optimality_gap": 0.0,
                "relative_gap": 0.0, "expected_cost": cost}, params.root / "reports/allocate_metrics.json")
    return plan


def synthetic_assignments(rows: int, seed: int = 0) -> pd.DataFrame:
    """Assignment rows for store-level tests (ids 0..rows-1; segment, offer, probability drawn from `seed`)."""
    rng = np.random.default_rng(seed)
    offers = rng.choice(ARMS, size=rows)
    probability = rng.uniform(0.01, 0.5, size=rows)
    return pd.DataFrame({
        "customer_id": np.arange(rows, dtype="int64"),
        "segment_id": rng.integers(1, 17, size=rows),
        "offer": offers,
        "predicted_probability": probability,
        "expected_cost": np.array([COST[o] for o in offers]) * probability,
    })


def run_record(run_id: str, objective: float = 100.0) -> RunRecord:
    return RunRecord(
        run_id=run_id, params_hash="p" * 64, input_hashes={"customers": {"path": "c.csv", "md5": "0" * 32, "size": 1}},
        model_md5=None, git_revision=None, solver_status="optimal", objective=objective, expected_cost=objective * 2,
    )


def sqlite_target(path: Path, prefix: str = "") -> PublishTarget:
    return PublishTarget("sqlite", f"sqlite:///{path}", url=f"sqlite:///{path}", prefix=prefix)


def postgres_target(url: str, schema: str | None = None, prefix: str = "", busy_timeout_seconds: float = 30.0) -> PublishTarget:
    return PublishTarget("postgresql", url, url=url, schema=schema, prefix=prefix, busy_timeout_seconds=busy_timeout_seconds)


def _unreachable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but PostgreSQL is unusable: {reason}")
    pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable and CI is not set: {reason}")


@contextlib.contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh database offerflow_test_<random> on the local server, dropped afterwards; yields its URL."""
    name = f"offerflow_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{PG_SERVER}/postgres", poolclass=NullPool, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as error:  # noqa: BLE001 - any reason the server is unusable decides skip/fail
        admin.dispose()
        _unreachable(f"{type(error).__name__}: {error}".splitlines()[0])
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def pg_count(url: str, sql: str) -> int:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()
