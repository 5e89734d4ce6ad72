"""Does the effect model rank customers by how they respond to discounts? Checked on the randomized file.

On randomized data the least-squares slope of profit on discount among any group chosen by the
customers' features (not by their discount) is an unbiased estimate of that group's average response.
So customers are ranked (by the model's predicted slope, by a marketer's rule such as younger first,
or at random) and for the top 1/P, 2/P, ..., all of them:
- cumulative elasticity curve: the slope among the top share (random ranking: the overall slope);
- cumulative gain curve: share x that slope (random: a straight line to the overall slope), the
  total response captured by targeting the top share.
The areas between the model's curve and the random / rule curves summarize the ranking; bootstrap
resamples of the randomized rows (the model stays fixed: it was fitted on the other file) give
their intervals. Slopes come from cumulative sums, so a curve costs one sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Ranking:
    """A way to order customers: a score per row and whether high scores come first."""

    name: str
    score: np.ndarray
    descending: bool = True


def ranking_order(score: np.ndarray, descending: bool, tie_key: np.ndarray) -> np.ndarray:
    """Row order by score; ties (e.g. equal ages) by a seeded random key, so no ranking gets an order for free."""
    primary = -np.asarray(score, float) if descending else np.asarray(score, float)
    return np.lexsort((tie_key, primary))


def top_share_slopes(order: np.ndarray, discount: np.ndarray, profit: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Least-squares slope of profit on discount among the first `counts[j]` rows of `order`."""
    t, y = discount[order], profit[order]
    s_t, s_y = np.cumsum(t), np.cumsum(y)
    s_tt, s_ty = np.cumsum(t * t), np.cumsum(t * y)
    k = counts.astype(float)
    i = counts - 1
    covariance = s_ty[i] - s_t[i] * s_y[i] / k
    variance = s_tt[i] - s_t[i] ** 2 / k
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(variance > 0, covariance / variance, np.nan)


def curve_counts(n: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Population shares 1/points .. 1 and the row counts they stand for."""
    shares = np.arange(1, points + 1) / points
    return shares, np.maximum(1, np.rint(shares * n).astype(int))


def response_curves(
    rankings: list[Ranking],
    discount: np.ndarray,
    profit: np.ndarray,
    points: int,
    min_rows: int,
    tie_key: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cumulative elasticity, cumulative gain) tables: population_share, one column per ranking, random."""
    discount, profit = np.asarray(discount, float), np.asarray(profit, float)
    shares, counts = curve_counts(len(discount), points)
    overall = top_share_slopes(np.arange(len(discount)), discount, profit, np.array([len(discount)]))[0]
    elasticity = {"population_share": shares}
    for ranking in rankings:
        slopes = top_share_slopes(ranking_order(ranking.score, ranking.descending, tie_key), discount, profit, counts)
        elasticity[ranking.name] = np.where(counts >= min_rows, slopes, np.nan)
    elasticity["random"] = np.full(len(shares), overall)
    elasticity = pd.DataFrame(elasticity)
    gain = elasticity.copy()
    for column in gain.columns[1:]:
        gain[column] = gain[column] * gain["population_share"]
    return elasticity, gain


def area_between(curve: pd.DataFrame, first: str, second: str) -> float:
    """Integral over the population share of (first - second), from the origin (both curves start at 0)."""
    defined = curve[[first, second]].notna().all(axis=1).to_numpy()
    x = np.concatenate([[0.0], curve["population_share"].to_numpy()[defined]])
    gap = np.concatenate([[0.0], (curve[first] - curve[second]).to_numpy()[defined]])
    return float(np.trapezoid(gap, x))


def curve_areas(elasticity: pd.DataFrame, gain: pd.DataFrame, model: str, rule: str) -> dict[str, float]:
    """The four summary areas: model vs random and vs the rule, for both curves."""
    return {
        "gain_model_vs_random": area_between(gain, model, "random"),
        "gain_model_vs_rule": area_between(gain, model, rule),
        "elasticity_model_vs_random": area_between(elasticity, model, "random"),
        "elasticity_model_vs_rule": area_between(elasticity, model, rule),
    }


def evaluate_rankings(
    model: Ranking,
    rule: Ranking,
    discount: np.ndarray,
    profit: np.ndarray,
    points: int,
    min_rows: int,
    bootstrap: int,
    seed: int,
    level: float = 0.95,
) -> dict:
    """Curves, areas and bootstrap percentile intervals of the areas on one randomized file."""
    rng = np.random.default_rng(seed)
    n = len(discount)
    tie_key = rng.permutation(n)
    discount, profit = np.asarray(discount, float), np.asarray(profit, float)
    elasticity, gain = response_curves([model, rule], discount, profit, points, min_rows, tie_key)
    areas = curve_areas(elasticity, gain, model.name, rule.name)
    replicates = {name: [] for name in areas}
    for _ in range(bootstrap):
        rows = rng.integers(0, n, n)
        resampled = [Ranking(r.name, r.score[rows], r.descending) for r in (model, rule)]
        e, g = response_curves(resampled, discount[rows], profit[rows], points, min_rows, tie_key[rows])
        for name, value in curve_areas(e, g, model.name, rule.name).items():
            replicates[name].append(value)
    tail = 100 * (1 - level) / 2
    summary = {}
    for name, value in areas.items():
        entry = {"estimate": value}
        if bootstrap:
            low, high = np.nanpercentile(replicates[name], [tail, 100 - tail])
            entry.update({"ci_low": float(low), "ci_high": float(high), "bootstrap": bootstrap})
        summary[name] = entry
    return {"elasticity_curve": elasticity, "gain_curve": gain, "areas": summary}
