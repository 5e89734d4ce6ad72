"""Simulated campaign history drawn from a known probability table.

With the true conversion probability of every (segment, arm) known, every later stage can be checked
against the truth: the learned table against the true table, the learned plan's value against the
true optimum. Each past campaign sends every customer one arm chosen uniformly at random (a
randomized controlled campaign), and the true probability of each row is stored with it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from offerflow.io import ARM, CONVERTED, CUSTOMER_ID, prob_column


def simulate_history(
    customers: pd.DataFrame,
    true_probabilities: pd.DataFrame,
    arms: list[str],
    segment_columns: list[str] | tuple[str, ...],
    campaigns: int,
    seed: int,
) -> pd.DataFrame:
    """Randomized history: `campaigns` rows per customer with campaign, customer_id, arm, converted, true_prob."""
    columns = list(segment_columns)
    prob_cols = [prob_column(arm) for arm in arms]
    priced = customers[[CUSTOMER_ID, *columns]].merge(
        true_probabilities[columns + prob_cols], on=columns, how="left", validate="many_to_one"
    )
    unpriced = priced[prob_cols].isna().any(axis=1)
    if unpriced.any():
        sample = priced.loc[unpriced, columns].drop_duplicates().head(5).to_dict("records")
        raise ValueError(f"customers in segments missing from the true probability table: {sample}")
    rng = np.random.default_rng(seed)
    n = len(priced)
    probs = priced[prob_cols].to_numpy(dtype=float)
    frames = []
    for campaign in range(1, campaigns + 1):
        arm_index = rng.integers(0, len(arms), size=n)
        true_prob = probs[np.arange(n), arm_index]
        converted = (rng.random(n) < true_prob).astype("int64")
        frames.append(
            pd.DataFrame(
                {
                    "campaign": campaign,
                    CUSTOMER_ID: priced[CUSTOMER_ID].to_numpy(),
                    ARM: np.asarray(arms, dtype=object)[arm_index],
                    CONVERTED: converted,
                    "true_prob": true_prob,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
