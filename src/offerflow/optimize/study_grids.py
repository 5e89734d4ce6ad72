"""The numbers behind the coupon study's pictures, laid out the way an analyst reads them.

Segments are combinations of segment columns (age group x purchase frequency in the example). With two
segment columns the natural picture is a grid: rows are the first column's categories, columns the
second's. With one or three or more columns there is no grid, so the same numbers come one row per
segment, labelled by its category values ("age20~34 / freq2"), never by a segment id.

Category order matters to a reader (age~19 before age20~34, freq0 before freq3~), and alphabetical
order gets it wrong ("~" sorts after digits). Categories that all carry a number are ordered by their
first number; otherwise by the segment ids (which follow the user's reference table when there is one),
otherwise alphabetically. An ordered pandas Categorical keeps its own order.

Everything here is data in, data out (pandas), so each figure's numbers are tested without drawing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from offerflow.schema import CUSTOMER_ID, N_CUSTOMERS, OFFER, SEGMENT_ID, prob_column

__all__ = [
    "AllocationCells", "allocation_cells", "category_order", "category_orders", "customer_count_grid", "customer_plan_cells",
    "grid_columns", "layout_grid", "layout_rows", "offer_tick_labels", "probability_cells", "segment_label",
    "segment_labels",
]

LABEL_SEPARATOR = " / "
AT_BOUND = 1e-9  # a share this close to its minimum is held there (the LP snaps shares to 1e-9 of a bound)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def segment_label(values: Sequence[object]) -> str:
    """"age20~34 / freq2": a segment named by its category values."""
    return LABEL_SEPARATOR.join(str(value) for value in values)


def segment_labels(frame: pd.DataFrame, segment_columns: Sequence[str]) -> pd.Series:
    """Label of every segment id in `frame` (one row per segment id is enough), indexed by segment id."""
    columns = list(segment_columns)
    _require(frame, [SEGMENT_ID, *columns], "segment table")
    unique = frame.drop_duplicates(SEGMENT_ID).set_index(SEGMENT_ID)[columns].sort_index()
    return pd.Series([segment_label(row) for row in unique.itertuples(index=False)], index=unique.index, name="segment")


def grid_columns(segment_columns: Sequence[str]) -> tuple[str, str] | None:
    """(row column, column column) when the segments make a grid (exactly two columns), else None."""
    return (segment_columns[0], segment_columns[1]) if len(segment_columns) == 2 else None


def category_order(frame: pd.DataFrame, column: str) -> list:
    """Categories of `column` in reading order (see the module docstring for the rule)."""
    values = frame[column]
    present = list(pd.unique(values.dropna()))
    if isinstance(values.dtype, pd.CategoricalDtype) and values.dtype.ordered:
        return [category for category in values.dtype.categories if category in set(present)]
    numbers = {value: _first_number(value) for value in present}
    if all(number is not None for number in numbers.values()):
        return sorted(present, key=lambda value: (numbers[value], str(value)))
    if SEGMENT_ID in frame.columns:
        first_id = frame.groupby(column, observed=True)[SEGMENT_ID].min()
        return sorted(present, key=lambda value: (first_id[value], str(value)))
    return sorted(present, key=str)


def category_orders(frame: pd.DataFrame, segment_columns: Sequence[str]) -> dict[str, list]:
    return {column: category_order(frame, column) for column in segment_columns}


def layout_grid(
    cells: pd.DataFrame, segment_columns: Sequence[str], value: str, fill: float = np.nan,
    orders: Mapping[str, list] | None = None,
) -> pd.DataFrame:
    """One number per cell of the two-column grid (rows: first column, columns: second); `fill` where no segment.
    `orders` fixes the categories (so panels drawn from parts of one table share their rows and columns)."""
    pair = grid_columns(segment_columns)
    if pair is None:
        raise ValueError(f"a grid needs exactly two segment columns, got {list(segment_columns)}")
    rows, columns = pair
    orders = orders or category_orders(cells, pair)
    grid = cells.groupby([rows, columns], observed=True, sort=False)[value].sum(min_count=1).unstack(columns)
    return grid.reindex(index=orders[rows], columns=orders[columns]).fillna(fill)


def layout_rows(
    cells: pd.DataFrame, segment_columns: Sequence[str], value: str, orders: Mapping[str, list] | None = None
) -> pd.Series:
    """One number per segment, indexed by its label, segments in reading order of their categories."""
    columns = list(segment_columns)
    orders = orders or category_orders(cells, columns)
    totals = cells.groupby(columns, observed=True, sort=False)[value].sum(min_count=1).reset_index()
    ranks = [totals[column].map({c: i for i, c in enumerate(orders[column])}) for column in columns]
    order = np.lexsort(tuple(rank.to_numpy() for rank in reversed(ranks)))
    totals = totals.iloc[order]
    labels = [segment_label(row) for row in totals[columns].itertuples(index=False)]
    return pd.Series(totals[value].to_numpy(), index=pd.Index(labels, name="segment"), name=value)


def customer_count_grid(customers: pd.DataFrame, segment_columns: Sequence[str]) -> pd.DataFrame:
    """Customers per cell of the grid (0 where a combination has no customer)."""
    _require(customers, list(segment_columns), "customers")
    counted = customers.assign(**{N_CUSTOMERS: 1})
    return layout_grid(counted, segment_columns, N_CUSTOMERS, fill=0).astype("int64")


def probability_cells(table: pd.DataFrame, segment_columns: Sequence[str], arms: Sequence[str]) -> pd.DataFrame:
    """Long cells (segment columns, offer, probability) from a table like visit_probability.csv.

    A segment listed twice would be summed into nonsense on a grid, so it is an error naming the segment.
    """
    columns = list(segment_columns)
    _require(table, [*columns, *(prob_column(arm) for arm in arms)], "probability table")
    repeated = table[table.duplicated(columns, keep=False)]
    if len(repeated):
        raise ValueError(f"probability table lists segments more than once: {repeated[columns].head(5).to_dict('records')}")
    keep = [c for c in dict.fromkeys((SEGMENT_ID, *columns)) if c in table.columns]
    long = table.melt(id_vars=keep, value_vars=[prob_column(arm) for arm in arms], var_name=OFFER, value_name="probability")
    long[OFFER] = long[OFFER].str.slice(len(prob_column("")))
    return long


@dataclass(frozen=True)
class AllocationCells:
    """Per segment and offer: the share of the segment that gets the offer, its customers and whether the
    share is held at a forced minimum; `minimum` is each offer's forced minimum share (0 when none)."""

    cells: pd.DataFrame  # segment columns (+ segment_id), offer, share, customers, at_minimum
    minimum: dict[str, float]

    def grids(self, segment_columns: Sequence[str], arms: Sequence[str]) -> dict[str, dict[str, pd.DataFrame]]:
        """{"share"|"customers"|"at_minimum": {offer: grid}} on the two-column grid."""
        orders = category_orders(self.cells, segment_columns)
        out: dict[str, dict[str, pd.DataFrame]] = {"share": {}, "customers": {}, "at_minimum": {}}
        for arm in arms:
            one = self.cells[self.cells[OFFER] == arm].astype({"at_minimum": float})
            for name in out:
                out[name][arm] = layout_grid(one, segment_columns, name, orders=orders)
            out["at_minimum"][arm] = out["at_minimum"][arm].fillna(0.0).astype(bool)
        return out

    def rows(self, segment_columns: Sequence[str], arms: Sequence[str]) -> dict[str, pd.DataFrame]:
        """{"share"|"customers"|"at_minimum": frame of segment labels x offers}, for the fallback layout."""
        orders = category_orders(self.cells, segment_columns)
        cells = self.cells.astype({"at_minimum": float})
        out = {}
        for name in ("share", "customers", "at_minimum"):
            per_arm = {arm: layout_rows(cells[cells[OFFER] == arm], segment_columns, name, orders) for arm in arms}
            out[name] = pd.DataFrame(per_arm)
        out["at_minimum"] = out["at_minimum"].fillna(0.0).astype(bool)
        return out


