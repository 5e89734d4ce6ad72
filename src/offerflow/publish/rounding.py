"""Whole customers that keep the plan's limits: the budget, capacities and caps over offer groups.

Largest-remainder rounding keeps every segment's counts within one customer of N x share, but the few
customers rounded up can add up to more expected cost than the budget or one customer more than a
capacity. `repair_counts` moves, one customer at a time, a customer from the cell that breaks a limit to the
cheapest offer of its segment that breaks none (the control offer, usually), the dearest move first, until
every limit holds; the moves are few (at most about one per segment) and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from offerflow.errors import InfeasiblePlanError
from offerflow.schema import OFFER, SEGMENT_ID

TOLERANCE = 1e-6  # USD: the LP's own round-off


@dataclass(frozen=True)
class PlanLimits:
    """The hard limits a published plan must keep (none by default)."""

    budget: float = float("inf")
    capacity: dict[str, float] = field(default_factory=dict)
    groups: tuple[tuple[str, tuple[str, ...], float], ...] = ()  # (name, offers, most customers)


def _violations(cells: pd.DataFrame, limits: PlanLimits) -> tuple[float, dict[str, float]]:
    """(cost over budget, customers over each offer/group limit)."""
    over_budget = float((cells["count"] * cells["unit_cost"]).sum()) - limits.budget
    per_offer = cells.groupby(OFFER)["count"].sum()
    over: dict[str, float] = {}
    for offer, cap in limits.capacity.items():
        excess = float(per_offer.get(offer, 0)) - cap
        if excess > 0:
            over[offer] = excess
    for name, offers, cap in limits.groups:
        excess = float(per_offer.reindex(list(offers)).fillna(0).sum()) - cap
        if excess > 0:
            over[f"group {name}"] = excess
    return over_budget, over


def _breaking(cells: pd.DataFrame, limits: PlanLimits, over_budget: float, over: dict[str, float]) -> np.ndarray:
    """Cells a customer may leave to fix a broken limit."""
    mask = np.zeros(len(cells), bool)
    offers = cells[OFFER].to_numpy()
    for key in over:
        members = dict((n, o) for n, o, _ in limits.groups).get(key[6:], None) if key.startswith("group ") else (key,)
        mask |= np.isin(offers, list(members))
    if over_budget > TOLERANCE:
        mask |= cells["unit_cost"].to_numpy() > 0
    return mask & (cells["count"].to_numpy() > 0)


def repair_counts(cells: pd.DataFrame, limits: PlanLimits) -> pd.DataFrame:
    """Counts per (segment, offer) moved just enough that the budget, capacities and group caps hold.

    Only rounding is repaired: a plan whose own (fractional) expected cost is above the budget keeps that
    cost as its limit (the optimizer never writes one; a hand-made plan is published as it was made).
    """
    cells = cells.copy()
    planned = float(cells["expected_cost"].sum()) if "expected_cost" in cells else 0.0
    limits = PlanLimits(max(limits.budget, planned), limits.capacity, limits.groups)
    moves = 0
    while True:
        over_budget, over = _violations(cells, limits)
        if over_budget <= TOLERANCE and not over:
            return cells
        candidates = np.flatnonzero(_breaking(cells, limits, over_budget, over))
        best = None
        for row in candidates:
            segment = cells[SEGMENT_ID].iat[row]
            same = cells.index[(cells[SEGMENT_ID] == segment).to_numpy()]
            for target in same:
                if target == cells.index[row] or cells.at[target, "unit_cost"] > cells["unit_cost"].iat[row]:
                    continue
                if _breaks_after_move(cells, limits, cells.index[row], target):
                    continue
                saving = cells["unit_cost"].iat[row] - cells.at[target, "unit_cost"]
                key = (-saving, int(segment), int(target))
                if best is None or key < best[0]:
                    best = (key, cells.index[row], target)
        if best is None:
            raise InfeasiblePlanError(
                f"rounding the segment plan to whole customers breaks a limit no move can fix (over budget by "
                f"{max(over_budget, 0):,.2f} USD; over capacity: {over})"
            )
        _, source, target = best
        cells.at[source, "count"] -= 1
        cells.at[target, "count"] += 1
        moves += 1
        if moves > len(cells) * 10:
            raise InfeasiblePlanError("rounding repair did not converge")


def _breaks_after_move(cells: pd.DataFrame, limits: PlanLimits, source, target) -> bool:
    """Would one more customer on `target`'s offer break its capacity or a group cap?"""
    offer = cells.at[target, OFFER]
    if offer == cells.at[source, OFFER]:
        return True
    per_offer = cells.groupby(OFFER)["count"].sum()
    if offer in limits.capacity and per_offer.get(offer, 0) + 1 > limits.capacity[offer]:
        return True
    for _, offers, cap in limits.groups:
        if offer in offers and cells.at[source, OFFER] not in offers and per_offer.reindex(list(offers)).fillna(0).sum() + 1 > cap:
            return True
    return False
