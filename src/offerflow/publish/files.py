"""The files target: each run as Parquet + CSV in its own folder, and a state file naming the current run.

Layout under publish.files_dir:

    runs/<run_id>/assignments.parquet, assignments.csv, run.json    one folder per run
    state.json                               {"runs": [...], "current_run_id": ..., "events": [...]}
    .publish.lock                                                   serializes publishers (flock)

state.json is the commit point, like a database commit: a run exists for readers only once
state.json lists it, and its listing, the current-run pointer and the event change together in
one atomic replace. The run's files are written into a hidden temporary folder and renamed into
place before that. A killed publisher leaves at most a temporary or an unlisted folder, which the
next publisher removes while it holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from offerflow.io import read_json, write_json
from offerflow.publish.bulk import assignment_rows
from offerflow.publish.lineage import ALREADY_PUBLISHED, COMPLETE, PUBLISHED, RunRecord, StoreError, record_as_dict
from offerflow.publish.store import ALREADY_CURRENT, CELL_COLUMNS, ROLLED_BACK, utc_now
from offerflow.publish.target import PublishTarget, PublishTargetError

INCOMING_PREFIX = ".incoming-"
_LOCK_POLL_SECONDS = 0.05


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FileStore:
    """Publish runs as files; the same reading interface as SqlStore."""

    def __init__(self, target: PublishTarget) -> None:
        if target.directory is None:
            raise StoreError("the files target needs publish.files_dir")
        self.target = target
        self.root = Path(target.directory)
        self.runs_dir = self.root / "runs"
        self.state_path = self.root / "state.json"

    def __enter__(self) -> "FileStore":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Nothing stays open between calls."""

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Exclusive flock on .publish.lock; the kernel drops it if the holder dies."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.target.busy_timeout_seconds
        with open(self.root / ".publish.lock", "a+") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise PublishTargetError(
                            f"cannot publish to {self.target.description}: another publisher held the lock longer "
                            f"than publish.busy_timeout_seconds ({self.target.busy_timeout_seconds:g} s)",
                            retryable=True,
                        ) from None
                    time.sleep(_LOCK_POLL_SECONDS)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _state(self) -> dict[str, Any]:
        if not self.state_path.is_file():
            return {"runs": [], "current_run_id": None, "events": []}
        return read_json(self.state_path)

    def _commit(self, state: dict[str, Any], kind: str, run_id: str, started: str) -> None:
        """List the run, move the pointer and log the event in one atomic replace of state.json."""
        events = list(state["events"])
        events.append({
            "event_id": len(events) + 1, "kind": kind, "run_id": run_id, "previous_run_id": state["current_run_id"],
            "started_at": started, "recorded_at": utc_now().isoformat(timespec="microseconds"),
        })
        listed = list(state["runs"]) + ([run_id] if run_id not in state["runs"] else [])
        write_json({"runs": listed, "current_run_id": run_id, "events": events}, self.state_path)

    def _remove_unlisted(self, listed: list[str]) -> None:
        """Folders a killed publisher left behind (temporary, or renamed but never committed)."""
        for folder in self.runs_dir.iterdir():
            if folder.is_dir() and folder.name not in listed:
                shutil.rmtree(folder, ignore_errors=True)

    def ensure_schema(self) -> str:
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        return "current"

    def publish(self, record: RunRecord, frame: pd.DataFrame) -> str:
        """Write the run folder (temporary, then renamed), then point state.json at it."""
        rows = assignment_rows(record.run_id, frame).drop_columns(["run_id"]).to_pandas()
        with self._lock():
            started = utc_now().isoformat(timespec="microseconds")
            state = self._state()
            self._remove_unlisted(state["runs"])
            existing = self.run(record.run_id)
            if existing is not None:
                if existing["row_count"] != len(rows) or existing["status"] != COMPLETE:
                    raise StoreError(
                        f"run {record.run_id} already exists with row_count={existing['row_count']} but this publication "
                        f"has {len(rows)} rows: refusing to overwrite a different run with the same id"
                    )
                if state["current_run_id"] != record.run_id:
                    self._commit(state, "republish", record.run_id, started)
                return ALREADY_PUBLISHED
            incoming = Path(tempfile.mkdtemp(prefix=f"{INCOMING_PREFIX}{record.run_id}-", dir=self.runs_dir))
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(incoming, 0o777 & ~umask)  # mkdtemp makes it private; a published run is readable like any output
            try:
                rows.to_parquet(incoming / "assignments.parquet", index=False, compression="zstd")
                rows.to_csv(incoming / "assignments.csv", index=False, lineterminator="\n")
                write_json(record_as_dict(record, len(rows), started), incoming / "run.json")
                for name in ("assignments.parquet", "assignments.csv"):
                    _fsync(incoming / name)
                os.rename(incoming, self.runs_dir / record.run_id)  # atomic: the folder appears complete
                _fsync(self.runs_dir)
            finally:
                shutil.rmtree(incoming, ignore_errors=True)
            self._commit(state, "publish", record.run_id, started)
        return PUBLISHED

    def rollback(self, run_id: str) -> str:
        with self._lock():
            record = self.run(run_id)
            if record is None:
                raise StoreError(f"no run {run_id!r} in {self.target.description}")
            state = self._state()
            if state["current_run_id"] == run_id:
                return ALREADY_CURRENT
            self._commit(state, "rollback", run_id, utc_now().isoformat(timespec="microseconds"))
        return ROLLED_BACK

    # --- reading ------------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.state_path.is_file()

    def current_run_id(self) -> str | None:
        return self._state()["current_run_id"]

    def run(self, run_id: str) -> dict[str, Any] | None:
        state = self._state()
        if run_id not in state["runs"]:
            return None
        return {**read_json(self.runs_dir / run_id / "run.json"), "is_current": state["current_run_id"] == run_id}

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Run records, newest first (ties by run id)."""
        state = self._state()
        records = [
            {**read_json(self.runs_dir / run_id / "run.json"), "is_current": run_id == state["current_run_id"]}
            for run_id in sorted(state["runs"])
        ]
        records.sort(key=lambda record: record["created_at"], reverse=True)  # stable: run id order within ties
        return records if limit is None else records[:limit]

    def run_ids(self) -> list[str]:
        return sorted(record["run_id"] for record in self.runs())

    def read_assignments(self, run_id: str) -> pd.DataFrame:
        if self.run(run_id) is None:
            return pd.DataFrame(columns=["customer_id", "segment_id", "offer", "predicted_probability", "expected_cost",
                                         "expected_value"])
        return pd.read_parquet(self.runs_dir / run_id / "assignments.parquet")

    def assignment_count(self, run_id: str | None = None) -> int:
        ids = [run_id] if run_id is not None else self.run_ids()
        return sum(len(self.read_assignments(one)) for one in ids)

    def read_current_view(self) -> pd.DataFrame:
        current = self.current_run_id() if self.exists() else None
        if current is None:
            return pd.DataFrame()
        return self.read_assignments(current).assign(run_id=current)

    def offer_segment_cells(self, run_id: str) -> pd.DataFrame:
        frame = self.read_assignments(run_id)
        if frame.empty:
            return pd.DataFrame(columns=CELL_COLUMNS)
        cells = frame.groupby(["segment_id", "offer"], sort=True).agg(
            customers=("offer", "size"), expected_conversions=("predicted_probability", "sum"),
            expected_cost=("expected_cost", "sum"),
        )
        return cells.reset_index()[CELL_COLUMNS]

    def events(self, run_id: str | None = None) -> list[dict[str, Any]]:
        events = self._state()["events"]
        return [event for event in events if run_id is None or event["run_id"] == run_id]
