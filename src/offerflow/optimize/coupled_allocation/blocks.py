"""Per-partition kernels of the coupled allocation: pure functions of (block, small arguments), mapped
in process (thread pool) or on Dask workers; only small results travel back to the driver."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offerflow.optimize.customer_allocation import compiled


@dataclass
class Block:
    """A partition of customers: inputs, which are free to choose (None: all) and where it starts."""

    value: np.ndarray  # (n, K)
    cost: np.ndarray
    free: np.ndarray | None  # (n,) bool; excluded customers get the control offer
    start: int


def make_block(value: np.ndarray, cost: np.ndarray, free: np.ndarray | None, start: int) -> Block:
    return Block(value, cost, None if free is None or free.all() else np.asarray(free, bool), start)


def score_rows(value, cost, free, budget_price, offer_prices, fixed, best_offer, margin, best_score,
               fixed_gap) -> None:  # pragma: no cover
    """Per free customer at the given multipliers: the offer of highest score v - lambda c - p_d, how far
    the runner-up is behind (margin), the best score, and how far the `fixed` offer is behind the best.
    Excluded customers get offer -1, infinite margin and score 0. Compiled by numba (one pass)."""
    n, k = value.shape
    restrict = free.shape[0] == n
    has_fixed = fixed.shape[0] == n
    for i in range(n):
        if restrict and not free[i]:
            best_offer[i] = -1
            margin[i] = np.inf
            best_score[i] = 0.0
            fixed_gap[i] = 0.0
            continue
        top, second, pick = -np.inf, -np.inf, -1
        for d in range(k):
            score = value[i, d] - budget_price * cost[i, d] - offer_prices[d]
            if score > top:
                second, top, pick = top, score, d
            elif score > second:
                second = score
        best_offer[i] = pick
        margin[i] = top - second
        best_score[i] = top
        if has_fixed:
            f = fixed[i]
            fixed_gap[i] = top - (value[i, f] - budget_price * cost[i, f] - offer_prices[f])
        else:
            fixed_gap[i] = 0.0


@dataclass
class Scores:
    best_offer: np.ndarray  # int8, -1 for excluded
    margin: np.ndarray
    best_score: np.ndarray
    fixed_gap: np.ndarray


def score(value, cost, free, budget_price: float, offer_prices: np.ndarray, fixed: np.ndarray | None = None) -> Scores:
    n = len(value)
    out = Scores(np.empty(n, np.int8), np.empty(n), np.empty(n), np.empty(n))
    compiled(score_rows)(
        value, cost, np.empty(0, bool) if free is None else free, float(budget_price),
        np.ascontiguousarray(offer_prices, float), np.empty(0, np.int8) if fixed is None else fixed,
        out.best_offer, out.margin, out.best_score, out.fixed_gap,
    )
    return out


def free_count(block: Block) -> int:
    return len(block.value) if block.free is None else int(block.free.sum())


def sample_block(block: Block, stride: int, objective: str = "value") -> tuple[np.ndarray, np.ndarray]:
    """Every stride-th customer by global row number, if free: a deterministic sample for the anchor LP."""
    rows = np.arange((-block.start) % stride, len(block.value), stride)
    if block.free is not None:
        rows = rows[block.free[rows]]
    return objective_of(block, objective)[rows], block.cost[rows]


def objective_of(block: Block, objective: str) -> np.ndarray:
    """What the LP maximizes per customer and offer: the value, or minus the cost (the cheapest plan)."""
    return block.value if objective == "value" else -block.cost


def anchor_block(block: Block, budget_price: float, offer_prices: np.ndarray, margin_limit: float,
                 objective: str = "value") -> dict:
    """At the anchor multipliers: each free customer's best offer (kept fixed unless it joins the working
    set), the customers near a tie (margin <= limit) who form the working set, and the fixed sums."""
    value = objective_of(block, objective)
    block = Block(value, block.cost, block.free, block.start)
    scores = score(block.value, block.cost, block.free, budget_price, offer_prices)
    working = np.flatnonzero((scores.margin <= margin_limit) & (scores.margin < np.inf))  # excluded: margin inf
    return {
        "fixed_offer": scores.best_offer,
        "working": working,
        "value": block.value[working],
        "cost": block.cost[working],
        **_fixed_sums(block, scores, margin_limit),
        "dual": float(scores.best_score.sum()),
        "scale": float(np.abs(block.value).max(initial=0.0)),
        "cost_scale": float(np.abs(block.cost).max(initial=0.0)),
    }


def check_block(block: Block, fixed_offer: np.ndarray, working: np.ndarray, budget_price: float,
                offer_prices: np.ndarray, tolerance: float, objective: str = "value") -> dict:
    """Customers outside the working set whose fixed offer is no longer best at these multipliers (they
    must join), and this block's part of the dual function."""
    block = Block(objective_of(block, objective), block.cost, block.free, block.start)
    scores = score(block.value, block.cost, block.free, budget_price, offer_prices,
                   np.maximum(fixed_offer, 0).astype(np.int8))
    late = scores.fixed_gap > tolerance
    late[working] = False
    rows = np.flatnonzero(late)
    return {"rows": rows, "fixed_offer": fixed_offer[rows], "value": block.value[rows], "cost": block.cost[rows],
            "dual": float(scores.best_score.sum())}


