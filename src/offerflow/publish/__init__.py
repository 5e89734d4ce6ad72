"""Publish: a plan -> one offer per customer, written with lineage in one transaction.

Targets: SQLite (default), PostgreSQL (credentials from an environment variable or a Prefect
Secret block) and Parquet/CSV files. `offerflow runs|show|rollback` (publish.commands) inspect them.
"""

from offerflow.publish.assign import PlanError, assign_from_plan, largest_remainder_counts
from offerflow.publish.customer_plan import assign_from_customer_plan
from offerflow.publish.lineage import ALREADY_PUBLISHED, PUBLISHED, RunRecord, StoreError
from offerflow.publish.target import PublishTarget, PublishTargetError, open_store, resolve_target

__all__ = [
    "ALREADY_PUBLISHED",
    "PUBLISHED",
    "PlanError",
    "PublishTarget",
    "PublishTargetError",
    "RunRecord",
    "StoreError",
    "assign_from_customer_plan",
    "assign_from_plan",
    "largest_remainder_counts",
    "open_store",
    "resolve_target",
]
