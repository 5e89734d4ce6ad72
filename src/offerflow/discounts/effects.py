"""Debiased effect of the discount on profit: double machine learning with econml.

Why econml (0.17) and not DoubleML: offerflow needs, from one fitted object, the average effect with
an interval, every customer's effect with an interval, and the effect of moving a customer from no
discount to any level of the decision grid. econml's LinearDML / CausalForestDML give all three for a
continuous treatment (`ate_interval`, `effect_interval`, `effect(X, T0, T1)`), accept a treatment
featurizer for a bent dose response, and take any scikit-learn/LightGBM nuisance models. DoubleML's
partially linear model gives the average slope but per-customer effects only through a separate
best-linear-predictor step, and no dose response per customer.

How (Frisch-Waugh-Lovell, cross-fitted): profit and discount are each predicted from the customer's
features and controls on folds that exclude the customer; the profit residual is regressed on the
discount residual (times the features, for per-customer slopes). What the staff's targeting explains
is removed from both, so the remaining co-movement is the discount's own effect.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from offerflow.discounts.config import EffectConfig, NuisanceConfig


@dataclass(frozen=True)
class AverageEffect:
    """Profit change per extra discount dollar, averaged over customers, with its interval."""

    method: str
    estimate: float
    ci_low: float
    ci_high: float
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return {key: (round(value, 6) if isinstance(value, float) else value) for key, value in asdict(self).items()}

    def overlaps(self, low: float, high: float) -> bool:
        return self.ci_low <= high and low <= self.ci_high


def naive_slope(discount: np.ndarray, profit: np.ndarray, level: float = 0.95) -> AverageEffect:
    """Least-squares slope of profit on discount (HC1 interval): what a look at the raw history shows."""
    import statsmodels.api as sm

    fit = sm.OLS(np.asarray(profit, float), sm.add_constant(np.asarray(discount, float))).fit(cov_type="HC1")
    low, high = fit.conf_int(alpha=1 - level)[1]
    return AverageEffect("naive least squares", float(fit.params[1]), float(low), float(high), len(profit))


def treatment_basis(discount: np.ndarray, knots: tuple[float, ...] = ()) -> np.ndarray:
    """phi(d) = [d] + for each knot k: [1{d > k}, (d - k)+]: a straight line that may step and bend at knots."""
    d = np.asarray(discount, dtype=float).reshape(-1, 1)
    columns = [d]
    for knot in knots:
        columns += [(d > knot).astype(float), np.clip(d - knot, 0.0, None)]
    return np.hstack(columns)


def nuisance_model(config: NuisanceConfig, seed: int, outputs: int = 1):
    """A first-stage regressor; several treatment basis columns get one model each."""
    if config.model == "lightgbm":
        from lightgbm import LGBMRegressor

        base = LGBMRegressor(**{"verbose": -1, "n_jobs": 1, **config.params, "random_state": seed})
    else:
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        base = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13), **config.params))
    if outputs == 1:
        return base
    from sklearn.multioutput import MultiOutputRegressor

    return MultiOutputRegressor(base)


def make_estimator(config: EffectConfig, knots: tuple[float, ...], estimator: str | None = None):
    """An unfitted econml DML estimator for the given dose-response knots (none: one slope)."""
    from sklearn.preprocessing import FunctionTransformer

    outputs = 1 + 2 * len(knots)
    featurizer = FunctionTransformer(treatment_basis, kw_args={"knots": tuple(knots)}) if knots else None
    common = {
        "model_y": nuisance_model(config.nuisance, config.seed),
        "model_t": nuisance_model(config.nuisance, config.seed, outputs),
        "treatment_featurizer": featurizer,
        "cv": config.folds,
        "random_state": config.seed,
    }
    if (estimator or config.estimator) == "linear_dml":
        from econml.dml import LinearDML

        return LinearDML(**common)
    from econml.dml import CausalForestDML

    trees = 4 * max(1, config.forest_trees // 4)
    return CausalForestDML(**common, n_estimators=trees, min_samples_leaf=20, n_jobs=1)


@dataclass
class DiscountEffectModel:
    """The fitted effect models and what the rest of offerflow asks of them."""

    average_model: Any  # LinearDML: its linear final stage gives an average-effect interval of the right width
    slope_model: Any  # econml estimator, linear in the discount: the per-customer slope
    dose_model: Any  # econml estimator with the knots' basis (the slope model when there are no knots)
    features: list[str]
    knots: tuple[float, ...]
    level: float
    method: str

    def average_effect(self, X: pd.DataFrame) -> AverageEffect:
        """Average over these customers of their profit change per extra discount dollar (LinearDML)."""
        x = self._x(X)
        low, high = self.average_model.ate_interval(x, alpha=1 - self.level)
        estimate = float(self.average_model.ate(x))
        return AverageEffect("LinearDML", estimate, float(np.squeeze(low)), float(np.squeeze(high)), len(x))

    def customer_effects(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each customer's slope (profit per discount dollar) with its interval."""
        x = self._x(X)
        low, high = self.slope_model.effect_interval(x, alpha=1 - self.level)
        return pd.DataFrame(
            {"effect": np.ravel(self.slope_model.effect(x)), "ci_low": np.ravel(low), "ci_high": np.ravel(high)},
            index=X.index,
        )

    def profit_change(
        self, X: pd.DataFrame, levels: tuple[float, ...] | np.ndarray, penalty: float = 0.0
    ) -> np.ndarray:
        """(n, L) expected profit change of each customer from no discount to each level, less `penalty`
        standard errors of that change (penalty > 0: a cautious plan that discounts only customers whose
        gain is clear, since a noisy positive estimate is often a true loss)."""
        x = self._x(X)
        zero = np.zeros(len(x))
        columns = []
        for level in levels:
            if level == 0:
                columns.append(zero.copy())
                continue
            at = np.full(len(x), float(level))
            if penalty > 0:
                inference = self.dose_model.effect_inference(x, T0=zero, T1=at)
                columns.append(np.ravel(inference.point_estimate) - penalty * np.ravel(inference.stderr))
            else:
                columns.append(np.ravel(self.dose_model.effect(x, T0=zero, T1=at)))
        return np.column_stack(columns)

    def _x(self, X: pd.DataFrame) -> np.ndarray:
        missing = [name for name in self.features if name not in X.columns]
        if missing:
            raise ValueError(f"feature columns missing: {missing}")
        return X[self.features].to_numpy(dtype=float)


