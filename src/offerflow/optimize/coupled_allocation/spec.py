"""What a campaign allows, as rows of one LP over customers, and why a set of rows can be impossible.

Every constraint but the budget counts customers: per offer (capacity, min/max share: shares are
fractions of ALL customers, rounded to whole customers: at least 10% of 1,005 is 101) and per group of
offers (at most M customers get any of them). A count row is a 0/1 vector over offers with integer
bounds [lower, upper]. Excluded customers are fixed on the control offer: they are removed from the
optimization and their count and cost are taken off the bounds. Because every customer may take every
offer, the count rows alone are feasible exactly when a vector of per-offer counts is, which is a
K-variable question answered (and explained) before any customer is looked at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from offerflow.errors import InfeasiblePlanError


@dataclass(frozen=True)
class OfferGroup:
    """At most `max_customers` customers get any offer of `offers` (offer indices)."""

    name: str
    offers: tuple[int, ...]
    max_customers: int


@dataclass(frozen=True)
class CustomerConstraints:
    """Hard constraints of a customer-level plan besides the budget (offers are column indices)."""

    control: int = 0
    capacity: tuple[float, ...] | None = None  # most customers per offer (inf: none)
    min_share: tuple[float, ...] | None = None  # least fraction of all customers per offer
    max_share: tuple[float, ...] | None = None  # most fraction of all customers per offer
    groups: tuple[OfferGroup, ...] = ()
    excluded: np.ndarray | None = field(default=None, compare=False)  # bool per customer: control only
    offer_names: tuple[str, ...] | None = None  # for messages and reports

    @classmethod
    def from_settings(
        cls,
        arms: Sequence[str],
        control: str,
        capacity: Mapping[str, float] | None = None,
        min_share: float | Mapping[str, float] | None = None,
        max_share: float | Mapping[str, float] | None = None,
        groups: Mapping[str, tuple[Sequence[str], int]] | None = None,
        excluded: np.ndarray | None = None,
    ) -> "CustomerConstraints":
        """From params-style settings keyed by arm name (unknown names raise, naming them)."""
        from offerflow.optimize.constraints import share_bounds

        arms = list(arms)
        if control not in arms:
            raise ValueError(f"control offer {control!r} is not one of the arms {arms}")
        bounds = share_bounds(arms, min_share or 0.0, max_share, capacity)
        built = []
        for name, (offers, cap) in (groups or {}).items():
            unknown = sorted(set(offers) - set(arms))
            if unknown or not offers:
                raise ValueError(f"offer group {name!r} names offer(s) {unknown or '[]'} that are not arms {arms}")
            built.append(OfferGroup(str(name), tuple(sorted(arms.index(o) for o in set(offers))), int(cap)))
        return cls(arms.index(control), tuple(bounds.capacity), tuple(bounds.lower), tuple(bounds.upper),
                   tuple(built), excluded, tuple(arms))

    def names(self, k: int) -> tuple[str, ...]:
        return self.offer_names if self.offer_names else tuple(f"#{d}" for d in range(k))


@dataclass(frozen=True)
class CountRow:
    """lower <= number of customers whose offer is in `offers` <= upper, for all customers."""

    name: str
    offers: np.ndarray  # (K,) bool
    lower: int
    upper: int
    lower_source: str  # e.g. "min_share 0.1 of 1,000 customers"
    upper_source: str  # e.g. "capacity 500"


@dataclass(frozen=True)
class Problem:
    """The LP over the free (not excluded) customers: count rows with bounds net of the excluded."""

    k: int
    customers: int  # all customers
    excluded: int
    control: int
    names: tuple[str, ...]
    rows: tuple[CountRow, ...]  # bounds over ALL customers (as the user stated them)
    free_lower: np.ndarray  # (R,) bounds for the free customers
    free_upper: np.ndarray
    matrix: np.ndarray  # (R, K) 0/1

    @property
    def free(self) -> int:
        return self.customers - self.excluded


def whole_customers(share: float, customers: int, up: bool) -> int:
    """share x customers rounded to whole customers (up for minimums, down for maximums), ignoring float
    noise such as 0.1 x 2,000 = 200.00000000000003."""
    exact = share * customers
    nearest = round(exact)
    if abs(exact - nearest) <= 1e-9 * max(1.0, customers):
        return int(nearest)
    return int(math.ceil(exact) if up else math.floor(exact))


def count_rows(constraints: CustomerConstraints, k: int, customers: int) -> list[CountRow]:
    """One row per offer with a minimum or maximum, one per group whose cap can bind."""
    names = constraints.names(k)
    rows = []
    for d in range(k):
        lower, lower_source = 0, ""
        upper, upper_source = customers, ""
        if constraints.min_share is not None and constraints.min_share[d] > 0:
            lower = whole_customers(constraints.min_share[d], customers, up=True)
            lower_source = f"min_share {constraints.min_share[d]:g} of {customers:,} customers"
        if constraints.max_share is not None and constraints.max_share[d] < 1:
            upper = whole_customers(constraints.max_share[d], customers, up=False)
            upper_source = f"max_share {constraints.max_share[d]:g} of {customers:,} customers"
        if constraints.capacity is not None and constraints.capacity[d] < upper:
            upper, upper_source = int(math.floor(constraints.capacity[d])), f"capacity {constraints.capacity[d]:,.0f}"
        if lower > 0 or upper < customers:
            offers = np.zeros(k, bool)
            offers[d] = True
            rows.append(CountRow(f"offer {names[d]}", offers, lower, upper, lower_source, upper_source))
    for group in constraints.groups:
        bad = [d for d in group.offers if not 0 <= d < k]
        if bad or group.max_customers < 0:
            raise ValueError(f"offer group {group.name!r}: offers {list(group.offers)} / cap {group.max_customers}")
        if group.max_customers < customers:
            offers = np.zeros(k, bool)
            offers[list(group.offers)] = True
            members = ", ".join(names[d] for d in group.offers)
            rows.append(CountRow(f"group {group.name} ({members})", offers, 0, group.max_customers, "",
                                 f"cap {group.max_customers:,}"))
    return rows


def build_problem(constraints: CustomerConstraints, k: int, customers: int, excluded: int) -> Problem:
    """Rows and their bounds net of the excluded customers; raises InfeasiblePlanError naming the
    conflicting constraints and numbers when no assignment of counts can meet them (budget aside)."""
    if not 0 <= constraints.control < k:
        raise ValueError(f"control offer index {constraints.control} is not within 0..{k - 1}")
    rows = count_rows(constraints, k, customers)
    matrix = np.array([r.offers for r in rows], bool).reshape(len(rows), k)
    on_control = matrix[:, constraints.control].astype(int) * excluded
    problem = Problem(
        k, customers, excluded, constraints.control, constraints.names(k), tuple(rows),
        np.array([r.lower for r in rows], float) - on_control, np.array([r.upper for r in rows], float) - on_control,
        matrix,
    )
    explain_count_conflicts(problem)
    return problem


def offer_bounds(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Per-offer [lower, upper] counts of free customers implied by the single-offer rows."""
    lower, upper = np.zeros(problem.k), np.full(problem.k, float(problem.free))
    for r, row in enumerate(problem.rows):
        if row.offers.sum() == 1:
            d = int(np.flatnonzero(row.offers)[0])
            lower[d] = max(lower[d], problem.free_lower[r])
            upper[d] = min(upper[d], problem.free_upper[r])
    return np.maximum(lower, 0), upper


