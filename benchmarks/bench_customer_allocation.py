"""Customer-level allocation at scale: offerflow's allocator vs HiGHS on the same instance.

Each case runs in a fresh subprocess so that peak memory (ru_maxrss) belongs to that case alone.
HiGHS solves the LP relaxation (what the allocator's dual bound certifies) and is skipped where it
would take too long; the ratio column is HiGHS seconds / allocator seconds.

    python benchmarks/bench_customer_allocation.py [--sizes 100000 1000000 10000000] [--highs-max 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test-only HiGHS oracle

COUPON = np.array([0.0, 10.0, 20.0])
HIGHS_SOLVER = "ipm"  # HiGHS's interior point beat its simplex on these LPs


def instance(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    p = np.sort(rng.uniform(0.02, 0.6, size=(n, 3)), axis=1)
    value, cost = p - p[:, [0]], p * COUPON
    budget = 0.35 * cost.max(axis=1).sum()
    return value, cost, budget


def run_allocator(n: int) -> dict:
    from offerflow.optimize.customer_allocation import allocate_customers

    value, cost, budget = instance(n)
    started = time.perf_counter()
    allocation = allocate_customers(value, cost, budget)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "objective": allocation.objective, "bound": allocation.dual_bound,
            "iterations": allocation.iterations}


def run_highs(n: int) -> dict:
    from reference.highs_models import solve_with_highs  # tests/reference: the test-only oracle

    value, cost, budget = instance(n)
    started = time.perf_counter()
    solver = solve_with_highs(value, cost, budget, solver=HIGHS_SOLVER)
    return {"seconds": time.perf_counter() - started, "objective": solver.getInfo().objective_function_value,
            "status": solver.modelStatusToString(solver.getModelStatus())}


def measure(kind: str, n: int) -> dict:
    """Run one case in a child process; returns its result plus peak RSS in MB."""
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(n)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--highs-max", type=int, default=1_000_000, help="largest instance also given to HiGHS")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n = args.child[0], int(args.child[1])
        result = run_allocator(n) if kind == "allocator" else run_highs(n)
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    header = f"{'customers':>11} {'allocator s':>12} {'peak MB':>8} {'HiGHS s':>9} {'HiGHS MB':>9} {'speed-up':>9} {'rel. gap vs HiGHS':>18} {'own gap':>10}"
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        mine = measure("allocator", n)
        line = f"{n:>11,} {mine['seconds']:>12.2f} {mine['peak_mb']:>8.0f}"
        own_gap = (mine["bound"] - mine["objective"]) / mine["bound"]
        if n <= args.highs_max:
            highs = measure("highs", n)
            gap = abs(mine["bound"] - highs["objective"]) / abs(highs["objective"])
            line += f" {highs['seconds']:>9.2f} {highs['peak_mb']:>9.0f} {highs['seconds'] / mine['seconds']:>8.1f}x {gap:>18.2e}"
        else:
            line += f" {'skipped':>9} {'':>9} {'':>9} {'':>18}"
        print(line + f" {own_gap:>10.1e}", flush=True)
    print("rel. gap vs HiGHS: |allocator dual bound - HiGHS LP optimum| / HiGHS LP optimum; "
          "own gap: (dual bound - integer allocation) / dual bound (one rounded customer)")


if __name__ == "__main__":
    main()
