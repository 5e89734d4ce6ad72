"""The observable state of a customer: features plus a summary of past actions and purchases.

The journey's state is the customer's feature vector and the whole record of what was sent and what
was bought, so the number of states is effectively infinite. Policies and models see a fixed-length
summary of that record, built here by one incremental update used both while simulating and while
replaying a logged journey, so a state means exactly the same in both.

The summary is generic (it does not know the simulator's mechanism): per offer its count and the
steps since it was last sent; for every ordered pair of offers whether the first was sent before a
later second one; a recency-weighted contact count; purchases so far, steps since the last purchase
and purchases in the last campaign wave.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def state_feature_names(static: list[str], offers: list[str]) -> list[str]:
    """Column names of `HistoryTracker.features`, in order."""
    pairs = [f"{first}_then_{second}" for first in offers for second in offers if first != second]
    return [
        *static,
        "step",
        *(f"count_{offer}" for offer in offers),
        *(f"since_{offer}" for offer in offers),
        *pairs,
        "recent_contacts",
        "purchases",
        "since_purchase",
        "recent_purchases",
    ]


@dataclass
class HistoryTracker:
    """Running summary of n customers' journeys; `record` one step at a time for all customers at once."""

    static: np.ndarray  # (n, p) customer features
    offers: int  # K; actions are 0 (no action) .. K
    horizon: int
    contact_decay: float
    window: int  # purchases counted in the last `window` steps
    step: int = 0
    count: np.ndarray = field(init=False)
    last: np.ndarray = field(init=False)
    before: np.ndarray = field(init=False)
    contacts: np.ndarray = field(init=False)
    purchases: np.ndarray = field(init=False)
    last_purchase: np.ndarray = field(init=False)
    recent: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n, k = len(self.static), self.offers
        self.count = np.zeros((n, k), dtype=np.int32)
        self.last = np.full((n, k), -1, dtype=np.int32)
        self.before = np.zeros((n, k, k), dtype=bool)  # before[i, j, l]: offer j sent before a later offer l
        self.contacts = np.zeros(n)
        self.purchases = np.zeros(n, dtype=np.int32)
        self.last_purchase = np.full(n, -1, dtype=np.int32)
        self.recent = np.zeros((n, self.window), dtype=np.int8)  # ring buffer of the last purchases

    def record(self, action: np.ndarray, purchase: np.ndarray) -> None:
        """Append one step: the action sent (0 = none) and whether each customer bought."""
        rows = np.flatnonzero(action > 0)
        offer = action[rows] - 1
        sent_before = self.count[rows] > 0  # (m, K): offers already sent to these customers
        self.before[rows, :, offer] |= sent_before
        self.count[rows, offer] += 1
        self.last[rows, offer] = self.step
        self.contacts = self.contact_decay * (self.contacts + (action > 0))
        bought = purchase > 0
        self.purchases += bought
        self.last_purchase[bought] = self.step
        self.recent[:, self.step % self.window] = bought
        self.step += 1

    def features(self) -> np.ndarray:
        """(n, p) state features before acting at the current step (see `state_feature_names`)."""
        n, k, t = len(self.static), self.offers, self.step
        never = float(self.horizon)  # longer ago than anything that can have happened
        since = np.where(self.last >= 0, t - self.last, never)
        pair_mask = ~np.eye(k, dtype=bool)
        pairs = self.before[:, pair_mask]  # (n, K(K-1)) in (first, second) row-major order
        since_purchase = np.where(self.last_purchase >= 0, t - self.last_purchase, never)
        return np.column_stack(
            [
                self.static,
                np.full(n, t, dtype=float),
                self.count,
                since,
                pairs,
                self.contacts,
                self.purchases,
                since_purchase,
                self.recent.sum(axis=1),
            ]
        ).astype(float)


def replay_decision_features(
    static: np.ndarray,
    actions: np.ndarray,
    purchases: np.ndarray,
    decision_steps: list[int],
    offers: int,
    horizon: int,
    contact_decay: float,
    window: int,
) -> np.ndarray:
    """State features at each decision step from logged (n, steps) actions and purchases: (D, n, p).

    Decision steps beyond the logged steps are not returned, so a partial journey (up to now) gives the
    states of the decisions already past plus the one at `actions.shape[1]` if that is a decision step.
    """
    tracker = HistoryTracker(static, offers, horizon, contact_decay, window)
    logged = actions.shape[1]
    states = []
    for step in range(logged + 1):
        if step in decision_steps:
            states.append(tracker.features())
        if step < logged:
            tracker.record(actions[:, step], purchases[:, step])
    return np.stack(states) if states else np.zeros((0, len(static), 0))
