"""Simple policies the candidate must beat with the same money, as n x K policy matrices on the evaluation rows.

A model's allocation is only worth publishing if it beats what a marketer would do without a model at
the same spend (expected cost, from an n x K expected-cost matrix such as coupon x predicted probability
+ contact cost) or the same number of contacts (treated customers):

- nobody treated: everyone gets the control arm (the zero-spend reference);
- random offers: each customer is treated with probability rho, the treatment arm uniform, rho set so
  the expected spend matches;
- best average offer to a random subset: one treatment arm d for a random share s of customers. The arm
  is the one whose estimated average gain over control (arm_values[d] - arm_values[control], e.g. the DR
  value of "everyone gets d" from constant_policy_values) brings the most at the target: s_d is set so
  the spend (or contact count) matches, capped at 1, and the arm with the largest s_d x gain wins. Without
  the cap this is the best gain per unit of extra cost (spend) or per contact (contacts);
- heuristics: a customer score and a direction (most recent first, highest past spend first): the best
  average offer goes to the top customers until the spend matches, ties broken by a seeded shuffle, the
  boundary customer treated with a fractional probability (policies are stochastic, so the spend
  matches exactly).

Choosing the arm on the same logs that evaluate it flatters the baseline slightly (winner's curse),
which errs on the side of not publishing the candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from pydantic import Field

from offerflow.config import BaselinesConfig, HeuristicConfig
from offerflow.errors import InfeasiblePlanError, InputDataError
from offerflow.simulation import ordered_score

ROLES = ("candidate", "baseline", "incumbent", "reference")  # reference: shown, never competes


@dataclass(frozen=True)
class SpendTarget:
    """Total expected spend over the evaluation rows, or number of treated rows (contacts)."""

    kind: Literal["spend", "contacts"]
    amount: float

    def __post_init__(self) -> None:
        if self.kind not in ("spend", "contacts"):
            raise ValueError(f"target kind must be 'spend' or 'contacts', got {self.kind!r}")


@dataclass(frozen=True)
class NamedPolicy:
    """A policy matrix with a short name, a plain-language label and its role in the comparison."""

    name: str
    label: str
    role: str
    matrix: np.ndarray
    note: str = ""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")


@dataclass(frozen=True)
class Heuristic:
    """A targeting rule without a model: customers ordered by `score`, highest first if `descending`."""

    name: str
    label: str
    score: np.ndarray
    descending: bool = True


def expected_spend(policy: np.ndarray, expected_cost: np.ndarray) -> float:
    """Total expected cost of a policy over the rows."""
    return float((np.asarray(policy) * np.asarray(expected_cost)).sum())


def treated_count(policy: np.ndarray, control: int) -> float:
    """Expected number of rows that get a treatment (not the control arm)."""
    return float((1.0 - np.asarray(policy)[:, control]).sum())


def target_of(policy: np.ndarray, expected_cost: np.ndarray, control: int, kind: str) -> SpendTarget:
    """The candidate's spend (or contacts): what every baseline is sized to."""
    amount = expected_spend(policy, expected_cost) if kind == "spend" else treated_count(policy, control)
    return SpendTarget(kind, amount)  # type: ignore[arg-type]


def _headroom(expected_cost: np.ndarray, control: int, target: SpendTarget) -> float:
    """What the target asks beyond treating nobody: extra spend, or contacts."""
    n = expected_cost.shape[0]
    if target.kind == "contacts":
        if not 0 <= target.amount <= n:
            raise InfeasiblePlanError(f"target contacts {target.amount:g} must be between 0 and the {n} rows")
        return float(target.amount)
    base = float(expected_cost[:, control].sum())
    if target.amount < base - 1e-9 * max(1.0, abs(base)):
        raise InfeasiblePlanError(f"target spend {target.amount:.2f} is below the spend of treating nobody ({base:.2f})")
    return max(0.0, float(target.amount) - base)


def _two_arm_policy(n: int, n_arms: int, control: int, arm: int, treated: np.ndarray | float) -> np.ndarray:
    policy = np.zeros((n, n_arms))
    policy[:, arm] = treated
    policy[:, control] = 1.0 - policy[:, arm]
    return policy


def nobody_treated(n: int, n_arms: int, control: int) -> np.ndarray:
    """Everyone gets the control arm."""
    policy = np.zeros((n, n_arms))
    policy[:, control] = 1.0
    return policy


