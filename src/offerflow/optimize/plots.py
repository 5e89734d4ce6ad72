"""PNG figures of the optimize stage (matplotlib, Agg backend, no metadata: the bytes depend on the data only).

- allocation shares: a heatmap of the share of each segment (rows) that gets each offer (columns);
- budget frontier: incremental conversions against the budget, and what a conversion costs on average
  and at the margin, with the configured and the recommended budget marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from offerflow.figures import figure_style, save_png


def plot_allocation_shares(plan: pd.DataFrame, segment_columns: Sequence[str], arms: Sequence[str], target: Path | str) -> Path:
    """Heatmap of plan shares: segments (labelled by their segment columns) x offers, each cell annotated."""
    with figure_style() as plt:
        return _draw_allocation_shares(plt, plan, segment_columns, arms, target)


def _draw_allocation_shares(plt, plan, segment_columns, arms, target) -> Path:
    shares = plan.pivot_table(index="segment_id", columns="offer", values="share", aggfunc="sum").reindex(columns=list(arms))
    labels = plan.drop_duplicates("segment_id").set_index("segment_id").loc[shares.index, list(segment_columns)]
    names = [" / ".join(str(v) for v in row) for row in labels.itertuples(index=False)]
    values = shares.to_numpy(dtype=float)
    height = 1.2 + 0.32 * len(names)
    figure, ax = plt.subplots(figsize=(2.6 + 1.1 * len(arms), height))
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for (row, column), share in np.ndenumerate(values):
        ax.text(column, row, f"{share:.2f}", ha="center", va="center", fontsize=8, color="white" if share > 0.6 else "black")
    ax.set_xticks(range(len(arms)), list(arms))
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("offer")
    ax.set_title("share of each segment per offer")
    top, bottom = 1 - 0.45 / height, 0.5 / height
    figure.subplots_adjust(left=0.32, right=0.8, top=top, bottom=bottom)
    figure.colorbar(image, cax=figure.add_axes((0.84, bottom, 0.035, top - bottom)), label="share")
    return save_png(figure, target)


def plot_budget_frontier(
    frontier: pd.DataFrame, budget: float, recommended: float | None, target: Path | str, worth: float | None = None
) -> Path:
    """Left: incremental conversions vs budget. Right: average and marginal cost per incremental conversion."""
    with figure_style() as plt:
        return _draw_budget_frontier(plt, frontier, budget, recommended, target, worth)


def _draw_budget_frontier(plt, frontier, budget, recommended, target, worth) -> Path:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = frontier["budget"]
    left.plot(x, frontier["expected_incremental_conversions"], marker="o", markersize=3, color="tab:blue")
    left.set_ylabel("expected incremental conversions")
    right.plot(x, frontier["cost_per_incremental_conversion"], marker="o", markersize=3, label="average", color="tab:blue")
    marginal = pd.to_numeric(frontier["marginal_cost_per_incremental_conversion"], errors="coerce")
    right.step(x, marginal, where="post", label="marginal (1 / budget dual)", color="tab:orange")
    if worth is not None:
        right.axhline(worth, color="tab:gray", linestyle=":", label=f"value / target {worth:,.4g} USD")
    right.set_ylabel("USD per incremental conversion")
    for ax in (left, right):
        ax.axvline(budget, color="black", linestyle="--", linewidth=1, label=f"budget {budget:,.0f}")
        if recommended is not None:
            ax.axvline(recommended, color="tab:green", linestyle="-.", linewidth=1, label=f"recommended {recommended:,.0f}")
        ax.set_xlabel("budget (USD of expected coupon cost)")
        ax.grid(alpha=0.3)
    left.legend(loc="lower right", fontsize=8)
    right.legend(loc="upper left", fontsize=8)
    figure.suptitle("budget frontier")
    figure.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.13, wspace=0.25)
    return save_png(figure, target)
