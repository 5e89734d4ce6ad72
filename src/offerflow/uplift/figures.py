"""PNG figures of the uplift curves (matplotlib, Agg backend: no display needed, byte-stable output)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from offerflow.figures import figure_style, save_png

STYLES = {"model": ("tab:blue", "-"), "heuristic": ("tab:orange", "--"), "random": ("tab:gray", ":")}


def plot_uplift_curves(curves: dict[str, pd.DataFrame], treatments: list[str], title: str, target: Path | str) -> Path:
    """Cumulative gain (top row) and Qini (bottom row) per treatment arm: model vs heuristic vs random."""
    with figure_style() as plt:
        rows = [("cumulative_gain", "incremental conversions per customer"), ("qini", "Qini (per customer)")]
        figure, axes = plt.subplots(len(rows), len(treatments), figsize=(4.2 * len(treatments), 6.4), squeeze=False)
        for r, (name, label) in enumerate(rows):
            table = curves[name]
            for c, arm in enumerate(treatments):
                ax = axes[r][c]
                for ranking, (color, style) in STYLES.items():
                    column = f"{arm}_{ranking}"
                    if column in table.columns:
                        ax.plot(table["population_share"], table[column], color=color, linestyle=style, label=ranking)
                ax.set_title(f"{arm} vs control")
                ax.set_xlabel("share of customers targeted (by ranking)")
                ax.set_ylabel(label)
                ax.grid(alpha=0.3)
        axes[0][0].legend(loc="upper left", fontsize=8)
        figure.suptitle(title)
        figure.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.09, wspace=0.3, hspace=0.45)  # fixed: fast
        return save_png(figure, target)
