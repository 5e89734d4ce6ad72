"""The held-out customers: history no learner, model selection or calibration ever sees.

Whether a customer is held out depends only on its id and the seed (a keyed hash of the id), never on
row order, file layout or how many campaigns the customer appears in: every row of one customer falls on
the same side, the train stage and the evaluate stage compute the same split independently, and adding
new customers to the history does not move the old ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from offerflow.config import HoldoutConfig


def holdout_mask(customer_ids: pd.Series | np.ndarray, config: HoldoutConfig) -> np.ndarray:
    """True for the rows of held-out customers (about config.fraction of the distinct customers)."""
    ids = np.asarray(customer_ids)
    if np.issubdtype(ids.dtype, np.integer):  # whole-number ids hash as numbers (fast), offset by the seed
        with np.errstate(over="ignore"):
            salted = ids.astype(np.uint64) + np.uint64(config.seed) * np.uint64(0x9E3779B97F4A7C15)
        hashed = pd.util.hash_array(salted, categorize=False)
    else:  # text ids: pandas' keyed hash of the text, the seed as its 16-character key
        hashed = pd.util.hash_array(pd.Series(ids).astype(str).to_numpy(dtype=object), hash_key=f"{config.seed:016d}"[-16:])
    return (hashed / np.float64(2**64)) < config.fraction


def split_history(history: pd.DataFrame, id_column: str, config: HoldoutConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, held-out rows), each with a fresh index."""
    held_out = holdout_mask(history[id_column], config)
    return history.loc[~held_out].reset_index(drop=True), history.loc[held_out].reset_index(drop=True)
