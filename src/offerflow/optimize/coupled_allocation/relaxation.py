"""The customer-level LP with coupled rows, solved exactly by sifting on a working set.

Dual: for multipliers pi (budget lambda >= 0, count rows free in sign),
    D(pi) = lambda B + sum_r h_r(pi_r) + sum_i max_d (v[i,d] - lambda c[i,d] - p_d),   p = M' pi_rows,
with h_r(pi) = pi upper_r if pi > 0 else pi lower_r. D(pi) bounds every plan from above (weak duality),
so it is the bound reported, whatever multipliers the method ends with.

Method: multipliers from the same LP on a deterministic sample (solved the same way, recursively, with
bounds scaled to the sample) anchor every customer at its best offer; the customers near a tie at the
anchor form the working set, all others stay fixed. HiGHS solves the LP over the working set with the
fixed customers folded into the bounds; a pass over all customers checks that each fixed offer is still
best at HiGHS's multipliers. Customers for which it is not join the working set and the LP is solved
again. When none is left, the fixed customers satisfy complementary slackness with those multipliers,
so working-set LP + fixed customers is optimal for the whole LP, and D(pi) equals its objective.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from offerflow.distributed import partition_bounds
from offerflow.optimize.coupled_allocation.blocks import anchor_block, check_block, make_block, sample_block, score
from offerflow.optimize.coupled_allocation.master import Prices, Solved, WorkingSetModel
from offerflow.optimize.customer_allocation import ThreadedExecutor

DIRECT_MAX = 5_000  # free customers up to which the whole LP goes to HiGHS at once
SAMPLE_SHARE = 16  # the anchor LP sees one customer in 16 (at least DIRECT_MAX of them)
CHECK_TOLERANCE = 1e-10  # relative: a fixed offer this close to the best still counts as best
MAX_ROUNDS = 60
TRACE = False


class LPInfeasible(Exception):
    """The LP over all free customers has no solution: the budget is below `cheapest`, the cost of the
    cheapest plan of the free customers that meets the count rows (those are checked before)."""

    def __init__(self, cheapest: float) -> None:
        super().__init__(f"the budget is below the cheapest plan ({cheapest!r})")
        self.cheapest = cheapest


@dataclass(frozen=True)
class Rows:
    """The coupled rows over the free customers: count rows (M, lower, upper) and the budget (None: no row)."""

    matrix: np.ndarray  # (R, K) bool
    lower: np.ndarray
    upper: np.ndarray
    budget: float | None

    def scaled(self, share: float) -> "Rows":
        return Rows(self.matrix, self.lower * share, self.upper * share,
                    None if self.budget is None else self.budget * share)

    def dual_constant(self, prices: Prices) -> float:
        """lambda B + sum_r h_r(pi_r): the multipliers' part of the dual function."""
        rows = prices.rows
        bound = np.where(rows > 0, rows * self.upper, np.where(rows < 0, rows * self.lower, 0.0)).sum()
        return float(bound) + (prices.budget * self.budget if self.budget is not None and prices.budget else 0.0)


@dataclass
class Relaxation:
    """The LP optimum: working set (rows and their LP solution), fixed offers of everyone else, multipliers."""

    prices: Prices
    primal: float  # LP objective over the free customers (working set + fixed)
    dual: float  # D(prices) over the free customers: an upper bound on any plan
    rows: Rows
    model: WorkingSetModel
    x: np.ndarray  # (w, K) LP solution on the working set
    value: np.ndarray  # (w, K) working-set inputs
    cost: np.ndarray
    reference: np.ndarray  # (w,) offer each working-set customer moves from (its best at the anchor)
    candidates: np.ndarray  # (w, K) offers it may move to
    owner: np.ndarray  # (w,) block of each working-set customer
    local: np.ndarray  # (w,) its row within the block
    members: list[np.ndarray]  # per block: its rows in the working set (any order)
    fixed_offer: list[np.ndarray]  # per block: the anchor's best offer (int8; -1 excluded)
    fixed_counts: np.ndarray  # (K,) fixed customers per offer
    fixed_cost: float
    fixed_value: float
    tolerance: float
    rounds: int = 0
    objective: str = "value"
    anchor: Prices | None = None  # multipliers the fixed offers were chosen at
    limit: float = math.inf  # every fixed customer's best offer beat its runner-up by more than this there
    cost_max: float = 0.0
    history: list = field(default_factory=list)

    def bounds(self) -> tuple[np.ndarray, np.ndarray, float | None]:
        """Row bounds and budget left for the working set once the fixed customers are counted."""
        used = self.rows.matrix.astype(float) @ self.fixed_counts
        budget = None if self.rows.budget is None else self.rows.budget - self.fixed_cost
        return self.rows.lower - used, self.rows.upper - used, budget


