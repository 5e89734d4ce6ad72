"""Ranking curves on randomized data: slopes by cumulative sums, areas, and bootstrap intervals vs truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from offerflow.discounts.evaluation import (
    Ranking,
    area_between,
    curve_counts,
    evaluate_rankings,
    ranking_order,
    top_share_slopes,
)
from offerflow.discounts.simulator import simulate_discounts

SEED = 4242


def test_top_share_slopes_match_least_squares_on_each_prefix():
    rng = np.random.default_rng(SEED)
    discount = rng.choice(np.arange(0.0, 110.0, 10.0), 500)
    profit = 50 - 0.1 * discount + rng.normal(0, 10, 500)
    order = rng.permutation(500)
    counts = np.array([10, 57, 250, 500])
    slopes = top_share_slopes(order, discount, profit, counts)
    for count, slope in zip(counts, slopes):
        rows = order[:count]
        assert slope == pytest.approx(np.polyfit(discount[rows], profit[rows], 1)[0], rel=1e-8)


def test_ties_are_broken_by_the_key_not_by_row_order():
    score = np.array([1.0, 2.0, 2.0, 2.0, 0.0])
    order = ranking_order(score, descending=True, tie_key=np.array([0, 3, 1, 2, 4]))
    assert order.tolist() == [2, 3, 1, 0, 4]
    assert ranking_order(score, descending=False, tie_key=np.arange(5)).tolist() == [4, 0, 1, 2, 3]


def test_area_between_straight_lines_is_half_the_slope_gap():
    shares, _ = curve_counts(1000, 20)
    curve = pd.DataFrame({"population_share": shares, "a": 0.3 * shares, "b": -0.1 * shares})
    assert area_between(curve, "a", "b") == pytest.approx(0.2)
    curve.loc[:2, "a"] = np.nan  # undefined start: interpolated from the origin
    assert area_between(curve, "a", "b") == pytest.approx(0.2)


def true_gain_area(slope: np.ndarray, score: np.ndarray, points: int, tie_key: np.ndarray) -> float:
    """Area between the ranking's and random's gain curves computed from the simulator's true slopes."""
    order = ranking_order(score, True, tie_key)
    shares, counts = curve_counts(len(slope), points)
    top_mean = np.cumsum(slope[order])[counts - 1] / counts
    gap = shares * (top_mean - slope.mean())
    return float(np.trapezoid(np.concatenate([[0.0], gap]), np.concatenate([[0.0], shares])))


def test_bootstrap_interval_of_the_gain_area_covers_the_truth_over_seeds():
    """The model score = true slope + noise; on 40 randomized histories the 95% bootstrap interval of
    the area between its gain curve and random covers the area computed from the true slopes."""
    seeds, covered, points = 40, 0, 20
    for offset in range(seeds):
        simulated = simulate_discounts(2000, SEED + offset, design="randomized")
        rng = np.random.default_rng(offset)
        score = simulated.slope + rng.normal(0, 0.03, len(simulated.slope))
        frame = simulated.frame
        result = evaluate_rankings(
            Ranking("model", score),
            Ranking("older first", frame["age"].to_numpy(), True),
            frame["discount"].to_numpy(),
            frame["profit"].to_numpy(),
            points,
            30,
            100,
            SEED + offset,
        )
        tie_key = np.random.default_rng(SEED + offset).permutation(len(score))  # the key evaluate_rankings drew first
        truth = true_gain_area(simulated.slope, score, points, tie_key)
        area = result["areas"]["gain_model_vs_random"]
        covered += area["ci_low"] <= truth <= area["ci_high"]
    print(f"\nbootstrap 95% interval of the gain area covers the true area in {covered}/{seeds} seeds")
    assert covered / seeds >= 0.85


def test_a_good_ranking_beats_random_and_a_useless_rule():
    simulated = simulate_discounts(5000, SEED, design="randomized")
    frame = simulated.frame
    noise = np.random.default_rng(1).normal(size=len(frame))
    args = (frame["discount"].to_numpy(), frame["profit"].to_numpy(), 50, 30, 100, SEED)
    result = evaluate_rankings(Ranking("model", simulated.slope), Ranking("noise", noise), *args)
    areas = result["areas"]
    assert areas["gain_model_vs_random"]["ci_low"] > 0
    assert areas["gain_model_vs_rule"]["ci_low"] > 0
    assert areas["elasticity_model_vs_random"]["ci_low"] > 0
    gain = result["gain_curve"]
    assert list(gain.columns) == ["population_share", "model", "noise", "random"]
    assert gain["random"].iloc[-1] == pytest.approx(gain["model"].iloc[-1])  # everyone: same slope
    again = evaluate_rankings(Ranking("model", simulated.slope), Ranking("noise", noise), *args)
    assert again["areas"] == areas  # seeded: identical