def fit_discount_effects(
    X: pd.DataFrame, W: pd.DataFrame | None, discount: np.ndarray, profit: np.ndarray, config: EffectConfig
) -> DiscountEffectModel:
    """Cross-fitted DML of profit on discount with per-customer effects in X, adjusting for X and W.

    X: encoded features (explain the effect); W: encoded controls (only adjust, e.g. the sales
    prediction the staff targeted on); both enter the nuisance models.
    """
    features = list(X.columns)
    x = X.to_numpy(dtype=float)
    w = None if W is None or W.shape[1] == 0 else W.to_numpy(dtype=float)
    y, t = np.asarray(profit, dtype=float), np.asarray(discount, dtype=float)
    slope_model = make_estimator(config, ())
    slope_model.fit(y, t, X=x, W=w)
    average_model = slope_model
    if config.estimator != "linear_dml":  # a forest's average-effect interval is far too wide: use LinearDML's
        average_model = make_estimator(config, (), estimator="linear_dml")
        average_model.fit(y, t, X=x, W=w)
    dose_model = slope_model
    if config.knots:
        dose_model = make_estimator(config, config.knots)
        dose_model.fit(y, t, X=x, W=w)
    method = "LinearDML" if config.estimator == "linear_dml" else "CausalForestDML"
    return DiscountEffectModel(
        average_model, slope_model, dose_model, features, tuple(config.knots), config.interval_level, method
    )
