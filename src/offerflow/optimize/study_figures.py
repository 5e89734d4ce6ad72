"""The coupon study's pictures, for a marketing analyst: who the customers are, how likely each segment is
to convert under each offer, and which offer each segment gets.

- customer counts: customers per age x frequency cell;
- probability heatmaps: one panel per offer on the same grid, a shared color scale, cells in %;
- probability lines (a parallel plot): offers on the x axis, one line per segment;
- allocation: one panel per offer on the grid, each cell the share of the segment that gets the offer
  and its customers; cells held at a forced minimum share are hatched. Works for the segment plan
  (shares) and for the customer-level plan (counted per cell).

Only two segment columns make a grid; with one or three or more, the counts, probabilities and allocation
are drawn as horizontal bars, one per segment labelled by its category values. Segment ids never appear.
Every figure is drawn inside offerflow.figures.figure_style() and saved by save_png(), so the bytes
depend on the data only (not on a global style another library set). Sizes follow from the number of
categories (the same data always gives the same size). The numbers come from offerflow.optimize.study_grids.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from offerflow.figures import figure_style, save_png
from offerflow.optimize.study_grids import (
    AllocationCells, allocation_cells, category_orders, customer_count_grid, customer_plan_cells, grid_columns,
    layout_grid, layout_rows, probability_cells, segment_label,
)
from offerflow.schema import N_CUSTOMERS, OFFER

Names = Mapping[str, str] | None  # plain-language name per segment column ("age_cat" -> "age group")
OFFER_COLORS = ("tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown")
HATCH = "///"


def plot_customer_counts(customers: pd.DataFrame, segment_columns: Sequence[str], target: Path | str, names: Names = None) -> Path:
    """Customers per cell of the age x frequency grid, annotated; bars per segment without a grid."""
    columns = list(segment_columns)
    total = len(customers)
    title = f"How many customers are in each segment ({total:,} customers)"
    with figure_style() as plt:
        if grid_columns(columns) is None:
            counts = layout_rows(customers.assign(**{N_CUSTOMERS: 1}), columns, N_CUSTOMERS)
            figure, ax = plt.subplots(figsize=(7.5, 1.3 + 0.28 * len(counts)), layout="constrained")
            bars = ax.barh(range(len(counts)), counts.to_numpy(), color="tab:green")
            ax.bar_label(bars, labels=[f"{v:,.0f}" for v in counts], padding=3, fontsize=8)
            _segment_axis(ax, counts.index, columns, names)
            ax.set_xlabel("customers")
            ax.margins(x=0.12)
        else:
            grid = customer_count_grid(customers, columns)
            rows = [f"{label}\n({n:,})" for label, n in zip(grid.index, grid.sum(axis=1))]
            cols = [f"{label}\n({n:,})" for label, n in zip(grid.columns, grid.sum(axis=0))]
            figure, ax = plt.subplots(figsize=(2.2 + 1.05 * grid.shape[1], 1.6 + 0.62 * grid.shape[0]), layout="constrained")
            image = _heatmap(ax, grid.to_numpy(dtype=float), "Greens", 0.0, float(grid.to_numpy().max()) or 1.0,
                             [f"{v:,.0f}" for v in grid.to_numpy().ravel()])
            _grid_axes(ax, rows, cols, columns, names, left=True)
            figure.colorbar(image, ax=ax, label="customers", shrink=0.9)
            title += "\n(n) under a group: its customers"
        figure.suptitle(title)
        return save_png(figure, target)


def plot_probability_heatmaps(
    table: pd.DataFrame, segment_columns: Sequence[str], arms: Sequence[str], target: Path | str, names: Names = None,
    offer_labels: Sequence[str] | None = None, outcome: str = "conversion", source: str | None = None,
) -> Path:
    """One panel per offer: each cell the probability of a conversion (in %), one color scale for all panels.

    table: a segment probability table (segment columns, prob_<arm>...), learned or given. source: a few words
    on where the numbers come from ("learned from 12 campaigns"), put under the title.
    """
    columns, arms = list(segment_columns), list(arms)
    cells = probability_cells(table, columns, arms)
    top = float(np.ceil(max(cells["probability"].max(), 1e-9) * 10) / 10)
    decimals = _decimals(cells["probability"])
    panel_titles = _offer_titles(arms, offer_labels)
    with figure_style() as plt:
        if grid_columns(columns) is None:
            orders = category_orders(cells, columns)
            values = pd.DataFrame({arm: layout_rows(cells[cells[OFFER] == arm], columns, "probability", orders) for arm in arms})
            figure, ax = plt.subplots(figsize=(8.0, 1.4 + 0.22 * len(values) * len(arms)), layout="constrained")
            _grouped_bars(ax, values, panel_titles, lambda v: _percent(v, decimals))
            _segment_axis(ax, values.index, columns, names)
            ax.set_xlabel(f"probability of a {outcome}")
            ax.set_xlim(0, min(1.0, top + 0.12))
            ax.xaxis.set_major_formatter(_percent_formatter())
        else:
            orders = category_orders(cells, columns)
            grids = [layout_grid(cells[cells[OFFER] == arm], columns, "probability", orders=orders) for arm in arms]
            shape = grids[0].shape
            figure, axes = plt.subplots(1, len(arms), figsize=(1.6 + (0.85 * shape[1] + 0.5) * len(arms), 1.9 + 0.5 * shape[0]),
                                        layout="constrained", sharey=True, squeeze=False)
            for i, (ax, grid) in enumerate(zip(axes[0], grids)):
                values = grid.to_numpy(dtype=float)
                image = _heatmap(ax, values, "YlOrRd", 0.0, top, [_percent(v, decimals) for v in values.ravel()])
                _grid_axes(ax, list(grid.index), list(grid.columns), columns, names, left=i == 0)
                ax.set_title(panel_titles[i], fontsize=9)
            figure.colorbar(image, ax=list(axes[0]), label=f"probability of a {outcome}", shrink=0.9, format=_percent_formatter())
        figure.suptitle(f"Probability of a {outcome} in each segment, per offer" + (f"\n({source})" if source else ""))
        return save_png(figure, target)


def plot_probability_lines(
    table: pd.DataFrame, segment_columns: Sequence[str], arms: Sequence[str], target: Path | str,
    offer_labels: Sequence[str] | None = None, outcome: str = "conversion", names: Names = None,
    coupon_cost: Mapping[str, float] | None = None,
) -> Path:
    """Parallel plot: offers on the x axis in arm order, one line per segment ("age20~34 / freq2").

    The subtitle says in how many segments the probability rises from each offer to the next (phrased as
    "with the coupon value" when coupon_cost shows the offers in increasing value); a segment whose
    probability falls somewhere is dashed.
    Color follows the first segment column, the marker the second, so a reader finds a line by its groups.
    """
    columns, arms = list(segment_columns), list(arms)
    cells = probability_cells(table, columns, arms)
    costs = None if coupon_cost is None else [float(coupon_cost.get(arm, 0.0)) for arm in arms]
    by_coupon = costs is not None and all(a < b for a, b in zip(costs, costs[1:]))
    orders = category_orders(cells, columns)
    wide = pd.DataFrame({arm: layout_rows(cells[cells[OFFER] == arm], columns, "probability", orders) for arm in arms})
    keys = cells.drop_duplicates(columns).set_index(columns).index  # category values behind each label
    by_label = {segment_label(key if isinstance(key, tuple) else (key,)): key for key in keys}
    steps = np.diff(wide.to_numpy(dtype=float), axis=1)
    rising = (steps >= -1e-12).all(axis=1)
    first = orders[columns[0]]
    second = orders[columns[1]] if len(columns) > 1 else [None]
    markers = ("o", "s", "^", "D", "v", "P", "X", "*")
    with figure_style() as plt:
        figure, ax = plt.subplots(figsize=(9.0, 5.2), layout="constrained")
        colors = plt.get_cmap("tab10")
        for row, (label, values) in enumerate(wide.iterrows()):
            key = by_label[label]
            key = key if isinstance(key, tuple) else (key,)
            color = colors(first.index(key[0]) % 10)
            marker = markers[second.index(key[1]) % len(markers)] if len(key) > 1 else "o"
            ax.plot(range(len(arms)), values.to_numpy(dtype=float), color=color, marker=marker, markersize=5,
                    linestyle="-" if rising[row] else "--", linewidth=1.4, label=label)
        ax.set_xticks(range(len(arms)), list(offer_labels) if offer_labels is not None else arms)
        ax.set_xlim(-0.15, len(arms) - 0.85)
        ax.set_xlabel("offer")
        ax.set_ylabel(f"probability of a {outcome}")
        ax.yaxis.set_major_formatter(_percent_formatter())
        ax.set_ylim(0, min(1.0, float(np.ceil(wide.to_numpy().max() * 10) / 10) + 0.02))
        ax.grid(alpha=0.3)
        legend_title = textwrap.fill("segment: " + " / ".join(_name(c, names) for c in columns), 30)
        ax.legend(title=legend_title, alignment="left", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, title_fontsize=8,
                  ncols=1 if len(wide) <= 20 else 2)
        ax.set_title(_trend_sentence(steps, by_coupon), fontsize=9)
        figure.suptitle(f"Probability of a {outcome} per offer, one line per segment")
        return save_png(figure, target)


def plot_segment_plan(
    plan: pd.DataFrame, segment_columns: Sequence[str], arms: Sequence[str], min_share: float | Mapping[str, float] | None,
    target: Path | str, names: Names = None, offer_labels: Sequence[str] | None = None,
) -> Path:
    """The segment plan (optimize's long format) on the grid; shares held at the forced minimum are hatched."""
    cells = allocation_cells(plan, segment_columns, arms, min_share)
    return plot_allocation(cells, segment_columns, arms, target, "Which offer each segment gets (segment plan)", names, offer_labels)


def plot_customer_plan(
    customer_plan: pd.DataFrame, segments: pd.DataFrame, segment_columns: Sequence[str], arms: Sequence[str],
    target: Path | str, names: Names = None, offer_labels: Sequence[str] | None = None,
) -> Path:
    """The customer-level plan counted per cell of the grid (segments: the catalog with segment columns)."""
    cells = customer_plan_cells(customer_plan, segments, segment_columns, arms)
    title = "Which offer each segment's customers get (customer-level plan)"
    return plot_allocation(cells, segment_columns, arms, target, title, names, offer_labels)


def plot_allocation(
    cells: AllocationCells, segment_columns: Sequence[str], arms: Sequence[str], target: Path | str, title: str,
    names: Names = None, offer_labels: Sequence[str] | None = None,
) -> Path:
    """One panel per offer: each cell the share of the segment that gets it and its customers; hatched where
    the share is held at the forced minimum. Without a grid: one stacked bar of shares per segment."""
    columns, arms = list(segment_columns), list(arms)
    panel_titles = _offer_titles(arms, offer_labels)
    marked = bool(cells.cells["at_minimum"].any())
    decimals = None  # shares: "10%" at the minimum, "61.7%" where the plan splits a segment
    with figure_style() as plt:
        if grid_columns(columns) is None:
            rows = cells.rows(columns, arms)
            figure, ax = plt.subplots(figsize=(8.5, 1.6 + 0.3 * len(rows["share"])), layout="constrained")
            _stacked_shares(ax, rows, arms, panel_titles, decimals)
            _segment_axis(ax, rows["share"].index, columns, names)
            ax.set_xlabel("share of the segment's customers getting the offer")
        else:
            grids = cells.grids(columns, arms)
            shape = grids["share"][arms[0]].shape
            figure, axes = plt.subplots(1, len(arms), figsize=(1.6 + (0.95 * shape[1] + 0.5) * len(arms), 2.2 + 0.55 * shape[0]),
                                        layout="constrained", sharey=True, squeeze=False)
            for i, (ax, arm) in enumerate(zip(axes[0], arms)):
                share, customers = grids["share"][arm], grids["customers"][arm]
                texts = [_share_text(s, n, decimals) for s, n in zip(share.to_numpy().ravel(), customers.to_numpy().ravel())]
                flags = grids["at_minimum"][arm].to_numpy()
                image = _heatmap(ax, share.to_numpy(dtype=float), "Blues", 0.0, 1.0, texts, boxed=flags)
                _hatch_cells(ax, flags)
                _grid_axes(ax, list(share.index), list(share.columns), columns, names, left=i == 0)
                ax.set_title(panel_titles[i], fontsize=9)
            figure.colorbar(image, ax=list(axes[0]), label="share of the segment's customers getting the offer",
                            shrink=0.9, format=_percent_formatter())
        if marked:
            from matplotlib.patches import Patch

            handle = Patch(facecolor="white", edgecolor="dimgray", hatch=HATCH, label=_minimum_text(cells.minimum))
            figure.legend(handles=[handle], loc="outside lower center", frameon=False)
        figure.suptitle(f"{title}\ncell: share of the segment (customers)" if grid_columns(columns) else title)
        return save_png(figure, target)


# --- drawing helpers -------------------------------------------------------------------------------------


def _heatmap(ax, values: np.ndarray, cmap: str, vmin: float, vmax: float, texts: Sequence[str], boxed: np.ndarray | None = None):
    """imshow with one annotation per cell, white on dark cells; empty cells (NaN) are left blank; `boxed`
    cells (hatched ones) get a light box behind their text so the hatching does not cross it."""
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    box_it = (lambda row, column: False) if boxed is None else (lambda row, column: bool(boxed[row, column]))
    for (row, column), text in zip(np.ndindex(values.shape), texts):
        value = values[row, column]
        if np.isnan(value):
            continue
        red, green, blue, _ = image.cmap(image.norm(value))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        box = {"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
        ax.text(column, row, text, ha="center", va="center", fontsize=8, color="white" if dark and not box_it(row, column) else "black",
                bbox=box if box_it(row, column) else None)
    return image


def _grid_axes(ax, rows: Sequence, cols: Sequence, columns: Sequence[str], names: Names, left: bool) -> None:
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], fontsize=8)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=8)
    ax.tick_params(length=0)
    ax.set_xlabel(_name(columns[1], names))
    if left:
        ax.set_ylabel(_name(columns[0], names))


