"""Interval and bound primitives against hand-computed values and independent references (scipy, Monte Carlo)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from offerflow.evaluation import bounds

SEED = 20261124


def test_cluster_robust_se_by_hand():
    influence = np.array([1.0, -2.0, 0.5, 0.5])
    codes, groups = bounds.cluster_codes(np.array(["a", "a", "b", "c"]), 4)
    assert groups == 3 and codes.tolist() == [0, 0, 1, 2]
    # cluster totals -1, 0.5, 0.5; sqrt(3/2 * 1.5) / 4 = 0.375
    assert bounds.cluster_robust_se(influence, codes, groups) == pytest.approx(0.375, rel=1e-12)


def test_se_without_clusters_is_the_standard_error_of_the_mean():
    values = np.random.default_rng(SEED).normal(size=50)
    codes, groups = bounds.cluster_codes(None, len(values))
    se = bounds.cluster_robust_se(values - values.mean(), codes, groups)
    assert se == pytest.approx(stats.sem(values), rel=1e-12)


def test_normal_interval_and_lower_bound_match_scipy():
    low, high = bounds.normal_interval(0.3, 0.02, 0.95)
    assert (low, high) == pytest.approx(stats.norm.interval(0.95, loc=0.3, scale=0.02), rel=1e-12)
    assert bounds.normal_lower_bound(0.3, 0.02, 0.975) == pytest.approx(low, rel=1e-12)


def test_empirical_bernstein_formula_by_hand():
    values = np.array([0.2, 0.5, 0.9, 0.4])
    variance = (0.3**2 + 0.0 + 0.4**2 + 0.1**2) / 3
    log_term = math.log(2 / 0.05)
    expected = 0.5 - math.sqrt(2 * variance * log_term / 4) - 7 * 1.0 * log_term / (3 * 3)
    assert bounds.empirical_bernstein_lower_bound(values, 0.0, 1.0, 0.95) == pytest.approx(expected, rel=1e-12)
    # the range enters the second term linearly
    wider = expected - 7 * 2.0 * log_term / 9
    assert bounds.empirical_bernstein_lower_bound(values, -1.0, 2.0, 0.95) == pytest.approx(wider, rel=1e-12)


def test_empirical_bernstein_refuses_terms_outside_the_declared_range():
    with pytest.raises(ValueError, match="outside the declared range"):
        bounds.empirical_bernstein_lower_bound(np.array([0.1, 1.5]), 0.0, 1.0, 0.95)
    with pytest.raises(ValueError, match="at least two"):
        bounds.empirical_bernstein_lower_bound(np.array([0.1]), 0.0, 1.0, 0.95)


def test_empirical_bernstein_holds_for_skewed_small_samples():
    """Finite-sample validity: Bernoulli(0.05) means of 40 draws, 2000 repetitions."""
    rng = np.random.default_rng(SEED)
    draws = (rng.random((2000, 40)) < 0.05).astype(float)
    below = [bounds.empirical_bernstein_lower_bound(row, 0.0, 1.0, 0.95) <= 0.05 for row in draws]
    assert np.mean(below) >= 0.95


def test_clustered_bernstein_with_equal_sizes_is_the_bound_on_cluster_means():
    terms = np.array([0.1, 0.3, 0.8, 0.6, 0.2, 0.2])
    codes, groups = bounds.cluster_codes(np.array([7, 7, 8, 8, 9, 9]), 6)
    means = np.array([0.2, 0.7, 0.2])
    expected = bounds.empirical_bernstein_lower_bound(means, 0.0, 1.0, 0.9)
    assert bounds.clustered_bernstein_lower_bound(terms, codes, groups, 0.0, 1.0, 0.9) == pytest.approx(expected, rel=1e-12)


def test_clustered_bernstein_with_unequal_sizes_by_hand():
    terms = np.array([0.5, 0.5, 1.0, 0.0])  # clusters sizes 2, 1, 1
    codes, groups = bounds.cluster_codes(np.array([1, 1, 2, 3]), 4)
    z = np.array([1.0, 1.0, 0.0]) / 2  # cluster totals / largest size
    # z_g in [0, 1] scaled by m_g / 2 stays in the hull of [0, 1] and [0, 0.5]; mean(z) * G * 2 / n = mean(terms)
    expected = bounds.empirical_bernstein_lower_bound(z, 0.0, 1.0, 0.95) * 3 * 2 / 4
    assert bounds.clustered_bernstein_lower_bound(terms, codes, groups, 0.0, 1.0, 0.95) == pytest.approx(expected, rel=1e-12)
    # a range below zero widens with the smaller clusters: [-1, 1] -> hull of [-1, 1] and [-0.5, 0.5] is [-1, 1]
    assert np.isfinite(bounds.clustered_bernstein_lower_bound(terms - 0.5, codes, groups, -1.0, 1.0, 0.95))


def test_bootstrap_resamples_whole_clusters():
    totals = np.column_stack([np.ones(5), np.eye(5)[:, 2], np.arange(5.0)])
    replicates = bounds.bootstrap_replicate_sums(totals, 4000, SEED)
    assert replicates.shape == (4000, 3)
    assert np.all(replicates[:, 0] == 5)  # each replicate draws G clusters
    # cluster 2's count is Binomial(5, 1/5): mean 1, variance 0.8
    assert replicates[:, 1].mean() == pytest.approx(1.0, abs=0.05)
    assert replicates[:, 1].var() == pytest.approx(0.8, abs=0.06)
    assert np.array_equal(replicates, bounds.bootstrap_replicate_sums(totals, 4000, SEED))
    assert not np.array_equal(replicates, bounds.bootstrap_replicate_sums(totals, 4000, SEED + 1))


def test_bootstrap_chunks_cover_every_replicate(monkeypatch):
    monkeypatch.setattr(bounds, "_BOOTSTRAP_CHUNK_CELLS", 10)  # 2 replicates per chunk for G = 5
    replicates = bounds.bootstrap_replicate_sums(np.ones((5, 1)), 7, SEED)
    assert replicates.shape == (7, 1) and np.all(replicates == 5)


def test_percentile_lower_bound():
    assert bounds.percentile_lower_bound(np.arange(101.0), 0.95) == pytest.approx(5.0)
