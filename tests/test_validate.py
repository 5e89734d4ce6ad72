"""The validate stage: the bundled example passes; each kind of corrupt input is caught and named.

Each corrupt case edits one file of a throwaway project copy, runs the real stage (GX included)
and checks that DataValidationError names the file, the column, the rule and offending values,
with counts checked against pandas. One module-scoped base project is copied per test (cheap).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, SEED
from offerflow.config import ConfigError, load_params
from offerflow.catalog import Catalog
from offerflow.stages import run_validate
from offerflow.validation.report import DataValidationError, ValidationFailure, validate_frame
from offerflow.validation.suites import expand_expectations, load_suite

CUSTOMERS = "data/external/customers.csv"
TABLE = "data/external/visit_probability.csv"
HISTORY = "data/raw/simulated_history.csv"


def _writable_copy(source: Path, destination: Path) -> Path:
    destination.mkdir(parents=True)
    shutil.copy(source / "params.yaml", destination / "params.yaml")
    for folder in ("data", "expectations"):
        if (source / folder).exists():
            shutil.copytree(source / folder, destination / folder)
    for path in destination.rglob("*"):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)  # the bundled inputs are read-only
    return destination


def _write_history(project: Path, customer_id="customer_id", arm="arm", outcome="converted") -> None:
    """Two randomized campaigns over all customers: a small, valid history."""
    rng = np.random.default_rng(SEED)
    ids = pd.read_csv(project / CUSTOMERS)[customer_id].to_numpy()
    history = pd.DataFrame(
        {
            "campaign": np.repeat([1, 2], len(ids)),
            customer_id: np.tile(ids, 2),
            arm: rng.choice(["dm1", "dm2", "dm3"], size=2 * len(ids)),
            outcome: rng.integers(0, 2, size=2 * len(ids)),
        }
    )
    (project / HISTORY).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(project / HISTORY, index=False)


@pytest.fixture(scope="module")
def base_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("validate_base") / "project"
    project.mkdir()
    shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    shutil.copytree(ROOT / "data/external", project / "data/external")
    shutil.copytree(ROOT / "expectations", project / "expectations")
    _write_history(project)
    return project


@pytest.fixture
def project(base_project: Path, tmp_path: Path) -> Path:
    return _writable_copy(base_project, tmp_path / "project")


def _run(project: Path, **overrides) -> dict:
    params = load_params(project / "params.yaml", overrides={"validate.data_docs": False, **overrides})
    return run_validate(params)


def _edit_csv(project: Path, relative: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    path = project / relative
    edit(pd.read_csv(path)).to_csv(path, index=False)


def _set(frame: pd.DataFrame, rows, column: str, value) -> pd.DataFrame:
    frame = frame.astype({column: object}) if isinstance(value, str) or value is None else frame.copy()
    frame.loc[rows, column] = value
    return frame


# --- the bundled example ---------------------------------------------------------------------


def test_bundled_example_passes_and_reports(project: Path) -> None:
    summary = _run(project, **{"validate.data_docs": True})
    assert summary["success"] is True and summary["failure_count"] == 0
    datasets = summary["datasets"]
    assert list(datasets) == ["customers", "history", "true_probabilities"]
    customers = pd.read_csv(project / CUSTOMERS)
    assert datasets["customers"]["rows"] == len(customers) == 5000
    assert datasets["history"]["rows"] == 2 * len(customers)
    assert datasets["true_probabilities"]["rows"] == 16
    for name, entry in datasets.items():
        assert entry["sha256"] == hashlib.sha256((project / entry["path"]).read_bytes()).hexdigest()
        document = json.loads((project / "reports/validation" / f"{name}.json").read_text())
        stats = document["gx_result"]["statistics"]
        assert stats["unsuccessful_expectations"] == 0
        evaluated_checks = [check for check in document["cross_dataset_checks"] if "skipped" not in check]
        assert entry["expectations_evaluated"] == stats["evaluated_expectations"] + len(evaluated_checks)
    # customers suite: rows + 5 id rules + (exists, not null) x the 2 segment columns, which are also the features
    assert datasets["customers"]["expectations_evaluated"] == 10
    # one prob column per arm, each with exists / not null / numeric / in [0, 1]
    table_doc = json.loads((project / "reports/validation/true_probabilities.json").read_text())
    prob_rules = [r for r in table_doc["gx_result"]["results"] if "prob_" in str(r["expectation_config"]["kwargs"])]
    assert len(prob_rules) == 3 * 4
    assert (project / "reports/validation/data_docs/index.html").is_file()


def test_reports_are_byte_identical_across_runs(project: Path) -> None:
    def snapshot() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((project / "reports/validation").glob("*.json"))}

    _run(project)
    first = snapshot()
    _run(project)
    assert snapshot() == first
    assert set(first) == {"summary.json", "customers.json", "history.json", "true_probabilities.json"}
    text = first["summary.json"].decode() + first["customers.json"].decode()
    for volatile in ("run_time", "validation_time", "ge_load_time", "checkpoint_id", "Traceback"):
        assert volatile not in text


def test_failed_run_writes_reports_with_success_false_and_is_deterministic(project: Path) -> None:
    _edit_csv(project, HISTORY, lambda f: _set(f, [4, 9], "arm", "dm7"))
    reports = project / "reports/validation"
    with pytest.raises(DataValidationError):
        _run(project)
    first = (reports / "summary.json").read_bytes()
    summary = json.loads(first)
    assert summary["success"] is False
    assert summary["datasets"]["history"]["success"] is False
    assert summary["datasets"]["customers"]["success"] is True
    [failure] = summary["datasets"]["history"]["failures"]
    assert failure["column"] == "arm" and failure["unexpected_count"] == 2 and failure["sample"] == ["dm7"]
    assert json.loads((reports / "history.json").read_text())["success"] is False
    with pytest.raises(DataValidationError):
        _run(project)
    assert (reports / "summary.json").read_bytes() == first


# --- corrupt inputs -----------------------------------------------------------------------------


def _drop_segment_row(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~((frame["age_cat"] == "age50~") & (frame["freq_cat"] == "freq3~"))]


def _append(frame: pd.DataFrame, rows: list[int], column: str, value) -> pd.DataFrame:
    """Extra copies of some rows with one value changed: corrupts a file without removing anyone."""
    return pd.concat([frame, _set(frame.iloc[rows], rows, column, value)], ignore_index=True)


def _missing_segments(table: pd.DataFrame) -> int:
    customers = pd.read_csv(ROOT / CUSTOMERS)
    keys = ["age_cat", "freq_cat"]
    return len(set(map(tuple, customers[keys].values)) - set(map(tuple, table[keys].values)))


ARMS = ["dm1", "dm2", "dm3"]
# name: (file, edit, column, expectation, offending values that must be quoted,
#        independent count of offending rows on the corrupted file, or None where GX gives no count)
CASES = {
    "missing_column": (CUSTOMERS, lambda f: f.drop(columns=["freq_cat"]), "freq_cat", "expect_column_to_exist",
                       ["customer_id", "age_cat"], None),
    "null_ids": (CUSTOMERS, lambda f: _append(f, [0, 1, 2], "customer_id", None), "customer_id",
                 "expect_column_values_to_not_be_null", [None], lambda f: f["customer_id"].isna().sum()),
    "duplicate_ids": (CUSTOMERS, lambda f: pd.concat([f, f.iloc[[10]]]), "customer_id",
                      "expect_column_values_to_be_unique", [11], lambda f: f["customer_id"].duplicated(keep=False).sum()),
    "text_id": (CUSTOMERS, lambda f: _append(f, [8], "customer_id", "C-17"), "customer_id",
                "expect_column_values_to_be_in_type_list", ["C-17"], None),
    "null_segment": (CUSTOMERS, lambda f: _set(f, [12, 13], "age_cat", None), "age_cat",
                     "expect_column_values_to_not_be_null", [None], lambda f: f["age_cat"].isna().sum()),
    "probability_above_one": (TABLE, lambda f: _set(f, [0], "prob_dm2", 1.3), "prob_dm2",
                              "expect_column_values_to_be_between", [1.3], lambda f: (f["prob_dm2"] > 1).sum()),
    "probability_negative": (TABLE, lambda f: _set(f, [5], "prob_dm1", -0.2), "prob_dm1",
                             "expect_column_values_to_be_between", [-0.2], lambda f: (f["prob_dm1"] < 0).sum()),
    "probability_column_missing": (TABLE, lambda f: f.drop(columns=["prob_dm3"]), "prob_dm3",
                                   "expect_column_to_exist", ["prob_dm1", "prob_dm2"], None),
    "text_probability": (TABLE, lambda f: _set(f, [2], "prob_dm1", "abc"), "prob_dm1",
                         "expect_column_values_to_be_in_type_list", ["abc"], None),
    "duplicate_segment_rows": (TABLE, lambda f: pd.concat([f, f.iloc[[3]]]), "age_cat, freq_cat",
                               "expect_compound_columns_to_be_unique", [["age~19", "freq3~"]],
                               lambda f: f.duplicated(["age_cat", "freq_cat"], keep=False).sum()),
    "segment_missing_from_table": (TABLE, _drop_segment_row, "age_cat, freq_cat", "customer_segments_in_table",
                                   [{"age_cat": "age50~", "freq_cat": "freq3~"}], _missing_segments),
    "unknown_arm": (HISTORY, lambda f: _set(f, [7, 8, 9], "arm", "dm9"), "arm",
                    "expect_column_values_to_be_in_set", ["dm9"], lambda f: (~f["arm"].isin(ARMS)).sum()),
    "null_arm": (HISTORY, lambda f: _set(f, [0], "arm", None), "arm",
                 "expect_column_values_to_not_be_null", [None], lambda f: f["arm"].isna().sum()),
    "outcome_two": (HISTORY, lambda f: _set(f, [1], "converted", 2), "converted",
                    "expect_column_values_to_be_in_set", [2], lambda f: (~f["converted"].isin([0, 1])).sum()),
    "outcome_yes": (HISTORY, lambda f: _set(f, [1, 2], "converted", "yes"), "converted",
                    "expect_column_values_to_be_in_set", ["yes"],  # read as text: the count is of the bad cells
                    lambda f: (~f["converted"].astype(str).isin(["0", "1"])).sum()),
    "history_id_not_a_customer": (HISTORY, lambda f: _set(f, [20, 21], "customer_id", 999_999), "customer_id",
                                  "history_customer_ids_in_customers", [999_999],
                                  lambda f: (~f["customer_id"].isin(pd.read_csv(ROOT / CUSTOMERS)["customer_id"])).sum()),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_corrupt_input_is_named(project: Path, case: str) -> None:
    relative, edit, column, expectation, sample, reference_count = CASES[case]
    _edit_csv(project, relative, edit)
    with pytest.raises(DataValidationError) as caught:
        _run(project)
    message = str(caught.value)
    [failure] = [f for f in caught.value.failures if f.expectation == expectation and f.column == column]
    assert failure.path == relative
    assert relative in message and repr(column) in message and expectation in message
    for value in sample:
        if expectation == "expect_column_to_exist":  # a missing column has no values: the columns present are listed
            assert repr(value) in failure.detail
        else:
            assert value in failure.sample and repr(value) in message
    if reference_count is not None:
        assert failure.unexpected_count == int(reference_count(pd.read_csv(project / relative))) > 0
    assert {f.path for f in caught.value.failures} == {relative}, message  # no other file is blamed
    assert "raised:" not in message  # GX exceptions (e.g. a range check on text) are folded into the cause


def test_missing_id_column_collapses_into_one_failure(project: Path) -> None:
    _edit_csv(project, CUSTOMERS, lambda f: f.rename(columns={"customer_id": "id"}))
    with pytest.raises(DataValidationError) as caught:
        _run(project)
    [failure] = caught.value.failures  # not one per rule on the column, and the cross check is skipped
    assert (failure.dataset, failure.column, failure.expectation) == ("customers", "customer_id", "expect_column_to_exist")
    assert "'id'" in failure.detail
    summary = json.loads((project / "reports/validation/history.json").read_text())
    checks = {check["check"]: check for check in summary["cross_dataset_checks"]}
    assert "skipped" in checks["history_customer_ids_in_customers"]


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "file is empty"), (b"customer_id,arm,converted\n", "observed 0")],
    ids=["zero_bytes", "header_only"],
)
def test_empty_history_file_is_named(project: Path, content: bytes, reason: str) -> None:
    (project / HISTORY).write_bytes(content)
    with pytest.raises(DataValidationError) as caught:
        _run(project)
    message = str(caught.value)
    assert HISTORY in message and reason in message
    assert {f.dataset for f in caught.value.failures} == {"history"}
    assert json.loads((project / "reports/validation/summary.json").read_text())["success"] is False


def test_missing_history_file_surfaces_as_validation_error(project: Path) -> None:
    (project / HISTORY).unlink()
    with pytest.raises(DataValidationError, match="file not found") as caught:
        _run(project)
    assert caught.value.failures[0].path == HISTORY


def test_every_failure_of_every_file_is_listed(project: Path) -> None:
    _edit_csv(project, CUSTOMERS, lambda f: pd.concat([f, f.iloc[[1]]]))
    _edit_csv(project, HISTORY, lambda f: _set(f, [2], "converted", 7))
    _edit_csv(project, TABLE, lambda f: _set(f, [3], "prob_dm3", 2.5))
    with pytest.raises(DataValidationError) as caught:
        _run(project)
    assert [(f.dataset, f.column) for f in caught.value.failures] == [
        ("customers", "customer_id"), ("history", "converted"), ("true_probabilities", "prob_dm3")
    ]
    assert str(caught.value).startswith("data validation failed: 3 failure(s)")


def test_optimize_table_is_validated_when_given(project: Path) -> None:
    table = pd.read_csv(project / TABLE)
    _set(table, [0], "prob_dm3", 1.01).to_csv(project / "data/external/my_table.csv", index=False)
    with pytest.raises(DataValidationError) as caught:
        _run(project, **{"optimize.probability_table": "data/external/my_table.csv"})
    [failure] = caught.value.failures
    assert (failure.dataset, failure.path, failure.column) == ("probability_table", "data/external/my_table.csv", "prob_dm3")
    assert failure.sample == (1.01,)


# --- configurable names -----------------------------------------------------------------------


def _rename_project(project: Path) -> None:
    text = (project / "params.yaml").read_text()
    for key, new in (("customer_id", "cid"), ("arm_column", "offer"), ("outcome_column", "bought")):
        text = text.replace(f"  {key}: ", f"  {key}: {new}  # was ", 1)
    (project / "params.yaml").write_text(text)
    _edit_csv(project, CUSTOMERS, lambda f: f.rename(columns={"customer_id": "cid"}))
    _write_history(project, customer_id="cid", arm="offer", outcome="bought")


def test_renamed_columns_pass(project: Path) -> None:
    _rename_project(project)
    summary = _run(project)
    assert summary["success"] is True and summary["datasets"]["history"]["rows"] == 10_000


def test_renamed_columns_are_named_in_failures(project: Path) -> None:
    _rename_project(project)
    _edit_csv(project, HISTORY, lambda f: _set(f, [3], "offer", "dm4"))
    with pytest.raises(DataValidationError) as caught:
        _run(project)
    [failure] = caught.value.failures
    assert (failure.column, failure.sample) == ("offer", ("dm4",))


# --- suites and the reusable frame check --------------------------------------------------------


def test_suite_placeholders_expand_from_params(base_project: Path) -> None:
    params = load_params(base_project / "params.yaml", overrides={"arms.coupon_cost": {"a": 0.0, "b": 5.0}, "arms.control": "a", "probabilities.monotone_arms": []})
    specs = load_suite("probability_table", params)
    columns = [s.kwargs.get("column") for s in specs if s.type == "expect_column_values_to_be_between"]
    assert columns == ["prob_a", "prob_b"]
    history = load_suite("history", params)
    arms = [s.kwargs["value_set"] for s in history if s.kwargs.get("column") == "arm" and "value_set" in s.kwargs]
    assert arms == [["a", "b"], ["a", "b"]]  # allowed values, and every arm present


def test_single_segment_column_uses_plain_uniqueness(base_project: Path) -> None:
    params = load_params(base_project / "params.yaml", overrides={"data.segment_columns": ["age_cat"]})
    types = {s.type: s.kwargs for s in load_suite("probability_table", params)}
    assert "expect_compound_columns_to_be_unique" not in types
    assert types["expect_column_values_to_be_unique"]["column"] == "age_cat"


def test_duplicate_expansions_are_kept_once() -> None:
    templates = [{"type": "expect_column_to_exist", "kwargs": {"column": "${column}"},
                  "meta": {"for_each": {"column": ["${a}", "${b}"]}}}]
    specs = expand_expectations(templates, {"a": ["x", "y"], "b": ["y", "z"]}, Path("suite.json"))
    assert [s.kwargs["column"] for s in specs] == ["x", "y", "z"]


def test_unknown_placeholder_names_the_suite_file() -> None:
    templates = [{"type": "expect_column_to_exist", "kwargs": {"column": "${nope}"}}]
    with pytest.raises(ConfigError, match=r"suite\.json.*\$\{nope\}"):
        expand_expectations(templates, {"a": "x"}, Path("suite.json"))


def test_validate_frame_reuses_a_session(base_project: Path) -> None:
    from offerflow.validation.gx_session import GxSession

    params = load_params(base_project / "params.yaml")
    session = GxSession()
    table = pd.read_csv(base_project / TABLE)
    assert validate_frame("true_probabilities", table, params, Path("t.csv"), session=session) == []
    bad = table.assign(prob_dm2=table["prob_dm2"].where(table.index != 6, 7.0))
    failures = validate_frame("true_probabilities", bad, params, Path("t.csv"), session=session)
    assert failures == [
        ValidationFailure("true_probabilities", "t.csv", "prob_dm2", "expect_column_values_to_be_between",
                          unexpected_count=1, sample=(7.0,), detail="allowed range [0.0, 1.0]", rows=(7,))
    ]


def test_well_formed_but_wrong_histories_stop_before_training(project: Path) -> None:
    history = pd.read_csv(project / HISTORY)
    pd.concat([history] * 3).to_csv(project / HISTORY, index=False)  # the export appended three times
    with pytest.raises(DataValidationError, match="repeated .campaign, customer_id. pairs|repeated"):
        _run(project)
    warned = _run(project, **{"validate.duplicates.action": "warn"})  # a user who knows: warn, don't stop
    assert warned["success"] is True
    history.loc[history["arm"] == "dm3", "arm"] = "dm2"  # an arm nobody received
    history.to_csv(project / HISTORY, index=False)
    with pytest.raises(DataValidationError) as caught:
        _run(project)
    checks = {f.expectation for f in caught.value.failures}
    assert {"expect_column_distinct_values_to_contain_set", "history_rows_per_arm"} <= checks
    assert "dm3" in str(caught.value)


def test_negative_ids_and_a_bad_cell_deep_in_a_big_file_are_named_with_their_row(project: Path) -> None:
    _edit_csv(project, CUSTOMERS, lambda f: _set(f, [41], "customer_id", -42))
    history = pd.read_csv(project / HISTORY)
    history = history.astype({"converted": object})
    history.loc[len(history) - 1, "converted"] = "maybe"  # the last row of the file
    history.to_csv(project / HISTORY, index=False)
    with pytest.raises(DataValidationError) as caught:
        _run(project)
    by_column = {(f.dataset, f.column): f for f in caught.value.failures}
    negative = by_column[("customers", "customer_id")]
    assert negative.sample == (-42,) and negative.rows == (42,)
    maybe = by_column[("history", "converted")]
    assert maybe.sample == ("maybe",) and maybe.unexpected_count == 1 and maybe.rows == (len(history),)
    assert f"at data row(s) {len(history):,}" in str(caught.value)
