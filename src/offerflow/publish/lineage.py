"""Lineage of a publication: which inputs, params, model and code produced it, and its run id.

Input files are hashed the way DVC records them in dvc.lock (md5 of the file's bytes, plus the
size), so a run's record can be matched against `dvc.lock` of the git revision it names. The run
id hashes what determines the assignment, never time or place: `dvc repro`, a Prefect flow or a
colleague's clone with the same inputs name the same run, and publishing it again changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offerflow.errors import OfferflowError
from offerflow.io import file_md5

PUBLISHED = "published"
ALREADY_PUBLISHED = "already_published"
COMPLETE = "complete"
RUN_ID_LENGTH = 16


class StoreError(OfferflowError, RuntimeError):
    """The publication store is inconsistent with what is being published or asked for."""


@dataclass(frozen=True)
class RunRecord:
    """Lineage of one publication: what went in (hashes) and what the optimizer promised."""

    run_id: str
    params_hash: str
    input_hashes: dict[str, dict[str, Any] | None]
    model_md5: str | None
    git_revision: str | None
    solver_status: str | None
    objective: float | None
    expected_cost: float | None
    source: str = "segment_plan"
    settings: dict[str, Any] = field(default_factory=dict)  # budget, objective, learner, constraints, gate


def dvc_entry(path: Path, root: Path) -> dict[str, Any] | None:
    """{"path", "md5", "size"} as in a dvc.lock dep (path relative to the project), or None if absent."""
    if not path.is_file():
        return None
    try:
        shown = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = path.resolve().as_posix()  # outside the project: the absolute path is the honest name
    return {"path": shown, "md5": file_md5(path), "size": path.stat().st_size}


def hash_files(files: dict[str, Path | None], root: Path) -> dict[str, dict[str, Any] | None]:
    """dvc.lock-style entry per role; a role whose file is not used or does not exist is None."""
    return {role: dvc_entry(path, root) if path is not None else None for role, path in files.items()}


def git_revision(root: Path) -> str | None:
    """HEAD of the git repository holding the project, or None outside git (or without any commit)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True, text=True, timeout=15, check=False,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    revision = done.stdout.strip()
    return revision if done.returncode == 0 and revision else None


def make_run_id(params_hash: str, input_hashes: dict[str, Any], model_md5: str | None, seed: int) -> str:
    """Short content hash of everything the assignment depends on: same inputs, same run id."""
    blob = json.dumps(
        {"params": params_hash, "inputs": input_hashes, "model": model_md5, "seed": seed},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:RUN_ID_LENGTH]


def record_as_dict(record: RunRecord, row_count: int, created_at: Any) -> dict[str, Any]:
    """The run record in the column names of the runs table (the files target's run.json, the SQL runs row)."""
    return {
        "run_id": record.run_id,
        "created_at": created_at,
        "status": COMPLETE,
        "source": record.source,
        "params_hash": record.params_hash,
        "input_hashes": record.input_hashes,
        "model_md5": record.model_md5,
        "git_revision": record.git_revision,
        "solver_status": record.solver_status,
        "objective": record.objective,
        "expected_cost": record.expected_cost,
        "row_count": row_count,
        "settings": record.settings,
    }
