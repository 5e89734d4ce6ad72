"""A discount history with known per-customer effects, written like the real files.

Why: the real files have no ground truth, so the estimators are checked here: the simulator knows
every customer's profit response to any discount, and its observational design copies the staff
rule seen in the example (bigger discounts to customers with a higher sales prediction, which also
buy more anyway), so a naive slope is biased upwards exactly as in the real history. The randomized
design draws discounts from multiples of 10 with decaying frequencies, like the real test file.

True response: profit_i(d) = baseline_i + slope_i * d + jump * 1{d > knot} + noise, with slope_i linear in
age, gender and state (so a linear effect model is correctly specified and its intervals can be checked).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SIM_STATES = ("SP", "MG", "RJ", "BA", "RS", "DF")
STATE_PROBABILITIES = (0.35, 0.2, 0.18, 0.12, 0.1, 0.05)
STATE_SLOPE = {"SP": 0.0, "MG": -0.04, "RJ": -0.02, "BA": 0.03, "RS": -0.06, "DF": 0.08}
RANDOMIZED_LEVELS = np.arange(0.0, 201.0, 10.0)


@dataclass(frozen=True)
class SlopeModel:
    """True slope_i = base + age_per_year * (age - 31) + gender_1 * [gender == 1] + STATE_SLOPE[state]."""

    base: float = -0.05
    age_per_year: float = -0.006  # younger customers respond better
    gender_1: float = 0.02
    jump: float = 0.0  # profit step when the discount passes `knot` (extra baskets unlocked)
    knot: float = 100.0

    def slopes(self, frame: pd.DataFrame) -> np.ndarray:
        state = frame["cust_state"].map(STATE_SLOPE).to_numpy(dtype=float)
        gender = (frame["gender"] == 1).to_numpy(dtype=float)
        return (
            self.base + self.age_per_year * (frame["age"].to_numpy(dtype=float) - 31.0) + self.gender_1 * gender + state
        )

    def profit_change(self, frame: pd.DataFrame, levels: np.ndarray) -> np.ndarray:
        """(n, L) true expected profit change from no discount to each level."""
        levels = np.asarray(levels, dtype=float)[None, :]
        return self.slopes(frame)[:, None] * levels + self.jump * (levels > self.knot)


@dataclass(frozen=True)
class SimulatedDiscounts:
    frame: pd.DataFrame  # discount, sales, profit, age, gender, cust_state, tenure, sales_prediction
    truth: SlopeModel
    slope: np.ndarray  # true d profit / d discount of every customer (away from the knot)
    baseline: np.ndarray  # true expected profit of every customer without a discount

    def expected_profit(self, levels: np.ndarray) -> np.ndarray:
        """(n, L) true expected profit of every customer at each level."""
        return self.baseline[:, None] + self.truth.profit_change(self.frame, levels)

    def policy_value(self, levels: np.ndarray, level_index: np.ndarray) -> float:
        """True expected profit per customer of giving customer i levels[level_index[i]]."""
        profit = self.expected_profit(levels)
        return float(profit[np.arange(len(profit)), level_index].mean())

    @property
    def average_slope(self) -> float:
        """The sample's average true slope: what the average-effect interval should cover."""
        return float(self.slope.mean())


def simulate_discounts(
    n: int,
    seed: int,
    design: str = "observational",
    truth: SlopeModel = SlopeModel(),
    margin: float = 0.05,
    noise: float = 15.0,
    staff_noise: float = 11.0,
) -> SimulatedDiscounts:
    """n customers and the discount each got under `design` ("observational" staff rule or "randomized")."""
    if design not in ("observational", "randomized"):
        raise ValueError(f"design must be observational or randomized, got {design!r}")
    rng = np.random.default_rng(seed)
    age = np.clip(np.rint(rng.normal(31, 6, n)), 16, 65)
    gender = rng.integers(0, 2, n).astype(float)
    gender[rng.random(n) < 0.1] = np.nan
    state = rng.choice(SIM_STATES, size=n, p=STATE_PROBABILITIES)
    tenure = np.clip(np.rint(rng.normal(6, 2.4, n)), 0, 18)
    log_prediction = rng.normal(7.0, 0.3, n)
    prediction = np.exp(log_prediction)
    z = (log_prediction - 7.0) / 0.3
    frame = pd.DataFrame(
        {"age": age, "gender": gender, "cust_state": state, "tenure": tenure, "sales_prediction": prediction}
    )
    if design == "observational":  # staff rule: about 14 USD more per sales-prediction decile, plus judgement
        decile = np.clip(np.floor((pd.Series(z).rank(pct=True).to_numpy()) * 10), 0, 9)
        discount = np.clip(5 * np.rint((12 + 14 * decile + rng.normal(0, staff_noise, n)) / 5), 0, None)
    else:
        weights = np.exp(-RANDOMIZED_LEVELS / 40.0)
        discount = rng.choice(RANDOMIZED_LEVELS, size=n, p=weights / weights.sum())
    slope = truth.slopes(frame)
    baseline = 45 + 6 * z + 3 * np.tanh(z) + 0.3 * (age - 31) + 0.5 * tenure
    profit = baseline + slope * discount + truth.jump * (discount > truth.knot) + rng.normal(0, noise, n)
    profit = np.round(profit, 2)
    frame["discount"] = discount
    frame["sales"] = np.round((profit + discount) / margin, 2)
    frame["profit"] = np.round(margin * frame["sales"] - discount, 2)
    return SimulatedDiscounts(frame=frame, truth=truth, slope=slope, baseline=baseline)
