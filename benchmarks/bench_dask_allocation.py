"""Customer-level allocation in process vs on a 2-worker Dask LocalCluster (same partitions).

Prints seconds, peak memory per process and whether both gave the same allocation.

    python benchmarks/bench_dask_allocation.py [--customers 10000000] [--partition-rows 1000000]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from offerflow.distributed import DaskExecutor, LocalExecutor
from offerflow.optimize.customer_allocation import allocate_customers

COUPON = np.array([0.0, 10.0, 20.0])


def peak_mb() -> float:
    """Peak RSS of this process's own address space (VmHWM; unlike ru_maxrss it is not inherited on fork/exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--partition-rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    p = np.sort(rng.uniform(0.02, 0.6, size=(args.customers, 3)), axis=1)
    value, cost = p - p[:, [0]], p * COUPON
    del p
    budget = 0.35 * cost.max(axis=1).sum()
    data_mb = peak_mb()

    started = time.perf_counter()
    local = allocate_customers(value, cost, budget, args.partition_rows, executor=LocalExecutor())
    local_seconds = time.perf_counter() - started
    local_mb = peak_mb()

    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            started = time.perf_counter()
            on_dask = allocate_customers(value, cost, budget, args.partition_rows, executor=DaskExecutor(client))
            # the client ships each partition once (large graphs); workers hold only their partitions
            dask_seconds = time.perf_counter() - started
            worker_mb = client.run(peak_mb)
    same = bool(np.array_equal(local.offer, on_dask.offer)) and local.objective == on_dask.objective
    print(f"{args.customers:,} customers x 3 offers, partitions of {args.partition_rows:,}")
    print(f"{'mode':<22} {'seconds':>8} {'peak MB (per process)':>40}")
    print(f"{'in process':<22} {local_seconds:>8.2f} {f'{local_mb:.0f} (input arrays alone: {data_mb:.0f})':>40}")
    workers = ", ".join(f"{mb:.0f}" for mb in worker_mb.values())
    print(f"{f'LocalCluster x{args.workers}':<22} {dask_seconds:>8.2f} {f'client {peak_mb():.0f}; workers {workers}':>40}")
    print(f"ratio dask/in-process: {dask_seconds / local_seconds:.2f}; identical allocation: {same}; "
          f"relative gap {local.relative_gap:.1e}")


if __name__ == "__main__":
    main()
