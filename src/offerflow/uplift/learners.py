"""Multi-treatment uplift learners that answer p(convert | customer, arm) for every arm.

causalml's meta-learners predict treatment effects; the optimizer needs per-arm probabilities. Each
learner kind maps to them in the way its estimator is built:
- S and T learner: their per-arm outcome predictions (`return_components=True`);
- X and DR learner: the control outcome model plus the learner's own effect estimate per arm
  (X weighs its two effect models by the pairwise propensity; DR's effect model is fitted on doubly
  robust pseudo-outcomes with the propensity, so both use the debiasing they were built for);
- uplift random forest: its per-arm leaf probabilities (`predict(full_output=True)`).
All seeded and single-threaded by default, so the same data and params give byte-identical models.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge

from offerflow.config import LearnerConfig

LIGHTGBM_DEFAULTS = {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 15, "verbose": -1, "n_jobs": 1}
LOGISTIC_DEFAULTS = {"C": 1.0, "max_iter": 1000}
FOREST_DEFAULTS = {"n_estimators": 20, "max_depth": 5, "min_samples_leaf": 200, "n_jobs": 1}


class ProbabilityRegressor:
    """A classifier whose `predict` is P(y = 1).

    causalml's DR learner builds its pseudo-outcomes from the outcome models' `predict`; with a plain
    classifier that would be a 0/1 label, so the outcome models are wrapped to return probabilities.
    """

    def __init__(self, classifier: Any):
        self.classifier = classifier

    def fit(self, X, y):
        self.classifier_ = clone(self.classifier).fit(X, y)
        return self

    def predict(self, X) -> np.ndarray:
        return self.classifier_.predict_proba(X)[:, 1]

    def predict_proba(self, X) -> np.ndarray:
        return self.classifier_.predict_proba(X)


def make_classifier(base_model: str, model_params: dict, seed: int):
    """The outcome classifier named in params.yaml (LightGBM or scikit-learn's logistic regression)."""
    if base_model == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(random_state=seed, deterministic=True, **{**LIGHTGBM_DEFAULTS, **model_params})
    if base_model == "logistic":
        return LogisticRegression(random_state=seed, **{**LOGISTIC_DEFAULTS, **model_params})
    raise ValueError(f"unknown base_model {base_model!r}; expected 'lightgbm' or 'logistic'")


def make_regressor(base_model: str, model_params: dict, seed: int):
    """The effect regressor of X/DR learners: LightGBM with the same settings, or ridge regression."""
    if base_model == "lightgbm":
        from lightgbm import LGBMRegressor

        return LGBMRegressor(random_state=seed, deterministic=True, **{**LIGHTGBM_DEFAULTS, **model_params})
    return Ridge(alpha=1.0)


def pair_propensity(propensity: np.ndarray, arms: list[str], control: str) -> dict[str, np.ndarray]:
    """P(arm = t | arm in {t, control}, x) per treatment: the binary propensity causalml's X/DR expect."""
    c = arms.index(control)
    return {
        arm: propensity[:, j] / (propensity[:, j] + propensity[:, c])
        for j, arm in enumerate(arms)
        if arm != control
    }


class ArmLearner:
    """One fitted learner (any kind in LearnerConfig) with a per-arm probability `predict`."""

    def __init__(self, spec: LearnerConfig, arms: list[str], control: str, seed: int):
        # plain values, not the pydantic model: its pickle holds a set whose order varies per process,
        # which would make the saved model's bytes differ between identical runs
        self.kind = spec.learner
        self.base_model = spec.base_model
        self.model_params = dict(spec.model_params)
        self.arms = list(arms)
        self.control = control
        self.seed = seed
        self.estimator: Any = None

    @property
    def treatments(self) -> list[str]:
        return [arm for arm in self.arms if arm != self.control]

    def _build(self):
        from causalml.inference.meta import BaseDRRegressor, BaseSClassifier, BaseTClassifier, BaseXClassifier

        kind, params = self.kind, dict(self.model_params)
        if kind == "uplift_forest":
            from causalml.inference.tree import UpliftRandomForestClassifier

            return UpliftRandomForestClassifier(
                control_name=self.control, random_state=self.seed, **{**FOREST_DEFAULTS, **params}
            )
        classifier = make_classifier(self.base_model, params, self.seed)
        if kind == "t_learner":
            return BaseTClassifier(learner=classifier, control_name=self.control)
        if kind == "s_learner":
            return BaseSClassifier(learner=classifier, control_name=self.control)
        regressor = make_regressor(self.base_model, params, self.seed)
        if kind == "x_learner":
            return BaseXClassifier(outcome_learner=classifier, effect_learner=regressor, control_name=self.control)
        if kind == "dr_learner":
            outcome = ProbabilityRegressor(classifier)
            return BaseDRRegressor(
                control_outcome_learner=outcome,
                treatment_outcome_learner=outcome,
                treatment_effect_learner=regressor,
                control_name=self.control,
            )
        raise ValueError(f"unknown learner {kind!r}")

    def fit(self, X: np.ndarray, arm: np.ndarray, y: np.ndarray, pair_p: dict[str, np.ndarray]) -> "ArmLearner":
        """Fit on features X, arm labels and 0/1 outcomes; pair_p feeds the propensity-aware learners."""
        try:
            self.estimator = self._build()
        except TypeError as exc:  # a model_params key the chosen model does not take
            raise ValueError(
                f"train model_params {self.model_params} do not fit learner {self.kind!r} "
                f"(base model {self.base_model!r}): {exc}"
            ) from None
        kind = self.kind
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "uplift_forest":
                self.estimator.fit(X, treatment=arm, y=y)
            elif kind == "dr_learner":
                self.estimator.fit(X=X, treatment=arm, y=y, p=pair_p, seed=self.seed)
            elif kind == "x_learner":
                self.estimator.fit(X=X, treatment=arm, y=y, p=pair_p)
            else:
                self.estimator.fit(X=X, treatment=arm, y=y)
        return self

    def predict(self, X: np.ndarray, pair_p: dict[str, np.ndarray]) -> np.ndarray:
        """n x arms matrix of conversion probabilities, columns in `arms` order, within [0, 1]."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            columns = self._predict_columns(X, pair_p)
        return np.clip(np.column_stack([columns[arm] for arm in self.arms]), 0.0, 1.0)

    def _predict_columns(self, X: np.ndarray, pair_p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        kind, est = self.kind, self.estimator
        if kind == "uplift_forest":
            frame = est.predict(X, full_output=True)
            return {arm: frame[arm].to_numpy(dtype=float) for arm in self.arms}
        if kind in ("t_learner", "s_learner"):
            _, control_hat, treatment_hat = est.predict(X=X, return_components=True)
            columns = {self.control: np.mean([control_hat[t] for t in self.treatments], axis=0)}
            columns.update({t: np.asarray(treatment_hat[t], dtype=float) for t in self.treatments})
            return columns
        if kind == "x_learner":
            effects = est.predict(X=X, p=pair_p)
            control = est.model_mu_c.predict_proba(X)[:, 1]
        else:  # dr_learner
            effects, control_hat, _ = est.predict(X=X, return_components=True)
            control = np.asarray(control_hat[self.treatments[0]], dtype=float)
        columns = {self.control: control}
        columns.update({t: control + effects[:, est._classes[t]] for t in self.treatments})
        return columns
