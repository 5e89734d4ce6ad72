"""Every error carries its exit code and whether a retry can help; the CLI and the flow read both from it."""

from __future__ import annotations

import dataclasses

import pytest

from offerflow.errors import (
    ConfigError,
    GateRefusedError,
    InfeasiblePlanError,
    InputFileError,
    StaleInputError,
    exit_code_of,
    is_retryable,
)
from offerflow.optimize.customer_allocation import CustomerBudgetInfeasible
from offerflow.optimize.segment_lp import ProbabilityTableError
from offerflow.publish.assign import PlanError
from offerflow.publish.lineage import StoreError
from offerflow.publish.target import PublishTargetError
from offerflow.validation.failures import DataValidationError, ValidationFailure

FAILURE = ValidationFailure("customers", "data/external/customers.csv", "customer_id", "expect_column_values_to_be_unique")

CASES = [  # (error, exit code, retried by the flow)
    (ConfigError("optimize.capacity: ['dm9'] is not an arm"), 2, False),
    (DataValidationError([FAILURE]), 3, False),
    (InputFileError("data/external/customers.csv: file is empty"), 3, False),
    (StaleInputError("publish: the outputs of optimize cannot be used"), 3, False),
    (ProbabilityTableError("prob_dm2 must be within [0, 1]"), 3, False),
    (PlanError("segment plan does not match the customers"), 3, False),
    (InfeasiblePlanError("no plan fits the budget", 7618.5), 4, False),
    (CustomerBudgetInfeasible("even the cheapest offer costs more", 12.0), 4, False),
    (GateRefusedError("candidate is not better than the best baseline"), 5, False),
    (StoreError("run abc already exists with other rows"), 1, False),
    (PublishTargetError("cannot publish: password authentication failed"), 1, False),
    (PublishTargetError("cannot publish: connection refused", retryable=True), 1, True),
    (ConnectionRefusedError("refused"), 1, True),
    (KeyError("a bug"), 1, False),
]


@pytest.mark.parametrize(("error", "code", "retried"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_exit_code_and_retry_come_from_the_class(error, code, retried):
    assert exit_code_of(error) == code
    assert is_retryable(error) is retried


def failing_simulate(monkeypatch, error: BaseException) -> dict:
    """Make the declared simulate stage raise `error` (it has no upstream, so it fails at once)."""
    import offerflow.pipeline as pipeline

    calls = {"simulate": 0}

    def runner(params):
        calls["simulate"] += 1
        raise error

    stages = tuple(dataclasses.replace(s, runner=runner) if s.name == "simulate" else s for s in pipeline.STAGES)
    monkeypatch.setattr(pipeline, "STAGES", stages)
    return calls


@pytest.mark.parametrize(("error", "code", "retried"), CASES[:-1], ids=[type(c[0]).__name__ for c in CASES[:-1]])
def test_cli_exits_with_the_code_and_prints_no_traceback_for_fixable_errors(project, monkeypatch, capsys, error, code, retried):
    from offerflow.cli import main

    failing_simulate(monkeypatch, error)
    assert main(["simulate", "--params", str(project / "params.yaml")]) == code
    err = capsys.readouterr().err
    assert str(error).splitlines()[0] in err
    assert ("Traceback" in err) == isinstance(error, ConnectionRefusedError)  # only faults offerflow did not anticipate


@pytest.mark.parametrize(
    ("error", "attempts"),
    [(InfeasiblePlanError("no plan"), 1), (DataValidationError([FAILURE]), 1),
     (PublishTargetError("connection refused", retryable=True), 3), (StoreError("inconsistent"), 1)],
    ids=["infeasible", "validation", "transient", "store"],
)
def test_flow_retries_only_what_a_retry_can_fix(project, monkeypatch, error, attempts):
    from prefect import flow

    from conftest import set_params
    from offerflow.flows.steps import stage_task

    set_params(project, orchestration__retries=2, orchestration__retry_delay_seconds=0)
    calls = failing_simulate(monkeypatch, error)

    @flow
    def one_stage():
        return stage_task.with_options(retries=2, retry_delay_seconds=0, refresh_cache=True)(
            "simulate", str(project / "params.yaml"), None
        )

    with pytest.raises(type(error)):
        one_stage()
    assert calls["simulate"] == attempts
