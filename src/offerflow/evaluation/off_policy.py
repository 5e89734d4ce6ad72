"""Off-policy value of any allocation, estimated from campaign logs, with intervals and lower bounds.

A policy is an n x K matrix of action probabilities over the logged rows (a per-customer offer is a
one-hot row; a segment plan gives each row its segment's shares). With the logged arm a_i, the
probability e_i that the logging policy gave it, the reward r_i and the weight w_i = pi[i, a_i] / e_i:

    IPS    mean_i w_i r_i                                   unbiased when e is right
    SNIPS  sum_i w_i r_i / sum_i w_i                        same target (E w = 1), lower variance
    DR     mean_i [ sum_d pi[i,d] mu[i,d] + w_i (r_i - mu[i,a_i]) ]   unbiased if e is right, whatever mu

The reward is generic: conversions (value) or the realized cost of the row (coupon if converted plus
contact cost) go through the same code, so a policy's value and its cost are estimated alike.
A paired difference (candidate minus baseline) is estimated from per-row differences of the terms, so
the noise both policies share cancels; it is what the publish gate decides on.

Every estimate carries a normal interval (cluster-robust standard error: a customer may appear in
several campaigns; SNIPS by the delta method, influence w_i (r_i - V) / mean w), and three one-sided
lower bounds: normal, empirical Bernstein (finite-sample valid, see bounds.py) and cluster-bootstrap
percentile. The Bernstein bound needs a range that holds for every possible term, derived from
(assumptions) rewards and predictions in the declared [a, b] and weights in [0, W], W = 1 / the
smallest logging propensity (`CampaignLog.min_propensity`, default the smallest one in the logs):
    IPS  [min(0, W a), max(0, W b)]          IPS difference  [-W max(|a|, |b|), W max(|a|, |b|)]
    DR   [a + (b-a)(1-W), a + (b-a) W]       DR difference   [-(b-a) W, (b-a) W]
SNIPS is a ratio, so its Bernstein bound combines a lower bound of E[w (r-a)] and an upper bound of
E[w] (each at half the error budget); its difference bound subtracts the two policies' one-sided
bounds (valid, not paired, so looser). Positivity is assumed: the logging policy gives every arm the
target policy uses a positive probability (only the received arm's propensity is known here).

Hand-written with numpy/scipy on purpose: no maintained OPE library installs cleanly on this stack.
Open Bandit Pipeline's latest release (0.5.7) does not resolve with our pins, and the older one pip falls
back to (0.4.1) pulls torch and several GB of CUDA wheels for estimators that are a few lines of numpy;
its intervals also resample rows, ignoring that one customer appears in several campaigns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping

import numpy as np

from offerflow.errors import ConfigError, InputDataError
from offerflow.evaluation import bounds

ESTIMATORS = ("ips", "snips", "dr")
METHODS = ("bernstein", "bootstrap", "normal")


def logged_arm_propensity(propensity_matrix: np.ndarray, arm_index: np.ndarray) -> np.ndarray:
    """Probability of the arm each row received, from an n x K propensity matrix."""
    matrix = np.asarray(propensity_matrix, dtype=float)
    arms = np.asarray(arm_index)
    return matrix[np.arange(len(arms)), arms]


def design_propensity(arm_index: np.ndarray, shares: np.ndarray | None = None, n_arms: int | None = None) -> np.ndarray:
    """Propensity of the received arm in a randomized history: the declared shares, or 1/K."""
    arms = np.asarray(arm_index)
    if shares is None:
        if n_arms is None:
            raise ValueError("design propensities need the shares or the number of arms")
        return np.full(len(arms), 1.0 / n_arms)
    shares = np.asarray(shares, dtype=float)
    if abs(shares.sum() - 1.0) > 1e-9 or (shares <= 0).any():
        raise InputDataError(f"design shares must be positive and sum to 1, got {shares.tolist()}")
    return shares[arms]


@dataclass(frozen=True)
class CampaignLog:
    """Logged rows: the arm each received, its logging propensity, and optionally a cluster id (customer)."""

    arm_index: np.ndarray
    propensity: np.ndarray
    n_arms: int
    clusters: np.ndarray | None = None
    min_propensity: float | None = None  # smallest propensity the logging policy can give; default: observed

    def __post_init__(self) -> None:
        arms = np.asarray(self.arm_index)
        propensity = np.asarray(self.propensity, dtype=float)
        if arms.ndim != 1 or propensity.shape != arms.shape:
            raise InputDataError(f"arm_index and propensity must be vectors of one length, got {arms.shape}, {propensity.shape}")
        if len(arms) < 2:
            raise InputDataError("off-policy evaluation needs at least two logged rows")
        if not np.issubdtype(arms.dtype, np.integer) or arms.min() < 0 or arms.max() >= self.n_arms:
            raise InputDataError(f"arm_index must be integers in [0, {self.n_arms - 1}], got values {np.unique(arms)[:5].tolist()}")
        bad = ~((propensity > 0) & (propensity <= 1))
        if bad.any():
            raise InputDataError(f"propensities must lie in (0, 1]; {int(bad.sum())} rows do not, e.g. {propensity[bad][:5].tolist()}")
        floor = float(propensity.min()) if self.min_propensity is None else float(self.min_propensity)
        if not 0 < floor <= propensity.min():
            raise InputDataError(f"min_propensity {floor} must be in (0, smallest logged propensity {propensity.min():.6g}]")
        if self.clusters is not None and len(self.clusters) != len(arms):
            raise InputDataError(f"clusters has {len(self.clusters)} rows, the log {len(arms)}")
        object.__setattr__(self, "arm_index", arms.astype(np.int64))
        object.__setattr__(self, "propensity", propensity)
        object.__setattr__(self, "min_propensity", floor)

    @property
    def n_rows(self) -> int:
        return len(self.arm_index)

    @property
    def max_weight(self) -> float:
        return 1.0 / float(self.min_propensity)


@dataclass(frozen=True)
class Reward:
    """Per-row reward (conversions, value or realized cost), its known range, and a model's n x K prediction."""

    observed: np.ndarray
    bounds: tuple[float, float] = (0.0, 1.0)
    predicted: np.ndarray | None = None  # mu[i, d]: needed by DR

    def checked(self, log: CampaignLog) -> "Reward":
        low, high = self.bounds
        observed = np.asarray(self.observed, dtype=float)
        if observed.shape != (log.n_rows,):
            raise InputDataError(f"reward has shape {observed.shape}, expected ({log.n_rows},)")
        _check_range(observed, low, high, "observed reward")
        predicted = None
        if self.predicted is not None:
            predicted = np.asarray(self.predicted, dtype=float)
            if predicted.shape != (log.n_rows, log.n_arms):
                raise InputDataError(f"predicted reward has shape {predicted.shape}, expected ({log.n_rows}, {log.n_arms})")
            _check_range(predicted, low, high, "predicted reward")
        return Reward(observed, (float(low), float(high)), predicted)


