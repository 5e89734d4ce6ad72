"""Runner of the probabilities stage: every customer's conversion probability under every offer."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from offerflow.catalog import Catalog
from offerflow.config import Params
from offerflow.io import write_csv, write_json, write_parquet
from offerflow.schema import prob_columns
from offerflow.stages.inputs import customers_with_segments, read_truth


def score_in_partitions(model, customers: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Per-customer probabilities computed partition by partition (allocate.partition_rows customers each),
    in process or on Dask workers (orchestration.task_runner); the same partitions either way."""
    import pandas as pd

    from offerflow.distributed import partition_bounds, partition_executor

    bounds = partition_bounds(len(customers), params.allocate.partition_rows)
    with partition_executor(params.orchestration) as executor:
        parts = executor.map(
            score_partition,
            [customers.iloc[a:b] for a, b in bounds],
            clip=params.probabilities.clip,
            model=model,
            progress="probabilities: scoring",
        )
    return pd.concat(parts, ignore_index=True)


def score_partition(customers: pd.DataFrame, model, clip: tuple[float, float]) -> pd.DataFrame:
    """One partition's scores (module-level so Dask workers can unpickle it)."""
    from offerflow.uplift.probabilities import predict_customer_probabilities

    return predict_customer_probabilities(model, customers, clip)


def run_probabilities(params: Params) -> dict:
    """Score every customer under every arm; aggregate to the segment table (with intervals) the LP reads."""
    import joblib
    import numpy as np

    from offerflow.uplift.probabilities import aggregate_segment_probabilities, make_monotone, table_vs_truth

    catalog = Catalog(params)
    monotone = params.probabilities.monotone_arms
    model = joblib.load(catalog.path("model"))
    customers, segments = customers_with_segments(catalog)
    raw = score_in_partitions(model, customers, params)
    customer_probs = make_monotone(raw, model, customers, monotone) if monotone else raw
    arms = params.arms.names
    segment_table = aggregate_segment_probabilities(
        customer_probs, segments, arms, model.segment_evidence, params.probabilities.interval_level
    )
    changed = np.abs(customer_probs[prob_columns(arms)].to_numpy() - raw[prob_columns(arms)].to_numpy()) > 1e-12
    metrics = {
        "customers": int(len(customer_probs)),
        "segments": int(len(segment_table)),
        "monotone_arms": list(monotone),
        "customers_adjusted_for_monotonicity": int(changed.any(axis=1).sum()),
        "interval_level": params.probabilities.interval_level,
    }
    truth = read_truth(catalog)
    if truth is not None:
        metrics["vs_truth"] = table_vs_truth(segment_table, truth, list(params.data.segment_columns), arms)
    write_parquet(customer_probs, catalog.path("customer_probabilities"))
    write_csv(segment_table, catalog.path("segment_probabilities"))
    write_json(metrics, catalog.path("probabilities_metrics"))
    summary = {"customers": metrics["customers"], "segments": metrics["segments"]}
    if "vs_truth" in metrics:
        summary["vs_truth"] = metrics["vs_truth"]["weighted_mae"]
    return summary
