"""The publish gate: publish the candidate allocation only if it beats every simple alternative at the same spend.

Out-of-fold ranking metrics (Qini, AUUC) can favour a model whose allocation is no better than sending
the best single offer to a random share of customers. The gate asks the question the budget owner
asks: with the same money, is the candidate's value above the best competitor's (the baseline, or
the incumbent, with the highest estimated value)? It decides on the paired difference candidate -
best competitor, estimated off-policy on held-out logs: publish the candidate if the difference's
one-sided lower bound (Bernstein, bootstrap or normal; see off_policy.py) exceeds a margin, otherwise
publish the best competitor or nothing (GateRefusedError), as configured.

Besides the decision: every policy's estimates as a table (reports/policy_evaluation.json) and a
figure of the policies' incremental value with intervals, for a marketing analyst.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from pydantic import Field

from offerflow.config import GateConfig
from offerflow.errors import GateRefusedError
from offerflow.evaluation.baselines import NamedPolicy, expected_spend, treated_count
from offerflow.evaluation.off_policy import BoundSettings, CampaignLog, PolicyEstimate, Reward, estimate_contrasts
from offerflow.io import write_with

DPI = 90
CANDIDATE_COLOR = "#d95f02"
OTHER_COLOR = "#4a6d8c"


COMPETITOR_ROLES = ("baseline", "incumbent")


def bound_settings(config: GateConfig) -> BoundSettings:
    """The interval and bound settings of the gate's estimates."""
    return BoundSettings(config.level, config.confidence, config.bootstrap_samples, config.seed)


@dataclass(frozen=True)
class PolicyEvaluation:
    """One policy's estimates at the evaluation rows: value, cost, and paired differences."""

    name: str
    label: str
    role: str
    note: str
    value: PolicyEstimate
    share_treated: float | None = None
    planned_cost: float | None = None  # per row, from the expected-cost matrix
    cost: PolicyEstimate | None = None  # per row, off-policy from realized costs
    versus_candidate: PolicyEstimate | None = None  # candidate - this policy
    over_reference: PolicyEstimate | None = None  # this policy - the reference (nobody treated)


def evaluate_policies(
    policies: Sequence[NamedPolicy],
    log: CampaignLog,
    value: Reward,
    config: GateConfig = GateConfig(),
    cost: Reward | None = None,
    expected_cost: np.ndarray | None = None,
    control: int | None = None,
    reference: str | None = "nobody_treated",
) -> list[PolicyEvaluation]:
    """Estimate every policy, its difference from the candidate and its gain over the reference, in one bootstrap."""
    candidates = [p for p in policies if p.role == "candidate"]
    if len(candidates) != 1:
        raise ValueError(f"exactly one policy must have the role 'candidate', got {[p.name for p in candidates]}")
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be unique, got {names}")
    candidate = candidates[0]
    by_name = {p.name: p for p in policies}
    reference_policy = by_name.get(reference) if reference is not None else None
    differences = {f"versus:{p.name}": (candidate.matrix, p.matrix) for p in policies if p is not candidate}
    if reference_policy is not None:
        differences.update({f"over:{p.name}": (p.matrix, reference_policy.matrix) for p in policies if p is not reference_policy})
    estimator = config.estimator
    values = estimate_contrasts(log, value, bound_settings(config), {p.name: p.matrix for p in policies}, differences, (estimator,))[estimator]
    costs = estimate_contrasts(log, cost, bound_settings(config), {p.name: p.matrix for p in policies}, None, (estimator,))[estimator] if cost is not None else {}
    n = log.n_rows
    return [
        PolicyEvaluation(
            name=p.name,
            label=p.label,
            role=p.role,
            note=p.note,
            value=values[p.name],
            share_treated=treated_count(p.matrix, control) / n if control is not None else None,
            planned_cost=expected_spend(p.matrix, expected_cost) / n if expected_cost is not None else None,
            cost=costs.get(p.name),
            versus_candidate=values.get(f"versus:{p.name}"),
            over_reference=values.get(f"over:{p.name}"),
        )
        for p in policies
    ]


@dataclass(frozen=True)
class Comparison:
    """The candidate against one competitor: candidate - competitor, with interval and lower bound."""

    name: str
    label: str
    role: str
    competitor_value: float
    difference: float
    ci_low: float
    ci_high: float
    lower_bound: float


@dataclass(frozen=True)
class GateDecision:
    """What was published and why, with the numbers behind it."""

    published: str
    published_label: str
    candidate: str
    candidate_published: bool
    best_competitor: str
    best_competitor_label: str
    estimator: str
    method: str
    margin: float
    level: float
    confidence: float
    unit: str
    difference: float
    ci_low: float
    ci_high: float
    lower_bound: float
    reason: str
    comparisons: tuple[Comparison, ...]

    def as_dict(self) -> dict:
        return _json_ready(asdict(self))


