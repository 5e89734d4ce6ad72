"""Scale-out on Dask: run a pure function over customer partitions on a dask.distributed cluster.

offerflow never schedules work itself. With `orchestration.task_runner: dask`, the customer-level
work (scoring, the allocator's per-partition sums) is mapped over partitions on a Dask cluster: the
one at `orchestration.dask_address`, the one prefect-dask started for the flow, or a LocalCluster.
Results are gathered in partition order, so the answer does not depend on where a partition ran.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

from offerflow.config import OrchestrationConfig

Mapper = Callable[..., list]


def local_map(function: Callable, *iterables: Sequence, **kwargs: Any) -> list:
    """In-process mapper with the same call shape as the Dask one."""
    return [function(*args, **kwargs) for args in zip(*iterables)]


def dask_mapper(client) -> Mapper:
    """Map over partitions on `client`; gather keeps partition order."""

    def mapped(function: Callable, *iterables: Sequence, **kwargs: Any) -> list:
        futures = client.map(function, *iterables, pure=False, **kwargs)
        return client.gather(futures)

    return mapped


def _prefect_dask_client():
    """The client of the flow's DaskTaskRunner when this code runs inside such a flow, else None."""
    try:
        from prefect.context import TaskRunContext

        if TaskRunContext.get() is None:
            return None
        from prefect_dask import get_dask_client
        from prefect_dask.task_runners import DaskTaskRunner
        from prefect.context import FlowRunContext

        flow_context = FlowRunContext.get()
        if flow_context is None or not isinstance(flow_context.task_runner, DaskTaskRunner):
            return None
        return get_dask_client
    except ImportError:
        return None


@contextlib.contextmanager
def partition_mapper(config: OrchestrationConfig) -> Iterator[Mapper]:
    """A mapper for customer partitions: local unless orchestration.task_runner is dask."""
    if config.task_runner != "dask":
        yield local_map
        return
    from_prefect = _prefect_dask_client()
    if from_prefect is not None:
        with from_prefect() as client:
            yield dask_mapper(client)
        return
    from distributed import Client, LocalCluster

    if config.dask_address:
        with Client(config.dask_address) as client:
            yield dask_mapper(client)
        return
    with LocalCluster(n_workers=config.dask_workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            yield dask_mapper(client)
