"""The simulator reproduces the true table: frequencies converge to the known probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conftest import ROOT, SEED
from offerflow.simulate import simulate_history

ARMS = ["dm1", "dm2", "dm3"]
SEGMENTS = ["age_cat", "freq_cat"]


def load_example():
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    return customers, truth


def test_conversion_frequencies_match_the_true_table():
    customers, truth = load_example()
    history = simulate_history(customers, truth, ARMS, SEGMENTS, campaigns=40, seed=SEED)
    assert len(history) == 40 * len(customers)
    joined = history.merge(customers, on="customer_id")
    observed = joined.groupby(SEGMENTS + ["arm"])["converted"].agg(["mean", "size"]).reset_index()
    long_truth = truth.melt(id_vars=SEGMENTS, value_vars=[f"prob_{a}" for a in ARMS], var_name="arm", value_name="p")
    long_truth["arm"] = long_truth["arm"].str.removeprefix("prob_")
    check = observed.merge(long_truth, on=SEGMENTS + ["arm"])
    assert len(check) == 16 * 3
    # every cell within 4 binomial standard errors; overall within a much tighter band
    se = np.sqrt(check["p"] * (1 - check["p"]) / check["size"])
    assert ((check["mean"] - check["p"]).abs() <= 4 * se + 1e-9).all()
    assert abs(history["converted"].mean() - history["true_prob"].mean()) < 0.005


def test_arms_are_randomized_evenly_and_true_prob_is_the_table_value():
    customers, truth = load_example()
    history = simulate_history(customers, truth, ARMS, SEGMENTS, campaigns=4, seed=SEED)
    shares = history["arm"].value_counts(normalize=True)
    assert set(shares.index) == set(ARMS)
    assert (shares - 1 / 3).abs().max() < 0.01
    row = history.merge(customers, on="customer_id").merge(truth, on=SEGMENTS).iloc[0]
    assert row["true_prob"] == row[f"prob_{row['arm']}"]


def test_same_seed_same_history_other_seed_differs():
    customers, truth = load_example()
    a = simulate_history(customers, truth, ARMS, SEGMENTS, campaigns=2, seed=SEED)
    b = simulate_history(customers, truth, ARMS, SEGMENTS, campaigns=2, seed=SEED)
    c = simulate_history(customers, truth, ARMS, SEGMENTS, campaigns=2, seed=SEED + 1)
    pd.testing.assert_frame_equal(a, b)
    assert not a["arm"].equals(c["arm"])


def test_segment_missing_from_truth_is_an_error():
    customers, truth = load_example()
    import pytest

    with pytest.raises(ValueError, match="missing from the true probability table"):
        simulate_history(customers, truth.iloc[1:], ARMS, SEGMENTS, campaigns=1, seed=SEED)