def _check_range(values: np.ndarray, low: float, high: float, what: str) -> None:
    if not np.isfinite(values).all():
        raise InputDataError(f"{what} has missing or infinite values")
    outside = (values < low) | (values > high)
    if outside.any():
        raise InputDataError(f"{what}: {int(outside.sum())} values outside the declared range [{low}, {high}], e.g. {values[outside][:5].tolist()}")


def check_policy(policy: np.ndarray, log: CampaignLog, name: str = "policy") -> np.ndarray:
    """The policy as a float matrix, after checking its shape and that each row is a distribution."""
    matrix = np.asarray(policy, dtype=float)
    if matrix.shape != (log.n_rows, log.n_arms):
        raise InputDataError(f"{name} has shape {matrix.shape}, expected ({log.n_rows}, {log.n_arms})")
    sums = matrix.sum(axis=1)
    if (matrix < -1e-12).any() or not np.allclose(sums, 1.0, atol=1e-6):
        worst = int(np.argmax(np.abs(sums - 1.0)))
        raise InputDataError(f"{name}: every row must be probabilities summing to 1; row {worst} sums to {sums[worst]:.6g}")
    return np.clip(matrix, 0.0, None)


@dataclass(frozen=True)
class BoundSettings:
    """Interval level, lower-bound confidence and bootstrap size shared by every estimate of one call.

    The lower bounds are one-sided at `confidence`; the default 0.975 makes the normal bound the lower
    end of the two-sided 95% interval. At 0.95 the asymptotic bounds (normal, percentile bootstrap) fall
    below the truth about 95% of the time, not at least 95%; 0.975 keeps that rate above 95%.
    """

    level: float = 0.95
    confidence: float = 0.975
    bootstrap_samples: int = 1000  # 0: no bootstrap bound
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("level", "confidence"):
            if not 0.5 <= getattr(self, key) < 1:
                raise ConfigError(f"{key} must be in [0.5, 1), got {getattr(self, key)}")
        if self.bootstrap_samples < 0:
            raise ConfigError(f"bootstrap_samples must be >= 0, got {self.bootstrap_samples}")