def allocation_cells(
    plan: pd.DataFrame, segment_columns: Sequence[str], arms: Sequence[str], min_share: float | Mapping[str, float] | None
) -> AllocationCells:
    """The segment plan (optimize's long format) as cells; a share is marked when it sits at its offer's
    positive minimum (min_share: one number, per offer, or None), i.e. the constraint, not the data, set it."""
    columns = list(segment_columns)
    _require(plan, [*columns, OFFER, "share", "expected_customers"], "segment plan")
    _require_offers(plan, arms, "segment plan")
    repeated = plan[plan.duplicated([*columns, OFFER], keep=False)]
    if len(repeated):
        raise ValueError(f"segment plan lists a segment and offer more than once (segment columns {columns}?): "
                         f"{repeated[[*columns, OFFER]].head(5).to_dict('records')}")
    minimum = _per_offer(min_share, arms)
    keep = [c for c in dict.fromkeys((SEGMENT_ID, *columns)) if c in plan.columns]
    cells = plan[plan[OFFER].isin(list(arms))][[*keep, OFFER, "share", "expected_customers"]].rename(
        columns={"expected_customers": "customers"}).reset_index(drop=True)
    floor = cells[OFFER].map(minimum).to_numpy(dtype=float)
    cells["at_minimum"] = (floor > 0) & (np.abs(cells["share"].to_numpy(dtype=float) - floor) <= AT_BOUND)
    return AllocationCells(cells, minimum)


