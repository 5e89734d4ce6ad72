"""Off-policy evaluation of sequential policies from logged trajectories, with confidence bounds.

Arrays in, estimates out: n independent trajectories (customers) of D decisions each, with the reward
collected after each decision (until the next one), the behaviour policy's probability of the logged
action and the target policy's probability of the same action. Every estimator here averages
independent per-trajectory terms, so the customers (not the decisions) are the unit of inference.

- per-decision importance sampling (PDIS): sum_k w_k r_k with w_k = prod_{j<=k} pi_j / mu_j. The reward
  after decision k only depends on the actions up to k, so weighting it by the ratios up to k (not the
  whole trajectory's) is unbiased and has less variance. With a deterministic target the weight is zero
  from the first decision that differs from the target's. No action is ever invented: the weights use
  the logged actions and the logged behaviour probabilities only.
- weighted PDIS: each decision's weights normalised by their mean over customers (consistent, biased
  for small n, far less variance).
- doubly robust (Jiang & Li 2016; Thomas & Brunskill 2016): sum_k w_k (r_k - Q(s_k, a_k)) +
  w_{k-1} V(s_k), with V(s) = sum_a pi(a|s) Q(s, a) from a model fitted on other data. Unbiased for any
  model; the better the model, the smaller the variance.

Bounds: normal intervals for the unbiased means, percentile bootstrap over customers for weighted PDIS
and for the doubly robust lower bound, and for PDIS the high-confidence lower bound of Thomas, Theocharous
& Ghavamzadeh (2015): rewards shifted to be non-negative, per-customer terms clipped at a level chosen on
a small split of the customers, Maurer & Pontil's empirical Bernstein bound on the rest. Clipping only
lowers a non-negative mean, so that bound holds with probability >= 1 - delta for any sample size.

Written here rather than imported: Open Bandit Pipeline (obp) covers one-step bandit logs only, and the
deep offline-RL libraries (d3rlpy) bring torch for what is a few lines of numpy on (n, D) arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class OffPolicyEstimate:
    estimator: str
    estimate: float
    low: float  # two-sided interval at the requested level
    high: float
    lower_bound: float  # holds with probability >= 1 - delta (exactly for PDIS, approximately otherwise)
    bound_method: str


def cumulative_weights(target_probability: np.ndarray, behaviour_probability: np.ndarray) -> np.ndarray:
    """(n, D) products of pi/mu up to and including each decision."""
    if target_probability.shape != behaviour_probability.shape:
        raise ValueError(f"target {target_probability.shape} and behaviour {behaviour_probability.shape} shapes differ")
    if (behaviour_probability <= 0).any() or (behaviour_probability > 1 + 1e-9).any():
        raise ValueError("behaviour probabilities must lie in (0, 1]: a logged action had probability 0")
    return np.cumprod(target_probability / behaviour_probability, axis=1)


def per_decision_terms(rewards: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-trajectory PDIS terms sum_k w_k r_k; their mean is the PDIS estimate."""
    return (weights * rewards).sum(axis=1)


def weighted_per_decision(rewards: np.ndarray, weights: np.ndarray) -> float:
    """sum_k (sum_i w_ik r_ik) / (sum_i w_ik); a decision no customer supports contributes 0."""
    return float(_weighted_from_sums((weights * rewards).sum(axis=0), weights.sum(axis=0)))


def _weighted_from_sums(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, 0.0).sum(axis=-1)


def doubly_robust_terms(
    rewards: np.ndarray, weights: np.ndarray, q_logged: np.ndarray, v_target: np.ndarray
) -> np.ndarray:
    """Per-trajectory DR terms: sum_k w_k (r_k - Q_k(s_k, a_k)) + w_{k-1} V_k(s_k), w_{-1} = 1."""
    previous = np.column_stack([np.ones(len(weights)), weights[:, :-1]])
    return (weights * (rewards - q_logged) + previous * v_target).sum(axis=1)


def normal_interval(terms: np.ndarray, level: float) -> tuple[float, float, float]:
    """Mean and a two-sided normal interval of the mean of independent terms."""
    mean = float(terms.mean())
    half = stats.norm.ppf(0.5 + level / 2) * float(terms.std(ddof=1)) / np.sqrt(len(terms))
    return mean, mean - half, mean + half