@dataclass(frozen=True)
class PolicyEstimate:
    """A policy's value (or a difference of two) with its interval and one-sided lower bounds."""

    estimator: str
    value: float
    se: float
    ci_low: float
    ci_high: float
    lower_bound_normal: float
    lower_bound_bernstein: float
    lower_bound_bootstrap: float
    level: float
    confidence: float
    n_rows: int
    n_clusters: int
    bootstrap_samples: int = field(default=0)

    def lower_bound(self, method: str) -> float:
        if method not in METHODS:
            raise ConfigError(f"lower-bound method must be one of {list(METHODS)}, got {method!r}")
        return float(getattr(self, f"lower_bound_{method}"))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Clusters:
    """Cluster code per row (every row its own cluster without ids) and the number of clusters."""

    codes: np.ndarray
    count: int

    def bernstein(self, terms: np.ndarray, low: float, high: float, confidence: float) -> float:
        return bounds.clustered_bernstein_lower_bound(terms, self.codes, self.count, low, high, confidence)


@dataclass(frozen=True)
class _Contrast:
    """sum_k sign_k sum_i numerator_k[i] / sum_i denominator_k[i] (None: 1 per row), and its Bernstein bound."""

    numerators: tuple[np.ndarray, ...]
    denominators: tuple[np.ndarray | None, ...]
    signs: tuple[float, ...]
    bernstein: Callable[[float], float]  # confidence -> lower bound


def importance_weights(policy: np.ndarray, log: CampaignLog) -> np.ndarray:
    """w_i = pi[i, a_i] / e_i."""
    return policy[np.arange(log.n_rows), log.arm_index] / log.propensity


def dr_terms(policy: np.ndarray, log: CampaignLog, reward: Reward) -> np.ndarray:
    """Per-row doubly robust terms sum_d pi mu + w (r - mu[a])."""
    if reward.predicted is None:
        raise InputDataError("the doubly robust estimator needs predicted rewards (an n x K matrix)")
    mu = reward.predicted
    received = mu[np.arange(log.n_rows), log.arm_index]
    return (policy * mu).sum(axis=1) + importance_weights(policy, log) * (reward.observed - received)


def _ratio_bounds(w: np.ndarray, r: np.ndarray, reward: Reward, weight_max: float, clusters: _Clusters, confidence: float) -> tuple[float, float]:
    """One-sided (lower, upper) bounds, each at `confidence`, of E[w r] / E[w] for r in [low, high].

    (V - low) = E[w (r - low)] / E[w] with a non-negative numerator, so a lower bound of the numerator
    over an upper bound of E[w] bounds it from below; symmetrically (high - V) from above.
    """
    low, high = reward.bounds
    half = 1.0 - (1.0 - confidence) / 2.0  # numerator and denominator share the error budget
    span = weight_max * (high - low)
    weight_upper = -clusters.bernstein(-w, -weight_max, 0.0, half)
    if weight_upper <= 0:
        raise InputDataError("the policy gives zero probability to every logged arm: self-normalized IPS is undefined")
    above_low = clusters.bernstein(w * (r - low), 0.0, span, half)
    below_high = clusters.bernstein(w * (high - r), 0.0, span, half)
    return low + max(0.0, above_low) / weight_upper, high - max(0.0, below_high) / weight_upper


def _mean_contrast(terms: np.ndarray, low: float, high: float, clusters: _Clusters) -> _Contrast:
    """A plain mean of per-row terms known to lie in [low, high]."""
    return _Contrast((terms,), (None,), (1.0,), lambda confidence: clusters.bernstein(terms, low, high, confidence))


def _value_contrast(policy: np.ndarray, log: CampaignLog, reward: Reward, estimator: str, clusters: _Clusters) -> _Contrast:
    low, high = reward.bounds
    weight_max, span = log.max_weight, high - low
    w = importance_weights(policy, log)
    if estimator == "ips":
        return _mean_contrast(w * reward.observed, min(0.0, weight_max * low), max(0.0, weight_max * high), clusters)
    if estimator == "dr":
        return _mean_contrast(dr_terms(policy, log, reward), low + span * (1 - weight_max), low + span * weight_max, clusters)
    r = reward.observed
    return _Contrast((w * r,), (w,), (1.0,), lambda c: _ratio_bounds(w, r, reward, weight_max, clusters, c)[0])


