"""The validate stage: a Great Expectations gate in front of training and optimization.

Each input (customers, history, the true probability table, a given optimize table) is checked
against its JSON suite in expectations/ (names filled from params.yaml), then cross-dataset
rules are checked in pandas. Every failure is collected before anything is raised, so one run
tells the user everything that is wrong. Reports are written deterministically: a stripped GX
result per dataset and a summary with file hashes; Data Docs HTML is optional and unversioned.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from offerflow.config import Params
from offerflow.io import InputFileError, Layout, file_sha256, read_table, write_json
from offerflow.validation.cross_checks import CrossCheck, history_customers_known, segments_covered
from offerflow.validation.failures import DataValidationError, ValidationFailure, plain
from offerflow.validation.suites import load_suite, suite_path

__all__ = [
    "DATASETS",
    "DataValidationError",
    "ValidationFailure",
    "run_validate",
    "validate_frame",
]

DATASETS = ("customers", "history", "true_probabilities", "probability_table")
UNREADABLE = "readable_table"
TYPE_CHECK = "expect_column_values_to_be_in_type_list"


@dataclass(frozen=True)
class DatasetInput:
    """One file to validate: its dataset name, location and the path shown to people."""

    name: str
    path: Path
    display: str


@dataclass
class DatasetReport:
    """Everything learned about one dataset in one run."""

    source: DatasetInput
    suite: str
    rows: int | None = None
    evaluated: int = 0
    failures: list[ValidationFailure] = field(default_factory=list)
    gx_result: dict[str, Any] | None = None
    cross_checks: list[CrossCheck] = field(default_factory=list)

    @property
    def all_failures(self) -> list[ValidationFailure]:
        return self.failures + [failure for check in self.cross_checks for failure in check.failures]

    @property
    def success(self) -> bool:
        return not self.all_failures

    def summary(self) -> dict[str, Any]:
        path = self.source.path
        return {
            "path": self.source.display,
            "sha256": file_sha256(path) if path.is_file() else None,
            "rows": self.rows,
            "suite": self.suite,
            "expectations_evaluated": self.evaluated + sum(check.evaluated for check in self.cross_checks),
            "success": self.success,
            "failures": [failure.as_dict() for failure in self.all_failures],
        }

    def document(self) -> dict[str, Any]:
        return {
            "dataset": self.source.name,
            **self.summary(),
            "gx_result": self.gx_result,
            "cross_dataset_checks": [check.as_dict() for check in self.cross_checks],
        }


def display_path(path: Path, root: Path) -> str:
    """Path relative to the project root when inside it: the same text on every clone."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def dataset_inputs(params: Params) -> list[DatasetInput]:
    """The files this run validates, in a fixed order; "learned" tables are checked later."""
    files: dict[str, Path | None] = {
        "customers": params.data.customers,
        "history": params.data.history,
        "true_probabilities": params.data.true_probabilities,
        "probability_table": None
        if params.optimize.probability_table == "learned"
        else Path(params.optimize.probability_table),
    }
    return [
        DatasetInput(name, params.path(relative), display_path(params.path(relative), params.root))
        for name, relative in files.items()
        if relative is not None
    ]


def _new_session(data_docs_dir: Path | None = None):
    from offerflow.validation.gx_session import GxSession  # imports GX (~3 s): only when validating

    return GxSession(data_docs_dir)


def _check_frame(dataset: str, frame: pd.DataFrame, params: Params, source: str, session) -> DatasetReport:
    from offerflow.validation.interpret import failures_from_results

    suite_file = suite_path(dataset, params)
    specs = load_suite(dataset, params)
    run = session.run(dataset, frame, specs, suite_label=str(suite_file))
    failures = failures_from_results(dataset, source, frame, run.results, params.validate_.max_sample_values)
    report = DatasetReport(
        DatasetInput(dataset, Path(source), source), display_path(suite_file, params.root), rows=len(frame)
    )
    report.evaluated, report.failures, report.gx_result = len(run.results), failures, run.document
    return report


