"""Customer-level allocation at scale: offerflow's allocators against HiGHS on the same instances.

Every case runs in a fresh subprocess, so its peak memory (ru_maxrss) is its own; HiGHS runs in a child
that is killed at --highs-timeout. Cases:
  single    one budget, K=3 offers (control free; coupons 10 and 20 USD x conversion probability);
  coupled   the same plus two coupled caps: offer 1 at most 25% of customers, offers {1, 2} at most 45%;
  highs     the single-budget LP in HiGHS: interior point (solver=ipm), threads=1, presolve off (its
            fastest setting here) and, capped, with default settings (presolve on).
The ratio is HiGHS seconds / allocator seconds at the same size, measured in this run. Times are wall
seconds of the allocate call on 2 threads (inputs already in memory); 'passes' divides them by one pass
over the value array (np.sum), also measured in the same process; 'CPU s' is the process CPU time of the
call (both threads), which a busy shared machine inflates less than wall time. --profile prints where
the time goes (seconds per function, summed over partitions; threads overlap).

    python benchmarks/bench_customer_allocation.py [--sizes 100000 1000000 10000000] [--highs-size 1000000]
        [--coupled-size 10000000] [--highs-timeout 300] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test-only HiGHS oracle

COUPON = np.array([0.0, 10.0, 20.0])
THREADS = 2


def instance(n: int, seed: int = 0):
    """Values and costs built in chunks so that generating them costs little more than holding them."""
    rng = np.random.default_rng(seed)
    value, cost = np.empty((n, 3)), np.empty((n, 3))
    for start in range(0, n, 1_000_000):
        stop = min(start + 1_000_000, n)
        p = np.sort(rng.uniform(0.02, 0.6, size=(stop - start, 3)), axis=1)
        value[start:stop], cost[start:stop] = p - p[:, [0]], p * COUPON
    return value, cost, 0.35 * float(cost.max(axis=1).sum())


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PhaseTimer:
    """Wall seconds spent in named module functions (summed over calls; threads overlap)."""

    def __init__(self, targets: list[tuple[object, str]]) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        for module, name in targets:
            self._wrap(module, name)

    def _wrap(self, module, name: str) -> None:
        function = getattr(module, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        setattr(module, name, timed)


def run_single(n: int, profile: bool) -> dict:
    from offerflow.optimize import customer_allocation as ca

    value, cost, budget = instance(n)
    data_mb = peak_mb()
    timer = PhaseTimer([(ca, f) for f in ("build_partition", "bracket_partition", "allocate_partition")]) if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    allocation = ca.allocate_customers(value, cost, budget, threads=THREADS)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu": time.process_time() - cpu, "objective": allocation.objective, "bound": allocation.dual_bound,
            "bracket_passes": allocation.iterations, "data_mb": data_mb, "one_pass": _one_pass(value),
            "phases": dict(timer.seconds) if timer else {}}


def run_coupled(n: int, profile: bool) -> dict:
    from offerflow.optimize.coupled_allocation import CustomerConstraints, OfferGroup, allocate_with_constraints
    from offerflow.optimize.coupled_allocation import master, relaxation, solve

    value, cost, budget = instance(n)
    data_mb = peak_mb()
    constraints = CustomerConstraints(control=0, capacity=(np.inf, 0.25 * n, np.inf),
                                      groups=(OfferGroup("coupons", (1, 2), int(0.45 * n)),))
    timer = None
    if profile:
        timer = PhaseTimer([(relaxation, "anchor_block"), (relaxation, "check_block"), (relaxation, "sample_block"),
                            (master.WorkingSetModel, "solve"), (solve, "round_working_set"), (solve, "finish_block"),
                            (solve, "_budget_prices")])
    started, cpu = time.perf_counter(), time.process_time()
    allocation = allocate_with_constraints(value, cost, budget, constraints, threads=THREADS)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu": time.process_time() - cpu, "objective": allocation.objective, "bound": allocation.dual_bound,
            "rounds": allocation.iterations, "data_mb": data_mb, "one_pass": _one_pass(value),
            "constraints": [c.describe() for c in allocation.constraints],
            "phases": dict(timer.seconds) if timer else {}}


def run_highs(n: int, presolve: str) -> dict:
    from reference.highs_models import solve_with_highs  # tests/reference: the test-only oracle

    value, cost, budget = instance(n)
    started = time.perf_counter()
    solver = solve_with_highs(value, cost, budget, solver="ipm", presolve=presolve, threads=1)
    return {"seconds": time.perf_counter() - started, "objective": solver.getInfo().objective_function_value,
            "status": solver.modelStatusToString(solver.getModelStatus())}


def _one_pass(value: np.ndarray) -> float:
    started = time.perf_counter()
    value.sum()
    return time.perf_counter() - started


def measure(kind: str, n: int, *extra: str, timeout: float | None = None) -> dict:
    """One case in a child process (killed after `timeout` seconds); its result plus peak RSS in MB."""
    command = [sys.executable, __file__, "--child", kind, str(n), *extra]
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(kind: str, n: int, extra: list[str], profile: bool) -> None:
    if kind == "single":
        result = run_single(n, profile)
    elif kind == "coupled":
        result = run_coupled(n, profile)
    else:
        result = run_highs(n, extra[0])
    result["peak_mb"] = peak_mb()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--highs-size", type=int, default=1_000_000, help="instance also given to HiGHS")
    parser.add_argument("--coupled-size", type=int, default=10_000_000)
    parser.add_argument("--highs-timeout", type=float, default=300.0, help="seconds before HiGHS is killed")
    parser.add_argument("--profile", action="store_true", help="print seconds per phase")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2:], args.profile)
        return
    flag = ["--profile"] if args.profile else []
    print(f"single budget, 3 offers, {THREADS} threads; HiGHS: solver=ipm, threads=1; "
          f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    header = f"{'customers':>11} {'seconds':>8} {'CPU s':>6} {'passes':>7} {'peak MB':>8} {'inputs MB':>9} {'bracket passes':>15} {'rel. gap':>9}"
    print(header + "\n" + "-" * len(header))
    single = {}
    for n in args.sizes:
        mine = single[n] = measure("single", n, *flag)
        print(f"{n:>11,} {mine['seconds']:>8.2f} {mine['cpu']:>6.2f} {mine['seconds'] / mine['one_pass']:>7.0f} {mine['peak_mb']:>8.0f} "
              f"{mine['data_mb']:>9.0f} {mine['bracket_passes']:>15} "
              f"{(mine['bound'] - mine['objective']) / mine['bound']:>9.1e}", flush=True)
        if mine["phases"]:
            print("    " + ", ".join(f"{k} {v:.2f}s" for k, v in mine["phases"].items()))
    n = args.highs_size
    mine = single.get(n) or measure("single", n)
    for presolve, cap in (("off", args.highs_timeout), ("on", min(args.highs_timeout, 120.0))):
        highs = measure("highs", n, presolve, timeout=cap)
        if "timeout" in highs:
            print(f"HiGHS ipm presolve={presolve} at {n:,}: not finished in {cap:.0f} s (killed); "
                  f"ratio > {cap / mine['seconds']:.0f}x")
            continue
        rel = abs(mine["bound"] - highs["objective"]) / abs(highs["objective"])
        print(f"HiGHS ipm presolve={presolve} at {n:,}: {highs['seconds']:.1f} s, {highs['peak_mb']:.0f} MB, "
              f"{highs['status']}; allocator {mine['seconds']:.2f} s: {highs['seconds'] / mine['seconds']:.0f}x faster; "
              f"|bound - HiGHS| / HiGHS = {rel:.1e}", flush=True)
    coupled = measure("coupled", args.coupled_size, *flag)
    print(f"budget + 2 coupled caps at {args.coupled_size:,}: {coupled['seconds']:.2f} s (CPU {coupled['cpu']:.2f} s) "
          f"({coupled['seconds'] / coupled['one_pass']:.0f} passes), peak {coupled['peak_mb']:.0f} MB "
          f"(inputs {coupled['data_mb']:.0f}), working-set rounds {coupled['rounds']}, "
          f"rel. gap {(coupled['bound'] - coupled['objective']) / coupled['bound']:.1e}")
    for use in coupled["constraints"]:
        print(f"    {use['name']}: {use['used']:,.2f} {use['sense']} {use['bound']:,.2f}, multiplier {use['multiplier']:.4g}")
    if coupled["phases"]:
        print("    " + ", ".join(f"{k} {v:.2f}s" for k, v in coupled["phases"].items()))


if __name__ == "__main__":
    main()