def _difference_contrast(candidate: np.ndarray, baseline: np.ndarray, log: CampaignLog, reward: Reward, estimator: str, clusters: _Clusters) -> _Contrast:
    low, high = reward.bounds
    weight_max = log.max_weight
    wc, wb, r = importance_weights(candidate, log), importance_weights(baseline, log), reward.observed
    if estimator == "ips":  # (w_c - w_b) in [-W, W]
        reach = weight_max * max(abs(low), abs(high))
        return _mean_contrast((wc - wb) * r, -reach, reach, clusters)
    if estimator == "dr":
        reach = weight_max * (high - low)
        return _mean_contrast(dr_terms(candidate, log, reward) - dr_terms(baseline, log, reward), -reach, reach, clusters)

    def bernstein(confidence: float) -> float:  # not paired: each ratio at half the error budget
        half = 1.0 - (1.0 - confidence) / 2.0
        return _ratio_bounds(wc, r, reward, weight_max, clusters, half)[0] - _ratio_bounds(wb, r, reward, weight_max, clusters, half)[1]

    return _Contrast((wc * r, wb * r), (wc, wb), (1.0, -1.0), bernstein)


def estimate_contrasts(
    log: CampaignLog,
    reward: Reward,
    settings: BoundSettings = BoundSettings(),
    values: Mapping[str, np.ndarray] | None = None,
    differences: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    estimators: tuple[str, ...] | list[str] = ("dr",),
) -> dict[str, dict[str, PolicyEstimate]]:
    """estimator -> name -> estimate, for each policy in `values` and each (candidate, baseline) pair.

    One cluster bootstrap serves every estimate of the call (same resamples for all policies).
    """
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown:
        raise ConfigError(f"estimators must be among {list(ESTIMATORS)}, got {unknown}")
    values, differences = dict(values or {}), dict(differences or {})
    clash = sorted(set(values) & set(differences))
    if clash:
        raise ValueError(f"names used for both a value and a difference: {clash}")
    reward = reward.checked(log)
    clusters = _Clusters(*bounds.cluster_codes(log.clusters, log.n_rows))
    if clusters.count < 2:
        raise InputDataError("off-policy evaluation needs at least two customers (clusters)")
    checked = {name: check_policy(matrix, log, name) for name, matrix in values.items()}
    pairs = {
        name: (check_policy(candidate, log, f"{name} (candidate)"), check_policy(baseline, log, f"{name} (baseline)"))
        for name, (candidate, baseline) in differences.items()
    }
    contrasts = {}
    for estimator in estimators:
        for name, policy in checked.items():
            contrasts[estimator, name] = _value_contrast(policy, log, reward, estimator, clusters)
        for name, (candidate, baseline) in pairs.items():
            contrasts[estimator, name] = _difference_contrast(candidate, baseline, log, reward, estimator, clusters)
    return _estimate(contrasts, clusters, log.n_rows, settings)


def estimate_means(
    terms: Mapping[str, np.ndarray],
    ranges: Mapping[str, tuple[float, float]],
    estimator: str,
    settings: BoundSettings = BoundSettings(),
    clusters: np.ndarray | None = None,
) -> dict[str, PolicyEstimate]:
    """Estimates from per-unit terms computed elsewhere (e.g. a sequential doubly robust estimator's terms per
    customer, or their paired differences): the same intervals and lower bounds as the one-step estimators.

    `ranges` gives each term's known [low, high] for the Bernstein bound ((-inf, inf) when none is known:
    the bound is then -inf and only the normal and bootstrap bounds are informative).
    """
    n_rows = len(next(iter(terms.values())))
    grouped = _Clusters(*bounds.cluster_codes(clusters, n_rows))
    contrasts = {}
    for name, values in terms.items():
        values = np.asarray(values, dtype=float)
        low, high = ranges.get(name, (-np.inf, np.inf))
        bernstein = (lambda confidence: -np.inf) if not (np.isfinite(low) and np.isfinite(high)) else None
        contrast = _mean_contrast(values, low, high, grouped)
        contrasts[estimator, name] = contrast if bernstein is None else _Contrast(contrast.numerators, contrast.denominators, contrast.signs, bernstein)
    return _estimate(contrasts, grouped, n_rows, settings)[estimator]


