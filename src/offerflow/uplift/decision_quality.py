"""Decision quality: is the learned table good enough to decide with?

The real test of a probability table is the plan it leads to. On the simulator the truth is known, so
for several seeds: draw a history the way params.yaml's simulate section does (randomized or targeted,
with or without heterogeneity), learn the table the way the pipeline does, optimize the segment LP on
it, then value that plan on the *true* table and compare with the plan the true table itself would
give (the true optimum at the same budget). A plan can look better only by spending more than the
budget, so its value is also compared with the true optimum at the plan's own true cost (targeting
alone), and the share of seeds whose true cost exceeds the budget is reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from offerflow.config import SimulateConfig, TrainConfig
from offerflow.evaluation.truth import segment_plan_counts, value_on_truth
from offerflow.schema import CUSTOMER_ID, SEGMENT_ID
from offerflow.segments import attach_segment_ids, segment_catalog
from offerflow.simulation import simulate_history
from offerflow.uplift.model import train_uplift
from offerflow.uplift.probabilities import aggregate_segment_probabilities, predict_customer_probabilities
from offerflow.uplift.debias import segment_counts


def learned_segment_table(
    history: pd.DataFrame,
    customers: pd.DataFrame,
    catalog: pd.DataFrame,
    arms: list[str],
    control: str,
    segment_columns: list[str],
    config: TrainConfig,
    monotone_arms: tuple[str, ...],
    clip: tuple[float, float],
) -> pd.DataFrame:
    """Train the default learner on `history` and aggregate its customer probabilities per segment."""
    model = train_uplift(history, list(config.features), arms, control, config)
    model.segment_evidence = segment_counts(history, segment_columns, arms)
    scored = predict_customer_probabilities(model, customers, clip, monotone_arms)
    return aggregate_segment_probabilities(scored, catalog, arms)


def simulated_history(
    customers: pd.DataFrame,
    truth: pd.DataFrame,
    arms: list[str],
    segment_columns: list[str],
    campaigns: int,
    seed: int,
    simulation: SimulateConfig | None = None,
) -> pd.DataFrame:
    """A history drawn as params' simulate section says (assignment, targeting, heterogeneity)."""
    config = simulation or SimulateConfig()
    return simulate_history(
        customers, truth, arms, segment_columns, campaigns, seed,
        assignment=config.assignment, targeting_column=config.targeting.column,
        targeting_strength=config.targeting.strength, targeting_order=config.targeting.order,
        log_propensity=config.log_propensity, heterogeneity=config.heterogeneity.strength,
        heterogeneity_features=config.heterogeneity.features,
    )


def decision_quality(
    customers: pd.DataFrame,
    truth: pd.DataFrame,
    arms: list[str],
    control: str,
    coupon_cost: dict[str, float],
    segment_columns: list[str],
    config: TrainConfig,
    campaigns: int,
    seeds: list[int],
    budget: float,
    min_share: float,
    monotone_arms: tuple[str, ...] = (),
    clip: tuple[float, float] = (0.0, 1.0),
    time_limit_seconds: float = 60,
    simulation: SimulateConfig | None = None,
) -> dict:
    """Per seed and over seeds: the learned plan's true value as a share of the true optimum, the same at
    the plan's own true cost, and its true cost relative to the budget (cost / budget - 1).

    `simulation` (params.simulate) sets the assignment and heterogeneity of the drawn histories (default:
    randomized, no heterogeneity); its heterogeneity features must be customer columns."""
    from offerflow.optimize.segment_lp import optimize_segments

    columns = list(segment_columns)
    catalog = segment_catalog(customers, columns, reference_table=truth)
    scored_customers = attach_segment_ids(customers, catalog, columns)
    true_table = catalog.merge(truth.drop(columns=[SEGMENT_ID], errors="ignore"), on=columns, how="left")
    solve = lambda table: optimize_segments(  # noqa: E731
        table, columns, arms, control, coupon_cost, budget, min_share, time_limit_seconds
    )
    optimum = solve(true_table).metrics["objective"]
    wanted = list(dict.fromkeys([CUSTOMER_ID, *config.features, *columns]))
    per_seed = []
    for seed in seeds:
        history = simulated_history(customers, truth, arms, columns, campaigns, seed, simulation)
        history = history.merge(customers[wanted], on=CUSTOMER_ID, how="left")
        table = learned_segment_table(history, scored_customers, catalog, arms, control, columns, config, monotone_arms, clip)
        scored = value_on_truth(segment_plan_counts(solve(table).plan, columns), true_table, columns, arms, control, coupon_cost)
        incremental, cost = scored["incremental_conversions"], scored["expected_cost"]
        at_cost = optimize_segments(true_table, columns, arms, control, coupon_cost, cost * (1 + 1e-9), min_share, time_limit_seconds)
        per_seed.append({"seed": seed, "ratio_to_true_optimum": incremental / optimum, "true_cost": cost,
                         "ratio_at_equal_true_cost": incremental / at_cost.metrics["objective"]})
    ratios = np.array([row["ratio_to_true_optimum"] for row in per_seed])
    at_cost = np.array([row["ratio_at_equal_true_cost"] for row in per_seed])
    deviation = np.array([row["true_cost"] / budget - 1 for row in per_seed])
    return {
        "seeds": len(seeds),
        "budget": budget,
        "min_share": min_share,
        "true_optimum": round(optimum, 6),
        "ratio_to_true_optimum_mean": round(float(ratios.mean()), 6),
        "ratio_to_true_optimum_min": round(float(ratios.min()), 6),
        "ratio_at_equal_true_cost_mean": round(float(at_cost.mean()), 6),
        "ratio_at_equal_true_cost_min": round(float(at_cost.min()), 6),
        "overspending_share": round(float((deviation > 1e-9).mean()), 6),
        "true_cost_mean": round(float(np.mean([row["true_cost"] for row in per_seed])), 6),
        "cost_deviation_mean": round(float(deviation.mean()), 6),
        "cost_deviation_abs_max": round(float(np.abs(deviation).max()), 6),
        "per_seed": [{key: (round(value, 6) if isinstance(value, float) else value) for key, value in row.items()} for row in per_seed],
    }
