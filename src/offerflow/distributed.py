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


def partition_bounds(n: int, partition_rows: int) -> list[tuple[int, int]]:
    """[start, stop) of each block of `partition_rows` rows: fixed by the size, not by the workers."""
    return [(start, min(start + partition_rows, n)) for start in range(0, n, partition_rows)] or [(0, 0)]


class LocalExecutor:
    """Partitions live in this process; the same call shapes as the Dask executor."""

    def map(self, function: Callable, *iterables: Sequence, progress: str | None = None, **kwargs: Any) -> list:
        """`progress` names a bar over partitions, shown on a terminal only (long CLI work)."""
        from tqdm import tqdm

        rows = list(zip(*iterables))
        bar = tqdm(rows, desc=progress, unit="partition", disable=None if progress and len(rows) > 1 else True, leave=False)
        return [function(*args, **kwargs) for args in bar]

    build = map  # building a partition locally is just computing it


class DaskExecutor:
    """Partitions live on Dask workers: `build` leaves them there, `map` gathers small results in order."""

    def __init__(self, client) -> None:
        self.client = client

    def map(self, function: Callable, *iterables: Sequence, progress: str | None = None, **kwargs: Any) -> list:
        return self.client.gather(self.client.map(function, *iterables, pure=False, **kwargs))

    def build(self, function: Callable, *iterables: Sequence, progress: str | None = None, **kwargs: Any) -> list:
        return self.client.map(function, *iterables, pure=False, **kwargs)


def local_map(function: Callable, *iterables: Sequence, **kwargs: Any) -> list:
    return LocalExecutor().map(function, *iterables, **kwargs)


def _prefect_dask_client():
    """The dask client of the running flow's prefect-dask DaskTaskRunner, else None.

    Stage tasks run inline in the flow process, so prefect_dask.get_dask_client (made for tasks running
    on workers) finds no global client there; the runner's public `client` property returns the client of
    the cluster the runner owns (creating it on first use), so offerflow never starts a second cluster.
    """
    try:
        from prefect.context import FlowRunContext
        from prefect_dask.task_runners import DaskTaskRunner
    except ImportError:
        return None
    flow_context = FlowRunContext.get()
    runner = getattr(flow_context, "task_runner", None)
    return runner.client if isinstance(runner, DaskTaskRunner) else None


@contextlib.contextmanager
def partition_executor(config: OrchestrationConfig) -> Iterator[LocalExecutor | DaskExecutor]:
    """Where customer partitions are processed: here, or on Dask when orchestration.task_runner is dask
    (the flow's prefect-dask cluster, the scheduler at orchestration.dask_address, or a LocalCluster)."""
    if config.task_runner != "dask":
        yield LocalExecutor()
        return
    flow_client = _prefect_dask_client()
    if flow_client is not None:
        yield DaskExecutor(flow_client)
        return
    from distributed import Client, LocalCluster

    if config.dask_address:
        with Client(config.dask_address) as client:
            yield DaskExecutor(client)
        return
    with LocalCluster(
        n_workers=config.dask_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, Client(cluster) as client:
        yield DaskExecutor(client)
