"""PNG figures of the optimize stage (matplotlib, Agg backend, no metadata: the bytes depend on the data only).

- allocation shares: the segment plan on the age x frequency grid (drawn by study_figures.plot_segment_plan);
- budget frontier: incremental conversions against the budget, and what an incremental conversion costs on
  average and at the margin (one more conversion), with the configured and the recommended budget marked.
  "Incremental" means beyond what the control offer would bring; the margin is the LP's budget price (what one
  more dollar buys) turned into what one more incremental conversion costs, the number a budget owner compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from offerflow.figures import figure_style, save_png


def plot_allocation_shares(
    plan: pd.DataFrame, segment_columns: Sequence[str], arms: Sequence[str], target: Path | str,
    min_share: float | Mapping[str, float] | None = None, names: Mapping[str, str] | None = None,
    offer_labels: Sequence[str] | None = None,
) -> Path:
    """The segment plan as the analyst's grid (see study_figures.plot_segment_plan); kept under this name for
    the optimize runner. Shares held at `min_share` are hatched."""
    from offerflow.optimize.study_figures import plot_segment_plan

    return plot_segment_plan(plan, segment_columns, arms, min_share, target, names, offer_labels)


def plot_budget_frontier(
    frontier: pd.DataFrame, budget: float, recommended: float | None, target: Path | str, worth: float | None = None,
    worth_label: str = "what a conversion is worth (or the target cost)",
) -> Path:
    """Left: incremental conversions vs budget. Right: average and marginal cost per incremental conversion.
    worth: the dollar line the recommendation compares the marginal cost with, named by worth_label."""
    with figure_style() as plt:
        return _draw_budget_frontier(plt, frontier, budget, recommended, target, worth, worth_label)


def _draw_budget_frontier(plt, frontier, budget, recommended, target, worth, worth_label) -> Path:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = frontier["budget"]
    left.plot(x, frontier["expected_incremental_conversions"], marker="o", markersize=3, color="tab:blue")
    left.set_ylabel("extra conversions the offers bring\n(expected incremental conversions)")
    left.set_title("What each budget buys", fontsize=9)
    right.plot(x, frontier["cost_per_incremental_conversion"], marker="o", markersize=3, color="tab:blue",
               label="average cost of an incremental conversion")
    marginal = pd.to_numeric(frontier["marginal_cost_per_incremental_conversion"], errors="coerce")
    right.step(x, marginal, where="post", color="tab:orange", label="cost of one more incremental conversion")
    if worth is not None:
        right.axhline(worth, color="tab:gray", linestyle=":", label=f"{worth_label}: {worth:,.4g} USD")
    right.set_ylabel("USD per incremental conversion")
    right.set_title("What a conversion costs", fontsize=9)
    for ax in (left, right):
        ax.axvline(budget, color="black", linestyle="--", linewidth=1, label=f"budget {budget:,.0f} USD")
        if recommended is not None:
            ax.axvline(recommended, color="tab:green", linestyle="-.", linewidth=1, label=f"recommended {recommended:,.0f} USD")
        ax.set_xlabel("budget (USD of expected coupon cost)")
        ax.grid(alpha=0.3)
    left.legend(loc="lower right", fontsize=8)
    right.legend(loc="upper left", fontsize=8)
    figure.suptitle("Budget frontier: the best plan at every budget (incremental = beyond what the control offer brings)")
    figure.subplots_adjust(left=0.09, right=0.98, top=0.86, bottom=0.13, wspace=0.25)
    return save_png(figure, target)
