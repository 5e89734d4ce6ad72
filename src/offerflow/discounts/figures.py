"""PNG figures of the discount study (matplotlib, Agg backend, default style, byte-stable output)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from offerflow.io import write_with

DPI = 90
COLORS = {"model": "tab:blue", "rule": "tab:orange", "random": "tab:gray"}


@contextmanager
def _figure(figsize: tuple[float, float], ncols: int = 1) -> Iterator[tuple]:
    from offerflow.figures import figure_style

    # causalml sets a global style on import: offerflow's one style, so every entry point matches
    with figure_style() as plt, plt.rc_context({"font.size": 8}):
        figure, axes = plt.subplots(1, ncols, figsize=figsize, squeeze=False)
        try:
            yield figure, axes[0]
        finally:
            plt.close(figure)


def _save(figure, target: Path | str) -> Path:
    # no metadata: the PNG's bytes depend on the data only (no software version or date stamp)
    return write_with(target, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None}))


def plot_profit_vs_discount(panels: list[tuple[str, pd.DataFrame, float, float]], target: Path | str) -> Path:
    """One panel per file: each customer's profit against the discount they got, with the fitted line.

    panels: (title, frame with columns discount and profit, slope, intercept).
    """
    with _figure((4.6 * len(panels), 3.8), len(panels)) as (figure, axes):
        for ax, (title, frame, slope, intercept) in zip(axes, panels):
            ax.scatter(frame["discount"], frame["profit"], s=3, alpha=0.25, color="tab:blue", linewidths=0)
            x = np.array([frame["discount"].min(), frame["discount"].max()])
            ax.plot(
                x,
                intercept + slope * x,
                color="tab:red",
                label=f"fitted line: {slope:+.3f} USD profit per discount USD",
            )
            ax.set_title(title)
            ax.set_xlabel("discount given (USD)")
            ax.set_ylabel("profit from the customer (USD)")
            ax.legend(loc="upper right", fontsize=7)
            ax.grid(alpha=0.3)
        figure.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.13, wspace=0.25)
        return _save(figure, target)


def plot_effect_distribution(effects: np.ndarray, average: float, target: Path | str) -> Path:
    """Histogram of the customers' estimated profit change per extra discount dollar."""
    with _figure((5.6, 3.6)) as (figure, axes):
        ax = axes[0]
        ax.hist(effects, bins=60, color="tab:blue", alpha=0.8)
        ax.axvline(0.0, color="black", linewidth=1, label="no effect")
        ax.axvline(average, color="tab:red", linestyle="--", label=f"average: {average:+.3f}")
        share = float(np.mean(np.asarray(effects) > 0))
        ax.set_title(f"Profit change per extra discount dollar, by customer ({share:.0%} positive)")
        ax.set_xlabel("estimated profit change per discount USD")
        ax.set_ylabel("customers")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        figure.subplots_adjust(left=0.11, right=0.98, top=0.9, bottom=0.14)
        return _save(figure, target)


def plot_response_curves(elasticity: pd.DataFrame, gain: pd.DataFrame, rule: str, target: Path | str) -> Path:
    """Cumulative elasticity and cumulative gain of the model's ranking vs the rule and random."""
    names = {"model": "model", rule: f"rule: {rule}", "random": "random"}
    with _figure((9.6, 3.8), 2) as (figure, axes):
        for ax, table, title, label in (
            (axes[0], elasticity, "Response of the top customers", "profit per discount USD among them"),
            (axes[1], gain, "Cumulative gain", "share x profit per discount USD"),
        ):
            for column, shown in names.items():
                color = COLORS["rule" if column == rule else column]
                style = ":" if column == "random" else "-"
                ax.plot(table["population_share"], table[column], color=color, linestyle=style, label=shown)
            ax.axhline(0.0, color="black", linewidth=0.6)
            ax.set_title(title)
            ax.set_xlabel("share of customers, best responders first (by each ranking)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        figure.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.13, wspace=0.28)
        return _save(figure, target)


def plot_policy_values(estimates: list[dict], target: Path | str) -> Path:
    """Expected profit per customer of each policy on the randomized test, with 95% intervals."""
    height = 0.55 * len(estimates) + 1.1
    with _figure((6.4, height)) as (figure, axes):
        ax = axes[0]
        y = np.arange(len(estimates))[::-1]
        values = np.array([e["value_per_customer"] for e in estimates])
        errors = np.array(
            [[e["value_per_customer"] - e["ci_low"], e["ci_high"] - e["value_per_customer"]] for e in estimates]
        ).T
        ax.errorbar(values, y, xerr=errors, fmt="o", color="tab:blue", capsize=3)
        ax.set_yticks(y, [f"{e['name']} (avg {e['mean_discount']:.0f} USD)" for e in estimates])
        ax.set_xlabel("expected profit per customer (USD), 95% interval")
        ax.set_title("What each discount policy earns on the randomized test")
        ax.grid(alpha=0.3, axis="x")
        figure.subplots_adjust(left=0.36, right=0.97, top=1 - 0.35 / height, bottom=0.5 / height)
        return _save(figure, target)
