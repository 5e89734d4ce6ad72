"""Publish: segment shares -> one offer per customer, written with lineage in one transaction."""

from offerflow.publish.assign import PlanError, assign_from_plan, largest_remainder_counts
from offerflow.publish.stage import run_publish
from offerflow.publish.store import ALREADY_PUBLISHED, PUBLISHED, AssignmentStore, RunRecord, StoreError

__all__ = [
    "ALREADY_PUBLISHED",
    "PUBLISHED",
    "AssignmentStore",
    "PlanError",
    "RunRecord",
    "StoreError",
    "assign_from_plan",
    "largest_remainder_counts",
    "run_publish",
]
