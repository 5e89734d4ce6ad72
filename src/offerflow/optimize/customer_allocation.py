"""Exact customer-level allocation under one budget, for millions of customers.

Each customer gets one offer; value v[i,d] and expected cost c[i,d] are known per customer and offer.
One budget couples otherwise independent customers: a multiple-choice knapsack. Its LP relaxation is
solved exactly by a threshold on efficiencies: per customer, walk the upper concave hull of its
(cost, value) points from the cheapest offer; every hull step has an efficiency dv/dc, non-increasing
along the hull. The LP optimum takes every step more efficient than a threshold e*, part of the steps
at e*, none below. The integer allocation takes the same steps, and of the steps at e* those that fit
in customer order (a step only after the one before it), so the gap is below one step. The bound
reported is the Lagrangian dual at e*,
    D(e*) = e* B + sum_i max_d (v[i,d] - e* c[i,d]),
computed from the raw inputs: an upper bound on any allocation whatever the hull arithmetic did; the
cost reported is recomputed from the chosen offers and never exceeds the budget.

Hand-written (numpy) because no library solves this LP at this size: HiGHS's interior point takes
about a minute for one million customers, this well under a second. Customers are split into
partitions (in process on a thread pool, or on Dask workers); the threshold comes from per-partition
sums over one sample-guided bracket, so a fixed partition size gives byte-identical answers on any
executor and any number of threads.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from offerflow.distributed import LocalExecutor, partition_bounds
from offerflow.errors import InfeasiblePlanError

SAMPLE_STRIDE = 61  # every 61st hull step (prime: not a multiple of the steps per customer) seeds the estimate
EXACT_FINISH = 262_144  # fewer steps than this in all: gather and sort them all
BRACKET_WIDTH = 6.0  # bracket half-width in standard deviations of a sample rank
NO_STEP = -np.inf  # efficiency of a missing hull step (never above any threshold)
CHUNK_ROWS = 65_536  # rows per cache-sized chunk of row-wise work (results do not depend on it)
COLLINEAR = 1e-12  # slopes this close (relative) count as one line: float rounding, not a bend


@dataclass(frozen=True)
class ConstraintUse:
    """One hard constraint of a plan: its bound, what the integer plan uses, and its LP multiplier
    (objective lost per unit the bound tightens; 0 when it does not bind)."""

    name: str
    sense: str  # "<=" or ">="
    bound: float
    used: float
    multiplier: float

    def describe(self) -> dict:
        return {"name": self.name, "sense": self.sense, "bound": self.bound, "used": self.used,
                "multiplier": self.multiplier}


@dataclass(frozen=True)
class CustomerAllocation:
    offer: np.ndarray  # offer index per customer, in input order
    objective: float  # sum of the chosen offers' values
    expected_cost: float  # sum of the chosen offers' costs, recomputed from the offers
    dual_bound: float  # LP relaxation optimum (a Lagrangian dual value): no allocation can beat it
    threshold: float  # the budget's LP multiplier in value per dollar (0 if slack)
    iterations: int  # bracket passes (single budget) or working-set rounds (coupled)
    budget_price_left: float = 0.0  # LP value lost per dollar taken away (inf at the smallest feasible budget)
    budget_price_right: float = 0.0  # LP value bought per extra dollar (0 once more money stops helping)
    constraints: tuple[ConstraintUse, ...] = field(default=())

    @property
    def gap(self) -> float:
        return self.dual_bound - self.objective

    @property
    def relative_gap(self) -> float:
        return self.gap / abs(self.dual_bound) if self.dual_bound else 0.0


class CustomerBudgetInfeasible(InfeasiblePlanError):
    """Even the cheapest offer for every customer costs more than the budget."""


class ThreadedExecutor:
    """Partitions in this process, mapped on a thread pool (numpy releases the GIL in its loops).
    Results come back in partition order and each partition's arithmetic is its own, so the answer is
    byte-identical to a serial run."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = max(1, threads or min(os.cpu_count() or 1, 4))

    def map(self, function: Callable, *iterables: Sequence, progress: str | None = None, **kwargs: Any) -> list:
        rows = list(zip(*iterables))
        if self.threads == 1 or len(rows) <= 1:
            return [function(*args, **kwargs) for args in rows]
        with ThreadPoolExecutor(min(self.threads, len(rows))) as pool:
            return list(pool.map(lambda args: function(*args, **kwargs), rows))

    build = map


def in_process(executor, threads: int | None = None):
    """A thread pool for in-process work (None or LocalExecutor); any other executor (Dask) as given."""
    return ThreadedExecutor(threads) if executor is None or isinstance(executor, LocalExecutor) else executor