def _json_ready(value):
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return round(float(value), 6) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def decide_publication(evaluations: Sequence[PolicyEvaluation], config: GateConfig = GateConfig()) -> GateDecision:
    """Publish the candidate if its lower bound over the best competitor exceeds the margin; else fall back."""
    candidate = next((e for e in evaluations if e.role == "candidate"), None)
    competitors = [e for e in evaluations if e.role in COMPETITOR_ROLES]  # "reference" rows are shown, not competed with
    if candidate is None or not competitors:
        raise ValueError("the gate needs one candidate and at least one baseline or incumbent")
    missing = [e.name for e in competitors if e.versus_candidate is None]
    if missing:
        raise ValueError(f"no paired difference against the candidate for {missing}")
    comparisons = tuple(
        Comparison(e.name, e.label, e.role, e.value.value, e.versus_candidate.value, e.versus_candidate.ci_low,
                   e.versus_candidate.ci_high, e.versus_candidate.lower_bound(config.method))
        for e in competitors
        if e.versus_candidate is not None
    )
    best = max(comparisons, key=lambda c: c.competitor_value)  # first of equals, in the given order
    passes = math.isfinite(best.lower_bound) and best.lower_bound > config.margin
    per = f"{config.unit} per customer"
    rival = f"the best baseline ({best.label})" if best.role == "baseline" else f"the {best.role}, {best.label}"
    numbers = f"{best.difference:.4f} {per} [{best.ci_low:.4f}, {best.ci_high:.4f}]"
    bound = f"lower bound ({config.method}) {best.lower_bound:.4f}"
    if passes:
        reason = f"candidate beats {rival} by {numbers}; {bound} > margin {config.margin:g}"
        published, label = candidate.name, candidate.label
    else:
        reason = f"candidate is not better than {rival}: difference {numbers}; {bound} <= margin {config.margin:g}"
        if config.fallback == "nothing":
            raise GateRefusedError(f"publish gate: {reason}; nothing was published (gate fallback: nothing)")
        reason += f"; published {best.label} instead"
        published, label = best.name, best.label
    return GateDecision(
        published=published,
        published_label=label,
        candidate=candidate.name,
        candidate_published=passes,
        best_competitor=best.name,
        best_competitor_label=best.label,
        estimator=config.estimator,
        method=config.method,
        margin=config.margin,
        level=config.level,
        confidence=config.confidence,
        unit=config.unit,
        difference=best.difference,
        ci_low=best.ci_low,
        ci_high=best.ci_high,
        lower_bound=best.lower_bound,
        reason=reason,
        comparisons=comparisons,
    )


def _estimate_columns(prefix: str, estimate: PolicyEstimate | None, method: str) -> dict:
    if estimate is None:
        return {}
    return {
        prefix: estimate.value,
        f"{prefix}_se": estimate.se,
        f"{prefix}_ci_low": estimate.ci_low,
        f"{prefix}_ci_high": estimate.ci_high,
        f"{prefix}_lower_bound": estimate.lower_bound(method),
    }


def policy_table(evaluations: Sequence[PolicyEvaluation], method: str = "bernstein") -> list[dict]:
    """One JSON-ready row per policy: value, interval, lower bound, cost, share treated, differences."""
    rows = []
    for e in evaluations:
        row = {"policy": e.name, "label": e.label, "role": e.role, "estimator": e.value.estimator, "lower_bound_method": method}
        row.update(_estimate_columns("value", e.value, method))
        row.update(_estimate_columns("incremental_value", e.over_reference, method))
        row.update(_estimate_columns("candidate_minus_this", e.versus_candidate, method))
        row.update(_estimate_columns("cost", e.cost, method))
        row.update({"planned_cost": e.planned_cost, "share_treated": e.share_treated, "note": e.note})
        rows.append(_json_ready(row))
    return rows


def policy_frame(evaluations: Sequence[PolicyEvaluation], method: str = "bernstein") -> pd.DataFrame:
    """policy_table as a DataFrame (for a plot CSV)."""
    return pd.DataFrame(policy_table(evaluations, method))


def plot_policy_values(
    evaluations: Sequence[PolicyEvaluation],
    target: Path | str,
    unit_label: str = "incremental conversions per 1,000 customers",
    scale: float = 1000.0,
    title: str = "Which allocation brings the most for the same money?",
) -> Path:
    """Horizontal points with intervals: each policy's gain over the reference (or its value), candidate highlighted.

    `scale` turns the per-customer value into the unit of `unit_label` (1000: per 1,000 customers).
    """
    from offerflow.figures import figure_style

    incremental = any(e.over_reference is not None for e in evaluations)
    points = []
    for e in evaluations:
        estimate = e.over_reference if incremental else e.value
        if estimate is None:  # the reference itself: no gain over itself
            points.append((e, 0.0, 0.0, 0.0))
        else:
            points.append((e, estimate.value * scale, estimate.ci_low * scale, estimate.ci_high * scale))
    points.sort(key=lambda p: p[1])
    level = evaluations[0].value.level
    with figure_style() as plt:  # offerflow's one style, whatever causalml set globally
        figure, ax = plt.subplots(figsize=(8.0, 1.6 + 0.45 * len(points)))
        for row, (e, mid, low, high) in enumerate(points):
            color = CANDIDATE_COLOR if e.role == "candidate" else OTHER_COLOR
            ax.plot([low, high], [row, row], color=color, linewidth=2.5, solid_capstyle="butt")
            ax.plot([mid], [row], "o", color=color, markersize=7)
            ax.annotate(f"{mid:,.1f}", (high, row), xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
        labels = [f"{e.label} (candidate)" if e.role == "candidate" else e.label for e, *_ in points]
        ax.set_yticks(range(len(points)), labels, fontsize=9)
        for tick, (e, *_) in zip(ax.get_yticklabels(), points):
            if e.role == "candidate":
                tick.set_color(CANDIDATE_COLOR)
                tick.set_fontweight("bold")
        if incremental:
            ax.axvline(0.0, color="0.6", linewidth=1, linestyle="--")
        ax.set_xlabel(unit_label)
        ax.set_ylim(-0.7, len(points) - 0.3)
        ax.margins(x=0.15)
        reference = next((e.label for e in evaluations if e.over_reference is None), None) if incremental else None
        versus = f"gain over {reference}; " if reference else ""
        ax.set_title(f"{title}\n{versus}baselines sized to the candidate's spend\npoints: estimate, lines: {level:.0%} interval", fontsize=10)
        ax.grid(axis="x", color="0.9")
        figure.tight_layout()
        write_with(target, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None}))
        plt.close(figure)
    return Path(target)