def finish_block(block: Block, fixed_offer: np.ndarray, working: np.ndarray, working_offer: np.ndarray,
                 control: int) -> dict:
    """Final offers of a block: fixed ones, the working set's integer ones, control for the excluded;
    cost and value recomputed from the offers, and the customers per offer."""
    offer = fixed_offer.astype(np.intp)
    offer[working] = working_offer
    if block.free is not None:
        offer[~block.free] = control
    chosen = offer[:, None]
    return {
        "offer": offer,
        "cost": float(np.take_along_axis(block.cost, chosen, 1).ravel().sum()),
        "value": float(np.take_along_axis(block.value, chosen, 1).ravel().sum()),
        "counts": np.bincount(offer, minlength=block.value.shape[1]),
    }


def excluded_sums(block: Block, control: int) -> dict:
    """Cost and value of the excluded customers on the control offer (fixed whatever the plan)."""
    if block.free is None:
        return {"cost": 0.0, "value": 0.0}
    out = ~block.free
    return {"cost": float(block.cost[out, control].sum()), "value": float(block.value[out, control].sum())}


def fixed_rows(value, cost, best_offer, margin, limit, counts) -> tuple:  # pragma: no cover
    """Customers per offer, cost and value of the free customers kept at their best offer (margin above
    the limit), with Neumaier-compensated sums (these sums become LP bounds). Compiled by numba."""
    cost_sum, cost_carry, value_sum, value_carry = 0.0, 0.0, 0.0, 0.0
    for i in range(value.shape[0]):
        d = best_offer[i]
        if d < 0 or margin[i] <= limit:
            continue
        counts[d] += 1
        x = cost[i, d]
        new = cost_sum + x
        cost_carry += (cost_sum - new) + x if abs(cost_sum) >= abs(x) else (x - new) + cost_sum
        cost_sum = new
        x = value[i, d]
        new = value_sum + x
        value_carry += (value_sum - new) + x if abs(value_sum) >= abs(x) else (x - new) + value_sum
        value_sum = new
    return cost_sum + cost_carry, value_sum + value_carry


def _fixed_sums(block: Block, scores: Scores, limit: float) -> dict:
    counts = np.zeros(block.value.shape[1], np.int64)
    cost, value = compiled(fixed_rows)(block.value, block.cost, scores.best_offer, scores.margin, float(limit), counts)
    return {"fixed_counts": counts, "fixed_cost": float(cost), "fixed_value": float(value)}
