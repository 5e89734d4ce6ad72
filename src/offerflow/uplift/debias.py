"""Propensities and doubly robust (AIPW) estimates: honest effects from non-randomized history.

When a past campaign chose arms by customer features (frequent customers got the big coupon), the
raw difference in conversion rates mixes the coupon's effect with who received it. The augmented
inverse-propensity-weighted pseudo-outcome

    phi_a(i) = mu_a(x_i) + 1[A_i = a] * (y_i - mu_a(x_i)) / e_a(x_i)

averages to the population's conversion probability under arm a if either the outcome model mu or
the propensity e is right (doubly robust); with cross-fitted mu and e its standard error is the
plain one of a mean, made robust to repeated rows of the same customer by clustering on them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression

from offerflow.config import PropensityConfig


class PropensityModel:
    """P(arm | features) of the logging policy: estimated (multinomial logistic), fitted to the logged
    propensities, or uniform shares.

    A history with logged propensities knows each row's probability of the arm it received, but the X
    and DR learners need every arm's probability for every customer. With source logged, per arm a
    linear model of logit(logged propensity) on the features is fitted on the rows that received that
    arm: a regression on exact values, not a classification of noisy arm draws, so when the logging
    policy is a function of the features (a targeted campaign on a feature) it is recovered exactly
    where the estimate is only approximate. The AIPW terms use the logged values themselves.
    """

    def __init__(self, config: PropensityConfig, arms: list[str], seed: int):
        self.source = config.source  # plain values: a pickled pydantic model's bytes vary per process
        self.clip = tuple(config.clip)
        self.arms = list(arms)
        self.seed = seed
        self.model: LogisticRegression | None = None
        self.logged_models: list | None = None  # per arm: logit(propensity) ~ features (source logged)
        self.shares: np.ndarray | None = None

    def fit(self, X: np.ndarray, arm_index: np.ndarray, logged: np.ndarray | None = None) -> "PropensityModel":
        """`logged`: per row, the logged probability of the arm received (used with source logged)."""
        counts = np.bincount(arm_index, minlength=len(self.arms)).astype(float)
        self.shares = counts / counts.sum()
        if self.source == "logged" and logged is not None:
            from scipy.special import logit
            from sklearn.linear_model import Ridge

            low, high = self.clip
            target = logit(np.clip(np.asarray(logged, dtype=float), low, high))
            self.logged_models = [
                Ridge(alpha=1e-6).fit(X[arm_index == j], target[arm_index == j]) if counts[j] else None
                for j in range(len(self.arms))
            ]
        elif self.source != "uniform":
            self.model = LogisticRegression(C=1.0, max_iter=2000, random_state=self.seed).fit(X, arm_index)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """n x arms probabilities, clipped to params' bounds and renormalized."""
        if self.logged_models is not None:
            from scipy.special import expit

            matrix = np.column_stack([
                expit(model.predict(X)) if model is not None else np.zeros(X.shape[0]) for model in self.logged_models
            ])
        elif self.model is None:
            matrix = np.tile(self.shares, (X.shape[0], 1))
        else:
            matrix = np.zeros((X.shape[0], len(self.arms)))
            matrix[:, self.model.classes_] = self.model.predict_proba(X)
        low, high = self.clip
        matrix = np.clip(matrix, low, high)
        return matrix / matrix.sum(axis=1, keepdims=True)


def received_propensity(
    propensity: np.ndarray, arm_index: np.ndarray, logged: np.ndarray | None, clip: tuple[float, float]
) -> np.ndarray:
    """Probability of the arm each row received: the logged value when there is one, else the model's."""
    value = logged if logged is not None else propensity[np.arange(len(arm_index)), arm_index]
    return np.clip(np.asarray(value, dtype=float), *clip)


def aipw_pseudo_outcomes(mu: np.ndarray, arm_index: np.ndarray, y: np.ndarray, e_received: np.ndarray) -> np.ndarray:
    """n x arms doubly robust pseudo-outcomes phi_a(i) (see module docstring)."""
    phi = mu.copy()
    rows = np.arange(len(y))
    phi[rows, arm_index] += (y - mu[rows, arm_index]) / e_received
    return phi


