"""Faults with real processes: SIGKILL mid-publication, and two publishers at once (SQLite, PostgreSQL, files).

Each publisher is a real child process (forked, so it starts in milliseconds) that publishes a
40k-row run; the test kills it after a random delay spread over the whole publication, then
checks the invariants readers rely on: every visible run is complete, nothing else is visible,
and the current run is the last one that committed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
import uuid
from typing import Iterator

import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from offerflow.catalog import Catalog
from offerflow.publish import ALREADY_PUBLISHED, PUBLISHED, open_store, resolve_target
from offerflow.publish.target import FILES, PublishTarget
from test_publish_support import postgres_target, run_record, sqlite_target, synthetic_assignments, throwaway_database

SEED = 20261124
ROWS = 40_000
KILL_TRIALS = {"sqlite": 11, "postgresql": 11, "files": 4}  # 22 across the two databases
FORK = multiprocessing.get_context("fork")
FRAME = synthetic_assignments(ROWS, seed=SEED)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql", "files"])
def target(request, tmp_path) -> PublishTarget:
    if request.param == "sqlite":
        return sqlite_target(tmp_path / "published.sqlite")
    if request.param == "files":
        return PublishTarget(FILES, "files:published", directory=tmp_path / "published")
    url = request.getfixturevalue("pg_url")
    return postgres_target(url, schema="faults", prefix=f"t{uuid.uuid4().hex[:8]}_")


def publish_in_child(target: PublishTarget, run_id: str, seed: int, results=None, start=None, ready=None) -> None:
    frame = FRAME if seed == SEED else synthetic_assignments(ROWS, seed=seed)
    if start is not None:
        start.wait(30)
    if ready is not None:
        ready.set()
    with open_store(target) as store:
        status = store.publish(run_record(run_id), frame)
    if results is not None:
        results.put((run_id, status))


def wait_for_server_to_forget_dead_clients(target: PublishTarget) -> None:
    """A killed client's backend may still be finishing (rolling back or committing): wait until it is gone."""
    if target.kind != "postgresql":
        return
    engine = create_engine(target.url, poolclass=NullPool)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                busy = connection.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'offerflow' AND pid <> pg_backend_pid()")).scalar_one()
            if busy == 0:
                return
            time.sleep(0.02)
        raise AssertionError("a killed publisher's session is still active on the server after 20 s")
    finally:
        engine.dispose()


def check_consistent(store, killed: str | None = None) -> dict:
    """Every visible run is complete; no orphan rows; the pointer names the last committed run."""
    runs = {r["run_id"]: r for r in store.runs()}
    for run_id, record in runs.items():
        assert record["status"] == "complete" and record["row_count"] == ROWS, record
        assert store.assignment_count(run_id) == ROWS, run_id
    assert store.assignment_count() == ROWS * len(runs)  # no rows of a run that is not visible
    events = store.events()
    assert [e["run_id"] for e in events if e["kind"] == "publish"] == sorted(runs, key=lambda r: runs[r]["created_at"])
    assert store.current_run_id() == events[-1]["run_id"]
    if killed is not None and killed not in runs:
        assert all(e["run_id"] != killed for e in events)
    return runs


def test_sigkill_at_random_points_leaves_no_partial_run_and_keeps_the_previous_current(target):
    with open_store(target) as store:
        store.ensure_schema()
    # Calibrate on a child that is left alone: kill delays then spread over a whole publication.
    ready = FORK.Event()
    child = FORK.Process(target=publish_in_child, args=(target, "base", SEED), kwargs={"ready": ready})
    child.start()
    assert ready.wait(30)
    started = time.perf_counter()
    child.join(60)
    full_publish_seconds = time.perf_counter() - started
    assert child.exitcode == 0
    rng = np.random.default_rng([SEED, len(target.kind)])
    outcomes = {"killed before commit": 0, "committed before kill": 0}
    trials = KILL_TRIALS[target.kind]
    for trial in range(trials):
        with open_store(target) as store:
            before = store.current_run_id()
        run_id = f"kill{trial:02d}"
        ready = FORK.Event()
        child = FORK.Process(target=publish_in_child, args=(target, run_id, SEED), kwargs={"ready": ready})
        child.start()
        assert ready.wait(30)
        # Stratified random delays: trial i dies somewhere in the i-th slice of [0, 1.2 x a full publication].
        time.sleep((trial + rng.uniform()) / trials * 1.2 * full_publish_seconds)
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
        wait_for_server_to_forget_dead_clients(target)
        with open_store(target) as store:
            runs = check_consistent(store, killed=run_id)
            if run_id in runs:
                outcomes["committed before kill"] += 1
                assert store.current_run_id() == run_id
            else:
                outcomes["killed before commit"] += 1
                assert store.current_run_id() == before  # the previous publication stays current
                assert store.assignment_count(run_id) == 0
    print(f"{target.kind}: full publish {full_publish_seconds:.2f} s, outcomes {outcomes}")
    assert outcomes["killed before commit"] >= 1
    # After all the killing, publishing still works (no stale lock) and republishing adds nothing.
    with open_store(target) as store:
        assert store.publish(run_record("after"), FRAME) == PUBLISHED
        assert store.publish(run_record("after"), FRAME) == ALREADY_PUBLISHED
        check_consistent(store)
        assert store.current_run_id() == "after"


