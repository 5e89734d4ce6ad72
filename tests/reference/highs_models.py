"""The customer-level allocation as a plain LP (or MIP) in HiGHS: the independent reference the exact
allocator is checked and benchmarked against. Test-only: offerflow itself never calls it."""

from __future__ import annotations

import numpy as np


def solve_with_highs(value: np.ndarray, cost: np.ndarray, budget: float, integer: bool = False, solver: str = "ipm"):
    """The same problem as a plain LP (or MIP) in HiGHS: the independent reference the allocator is checked
    and benchmarked against. Returns the Highs object after `run()`."""
    import highspy

    n, k = value.shape
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n * k, n + 1
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = value.ravel()
    lp.col_lower_, lp.col_upper_ = np.zeros(n * k), np.ones(n * k)
    lp.row_lower_ = np.concatenate([np.ones(n), [-highspy.kHighsInf]])
    lp.row_upper_ = np.concatenate([np.ones(n), [budget]])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(0, 2 * n * k + 1, 2)
    lp.a_matrix_.index_ = np.column_stack([np.repeat(np.arange(n), k), np.full(n * k, n)]).ravel()
    lp.a_matrix_.value_ = np.column_stack([np.ones(n * k), cost.ravel()]).ravel()
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * (n * k)
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    if integer:
        highs.setOptionValue("mip_rel_gap", 1e-9)
    else:
        highs.setOptionValue("solver", solver)
    highs.passModel(lp)
    highs.run()
    return highs
