"""The LP (or MIP) over a working set of customers in HiGHS, with the rest of the customers fixed.

Each working-set customer i has a reference offer r_i and a few candidate offers; a column y[i,d] in
[0, 1] moves it from r_i to candidate d (x[i,d] = y[i,d], x[i,r_i] = 1 - sum_d y[i,d]). A customer
with one candidate besides its reference needs no row of its own, so for the usual near-tie customer
the LP has one column and only the coupled rows (budget, counts): a bounded-variable LP that HiGHS's
dual simplex solves in milliseconds where the textbook form (K columns and an 'exactly one offer' row
per customer) took seconds. Customers with more candidates get a 'sum of moves <= 1' row. The fixed
customers only move the bounds. Row duals are the multipliers (for a maximization: d objective /
d bound, so a binding budget or upper bound has a positive dual and a binding minimum a negative one).
A basic solution splits at most as many customers as there are coupled rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from offerflow.optimize.coupled_allocation.spec import quiet_highs

TOLERANCE = 1e-9  # HiGHS primal and dual feasibility tolerance
INTERIOR_FROM = 5_000  # columns from which the first solve uses HiGHS's interior point (+ crossover to a basis)


@dataclass(frozen=True)
class Prices:
    """Lagrange multipliers: the budget's (value per dollar) and each count row's (value per customer)."""

    budget: float
    rows: np.ndarray  # (R,)

    def offer_prices(self, matrix: np.ndarray) -> np.ndarray:
        """What giving one customer each offer costs in multipliers: sum of its rows' multipliers."""
        return matrix.T.astype(float) @ self.rows if len(self.rows) else np.zeros(matrix.shape[1])


@dataclass
class Solved:
    status: str  # "optimal" | "infeasible" | HiGHS's own words
    objective: float = float("nan")
    x: np.ndarray | None = None  # (w, K)
    prices: Prices | None = None


