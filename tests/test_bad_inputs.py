"""Bad input never crashes and never publishes: 60+ broken inputs through `offerflow run` on a project that
has already published once. Each exits 2, 3 or 4 with one message (no traceback) naming the file or key and
the offending values, and the published state stays byte-identical; a sample goes through the Prefect flow.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import copy_project, set_params, write_user_history

Mutation = Callable[[Path], None]


def edit_yaml(text_edit: Callable[[str], str]) -> Mutation:
    def mutate(project: Path) -> None:
        path = project / "params.yaml"
        path.write_text(text_edit(path.read_text()))
    return mutate


def params(**dotted) -> Mutation:
    return lambda project: set_params(project, **dotted)


def csv_edit(relative: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Mutation:
    def mutate(project: Path) -> None:
        path = project / relative
        edit(pd.read_csv(path)).to_csv(path, index=False)
    return mutate


def write_bytes(relative: str, content: bytes) -> Mutation:
    return lambda project: (project / relative).write_bytes(content)


def own_history(edit: Callable[[pd.DataFrame], pd.DataFrame] | None = None, **extra) -> Mutation:
    """Switch to the user's own history (data/external/history.csv), optionally broken."""
    def mutate(project: Path) -> None:
        path = project / "data/external/history.csv"
        if edit is not None:
            edit(pd.read_csv(path)).to_csv(path, index=False)
        set_params(project, simulate__enabled=False, data__history="data/external/history.csv", **extra)
    return mutate


def cell(frame: pd.DataFrame, rows, column: str, value) -> pd.DataFrame:
    frame = frame.astype({column: object}) if isinstance(value, str) or value is None else frame.copy()
    frame.loc[rows, column] = value
    return frame


CUSTOMERS, TABLE = "data/external/customers.csv", "data/external/visit_probability.csv"
ONE_ARM = {"dm1": 0.0, "dm2": 10.0, "dm3": 20.0}

