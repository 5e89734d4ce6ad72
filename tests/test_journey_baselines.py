"""Look-alike baselines: what each scores, which offer it sends, how the threshold spends the budget."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from test_journey_support import SMALL_MODEL, small_study

from offerflow.journey.baselines import ScorePolicy, fit_response_models
from offerflow.journey.models import every_action
from offerflow.journey.study import split_log


@lru_cache(maxsize=None)
def fitted():
    config, log, models, evaluation = small_study()
    train, held_out = split_log(log, config)
    return config, train, held_out, fit_response_models(train, 4, SMALL_MODEL, 3), evaluation


def test_campaign_offer_is_the_offer_with_the_best_logged_response_rate() -> None:
    _, train, _, models, _ = fitted()
    logged, responded = train.actions.ravel(), (train.purchases.ravel() > 0)
    rates = [responded[logged == a].mean() for a in (1, 2, 3)]
    assert models.campaign_offer == 1 + int(np.argmax(rates))


def test_scores_are_the_documented_products_and_the_threshold_decides_contact() -> None:
    _, _, held_out, models, _ = fitted()
    features = held_out.features[2]
    n = len(features)
    value = models.basket.predict(features)
    p = models.conditional.predict(every_action(features, 4)).reshape(n, 4)
    uplift = (p[:, 1:] - p[:, :1]) * value[:, None]
    score, offer = ScorePolicy(models, "value_uplift", 0.0, "value_uplift").scores(features)
    assert np.allclose(score, uplift.max(axis=1)) and np.array_equal(offer, 1 + uplift.argmax(axis=1))
    ev_score, ev_offer = ScorePolicy(models, "expected_value", 0.0, "expected_value").scores(features)
    assert np.allclose(ev_score, models.response.predict(features) * value)
    assert (ev_offer == models.campaign_offer).all()
    for kind in ("propensity", "expected_value", "value_uplift"):
        policy = ScorePolicy(models, kind, 0.0, kind)
        low, high = policy.score_range(features)
        nobody = ScorePolicy(models, kind, high, kind).probabilities(2, features)
        assert (nobody[:, 0] == 1).all()
        everybody = ScorePolicy(models, kind, low, kind).probabilities(2, features)
        expected = ScorePolicy(models, kind, low, kind).scores(features)[0] >= low
        assert np.array_equal(everybody[:, 0] == 0, expected)
        assert np.allclose(everybody.sum(axis=1), 1.0)


def test_higher_thresholds_contact_fewer_customers() -> None:
    _, _, held_out, models, _ = fitted()
    features = held_out.features[1]
    contacts = [(ScorePolicy(models, "expected_value", tau, "ev").probabilities(1, features)[:, 0] == 0).sum()
                for tau in np.linspace(0.0, 20.0, 9)]
    assert all(a >= b for a, b in zip(contacts, contacts[1:])) and contacts[0] > contacts[-1]


def test_tuned_baselines_meet_the_budget_in_the_testbed() -> None:
    config, _, _, _, evaluation = fitted()
    per_policy = evaluation.policies.set_index("policy")
    budget = config.budget.per_customer
    for name in ("random", "propensity", "expected_value", "value_uplift", "one_step"):
        assert per_policy.loc[name, "tuning_spend"] <= budget
        assert per_policy.loc[name, "true_spend"] <= budget * 1.05  # other customers than the tuning ones
