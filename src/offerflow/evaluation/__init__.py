"""Evaluation of decisions: a plan's value on a known truth, and a policy's value estimated from logs.

Valuing plans lives here once, so optimize, allocate, the decision-quality check, the publish gate and
the tests all agree on what a plan is worth.
"""