CASES: dict[str, tuple[Mutation, int, list[str]]] = {
    # params.yaml (exit 2): the key is named; nothing runs on built-in defaults
    "empty_params": (write_bytes("params.yaml", b""), 2, ["params.yaml", "empty"]),
    "params_not_a_mapping": (write_bytes("params.yaml", b"- a\n- b\n"), 2, ["top level must be a mapping"]),
    "params_invalid_yaml": (write_bytes("params.yaml", b"data: [unclosed\n"), 2, ["not valid YAML"]),
    "duplicated_key": (edit_yaml(lambda t: re.sub(r"(?m)^(  budget: .*)$", r"\1\n  budget: 9000", t, count=1)), 2,
                       ["'budget' appears twice"]),
    "missing_section": (edit_yaml(lambda t: t.split("\npublish:")[0] + "\n"), 2, ["missing section", "publish"]),
    "unknown_key": (params(optimize__budgett=5), 2, ["optimize.budgett: unknown key"]),
    "budget_text": (params(optimize__budget="lots"), 2, ["optimize.budget", "lots"]),
    "budget_negative": (params(optimize__budget=-3), 2, ["optimize.budget"]),
    "min_share_above_one": (params(optimize__min_share=1.5), 2, ["optimize.min_share"]),
    "control_not_an_arm": (params(arms__control="dm9"), 2, ["control arm 'dm9'"]),
    "coupon_negative": (params(arms__coupon_cost={"dm1": 0, "dm2": -10, "dm3": 20}), 2, ["coupon_cost must be >= 0"]),
    "capacity_unknown_offer": (params(optimize__capacity={"dm9": 10}), 2, ["optimize.capacity", "dm9"]),
    "min_share_unknown_offer": (params(optimize__min_share={"dm7": 0.1}), 2, ["optimize.min_share", "dm7"]),
    "monotone_unknown_arm": (params(probabilities__monotone_arms=["dm1", "dm4"]), 2, ["probabilities.monotone_arms", "dm4"]),
    "customers_file_missing": (params(data__customers="data/external/nope.csv"), 2, ["data.customers: file not found", "nope.csv"]),
    "history_with_simulator": (params(data__history="data/external/history.csv"), 2, ["data.history is set while simulate.enabled"]),
    "no_history_without_simulator": (params(simulate__enabled=False), 2, ["data.history: not set"]),
    "simulator_without_truth": (params(data__true_probabilities=None), 2, ["data.true_probabilities is null"]),
    "base_model_unknown": (params(train__base_model="xgb"), 2, ["train.base_model", "xgb"]),
    "learner_unknown": (params(train__learner="magic"), 2, ["train.learner", "magic"]),
    "url_in_url_env": (params(publish__url_env="postgresql://u:hunter2@db/x"), 2, ["publish.url_env", "not shown"]),
    "url_in_secret_block": (params(publish__secret_block="postgresql://u:hunter2@db/x"), 2, ["publish.secret_block", "not shown"]),
    "target_unknown": (params(publish__target="mysql"), 2, ["publish.target", "mysql"]),
    "holdout_fraction": (params(evaluate__holdout__fraction=1.5), 2, ["evaluate.holdout.fraction"]),
    "gate_method_unknown": (params(evaluate__gate__method="magic"), 2, ["evaluate.gate.method", "magic"]),
    "task_runner_unknown": (params(orchestration__task_runner="spark"), 2, ["orchestration.task_runner", "spark"]),
    "segment_columns_empty": (params(data__segment_columns=[]), 2, ["data.segment_columns"]),
    "logged_propensity_not_logged": (params(train__propensity__source="logged", simulate__log_propensity=False), 2, ["simulate.log_propensity"]),
    "table_prefix_invalid": (params(publish__table_prefix="Bad-Prefix"), 2, ["publish.table_prefix"]),
    "decision_quality_without_truth": (own_history(data__true_probabilities=None, train__decision_quality__enabled=True), 2,
                                       ["train.decision_quality.enabled needs data.true_probabilities"]),
    # the customer file (exit 3): file, column and the offending values
    "customer_id_duplicated": (csv_edit(CUSTOMERS, lambda f: cell(f, [3], "customer_id", 5)), 3, [CUSTOMERS, "customer_id", "5"]),
    "customer_id_null": (csv_edit(CUSTOMERS, lambda f: cell(f, [3], "customer_id", None)), 3, [CUSTOMERS, "customer_id"]),
    "customer_id_text": (csv_edit(CUSTOMERS, lambda f: cell(f, [3], "customer_id", "C-4")), 3, [CUSTOMERS, "C-4"]),
    "customer_id_negative": (csv_edit(CUSTOMERS, lambda f: cell(f, [41], "customer_id", -42)), 3, [CUSTOMERS, "-42", "row(s) 42"]),
    "segment_column_missing": (csv_edit(CUSTOMERS, lambda f: f.drop(columns="freq_cat")), 3, [CUSTOMERS, "freq_cat", "missing"]),
    "segment_value_null": (csv_edit(CUSTOMERS, lambda f: cell(f, [7], "age_cat", None)), 3, [CUSTOMERS, "age_cat"]),
    "segment_unknown_to_table": (csv_edit(CUSTOMERS, lambda f: cell(f, [7], "age_cat", "age70~")), 3, ["age70~"]),
    "customers_empty": (write_bytes(CUSTOMERS, b""), 3, [CUSTOMERS, "empty"]),
    "customers_header_only": (write_bytes(CUSTOMERS, b"customer_id,age_cat,freq_cat\n"), 3, [CUSTOMERS, "observed 0"]),
    "customers_binary": (write_bytes(CUSTOMERS, bytes(range(256)) * 4), 3, [CUSTOMERS]),
    # the true probability table (exit 3)
    "probability_above_one": (csv_edit(TABLE, lambda f: cell(f, [2], "prob_dm3", 1.29)), 3, [TABLE, "prob_dm3", "1.29"]),
    "probability_negative": (csv_edit(TABLE, lambda f: cell(f, [2], "prob_dm2", -0.1)), 3, [TABLE, "prob_dm2", "-0.1"]),
    "probability_text": (csv_edit(TABLE, lambda f: cell(f, [2], "prob_dm2", "high")), 3, [TABLE, "prob_dm2", "high"]),
    "probability_empty_cell": (csv_edit(TABLE, lambda f: cell(f, [2], "prob_dm2", None)), 3, [TABLE, "prob_dm2"]),
    "probability_column_missing": (csv_edit(TABLE, lambda f: f.drop(columns="prob_dm2")), 3, [TABLE, "prob_dm2", "missing"]),
    "table_segment_repeated": (csv_edit(TABLE, lambda f: pd.concat([f, f.iloc[[0]]])), 3, [TABLE]),
    "table_segment_missing": (csv_edit(TABLE, lambda f: f.iloc[1:]), 3, [TABLE, "segments missing from the table"]),
    # the user's own history (exit 3)
    "history_unknown_arm": (own_history(lambda f: cell(f, [5], "arm", "dm9")), 3, ["history.csv", "arm", "dm9"]),
    "history_null_arm": (own_history(lambda f: cell(f, [5], "arm", None)), 3, ["history.csv", "arm"]),
    "history_outcome_two": (own_history(lambda f: cell(f, [5], "converted", 2)), 3, ["history.csv", "converted", "2"]),
    "history_outcome_maybe_last_row": (own_history(lambda f: cell(f, [len(f) - 1], "converted", "maybe")), 3,
                                       ["history.csv", "'maybe'", "row(s) 60,000"]),
    "history_unknown_customer": (own_history(lambda f: cell(f, [9], "customer_id", 999_999)), 3, ["history.csv", "999999"]),
    "history_duplicated_tenfold": (own_history(lambda f: pd.concat([f] * 10)), 3, ["history.csv", "repeated"]),
    "history_one_arm": (own_history(lambda f: f.assign(arm="dm1")), 3, ["history.csv", "dm2", "dm3"]),
    "history_single_row": (own_history(lambda f: f.head(1)), 3, ["history.csv"]),
    "history_arm_too_rare": (own_history(lambda f: f[(f["arm"] != "dm3") | (f.index < 20)]), 3, ["history.csv", "dm3", "min_rows_per_arm"]),
    "history_empty": (lambda p: (own_history()(p), (p / "data/external/history.csv").write_bytes(b"")), 3, ["history.csv", "empty"]),
    "history_outcome_missing": (own_history(lambda f: f.drop(columns="converted")), 3, ["history.csv", "converted", "missing"]),
    "history_id_text": (own_history(lambda f: cell(f, [3], "customer_id", "abc")), 3, ["history.csv", "abc"]),
    "history_campaign_missing": (own_history(lambda f: f.drop(columns="campaign")), 3, ["history.csv", "campaign"]),
    "logged_propensity_missing": (own_history(train__propensity__source="logged"), 3, ["history.csv", "propensity", "missing"]),
    "given_table_broken": (lambda p: (csv_edit(TABLE, lambda f: cell(f, [4], "prob_dm1", 3.0))(p),
                                      set_params(p, optimize__probability_table=TABLE)), 3, [TABLE, "prob_dm1", "3.0"]),
    # no feasible plan (exit 4)
    "segment_plan_budget_too_small": (params(publish__source="segment_plan", optimize__budget=100), 4, ["Smallest feasible budget"]),
}


