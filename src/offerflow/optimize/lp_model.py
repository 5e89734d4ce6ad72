"""Pyomo models of the segment LP and the solves built on them (HiGHS simplex through APPSI).

One builder makes the feasible set (offer shares per segment, share bounds, capacities, optional
budget); each question asked of it (best plan, cheapest plan, largest common share, best plan with
ties broken by cost) only adds an objective. Simplex, not PDLP (whose duals had a flipped sign),
gives a vertex and exact duals: the budget row's dual prices one more dollar in objective units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from offerflow.errors import OfferflowError
from offerflow.optimize.constraints import ShareBounds

HIGHS_OPTIONS = {"solver": "simplex", "random_seed": 0, "presolve": "on"}
TIE_TOLERANCE = 1e-9  # relative: plans within this of the optimum count as tied when breaking ties by cost


class SolverError(OfferflowError, RuntimeError):
    """HiGHS did not prove optimality (time limit, numerical trouble) or returned an implausible dual."""


@dataclass(frozen=True)
class Solution:
    """Raw shares (segments x offers) and the budget row's dual (None when there is no budget row)."""

    shares: np.ndarray
    dual: float | None
    objective: float


def build_model(spend: np.ndarray, sizes: np.ndarray, bounds: ShareBounds, budget: float | None) -> pyo.ConcreteModel:
    """Feasible set: one offer per customer, share bounds, capacities and (unless None) the expected-cost budget."""
    n_segments, n_arms = spend.shape
    model = pyo.ConcreteModel()
    model.x = pyo.Var(
        range(n_segments), range(n_arms), bounds=lambda m, s, d: (float(bounds.lower[d]), float(bounds.upper[d]))
    )
    model.one_offer = pyo.Constraint(range(n_segments), rule=lambda m, s: sum(m.x[s, d] for d in range(n_arms)) == 1)
    capped = [d for d in range(n_arms) if math.isfinite(bounds.capacity[d])]
    model.capacity = pyo.Constraint(
        capped, rule=lambda m, d: sum(float(sizes[s]) * m.x[s, d] for s in range(n_segments)) <= float(bounds.capacity[d])
    )
    model.group_cap = pyo.Constraint(
        range(len(bounds.groups)),
        rule=lambda m, g: sum(float(sizes[s]) * m.x[s, d] for s in range(n_segments) for d in bounds.groups[g][1])
        <= bounds.groups[g][2],
    )
    cost = linear(model, spend)
    if budget is not None and not isinstance(cost, (int, float)):
        model.budget_con = pyo.Constraint(expr=cost <= float(budget))  # absent when no plan can cost anything
    return model


def linear(model: pyo.ConcreteModel, coefficients: np.ndarray):
    """sum of coefficients[s,d] x[s,d] over the nonzero coefficients (0 when all are zero)."""
    n_segments, n_arms = coefficients.shape
    return sum(
        float(coefficients[s, d]) * model.x[s, d]
        for s in range(n_segments) for d in range(n_arms) if coefficients[s, d] != 0
    )


def solve_model(model: pyo.ConcreteModel, time_limit_seconds: float) -> tuple[str, float | None]:
    """Solve with HiGHS simplex; return 'optimal' or 'infeasible' and the budget row's dual (None without one)."""
    from pyomo.contrib.appsi.solvers import Highs

    solver = Highs()
    solver.config.load_solution = False
    solver.config.time_limit = float(time_limit_seconds)
    solver.highs_options = dict(HIGHS_OPTIONS)
    result = solver.solve(model)
    status = result.termination_condition.name
    if status in ("infeasible", "infeasibleOrUnbounded"):  # every x is boxed, so never unbounded
        return "infeasible", None
    if status != "optimal":
        raise SolverError(
            f"HiGHS stopped with status {status!r} (time limit {time_limit_seconds:g} s); no plan written"
        )
    result.solution_loader.load_vars()
    if not hasattr(model, "budget_con"):
        return status, None
    return status, float(result.solution_loader.get_duals([model.budget_con])[model.budget_con])


def _shares(model: pyo.ConcreteModel, shape: tuple[int, int]) -> np.ndarray:
    return np.array([[pyo.value(model.x[s, d]) for d in range(shape[1])] for s in range(shape[0])], dtype="float64")


def _with_tie_break(model, primary, optimum: float, spend: np.ndarray, prefer: str, time_limit: float) -> None:
    """Among plans within TIE_TOLERANCE of the primary optimum, take the cheapest or the costliest."""
    model.objective.deactivate()
    slack = TIE_TOLERANCE * max(1.0, abs(optimum))
    model.near_optimal = pyo.Constraint(expr=primary >= optimum - slack)
    sense = pyo.minimize if prefer == "cheapest" else pyo.maximize
    model.tie_break = pyo.Objective(expr=linear(model, spend), sense=sense)
    status, _ = solve_model(model, time_limit)
    if status != "optimal":
        raise SolverError(f"the tie-break LP ended {status!r} although the optimum it keeps is feasible")


def maximize(
    coefficients: np.ndarray,
    spend: np.ndarray,
    sizes: np.ndarray,
    bounds: ShareBounds,
    budget: float | None,
    time_limit_seconds: float,
    prefer: str | None = None,
) -> Solution | None:
    """Plan maximizing sum coefficients x within the budget (None: no budget); None when infeasible.

    prefer 'cheapest' / 'costliest' breaks ties among optimal plans by expected cost; the dual is the
    primary problem's.
    """
    model = build_model(spend, sizes, bounds, budget)
    primary = linear(model, coefficients)
    model.objective = pyo.Objective(expr=primary, sense=pyo.maximize)
    status, dual = solve_model(model, time_limit_seconds)
    if status == "infeasible":
        return None
    optimum = float(pyo.value(primary))
    if prefer is not None and not isinstance(primary, (int, float)):
        _with_tie_break(model, primary, optimum, spend, prefer, time_limit_seconds)
    return Solution(_shares(model, spend.shape), dual, optimum)


def minimum_cost(spend: np.ndarray, sizes: np.ndarray, bounds: ShareBounds, time_limit_seconds: float) -> float | None:
    """Cheapest expected coupon cost of any plan meeting the share and capacity constraints; None if none does."""
    solution = maximize(-spend, spend, sizes, bounds, None, time_limit_seconds)
    return None if solution is None else max(0.0, -solution.objective)


def largest_common_share(
    spend: np.ndarray, sizes: np.ndarray, bounds: ShareBounds, budget: float, time_limit_seconds: float
) -> float | None:
    """Fairness: the largest t with x[s,d] >= t for every segment and offer within budget and bounds; None if none."""
    model = build_model(spend, sizes, bounds, budget)
    n_segments, n_arms = spend.shape
    model.t = pyo.Var(bounds=(0.0, 1.0))
    model.floor = pyo.Constraint(range(n_segments), range(n_arms), rule=lambda m, s, d: m.x[s, d] >= m.t)
    model.objective = pyo.Objective(expr=model.t, sense=pyo.maximize)
    status, _ = solve_model(model, time_limit_seconds)
    return None if status == "infeasible" else float(pyo.value(model.t))
