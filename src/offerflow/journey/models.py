"""Tree-ensemble regressors and classifiers on (state, action) rows, built from `journey.learn` settings.

The action enters as one categorical column after the state features, so one model per wave learns
how every action's effect depends on the state. LightGBM runs deterministically (row-wise histograms,
fixed seed) so the same data give byte-identical models and policies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from offerflow.errors import ConfigError
from offerflow.journey.config import ModelConfig

LIGHTGBM_DEFAULTS: dict[str, Any] = {"n_jobs": 1, "verbose": -1, "deterministic": True, "force_row_wise": True}


def with_action(features: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """(n, p + 1) design matrix: state features plus the action index as the last column.

    float32 throughout (training and prediction alike): half the memory, twice the prediction speed.
    """
    return np.column_stack([features, actions]).astype(np.float32)


def every_action(features: np.ndarray, actions: int) -> np.ndarray:
    """(n * A, p + 1) rows of every customer with every action (customer-major: row i*A + a)."""
    n = len(features)
    return with_action(np.repeat(features, actions, axis=0), np.tile(np.arange(actions), n))


class TreeModel:
    """A fitted regressor or classifier over (state, action) or state-only rows; `predict` gives means."""

    def __init__(self, config: ModelConfig, seed: int, classifier: bool, categorical_last: bool) -> None:
        self.config, self.seed, self.classifier, self.categorical_last = config, seed, classifier, categorical_last
        self.estimator: Any = None
        self.constant: float | None = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> "TreeModel":
        if self.classifier and len(np.unique(y)) < 2:  # nobody (or everybody) responded: nothing to learn
            self.constant = float(y[0]) if len(y) else 0.0
            return self
        categorical = [x.shape[1] - 1] if self.categorical_last else []
        if self.config.kind == "lightgbm":
            import lightgbm as lgb

            params = {**LIGHTGBM_DEFAULTS, **self.config.params, "random_state": self.seed}
            cls = lgb.LGBMClassifier if self.classifier else lgb.LGBMRegressor
            self.estimator = _build(cls, params, self.config.kind)
            self.estimator.fit(x, y, categorical_feature=categorical or "auto")
        else:
            from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

            cls = HistGradientBoostingClassifier if self.classifier else HistGradientBoostingRegressor
            params = {**self.config.params, "random_state": self.seed}
            mask = np.zeros(x.shape[1], dtype=bool)
            mask[categorical] = True
            self.estimator = _build(cls, {**params, "categorical_features": mask if categorical else None},
                                    self.config.kind)
            self.estimator.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.constant is not None:
            return np.full(len(x), self.constant)
        if self.classifier:
            return self.estimator.predict_proba(x)[:, list(self.estimator.classes_).index(1)]
        return np.asarray(self.estimator.predict(x), dtype=float)


def _build(cls, params: dict[str, Any], kind: str):
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"journey.learn model {kind}: {exc}") from None


def fit_regressor(config: ModelConfig, seed: int, x: np.ndarray, y: np.ndarray, categorical_last: bool = True) -> TreeModel:
    return TreeModel(config, seed, classifier=False, categorical_last=categorical_last).fit(x, y)


def fit_classifier(config: ModelConfig, seed: int, x: np.ndarray, y: np.ndarray, categorical_last: bool) -> TreeModel:
    return TreeModel(config, seed, classifier=True, categorical_last=categorical_last).fit(x, y.astype(int))
