"""Shared helpers of the journey tests: a small, fast testbed and a study trained once per session.

The small testbed keeps the default's structure (four campaign waves, the same offers, the same
sequencing effects) with a shorter horizon, fewer customers and smaller models, so the whole journey
suite runs in about a minute. The acceptance numbers on the default testbed come from
benchmarks/bench_journey.py --acceptance.
"""

from __future__ import annotations

from functools import lru_cache

from offerflow.journey.config import (
    BudgetConfig,
    JourneyConfig,
    JourneyEvaluationConfig,
    LearnConfig,
    ModelConfig,
    JourneyTestbedConfig,
)

SEED = 20261124
SMALL_MODEL = ModelConfig(params={"n_estimators": 60, "learning_rate": 0.15, "num_leaves": 15, "min_child_samples": 40})


def small_config(**changes) -> JourneyConfig:
    """12 steps, a wave every 3 steps (4 decisions), 5,000 logged customers, small models."""
    base = JourneyConfig(
        seed=SEED,
        horizon=12,
        campaign_every=3,
        testbed=JourneyTestbedConfig(customers=5_000),
        budget=BudgetConfig(per_customer=5.0, simulation_customers=5_000, max_evaluations=8, tolerance=0.03),
        learn=LearnConfig(q_model=SMALL_MODEL, response_model=SMALL_MODEL),
        evaluation=JourneyEvaluationConfig(monte_carlo_customers=30_000, bootstrap_samples=200),
    )
    return JourneyConfig.model_validate({**dict(base), **changes}) if changes else base


@lru_cache(maxsize=None)
def small_study():
    """(config, log, models, evaluation) of the small testbed, computed once per test session."""
    from offerflow.journey.study import run_journey_study

    config = small_config()
    log, models, evaluation = run_journey_study(config)
    return config, log, models, evaluation
