"""Known structure: conversion does not decrease along a declared order of arms (e.g. bigger coupon).

Weighted isotonic regression (the pool-adjacent-violators answer) per row: where a noisier estimate
says the bigger coupon converts less, the violating arms are pooled to their weighted average, which
is the closest monotone vector in weighted least squares. Weights are the history rows behind each
estimate, so a well-measured arm moves less than a thin one. With at most a handful of arms the
min-max formula  x_i = max_{j<=i} min_{l>=i} avg_w(j..l)  is evaluated for all rows at once.
"""

from __future__ import annotations

import numpy as np


def isotonic_rows(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row-wise weighted non-decreasing fit of an n x k matrix (k small); weights > 0, same shape."""
    values = np.asarray(values, dtype=float)
    weights = np.broadcast_to(np.asarray(weights, dtype=float), values.shape)
    if (weights <= 0).any():
        raise ValueError("isotonic weights must be positive")
    k = values.shape[1]
    prefix_w = np.concatenate([np.zeros((len(values), 1)), np.cumsum(weights, axis=1)], axis=1)
    prefix_wx = np.concatenate([np.zeros((len(values), 1)), np.cumsum(weights * values, axis=1)], axis=1)

    def block_mean(j: int, l: int) -> np.ndarray:
        return (prefix_wx[:, l + 1] - prefix_wx[:, j]) / (prefix_w[:, l + 1] - prefix_w[:, j])

    fitted = np.empty_like(values)
    for i in range(k):
        lower = np.full(len(values), -np.inf)
        for j in range(i + 1):
            upper = np.min(np.column_stack([block_mean(j, l) for l in range(i, k)]), axis=1)
            lower = np.maximum(lower, upper)
        fitted[:, i] = lower
    return fitted


def monotone_columns(
    probabilities: np.ndarray, arms: list[str], order: list[str] | tuple[str, ...], weights: np.ndarray
) -> np.ndarray:
    """Apply `isotonic_rows` to the arms listed in `order` (low -> high); other arms are untouched."""
    unknown = [arm for arm in order if arm not in arms]
    if unknown:
        raise ValueError(f"probabilities.monotone_arms names unknown arm(s) {unknown}; arms are {arms}")
    if len(set(order)) != len(order):
        raise ValueError(f"probabilities.monotone_arms lists an arm twice: {list(order)}")
    positions = [arms.index(arm) for arm in order]
    result = np.array(probabilities, dtype=float, copy=True)
    if len(positions) < 2:
        return result
    block = result[:, positions]
    violating = (np.diff(block, axis=1) < 0).any(axis=1)  # rows already in order keep their exact values
    if violating.any():
        weights = np.broadcast_to(np.asarray(weights, dtype=float), result.shape)[:, positions]
        block[violating] = isotonic_rows(block[violating], weights[violating])
        result[:, positions] = block
    return result
