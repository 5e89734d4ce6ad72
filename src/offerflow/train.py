"""Uplift model: conversion probability of every customer under every arm, learned from history.

The optimizer needs p(convert | customer, arm) for all arms, not only treatment effects, so the model
wraps a causalml multi-treatment meta-learner and exposes per-arm probabilities (control from the
control-outcome model, each treatment from its treatment-outcome model).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from offerflow.config import TrainConfig
from offerflow.io import ARM, CONVERTED, CUSTOMER_ID, prob_column


@dataclass
class UpliftModel:
    """A fitted learner plus everything needed to score new customers consistently."""

    learner: object
    encoder: ColumnTransformer
    features: list[str]
    arms: list[str]
    control: str
    metadata: dict = field(default_factory=dict)

    def predict_arm_probabilities(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One `prob_<arm>` column per arm, rows aligned with `frame`."""
        X = self.encoder.transform(frame[self.features])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            _, control_hat, treatment_hat = self.learner.predict(X=X, return_components=True)
        treatments = [arm for arm in self.arms if arm != self.control]
        columns = {prob_column(self.control): np.mean([control_hat[t] for t in treatments], axis=0)}
        for arm in treatments:
            columns[prob_column(arm)] = np.asarray(treatment_hat[arm], dtype=float)
        return pd.DataFrame({prob_column(arm): columns[prob_column(arm)] for arm in self.arms}, index=frame.index)


def make_encoder(frame: pd.DataFrame, features: list[str]) -> ColumnTransformer:
    """One-hot encode text/categorical features, pass numeric ones through (sorted categories: stable)."""
    categorical = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    numeric = [c for c in features if c not in categorical]
    return ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
            ("numeric", "passthrough", numeric),
        ],
        verbose_feature_names_out=False,
    )


def make_base_model(config: TrainConfig):
    """The per-arm outcome classifier named in params.yaml, seeded and single-threaded for determinism."""
    if config.base_model == "lightgbm":
        from lightgbm import LGBMClassifier

        settings = {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 15, "verbose": -1}
        settings.update(config.model_params)
        return LGBMClassifier(random_state=config.seed, n_jobs=1, deterministic=True, **settings)
    settings = {"C": 1.0, "max_iter": 1000}
    settings.update(config.model_params)
    return LogisticRegression(random_state=config.seed, **settings)


def training_frame(history: pd.DataFrame, customers: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """History rows joined to the customers' features (features already on the history win)."""
    missing = [c for c in features if c not in history.columns]
    if missing:
        history = history.merge(customers[[CUSTOMER_ID, *missing]], on=CUSTOMER_ID, how="left", validate="many_to_one")
    return history


def train_uplift(
    history: pd.DataFrame, features: list[str], arms: list[str], control: str, config: TrainConfig
) -> UpliftModel:
    """Fit a multi-treatment T-learner on history with canonical `arm` / `converted` columns."""
    from causalml.inference.meta import BaseTClassifier

    unseen = sorted(set(arms) - set(history[ARM].unique()))
    if unseen:
        raise ValueError(f"history has no rows for arm(s) {unseen}; cannot learn their conversion probability")
    encoder = make_encoder(history, features).fit(history[features])
    X = encoder.transform(history[features])
    learner = BaseTClassifier(learner=make_base_model(config), control_name=control)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        learner.fit(X=X, treatment=history[ARM].to_numpy(), y=history[CONVERTED].to_numpy())
    model = UpliftModel(learner=learner, encoder=encoder, features=list(features), arms=list(arms), control=control)
    model.metadata = {
        "learner": config.learner,
        "base_model": config.base_model,
        "model_params": dict(config.model_params),
        "seed": config.seed,
        "features": list(features),
        "arms": list(arms),
        "control": control,
        "training_rows": int(len(history)),
    }
    return model


def fit_report(model: UpliftModel, history: pd.DataFrame) -> dict:
    """Per-arm observed vs predicted conversion rate; against the truth too when `true_prob` is logged."""
    predicted = model.predict_arm_probabilities(history)
    report: dict = {"rows": int(len(history)), "arms": {}}
    errors = []
    for arm in model.arms:
        rows = history[ARM] == arm
        entry = {
            "rows": int(rows.sum()),
            "observed_rate": round(float(history.loc[rows, CONVERTED].mean()), 6),
            "predicted_rate": round(float(predicted.loc[rows, prob_column(arm)].mean()), 6),
        }
        if "true_prob" in history.columns:
            error = (predicted.loc[rows, prob_column(arm)] - history.loc[rows, "true_prob"]).abs()
            entry["mae_vs_truth"] = round(float(error.mean()), 6)
            errors.append(error)
        report["arms"][arm] = entry
    if errors:
        report["mae_vs_truth"] = round(float(pd.concat(errors).mean()), 6)
    return report
