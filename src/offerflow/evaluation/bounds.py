"""Intervals and lower bounds for a mean of per-row terms, honest when rows come in clusters.

Off-policy estimates are means (or ratios of means) of per-row terms, and the same customer may
appear in several campaigns, so rows of one customer are not independent. Everything here treats
the cluster (customer) as the independent unit:

- the cluster-robust standard error sqrt(G/(G-1) * sum_g (sum_{i in g} psi_i)^2) / n of an
  influence function psi (with one row per cluster it is the usual sd/sqrt(n));
- the empirical-Bernstein lower bound of Maurer & Pontil (2009, Theorem 4): for independent
  Z_1..Z_n with values in a known [low, high], with probability at least 1 - delta
      E[mean Z] >= mean Z - sqrt(2 V ln(2/delta) / n) - 7 (high - low) ln(2/delta) / (3 (n - 1)),
  V the unbiased sample variance. It holds for every n >= 2, not only asymptotically, but only if
  [low, high] really contains every possible term, so callers derive the range from known bounds of
  the rewards and importance weights, never from the data. With clusters it is applied to the
  cluster totals divided by the largest cluster size, then scaled back to a per-row mean. Those are
  independent but, for clusters of unequal size, not identically distributed; the bound still holds
  for the mean of their means, because its two ingredients do (Bernstein's inequality with the
  average variance, and the sample variance, whose expectation is at least that average variance);

- the percentile bootstrap, resampling clusters with replacement (seeded): replicate sums of any
  number of per-cluster statistics come from one count matrix, so every estimate in one call sees the
  same resamples (common random numbers, which keeps differences between policies consistent).

Hand-written with numpy/scipy: scipy.stats.bootstrap resamples rows, not clusters, and recomputes a
Python statistic per replicate, which is far slower than one count-matrix product here.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import ndtri
from threadpoolctl import threadpool_limits

# Bootstrap count matrices are drawn in chunks of about this many cells to bound memory.
_BOOTSTRAP_CHUNK_CELLS = 2_000_000


def cluster_codes(clusters: np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    """Integer code per row (clusters in order of first appearance) and the number of clusters.

    Without cluster ids every row is its own cluster.
    """
    if clusters is None:
        return np.arange(n), n
    codes, uniques = pd.factorize(np.asarray(clusters), sort=False)
    if (codes < 0).any():
        raise ValueError("cluster ids must not be missing")
    return codes.astype(np.int64), len(uniques)


def cluster_totals(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per-cluster sums of a vector (n) or of the columns of a matrix (n x m)."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        return np.bincount(codes, weights=values, minlength=n_clusters)
    return np.column_stack([np.bincount(codes, weights=column, minlength=n_clusters) for column in values.T])


def cluster_robust_se(influence: np.ndarray, codes: np.ndarray, n_clusters: int) -> float:
    """Standard error of a mean whose centred influence terms are `influence` (one per row)."""
    if n_clusters < 2:
        raise ValueError("a standard error needs at least two clusters")
    totals = cluster_totals(influence, codes, n_clusters)
    n = len(influence)
    return float(math.sqrt(n_clusters / (n_clusters - 1) * float(np.sum(totals**2))) / n)


def normal_interval(estimate: float, se: float, level: float) -> tuple[float, float]:
    """Two-sided normal interval estimate +- z_{(1+level)/2} se."""
    z = float(ndtri(0.5 + level / 2))
    return estimate - z * se, estimate + z * se


def normal_lower_bound(estimate: float, se: float, confidence: float) -> float:
    """One-sided normal lower bound estimate - z_confidence se."""
    return estimate - float(ndtri(confidence)) * se


def empirical_bernstein_lower_bound(values: np.ndarray, low: float, high: float, confidence: float) -> float:
    """Maurer & Pontil (2009, Thm 4) lower bound of the mean of independent terms in [low, high].

    Raises ValueError when a term lies outside the declared range: the bound would then be invalid.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        raise ValueError("the empirical-Bernstein bound needs at least two independent terms")
    if not low <= high:
        raise ValueError(f"empty range [{low}, {high}]")
    slack = 1e-9 * max(1.0, abs(low), abs(high))
    if values.min() < low - slack or values.max() > high + slack:
        raise ValueError(
            f"terms in [{values.min():.6g}, {values.max():.6g}] fall outside the declared range [{low:.6g}, {high:.6g}]"
        )
    log_term = math.log(2.0 / (1.0 - confidence))
    variance = float(values.var(ddof=1))
    return float(values.mean() - math.sqrt(2.0 * variance * log_term / n) - 7.0 * (high - low) * log_term / (3.0 * (n - 1)))


def clustered_bernstein_lower_bound(
    terms: np.ndarray, codes: np.ndarray, n_clusters: int, low: float, high: float, confidence: float
) -> float:
    """Lower bound of the expected per-row mean of `terms` (each in [low, high]) with clustered rows.

    Z_g = (sum of cluster g's terms) / m_max lies in [low, high] scaled by m_g / m_max, so in the hull
    of [low, high] and m_min/m_max [low, high]; mean(Z) = mean(terms) * n / (G m_max).
    """
    n = len(terms)
    sizes = np.bincount(codes, minlength=n_clusters)
    largest, smallest = int(sizes.max()), int(sizes.min())
    if largest == 1:
        return empirical_bernstein_lower_bound(terms, low, high, confidence)
    ratio = smallest / largest
    z = cluster_totals(terms, codes, n_clusters) / largest
    bound = empirical_bernstein_lower_bound(z, min(low, ratio * low), max(high, ratio * high), confidence)
    return bound * n_clusters * largest / n


def bootstrap_replicate_sums(totals: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """samples x m sums of the columns of `totals` (G x m per-cluster sums) over resampled clusters.

    Each replicate draws G clusters with replacement; its sums are counts @ totals.
    """
    totals = np.asarray(totals, dtype=float)
    n_clusters = totals.shape[0]
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOTSTRAP_CHUNK_CELLS // n_clusters)
    replicates = [np.empty((0, totals.shape[1]))]
    # one BLAS thread: these products are small, and idle BLAS threads spin on a busy machine (2.5x the CPU)
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, samples, chunk):
            rows = min(chunk, samples - start)
            drawn = rng.integers(0, n_clusters, size=(rows, n_clusters), dtype=np.int64)
            flat = (drawn + (np.arange(rows) * n_clusters)[:, None]).ravel()
            counts = np.bincount(flat, minlength=rows * n_clusters).reshape(rows, n_clusters)
            replicates.append(counts.astype(float) @ totals)
    return np.vstack(replicates)


def percentile_lower_bound(replicates: np.ndarray, confidence: float) -> float:
    """The (1 - confidence) quantile of bootstrap replicates of an estimate."""
    return float(np.quantile(np.asarray(replicates, dtype=float), 1.0 - confidence))
