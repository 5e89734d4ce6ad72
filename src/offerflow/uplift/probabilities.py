"""Probability tables handed to the optimizer: per customer and per segment, for every arm.

The segment table keeps the visit_probability.csv schema (segment columns, segment_id, prob_<arm>)
plus n_customers, and after those, per arm: the history rows behind the estimate (n_obs_<arm>) and a
doubly robust interval at params' level (prob_<arm>_ci_low/high) computed from the history of that
segment alone. When params declare an order of arms along which conversion cannot decrease (bigger
coupon, no fewer conversions), every customer's probabilities are made monotone by weighted isotonic
regression before aggregation, so the segment means are monotone too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from offerflow.schema import CUSTOMER_ID, SEGMENT_ID, prob_column, prob_columns
from offerflow.uplift.model import UpliftModel
from offerflow.uplift.monotone import monotone_columns


def evidence_weights(model: UpliftModel, customers: pd.DataFrame) -> np.ndarray:
    """n x arms history rows behind each customer's estimates (their segment's n_obs, plus one).

    Without segment evidence (a model trained without segment columns) all weights are equal.
    """
    evidence = model.segment_evidence
    ones = np.ones((len(customers), len(model.arms)))
    if evidence is None or evidence.empty:
        return ones
    keys = [c for c in evidence.columns if c not in ("arm", "n_obs", "dr_estimate", "dr_se")]
    if not all(c in customers.columns for c in keys):
        return ones
    wide = evidence.pivot_table(index=keys, columns="arm", values="n_obs", aggfunc="sum", observed=True)
    wide = wide.reindex(columns=model.arms).reset_index()
    joined = customers[keys].merge(wide, on=keys, how="left", validate="many_to_one")
    return joined[model.arms].fillna(0).to_numpy(dtype=float) + 1.0


def predict_customer_probabilities(
    model: UpliftModel,
    customers: pd.DataFrame,
    clip: tuple[float, float] = (0.0, 1.0),
    monotone_arms: list[str] | tuple[str, ...] = (),
) -> pd.DataFrame:
    """customer_id, segment_id, prob_<arm>...: every customer's conversion probability under every arm."""
    matrix = np.clip(model.predict_matrix(customers), *clip)
    probabilities = pd.DataFrame(matrix, columns=prob_columns(model.arms), index=customers.index)
    table = pd.concat([customers[[CUSTOMER_ID, SEGMENT_ID]], probabilities], axis=1).reset_index(drop=True)
    return make_monotone(table, model, customers, monotone_arms) if monotone_arms else table


def make_monotone(
    customer_probabilities: pd.DataFrame, model: UpliftModel, customers: pd.DataFrame, monotone_arms: list[str] | tuple[str, ...]
) -> pd.DataFrame:
    """The customer table with prob_<arm> non-decreasing along `monotone_arms` (weighted isotonic fit)."""
    columns = prob_columns(model.arms)
    matrix = monotone_columns(
        customer_probabilities[columns].to_numpy(dtype=float),
        model.arms,
        list(monotone_arms),
        evidence_weights(model, customers.reset_index(drop=True)),
    )
    result = customer_probabilities.copy()
    result[columns] = matrix
    return result


def aggregate_segment_probabilities(
    customer_probabilities: pd.DataFrame,
    catalog: pd.DataFrame,
    arms: list[str],
    evidence: pd.DataFrame | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Segment table: segment columns, segment_id, prob_<arm>..., n_customers[, per-arm evidence].

    A segment's probability is the mean over its customers, so that N_s * p[s,d] is exactly the
    expected number of conversions the customer-level model predicts for the segment.
    """
    columns = prob_columns(arms)
    means = customer_probabilities.groupby(SEGMENT_ID, sort=True)[columns].mean().reset_index()
    table = catalog.merge(means, on=SEGMENT_ID, how="left", validate="one_to_one")
    segment_columns = [c for c in catalog.columns if c not in (SEGMENT_ID, "n_customers")]
    table = table[[*segment_columns, SEGMENT_ID, *columns, "n_customers"]]
    if evidence is None or evidence.empty or not all(c in evidence.columns for c in segment_columns):
        return table  # no evidence for these segments (e.g. a model trained on other segment columns)
    return table.merge(segment_intervals(evidence, segment_columns, arms, level), on=segment_columns, how="left")


def segment_intervals(evidence: pd.DataFrame, segment_columns: list[str], arms: list[str], level: float) -> pd.DataFrame:
    """Per segment: n_obs_<arm>, prob_<arm>_ci_low, prob_<arm>_ci_high (normal interval, within [0, 1])."""
    z = float(norm.ppf(0.5 + level / 2))
    frame = evidence.assign(
        ci_low=(evidence["dr_estimate"] - z * evidence["dr_se"]).clip(0.0, 1.0),
        ci_high=(evidence["dr_estimate"] + z * evidence["dr_se"]).clip(0.0, 1.0),
    )
    wide = frame.pivot_table(
        index=segment_columns, columns="arm", values=["n_obs", "ci_low", "ci_high"], observed=True, dropna=False
    )
    out = wide.index.to_frame(index=False)
    for arm in arms:
        out[f"n_obs_{arm}"] = wide[("n_obs", arm)].fillna(0).astype("int64").to_numpy()
        out[f"{prob_column(arm)}_ci_low"] = wide[("ci_low", arm)].to_numpy()
        out[f"{prob_column(arm)}_ci_high"] = wide[("ci_high", arm)].to_numpy()
    return out


def table_vs_truth(table: pd.DataFrame, truth: pd.DataFrame, segment_columns: list[str], arms: list[str]) -> dict:
    """Customer-weighted error of the segment table against the true table, and interval coverage."""
    merged = table.merge(truth[[*segment_columns, *prob_columns(arms)]], on=segment_columns, suffixes=("", "_true"))
    weights = merged["n_customers"].to_numpy(dtype=float)
    report: dict = {"segments": int(len(merged)), "arms": {}}
    errors, covered, counted = [], 0, 0
    for arm in arms:
        col = prob_column(arm)
        error = (merged[col] - merged[f"{col}_true"]).to_numpy()
        entry = {
            "weighted_mae": round(float(np.average(np.abs(error), weights=weights)), 6),
            "max_abs_error": round(float(np.abs(error).max()), 6),
        }
        if f"{col}_ci_low" in merged.columns:
            inside = merged[f"{col}_true"].between(merged[f"{col}_ci_low"], merged[f"{col}_ci_high"])
            entry["ci_coverage"] = round(float(inside.mean()), 6)
            covered, counted = covered + int(inside.sum()), counted + len(inside)
        report["arms"][arm] = entry
        errors.append(np.abs(error))
    report["weighted_mae"] = round(float(np.average(np.concatenate(errors), weights=np.tile(weights, len(arms)))), 6)
    if counted:
        report["ci_coverage"] = round(covered / counted, 6)
    return report
