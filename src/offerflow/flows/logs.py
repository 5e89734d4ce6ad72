"""offerflow's own log lines in the flow run's logs (the Prefect UI), however the flow was started.

Prefect sends only its own loggers to the API unless PREFECT_LOGGING_EXTRA_LOGGERS names others, and a
deployment run by a worker, a test or `python flows/offer_allocation.py` never passes through the CLI that
sets it. So each flow attaches Prefect's API handler to the `offerflow` logger for the length of the run
(unless the user's PREFECT_LOGGING_EXTRA_LOGGERS already did), at INFO, and restores the logger afterwards.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

LOGGER = "offerflow"


@contextlib.contextmanager
def offerflow_logs_to_api() -> Iterator[logging.Logger]:
    from prefect.logging.handlers import APILogHandler

    logger = logging.getLogger(LOGGER)
    added = None
    if not any(isinstance(handler, APILogHandler) for handler in logger.handlers):
        added = APILogHandler()
        added.setLevel(logging.INFO)
        logger.addHandler(added)
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield logger
    finally:
        logger.setLevel(level)
        if added is not None:  # records already queued for the API are sent by Prefect's log worker
            logger.removeHandler(added)
