"""Runner of the validate stage: every input against its suite; reports; stop on any failure."""

from __future__ import annotations

import shutil

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.io import write_json

# dataset name in the reports -> catalog name of its file
DATASET_FILES = {
    "customers": "customers",
    "history": "history",
    "true_probabilities": "true_probabilities",
    "probability_table": "given_probability_table",
}


def dataset_inputs(params: Params, catalog: Catalog, names=tuple(DATASET_FILES)) -> list:
    """The files to validate, in a fixed order; datasets not configured (no true table...) are left out."""
    from offerflow.validation.report import DatasetInput, display_path

    items = []
    for name in names:
        path = catalog.optional(DATASET_FILES[name])
        if path is not None:
            items.append(DatasetInput(name, path, display_path(path, params.root)))
    return items


def check_files(params: Params, catalog: Catalog, names: tuple[str, ...]) -> None:
    """Validate some inputs without writing reports (for stages that read them before validate runs)."""
    from offerflow.validation.report import raise_on_failures, validate_datasets

    raise_on_failures(validate_datasets(dataset_inputs(params, catalog, names), params))


def run_validate(params: Params) -> dict:
    """Validate every input, write the reports, and raise DataValidationError if anything failed."""
    from offerflow.validation.report import DATASETS, plain, raise_on_failures, summarize, validate_datasets

    catalog = Catalog(params)
    directory = catalog.path("validation_dir")
    docs_dir = directory / "data_docs"
    if docs_dir.exists():  # Data Docs always describe the latest run, never a stale one
        shutil.rmtree(docs_dir)
    reports = validate_datasets(dataset_inputs(params, catalog), params, docs_dir if params.validate_.data_docs else None)
    for name in DATASETS:  # a dataset no longer validated must not leave a stale verdict behind
        if name not in reports:
            (directory / f"{name}.json").unlink(missing_ok=True)
    for name, report in reports.items():
        write_json(plain(report.document()), directory / f"{name}.json")
    summary = summarize(reports)
    write_json(summary, catalog.path("validation_summary"))
    raise_on_failures(reports)
    return summary
