"""Prefect orchestration: thin tasks around the stage runners in offerflow.stages."""

from offerflow.flows.offer_allocation import offer_allocation

__all__ = ["offer_allocation"]
