"""Rules a campaign log must meet beyond its column types: what a well-formed but wrong file looks like.

- Exact repeats: the same customer twice in one campaign (with `data.campaign_column`), or, without it,
  more identical rows than chance allows (a file appended to itself): a customer in ten e-mail campaigns
  repeats (arm, outcome) pairs by chance, a customer in one campaign never does. Failing or only warning is
  `validate.duplicates.action`; either way the counts are reported.
- Enough rows per arm: an arm with fewer than `validate.min_rows_per_arm` rows cannot be learned (nor
  evaluated), so the run stops before training instead of after it.
"""

from __future__ import annotations

import logging

import pandas as pd

from offerflow.config import Params
from offerflow.validation.cross_checks import CrossCheck
from offerflow.validation.failures import ValidationFailure, plain

log = logging.getLogger("offerflow.validate")


def duplicate_rows(history: pd.DataFrame, params: Params, path: str, limit: int) -> CrossCheck:
    """Repeated (customer, campaign) pairs, or too many identical rows when there is no campaign column."""
    name = "history_rows_not_repeated"
    data, settings = params.data, params.validate_.duplicates
    keys = [data.customer_id, data.campaign_column] if data.campaign_column else list(history.columns)
    if data.campaign_column and data.campaign_column not in history.columns:
        failure = ValidationFailure("history", path, data.campaign_column, name, detail=(
            f"data.campaign_column {data.campaign_column!r} is not a column of the history (columns: {list(history.columns)}); "
            "set data.campaign_column to null when the history has none"))
        return CrossCheck(name, "history", [failure])
    if data.customer_id not in history.columns:
        return CrossCheck(name, "history", skipped=f"column {data.customer_id!r} missing (reported by its suite)")
    repeated = history.duplicated(keys, keep="first")
    count = int(repeated.sum())
    share = count / max(len(history), 1)
    chance = 0.0 if data.campaign_column else chance_repeats(history, data.customer_id)
    tolerated = 0.0 if data.campaign_column else settings.max_share
    if count == 0 or count <= chance + 4 * chance**0.5 + tolerated * len(history):
        return CrossCheck(name, "history")
    rows = tuple(int(i) + 1 for i in repeated.to_numpy().nonzero()[0][:limit])
    what = f"({', '.join(keys)}) pairs" if data.campaign_column else "identical rows"
    expected = "" if data.campaign_column else f"; chance alone gives about {chance:,.0f} for customers in several rows"
    detail = f"{count:,} repeated {what} ({share:.1%} of the rows; tolerated {tolerated:.1%}{expected})"
    sample = tuple(plain(history.loc[repeated, keys[0]].head(limit).tolist()))
    failure = ValidationFailure("history", path, ", ".join(keys[:2]), name, unexpected_count=count, sample=sample,
                                detail=detail, rows=rows)
    if settings.action == "warn":
        log.warning("%s: %s (validate.duplicates.action: warn)", path, detail)
        return CrossCheck(name, "history", skipped=f"warned: {detail}")
    return CrossCheck(name, "history", [failure])


def chance_repeats(history: pd.DataFrame, id_column: str) -> float:
    """Identical rows expected by chance in a history without campaign column: a customer in m rows whose
    campaign-varying content (arm, outcome, ...) falls on value c with the pooled share p_c repeats
    m - sum_c (1 - (1 - p_c)^m) rows. Columns constant within every customer (features) do not vary by
    campaign and are left out of the content. A file appended to itself repeats every row, far above this."""
    import numpy as np

    if history.empty:
        return 0.0
    others = [c for c in history.columns if c != id_column]
    varying = [c for c in others if (history.groupby(id_column, sort=False)[c].nunique(dropna=False) > 1).any()]
    if not varying:
        return 0.0
    shares = history[varying].astype(str).value_counts(normalize=True).to_numpy()
    rows_per_customer = history[id_column].value_counts().value_counts()  # m -> customers with m rows
    m = rows_per_customer.index.to_numpy(dtype=float)
    distinct = (1.0 - (1.0 - shares[None, :]) ** m[:, None]).sum(axis=1)
    return float((rows_per_customer.to_numpy() * (m - distinct)).sum())


