"""The customer-level allocation as a plain LP (or MIP) in HiGHS: the independent reference the exact
allocators are checked and benchmarked against. Test-only: offerflow itself never calls it.

Built from scratch here (scipy.sparse, no offerflow code): one column per (customer, offer), one row per
customer, then the budget and the count rows exactly as the issue states them.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp


def solve_with_highs(value: np.ndarray, cost: np.ndarray, budget: float, integer: bool = False, solver: str = "ipm",
                     **options):
    """max sum v x, each customer one offer, sum c x <= budget. Returns the Highs object after `run()`."""
    return solve_constrained_with_highs(value, cost, budget, integer=integer, solver=solver, **options)


def share_count(share: float, customers: int, up: bool) -> int:
    """A share of all customers in whole customers: at least ceil, at most floor (float noise ignored)."""
    exact = share * customers
    return int(math.ceil(exact - 1e-9) if up else math.floor(exact + 1e-9))


def solve_constrained_with_highs(
    value: np.ndarray,
    cost: np.ndarray,
    budget: float | None,
    *,
    control: int = 0,
    capacity: dict[int, float] | None = None,
    min_share: dict[int, float] | None = None,
    max_share: dict[int, float] | None = None,
    groups: list[tuple[tuple[int, ...], int]] | None = None,
    excluded: np.ndarray | None = None,
    integer: bool = False,
    minimize_cost: bool = False,
    solver: str = "simplex",
    presolve: str = "choose",
    threads: int | None = None,
    time_limit: float | None = None,
):
    """The whole customer-level problem in HiGHS: budget, capacity per offer, group caps, min/max shares
    (fractions of all customers), exclusions (control only). `minimize_cost` drops the budget and finds
    the cheapest plan instead (the smallest feasible budget). Returns the Highs object after `run()`."""
    import highspy

    n, k = value.shape
    rows, lower, upper = [sp.csr_matrix(sp.kron(sp.identity(n), np.ones((1, k))))], [np.ones(n)], [np.ones(n)]
    if budget is not None and not minimize_cost and math.isfinite(budget):
        rows.append(sp.csr_matrix(cost.reshape(1, -1)))
        lower.append([-highspy.kHighsInf])
        upper.append([budget])
    per_offer_lower, per_offer_upper = {}, {}
    for d, share in (min_share or {}).items():
        per_offer_lower[d] = share_count(share, n, up=True)
    for d, share in (max_share or {}).items():
        per_offer_upper[d] = share_count(share, n, up=False)
    for d, cap in (capacity or {}).items():
        per_offer_upper[d] = min(per_offer_upper.get(d, n), int(cap))
    for d in sorted(set(per_offer_lower) | set(per_offer_upper)):
        rows.append(sp.csr_matrix(np.tile(np.arange(k) == d, n).astype(float).reshape(1, -1)))
        lower.append([per_offer_lower.get(d, 0)])
        upper.append([per_offer_upper.get(d, n)])
    for offers, cap in groups or []:
        rows.append(sp.csr_matrix(np.tile(np.isin(np.arange(k), offers), n).astype(float).reshape(1, -1)))
        lower.append([0])
        upper.append([cap])
    matrix = sp.vstack(rows).tocsc()
    matrix.eliminate_zeros()
    column_upper = np.ones((n, k))
    if excluded is not None:
        column_upper[excluded] = np.arange(k) == control
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n * k, matrix.shape[0]
    lp.sense_ = highspy.ObjSense.kMinimize if minimize_cost else highspy.ObjSense.kMaximize
    lp.col_cost_ = (cost if minimize_cost else value).ravel().astype(float)
    lp.col_lower_, lp.col_upper_ = np.zeros(n * k), column_upper.ravel()
    lp.row_lower_, lp.row_upper_ = np.concatenate(lower).astype(float), np.concatenate(upper).astype(float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = matrix.indptr, matrix.indices, matrix.data
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * (n * k)
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    if threads is not None:  # HiGHS's scheduler is global and sized by the first run: a later size fails every run
        highs.setOptionValue("threads", threads)
    if time_limit is not None:
        highs.setOptionValue("time_limit", float(time_limit))
    if integer:
        highs.setOptionValue("mip_rel_gap", 1e-9)
        highs.setOptionValue("mip_abs_gap", 1e-12)
    else:
        highs.setOptionValue("solver", solver)
        highs.setOptionValue("presolve", presolve)
    highs.passModel(lp)
    highs.run()
    return highs