def published_state(project: Path) -> dict[str, str]:
    files = {name: hashlib.sha256((project / name).read_bytes()).hexdigest()
             for name in ("data/published/assignments.csv", "reports/publish_metrics.json")}
    with sqlite3.connect(project / "data/published/offerflow.sqlite") as connection:
        files["current_run"] = connection.execute("SELECT run_id FROM current_run").fetchone()[0]
        files["runs"] = str(connection.execute("SELECT count(*) FROM runs").fetchone()[0])
    return files


@pytest.fixture(scope="module")
def published_project(tmp_path_factory) -> Path:
    from offerflow.cli import main

    project = copy_project(tmp_path_factory.mktemp("published") / "project")
    set_params(project, train__candidates=[], train__evaluation__figures=False)
    write_user_history(project, campaigns=12)
    assert main(["run", "--no-progress", "--params", str(project / "params.yaml")]) == 0
    return project


@pytest.fixture
def broken_copy(published_project, tmp_path) -> Path:
    return Path(shutil.copytree(published_project, tmp_path / "copy"))


def test_the_corpus_is_large_and_spans_every_exit_code():
    assert len(CASES) >= 60
    assert {code for _, code, _ in CASES.values()} == {2, 3, 4}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_with_its_code_names_the_problem_and_publishes_nothing(broken_copy, capsys, case):
    from offerflow.cli import main

    mutate, code, fragments = CASES[case]
    before = published_state(broken_copy)
    mutate(broken_copy)
    assert main(["run", "--no-progress", "--params", str(broken_copy / "params.yaml")]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err[-2000:])
    assert "hunter2" not in err
    assert published_state(broken_copy) == before


FLOW_SAMPLE = ["budget_negative", "capacity_unknown_offer", "customer_id_duplicated", "probability_above_one",
               "history_outcome_maybe_last_row", "history_one_arm", "history_duplicated_tenfold",
               "logged_propensity_missing", "given_table_broken", "segment_plan_budget_too_small"]


@pytest.mark.slow
@pytest.mark.parametrize("case", FLOW_SAMPLE)
def test_the_flow_fails_the_same_way(broken_copy, case):
    from offerflow.errors import exit_code_of
    from offerflow.flows import offer_allocation

    mutate, code, fragments = CASES[case]
    before = published_state(broken_copy)
    mutate(broken_copy)
    with pytest.raises(Exception) as caught:
        offer_allocation(params_file=str(broken_copy / "params.yaml"))
    assert exit_code_of(caught.value) == code
    assert all(fragment in str(caught.value) for fragment in fragments), str(caught.value)
    assert published_state(broken_copy) == before