class WorkingSetModel:
    """max sum v x over a working set with rows in [lower, upper] and cost <= budget (None: no budget).
    `candidates` (w, K) bool and `reference` (w,) restrict each customer's offers (None: all offers,
    reference = first offer)."""

    def __init__(self, value: np.ndarray, cost: np.ndarray, matrix: np.ndarray, lower: np.ndarray,
                 upper: np.ndarray, budget: float | None, *, candidates: np.ndarray | None = None,
                 reference: np.ndarray | None = None, integer: bool = False, enough: float = 0.0) -> None:
        """`enough`: for a MIP, an absolute gap small enough to stop at (the LP bound sets the scale)."""
        import highspy

        self.w, self.k = value.shape
        self.reference = np.zeros(self.w, np.intp) if reference is None else np.asarray(reference, np.intp)
        candidates = np.ones((self.w, self.k), bool) if candidates is None else candidates.copy()
        rows_ = np.arange(self.w)
        candidates[rows_, self.reference] = False
        self.customer, self.offer = np.nonzero(candidates)  # one column per move, customer order
        self.rows, self.has_budget = len(lower), budget is not None
        moves = np.bincount(self.customer, minlength=self.w)
        self.grouped = np.flatnonzero(moves >= 2)  # customers that need a 'sum of moves <= 1' row
        ref_value = value[rows_, self.reference]
        ref_cost = cost[rows_, self.reference]
        used = matrix.astype(float) @ np.bincount(self.reference, minlength=self.k)
        self.offset = float(ref_value.sum())
        inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_ = len(self.customer)
        lp.num_row_ = self.rows + int(self.has_budget) + len(self.grouped)
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.offset_ = self.offset
        lp.col_cost_ = value[self.customer, self.offer] - ref_value[self.customer]
        lp.col_lower_, lp.col_upper_ = np.zeros(lp.num_col_), np.ones(lp.num_col_)
        budget_row = [] if budget is None else [budget - float(ref_cost.sum())]
        lp.row_lower_ = np.concatenate([lower - used, [-inf] * len(budget_row), np.full(len(self.grouped), -inf)])
        lp.row_upper_ = np.concatenate([upper - used, budget_row, np.ones(len(self.grouped))])
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        a = self._matrix(matrix, cost, ref_cost)
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
        if integer:
            lp.integrality_ = np.full(lp.num_col_, highspy.HighsVarType.kInteger)
        self.highs = quiet_highs()
        options = {"primal_feasibility_tolerance": TOLERANCE, "dual_feasibility_tolerance": TOLERANCE}
        if integer:
            options |= {"mip_rel_gap": 1e-6, "mip_abs_gap": max(enough, 1e-9), "mip_feasibility_tolerance": TOLERANCE,
                        "mip_max_nodes": 2_000}
        else:
            options |= {"presolve": "off"}
        for key, setting in options.items():
            self.highs.setOptionValue(key, setting)
        self.highs.passModel(lp)
        self.integer, self.solved_once = integer, False
        self.budget_row = self.rows if self.has_budget else None
        self.reference_cost = float(ref_cost.sum())

    def _matrix(self, matrix: np.ndarray, cost: np.ndarray, ref_cost: np.ndarray) -> sp.csc_matrix:
        columns = np.arange(len(self.customer))
        change = matrix[:, self.offer].astype(np.int8) - matrix[:, self.reference[self.customer]].astype(np.int8)
        row_index, column_index = np.nonzero(change)
        parts_r, parts_c, parts_v = [row_index], [column_index], [change[row_index, column_index].astype(float)]
        if self.has_budget:
            dc = cost[self.customer, self.offer] - ref_cost[self.customer]
            nonzero = dc != 0
            parts_r.append(np.full(nonzero.sum(), self.rows))
            parts_c.append(columns[nonzero])
            parts_v.append(dc[nonzero])
        if len(self.grouped):
            slot = np.full(self.w, -1)
            slot[self.grouped] = np.arange(len(self.grouped)) + self.rows + int(self.has_budget)
            own = slot[self.customer] >= 0
            parts_r.append(slot[self.customer][own])
            parts_c.append(columns[own])
            parts_v.append(np.ones(own.sum()))
        shape = (self.rows + int(self.has_budget) + len(self.grouped), len(self.customer))
        a = sp.csc_matrix((np.concatenate(parts_v), (np.concatenate(parts_r), np.concatenate(parts_c))), shape=shape)
        a.sort_indices()
        return a

    def solve(self) -> Solved:
        import highspy

        # Near-tie customers give the dual simplex thousands of equal ratios (41k columns: 2.4 s for 18
        # iterations); the interior point plus crossover takes 0.4 s and leaves a basis for warm re-solves.
        interior = not self.integer and not self.solved_once and self.highs.getNumCol() >= INTERIOR_FROM
        self.highs.setOptionValue("solver", "ipm" if interior else ("choose" if self.integer else "simplex"))
        if self.highs.getNumCol() == 0:  # nobody to decide: feasible iff every row's bounds contain 0
            lp = self.highs.getLp()
            if (np.asarray(lp.row_lower_) > TOLERANCE).any() or (np.asarray(lp.row_upper_) < -TOLERANCE).any():
                return Solved("infeasible")
            x = np.zeros((self.w, self.k))
            x[np.arange(self.w), self.reference] = 1.0
            return Solved("optimal", self.offset, x, Prices(0.0, np.zeros(self.rows)))
        self.highs.run()
        self.solved_once = True
        status = self.highs.getModelStatus()
        if status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return Solved("infeasible")
        has_solution = status == highspy.HighsModelStatus.kOptimal or self.highs.getInfo().primal_solution_status == 2
        if not has_solution:
            return Solved(self.highs.modelStatusToString(status))
        solution = self.highs.getSolution()
        y = np.asarray(solution.col_value)
        x = np.zeros((self.w, self.k))
        x[self.customer, self.offer] = y
        x[np.arange(self.w), self.reference] = 1.0 - np.bincount(self.customer, weights=y, minlength=self.w)
        duals = np.asarray(solution.row_dual) if solution.dual_valid else np.zeros(self.rows + 1)
        budget_price = max(float(duals[self.rows]), 0.0) if self.has_budget and solution.dual_valid else 0.0
        prices = Prices(budget_price, duals[:self.rows].copy())
        return Solved("optimal", float(self.highs.getInfo().objective_function_value), x, prices)

    def set_budget(self, budget: float) -> None:
        import highspy

        self.highs.changeRowBounds(self.budget_row, -highspy.kHighsInf, budget - self.reference_cost)