def solve_relaxation(blocks, mapper, rows: Rows, free: int, partition_rows: int, direct_max: int = DIRECT_MAX,
                     objective: str = "value") -> Relaxation:
    """The exact LP optimum over the free customers of `blocks` (see the module docstring). `objective`
    "cheapest" maximizes minus the cost instead of the value (rows.budget must then be None)."""
    k = rows.matrix.shape[1]
    if free <= direct_max:
        anchor, limit = Prices(0.0, np.zeros(len(rows.lower))), math.inf
    else:
        anchor, limit = _anchor_from_sample(blocks, mapper, rows, free, partition_rows, direct_max, objective)
    state = _anchor_pass(blocks, mapper, rows, anchor, limit, k, objective=objective)
    widened, cheapest = 0, None
    while state.rounds < MAX_ROUNDS:
        state.rounds += 1
        lower, upper, budget = state.bounds()
        state.model = WorkingSetModel(state.value, state.cost, rows.matrix, lower, upper, budget,
                                      candidates=state.candidates, reference=state.reference)
        solved = state.model.solve()
        if solved.status == "infeasible":  # the fixed customers spend too much, or the budget is too small
            if cheapest is None and rows.budget is not None:
                cheapest = cheapest_plan(blocks, mapper, rows, free, partition_rows, direct_max)
            if math.isinf(limit) or (rows.budget is not None and rows.budget < cheapest):
                raise LPInfeasible(cheapest if cheapest is not None else math.nan)
            widened += 1
            limit = limit * 8 if widened < 3 and limit > 0 else math.inf
            state = _anchor_pass(blocks, mapper, rows, anchor, limit, k, rounds=state.rounds, objective=objective)
            continue
        if solved.status != "optimal":
            raise RuntimeError(f"HiGHS could not solve the working-set LP: {solved.status}")
        late, dual = _check(blocks, mapper, state, solved.prices, objective)
        missed = _missed_candidates(state, solved.prices)
        state.prices, state.x = solved.prices, solved.x
        state.primal = solved.objective + state.fixed_value
        state.dual = dual
        state.history.append((free, len(state.value), sum(len(r["rows"]) for r in late), int(missed.sum())))
        if TRACE:
            print("level", free, "working", len(state.value), "late", state.history[-1][2:])
        if not any(len(r["rows"]) for r in late) and not missed.any():
            return state
        state.candidates |= missed
        _join(state, late, solved.prices)
    raise RuntimeError(f"the working set did not settle in {MAX_ROUNDS} rounds")


def resolve(blocks, mapper, state: Relaxation, budget: float) -> Solved:
    """The same LP at another budget, from the current working set (multipliers checked again)."""
    while True:
        state.model.set_budget(budget - state.fixed_cost)
        solved = state.model.solve()
        if solved.status != "optimal":
            return solved
        if solved.prices.budget == state.prices.budget and np.array_equal(solved.prices.rows, state.prices.rows):
            return solved  # same multipliers: the fixed customers were checked against them already
        late, _ = _check(blocks, mapper, state, solved.prices)
        missed = _missed_candidates(state, solved.prices)
        if not any(len(r["rows"]) for r in late) and not missed.any():
            return solved
        state.candidates |= missed
        _join(state, late, solved.prices)
        lower, upper, _ = state.bounds()
        state.model = WorkingSetModel(state.value, state.cost, state.rows.matrix, lower, upper,
                                      budget - state.fixed_cost, candidates=state.candidates,
                                      reference=state.reference)


