"""Entry point for the customer-journeys Prefect deployment in prefect.yaml (the flow lives in offerflow.flows)."""

from offerflow.flows.customer_journeys import customer_journeys

__all__ = ["customer_journeys"]
