"""PNG figures of the journey study (matplotlib, Agg backend, default style, no metadata: stable bytes).

- policy values: per policy, the true value (testbed) and each off-policy estimate with its interval and
  its high-confidence lower bound, so a reader sees at a glance whether the log alone would have ranked
  the policies right;
- learned actions: the share of customers receiving each action at each campaign step under the learned
  policy, which shows the sequencing (preparatory offer first, then the payoff offer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from offerflow.figures import figure_style
from offerflow.io import write_with

DPI = 90
ESTIMATORS = {  # estimator -> (label, colour, marker)
    "pdis": ("per-decision importance sampling", "tab:orange", "s"),
    "weighted_pdis": ("weighted per-decision IS", "tab:green", "D"),
    "doubly_robust": ("doubly robust", "tab:blue", "o"),
}
ACTION_COLOURS = ["#bdbdbd", "tab:blue", "tab:orange", "tab:red", "tab:green", "tab:purple", "tab:brown"]


def _save(figure, target: Path | str) -> Path:
    write_with(target, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None}))
    return Path(target)


def plot_policy_values(table: pd.DataFrame, target: Path | str) -> Path:
    """True value vs off-policy estimates (intervals as bars, lower bounds as triangles) per policy."""
    policies = list(dict.fromkeys(table["policy"]))
    with figure_style() as plt, plt.rc_context({"font.size": 8}):
        figure, ax = plt.subplots(figsize=(8.0, 5.2))
        offsets = np.linspace(-0.27, 0.27, len(ESTIMATORS) + 1)
        positions = np.arange(len(policies))
        if "true_value" in table.columns:
            truth = table.drop_duplicates("policy").set_index("policy").loc[policies]
            ax.errorbar(positions + offsets[0], truth["true_value"],
                        yerr=[truth["true_value"] - truth["true_value_low"], truth["true_value_high"] - truth["true_value"]],
                        fmt="*", color="black", markersize=9, capsize=3, label="true value (simulation, 95%)")
        for offset, (estimator, (label, colour, marker)) in zip(offsets[1:], ESTIMATORS.items()):
            rows = table[table["estimator"] == estimator].set_index("policy").reindex(policies)
            if rows["estimate"].isna().all():
                continue
            x = positions + offset
            ax.errorbar(x, rows["estimate"], yerr=[rows["estimate"] - rows["low"], rows["high"] - rows["estimate"]],
                        fmt=marker, color=colour, capsize=3, markersize=5, label=f"{label} (95% interval)")
            ax.plot(x, rows["lower_bound"], linestyle="none", marker="v", color=colour, markersize=5, alpha=0.7)
        ax.plot([], [], linestyle="none", marker="v", color="gray", label="high-confidence lower bound")
        ax.set_xticks(positions, [name.replace("_", " ") for name in policies])
        ax.set_ylabel("campaign value per customer (USD)")
        ax.set_title("Policy value: truth vs. estimates from the log alone")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, fontsize=7, frameon=False)
        figure.subplots_adjust(left=0.09, right=0.98, top=0.93, bottom=0.2)
        path = _save(figure, target)
        plt.close(figure)
    return path


def plot_action_shares(shares: pd.DataFrame, actions: list[str], target: Path | str) -> Path:
    """Stacked bars: share of customers getting each action at each campaign step under the learned policy."""
    pivot = shares.pivot(index="step", columns="action", values="share").reindex(columns=actions).fillna(0.0)
    with figure_style() as plt, plt.rc_context({"font.size": 8}):
        figure, ax = plt.subplots(figsize=(6.4, 3.8))
        bottom = np.zeros(len(pivot))
        labels = [str(step) for step in pivot.index]
        for position, action in enumerate(actions):
            ax.bar(labels, pivot[action], bottom=bottom, color=ACTION_COLOURS[position % len(ACTION_COLOURS)],
                   label=action.replace("_", " "))
            bottom += pivot[action].to_numpy()
        ax.set_xlabel("campaign step")
        ax.set_ylabel("share of customers")
        ax.set_ylim(0, 1)
        ax.set_title("What the learned policy sends at each campaign step")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
        figure.subplots_adjust(left=0.11, right=0.78, top=0.9, bottom=0.13)
        path = _save(figure, target)
        plt.close(figure)
    return path
