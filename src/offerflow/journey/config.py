"""Typed settings of the customer-journey scenario (params.yaml section `journey`).

Defaults are the default testbed: 20 weekly steps with a campaign wave every 5 steps (4 decisions),
three offers (an ad that costs money and sells nothing by itself, a small and a large discount) and
the sequencing effects documented in `offerflow.journey.simulator`. A user with a real journey log
sets `journey.log` (its path and column names), `journey.offers`, `horizon` and `campaign_every`
and switches `journey.testbed` to null: nothing else is specific to the testbed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from offerflow.sections import Section as _Section

TESTBED_FEATURES = ("age", "income", "tenure_months", "activity")


class OfferConfig(_Section):
    """An action's price: a cost per contact, plus a share of the basket given back when the customer buys."""

    contact_cost: float = Field(0.0, ge=0, allow_inf_nan=False)  # USD paid when the offer is sent
    discount: float = Field(0.0, ge=0, lt=1)  # share of the basket paid back on a purchase in the same step


def _default_offers() -> dict[str, OfferConfig]:
    return {
        "ad": OfferConfig(contact_cost=1.0, discount=0.0),
        "small_discount": OfferConfig(contact_cost=0.25, discount=0.10),
        "large_discount": OfferConfig(contact_cost=0.25, discount=0.30),
    }


class SequencingConfig(_Section):
    """The offer that pays off only after a preparatory one: the purchase rate jumps once it follows it."""

    preparatory_offer: str = "ad"
    payoff_offer: str = "large_discount"
    min_gap: int = Field(1, ge=1)  # steps between the preparatory offer and the payoff offer


class MaturityConfig(_Section):
    """Offers convert better as a customer matures; maturity starts from tenure and grows every step."""

    tenure_scale_months: float = Field(12.0, gt=0)  # initial maturity 1 - exp(-tenure / scale)
    growth_steps: float = Field(8.0, gt=0)  # the immaturity left decays by exp(-1) every this many steps


class FatigueConfig(_Section):
    """Every contact adds fatigue that decays geometrically and lowers the purchase rate."""

    decay: float = Field(0.7, ge=0, lt=1)  # per step
    logit_penalty: float = Field(0.4, ge=0)  # logit points per unit of fatigue (average customer)
    age_slope: float = Field(0.4, ge=0)  # older customers tire faster: penalty x (1 + slope x age z-score)


class JourneyTestbedConfig(_Section):
    """The seeded simulator that draws the example log and gives every policy its true value."""

    customers: int = Field(20_000, ge=10)  # customers in the simulated log
    base_purchase_rate: float = Field(0.04, gt=0, lt=1)  # per step, average customer, no offer, not engaged
    engaged_purchase_rate: float = Field(0.22, gt=0, lt=1)  # per step once the payoff offer followed the preparation
    activity_effect: float = Field(0.5, ge=0)  # logit points per standard deviation of past activity
    offer_lift: dict[str, float] = Field(
        default_factory=lambda: {"ad": 0.0, "small_discount": 1.0, "large_discount": 1.8}
    )  # logit points on the purchase in the step the offer is sent, for a fully mature customer
    lift_income_slope: float = Field(0.3, ge=0)  # richer customers react less to discounts
    basket_value: float = Field(50.0, gt=0)  # USD, median basket of an average-income customer
    basket_income_elasticity: float = Field(0.5, ge=0)
    basket_noise: float = Field(0.3, ge=0)  # log-scale spread of the basket not explained by income
    sequencing: SequencingConfig = SequencingConfig()
    maturity: MaturityConfig = MaturityConfig()
    fatigue: FatigueConfig = FatigueConfig()

    @model_validator(mode="after")
    def _rates(self) -> "JourneyTestbedConfig":
        if self.engaged_purchase_rate < self.base_purchase_rate:
            raise ValueError("engaged_purchase_rate must be >= base_purchase_rate (engagement helps)")
        return self


class BehaviourConfig(_Section):
    """The logging policy: epsilon-random over a win-back rule (offer `rule_offer` to inactive customers)."""

    epsilon: float = Field(0.8, ge=0, le=1)  # share of decisions drawn uniformly over all actions
    rule_offer: str = "small_discount"
    inactive_steps: int = Field(5, ge=1)  # no purchase in this many steps -> the rule sends rule_offer


class JourneyLogConfig(_Section):
    """Where the journey log lives and what its columns are called (one row per customer and step)."""

    path: Path | None = None  # your journey log; null with a testbed (the simulator writes data/raw/journey_log.csv)
    customer_id: str = "customer_id"
    step: str = "step"
    action: str = "action"
    behaviour_probability: str = "behaviour_probability"
    purchase: str = "purchase"
    revenue: str = "revenue"
    cost: str = "cost"
    reward: str = "reward"
    features: tuple[str, ...] = TESTBED_FEATURES

    @model_validator(mode="after")
    def _distinct(self) -> "JourneyLogConfig":
        names = [self.customer_id, self.step, self.action, self.behaviour_probability, self.purchase,
                 self.revenue, self.cost, self.reward, *self.features]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"journey log columns must be distinct, repeated: {duplicates}")
        if not self.features:
            raise ValueError("at least one customer feature column is required")
        return self


RegressorName = Literal["lightgbm", "hist_gradient_boosting"]


class ModelConfig(_Section):
    """A tree-ensemble regressor or classifier and its settings (passed to the library unchanged)."""

    kind: RegressorName = "lightgbm"
    params: dict[str, Any] = Field(
        default_factory=lambda: {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 50}
    )