def random_offers(expected_cost: np.ndarray, control: int, target: SpendTarget) -> np.ndarray:
    """Treat each row with probability rho (capped at 1), treatment arm uniform, rho matching the target."""
    n, n_arms = expected_cost.shape
    treatments = [d for d in range(n_arms) if d != control]
    headroom = _headroom(expected_cost, control, target)
    if target.kind == "contacts":
        rate = headroom / n
    else:
        extra = float((expected_cost[:, treatments].mean(axis=1) - expected_cost[:, control]).sum())
        rate = min(1.0, headroom / extra) if extra > 0 else 1.0
    policy = np.zeros((n, n_arms))
    policy[:, treatments] = rate / len(treatments)
    policy[:, control] = 1.0 - rate
    return policy


def best_average_offer(arm_values: np.ndarray, expected_cost: np.ndarray, control: int, target: SpendTarget) -> tuple[int, float]:
    """(arm, share of rows): the single treatment arm that gains most when given to a random share at the target."""
    values = np.asarray(arm_values, dtype=float)
    n, n_arms = expected_cost.shape
    if values.shape != (n_arms,) or not np.isfinite(values).all():
        raise InputDataError(f"arm_values must be {n_arms} finite numbers, got {values.tolist()}")
    headroom = _headroom(expected_cost, control, target)
    best: tuple[float, int, float] | None = None
    for arm in range(n_arms):
        if arm == control:
            continue
        if target.kind == "contacts":
            share = headroom / n
        else:
            extra = float((expected_cost[:, arm] - expected_cost[:, control]).sum())
            share = min(1.0, headroom / extra) if extra > 0 else 1.0
        gain = share * (values[arm] - values[control])
        if best is None or gain > best[0]:
            best = (gain, arm, share)
    assert best is not None  # at least two arms
    return best[1], best[2]


def best_offer_random_subset(arm_values: np.ndarray, expected_cost: np.ndarray, control: int, target: SpendTarget) -> np.ndarray:
    """The best average offer to a random share of rows, the share matching the target."""
    n, n_arms = expected_cost.shape
    arm, share = best_average_offer(arm_values, expected_cost, control, target)
    return _two_arm_policy(n, n_arms, control, arm, share)


def heuristic_order(score: np.ndarray, descending: bool, seed: int) -> np.ndarray:
    """Row indices by score (highest first if descending), ties in a seeded random order."""
    score = np.asarray(score, dtype=float)
    if not np.isfinite(score).all():
        raise InputDataError(f"heuristic score has {int((~np.isfinite(score)).sum())} missing or infinite values")
    shuffled = np.random.default_rng(seed).permutation(len(score))
    key = -score[shuffled] if descending else score[shuffled]
    return shuffled[np.argsort(key, kind="stable")]


def heuristic_policy(
    score: np.ndarray, descending: bool, arm: int, expected_cost: np.ndarray, control: int, target: SpendTarget, seed: int
) -> np.ndarray:
    """`arm` to the top-scored rows until the target is met exactly; the boundary row fractional."""
    n, n_arms = expected_cost.shape
    if len(score) != n:
        raise InputDataError(f"heuristic score has {len(score)} rows, the evaluation rows {n}")
    order = heuristic_order(score, descending, seed)
    headroom = _headroom(expected_cost, control, target)
    if target.kind == "contacts":
        steps = np.ones(n)
    else:
        steps = expected_cost[order, arm] - expected_cost[order, control]
        if (steps < 0).any():
            raise InputDataError(f"{int((steps < 0).sum())} rows cost less with arm {arm} than with the control arm; spend-matched heuristics need treatment to cost at least as much")
    cumulative = np.cumsum(steps)
    full = int(np.searchsorted(cumulative, headroom, side="left"))  # first row whose step reaches the target
    treated = np.zeros(n)
    treated[order[:full]] = 1.0
    if full < n:
        before = cumulative[full - 1] if full > 0 else 0.0
        treated[order[full]] = min(1.0, max(0.0, (headroom - before) / steps[full])) if steps[full] > 0 else 0.0
    return _two_arm_policy(n, n_arms, control, arm, treated)