def explain_count_conflicts(problem: Problem) -> None:
    """Name every conflict among the count rows; confirm the rest with a K-variable integer program."""
    names, free, excluded, control = problem.names, problem.free, problem.excluded, problem.control
    problems = []
    for r, row in enumerate(problem.rows):
        if row.lower > row.upper:
            problems.append(f"{row.name}: at least {row.lower:,} ({row.lower_source}) > at most {row.upper:,} "
                            f"({row.upper_source})")
        elif problem.matrix[r, control] and excluded > row.upper:
            problems.append(f"exclusions: {excluded:,} excluded customers must get {names[control]}, but "
                            f"{row.name} allows at most {row.upper:,} ({row.upper_source})")
    lower, upper = offer_bounds(problem)
    if not problems and lower.sum() > free:
        needs = ", ".join(f"{names[d]} {lower[d]:,.0f}" for d in range(problem.k) if lower[d] > 0)
        problems.append(f"minimum shares need {lower.sum():,.0f} customers ({needs}) beyond the excluded, but only "
                        f"{free:,} of {problem.customers:,} customers are free ({excluded:,} excluded customers "
                        f"must get {names[control]})")
    if not problems and upper.sum() < free:
        reach = ", ".join(f"{names[d]} {upper[d]:,.0f}" for d in range(problem.k))
        problems.append(f"the offers can reach at most {upper.sum():,.0f} of the {free:,} free customers ({reach}; "
                        "by capacity and max_share): every customer needs one offer")
    for r, row in enumerate(problem.rows):
        if problems or row.offers.sum() < 2:
            continue
        inside = row.offers
        if lower[inside].sum() > problem.free_upper[r]:
            problems.append(f"{row.name}: cap {row.upper:,} < the minimum shares of its offers "
                            f"({', '.join(f'{names[d]} {lower[d]:,.0f}' for d in np.flatnonzero(inside))})")
        elif free - problem.free_upper[r] > upper[~inside].sum():
            problems.append(f"{row.name}: cap {row.upper:,} leaves {free - problem.free_upper[r]:,.0f} free customers "
                            f"for the other offers, which can reach at most {upper[~inside].sum():,.0f}")
    if not problems and not counts_feasible(problem):
        listed = "; ".join(f"{row.name} in [{row.lower:,}, {row.upper:,}]" for row in problem.rows)
        problems.append(f"no split of the {free:,} free customers over the offers meets all of: {listed}")
    if problems:
        raise InfeasiblePlanError("no customer plan meets the constraints at any budget: " + "; ".join(problems))


def counts_feasible(problem: Problem) -> bool:
    """Is there an integer count per offer within every row's bounds that adds up to the free customers?"""
    import highspy

    k, rows = problem.k, len(problem.rows)
    if rows == 0:
        return True
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = k, rows + 1
    lp.col_cost_ = np.zeros(k)
    lp.col_lower_, lp.col_upper_ = np.zeros(k), np.full(k, float(problem.free))
    lp.row_lower_ = np.concatenate([problem.free_lower, [problem.free]])
    lp.row_upper_ = np.concatenate([problem.free_upper, [problem.free]])
    dense = np.vstack([problem.matrix, np.ones((1, k), bool)]).astype(float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum((dense != 0).sum(axis=0))]).astype(np.int32)
    lp.a_matrix_.index_ = np.concatenate([np.flatnonzero(dense[:, d]) for d in range(k)]).astype(np.int32)
    lp.a_matrix_.value_ = np.ones(int(lp.a_matrix_.start_[-1]))
    lp.integrality_ = [highspy.HighsVarType.kInteger] * k
    highs = quiet_highs()
    highs.passModel(lp)
    highs.run()
    return highs.getModelStatus() == highspy.HighsModelStatus.kOptimal


def quiet_highs():
    """A HiGHS instance that prints nothing.

    Its thread count is left alone: HiGHS's scheduler is global to the process and fixed by the first
    instance that runs (Pyomo's, in the optimize stage), and asking another size later makes every run fail.
    """
    import highspy

    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    return highs
