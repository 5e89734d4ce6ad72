"""Customer-level allocation under a budget plus coupled constraints (capacities, group caps, min/max
shares, exclusions): exact LP bound by sifting, integer plan that meets every constraint exactly."""

from offerflow.optimize.coupled_allocation.solve import allocate_with_constraints
from offerflow.optimize.coupled_allocation.spec import CustomerConstraints, OfferGroup

__all__ = ["CustomerConstraints", "OfferGroup", "allocate_with_constraints"]