def _segment_axis(ax, labels: Sequence[str], columns: Sequence[str], names: Names) -> None:
    ax.set_yticks(range(len(labels)), list(labels), fontsize=8)
    ax.invert_yaxis()  # first segment on top, as in a table
    ax.set_ylabel("segment (" + " / ".join(_name(c, names) for c in columns) + ")")


def _grouped_bars(ax, values: pd.DataFrame, labels: Sequence[str], text) -> None:
    height = 0.8 / values.shape[1]
    for j, arm in enumerate(values.columns):
        positions = np.arange(len(values)) - 0.4 + height * (j + 0.5)
        bars = ax.barh(positions, values[arm].to_numpy(dtype=float), height=height, color=OFFER_COLORS[j % len(OFFER_COLORS)],
                       label=labels[j].replace("\n", ": "))
        ax.bar_label(bars, labels=[text(v) for v in values[arm]], padding=2, fontsize=7)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="offer")


def _stacked_shares(ax, rows: dict[str, pd.DataFrame], arms: Sequence[str], labels: Sequence[str], decimals: int | None) -> None:
    share, customers, at_minimum = rows["share"], rows["customers"], rows["at_minimum"]
    from matplotlib.patches import Patch

    left = np.zeros(len(share))
    handles = []
    for j, arm in enumerate(arms):
        color = OFFER_COLORS[j % len(OFFER_COLORS)]
        widths = share[arm].fillna(0.0).to_numpy(dtype=float)
        bars = ax.barh(np.arange(len(share)), widths, left=left, color=color, edgecolor="white")
        for bar, flag in zip(bars, at_minimum[arm]):
            bar.set_hatch(HATCH if flag else "")
        handles.append(Patch(facecolor=color, label=labels[j].replace("\n", ": ")))
        texts = [_share_text(s, n, decimals).replace("\n", " ") if s >= 0.12 else "" for s, n in zip(widths, customers[arm])]
        ax.bar_label(bars, labels=texts, label_type="center", fontsize=7, color="white")
        left += widths
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(_percent_formatter())
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="offer")


