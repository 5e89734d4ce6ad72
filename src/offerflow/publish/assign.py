"""Turn a segment plan (shares of each offer per segment) into one offer per customer.

The optimizer speaks in fractions of segments; a mailing needs whole customers. Counts come from
the largest-remainder method, so every segment's counts add up to its size and no count is more
than one customer away from N x share. Which customers get which offer is a seeded shuffle per
segment, so the same plan, customers and seed always give the same assignment.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from offerflow.errors import InputDataError
from offerflow.schema import CUSTOMER_ID, OFFER, SEGMENT_ID

PLAN_COLUMNS = (
    SEGMENT_ID,
    "n_customers",
    OFFER,
    "share",
    "expected_customers",
    "prob",
    "expected_conversions",
    "expected_cost",
)
ASSIGNMENT_COLUMNS = [CUSTOMER_ID, SEGMENT_ID, OFFER, "predicted_probability", "expected_cost"]
SHARE_TOLERANCE = 1e-6
# Quotas this close to an integer count as that integer, and remainders this close count as tied,
# so float noise in the shares (0.1 + 0.2 != 0.3) never decides who gets the last customer.
_QUOTA_SLACK = 1e-9
_REMAINDER_DECIMALS = 9


class PlanError(InputDataError):
    """The segment plan is unusable or does not describe these customers; names segments and counts."""


def largest_remainder_counts(total: int, shares: Sequence[float]) -> np.ndarray:
    """Whole counts summing to `total`, each the floor or ceiling of total x share.

    Hamilton's method: give every arm the floor of its quota, then hand the customers left over to
    the largest remainders; equal remainders go to the earlier arm, so ties are deterministic.
    """
    if total < 0 or int(total) != total:
        raise PlanError(f"segment size must be a non-negative integer, got {total!r}")
    values = np.asarray(shares, dtype="float64")
    if values.ndim != 1 or values.size == 0:
        raise PlanError(f"shares must be a non-empty list, got {list(np.ravel(values))}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise PlanError(f"shares must be finite and >= 0, got {values.tolist()}")
    if abs(values.sum() - 1.0) > SHARE_TOLERANCE:
        raise PlanError(f"shares must sum to 1 (within {SHARE_TOLERANCE}), got {values.sum()!r} from {values.tolist()}")
    quotas = int(total) * values / values.sum()
    floors = np.floor(quotas + _QUOTA_SLACK)
    remainders = np.round(np.clip(quotas - floors, 0.0, None), _REMAINDER_DECIMALS)
    counts = floors.astype("int64")
    leftover = int(total) - int(counts.sum())
    order = np.lexsort((np.arange(values.size), -remainders))  # largest remainder first, then arm order
    counts[order[:leftover]] += 1
    return counts


def check_plan(plan: pd.DataFrame, source: str = "segment plan") -> None:
    """Reject a plan that cannot be turned into assignments, naming the column and offending values."""
    missing = [column for column in PLAN_COLUMNS if column not in plan.columns]
    if missing:
        raise PlanError(f"{source}: missing columns {missing} (has {list(plan.columns)})")
    if plan.empty:
        raise PlanError(f"{source}: no rows")
    duplicated = plan[plan.duplicated([SEGMENT_ID, OFFER], keep=False)]
    if len(duplicated):
        pairs = duplicated[[SEGMENT_ID, OFFER]].drop_duplicates().head(5).to_dict("records")
        raise PlanError(f"{source}: (segment_id, offer) appears more than once: {pairs}")
    for column in ("share", "prob", "expected_cost", "n_customers"):
        values = pd.to_numeric(plan[column], errors="coerce")
        bad = plan.loc[values.isna() | (values < 0), [SEGMENT_ID, OFFER, column]]
        if len(bad):
            raise PlanError(f"{source}: column {column!r} must be a number >= 0, bad rows: {bad.head(5).to_dict('records')}")
    bad_prob = plan.loc[plan["prob"] > 1, [SEGMENT_ID, OFFER, "prob"]]
    if len(bad_prob):
        raise PlanError(f"{source}: column 'prob' must be <= 1, bad rows: {bad_prob.head(5).to_dict('records')}")
    sizes = plan.groupby(SEGMENT_ID)["n_customers"].nunique()
    if (sizes > 1).any():
        raise PlanError(f"{source}: n_customers differs between rows of segments {sizes[sizes > 1].index.tolist()}")
    totals = plan.groupby(SEGMENT_ID)["share"].sum()
    off = totals[(totals - 1.0).abs() > SHARE_TOLERANCE]
    if len(off):
        raise PlanError(f"{source}: shares must sum to 1 per segment; segment_id -> sum: {off.head(5).to_dict()}")


def plan_segments(plan: pd.DataFrame, segment_columns: Sequence[str], source: str = "segment plan") -> pd.DataFrame:
    """One row per plan segment: segment_id, the segment columns, n_customers."""
    columns = [SEGMENT_ID, *segment_columns, "n_customers"]
    missing = [column for column in columns if column not in plan.columns]
    if missing:
        raise PlanError(f"{source}: missing segment columns {missing} (has {list(plan.columns)})")
    catalog = plan[columns].drop_duplicates().sort_values(SEGMENT_ID).reset_index(drop=True)
    repeated = catalog[catalog.duplicated(SEGMENT_ID, keep=False)]
    if len(repeated):
        raise PlanError(f"{source}: segment ids with more than one set of segment values: {repeated.head(6).to_dict('records')}")
    clashing = catalog[catalog.duplicated(list(segment_columns), keep=False)]
    if len(clashing):
        raise PlanError(f"{source}: segment values with more than one segment_id: {clashing.head(6).to_dict('records')}")
    return catalog


def _describe(row: pd.Series, segment_columns: Sequence[str]) -> str:
    values = ", ".join(f"{column}={row[column]!r}" for column in segment_columns)
    return f"({values})"


def segment_mismatches(
    catalog: pd.DataFrame, customers: pd.DataFrame, segment_columns: Sequence[str]
) -> list[str]:
    """Each plan segment whose size differs from the customers, and each customer segment the plan lacks.

    A plan built for other customers (older file, other filter) would mail the wrong counts, so
    publish compares sizes before anything is written.
    """
    columns = list(segment_columns)
    counts = customers.groupby(columns, sort=True, dropna=False).size().rename("customer_count").reset_index()
    merged = catalog.merge(counts, on=columns, how="outer", indicator=True)
    problems = []
    for _, row in merged.iterrows():
        where = _describe(row, columns)
        if row["_merge"] == "right_only":
            problems.append(f"segment {where} has {int(row['customer_count'])} customers but is missing from the plan (plan n_customers=0)")
        else:
            planned = int(row["n_customers"])
            actual = 0 if pd.isna(row["customer_count"]) else int(row["customer_count"])
            if planned != actual:
                problems.append(f"segment_id {int(row[SEGMENT_ID])} {where}: plan n_customers={planned} but customers have {actual}")
    return problems


def _check_sizes_by_id(plan: pd.DataFrame, customers: pd.DataFrame) -> pd.Series:
    """Customer count per plan segment id; unknown ids or size mismatches are a PlanError."""
    sizes = customers.groupby(SEGMENT_ID).size()
    planned = plan.groupby(SEGMENT_ID)["n_customers"].first().astype("int64")
    unknown = sorted(set(sizes.index) - set(planned.index))
    if unknown:
        raise PlanError(f"customers have segment ids missing from the plan: {unknown[:10]} (counts {sizes[unknown[:10]].tolist()})")
    actual = sizes.reindex(planned.index, fill_value=0).astype("int64")
    differ = planned.index[planned != actual]
    if len(differ):
        detail = [f"segment_id {s}: plan n_customers={planned[s]} but customers have {actual[s]}" for s in differ[:10]]
        raise PlanError("plan does not match the customers: " + "; ".join(detail))
    return actual


def offer_counts(plan: pd.DataFrame, sizes: pd.Series) -> pd.DataFrame:
    """Whole number of customers per (segment, offer), in plan row order within each segment."""
    frames = []
    for segment_id, rows in plan.groupby(SEGMENT_ID, sort=True):
        counts = largest_remainder_counts(int(sizes.get(segment_id, 0)), rows["share"].to_numpy())
        frames.append(rows.assign(count=counts))
    return pd.concat(frames, ignore_index=True)


def _unit_cost(rows: pd.DataFrame) -> np.ndarray:
    """Expected cost of one customer in a plan cell (coupon x probability), read back from the plan totals."""
    expected_customers = rows["expected_customers"].to_numpy(dtype="float64")
    total_cost = rows["expected_cost"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected_customers > 0, total_cost / expected_customers, 0.0)


def _segment_rng(seed: int, segment_id: int) -> np.random.Generator:
    """One independent stream per (seed, segment): changing one segment's plan leaves the others' draws alone."""
    if seed < 0 or segment_id < 0:
        raise PlanError(f"seed and segment ids must be >= 0 to seed the shuffle, got seed={seed}, segment_id={segment_id}")
    return np.random.default_rng([int(seed), int(segment_id)])


def assign_from_plan(plan: pd.DataFrame, customers: pd.DataFrame, seed: int, limits=None) -> pd.DataFrame:
    """One offer per customer, realizing the plan's shares with exact whole counts per segment.

    `customers` needs customer_id and segment_id. Within a segment the customers (sorted by id, so
    input order does not matter) are shuffled by a generator seeded from (seed, segment_id) and
    handed out in blocks following the plan's arm order. Returns customer_id, segment_id, offer,
    predicted_probability, expected_cost sorted by customer_id. With `limits` (publish.rounding.PlanLimits) the
    whole counts keep the budget, capacities and group caps the shares kept (a few customers move to a cheaper
    offer of their segment when rounding up would break one).
    """
    check_plan(plan)
    missing = [column for column in (CUSTOMER_ID, SEGMENT_ID) if column not in customers.columns]
    if missing:
        raise PlanError(f"customers: missing columns {missing}")
    duplicated = customers.loc[customers[CUSTOMER_ID].duplicated(), CUSTOMER_ID]
    if len(duplicated):
        raise PlanError(f"customers: duplicate customer_id values {duplicated.head(5).tolist()}")
    sizes = _check_sizes_by_id(plan, customers)
    cells = offer_counts(plan, sizes)
    cells["unit_cost"] = _unit_cost(cells)
    if limits is not None:
        from offerflow.publish.rounding import repair_counts

        cells = repair_counts(cells, limits)
    ordered = customers[[CUSTOMER_ID, SEGMENT_ID]].sort_values(CUSTOMER_ID, kind="stable")
    parts = []
    for segment_id, members in ordered.groupby(SEGMENT_ID, sort=True):
        rows = cells[cells[SEGMENT_ID] == segment_id]
        shuffled = members[CUSTOMER_ID].to_numpy()[_segment_rng(seed, segment_id).permutation(len(members))]
        repeat = rows["count"].to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    CUSTOMER_ID: shuffled,
                    SEGMENT_ID: segment_id,
                    OFFER: np.repeat(rows[OFFER].to_numpy(), repeat),
                    "predicted_probability": np.repeat(rows["prob"].to_numpy(dtype="float64"), repeat),
                    "expected_cost": np.repeat(rows["unit_cost"].to_numpy(), repeat),
                }
            )
        )
    result = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ASSIGNMENT_COLUMNS)
    result = result.sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)
    result[SEGMENT_ID] = result[SEGMENT_ID].astype("int64")
    return result[ASSIGNMENT_COLUMNS]

