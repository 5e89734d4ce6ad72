"""Scale-out on Dask: the customer-level allocation on a 2-worker LocalCluster equals the in-process one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import SEED, set_params
from offerflow.config import load_params
from offerflow.io import file_sha256, write_parquet
from offerflow.stages import run_allocate
from offerflow.catalog import Catalog


def synthetic_customer_probabilities(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    p = np.sort(rng.uniform(0.02, 0.6, size=(n, 3)), axis=1)
    p[: n // 4] = p[0]  # a block of identical customers: ties the allocator must break the same way
    return pd.DataFrame(
        {"customer_id": np.arange(1, n + 1), "segment_id": rng.integers(1, 17, n),
         "prob_dm1": p[:, 0], "prob_dm2": p[:, 1], "prob_dm3": p[:, 2]}
    )


@pytest.fixture(scope="module")
def dask_cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster


def test_allocation_on_dask_workers_is_byte_identical_to_in_process(project, dask_cluster):
    n = 60_000
    set_params(project, allocate__partition_rows=7_000, optimize__budget=150_000)
    params = load_params(project / "params.yaml")
    layout = Catalog(params)
    write_parquet(synthetic_customer_probabilities(n), layout.customer_probabilities)

    local = run_allocate(params)
    local_plan = file_sha256(layout.customer_plan)
    local_metrics = layout.allocate_metrics.read_bytes()

    set_params(project, orchestration__task_runner="dask", orchestration__dask_address=dask_cluster.scheduler_address)
    on_dask = run_allocate(load_params(project / "params.yaml"))
    assert file_sha256(layout.customer_plan) == local_plan
    assert layout.allocate_metrics.read_bytes() == local_metrics
    assert on_dask == local
    assert local["partitions"] == 9
    assert local["expected_cost"] <= 150_000 + 1e-6
    assert local["relative_gap"] < 1e-4
    plan = pd.read_parquet(layout.customer_plan)
    assert len(plan) == n and plan["customer_id"].is_unique
    assert json.loads(local_metrics)["offer_counts"] == plan["offer"].value_counts().to_dict() | {
        arm: 0 for arm in ("dm1", "dm2", "dm3") if arm not in set(plan["offer"])
    }


@pytest.mark.slow
def test_flow_on_prefect_dask_task_runner_scores_and_allocates_the_same_on_one_cluster(tmp_path, monkeypatch):
    """Scoring and allocation run on the flow's 2-worker Dask cluster in 1,000-customer partitions; the runner's
    cluster is the only one started, and every partitioned stage talks to its scheduler."""
    from distributed.deploy.local import LocalCluster

    import offerflow.distributed as scale_out
    from conftest import copy_project
    from offerflow.flows.offer_allocation import run_offer_allocation

    clusters, executors = [], []
    original_cluster, original_executor = LocalCluster.__init__, scale_out.DaskExecutor.__init__

    def counted_cluster(self, *args, **kwargs):
        original_cluster(self, *args, **kwargs)
        clusters.append(self.scheduler_address)

    def counted_executor(self, client):
        original_executor(self, client)
        executors.append(client.scheduler.address)

    monkeypatch.setattr(LocalCluster, "__init__", counted_cluster)
    monkeypatch.setattr(scale_out.DaskExecutor, "__init__", counted_executor)
    plans = {}
    for runner in ("thread", "dask"):
        project = copy_project(tmp_path / runner)
        set_params(project, allocate__partition_rows=1_000, orchestration__task_runner=runner,
                   orchestration__dask_workers=2, publish__source="customer_plan")
        summary = run_offer_allocation(params_file=str(project / "params.yaml"))
        assert summary["run_id"]
        plans[runner] = [file_sha256(project / name) for name in (
            "data/processed/customer_probabilities.parquet", "data/processed/customer_plan.parquet",
            "reports/allocate_metrics.json", "data/published/assignments.csv")]
        if runner == "thread":
            assert clusters == [] and executors == []  # in process: no Dask at all
    assert plans["thread"] == plans["dask"]
    assert len(clusters) == 1, f"{len(clusters)} LocalClusters started during one flow run: {clusters}"
    assert len(executors) >= 2 and set(executors) == set(clusters)  # scoring and allocation used the runner's cluster


def test_inside_a_flow_on_a_dask_task_runner_the_stage_uses_the_runners_cluster(monkeypatch):
    """No second cluster: partitions go to the cluster prefect-dask's runner owns (its public client)."""
    import distributed
    from prefect import flow
    from prefect.context import FlowRunContext
    from prefect_dask import DaskTaskRunner

    from offerflow.config import OrchestrationConfig
    from offerflow.distributed import DaskExecutor, partition_executor

    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1, "threads_per_worker": 1, "processes": False,
                                            "dashboard_address": ":0"})

    @flow(task_runner=runner)
    def on_dask() -> tuple[str, str, list]:
        runner_address = FlowRunContext.get().task_runner.client.scheduler.address

        def no_new_cluster(*args, **kwargs):
            raise AssertionError("offerflow started a cluster of its own")

        monkeypatch.setattr(distributed, "LocalCluster", no_new_cluster)
        with partition_executor(OrchestrationConfig(task_runner="dask")) as executor:
            assert isinstance(executor, DaskExecutor)
            squares = executor.map(lambda x: x * x, [1, 2, 3])
            return runner_address, executor.client.scheduler.address, squares

    runner_address, used_address, squares = on_dask()
    assert used_address == runner_address and squares == [1, 4, 9]
