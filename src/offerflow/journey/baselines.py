"""Look-alike baselines trained on the journey log, each acting greedily at every campaign wave.

The models look one wave ahead, as one-step targeting does. A customer "responds" in a wave when they
buy at least once before the next wave.
- propensity: P(response | state); contacts the customers with the highest score;
- expected value: P(response | state) x value(state), value = the expected basket of a buyer;
- value uplift: (P(response | state, offer) - P(response | state, no offer)) x value(state), with the
  best offer per customer (an S-learner: one classifier with the action as a feature);
- random: every offer equally likely, contacting a share of customers.
Propensity and expected value rank customers but do not say which offer to send: they send the offer
with the highest response rate in the log (what a marketer copying the last campaign's winner does).
Each baseline contacts a customer when its score clears a threshold that is tuned to the budget
(`offerflow.journey.budget`); the one-step optimizer lives in `fqi` (greedy on one-wave heads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from offerflow.journey.config import ModelConfig
from offerflow.journey.journey_log import DecisionData
from offerflow.journey.models import TreeModel, every_action, fit_classifier, fit_regressor, with_action
from offerflow.journey.policies import one_hot

ScoreKind = Literal["propensity", "expected_value", "value_uplift"]


@dataclass
class ResponseModels:
    """Look-alike models fitted on all waves' rows of the log."""

    response: TreeModel  # P(response | state)
    conditional: TreeModel  # P(response | state, action)
    basket: TreeModel  # expected revenue per purchase given the state
    campaign_offer: int  # the offer with the highest logged response rate
    actions: int


def fit_response_models(data: DecisionData, actions: int, model: ModelConfig, seed: int) -> ResponseModels:
    features = data.features.reshape(-1, data.features.shape[-1])
    logged = data.actions.reshape(-1)
    responded = (data.purchases.reshape(-1) > 0).astype(int)
    buyers = data.purchases.reshape(-1) > 0
    per_purchase = data.revenue.reshape(-1)[buyers] / data.purchases.reshape(-1)[buyers]
    rates = [responded[logged == a].mean() if (logged == a).any() else -1.0 for a in range(1, actions)]
    return ResponseModels(
        response=fit_classifier(model, seed, features, responded, categorical_last=False),
        conditional=fit_classifier(model, seed + 1, with_action(features, logged), responded, categorical_last=True),
        basket=fit_regressor(model, seed + 2, features[buyers], per_purchase, categorical_last=False),
        campaign_offer=1 + int(np.argmax(rates)),
        actions=actions,
    )


@dataclass
class ScorePolicy:
    """Contact (with the baseline's offer) every customer whose score is at least the threshold."""

    models: ResponseModels
    kind: ScoreKind
    threshold: float
    name: str

    def scores(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score and chosen offer per customer."""
        n = len(features)
        if self.kind == "value_uplift":
            p = self.models.conditional.predict(every_action(features, self.models.actions))
            p = p.reshape(n, self.models.actions)
            uplift = (p[:, 1:] - p[:, :1]) * self.models.basket.predict(features)[:, None]
            best = np.argmax(uplift, axis=1)
            return uplift[np.arange(n), best], best + 1
        score = self.models.response.predict(features)
        if self.kind == "expected_value":
            score = score * self.models.basket.predict(features)
        return score, np.full(n, self.models.campaign_offer)

    def probabilities(self, wave: int, features: np.ndarray) -> np.ndarray:
        score, offer = self.scores(features)
        return one_hot(np.where(score >= self.threshold, offer, 0), self.models.actions)

    def score_range(self, features: np.ndarray) -> tuple[float, float]:
        """Thresholds worth searching: from contacting everyone with a positive score to contacting nobody."""
        score, _ = self.scores(features)
        low = 0.0 if self.kind == "value_uplift" else float(score.min())
        return low, float(np.nextafter(score.max(), np.inf))
