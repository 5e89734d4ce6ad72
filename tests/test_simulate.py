"""The simulator reproduces the true table: frequencies converge to the known probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conftest import ROOT, SEED
from offerflow.simulation import simulate_history

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


# --- richer simulator: customer-level heterogeneity and targeted (non-randomized) history -------------

from offerflow.simulation import (  # noqa: E402
    add_customer_features,
    customer_true_probabilities,
    targeted_propensities,
)
from offerflow.schema import true_prob_column  # noqa: E402


def test_heterogeneous_probabilities_keep_every_segment_mean_and_spread_inside_it():
    customers, truth = load_example()
    customers = add_customer_features(customers, seed=SEED)
    matrix = customer_true_probabilities(
        customers, truth, ARMS, SEGMENTS, heterogeneity=1.0, features=["recency_days", "past_spend"]
    )
    frame = customers[SEGMENTS].assign(**{a: matrix[:, j] for j, a in enumerate(ARMS)})
    means = frame.groupby(SEGMENTS)[ARMS].mean().reset_index().merge(truth, on=SEGMENTS)
    for arm in ARMS:
        np.testing.assert_allclose(means[arm], means[f"prob_{arm}"], atol=1e-9)
    spread = frame.groupby(SEGMENTS)[ARMS].std()
    assert (spread > 0.01).all().all()  # customers in a segment really differ
    assert ((matrix > 0) & (matrix < 1)).all()
    # on the logit scale arm k of K moves (k+1)/K as much: dm3 three times dm1, so effects vary too
    logits = np.log(matrix / (1 - matrix))
    frame_logit = customers[SEGMENTS].assign(**{a: logits[:, j] for j, a in enumerate(ARMS)})
    logit_spread = frame_logit.groupby(SEGMENTS)[ARMS].std()
    np.testing.assert_allclose(logit_spread["dm3"], 3 * logit_spread["dm1"], rtol=1e-6)
    np.testing.assert_allclose(logit_spread["dm2"], 2 * logit_spread["dm1"], rtol=1e-6)


def test_heterogeneous_history_stores_each_customers_true_probability():
    customers, truth = load_example()
    customers = add_customer_features(customers, seed=SEED)
    history = simulate_history(
        customers, truth, ARMS, SEGMENTS, campaigns=2, seed=SEED, heterogeneity=0.8, heterogeneity_features=["past_spend"]
    )
    per_arm = history[[true_prob_column(a) for a in ARMS]].to_numpy()
    chosen = per_arm[np.arange(len(history)), history["arm"].map({a: j for j, a in enumerate(ARMS)}).to_numpy()]
    np.testing.assert_array_equal(history["true_prob"].to_numpy(), chosen)
    assert history.groupby("customer_id")[true_prob_column("dm3")].nunique().max() == 1  # fixed per customer
    assert history[true_prob_column("dm3")].nunique() > 1000


def test_targeted_history_logs_the_policy_and_skews_arms_to_frequent_customers():
    customers, truth = load_example()
    history = simulate_history(
        customers, truth, ARMS, SEGMENTS, campaigns=6, seed=SEED,
        assignment="targeted", targeting_column="freq_cat", targeting_strength=2.0,
    ).merge(customers, on="customer_id")
    dm3_share = history.assign(dm3=history["arm"] == "dm3").groupby("freq_cat")["dm3"].mean()
    assert dm3_share["freq3~"] > 2 * dm3_share["freq0"]
    # logged propensity = the policy's probability of the arm received, and the draws follow it
    rank = {"freq0": 0, "freq1": 1, "freq2": 2, "freq3~": 3}
    score = customers["freq_cat"].map(rank).to_numpy(dtype=float)
    policy = targeted_propensities(score, 3, 2.0)
    expected = pd.DataFrame(policy, columns=ARMS).assign(customer_id=customers["customer_id"].to_numpy())
    merged = history.merge(expected, on="customer_id")
    logged = merged.apply(lambda row: row[row["arm"]], axis=1)
    np.testing.assert_allclose(merged["propensity"], logged)
    for freq, rows in merged.groupby("freq_cat"):
        observed = rows["arm"].value_counts(normalize=True).reindex(ARMS)
        assert np.abs(observed.to_numpy() - rows[ARMS].mean().to_numpy()).max() < 0.03, freq


def test_targeted_history_without_logging_has_no_propensity_column_and_bad_column_is_an_error():
    customers, truth = load_example()
    history = simulate_history(
        customers, truth, ARMS, SEGMENTS, 1, SEED, assignment="targeted", targeting_column="freq_cat", log_propensity=False
    )
    assert "propensity" not in history.columns
    import pytest

    with pytest.raises(ValueError, match="targeted assignment needs a customer column"):
        simulate_history(customers, truth, ARMS, SEGMENTS, 1, SEED, assignment="targeted", targeting_column="nope")
    with pytest.raises(ValueError, match="heterogeneity features must be numeric"):
        customer_true_probabilities(customers, truth, ARMS, SEGMENTS, heterogeneity=1.0, features=["age_cat"])
