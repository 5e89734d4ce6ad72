"""Optimization: the segment LP (Pyomo + HiGHS) and its stage runner."""

from offerflow.optimize.segment_lp import (
    InfeasiblePlanError,
    ProbabilityTableError,
    SegmentPlan,
    SolverError,
    optimize_segments,
    score_plan,
)

__all__ = [
    "InfeasiblePlanError",
    "ProbabilityTableError",
    "SegmentPlan",
    "SolverError",
    "optimize_segments",
    "score_plan",
]
