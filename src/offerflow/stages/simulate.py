"""Runner of the simulate stage: a campaign history drawn from the true table (example data only)."""

from __future__ import annotations

from offerflow.catalog import Catalog
from offerflow.config import ConfigError, Params
from offerflow.io import write_csv
from offerflow.schema import ARM, CONVERTED, CUSTOMER_ID
from offerflow.stages.inputs import read_customers, read_truth


def run_simulate(params: Params) -> dict:
    """Check the customers and the true table with their suites, then draw the history.

    The simulator runs before the validate stage, so it validates what it reads itself: a broken
    customer file or table stops here with the same failure report as `offerflow validate`.
    """
    from offerflow.simulation import simulate_history
    from offerflow.stages.validate import check_files

    catalog = Catalog(params)
    check_files(params, catalog, ("customers", "true_probabilities"))
    config = params.simulate
    customers = read_customers(catalog)
    columns = [config.targeting.column] if config.assignment == "targeted" else []
    columns += list(config.heterogeneity.features)
    missing = [c for c in columns if c not in customers.columns]
    if missing:
        raise ConfigError(
            f"simulate: column(s) {missing} named in simulate.targeting / simulate.heterogeneity are not in "
            f"{catalog.relative('customers')}"
        )
    history = simulate_history(
        customers,
        read_truth(catalog),
        params.arms.names,
        params.data.segment_columns,
        config.campaigns,
        config.seed,
        assignment=config.assignment,
        targeting_column=config.targeting.column,
        targeting_strength=config.targeting.strength,
        targeting_order=config.targeting.order,
        log_propensity=config.log_propensity,
        heterogeneity=config.heterogeneity.strength,
        heterogeneity_features=config.heterogeneity.features,
    )
    data = params.data
    history = history.rename(columns={CUSTOMER_ID: data.customer_id, ARM: data.arm_column, CONVERTED: data.outcome_column})
    write_csv(history, catalog.path("simulated_history"))
    return {"rows": len(history), "conversion_rate": round(float(history[data.outcome_column].mean()), 6)}