def _estimate(contrasts: dict[tuple[str, str], _Contrast], clusters: _Clusters, n_rows: int, settings: BoundSettings) -> dict[str, dict[str, PolicyEstimate]]:
    """Point estimates, delta-method standard errors, bounds; one bootstrap over the stacked cluster totals."""
    columns: list[np.ndarray] = [np.ones(n_rows)]  # column 0: row counts, the denominator of plain means
    ratio_columns: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for key, contrast in contrasts.items():
        ratio_columns[key] = []
        for numerator, denominator in zip(contrast.numerators, contrast.denominators):
            columns.append(numerator)
            top = len(columns) - 1
            if denominator is not None:
                columns.append(denominator)
            ratio_columns[key].append((top, 0 if denominator is None else len(columns) - 1))
    totals = np.column_stack([bounds.cluster_totals(column, clusters.codes, clusters.count) for column in columns])
    sums = totals.sum(axis=0)
    replicates = bounds.bootstrap_replicate_sums(totals, settings.bootstrap_samples, settings.seed) if settings.bootstrap_samples else None
    result: dict[str, dict[str, PolicyEstimate]] = {}
    for (estimator, name), contrast in contrasts.items():
        parts = list(zip(contrast.signs, ratio_columns[estimator, name]))
        value = float(sum(sign * sums[top] / sums[bottom] for sign, (top, bottom) in parts))
        influence = np.zeros(n_rows)  # delta method: sum_k sign_k (num_k - ratio_k den_k) / mean(den_k)
        for sign, (top, bottom) in parts:
            influence += sign * (columns[top] - sums[top] / sums[bottom] * columns[bottom]) / (sums[bottom] / n_rows)
        se = bounds.cluster_robust_se(influence, clusters.codes, clusters.count)
        ci_low, ci_high = bounds.normal_interval(value, se, settings.level)
        bootstrap_bound = float("nan")
        if replicates is not None:
            draws = sum(sign * replicates[:, top] / replicates[:, bottom] for sign, (top, bottom) in parts)
            bootstrap_bound = bounds.percentile_lower_bound(draws, settings.confidence)
        result.setdefault(estimator, {})[name] = PolicyEstimate(
            estimator=estimator,
            value=value,
            se=se,
            ci_low=ci_low,
            ci_high=ci_high,
            lower_bound_normal=bounds.normal_lower_bound(value, se, settings.confidence),
            lower_bound_bernstein=contrast.bernstein(settings.confidence),
            lower_bound_bootstrap=bootstrap_bound,
            level=settings.level,
            confidence=settings.confidence,
            n_rows=n_rows,
            n_clusters=clusters.count,
            bootstrap_samples=settings.bootstrap_samples,
        )
    return result


def estimate_value(policy: np.ndarray, log: CampaignLog, reward: Reward, estimator: str = "dr", settings: BoundSettings = BoundSettings()) -> PolicyEstimate:
    """One policy's value (or expected cost, with a cost reward)."""
    return estimate_contrasts(log, reward, settings, values={"policy": policy}, estimators=(estimator,))[estimator]["policy"]


def estimate_difference(
    candidate: np.ndarray, baseline: np.ndarray, log: CampaignLog, reward: Reward, estimator: str = "dr", settings: BoundSettings = BoundSettings()
) -> PolicyEstimate:
    """Paired value difference candidate - baseline on the same rows."""
    result = estimate_contrasts(log, reward, settings, differences={"difference": (candidate, baseline)}, estimators=(estimator,))
    return result[estimator]["difference"]


def constant_policy_values(log: CampaignLog, reward: Reward, estimator: str = "dr") -> np.ndarray:
    """Point estimate of the value of giving everyone arm d, for each d (ranks arms for the baselines)."""
    if estimator not in ESTIMATORS:
        raise ConfigError(f"estimator must be one of {list(ESTIMATORS)}, got {estimator!r}")
    reward = reward.checked(log)
    values = np.empty(log.n_arms)
    for arm in range(log.n_arms):
        policy = np.zeros((log.n_rows, log.n_arms))
        policy[:, arm] = 1.0
        w = importance_weights(policy, log)
        if estimator == "dr":
            values[arm] = dr_terms(policy, log, reward).mean()
        elif estimator == "ips":
            values[arm] = (w * reward.observed).mean()
        else:
            values[arm] = (w * reward.observed).sum() / w.sum() if w.sum() > 0 else np.nan
    return values
