"""Simulated campaign history drawn from a known probability table.

With the true conversion probability of every (customer, arm) known, every later stage can be checked
against the truth: the learned table against the true table, the learned plan's value against the true
optimum, a debiased effect estimate against the true effect.

Two optional departures from the plain randomized campaign make the simulator a test bed:
- heterogeneity: a customer's true probability moves with numeric customer columns (logit shift), and
  a per-(segment, arm) offset is solved so that the segment average still equals the table exactly;
- targeted assignment: like a past campaign that sent the costlier coupons to frequent customers, the
  arm depends on a customer column; the logging propensity of the arm received can be stored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit

from offerflow.schema import ARM, CONVERTED, CUSTOMER_ID, PROPENSITY, TRUE_PROB, prob_column, true_prob_column

def ordered_score(values: pd.Series, order: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
    """Numeric score of a column: numbers as they are, categories by rank (given order, else sorted)."""
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float)
    levels = list(order) if order else sorted(values.dropna().astype(str).unique())
    rank = {level: position for position, level in enumerate(levels)}
    unknown = sorted(set(values.astype(str)) - set(rank))
    if unknown:
        raise ValueError(f"column {values.name!r}: values {unknown[:5]} are not in the given order {levels}")
    return values.astype(str).map(rank).to_numpy(dtype=float)


def standardized(score: np.ndarray) -> np.ndarray:
    spread = score.std()
    return (score - score.mean()) / spread if spread > 0 else np.zeros_like(score)


def segment_table_probabilities(
    customers: pd.DataFrame, true_probabilities: pd.DataFrame, arms: list[str], segment_columns: list[str]
) -> np.ndarray:
    """customers x arms matrix of the table's probability for each customer's segment."""
    prob_cols = [prob_column(arm) for arm in arms]
    missing = [c for c in segment_columns + prob_cols if c not in true_probabilities.columns]
    if missing:
        raise ValueError(f"true probability table lacks column(s) {missing}")
    priced = customers[segment_columns].merge(
        true_probabilities[segment_columns + prob_cols], on=segment_columns, how="left", validate="many_to_one"
    )
    unpriced = priced[prob_cols].isna().any(axis=1)
    if unpriced.any():
        sample = priced.loc[unpriced, segment_columns].drop_duplicates().head(5).to_dict("records")
        raise ValueError(f"customers in segments missing from the true probability table: {sample}")
    return priced[prob_cols].to_numpy(dtype=float)


def _offset_matching_mean(base_logit: float, shift: np.ndarray, target: float) -> float:
    """The logit offset c with mean(expit(base + shift + c)) == target (monotone in c: one root)."""
    gap = lambda c: float(expit(base_logit + shift + c).mean() - target)  # noqa: E731
    return brentq(gap, -50.0, 50.0, xtol=1e-12)


def customer_true_probabilities(
    customers: pd.DataFrame,
    true_probabilities: pd.DataFrame,
    arms: list[str],
    segment_columns: list[str] | tuple[str, ...],
    heterogeneity: float = 0.0,
    features: list[str] | tuple[str, ...] = (),
) -> np.ndarray:
    """customers x arms true probabilities whose mean within every segment equals the table.

    Each customer's logit is the segment's logit plus `heterogeneity` x (standardized average of the
    numeric `features`), scaled up for costlier arms (arm k of K gets weight (k+1)/K) so that the
    coupon effect itself varies within a segment; an offset per (segment, arm) restores the mean.
    """
    columns = list(segment_columns)
    table = segment_table_probabilities(customers, true_probabilities, arms, columns)
    if heterogeneity == 0 or not features:
        return table
    non_numeric = [c for c in features if not pd.api.types.is_numeric_dtype(customers[c])]
    if non_numeric:
        raise ValueError(f"heterogeneity features must be numeric customer columns; not numeric: {non_numeric}")
    score = standardized(np.mean([standardized(customers[c].to_numpy(dtype=float)) for c in features], axis=0))
    groups = customers.groupby(columns, sort=True, observed=True).indices
    result = np.empty_like(table)
    for k in range(len(arms)):
        shift = heterogeneity * (k + 1) / len(arms) * score
        for rows in groups.values():
            target = float(table[rows[0], k])
            if target <= 0.0 or target >= 1.0 or not shift[rows].any():
                result[rows, k] = target  # a certain outcome (or no spread) has nothing to move
                continue
            base = float(logit(target))
            result[rows, k] = expit(base + shift[rows] + _offset_matching_mean(base, shift[rows], target))
    return result


def targeted_propensities(score: np.ndarray, n_arms: int, strength: float) -> np.ndarray:
    """customers x arms logging policy: softmax(strength * z * centred arm rank); z standardized score."""
    z = standardized(score)
    rank = (np.arange(n_arms) - (n_arms - 1) / 2) / max(n_arms - 1, 1)
    logits = strength * z[:, None] * rank[None, :]
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def _draw_arms(rng: np.random.Generator, propensities: np.ndarray) -> np.ndarray:
    """One arm index per row drawn from its row of probabilities (inverse CDF)."""
    cumulative = propensities.cumsum(axis=1)
    cumulative[:, -1] = 1.0
    return (rng.random(len(propensities))[:, None] > cumulative).sum(axis=1)


def simulate_history(
    customers: pd.DataFrame,
    true_probabilities: pd.DataFrame,
    arms: list[str],
    segment_columns: list[str] | tuple[str, ...],
    campaigns: int,
    seed: int,
    *,
    assignment: str = "randomized",
    targeting_column: str | None = None,
    targeting_strength: float = 1.5,
    targeting_order: tuple[str, ...] | None = None,
    log_propensity: bool = True,
    heterogeneity: float = 0.0,
    heterogeneity_features: list[str] | tuple[str, ...] = (),
) -> pd.DataFrame:
    """`campaigns` rows per customer: campaign, customer_id, arm, converted, true_prob, true_prob_<arm>...

    randomized: every arm equally likely. targeted: arms drawn from `targeted_propensities` of the
    customer's `targeting_column`. With `log_propensity` the probability of the arm received is kept in
    a `propensity` column (as a well-run campaign logs it); otherwise it must be estimated.
    """
    if assignment not in ("randomized", "targeted"):
        raise ValueError(f"assignment must be 'randomized' or 'targeted', got {assignment!r}")
    truth = customer_true_probabilities(
        customers, true_probabilities, arms, segment_columns, heterogeneity, heterogeneity_features
    )
    n, k = truth.shape
    if assignment == "targeted":
        if targeting_column is None or targeting_column not in customers.columns:
            raise ValueError(f"targeted assignment needs a customer column to target on, got {targeting_column!r}")
        score = ordered_score(customers[targeting_column], targeting_order)
        policy = targeted_propensities(score, k, targeting_strength)
    else:
        policy = np.full((n, k), 1.0 / k)
    rng = np.random.default_rng(seed)
    arm_names = np.asarray(arms, dtype=object)
    frames = []
    for campaign in range(1, campaigns + 1):
        arm_index = _draw_arms(rng, policy) if assignment == "targeted" else rng.integers(0, k, size=n)
        true_prob = truth[np.arange(n), arm_index]
        converted = (rng.random(n) < true_prob).astype("int64")
        frame = {
            "campaign": campaign,
            CUSTOMER_ID: customers[CUSTOMER_ID].to_numpy(),
            ARM: arm_names[arm_index],
            CONVERTED: converted,
            TRUE_PROB: true_prob,
        }
        frame.update({true_prob_column(arm): truth[:, j] for j, arm in enumerate(arms)})
        if log_propensity:
            frame[PROPENSITY] = policy[np.arange(n), arm_index]
        frames.append(pd.DataFrame(frame))
    return pd.concat(frames, ignore_index=True)


def add_customer_features(customers: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Customers plus example continuous/categorical columns: recency_days, past_spend, tenure_years, channel.

    They are drawn independently of the segments, so a simulation with heterogeneity on these columns
    keeps its segment means while giving models something to learn inside each segment.
    """
    rng = np.random.default_rng(seed)
    n = len(customers)
    extra = pd.DataFrame(
        {
            "recency_days": np.round(rng.exponential(60.0, n), 1),
            "past_spend": np.round(rng.lognormal(4.0, 0.8, n), 2),
            "tenure_years": np.round(rng.uniform(0.0, 10.0, n), 2),
            "channel": rng.choice(np.array(["app", "store", "web"], dtype=object), n),
        },
        index=customers.index,
    )
    return pd.concat([customers, extra], axis=1)