def start_together(children, start) -> None:
    """Start the publisher processes, release them at once, and require each to finish cleanly."""
    for child in children:
        child.start()
    start.set()
    for child in children:
        child.join(60)
        assert child.exitcode == 0


def test_two_publishers_at_once_are_serialized(target):
    results = FORK.Queue()
    start = FORK.Event()
    children = [FORK.Process(target=publish_in_child, args=(target, run_id, seed, results, start))
                for run_id, seed in (("left", SEED), ("right", SEED + 1))]
    start_together(children, start)
    assert sorted(results.get(timeout=5) for _ in children) == [("left", PUBLISHED), ("right", PUBLISHED)]
    with open_store(target) as store:
        check_consistent(store)
        first, second = store.events()
        # Serialized: the second publisher started (holding the lock) after the first recorded its
        # event, and it saw the first one's committed run as the current one.
        assert second["started_at"] > first["recorded_at"]
        assert second["previous_run_id"] == first["run_id"]
        assert store.current_run_id() == second["run_id"]
        for run_id, seed in (("left", SEED), ("right", SEED + 1)):
            stored = store.read_assignments(run_id)
            expected = synthetic_assignments(ROWS, seed=seed)
            assert stored["customer_id"].astype("int64").sort_values().tolist() == list(range(ROWS))
            merged = stored.assign(customer_id=stored["customer_id"].astype("int64")).merge(expected, on="customer_id")
            assert (merged["offer_x"] == merged["offer_y"]).all()  # no rows of one run under the other's id


def test_the_same_run_from_two_processes_is_published_once(target):
    results = FORK.Queue()
    start = FORK.Event()
    children = [FORK.Process(target=publish_in_child, args=(target, "same", SEED, results, start)) for _ in range(2)]
    start_together(children, start)
    assert sorted(status for _, status in (results.get(timeout=5) for _ in children)) == [ALREADY_PUBLISHED, PUBLISHED]
    with open_store(target) as store:
        check_consistent(store)
        assert store.run_ids() == ["same"] and store.assignment_count() == ROWS
        assert len(store.events()) == 1


def publish_and_die_after_the_commit(params) -> None:
    """Child process: the real publish stage, SIGKILLed right after the target committed (before the file renames)."""
    from offerflow.publish.store import SqlStore
    from offerflow.stages import run_publish

    committed = SqlStore.publish

    def publish_then_die(self, record, frame):
        status = committed(self, record, frame)
        os.kill(os.getpid(), signal.SIGKILL)
        return status

    SqlStore.publish = publish_then_die
    run_publish(params)


def test_a_kill_between_the_commit_and_the_files_is_repaired_by_the_next_command(tmp_path):
    from offerflow.cli import main
    from offerflow.config import load_params
    from offerflow.publish.recovery import JOURNAL
    from offerflow.stages import run_publish
    from test_publish_support import make_project, write_plan

    params = make_project(tmp_path / "p")
    layout = Catalog(params)
    write_plan(params, layout)
    first = run_publish(params)
    before = layout.assignments.read_bytes()
    stale = layout.assignments.parent / ".assignments.csv.abc123.tmp"  # left by an atomic write killed long ago
    stale.write_text("half a file")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    reseeded = load_params(params.root / "params.yaml", overrides={"publish.seed": 12})
    child = FORK.Process(target=publish_and_die_after_the_commit, args=(reseeded,))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    with open_store(resolve_target(params)) as store:
        new_run = store.current_run_id()
    assert new_run != first["run_id"]  # the database committed the new run ...
    assert layout.assignments.read_bytes() == before  # ... but the files still show the old one
    assert (layout.assignments.parent / JOURNAL).exists()

    assert main(["runs", "--params", str(params.root / "params.yaml")]) == 0  # any command repairs the files view
    assert layout.assignments.read_text().splitlines()[1].startswith(new_run)
    assert json.loads(layout.publish_metrics.read_text())["run_id"] == new_run
    leftovers = [p.name for p in layout.assignments.parent.iterdir() if p.name.startswith(".") and p.suffix != ".sqlite"]
    assert not [name for name in leftovers if name.endswith((".tmp", ".pending")) or name == JOURNAL], leftovers