def cheapest_plan(blocks, mapper, rows: Rows, free: int, partition_rows: int, direct_max: int) -> float:
    """Cost of the cheapest plan of the free customers that meets the count rows (an LP, solved the same way)."""
    unbudgeted = Rows(rows.matrix, rows.lower, rows.upper, None)
    return -solve_relaxation(blocks, mapper, unbudgeted, free, partition_rows, direct_max, objective="cheapest").primal


def _anchor_from_sample(blocks, mapper, rows: Rows, free: int, partition_rows: int, direct_max: int, objective: str):
    """Multipliers of the LP on every SAMPLE_SHARE-th customer (bounds scaled to the sample), and the
    margin below which a customer joins the working set (a quantile of the sample's margins)."""
    total = sum(len(b) for b in mapper(_rows_of, blocks))
    stride = max(2, total // max(direct_max, free // SAMPLE_SHARE))
    drawn = mapper(sample_block, blocks, [stride] * len(blocks), [objective] * len(blocks))
    value = np.concatenate([d[0] for d in drawn])
    cost = np.concatenate([d[1] for d in drawn])
    share = len(value) / free
    local = ThreadedExecutor()
    sample = [make_block(value[a:b], cost[a:b], None, a) for a, b in partition_bounds(len(value), partition_rows)]
    scaled = rows.scaled(share)
    try:
        sub = solve_relaxation(sample, local.map, scaled, len(value), partition_rows, direct_max)
    except LPInfeasible as infeasible:  # the sample's cheapest plan misses the scaled budget: anchor just above it
        lowest = infeasible.cheapest
        scaled = Rows(rows.matrix, scaled.lower, scaled.upper, lowest + 1e-6 * max(1.0, abs(lowest)))
        sub = solve_relaxation(sample, local.map, scaled, len(value), partition_rows, direct_max)
    margins = score(value, cost, None, sub.prices.budget, sub.prices.offer_prices(rows.matrix)).margin
    target = working_target(free, len(rows.lower) + (rows.budget is not None))
    limit = float(np.quantile(margins, min(1.0, target / free)))
    return sub.prices, limit


def working_target(free: int, coupled: int) -> int:
    """How many customers to put in the first working set: enough to absorb the sample's error in the
    multipliers (which shrinks like one over the root of the sample), few enough for a fast LP."""
    return int(min(free, 2_000 + 4 * coupled * math.sqrt(free)))


def _rows_of(block) -> np.ndarray:
    return np.empty(len(block.value))  # only its length travels back


def _anchor_pass(blocks, mapper, rows: Rows, anchor: Prices, limit: float, k: int, rounds: int = 0,
                 objective: str = "value") -> Relaxation:
    offer_prices = anchor.offer_prices(rows.matrix)
    n = len(blocks)
    results = mapper(anchor_block, blocks, [anchor.budget] * n, [offer_prices] * n, [limit] * n, [objective] * n)
    scale = max(r["scale"] for r in results) + max(r["cost_scale"] for r in results)
    value = np.concatenate([r["value"] for r in results]).reshape(-1, k)
    cost = np.concatenate([r["cost"] for r in results]).reshape(-1, k)
    scores = _scores(value, cost, anchor, offer_prices)
    best = scores.max(axis=1, initial=-np.inf)
    return Relaxation(
        prices=anchor, primal=math.nan, dual=math.nan, rows=rows, model=None,
        x=np.empty((0, k)),
        value=value,
        cost=cost,
        reference=scores.argmax(axis=1) if len(value) else np.zeros(0, np.intp),
        candidates=scores >= (best - limit)[:, None] if math.isfinite(limit) else np.ones(value.shape, bool),
        owner=np.concatenate([np.full(len(r["working"]), b) for b, r in enumerate(results)]).astype(np.intp),
        local=np.concatenate([r["working"] for r in results]).astype(np.intp),
        members=[r["working"] for r in results],
        fixed_offer=[r["fixed_offer"] for r in results],
        fixed_counts=np.sum([r["fixed_counts"] for r in results], axis=0),
        fixed_cost=float(sum(r["fixed_cost"] for r in results)),
        fixed_value=float(sum(r["fixed_value"] for r in results)),
        tolerance=CHECK_TOLERANCE * (1.0 + scale),
        anchor=anchor,
        limit=limit,
        cost_max=max(r["cost_scale"] for r in results),
        rounds=rounds,
        objective=objective,
    )


def _check(blocks, mapper, state: Relaxation, prices: Prices, objective: str = "value") -> tuple[list[dict], float]:
    """Fixed customers whose offer stopped being best at `prices`, and the dual function D(prices).

    No pass over the customers is needed when the prices moved so little from the anchor that no fixed
    customer can change its mind: each kept its offer because it beat the runner-up by more than the
    working-set limit at the anchor, and a move (d lambda, d p) changes any score difference by at most
    |d lambda| max c + (max d p - min d p). Then the fixed customers' best scores are their fixed offers'
    and their part of D is a sum already known."""
    n = len(blocks)
    offer_prices = prices.offer_prices(state.rows.matrix)
    shift = abs(prices.budget - state.anchor.budget) * state.cost_max
    moved = offer_prices - state.anchor.offer_prices(state.rows.matrix)
    shift += float(moved.max() - moved.min()) if len(moved) else 0.0
    if shift * (1 + 1e-9) + state.tolerance < state.limit:
        fixed = state.fixed_value - prices.budget * state.fixed_cost - float(offer_prices @ state.fixed_counts)
        inside = _scores(state.value, state.cost, prices, offer_prices).max(axis=1, initial=-np.inf).sum()
        return [{"rows": []} for _ in range(n)], state.rows.dual_constant(prices) + fixed + float(inside)
    tolerance = state.tolerance * (1.0 + prices.budget + float(np.abs(offer_prices).max(initial=0.0)))
    late = mapper(check_block, blocks, state.fixed_offer, state.members, [prices.budget] * n, [offer_prices] * n,
                  [tolerance] * n, [state.objective] * n)
    return late, state.rows.dual_constant(prices) + float(sum(r["dual"] for r in late))


def _scores(value: np.ndarray, cost: np.ndarray, prices: Prices, offer_prices: np.ndarray) -> np.ndarray:
    """v - lambda c - p_d for a few customers (the working set), as a (w, K) array."""
    return value - prices.budget * cost - offer_prices[None, :]


def _missed_candidates(state: Relaxation, prices: Prices) -> np.ndarray:
    """Offers outside a working-set customer's candidates that beat every candidate at these multipliers
    (the LP never saw them, so they must become candidates)."""
    scores = _scores(state.value, state.cost, prices, prices.offer_prices(state.rows.matrix))
    inside = np.where(state.candidates, scores, -np.inf).max(axis=1, initial=-np.inf)
    tolerance = state.tolerance * (1.0 + prices.budget + float(np.abs(prices.offer_prices(state.rows.matrix)).max(initial=0.0)))
    return ~state.candidates & (scores > inside[:, None] + tolerance)


def _join(state: Relaxation, late: list[dict], prices: Prices) -> None:
    """Move customers whose fixed offer stopped being best into the working set: they move from their
    fixed offer to any offer at least as good at these multipliers."""
    k = state.value.shape[1]
    offer_prices = prices.offer_prices(state.rows.matrix)
    for b, found in enumerate(late):
        rows = found["rows"]
        if not len(rows):
            continue
        offer = found["fixed_offer"].astype(np.intp)
        state.fixed_counts = state.fixed_counts - np.bincount(offer, minlength=k)
        state.fixed_cost -= float(np.take_along_axis(found["cost"], offer[:, None], 1).sum())
        state.fixed_value -= float(np.take_along_axis(found["value"], offer[:, None], 1).sum())
        scores = _scores(found["value"], found["cost"], prices, offer_prices)
        own = np.take_along_axis(scores, offer[:, None], 1)
        state.reference = np.concatenate([state.reference, offer])
        state.candidates = np.concatenate([state.candidates, scores >= own])
        state.value = np.concatenate([state.value, found["value"]])
        state.cost = np.concatenate([state.cost, found["cost"]])
        state.members[b] = np.concatenate([state.members[b], rows])
        state.owner = np.concatenate([state.owner, np.full(len(rows), b, np.intp)])
        state.local = np.concatenate([state.local, rows.astype(np.intp)])