def customer_plan_cells(
    customer_plan: pd.DataFrame, segments: pd.DataFrame, segment_columns: Sequence[str], arms: Sequence[str]
) -> AllocationCells:
    """A customer-level plan (customer_id, segment_id, offer) counted per segment and offer; shares are those
    counts over the segment's customers. The customer-level allocator forces no minimum, so nothing is marked."""
    columns = list(segment_columns)
    _require(customer_plan, [CUSTOMER_ID, SEGMENT_ID, OFFER], "customer plan")
    _require(segments, [SEGMENT_ID, *columns], "segment catalog")
    _require_offers(customer_plan, arms, "customer plan")
    unknown = sorted(set(customer_plan[SEGMENT_ID]) - set(segments[SEGMENT_ID]))
    if unknown:
        raise ValueError(f"customer plan has segment ids missing from the segment catalog: {unknown[:5]}")
    counts = customer_plan.groupby([SEGMENT_ID, OFFER], observed=True).size().unstack(OFFER)
    counts = counts.reindex(columns=list(arms)).fillna(0).astype("int64")
    size = counts.sum(axis=1)
    long = counts.stack().rename("customers").reset_index()
    long["share"] = long["customers"] / long[SEGMENT_ID].map(size)
    long["at_minimum"] = False
    cells = segments[[SEGMENT_ID, *columns]].merge(long, on=SEGMENT_ID, how="inner", validate="one_to_many")
    return AllocationCells(cells[[SEGMENT_ID, *columns, OFFER, "share", "customers", "at_minimum"]], {arm: 0.0 for arm in arms})


def offer_tick_labels(arms: Sequence[str], coupon_cost: Mapping[str, float], currency: str = "USD") -> list[str]:
    """Offer names with what they give ("dm2\\n10 USD coupon", "dm1\\nno coupon"): a reader needs no codebook."""
    labels = []
    for arm in arms:
        cost = float(coupon_cost.get(arm, 0.0))
        labels.append(f"{arm}\nno coupon" if cost == 0 else f"{arm}\n{cost:,.4g} {currency} coupon")
    return labels


def _first_number(value: object) -> float | None:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value) if math.isfinite(float(value)) else None
    match = _NUMBER.search(str(value))
    return None if match is None else float(match.group())


def _per_offer(setting: float | Mapping[str, float] | None, arms: Sequence[str]) -> dict[str, float]:
    if setting is None:
        return {arm: 0.0 for arm in arms}
    if isinstance(setting, Mapping):
        unknown = sorted(set(setting) - set(arms))
        if unknown:
            raise ValueError(f"min_share names offer(s) {unknown} that are not arms {list(arms)}")
        return {arm: float(setting.get(arm, 0.0)) for arm in arms}
    return {arm: float(setting) for arm in arms}


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def _require_offers(frame: pd.DataFrame, arms: Sequence[str], what: str) -> None:
    unknown = sorted(set(frame[OFFER].astype(str)) - set(arms))
    if unknown:
        raise ValueError(f"{what} has offers {unknown} that are not arms {list(arms)}")