def bootstrap_counts(n: int, samples: int, seed: int) -> np.ndarray:
    """(samples, n) how often each customer is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    return np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(samples)]).astype(float)


def empirical_bernstein_lower_bound(values: np.ndarray, delta: float) -> float:
    """Maurer & Pontil (2009, Thm 4) one-sided bound on the mean of independent values in [0, 1]."""
    n = len(values)
    if n < 2:
        return 0.0
    log_term = np.log(2.0 / delta)
    variance = float(values.var(ddof=1))
    return float(values.mean() - np.sqrt(2.0 * variance * log_term / n) - 7.0 * log_term / (3.0 * (n - 1)))


def clipped_lower_bound(terms: np.ndarray, delta: float, split_share: float, seed: int) -> tuple[float, float]:
    """High-confidence lower bound on the mean of non-negative terms (Thomas et al. 2015); returns (bound, clip).

    The clipping level is chosen on a random `split_share` of the terms to maximise the bound the rest would
    give; the bound is then computed on the rest only, so the choice cannot bias it.
    """
    if (terms < 0).any():
        raise ValueError("the clipped bound needs non-negative terms (shift rewards by their floor first)")
    order = np.random.default_rng(seed).permutation(len(terms))
    cut = max(2, int(round(split_share * len(terms))))
    choose, rest = terms[order[:cut]], terms[order[cut:]]
    if len(rest) < 2:
        return 0.0, float("nan")
    candidates = np.unique(np.quantile(choose, np.linspace(0.5, 1.0, 26)))
    candidates = candidates[candidates > 0]
    if len(candidates) == 0:
        return 0.0, float("nan")

    def predicted(clip: float) -> float:
        scaled = np.minimum(choose, clip) / clip
        log_term = np.log(2.0 / delta)
        m = len(rest)
        return clip * (scaled.mean() - np.sqrt(2.0 * scaled.var(ddof=1) * log_term / m) - 7.0 * log_term / (3.0 * (m - 1)))

    clip = float(max(candidates, key=predicted))
    bound = clip * empirical_bernstein_lower_bound(np.minimum(rest, clip) / clip, delta)
    return max(bound, 0.0), clip


def estimate_policy_value(
    rewards: np.ndarray,
    target_probability: np.ndarray,
    behaviour_probability: np.ndarray,
    q_logged: np.ndarray | None,
    v_target: np.ndarray | None,
    reward_floor: float,
    level: float = 0.95,
    delta: float = 0.05,
    bootstrap_samples: int = 400,
    split_share: float = 0.05,
    seed: int = 0,
) -> list[OffPolicyEstimate]:
    """PDIS, weighted PDIS and (given a model) doubly robust estimates, intervals and lower bounds.

    rewards, probabilities and model values are (n, D); `reward_floor` is the lowest reward one decision
    can bring (e.g. minus the dearest contact), needed by the PDIS concentration bound.
    """
    if (rewards < reward_floor - 1e-9).any():
        raise ValueError(f"a reward is below the declared floor {reward_floor}: the PDIS bound would not hold")
    weights = cumulative_weights(target_probability, behaviour_probability)
    n, waves = rewards.shape
    counts = bootstrap_counts(n, bootstrap_samples, seed)
    alpha = 1.0 - level

    pdis = per_decision_terms(rewards, weights)
    estimate, low, high = normal_interval(pdis, level)
    shifted = per_decision_terms(rewards - reward_floor, weights)
    bound, _ = clipped_lower_bound(shifted, delta, split_share, seed + 1)
    results = [OffPolicyEstimate("pdis", estimate, low, high, bound + waves * reward_floor, "clipped empirical Bernstein")]

    resampled = _weighted_from_sums(counts @ (weights * rewards), counts @ weights)
    results.append(
        OffPolicyEstimate(
            "weighted_pdis",
            weighted_per_decision(rewards, weights),
            float(np.quantile(resampled, alpha / 2)),
            float(np.quantile(resampled, 1 - alpha / 2)),
            float(np.quantile(resampled, delta)),
            "percentile bootstrap",
        )
    )
    if q_logged is not None and v_target is not None:
        dr = doubly_robust_terms(rewards, weights, q_logged, v_target)
        estimate, low, high = normal_interval(dr, level)
        replicates = counts @ dr / n
        results.append(
            OffPolicyEstimate("doubly_robust", estimate, low, high, float(np.quantile(replicates, delta)),
                              "percentile bootstrap")
        )
    return results