def heuristic_score(frame: pd.DataFrame, config: HeuristicConfig) -> np.ndarray:
    """Numeric score of a heuristic's customer column (categories ranked by the configured order)."""
    if config.column not in frame.columns:
        raise InputDataError(f"heuristic {config.name!r}: column {config.column!r} is not among the evaluation columns {list(frame.columns)[:20]}")
    try:
        return ordered_score(frame[config.column], config.order)
    except ValueError as error:
        raise InputDataError(f"heuristic {config.name!r}: {error}") from error


def _share_text(share: float) -> str:
    return "everyone" if share >= 1.0 else f"a random {math.floor(share * 100)}%"  # never rounds up to 100%


def build_baselines(
    expected_cost: np.ndarray,
    control: int,
    target: SpendTarget,
    arm_values: np.ndarray,
    heuristics: Sequence[Heuristic] = (),
    seed: int = 0,
    arms: Sequence[str] | None = None,
) -> list[NamedPolicy]:
    """Every baseline at the target, labelled for people, with a note when a baseline cannot reach it."""
    cost = np.asarray(expected_cost, dtype=float)
    n, n_arms = cost.shape
    names = list(arms) if arms is not None else [f"arm {d}" for d in range(n_arms)]
    arm, share = best_average_offer(arm_values, cost, control, target)
    offers = random_offers(cost, control, target)
    policies = [
        ("nobody_treated", "nobody treated", nobody_treated(n, n_arms, control)),
        ("random_offers", f"random offers to {_share_text(treated_count(offers, control) / n)}", offers),
        ("best_offer_random_subset", f"best average offer ({names[arm]}) to {_share_text(share)}", _two_arm_policy(n, n_arms, control, arm, share)),
    ]
    for heuristic in heuristics:
        matrix = heuristic_policy(heuristic.score, heuristic.descending, arm, cost, control, target, seed)
        policies.append((f"heuristic_{heuristic.name}", f"{heuristic.label} ({names[arm]})", matrix))
    result = []
    for name, label, matrix in policies:
        reached = expected_spend(matrix, cost) if target.kind == "spend" else treated_count(matrix, control)
        short = name != "nobody_treated" and reached < target.amount * (1 - 1e-9) - 1e-9
        note = f"reaches only {reached:.2f} of the target {target.kind} {target.amount:.2f}" if short else ""
        result.append(NamedPolicy(name, label, "baseline", matrix, note))
    return result


def segment_plan_policy(
    segment_ids: np.ndarray,
    plan: pd.DataFrame,
    arms: Sequence[str],
    segment_column: str = "segment_id",
    offer_column: str = "offer",
    share_column: str = "share",
) -> np.ndarray:
    """Each row gets its segment's shares x[s, d] (a long plan: segment, offer, share)."""
    missing = [c for c in (segment_column, offer_column, share_column) if c not in plan.columns]
    if missing:
        raise InputDataError(f"segment plan lacks column(s) {missing}")
    unknown = sorted(set(plan[offer_column].astype(str)) - set(arms))
    if unknown:
        raise InputDataError(f"segment plan has offers {unknown} that are not arms {list(arms)}")
    table = plan.pivot_table(index=segment_column, columns=offer_column, values=share_column, aggfunc="sum", fill_value=0.0)
    table = table.reindex(columns=list(arms), fill_value=0.0)
    sums = table.sum(axis=1)
    bad = sums[(sums - 1.0).abs() > 1e-6]
    if len(bad):
        raise InputDataError(f"segment plan shares must sum to 1 per segment; {dict(bad.head(5).round(6))}")
    rows = table.index.get_indexer(np.asarray(segment_ids))
    if (rows < 0).any():
        absent = pd.unique(np.asarray(segment_ids)[rows < 0])[:5].tolist()
        raise InputDataError(f"rows in segments {absent} have no shares in the segment plan")
    return table.to_numpy(dtype=float)[rows]


def customer_plan_policy(offers: Sequence, arms: Sequence[str]) -> np.ndarray:
    """One-hot rows from an offer (arm name) per row."""
    names = pd.Series(np.asarray(offers, dtype=object)).astype(str)
    lookup = {arm: d for d, arm in enumerate(arms)}
    index = names.map(lookup)
    if index.isna().any():
        raise InputDataError(f"customer plan has offers {sorted(set(names[index.isna()]))[:5]} that are not arms {list(arms)}")
    return np.eye(len(arms))[index.to_numpy(dtype=int)]
