"""Publish stage: whole-customer counts, seeded assignment, lineage, and the one-transaction guarantee."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from offerflow.config import Params, load_params
from offerflow.catalog import Catalog
from offerflow.io import read_json, write_csv
from offerflow.publish import (
    ALREADY_PUBLISHED,
    PUBLISHED,
    PlanError,
    assign_from_plan,
    largest_remainder_counts,
    open_store as open_target_store,
    resolve_target,
)
from offerflow.stages import run_publish
from offerflow.publish import store as store_module
from offerflow.io import file_md5
from test_publish_support import (
    ARMS,
    COST,
    REPO,
    SEGMENT_COLUMNS,
    exact_hamilton,
    make_project,
    write_plan,
)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Params, Catalog, pd.DataFrame]:
    params = make_project(tmp_path / "project")
    layout = Catalog(params)
    return params, layout, write_plan(params, layout)


def open_store(params: Params):
    return open_target_store(resolve_target(params))


def snapshot(params: Params, layout: Catalog) -> dict[str, str | None]:
    """Content hashes of everything publish writes (database files included)."""
    database = params.path(params.publish.sqlite_path)
    paths = [layout.assignments, layout.publish_metrics, database, Path(f"{database}-wal")]
    return {str(p): file_md5(p) if p.exists() else None for p in paths}


# --- largest remainder --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("total", "shares", "expected"),
    [
        (7, [0.5, 0.3, 0.2], [4, 2, 1]),
        (3, [0.5, 0.5], [2, 1]),               # tie -> earlier arm
        (10, [1 / 3, 1 / 3, 1 / 3], [4, 3, 3]),
        (2, [0.25, 0.25, 0.25, 0.25], [1, 1, 0, 0]),
        (1, [0.0, 0.6, 0.4], [0, 1, 0]),
        (0, [0.2, 0.8], [0, 0]),
        (10, [0.1, 0.2, 0.7], [1, 2, 7]),      # float noise: 10 * 0.7 = 7.000000000000001
    ],
)
def test_largest_remainder_hand_examples(total, shares, expected):
    assert largest_remainder_counts(total, shares).tolist() == expected


def test_largest_remainder_properties_over_random_shares():
    rng = np.random.default_rng(20261124)
    for _ in range(400):
        k = int(rng.integers(1, 6))
        shares = rng.dirichlet(np.ones(k))
        shares[rng.random(k) < 0.2] = 0.0
        if shares.sum() == 0:
            shares[0] = 1.0
        shares = shares / shares.sum()
        total = int(rng.integers(0, 3000))
        counts = largest_remainder_counts(total, shares)
        assert counts.sum() == total
        assert np.all(counts >= 0)
        assert np.all(np.abs(counts - total * shares) < 1)
        assert np.all(counts[shares == 0] == 0)
        assert counts.tolist() == exact_hamilton(total, shares.tolist())


@pytest.mark.parametrize("shares", [[0.5, 0.4], [1.2, -0.2], [0.5, float("nan"), 0.5]])
def test_largest_remainder_rejects_invalid_shares(shares):
    with pytest.raises(PlanError, match="shares"):
        largest_remainder_counts(10, shares)


# --- assignment ---------------------------------------------------------------------------------

def small_plan() -> pd.DataFrame:
    rows = []
    for segment_id, n, shares in [(1, 7, (0.5, 0.3, 0.2)), (2, 3, (0.5, 0.5, 0.0))]:
        for arm, share, p in zip(ARMS, shares, (0.1, 0.2, 0.4)):
            rows.append({"segment_id": segment_id, "n_customers": n, "offer": arm, "share": share,
                         "expected_customers": n * share, "prob": p + segment_id / 100,
                         "expected_conversions": n * share * (p + segment_id / 100),
                         "expected_cost": COST[arm] * n * share * (p + segment_id / 100)})
    return pd.DataFrame(rows)


def test_assign_small_plan_by_hand():
    customers = pd.DataFrame({"customer_id": [105, 101, 109, 102, 104, 103, 110, 108, 106, 107],
                              "segment_id": [1, 1, 2, 1, 1, 1, 2, 1, 2, 1]})
    result = assign_from_plan(small_plan(), customers, seed=3)
    assert list(result.columns) == ["customer_id", "segment_id", "offer", "predicted_probability", "expected_cost"]
    assert result["customer_id"].tolist() == list(range(101, 111))
    counts = result.groupby(["segment_id", "offer"]).size().to_dict()
    assert counts == {(1, "dm1"): 4, (1, "dm2"): 2, (1, "dm3"): 1, (2, "dm1"): 2, (2, "dm2"): 1}
    merged = result.merge(customers, on=["customer_id", "segment_id"])
    assert len(merged) == 10  # every customer kept its own segment
    base = {"dm1": 0.1, "dm2": 0.2, "dm3": 0.4}
    for row in result.itertuples(index=False):
        probability = base[row.offer] + row.segment_id / 100
        assert row.predicted_probability == pytest.approx(probability)
        assert row.expected_cost == pytest.approx(COST[row.offer] * probability)


def test_assign_is_seeded_and_ignores_input_order(project):
    params, _, plan = project
    catalog = plan[["segment_id", *SEGMENT_COLUMNS]].drop_duplicates()
    customers = pd.read_csv(params.path(params.data.customers)).merge(catalog, on=SEGMENT_COLUMNS)
    first = assign_from_plan(plan, customers, seed=11)
    assert len(first) == len(customers) == first["customer_id"].nunique() == 5000
    pd.testing.assert_frame_equal(first, assign_from_plan(plan, customers, seed=11))
    shuffled = customers.sample(frac=1.0, random_state=5)
    pd.testing.assert_frame_equal(first, assign_from_plan(plan, shuffled, seed=11))
    other = assign_from_plan(plan, customers, seed=12)
    assert (other["offer"] != first["offer"]).sum() > 500
    # A different seed moves customers, never the counts.
    pd.testing.assert_series_equal(first.groupby(["segment_id", "offer"]).size(), other.groupby(["segment_id", "offer"]).size())
    for segment_id, rows in plan.groupby("segment_id"):
        got = first[first["segment_id"] == segment_id]["offer"].value_counts().reindex(ARMS, fill_value=0).tolist()
        assert got == exact_hamilton(int(rows["n_customers"].iloc[0]), rows["share"].tolist())


def test_assign_rejects_customers_the_plan_does_not_cover():
    customers = pd.DataFrame({"customer_id": range(11), "segment_id": [1] * 8 + [2] * 3})
    with pytest.raises(PlanError, match=r"segment_id 1: plan n_customers=7 but customers have 8"):
        assign_from_plan(small_plan(), customers, seed=1)
    customers = pd.DataFrame({"customer_id": range(11), "segment_id": [1] * 7 + [2] * 3 + [9]})
    with pytest.raises(PlanError, match=r"segment ids missing from the plan: \[9\]"):
        assign_from_plan(small_plan(), customers, seed=1)


# --- publish stage (SQLite) ---------------------------------------------------------------------

def test_publish_writes_database_csv_and_metrics(project):
    params, layout, plan = project
    result = run_publish(params)
    assert result["status"] == PUBLISHED and result["current_run_id"] == result["run_id"]
    run_id = result["run_id"]
    csv = pd.read_csv(layout.assignments)
    assert list(csv.columns) == ["run_id", "customer_id", "segment_id", "offer", "predicted_probability", "expected_cost"]
    assert len(csv) == 5000 and csv["customer_id"].is_unique and csv["customer_id"].is_monotonic_increasing
    assert set(csv["run_id"]) == {run_id}

    with open_store(params) as store:
        assert store.run_ids() == [run_id]
        assert store.current_run_id() == run_id
        assert store.assignment_count() == 5000
        stored = store.read_assignments(run_id)
        view = store.read_current_view()
        record = store.run(run_id)
        events = store.events()
    for frame in (stored, view):
        frame["customer_id"] = frame["customer_id"].astype("int64")
    stored = stored.sort_values("customer_id").reset_index(drop=True)
    assert stored.pop("expected_value").isna().all()  # coupon plans carry probabilities, not a separate value
    pd.testing.assert_frame_equal(stored, csv.drop(columns="run_id"), check_dtype=False, rtol=1e-12)
    view = view.sort_values("customer_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(view[csv.columns], csv, check_dtype=False, rtol=1e-12)

    assert record["status"] == "complete" and record["row_count"] == 5000 and record["is_current"]
    assert record["source"] == "segment_plan"
    assert [(e["kind"], e["run_id"], e["previous_run_id"]) for e in events] == [("publish", run_id, None)]
    assert record["model_md5"] is None and record["git_revision"] is None
    assert record["solver_status"] == "optimal"
    assert record["objective"] == pytest.approx(plan["expected_conversions"].sum())

    metrics = read_json(layout.publish_metrics)
    assert "status" not in metrics and "created_at" not in metrics
    assert metrics["target"] == "sqlite:///data/published/offerflow.sqlite"
    expected_counts = dict.fromkeys(ARMS, 0)
    for _, rows in plan.groupby("segment_id"):
        for arm, count in zip(rows["offer"], exact_hamilton(int(rows["n_customers"].iloc[0]), rows["share"].tolist())):
            expected_counts[arm] += count
    assert metrics["offer_counts"] == expected_counts
    assert metrics["assigned_expected_cost"] == pytest.approx(
        sum(COST[o] * p for o, p in zip(csv["offer"], csv["predicted_probability"])), rel=1e-9)

    with sqlite3.connect(params.path(params.publish.sqlite_path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_input_hashes_are_recorded_as_dvc_records_them(project):
    from dvc_data.hashfile.hash import file_md5 as dvc_file_md5

    params, layout, _ = project
    run_id = run_publish(params)["run_id"]
    with open_store(params) as store:
        record = store.run(run_id)
    hashes = record["input_hashes"]
    assert set(hashes) == {"customers", "history", "true_probabilities", "probability_table", "segment_plan",
                           "policy_evaluation", "gate_plan"}
    assert hashes["history"] is None and hashes["probability_table"] is None  # not produced in this project
    assert hashes["gate_plan"] is None  # the gate's fallback plan: not written here
    for role, relative in [("customers", "data/external/customers.csv"), ("true_probabilities", "data/external/visit_probability.csv"),
                           ("segment_plan", "data/processed/segment_plan.csv"), ("policy_evaluation", "reports/policy_evaluation.json")]:
        path = params.root / relative
        assert hashes[role] == {"path": relative, "md5": dvc_file_md5(str(path)), "size": path.stat().st_size}
    assert hashes["customers"]["md5"] == file_md5(REPO / "data/external/customers.csv")


def test_publishing_twice_changes_nothing_and_is_byte_identical(project, tmp_path):
    params, layout, _ = project
    first = run_publish(params)
    csv_bytes, metrics_bytes = layout.assignments.read_bytes(), layout.publish_metrics.read_bytes()
    second = run_publish(params)
    assert second["status"] == ALREADY_PUBLISHED and second["run_id"] == first["run_id"]
    assert layout.assignments.read_bytes() == csv_bytes
    assert layout.publish_metrics.read_bytes() == metrics_bytes
    with open_store(params) as store:
        assert store.run_ids() == [first["run_id"]]
        assert store.assignment_count() == 5000
        assert len(store.events()) == 1  # the repeat wrote no event either

    # Another checkout of the same inputs names the same run and writes the same bytes.
    other_params = make_project(tmp_path / "elsewhere")
    other_layout = Catalog(other_params)
    write_plan(other_params, other_layout)
    assert run_publish(other_params)["run_id"] == first["run_id"]
    assert other_layout.assignments.read_bytes() == csv_bytes
    assert other_layout.publish_metrics.read_bytes() == metrics_bytes


def test_new_seed_is_a_new_current_run_and_republishing_the_old_one_restores_it(project):
    params, layout, _ = project
    first = run_publish(params)
    reseeded = load_params(params.root / "params.yaml", overrides={"publish.seed": 12})
    second = run_publish(reseeded)
    assert second["status"] == PUBLISHED and second["run_id"] != first["run_id"]
    with open_store(params) as store:
        assert sorted(store.run_ids()) == sorted([first["run_id"], second["run_id"]])
        assert store.current_run_id() == second["run_id"]
    again = run_publish(params)
    assert again["status"] == ALREADY_PUBLISHED and again["run_id"] == first["run_id"]
    with open_store(params) as store:
        assert store.current_run_id() == first["run_id"]
        assert store.assignment_count() == 10_000
        kinds = [(e["kind"], e["run_id"], e["previous_run_id"]) for e in store.events()]
    assert kinds == [("publish", first["run_id"], None), ("publish", second["run_id"], first["run_id"]),
                     ("republish", first["run_id"], second["run_id"])]


def test_lineage_follows_model_file_and_git_revision(project, tmp_path):
    params, layout, _ = project
    plain = run_publish(params)["run_id"]

    layout.model.parent.mkdir(parents=True, exist_ok=True)
    layout.model.write_bytes(b"model bytes")
    with_model = run_publish(params)
    assert with_model["run_id"] != plain
    with open_store(params) as store:
        assert store.run(with_model["run_id"])["model_md5"] == hashlib.md5(b"model bytes").hexdigest()

    repo = make_project(tmp_path / "gitproject")
    git = ["git", "-C", str(repo.root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "params.yaml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    repo_layout = Catalog(repo)
    write_plan(repo, repo_layout)
    published = run_publish(repo)
    assert published["git_revision"] == head
    assert published["run_id"] == plain  # the revision is recorded, not part of the run id


def test_mismatching_plan_is_rejected_before_anything_is_written(project):
    params, layout, plan = project
    run_publish(params)
    before = snapshot(params, layout)

    wrong_size = plan.copy()
    wrong_size.loc[wrong_size["segment_id"] == 3, "n_customers"] += 1
    actual = int(plan.loc[plan["segment_id"] == 3, "n_customers"].iloc[0])
    write_csv(wrong_size, layout.segment_plan)
    with pytest.raises(PlanError, match=rf"segment_id 3 .*plan n_customers={actual + 1} but customers have {actual}"):
        run_publish(params)

    missing = plan[plan["segment_id"] != 5]
    write_csv(missing, layout.segment_plan)
    row = plan[plan["segment_id"] == 5].iloc[0]
    with pytest.raises(PlanError, match=rf"age_cat='{row.age_cat}', freq_cat='{row.freq_cat}'\) has {row.n_customers} customers but is missing from the plan"):
        run_publish(params)

    unknown_offer = plan.replace({"offer": {"dm3": "dm9"}})
    write_csv(unknown_offer, layout.segment_plan)
    with pytest.raises(PlanError, match=r"segment_plan.csv: column 'offer' has values \['dm9'\]"):
        run_publish(params)
    assert snapshot(params, layout) == before


def test_failure_inside_the_transaction_leaves_the_previous_run_current(project, monkeypatch):
    params, layout, _ = project
    first = run_publish(params)
    before = snapshot(params, layout)
    real_load = store_module.bulk_load

    def load_half_then_fail(connection, table, rows):
        real_load(connection, table, rows.slice(0, len(rows) // 2))
        raise RuntimeError("connection lost mid-publish")

    monkeypatch.setattr(store_module, "bulk_load", load_half_then_fail)
    reseeded = load_params(params.root / "params.yaml", overrides={"publish.seed": 12})
    with pytest.raises(RuntimeError, match="connection lost"):
        run_publish(reseeded)
    with open_store(params) as store:
        assert store.run_ids() == [first["run_id"]]
        assert store.current_run_id() == first["run_id"]
        assert store.assignment_count() == 5000
        assert len(store.events()) == 1
    assert {k: v for k, v in snapshot(params, layout).items() if "sqlite" not in k} == {
        k: v for k, v in before.items() if "sqlite" not in k}

    monkeypatch.setattr(store_module, "bulk_load", real_load)
    retried = run_publish(reseeded)
    assert retried["status"] == PUBLISHED
    with open_store(params) as store:
        assert store.current_run_id() == retried["run_id"]
        assert store.assignment_count(retried["run_id"]) == 5000