def _hatch_cells(ax, flags: np.ndarray) -> None:
    from matplotlib.patches import Rectangle

    for row, column in zip(*np.nonzero(flags)):
        ax.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, hatch=HATCH, edgecolor="dimgray",
                               linewidth=0.0, alpha=0.55))


def _trend_sentence(steps: np.ndarray, by_coupon: bool) -> str:
    """How the lines run, counted, not assumed: rising at every step, never falling, or falling somewhere."""
    n = len(steps)
    strictly = int((steps > 1e-12).all(axis=1).sum())
    never_falls = int((steps >= -1e-12).all(axis=1).sum())
    how = "with the coupon value" if by_coupon else "from each offer to the next"
    if strictly == n:
        return f"In all {n} segments the probability rises {how}"
    if never_falls == n:
        return f"In all {n} segments the probability never falls {how} (it rises at every step in {strictly})"
    return f"The probability rises or stays {how} in {never_falls} of {n} segments; dashed: it falls somewhere"


def _offer_titles(arms: Sequence[str], offer_labels: Sequence[str] | None) -> list[str]:
    if offer_labels is None:
        return list(arms)
    if len(offer_labels) != len(arms):
        raise ValueError(f"{len(offer_labels)} offer labels for {len(arms)} offers {list(arms)}")
    return [label.replace("\n", ": ") for label in offer_labels]


