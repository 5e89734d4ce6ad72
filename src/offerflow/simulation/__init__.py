"""The simulator: campaign histories drawn from a known truth, so every stage can be checked against it."""

from offerflow.simulation.history import (
    add_customer_features,
    customer_true_probabilities,
    ordered_score,
    simulate_history,
    standardized,
    targeted_propensities,
)

__all__ = [
    "add_customer_features",
    "customer_true_probabilities",
    "ordered_score",
    "simulate_history",
    "standardized",
    "targeted_propensities",
]
