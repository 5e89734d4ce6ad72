"""Provenance stamps: every stage records the params and file hashes its outputs were made from.

A stage that finishes writes reports/lineage/<stage>.json: the values of the params keys it read and
the md5 of every file it read and wrote. Before a stage runs, the stamps of everything upstream of it
are checked against the current params and files, so no stage consumes outputs that were made under
other params, from other inputs, by a stage that failed, or that were changed by hand since: instead
it stops with a StaleInputError (exit 3) saying which key or file differs and what to rerun. This is
what keeps a single `offerflow publish` from stamping an old plan with new params; DVC's own lock
file does the same for `dvc repro`, and the stamps keep every entry point equally strict.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offerflow.errors import StaleInputError
from offerflow.io import file_md5, read_json, write_json

if TYPE_CHECKING:
    from offerflow.catalog import Catalog
    from offerflow.config import Params
    from offerflow.pipeline import Stage

_MD5_CACHE: dict[tuple[str, int, int], str] = {}


def content_md5(path: Path) -> str | None:
    """md5 of a file (a folder: of its files' names and md5s); None when absent. Cached per (path, size, mtime)."""
    if path.is_dir():
        digest = hashlib.md5(usedforsecurity=False)
        for child in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(f"{child.relative_to(path).as_posix()}:{content_md5(child)}\n".encode())
        return digest.hexdigest()
    if not path.is_file():
        return None
    status = path.stat()
    key = (str(path.resolve()), status.st_size, status.st_mtime_ns)
    if key not in _MD5_CACHE:
        _MD5_CACHE[key] = file_md5(path)
    return _MD5_CACHE[key]


@dataclass(frozen=True)
class Stamp:
    """What one stage's outputs were made from (and what they were when written)."""

    stage: str
    params: dict[str, Any]
    inputs: dict[str, str | None]
    outputs: dict[str, str | None]

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "params": self.params, "inputs": self.inputs, "outputs": self.outputs}


def _hashes(catalog: "Catalog", names: list[str]) -> dict[str, str | None]:
    return {catalog.relative(name): content_md5(catalog.path(name)) for name in names}


def make_stamp(stage: "Stage", params: "Params", catalog: "Catalog") -> Stamp:
    outputs = [out.name for out in stage.outputs_for(params) if out.kind != "figure" and not out.name.startswith("stamp:")]
    return Stamp(
        stage=stage.name,
        params=params.subset(*stage.params_for(params)),
        inputs=_hashes(catalog, stage.inputs_for(params)),
        outputs=_hashes(catalog, outputs),
    )


def write_stamp(stage: "Stage", params: "Params", catalog: "Catalog") -> Stamp:
    from offerflow.catalog import stamp_name

    stamp = make_stamp(stage, params, catalog)
    write_json(stamp.as_dict(), catalog.path(stamp_name(stage.name)))
    return stamp


def read_stamp(stage: str, catalog: "Catalog") -> Stamp | None:
    from offerflow.catalog import stamp_name

    path = catalog.path(stamp_name(stage))
    if not path.is_file():
        return None
    raw = read_json(path)
    return Stamp(raw["stage"], raw["params"], raw["inputs"], raw["outputs"])


def _differences(recorded: Any, current: Any, prefix: str = "") -> list[str]:
    """Leaf keys whose values differ, e.g. "optimize.budget: 12000.0 then, 10000.0 now"."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        lines = []
        for key in sorted(set(recorded) | set(current), key=str):
            lines += _differences(recorded.get(key), current.get(key), f"{prefix}{key}.")
        return lines
    if recorded == current:
        return []
    return [f"{prefix.rstrip('.')}: {_short(recorded)} then, {_short(current)} now"]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def stamp_problems(stage: "Stage", params: "Params", catalog: "Catalog") -> list[str]:
    """Why the outputs of `stage` cannot be used now (empty when they can)."""
    stamp = read_stamp(stage.name, catalog)
    if stamp is None:
        return [f"stage {stage.name!r} has not completed for this project (no {catalog.relative('stamp:' + stage.name)})"]
    problems = [f"params {line}" for line in _differences(stamp.params, params.subset(*stage.params_for(params)))]
    expected_inputs = {catalog.relative(name) for name in stage.inputs_for(params)}
    if set(stamp.inputs) != expected_inputs:
        problems.append(f"it read {sorted(stamp.inputs)} but now reads {sorted(expected_inputs)}")
    for relative, md5 in {**stamp.inputs, **stamp.outputs}.items():
        now = content_md5(params.path(relative))
        if now != md5:
            problems.append(f"{relative} {'is missing' if now is None else 'changed'} since {stage.name} ran")
    return problems


def check_upstream(stage: "Stage", params: "Params", catalog: "Catalog", stages: list["Stage"]) -> None:
    """Refuse to run `stage` unless every stage it depends on (transitively) is current.

    The most upstream stale stage is named, since rerunning from there refreshes everything after it.
    """
    producers = {out.name: other for other in stages for out in other.outputs_for(params)}
    needed: set[str] = set()
    pending = [name for name in stage.inputs_for(params) if name in producers]
    while pending:
        producer = producers[pending.pop()]
        if producer.name not in needed:
            needed.add(producer.name)
            pending += [name for name in producer.inputs_for(params) if name in producers]
    for producer in stages:  # pipeline order: upstream first
        if producer.name in needed:
            problems = stamp_problems(producer, params, catalog)
            if problems:
                raise StaleInputError(_stale_message(stage, producer, problems, catalog))


def _stale_message(stage: "Stage", producer: "Stage", problems: list[str], catalog: "Catalog") -> str:
    if producer.name == "validate":
        summary = catalog.path("validation_summary")
        if summary.is_file() and not read_json(summary).get("success", False):
            failures = read_json(summary).get("failure_count")
            return (
                f"{stage.name}: the input data failed validation ({failures} failure(s) in "
                f"{catalog.relative('validation_summary')}); fix the inputs and run `offerflow validate` first"
            )
    listed = "\n  - ".join(problems[:8])
    return (
        f"{stage.name}: the outputs of {producer.name} cannot be used:\n  - {listed}\n"
        f"Rerun from {producer.name} (`offerflow run --from-stage {producer.name}`, or `dvc repro`)."
    )