def rows_per_arm(history: pd.DataFrame, params: Params, path: str) -> CrossCheck:
    """Every configured arm has at least validate.min_rows_per_arm rows."""
    name = "history_rows_per_arm"
    column, minimum = params.data.arm_column, params.validate_.min_rows_per_arm
    if column not in history.columns:
        return CrossCheck(name, "history", skipped=f"column {column!r} missing (reported by its suite)")
    counts = history[column].astype(str).value_counts()
    short = {arm: int(counts.get(arm, 0)) for arm in params.arms.names if counts.get(arm, 0) < minimum}
    if not short:
        return CrossCheck(name, "history")
    failure = ValidationFailure(
        "history", path, column, name, unexpected_count=len(short), sample=tuple(short),
        detail=f"rows per arm {short}; each arm needs at least {minimum} (validate.min_rows_per_arm) to be learned",
    )
    return CrossCheck(name, "history", [failure])


def logged_propensities(history: pd.DataFrame, params: Params, path: str, limit: int) -> CrossCheck:
    """With train.propensity.source logged, the history's propensity column holds probabilities in (0, 1]."""
    name = "history_logged_propensity"
    config = params.train.propensity
    if config.source != "logged":
        return CrossCheck(name, "history", skipped="train.propensity.source is not logged")
    if config.column not in history.columns:
        failure = ValidationFailure("history", path, config.column, name,
                                    detail=f"column missing (train.propensity.source is logged, train.propensity.column "
                                           f"{config.column!r}); columns present: {list(history.columns)}")
        return CrossCheck(name, "history", [failure])
    values = pd.to_numeric(history[config.column], errors="coerce")
    bad = ~((values > 0) & (values <= 1))
    if not bad.any():
        return CrossCheck(name, "history")
    failure = ValidationFailure(
        "history", path, config.column, name, unexpected_count=int(bad.sum()),
        sample=tuple(plain(pd.unique(history.loc[bad, config.column])[:limit].tolist())),
        rows=tuple(int(i) + 1 for i in bad.to_numpy().nonzero()[0][:limit]),
        detail="a logged propensity is the probability of the arm received: in (0, 1]",
    )
    return CrossCheck(name, "history", [failure])


def population_stability(reference: pd.Series, current: pd.Series) -> float:
    """Population stability index of `current` against `reference` (categories, or the reference's deciles)."""
    import numpy as np

    if pd.api.types.is_numeric_dtype(reference) and reference.nunique() > 10:
        edges = np.unique(np.quantile(reference.dropna(), np.linspace(0, 1, 11)))
        edges[0], edges[-1] = -np.inf, np.inf
        ref = pd.cut(reference, edges).value_counts(normalize=True, sort=False)
        cur = pd.cut(current, edges).value_counts(normalize=True, sort=False)
    else:
        ref = reference.astype(str).value_counts(normalize=True)
        cur = current.astype(str).value_counts(normalize=True)
        ref, cur = ref.align(cur, fill_value=0.0)
    ref, cur = ref.to_numpy(float).clip(1e-4), cur.to_numpy(float).clip(1e-4)
    return float(((cur - ref) * np.log(cur / ref)).sum())


def feature_drift(history: pd.DataFrame, customers: pd.DataFrame, params: Params, path: str,
                  skip: str | None = None) -> CrossCheck:
    """Customers to score that differ from the customers the model learned from (a new batch): every feature's
    population stability index; above validate.drift.max_psi is a warning or a failure (validate.drift.action)."""
    name = "customer_features_like_the_history"
    if skip:
        return CrossCheck(name, "customers", skipped=skip)
    features = [c for c in params.train.features if c in history.columns and c in customers.columns]
    if not features:
        return CrossCheck(name, "customers", skipped="the history carries no feature columns: customers are looked up by id")
    learned = history.drop_duplicates(params.data.customer_id)
    psi = {feature: round(population_stability(learned[feature], customers[feature]), 4) for feature in features}
    settings = params.validate_.drift
    drifted = {feature: value for feature, value in psi.items() if value > settings.max_psi}
    if not drifted:
        return CrossCheck(name, "customers", skipped=f"population stability {psi}: no feature above {settings.max_psi}")
    detail = (f"features drifted from the history's customers (population stability index > {settings.max_psi}): "
              f"{drifted}; the model may score these customers badly")
    if settings.action == "warn":
        log.warning("%s: %s (validate.drift.action: warn)", path, detail)
        return CrossCheck(name, "customers", skipped=f"warned: {detail}")
    failure = ValidationFailure("customers", path, ", ".join(drifted), name, unexpected_count=len(drifted),
                                sample=tuple(drifted), detail=detail)
    return CrossCheck(name, "customers", [failure])