class BudgetConfig(_Section):
    """Expected spend per customer over the campaign, and how a policy's spend is measured while tuning."""

    per_customer: float | None = Field(6.0, gt=0, allow_inf_nan=False)  # USD; null: no budget
    spend_source: Literal["simulation", "logs"] = "simulation"  # testbed simulation, or weighted IS on the log
    simulation_customers: int = Field(20_000, ge=100)
    tolerance: float = Field(0.02, gt=0, lt=1)  # stop when spend is within this share below the budget
    max_evaluations: int = Field(12, ge=2)


class LearnConfig(_Section):
    """Fitted Q iteration, the look-alike baselines and the one-step optimizer, all trained on the log."""

    train_share: float = Field(0.5, gt=0, lt=1)  # customers used to learn; the rest are held out for evaluation
    q_model: ModelConfig = ModelConfig()
    response_model: ModelConfig = ModelConfig()  # look-alike response and basket-value models
    contact_decay: float = Field(0.85, ge=0, lt=1)  # state feature: recency-weighted count of past contacts
    baselines: tuple[str, ...] = ("random", "propensity", "expected_value", "value_uplift", "one_step")

    @field_validator("baselines")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = {"random", "propensity", "expected_value", "value_uplift", "one_step"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown baselines {unknown}; known: {sorted(known)}")
        return value


class JourneyEvaluationConfig(_Section):
    monte_carlo_customers: int = Field(100_000, ge=100)  # true value of each policy in the testbed
    interval_level: float = Field(0.95, gt=0, lt=1)  # two-sided intervals
    delta: float = Field(0.05, gt=0, lt=0.5)  # high-confidence lower bounds hold with probability >= 1 - delta
    bootstrap_samples: int = Field(400, ge=50)
    bound_split: float = Field(0.05, gt=0, lt=0.5)  # share of held-out customers used to choose the IS clipping level


class JourneyConfig(_Section):
    """The whole `journey` section of params.yaml."""

    enabled: bool = False  # the journey stages and the customer-journeys flow
    seed: int = 20261124
    horizon: int = Field(20, ge=2)  # steps per campaign
    campaign_every: int = Field(5, ge=1)  # a decision at steps 0, campaign_every, 2 x campaign_every, ...
    no_action: str = "none"
    offers: dict[str, OfferConfig] = Field(default_factory=_default_offers)
    budget: BudgetConfig = BudgetConfig()
    testbed: JourneyTestbedConfig | None = JourneyTestbedConfig()  # null: a real log, no simulator (spend from the log)
    behaviour: BehaviourConfig = BehaviourConfig()
    log: JourneyLogConfig = JourneyLogConfig()
    learn: LearnConfig = LearnConfig()
    evaluation: JourneyEvaluationConfig = JourneyEvaluationConfig()

    @model_validator(mode="after")
    def _consistent(self) -> "JourneyConfig":
        if not self.offers:
            raise ValueError("offers: at least one offer is required")
        if self.no_action in self.offers:
            raise ValueError(f"offers: {self.no_action!r} is the no-action name (no_action), not an offer")
        if self.campaign_every >= self.horizon:
            raise ValueError(f"campaign_every ({self.campaign_every}) must be < horizon ({self.horizon}): no decision left")
        if self.behaviour.rule_offer not in self.offers:
            raise ValueError(
                f"behaviour.rule_offer {self.behaviour.rule_offer!r} is not one of the offers {list(self.offers)}"
            )
        if self.testbed is not None and self.log.path is not None:
            raise ValueError("log.path is set while a testbed simulates the log: set log.path: null, or testbed: null "
                             "to learn from your own log")
        if self.testbed is None and self.log.path is None:
            raise ValueError("testbed is null: log.path must name your journey log")
        if self.testbed is not None:
            self._check_testbed(self.testbed)
        elif self.budget.spend_source == "simulation":
            raise ValueError("budget.spend_source 'simulation' needs a testbed; with testbed: null use 'logs'")
        return self

    def _check_testbed(self, testbed: JourneyTestbedConfig) -> None:
        offers = list(self.offers)
        for key in ("preparatory_offer", "payoff_offer"):
            name = getattr(testbed.sequencing, key)
            if name not in offers:
                raise ValueError(f"testbed.sequencing.{key} {name!r} is not one of the offers {offers}")
        if testbed.sequencing.preparatory_offer == testbed.sequencing.payoff_offer:
            raise ValueError("testbed.sequencing: preparatory_offer and payoff_offer must differ")
        if set(testbed.offer_lift) != set(offers):
            raise ValueError(f"testbed.offer_lift needs one lift per offer {offers}, got {sorted(testbed.offer_lift)}")
        if tuple(self.log.features) != TESTBED_FEATURES:
            raise ValueError(f"the testbed draws the features {list(TESTBED_FEATURES)}; set log.features to them")

    @property
    def actions(self) -> list[str]:
        """Action names; index 0 is no action, then the offers in params.yaml order."""
        return [self.no_action, *self.offers]

    @property
    def contact_costs(self) -> "list[float]":
        return [0.0, *(offer.contact_cost for offer in self.offers.values())]

    @property
    def discounts(self) -> "list[float]":
        return [0.0, *(offer.discount for offer in self.offers.values())]

    @property
    def decision_steps(self) -> list[int]:
        return list(range(0, self.horizon, self.campaign_every))

    @property
    def waves(self) -> int:
        return len(self.decision_steps)

    @property
    def reward_floor_per_wave(self) -> float:
        """The lowest reward a wave can bring: one contact's cost (a discount never exceeds the basket it is on)."""
        return -max(self.contact_costs)
