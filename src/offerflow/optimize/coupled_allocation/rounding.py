"""From the LP optimum to one offer per customer that meets every row exactly.

HiGHS's simplex returns a basic solution: at most as many customers as coupled rows are split between
offers; everyone else already has one offer. Those few customers, plus the customers of the working
set nearest to a tie at the LP multipliers (where moving costs least), are re-decided by a small MIP
in HiGHS with everyone else fixed; a neighbourhood too small to meet the rows grows fourfold. The MIP is
stopped within 1e-9 of the LP bound (or at a node limit, which keeps it deterministic) with its best
plan: the loss against the LP bound is what the reported gap says, in practice a few customers' values.
"""

from __future__ import annotations

import numpy as np

from offerflow.optimize.coupled_allocation.blocks import score
from offerflow.optimize.coupled_allocation.master import WorkingSetModel
from offerflow.optimize.coupled_allocation.relaxation import Relaxation

FRACTIONAL = 1e-6  # an LP value this far from 0 and 1 is a split customer
NEIGHBOURHOOD = 64  # least customers re-decided together
GOOD_ENOUGH = 1e-9  # the MIP may stop this close (relative to the LP bound) to its own optimum


class RoundingFailed(RuntimeError):
    """No integer choice for the working set meets the rows with everyone else fixed."""


def round_working_set(state: Relaxation, cushion: float = 0.0) -> np.ndarray:
    """Integer offers for the working set (in its order); the budget is kept `cushion` dollars short so
    that the final, recomputed cost cannot exceed it by rounding."""
    x, matrix = state.x, state.rows.matrix
    offers = x.argmax(axis=1)
    lower, upper, budget = state.bounds()
    if budget is not None:
        budget -= cushion
    split = np.flatnonzero(x.max(axis=1) < 1 - FRACTIONAL)
    if not len(split) and _meets(state, offers, np.arange(len(offers)), lower, upper, budget):
        return offers
    margin = score(state.value, state.cost, None, state.prices.budget, state.prices.offer_prices(matrix)).margin
    margin[split] = -np.inf  # split customers first, then the nearest to a tie; ties by position
    order = np.lexsort((np.arange(len(margin)), margin))
    size = max(NEIGHBOURHOOD, 16 * len(split))
    while True:
        chosen = order[:size]
        rest = np.ones(len(offers), bool)
        rest[chosen] = False
        k = x.shape[1]
        counts = np.bincount(offers[rest], minlength=k).astype(float)
        used = matrix.astype(float) @ counts
        spent = float(state.cost[rest, offers[rest]].sum())
        model = WorkingSetModel(state.value[chosen], state.cost[chosen], matrix, lower - used, upper - used,
                                None if budget is None else budget - spent, integer=True,
                                enough=GOOD_ENOUGH * abs(state.dual))
        solved = model.solve()
        if solved.status == "optimal":
            offers = offers.copy()
            offers[chosen] = solved.x.argmax(axis=1)
            return offers
        if size >= len(offers):
            raise RoundingFailed(
                f"no integer plan for the {len(offers):,} customers nearest to a tie meets the constraints with "
                f"the others fixed (HiGHS: {solved.status})"
            )
        size *= 4


def _meets(state: Relaxation, offers, rows, lower, upper, budget) -> bool:
    counts = np.bincount(offers, minlength=state.x.shape[1]).astype(float)
    used = state.rows.matrix.astype(float) @ counts
    if (used < lower).any() or (used > upper).any():
        return False
    return budget is None or float(state.cost[rows, offers].sum()) <= budget