def clustered_mean(values: np.ndarray, clusters: np.ndarray, level: float) -> dict:
    """Mean with a cluster-robust standard error and a normal `level` interval."""
    n = len(values)
    estimate = float(values.mean())
    sums = pd.Series(values - estimate).groupby(clusters, sort=False).sum().to_numpy()
    se = float(np.sqrt((sums**2).sum()) / n)
    z = float(norm.ppf(0.5 + level / 2))
    return {"estimate": estimate, "se": se, "ci_low": estimate - z * se, "ci_high": estimate + z * se}


def naive_difference(y: np.ndarray, arm_index: np.ndarray, treated: int, control: int, level: float) -> dict:
    """Difference in observed conversion rates (treated - control) with the two-proportion interval."""
    yt, yc = y[arm_index == treated], y[arm_index == control]
    estimate = float(yt.mean() - yc.mean())
    se = float(np.sqrt(yt.var() / len(yt) + yc.var() / len(yc)))
    z = float(norm.ppf(0.5 + level / 2))
    return {"estimate": estimate, "se": se, "ci_low": estimate - z * se, "ci_high": estimate + z * se}


def average_effects(
    mu: np.ndarray,
    arm_index: np.ndarray,
    y: np.ndarray,
    e_received: np.ndarray,
    arms: list[str],
    control: str,
    clusters: np.ndarray,
    level: float = 0.95,
    truth: np.ndarray | None = None,
) -> dict:
    """Per treatment arm: naive and doubly robust average effect vs control, and the true one if known.

    The true effect is the mean over the same rows of the true per-row probabilities (the simulator's).
    """
    c = arms.index(control)
    phi = aipw_pseudo_outcomes(mu, arm_index, y, e_received)
    report = {}
    for t, arm in enumerate(arms):
        if arm == control:
            continue
        entry = {
            "naive": _rounded(naive_difference(y, arm_index, t, c, level)),
            "aipw": _rounded(clustered_mean(phi[:, t] - phi[:, c], clusters, level)),
        }
        if truth is not None:
            entry["true"] = round(float((truth[:, t] - truth[:, c]).mean()), 6)
        report[arm] = entry
    return report


def segment_evidence(
    mu: np.ndarray,
    arm_index: np.ndarray,
    y: np.ndarray,
    e_received: np.ndarray,
    segments: pd.DataFrame,
    arms: list[str],
    clusters: np.ndarray,
) -> pd.DataFrame:
    """Per segment and arm: rows that received the arm, and the doubly robust estimate of the segment's
    conversion probability under that arm with its standard error (from the history alone, so it can
    bound the model's smoothed estimate). No row with the arm: no evidence (NaN)."""
    phi = aipw_pseudo_outcomes(mu, arm_index, y, e_received)
    columns = list(segments.columns)
    records = []
    for key, rows in segments.groupby(columns, sort=True, observed=True).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        for j, arm in enumerate(arms):
            n_obs = int((arm_index[rows] == j).sum())
            stats = clustered_mean(phi[rows, j], clusters[rows], 0.95)
            records.append(
                {
                    **dict(zip(columns, key)),
                    "arm": arm,
                    "n_obs": n_obs,
                    "dr_estimate": stats["estimate"] if n_obs else np.nan,
                    "dr_se": stats["se"] if n_obs else np.nan,
                }
            )
    return pd.DataFrame(records)


def _rounded(entry: dict) -> dict:
    return {key: round(value, 6) for key, value in entry.items()}


def segment_counts(history: pd.DataFrame, segment_columns: list[str], arms: list[str]) -> pd.DataFrame:
    """`segment_evidence`'s schema with the row counts only (no model needed): weights for isotonic fits."""
    counts = history.groupby([*segment_columns, "arm"], sort=True, observed=True).size().rename("n_obs").reset_index()
    counts = counts[counts["arm"].isin(arms)]
    return counts.assign(dr_estimate=np.nan, dr_se=np.nan)