@dataclass
class Partition:
    """Hull steps of a block of customers, step-major (one contiguous n-vector per step). A customer's
    steps are a prefix of the S <= K-1 rows with non-increasing efficiency, so 'every step above t' is
    always a walk from the base offer, and tied steps are taken in (customer, step) order."""

    value: np.ndarray  # (n, K) the block's inputs (a view in process)
    cost: np.ndarray
    allowed: np.ndarray | None  # (n, K) offers a customer may get; None: all
    base: np.ndarray  # (n,) int8 cheapest allowed offer (most valuable among equally cheap)
    step_to: np.ndarray  # (S, n) int8 offer reached by each step, -1 where none
    step_dc: np.ndarray  # (S, n) cost of each step, 0 where none
    step_eff: np.ndarray  # (S, n) dv/dc of each step, -inf where none
    summary: dict


def build_partition(value: np.ndarray, cost: np.ndarray, allowed: np.ndarray | None = None) -> Partition:
    """Upper concave hull of each customer's allowed (cost, value) points, on n-long column vectors (K is
    small: loops over offers beat row-wise reductions, which numpy runs slowly for 3 elements a row)."""
    k = value.shape[1]
    cols_c = [cost[:, j] for j in range(k)]
    cols_v = [value[:, j] for j in range(k)]
    if allowed is not None:
        cols_c = [np.where(allowed[:, j], cols_c[j], np.inf) for j in range(k)]
        cols_v = [np.where(allowed[:, j], cols_v[j], -np.inf) for j in range(k)]
    n, hull = len(value), hull_of_three if k == 3 else hull_by_wrapping
    base, base_cost = np.empty(n, np.int8), np.empty(n)
    step_to, step_dc, step_eff = np.empty((k - 1, n), np.int8), np.empty((k - 1, n)), np.empty((k - 1, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        for rows in chunks(n):  # row-wise work in cache-sized chunks: same numbers, twice as fast
            out = hull([x[rows] for x in cols_c], [x[rows] for x in cols_v])
            base[rows], base_cost[rows], step_to[:, rows], step_dc[:, rows], step_eff[:, rows] = out
    part = Partition(value, cost, allowed, base, step_to, step_dc, step_eff, {})
    part.summary = _summarize(part, base_cost)
    return part


def chunks(n: int, size: int = CHUNK_ROWS):
    """Slices of at most `size` rows: numpy's temporaries then stay in cache."""
    return [slice(a, min(a + size, n)) for a in range(0, n, size)] or [slice(0, 0)]


def _cheapest(cols_c: list, cols_v: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Base offer: the cheapest, the most valuable among equally cheap; its cost and value."""
    base = np.zeros(len(cols_c[0]), np.int8)
    c0, v0 = cols_c[0].copy(), cols_v[0].copy()
    for j in range(1, len(cols_c)):
        better = (cols_c[j] < c0) | ((cols_c[j] == c0) & (cols_v[j] > v0))
        base[better] = j
        np.copyto(c0, cols_c[j], where=better)
        np.copyto(v0, cols_v[j], where=better)
    return base, c0, v0


def hull_of_three(cols_c: list, cols_v: list):
    """The hull of three offers in closed form: base B, then the other two Q (cheaper) and R. Q is a step
    if it is dearer and more valuable than B; R if it beats the last step; Q stays when the slope Q->R is
    not clearly steeper than B->Q (points on one line, whose float slopes may differ in the last bits,
    stay separate steps: each stays a choice for the integer plan); the slopes are made non-increasing."""
    base, bc, bv = _cheapest(cols_c, cols_v)
    (c0, c1, c2), (v0, v1, v2) = cols_c, cols_v
    q, r = np.where(base == 0, 1, 0).astype(np.int8), np.where(base == 2, 1, 2).astype(np.int8)
    cq, vq = np.where(base == 0, c1, c0), np.where(base == 0, v1, v0)
    cr, vr = np.where(base == 2, c1, c2), np.where(base == 2, v1, v2)
    swap = (cr < cq) | ((cr == cq) & (vr > vq))
    q, r = np.where(swap, r, q), np.where(swap, q, r)
    cq, cr, vq, vr = np.where(swap, cr, cq), np.where(swap, cq, cr), np.where(swap, vr, vq), np.where(swap, vq, vr)
    useful_q = (vq > bv) & (cq > bc)
    useful_r = (vr > np.where(useful_q, vq, bv)) & (cr > np.where(useful_q, cq, bc))
    slope_bq, slope_qr, slope_br = (vq - bv) / (cq - bc), (vr - vq) / (cr - cq), (vr - bv) / (cr - bc)
    keep_q = useful_q & ~(useful_r & (slope_qr > slope_bq * (1.0 + COLLINEAR)))
    both = keep_q & useful_r
    step_to = np.stack([np.where(keep_q, q, np.where(useful_r, r, -1)), np.where(both, r, -1)]).astype(np.int8)
    step_dc = np.stack([np.where(keep_q, cq - bc, np.where(useful_r, cr - bc, 0.0)), np.where(both, cr - cq, 0.0)])
    step_eff = np.stack([np.where(keep_q, slope_bq, np.where(useful_r, slope_br, NO_STEP)),
                         np.where(both, np.minimum(slope_qr, slope_bq), NO_STEP)])
    return base, bc, step_to, step_dc, step_eff


def hull_by_wrapping(cols_c: list, cols_v: list):
    """The hull of any number of offers by gift wrapping from the base: the next point is the steepest,
    or the cheapest of those within float rounding of the steepest (points on a line stay separate
    steps); the slopes are made non-increasing."""
    n, k = len(cols_c[0]), len(cols_c)
    base, c0, v0 = _cheapest(cols_c, cols_v)
    base_cost = c0.copy()
    step_to = np.full((k - 1, n), -1, np.int8)
    step_dc, step_eff = np.zeros((k - 1, n)), np.full((k - 1, n), NO_STEP)
    previous = np.full(n, np.inf)
    for t in range(k - 1):
        slopes = []
        steepest = np.zeros(n)  # only dv > 0 improves
        for j in range(k):
            dc = cols_c[j] - c0
            slope = (cols_v[j] - v0) / dc
            slope[~((dc > 0) & (slope > 0))] = NO_STEP  # also NaN: an offer not allowed (inf cost, -inf value)
            slopes.append(slope)
            np.maximum(steepest, slope, out=steepest)
        pick, pc, pv = np.full(n, -1, np.int8), np.full(n, np.inf), np.zeros(n)
        for j in range(k):
            near = (slopes[j] > 0) & (slopes[j] * (1.0 + COLLINEAR) >= steepest) & (cols_c[j] < pc)
            pick[near] = j
            np.copyto(pc, cols_c[j], where=near)
            np.copyto(pv, cols_v[j], where=near)
        exists = pick >= 0
        if not exists.any():
            break
        step_to[t] = pick
        step_dc[t] = np.where(exists, pc - c0, 0.0)
        previous = np.where(exists, np.minimum(previous, (pv - v0) / (pc - c0)), previous)
        step_eff[t] = np.where(exists, previous, NO_STEP)
        c0, v0 = np.where(exists, pc, c0), np.where(exists, pv, v0)
    return base, base_cost, step_to, step_dc, step_eff


def _summarize(part: Partition, base_cost: np.ndarray) -> dict:
    eff, dc = part.step_eff.ravel(), part.step_dc.ravel()
    sample = slice(None, None, SAMPLE_STRIDE)
    keep = eff[sample] > 0
    return {
        "base_cost": float(base_cost.sum()),
        "step_cost": float(dc.sum()),
        "steps": int(np.count_nonzero(eff > 0)),
        "sample_eff": eff[sample][keep],
        "sample_dc": dc[sample][keep],
    }


# ---- per-partition kernels: pure functions of (partition, scalars), mapped in process or on Dask ----


def partition_summary(part: Partition) -> dict:
    return part.summary


def bracket_partition(part: Partition, low: float, high: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Cost of the steps more efficient than `high`, and the steps with efficiency in (low, high] in
    customer order (to walk exactly and to share out ties)."""
    eff, dc = part.step_eff, part.step_dc
    above = eff > high
    inside = (eff > low) & ~above
    return float(np.where(above, dc, 0.0).sum()), eff[inside], dc[inside]


def allocate_partition(part: Partition, threshold: float, tie_budget: float) -> dict:
    """Offers for one partition: every step above the threshold, then tied steps in customer order while
    the partition's share of the remaining budget lasts. Cost and value are recomputed from the offers."""
    eff, n = part.step_eff, len(part.base)
    steps = np.zeros(n, np.int8)
    ties_taken = 0
    if tie_budget > 0 and threshold > 0:
        level, rows = np.nonzero(eff == threshold)
        order = np.argsort(rows, kind="stable")  # customer order, then step order: predecessors first
        level, rows = level[order], rows[order]
        fits = rows[np.cumsum(part.step_dc[level, rows]) <= tie_budget]
        steps = np.bincount(fits, minlength=n).astype(np.int8)
        ties_taken = len(fits)
    offer, chosen_cost, chosen_value, best = np.empty(n, np.intp), np.empty(n), np.empty(n), np.empty(n)
    for rows in chunks(n):
        taken = steps[rows]
        for s in range(len(eff)):
            taken += eff[s, rows] > threshold
        chunk = part.base[rows].astype(np.intp)
        for s in range(len(eff)):
            np.copyto(chunk, part.step_to[s, rows], where=taken > s)
        offer[rows] = chunk
        chosen_cost[rows] = np.take_along_axis(part.cost[rows], chunk[:, None], 1)[:, 0]
        chosen_value[rows] = np.take_along_axis(part.value[rows], chunk[:, None], 1)[:, 0]
        best[rows] = best_scores(part.value[rows], part.cost[rows], None if part.allowed is None else part.allowed[rows],
                                 threshold)
    return {
        "offer": offer,
        "cost": float(chosen_cost.sum()),
        "value": float(chosen_value.sum()),
        "dual": float(best.sum()),
        "lowest_taken": float(np.min(eff, where=eff > threshold, initial=np.inf)),
        "ties_taken": ties_taken,
    }


def best_scores(value: np.ndarray, cost: np.ndarray, allowed: np.ndarray | None, price: float) -> np.ndarray:
    """max over allowed d of (v[i,d] - price c[i,d]) per customer: its term of the Lagrangian dual."""
    best = np.full(len(value), -np.inf)
    for j in range(value.shape[1]):
        score = value[:, j] - price * cost[:, j] if price else value[:, j].copy()
        if allowed is not None:
            score[~allowed[:, j]] = -np.inf
        np.maximum(best, score, out=best)
    return best


# ---- the driver ----


def allocate_customers(
    value: np.ndarray,
    cost: np.ndarray,
    budget: float,
    partition_rows: int = 1_000_000,
    executor=None,
    *,
    allowed: np.ndarray | None = None,
    threads: int | None = None,
) -> CustomerAllocation:
    """Best offer per customer (rows of value/cost) with total expected cost <= budget (inf: none).

    `allowed` (n, K) bool restricts the offers a customer may get (exclusions). Partitions are built and
    scanned by `executor` (offerflow.distributed; None or LocalExecutor: a thread pool here); the
    partition size, not the executor, fixes the arithmetic, so every executor gives the same allocation.
    """
    value, cost = np.asarray(value, float), np.asarray(cost, float)
    executor = in_process(executor, threads)
    bounds = partition_bounds(len(value), partition_rows)
    blocks_allowed = [None if allowed is None else allowed[a:b] for a, b in bounds]
    parts = executor.build(
        build_partition, [value[a:b] for a, b in bounds], [cost[a:b] for a, b in bounds], blocks_allowed,
        progress="allocate: hulls",
    )
    return allocate_partitions(parts, budget, executor.map)


def allocate_partitions(parts, budget: float, mapper: Callable) -> CustomerAllocation:
    """The allocation from prebuilt partitions (local objects or Dask futures)."""
    summaries = mapper(partition_summary, parts)
    base_cost = sum(s["base_cost"] for s in summaries)
    if not base_cost <= budget:
        raise CustomerBudgetInfeasible(
            f"even the cheapest offer for every customer costs {base_cost:,.2f} USD > budget {budget:,.2f} USD; "
            f"smallest feasible budget: {base_cost:,.2f} USD",
            smallest_feasible_budget=base_cost,
        )
    everything = sum(s["step_cost"] for s in summaries)
    remaining = budget - base_cost
    search = ThresholdSearch(parts, summaries, mapper)
    for _ in range(8):  # a float-rounded overspend shrinks the budget and walks again (rarely more than once)
        if everything <= remaining:
            threshold, spent, tie_costs = 0.0, everything, [0.0] * len(parts)
        else:
            threshold, spent, tie_costs = search.threshold(remaining)
        offsets = np.concatenate([[0.0], np.cumsum(tie_costs)[:-1]])
        tie_left = remaining - spent
        results = mapper(allocate_partition, parts, *_same(parts, threshold), [tie_left - o for o in offsets])
        expected_cost = float(sum(r["cost"] for r in results))
        if expected_cost <= budget:
            break
        remaining -= expected_cost - budget
    else:
        raise RuntimeError(f"allocation cost {expected_cost!r} stays above budget {budget!r}")
    objective = float(sum(r["value"] for r in results))
    dual = float(sum(r["dual"] for r in results)) + (threshold * budget if threshold > 0 else 0.0)
    left, right = _budget_prices(threshold, tie_left, remaining, everything, results)
    return CustomerAllocation(
        offer=np.concatenate([r["offer"] for r in results]),
        objective=objective,
        expected_cost=expected_cost,
        dual_bound=dual,
        threshold=threshold,
        iterations=search.passes,
        budget_price_left=left,
        budget_price_right=right,
        constraints=(ConstraintUse("budget", "<=", float(budget), expected_cost, threshold),),
    )


def _budget_prices(threshold, tie_left, remaining, everything, results) -> tuple[float, float]:
    """Slopes of the LP optimum in the budget just below and just above it. Inside a level of tied steps
    both are its efficiency; at a kink (the budget exactly used up by whole levels) the left slope is the
    last level taken and the right one the next level; past saturation both are 0."""
    lowest_taken = min((r["lowest_taken"] for r in results), default=math.inf)
    if remaining == 0:
        left = math.inf  # one dollar less is infeasible
    elif threshold > 0 and tie_left > 0:
        left = threshold
    else:
        left = lowest_taken if (threshold > 0 or everything == remaining) and math.isfinite(lowest_taken) else 0.0
    right = threshold if threshold > 0 else 0.0
    return float(left), float(right)


class ThresholdSearch:
    """Finds e*: the steps above it fit the remaining budget, those at or above it do not.

    A sample of the steps (every SAMPLE_STRIDE-th) estimates e*; one pass over the partitions returns the
    cost above a bracket around the estimate and the steps inside it, which are then walked exactly.
    A bracket that misses e* widens and costs one more pass; small problems gather every step at once."""

    def __init__(self, parts, summaries, mapper) -> None:
        self.parts, self.mapper, self.passes = parts, mapper, 0
        self.steps = sum(s["steps"] for s in summaries)
        eff = np.concatenate([s["sample_eff"] for s in summaries])
        dc = np.concatenate([s["sample_dc"] for s in summaries])
        order = np.argsort(-eff, kind="stable")
        self.sample_eff = eff[order]
        scale = sum(s["step_cost"] for s in summaries) / max(float(dc.sum()), 1e-300)
        self.sample_cumulative = np.cumsum(dc[order]) * scale
        self.cached = None  # (low, high, above_high, inside per partition)

    def threshold(self, remaining: float) -> tuple[float, float, list[float]]:
        if self.cached is not None:
            found = self._walk(remaining)
            if found is not None:
                return found
        width = BRACKET_WIDTH
        while True:
            low, high = self._bracket(remaining, width)
            self.passes += 1
            gathered = self.mapper(bracket_partition, self.parts, *_same(self.parts, low, high))
            self.cached = (low, high, sum(g[0] for g in gathered), [(g[1], g[2]) for g in gathered])
            found = self._walk(remaining)
            if found is not None:
                return found
            width *= 8

    def _bracket(self, remaining: float, width: float) -> tuple[float, float]:
        if self.steps <= EXACT_FINISH or width > 1e6:
            return 0.0, math.inf
        rank = int(np.searchsorted(self.sample_cumulative, remaining, side="right"))
        spread = int(width * math.sqrt(rank + 1)) + 32
        top, bottom = rank - spread, rank + spread
        high = math.inf if top < 0 else float(self.sample_eff[top])
        low = 0.0 if bottom >= len(self.sample_eff) else float(self.sample_eff[bottom])
        return low, high

    def _walk(self, remaining: float):
        """Levels in (low, high] from the top until the budget runs out, or None if the bracket misses."""
        low, high, above_high, inside = self.cached
        if above_high > remaining:
            return None
        eff = np.concatenate([i[0] for i in inside])
        dc = np.concatenate([i[1] for i in inside])
        levels, inverse = np.unique(eff, return_inverse=True)
        level_cost = np.bincount(inverse, weights=dc, minlength=len(levels))[::-1]
        spent = np.cumsum(np.concatenate([[above_high], level_cost]))
        over = np.flatnonzero(spent[1:] > remaining)
        if not len(over):  # the budget outlasts the bracket: e* is below it (or, gathered all, it is slack)
            return None if low > 0 else (0.0, float(spent[-1]), [0.0] * len(inside))
        level = over[0]
        threshold = float(levels[::-1][level])
        ties = [float(part_dc[part_eff == threshold].sum()) for part_eff, part_dc in inside]
        return threshold, float(spent[level]), ties


def _same(parts, *values) -> list[list]:
    """Broadcast scalar arguments for a mapper call over partitions."""
    return [[value] * len(parts) for value in values]
