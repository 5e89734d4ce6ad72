"""Validation reports: a Great Expectations gate in front of every stage that reads user data.

Each input (customers, history, the true probability table, a given optimize table) is checked
against its JSON suite in expectations/ (names filled from params.yaml), then cross-dataset
rules are checked in pandas. Every failure is collected before anything is raised, so one run
tells the user everything that is wrong. The validate stage (offerflow.stages.validate) writes the
reports; the simulate stage runs the same checks on the files it reads before it reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from offerflow.config import Params
from offerflow.errors import InputFileError
from offerflow.io import file_sha256, read_table
from offerflow.validation.cross_checks import CrossCheck, history_customers_known, segments_covered
from offerflow.validation.failures import DataValidationError, ValidationFailure, plain
from offerflow.validation.history_checks import duplicate_rows, feature_drift, logged_propensities, rows_per_arm
from offerflow.validation.suites import load_suite, suite_path

__all__ = [
    "DATASETS",
    "DataValidationError",
    "DatasetInput",
    "ValidationFailure",
    "validate_datasets",
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


def _history_checks(params: Params, reports: dict[str, DatasetReport], frames: dict[str, pd.DataFrame]) -> None:
    """Campaign rules of the history alone: repeated rows, enough rows per arm."""
    if "history" not in frames:
        return
    history, report = frames["history"], reports["history"]
    report.cross_checks.append(duplicate_rows(history, params, report.source.display, params.validate_.max_sample_values))
    report.cross_checks.append(rows_per_arm(history, params, report.source.display))
    report.cross_checks.append(logged_propensities(history, params, report.source.display, params.validate_.max_sample_values))


def _cross_checks(params: Params, reports: dict[str, DatasetReport], frames: dict[str, pd.DataFrame]) -> None:
    """Attach the cross-dataset checks to the dataset each one blames (needs both frames read)."""
    _history_checks(params, reports, frames)
    limit = params.validate_.max_sample_values
    customers = frames.get("customers")
    if customers is None:
        return
    if "history" in frames:
        history, display = frames["history"], reports["history"].source.display
        id_column = params.data.customer_id
        own_features = [c for c in (*params.train.features, *params.data.segment_columns) if c not in history.columns]
        skip = _mistyped(reports, ["customers", "history"], [id_column])
        if not own_features:  # the history carries its customers' features: they need not be in the customer file
            skip = skip or "the history carries every feature and segment column itself (customers may be a new batch)"
        check = history_customers_known(history, customers, id_column, display, limit, skip=skip)
        reports["history"].cross_checks.append(check)
        features = [c for c in params.train.features if c in history.columns and c in customers.columns]
        drift_skip = _mistyped(reports, ["customers", "history"], features)
        reports["customers"].cross_checks.append(
            feature_drift(history, customers, params, reports["customers"].source.display, skip=drift_skip))
    segment_columns = list(params.data.segment_columns)
    for name in ("true_probabilities", "probability_table"):
        if name in frames:
            check = segments_covered(
                customers, frames[name], segment_columns, name, reports[name].source.display, limit,
                skip=_mistyped(reports, ["customers", name], segment_columns),
            )
            reports[name].cross_checks.append(check)


def validate_datasets(items: list[DatasetInput], params: Params, data_docs_dir: Path | None = None) -> dict[str, DatasetReport]:
    """Read and check every input, then the cross-dataset rules; one report per dataset, in `items` order."""
    session = _new_session(data_docs_dir)
    reports: dict[str, DatasetReport] = {}
    frames: dict[str, pd.DataFrame] = {}
    for item in items:
        reports[item.name], frame = _read_and_check(item, params, session)
        if frame is not None:
            frames[item.name] = frame
    _cross_checks(params, reports, frames)
    return reports


def summarize(reports: dict[str, DatasetReport]) -> dict[str, Any]:
    """The verdict of one validation run, JSON-ready and deterministic (no times, relative paths)."""
    return plain({
        "success": all(report.success for report in reports.values()),
        "failure_count": sum(len(report.all_failures) for report in reports.values()),
        "datasets": {name: report.summary() for name, report in reports.items()},
    })


def raise_on_failures(reports: dict[str, DatasetReport]) -> None:
    failures = [failure for report in reports.values() for failure in report.all_failures]
    if failures:
        raise DataValidationError(failures)