def _minimum_text(minimum: Mapping[str, float]) -> str:
    floors = {arm: share for arm, share in minimum.items() if share > 0}
    if len(set(floors.values())) == 1:
        return f"held at the forced {_percent(next(iter(floors.values())))} minimum share (optimize.min_share)"
    shown = ", ".join(f"{arm} {_percent(share)}" for arm, share in floors.items())
    return f"held at the offer's forced minimum share ({shown}; optimize.min_share)"


def _share_text(share: float, customers: float, decimals: int | None = None) -> str:
    """"80%\n(160)"; a dash where nobody gets the offer (the color says 0 already, the dash keeps it quiet)."""
    if np.isnan(share):
        return ""
    return "–" if share == 0 else f"{_percent(share, decimals)}\n({customers:,.0f})"


def _decimals(values: pd.Series) -> int:
    """0 when every value is a whole percent (the true table: 29%), else 1 (learned: 24.0%, 56.9%): one format per figure."""
    finite = values.dropna().to_numpy(dtype=float) * 100
    return 0 if np.allclose(finite, np.round(finite), rtol=0, atol=0.05) else 1


def _percent(value: float, decimals: int | None = None) -> str:
    """"10%"; without `decimals`, one decimal only where a whole percent would round (legend texts)."""
    if np.isnan(value):
        return ""
    if decimals is None:
        decimals = 0 if abs(value * 100 - round(value * 100)) < 0.05 else 1
    return f"{value:.{decimals}%}"


def _percent_formatter():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


def _name(column: str, names: Names) -> str:
    return (names or {}).get(column, column)
