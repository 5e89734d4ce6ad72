"""Drift of the customers to score against the history's customers: the population stability index
against hand-computed values, and warn versus fail."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from offerflow.config import load_params
from offerflow.validation.history_checks import feature_drift, population_stability


def test_stability_of_categories_matches_hand_computation() -> None:
    reference = pd.Series(["a"] * 50 + ["b"] * 50)
    current = pd.Series(["a"] * 80 + ["b"] * 20)
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)  # 0.4159
    assert population_stability(reference, current) == pytest.approx(expected, abs=1e-12)
    assert population_stability(reference, reference.sample(frac=1, random_state=1)) == pytest.approx(0.0, abs=1e-12)


def test_stability_of_numbers_uses_the_reference_deciles() -> None:
    rng = np.random.default_rng(3)
    reference = pd.Series(rng.normal(size=20_000))
    same = pd.Series(rng.normal(size=20_000))
    shifted = pd.Series(rng.normal(loc=1.0, size=20_000))
    assert population_stability(reference, same) < 0.01
    # every decile of N(0,1) against N(1,1): the index is large (about 1.0 for a one-sd shift)
    assert population_stability(reference, shifted) > 0.5


def _frames(shift: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    history = pd.DataFrame({"customer_id": range(400), "age_cat": ["young", "old"] * 200,
                            "freq_cat": ["1", "2", "3", "4"] * 100})
    ages = ["young"] * 360 + ["old"] * 40 if shift else ["young", "old"] * 200
    customers = pd.DataFrame({"customer_id": range(1000, 1400), "age_cat": ages, "freq_cat": ["1", "2", "3", "4"] * 100})
    return history, customers


@pytest.mark.parametrize("action", ["warn", "fail"])
def test_a_drifted_batch_warns_or_fails_naming_the_feature(action: str, caplog: pytest.LogCaptureFixture) -> None:
    params = load_params(ROOT / "params.yaml", {"validate.drift.action": action}, check_files=False)
    history, customers = _frames(shift=True)
    check = feature_drift(history, customers, params, "data/new_batch.csv")
    if action == "fail":
        assert [f.column for f in check.failures] == ["age_cat"]
        assert "age_cat" in check.failures[0].detail and "0.25" in check.failures[0].detail
    else:
        assert not check.failures and "warned" in check.skipped and "age_cat" in check.skipped
        assert any("age_cat" in record.getMessage() for record in caplog.records)
    calm = feature_drift(*_frames(shift=False), params, "data/new_batch.csv")
    assert not calm.failures and "no feature above" in calm.skipped


def test_repeats_by_chance_match_a_simulation_and_an_appended_file_exceeds_them() -> None:
    from offerflow.validation.history_checks import chance_repeats, duplicate_rows

    rng = np.random.default_rng(11)
    n, campaigns = 3000, 10
    log = pd.DataFrame({"customer_id": np.repeat(np.arange(n), campaigns), "region": np.repeat(rng.choice(["N", "S"], n), campaigns),
                        "arm": rng.choice(["none", "a", "b"], n * campaigns), "bought": (rng.random(n * campaigns) < 0.2).astype(int)})
    observed = int(log.duplicated().sum())
    assert chance_repeats(log, "customer_id") == pytest.approx(observed, rel=0.01)  # 10 rows over 6 (arm, bought) pairs
    params = load_params(ROOT / "params.yaml", {"data.campaign_column": None, "data.customer_id": "customer_id",
                                                "data.arm_column": "arm", "data.outcome_column": "bought"}, check_files=False)
    assert not duplicate_rows(log, params, "log.csv", 5).failures  # ten campaigns repeat pairs by chance
    once = log.drop_duplicates("customer_id")
    appended = pd.concat([once, once.iloc[:200]])  # one campaign, 200 rows exported twice
    failure = duplicate_rows(appended, params, "log.csv", 5).failures[0]
    assert failure.unexpected_count == 200 and "chance alone gives about 0" in failure.detail