def validate_frame(dataset: str, frame: pd.DataFrame, params: Params, source: Path, *, session=None) -> list:
    """Failures of one dataset against its suite (no cross-dataset checks); [] when it passes.

    `dataset` is one of DATASETS; `source` is the file the frame came from (named in failures).
    Pass a GxSession to reuse one GX context across calls.
    """
    return _check_frame(dataset, frame, params, str(source), session or _new_session()).failures


def _read_and_check(item: DatasetInput, params: Params, session) -> tuple[DatasetReport, pd.DataFrame | None]:
    try:
        frame = read_table(item.path)
    except InputFileError as exc:
        suite = display_path(suite_path(item.name, params), params.root)
        reason = str(exc).replace(str(item.path), item.display)  # same text on every clone
        failure = ValidationFailure(item.name, item.display, None, UNREADABLE, detail=reason)
        return DatasetReport(item, suite, failures=[failure]), None
    report = _check_frame(item.name, frame, params, item.display, session)
    report.source = item
    return report, frame


def _mistyped(reports: dict[str, DatasetReport], names: list[str], columns: list[str]) -> str:
    """Why a cross check cannot be trusted: a key column failed its dtype check (text ids never
    match integer ids, so every row would be blamed for what is one type error)."""
    for name in names:
        for failure in reports[name].failures:
            if failure.expectation == TYPE_CHECK and failure.column in columns:
                return f"{name} column {failure.column!r} has the wrong type (reported by its suite)"
    return ""


def _cross_checks(params: Params, reports: dict[str, DatasetReport], frames: dict[str, pd.DataFrame]) -> None:
    """Attach the cross-dataset checks to the dataset each one blames (needs both frames read)."""
    limit = params.validate_.max_sample_values
    customers = frames.get("customers")
    if customers is None:
        return
    if "history" in frames:
        id_column = params.data.customer_id
        check = history_customers_known(
            frames["history"], customers, id_column, reports["history"].source.display, limit,
            skip=_mistyped(reports, ["customers", "history"], [id_column]),
        )
        reports["history"].cross_checks.append(check)
    segment_columns = list(params.data.segment_columns)
    for name in ("true_probabilities", "probability_table"):
        if name in frames:
            check = segments_covered(
                customers, frames[name], segment_columns, name, reports[name].source.display, limit,
                skip=_mistyped(reports, ["customers", name], segment_columns),
            )
            reports[name].cross_checks.append(check)


def _write_reports(layout: Layout, reports: dict[str, DatasetReport]) -> dict[str, Any]:
    for name in DATASETS:  # a dataset no longer validated must not leave a stale verdict behind
        stale = layout.validation_dir / f"{name}.json"
        if name not in reports and stale.exists():
            stale.unlink()
    for name, report in reports.items():
        write_json(plain(report.document()), layout.validation_dir / f"{name}.json")
    summary = {
        "success": all(report.success for report in reports.values()),
        "failure_count": sum(len(report.all_failures) for report in reports.values()),
        "datasets": {name: report.summary() for name, report in reports.items()},
    }
    summary = plain(summary)
    write_json(summary, layout.validation_summary)
    return summary


def run_validate(params: Params, layout: Layout) -> dict:
    """Validate every input, write the reports, and raise DataValidationError if anything failed.

    Returns the summary dict that is also written to `layout.validation_summary`.
    """
    docs_dir = layout.validation_dir / "data_docs"
    if docs_dir.exists():  # Data Docs always describe the latest run, never a stale one
        shutil.rmtree(docs_dir)
    session = _new_session(docs_dir if params.validate_.data_docs else None)
    reports: dict[str, DatasetReport] = {}
    frames: dict[str, pd.DataFrame] = {}
    for item in dataset_inputs(params):
        reports[item.name], frame = _read_and_check(item, params, session)
        if frame is not None:
            frames[item.name] = frame
    _cross_checks(params, reports, frames)
    summary = _write_reports(layout, reports)
    failures = [failure for report in reports.values() for failure in report.all_failures]
    if failures:
        raise DataValidationError(failures)
    return summary
