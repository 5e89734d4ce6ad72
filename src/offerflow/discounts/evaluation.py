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


def _elasticities(
    rankings: list[Ranking],
    discount: np.ndarray,
    profit: np.ndarray,
    counts: np.ndarray,
    min_rows: int,
    tie_key: np.ndarray,
) -> dict[str, np.ndarray]:
    """Top-share slopes per ranking (NaN below min_rows) and the overall slope as `random`."""
    overall = top_share_slopes(np.arange(len(discount)), discount, profit, np.array([len(discount)]))[0]
    curves = {}
    for ranking in rankings:
        slopes = top_share_slopes(ranking_order(ranking.score, ranking.descending, tie_key), discount, profit, counts)
        curves[ranking.name] = np.where(counts >= min_rows, slopes, np.nan)
    curves["random"] = np.full(len(counts), overall)
    return curves


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
    curves = _elasticities(rankings, discount, profit, counts, min_rows, tie_key)
    elasticity = pd.DataFrame({"population_share": shares, **curves})
    gain = pd.DataFrame({"population_share": shares, **{name: shares * curve for name, curve in curves.items()}})
    return elasticity, gain


def _area(shares: np.ndarray, first: np.ndarray, second: np.ndarray) -> float:
    """Integral over the population share of (first - second), from the origin (both curves start at 0)."""
    defined = ~(np.isnan(first) | np.isnan(second))
    x = np.concatenate([[0.0], shares[defined]])
    gap = np.concatenate([[0.0], (first - second)[defined]])
    return float(np.trapezoid(gap, x))


def area_between(curve: pd.DataFrame, first: str, second: str) -> float:
    """Area between two columns of a curve table (see _area)."""
    shares = curve["population_share"].to_numpy(float)
    return _area(shares, curve[first].to_numpy(float), curve[second].to_numpy(float))


def _areas(shares: np.ndarray, curves: dict[str, np.ndarray], model: str, rule: str) -> dict[str, float]:
    """The four summary areas: model vs random and vs the rule, for both curves."""
    gain = {name: shares * curve for name, curve in curves.items()}
    return {
        "gain_model_vs_random": _area(shares, gain[model], gain["random"]),
        "gain_model_vs_rule": _area(shares, gain[model], gain[rule]),
        "elasticity_model_vs_random": _area(shares, curves[model], curves["random"]),
        "elasticity_model_vs_rule": _area(shares, curves[model], curves[rule]),
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
    shares, counts = curve_counts(n, points)
    elasticity, gain = response_curves([model, rule], discount, profit, points, min_rows, tie_key)
    areas = _areas(
        shares, _elasticities([model, rule], discount, profit, counts, min_rows, tie_key), model.name, rule.name
    )
    replicates = {name: [] for name in areas}
    for _ in range(bootstrap):
        rows = rng.integers(0, n, n)
        resampled = [Ranking(r.name, r.score[rows], r.descending) for r in (model, rule)]
        curves = _elasticities(resampled, discount[rows], profit[rows], counts, min_rows, tie_key[rows])
        for name, value in _areas(shares, curves, model.name, rule.name).items():
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
