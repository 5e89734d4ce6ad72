"""Entry point for the discount-policy Prefect deployment in prefect.yaml (the flow lives in offerflow.flows)."""

from offerflow.flows.discount_policy import discount_policy

__all__ = ["discount_policy"]
