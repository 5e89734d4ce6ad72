"""Optimization: the segment LP (Pyomo + HiGHS)."""
