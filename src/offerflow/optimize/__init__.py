"""Optimization: objectives, constraints, the segment LP (Pyomo + HiGHS), budget frontier and risk, stage runner.

For the customer-level allocation: `objective_coefficients` (pure, rows x arms) and
`customer_value_and_cost` (from params.yaml) give the value matrix the same objective switch
as the segment LP; `cost_risk` reports the realized-cost risk of any assignment (count 1 per customer).
"""

from offerflow.optimize.constraints import InfeasiblePlanError, ShareBounds, share_bounds
from offerflow.optimize.frontier import BudgetFrontier, budget_frontier, recommend_budget
from offerflow.optimize.objectives import OBJECTIVES, customer_value_and_cost, objective_coefficients
from offerflow.optimize.risk import cost_moments, cost_quantile, cost_risk, exceed_probability
from offerflow.optimize.segment_lp import (
    ProbabilityTableError,
    SegmentPlan,
    SegmentProblem,
    SolverError,
    optimize_segments,
    plan_problem,
    prepare_problem,
)

__all__ = [
    "OBJECTIVES",
    "BudgetFrontier",
    "InfeasiblePlanError",
    "ProbabilityTableError",
    "SegmentPlan",
    "SegmentProblem",
    "ShareBounds",
    "SolverError",
    "budget_frontier",
    "cost_moments",
    "cost_quantile",
    "cost_risk",
    "customer_value_and_cost",
    "exceed_probability",
    "objective_coefficients",
    "optimize_segments",
    "plan_problem",
    "prepare_problem",
    "recommend_budget",
    "share_bounds",
]
