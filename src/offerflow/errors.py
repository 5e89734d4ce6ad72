"""Every error a user can act on, each carrying its exit code and whether a retry can help.

The CLI turns an error into its `exit_code`; the Prefect flow retries a task only when the error is
`retryable`. Nothing matches class names as strings: a new error states both facts here, once.

Exit codes (README): 0 ok, 1 anything else, 2 bad params.yaml, 3 input data failed validation (or is
missing, stale, or was never checked), 4 no feasible plan, 5 the publish gate refused every policy.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_DATA = 3
EXIT_INFEASIBLE = 4
EXIT_GATE = 5


class OfferflowError(Exception):
    """Base of offerflow's errors: a message for people, an exit code, and whether to retry."""

    exit_code: int = EXIT_ERROR
    retryable: bool = False


class ConfigError(OfferflowError, ValueError):
    """params.yaml is unusable; the message names the key and the offending value."""

    exit_code = EXIT_CONFIG


class InputDataError(OfferflowError, ValueError):
    """An input cannot be used as it is; the message names the file, the column and the values."""

    exit_code = EXIT_DATA


class InputFileError(InputDataError):
    """An input file cannot be read as a table; names the file and the reason."""


class StaleInputError(InputDataError):
    """A stage's inputs were made under other params or from other files, or never passed validation."""


class InfeasiblePlanError(OfferflowError, ValueError):
    """No plan satisfies the constraints; says why and, for budgets, the smallest feasible one."""

    exit_code = EXIT_INFEASIBLE

    def __init__(self, message: str, smallest_feasible_budget: float | None = None):
        super().__init__(message)
        self.smallest_feasible_budget = smallest_feasible_budget


class GateRefusedError(OfferflowError):
    """The publish gate found no policy worth publishing; nothing was published."""

    exit_code = EXIT_GATE


class TransientError(OfferflowError, RuntimeError):
    """A fault that may pass (a refused connection, a lock held too long): the flow retries it."""

    retryable = True


# Faults outside offerflow's own classes that a retry can fix.
TRANSIENT_BUILTINS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)


def exit_code_of(error: BaseException) -> int:
    """The documented exit code of any exception (1 for anything offerflow did not anticipate)."""
    return error.exit_code if isinstance(error, OfferflowError) else EXIT_ERROR


def is_retryable(error: BaseException) -> bool:
    """Whether running the same stage again may succeed: only for transient faults."""
    if isinstance(error, OfferflowError):
        return error.retryable
    return isinstance(error, TRANSIENT_BUILTINS)
