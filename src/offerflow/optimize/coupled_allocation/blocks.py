"""Per-partition kernels of the coupled allocation: pure functions of (block, small arguments), mapped
in process (thread pool) or on Dask workers; only small results travel back to the driver."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offerflow.optimize.customer_allocation import chunks



@dataclass
class Block:
    """A partition of customers: inputs, which are free to choose (None: all) and where it starts."""

    value: np.ndarray  # (n, K)
    cost: np.ndarray
    free: np.ndarray | None  # (n,) bool; excluded customers get the control offer
    start: int


def make_block(value: np.ndarray, cost: np.ndarray, free: np.ndarray | None, start: int) -> Block:
    return Block(value, cost, None if free is None or free.all() else np.asarray(free, bool), start)


@dataclass
class Scores:
    best_offer: np.ndarray  # int8, -1 for excluded
    margin: np.ndarray  # best score minus runner-up (inf for excluded)
    best_score: np.ndarray  # 0 for excluded
    fixed_gap: np.ndarray  # best score minus the fixed offer's (0 without fixed offers)


def score(value, cost, free, budget_price: float, offer_prices: np.ndarray, fixed: np.ndarray | None = None) -> Scores:
    """Per free customer at the given multipliers: the offer of highest score v - lambda c - p_d (first on
    ties), how far the runner-up is behind, the best score, and how far the `fixed` offer is behind it.
    Column by column (K is small), in cache-sized chunks of rows."""
    n = len(value)
    out = Scores(np.empty(n, np.int8), np.empty(n), np.empty(n), np.empty(n))
    for rows in chunks(n):
        part = _score(value[rows], cost[rows], None if free is None else free[rows], budget_price, offer_prices,
                      None if fixed is None else fixed[rows])
        out.best_offer[rows], out.margin[rows], out.best_score[rows], out.fixed_gap[rows] = (
            part.best_offer, part.margin, part.best_score, part.fixed_gap)
    return out


def _score(value, cost, free, budget_price: float, offer_prices: np.ndarray, fixed: np.ndarray | None) -> Scores:
    n, k = value.shape
    columns = [value[:, d] - budget_price * cost[:, d] - offer_prices[d] if budget_price
               else value[:, d] - offer_prices[d] for d in range(k)]
    top, second = columns[0].copy(), np.full(n, -np.inf)
    pick = np.zeros(n, np.int8)
    for d in range(1, k):
        better = columns[d] > top
        np.copyto(second, np.where(better, top, np.maximum(second, columns[d])))
        np.copyto(top, columns[d], where=better)
        pick[better] = d
    gap = np.zeros(n)
    if fixed is not None:
        at_fixed = columns[0].copy()
        for d in range(1, k):
            np.copyto(at_fixed, columns[d], where=fixed == d)
        gap = top - at_fixed
    margin = top - second
    if free is not None:
        out = ~free
        pick[out], margin[out], top[out], gap[out] = -1, np.inf, 0.0, 0.0
    return Scores(pick, margin, top, gap)


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
    scores = score(block.value, block.cost, block.free, budget_price, offer_prices, fixed_offer)
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


def _fixed_sums(block: Block, scores: Scores, limit: float) -> dict:
    """Customers per offer, cost and value of the free customers kept at their best offer."""
    rows = np.flatnonzero((scores.margin > limit) & (scores.best_offer >= 0))
    chosen = scores.best_offer[rows].astype(np.intp)
    return {
        "fixed_counts": np.bincount(chosen, minlength=block.value.shape[1]),
        "fixed_cost": float(np.take_along_axis(block.cost[rows], chosen[:, None], 1).sum()),
        "fixed_value": float(np.take_along_axis(block.value[rows], chosen[:, None], 1).sum()),
    }
