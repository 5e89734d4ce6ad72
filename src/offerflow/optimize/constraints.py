"""Share and capacity constraints of the segment LP, and why a set of them can be impossible.

Shares bound x[s,d] (the share of segment s that gets offer d) per offer: min_share <= x <= max_share.
A capacity caps the customers of an offer over all segments: sum_s N_s x[s,d] <= capacity[d].

Without the budget these constraints are feasible exactly when one common share vector y works for
every segment (average any feasible plan over segments, weighted by size), i.e. when for each offer
    min_share[d] <= min(max_share[d], capacity[d] / N)   and   sum_d min_share[d] <= 1 <= sum_d min(...)
so every conflict can be named with its offer and numbers before the solver runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from offerflow.errors import InfeasiblePlanError

__all__ = ["InfeasiblePlanError", "ShareBounds", "share_bounds"]

ShareSetting = float | Mapping[str, float] | None


@dataclass(frozen=True)
class ShareBounds:
    """Per-offer bounds in arm order; capacity is +inf for offers without one."""

    arms: tuple[str, ...]
    lower: np.ndarray  # min share per offer
    upper: np.ndarray  # max share per offer
    capacity: np.ndarray  # max customers per offer
    groups: tuple[tuple[str, tuple[int, ...], float], ...] = ()  # (name, offer indexes, most customers) caps

    def with_common_minimum(self, share: float) -> "ShareBounds":
        """Bounds with every offer's minimum raised to at least `share` (fairness mode)."""
        return ShareBounds(self.arms, np.maximum(self.lower, share), self.upper, self.capacity, self.groups)

    def describe(self) -> dict:
        """JSON-ready view: one number when all offers agree, else a dict per offer."""

        def collapse(values: np.ndarray) -> float | dict[str, float]:
            rounded = [float(f"{v:.10g}") for v in values]
            return rounded[0] if len(set(rounded)) == 1 else dict(zip(self.arms, rounded))

        capacity = {arm: int(c) for arm, c in zip(self.arms, self.capacity) if math.isfinite(c)}
        described = {"min_share": collapse(self.lower), "max_share": collapse(self.upper), "capacity": capacity}
        if self.groups:
            described["groups"] = {name: {"offers": [self.arms[d] for d in offers], "max": int(cap)}
                                   for name, offers, cap in self.groups}
        return described


def per_offer(setting: ShareSetting, arms: Sequence[str], default: float, key: str) -> np.ndarray:
    """One number for every offer, or a dict per offer (offers left out get `default`); names bad keys."""
    if setting is None:
        return np.full(len(arms), default)
    if isinstance(setting, Mapping):
        unknown = sorted(set(setting) - set(arms))
        if unknown:
            raise ValueError(f"optimize.{key} names offer(s) {unknown} that are not arms {list(arms)}")
        values = np.array([float(setting.get(arm, default)) for arm in arms])
    else:
        values = np.full(len(arms), float(setting))
    bad = {arm: v for arm, v in zip(arms, values) if not (math.isfinite(v) and 0 <= v <= 1)}
    if bad:
        raise ValueError(f"optimize.{key} must be within [0, 1], got {bad}")
    return values


def share_bounds(
    arms: Sequence[str],
    min_share: ShareSetting = 0.0,
    max_share: ShareSetting = None,
    capacity: Mapping[str, float] | None = None,
    groups: Mapping[str, tuple[Sequence[str], float]] | None = None,
) -> ShareBounds:
    """Normalize params-style settings into per-offer arrays (and caps over groups of offers)."""
    capacity = dict(capacity or {})
    unknown = sorted(set(capacity) - set(arms))
    if unknown:
        raise ValueError(f"optimize.capacity names offer(s) {unknown} that are not arms {list(arms)}")
    caps = np.array([float(capacity.get(arm, math.inf)) for arm in arms])
    bad = {arm: c for arm, c in zip(arms, caps) if math.isnan(c) or c < 0}
    if bad:
        raise ValueError(f"optimize.capacity must be >= 0 customers, got {bad}")
    lower = per_offer(min_share, arms, 0.0, "min_share")
    built = []
    for name, (offers, cap) in (groups or {}).items():
        unknown = sorted(set(offers) - set(arms))
        if unknown or not offers:
            raise ValueError(f"optimize.groups.{name} names offer(s) {unknown or '[]'} that are not arms {list(arms)}")
        built.append((str(name), tuple(sorted(list(arms).index(o) for o in set(offers))), float(cap)))
    return ShareBounds(tuple(arms), lower, per_offer(max_share, arms, 1.0, "max_share"), caps, tuple(built))


def explain_share_conflicts(bounds: ShareBounds, customers: float) -> None:
    """Raise InfeasiblePlanError naming the offers and numbers when no plan can meet the bounds at any budget."""
    arms, lower = bounds.arms, bounds.lower
    reachable = np.minimum(bounds.upper, bounds.capacity / customers if customers > 0 else np.inf)
    problems = []
    if lower.sum() > 1 + 1e-12:
        if len(set(lower.tolist())) == 1:
            problems.append(
                f"min_share {lower[0]:g} x {len(arms)} offers = {lower.sum():.4g} > 1: no segment can give every offer "
                f"that share; lower optimize.min_share to at most {1 / len(arms):.4g}"
            )
        else:
            problems.append(f"the minimum shares {dict(zip(arms, lower.tolist()))} add up to {lower.sum():.4g} > 1")
    for d, arm in enumerate(arms):
        if lower[d] > bounds.upper[d] + 1e-12:
            problems.append(f"offer {arm}: min_share {lower[d]:g} > max_share {bounds.upper[d]:g}")
        elif lower[d] * customers > bounds.capacity[d] + 1e-9:
            problems.append(
                f"offer {arm}: min_share {lower[d]:g} x {customers:,.0f} customers = {lower[d] * customers:,.1f} "
                f"> capacity {bounds.capacity[d]:,.0f}; raise optimize.capacity.{arm} to at least "
                f"{math.ceil(lower[d] * customers - 1e-9):,} or lower its min_share to at most "
                f"{bounds.capacity[d] / customers:.4g}"
            )
    if reachable.sum() < 1 - 1e-12:
        parts = ", ".join(f"{arm} {customers * r:,.0f}" for arm, r in zip(arms, reachable))
        problems.append(
            f"the offers can reach at most {customers * reachable.sum():,.0f} of {customers:,.0f} customers "
            f"({parts}; by max_share and capacity): every customer needs one offer"
        )
    for name, offers, cap in bounds.groups:
        floor = float(sum(lower[d] for d in offers)) * customers
        if floor > cap + 1e-9:
            members = ", ".join(arms[d] for d in offers)
            problems.append(f"group {name} ({members}): its offers' minimum shares need {floor:,.1f} customers > cap {cap:,.0f}")
    if problems:
        raise InfeasiblePlanError("no plan meets the share constraints at any budget: " + "; ".join(problems))
