"""Policies: at each campaign wave, a probability for every action given the customers' states.

One interface serves simulation (draw an action), off-policy evaluation (the probability of the
logged action) and publishing (the action per customer now). Deterministic policies return one-hot
rows. Action 0 is no action; 1..K are the offers in params.yaml order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np


class Policy(Protocol):
    name: str

    def probabilities(self, wave: int, features: np.ndarray) -> np.ndarray:
        """(n, A) probability of each action for n customers with (n, p) state features at `wave`."""
        ...


def one_hot(choice: np.ndarray, actions: int) -> np.ndarray:
    probs = np.zeros((len(choice), actions))
    probs[np.arange(len(choice)), choice] = 1.0
    return probs


def draw_actions(probs: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw with pre-drawn uniforms: every policy consumes the same random numbers."""
    cumulative = np.cumsum(probs, axis=1)
    cumulative[:, -1] = 1.0 + 1e-12  # rounding never leaves a customer without an action
    return (uniforms[:, None] >= cumulative).sum(axis=1).astype(np.int64)


def greedy_choice(scores: np.ndarray) -> np.ndarray:
    """Index of the best score per row; ties go to the lowest index (no action before any offer)."""
    return np.argmax(scores, axis=1)


@dataclass(frozen=True)
class BehaviourPolicy:
    """Epsilon-random over a win-back rule: inactive customers get `rule_action`, the others nothing.

    With probability 1 - epsilon the rule decides, otherwise an action is drawn uniformly; the
    probability of every action is therefore known and is written to the log.
    """

    actions: int
    epsilon: float
    rule_action: int
    inactive_steps: int
    since_purchase_column: int
    name: str = "behaviour"

    def probabilities(self, wave: int, features: np.ndarray) -> np.ndarray:
        inactive = features[:, self.since_purchase_column] > self.inactive_steps
        rule = np.where(inactive, self.rule_action, 0)
        return (1 - self.epsilon) * one_hot(rule, self.actions) + self.epsilon / self.actions


@dataclass(frozen=True)
class RandomPolicy:
    """Each offer with probability contact/K, nothing otherwise (uniform over all actions at contact = K/(K+1))."""

    actions: int
    contact: float
    name: str = "random"

    def probabilities(self, wave: int, features: np.ndarray) -> np.ndarray:
        probs = np.full((len(features), self.actions), self.contact / (self.actions - 1))
        probs[:, 0] = 1.0 - self.contact
        return probs


@dataclass(frozen=True)
class SequencePolicy:
    """The same action for everyone at each wave (e.g. ad, then large discount, then nothing)."""

    sequence: Sequence[int]
    actions: int
    name: str = "sequence"

    def probabilities(self, wave: int, features: np.ndarray) -> np.ndarray:
        action = self.sequence[wave] if wave < len(self.sequence) else 0
        return one_hot(np.full(len(features), action), self.actions)
