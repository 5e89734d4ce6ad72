"""Uplift model: conversion probability of every customer under every arm, learned from history.

The optimizer needs p(convert | customer, arm) for all arms, not only treatment effects, so the model
wraps a causalml learner (see `offerflow.uplift.learners`) and exposes per-arm probabilities.
`train_and_evaluate` is the train stage's function: it cross-fits every learner listed in params.yaml,
keeps the best by the stated criterion, evaluates it out of fold, estimates average effects with and
without debiasing, and fits the chosen learner on all of the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from offerflow.config import LearnerConfig, TrainConfig
from offerflow.schema import ARM, CONVERTED, CUSTOMER_ID, prob_column
from offerflow.uplift.debias import PropensityModel
from offerflow.uplift.learners import ArmLearner, pair_propensity


@dataclass
class UpliftModel:
    """A fitted learner plus everything needed to score new customers consistently."""

    learner: ArmLearner
    encoder: ColumnTransformer
    propensity: PropensityModel
    features: list[str]
    arms: list[str]
    control: str
    metadata: dict = field(default_factory=dict)
    segment_evidence: pd.DataFrame | None = None  # per segment x arm: n_obs and a doubly robust interval

    def predict_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """n x arms conversion probabilities, columns in `arms` order."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"cannot score: feature column(s) {missing} missing; the model was trained on {self.features}")
        X = self.encoder.transform(frame[self.features])
        return self.learner.predict(X, pair_propensity(self.propensity.predict(X), self.arms, self.control))

    def predict_arm_probabilities(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One `prob_<arm>` column per arm, rows aligned with `frame`."""
        matrix = self.predict_matrix(frame)
        return pd.DataFrame({prob_column(arm): matrix[:, j] for j, arm in enumerate(self.arms)}, index=frame.index)


def make_encoder(frame: pd.DataFrame, features: list[str]) -> ColumnTransformer:
    """One-hot encode text/categorical features, standardize numeric ones (sorted categories: stable).

    Scaling leaves tree models unchanged and lets the logistic base model converge on raw amounts.
    """
    categorical = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    numeric = [c for c in features if c not in categorical]
    return ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
            ("numeric", StandardScaler(), numeric),
        ],
        verbose_feature_names_out=False,
    )


def training_frame(history: pd.DataFrame, customers: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """History rows joined to the customer columns they lack (columns already on the history win)."""
    missing = [c for c in dict.fromkeys(columns) if c not in history.columns and c in customers.columns]
    if missing:
        history = history.merge(customers[[CUSTOMER_ID, *missing]], on=CUSTOMER_ID, how="left", validate="many_to_one")
    absent = [c for c in dict.fromkeys(columns) if c not in history.columns]
    if absent:
        raise ValueError(f"column(s) {absent} are neither in the history nor in the customers file")
    return history


@dataclass
class Design:
    """The history as arrays: encoded features, arm labels and indexes, outcomes, customer clusters."""

    X: np.ndarray
    arm_labels: np.ndarray
    arm_index: np.ndarray
    y: np.ndarray
    clusters: np.ndarray
    encoder: ColumnTransformer


def design_matrix(history: pd.DataFrame, features: list[str], arms: list[str]) -> Design:
    unseen = sorted(set(arms) - set(history[ARM].unique()))
    if unseen:
        raise ValueError(f"history has no rows for arm(s) {unseen}; cannot learn their conversion probability")
    unknown = sorted(set(history[ARM].astype(str).unique()) - set(arms))
    if unknown:
        raise ValueError(f"history has arm(s) {unknown} that are not in arms.coupon_cost {arms}")
    missing = [c for c in features if c not in history.columns]
    if missing:
        raise ValueError(f"feature column(s) {missing} missing from the training data")
    encoder = make_encoder(history, features)
    X = encoder.fit_transform(history[features])  # one pass: fit() would transform once and throw it away
    labels = history[ARM].astype(str).to_numpy()
    index = pd.Series(labels).map({arm: j for j, arm in enumerate(arms)}).to_numpy(dtype=np.int64)
    return Design(
        X=np.asarray(X, dtype=float),
        arm_labels=labels.astype(str),  # plain strings: causalml's np.unique over objects was a fifth of the stage
        arm_index=index,
        y=history[CONVERTED].to_numpy(dtype=np.int64),
        clusters=history[CUSTOMER_ID].to_numpy(),
        encoder=encoder,
    )


def learner_name(spec: LearnerConfig) -> str:
    return spec.learner if spec.learner == "uplift_forest" else f"{spec.learner}/{spec.base_model}"


def fit_model(
    design: Design,
    spec: LearnerConfig,
    features: list[str],
    arms: list[str],
    control: str,
    config: TrainConfig,
    logged: np.ndarray | None = None,
    propensity: PropensityModel | None = None,
) -> UpliftModel:
    """Fit one learner on all rows of the design, with `propensity` (a model already fitted on these rows)
    or a propensity model fitted here (from `logged` propensities of the received arms with source logged)."""
    if propensity is None:
        propensity = PropensityModel(config.propensity, arms, config.seed).fit(design.X, design.arm_index, logged)
    learner = ArmLearner(spec, arms, control, config.seed).fit(
        design.X, design.arm_labels, design.y, pair_propensity(propensity.predict(design.X), arms, control)
    )
    model = UpliftModel(learner, design.encoder, propensity, list(features), list(arms), control)
    model.metadata = {
        "learner": spec.learner,
        "base_model": spec.base_model,
        "model_params": dict(spec.model_params),
        "name": learner_name(spec),
        "seed": config.seed,
        "features": list(features),
        "arms": list(arms),
        "control": control,
        "propensity_source": config.propensity.source,
        "training_rows": int(len(design.y)),
    }
    return model


def train_uplift(
    history: pd.DataFrame,
    features: list[str],
    arms: list[str],
    control: str,
    config: TrainConfig,
    spec: LearnerConfig | None = None,
) -> UpliftModel:
    """Fit one learner (default: params' train.learner/base_model) on history with canonical columns."""
    from offerflow.uplift.training import logged_propensity

    design = design_matrix(history, list(features), list(arms))
    return fit_model(design, spec or config.default_learner, features, arms, control, config, logged_propensity(history, config))


def fit_report(model: UpliftModel, history: pd.DataFrame) -> dict:
    """Per-arm observed vs predicted (in-sample) conversion rate; against the truth when it is logged."""
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
