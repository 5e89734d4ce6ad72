"""Whole policies on held-out history: the candidate plan, simple baselines at the same spend, the incumbent.

Policies are decided for customers (rows of the customer file) and evaluated on the held-out history
rows of those customers: each logged row is scored with its customer's policy row. The baselines are
sized to the candidate's expected spend (or contacts) over all customers, because that is the money the
business spends; the gate then compares whole policies, not per-arm rankings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from offerflow.config import EvaluateConfig, GateConfig
from offerflow.errors import GateRefusedError
from offerflow.evaluation.baselines import Heuristic, NamedPolicy, build_baselines, target_of
from offerflow.evaluation.gate import GateDecision, PolicyEvaluation, decide_publication, evaluate_policies
from offerflow.evaluation.off_policy import CampaignLog, Reward, constant_policy_values


SPEND_TOLERANCE = 0.005  # an incumbent within 0.5% of the candidate's expected spend competes at "the same spend"


@dataclass(frozen=True)
class HeldOutLog:
    """Held-out history rows: whose row (index into the customers), the arm, the outcome, the propensity."""

    customer_row: np.ndarray
    arm_index: np.ndarray
    converted: np.ndarray
    propensity: np.ndarray
    customer_ids: np.ndarray  # cluster ids: one customer's campaigns are not independent
    min_propensity: float | None = None


@dataclass(frozen=True)
class Economics:
    """What an offer costs and a conversion is worth, in the optimizer's objective."""

    control: int
    coupon: np.ndarray  # USD per redeemed offer, per arm
    objective: str = "incremental_conversions"
    value_per_conversion: float | None = None
    contact: np.ndarray | None = None  # USD per customer contacted, per arm (None: none)

    @property
    def contact_cost(self) -> np.ndarray:
        return np.zeros_like(self.coupon, dtype=float) if self.contact is None else np.asarray(self.contact, dtype=float)

    def expected_cost(self, predicted: np.ndarray) -> np.ndarray:
        """customers x arms expected cost: the coupon if the customer converts, the contact always."""
        return predicted * self.coupon[None, :] + self.contact_cost[None, :]

    @property
    def unit(self) -> str:
        return "USD" if self.objective in ("revenue", "profit") else "conversions"


@dataclass
class EvaluationResult:
    policies: list[NamedPolicy]  # per customer (rows of the customer file)
    evaluations: list[PolicyEvaluation]
    decision: GateDecision
    refused: bool = False  # the gate's fallback is "nothing" and the candidate failed
    arm_values: np.ndarray = field(default_factory=lambda: np.zeros(0))


def rewards(log: HeldOutLog, predicted: np.ndarray, economics: Economics) -> tuple[Reward, Reward]:
    """(value reward in the objective's unit, realized coupon cost), each with the model's per-arm prediction."""
    mu = predicted[log.customer_row]
    converted = log.converted.astype(float)
    coupon, contact = economics.coupon, economics.contact_cost
    paid = coupon[log.arm_index] * converted + contact[log.arm_index]
    cost = Reward(paid, (float(contact.min()), float((coupon + contact).max())), economics.expected_cost(mu))
    objective, worth = economics.objective, economics.value_per_conversion or 0.0
    if objective == "revenue":
        value = Reward(worth * converted, (0.0, worth), worth * mu)
    elif objective == "profit":
        value = Reward(worth * converted - paid, (-float((coupon + contact).max()), worth), worth * mu - economics.expected_cost(mu))
    else:  # conversions: the gain over nobody treated is the incremental conversions
        value = Reward(converted, (0.0, 1.0), mu)
    return value, cost


def campaign_log(log: HeldOutLog, n_arms: int) -> CampaignLog:
    return CampaignLog(log.arm_index, log.propensity, n_arms, clusters=log.customer_ids, min_propensity=log.min_propensity)


def evaluate_candidate(
    candidate: np.ndarray,
    predicted: np.ndarray,
    log: HeldOutLog,
    economics: Economics,
    config: EvaluateConfig,
    heuristics: list[Heuristic],
    arms: list[str],
    incumbent: tuple[str, np.ndarray] | None = None,
) -> EvaluationResult:
    """Estimate the candidate, the baselines at its spend and the incumbent on the held-out rows; apply the gate."""
    n_arms = len(arms)
    expected_cost = economics.expected_cost(predicted)
    value, cost = rewards(log, predicted, economics)
    logged = campaign_log(log, n_arms)
    arm_values = constant_policy_values(logged, value, config.gate.estimator)
    target = target_of(candidate, expected_cost, economics.control, config.baselines.match)
    policies = [NamedPolicy("candidate", "the plan (candidate)", "candidate", candidate)]
    policies += build_baselines(expected_cost, economics.control, target, arm_values, heuristics, config.baselines.seed, arms)
    if incumbent is not None:
        run_id, matrix = incumbent
        spend, candidate_spend = float((matrix * expected_cost).sum()), float((candidate * expected_cost).sum())
        if spend <= candidate_spend * (1 + SPEND_TOLERANCE) + 1e-9:
            policies.append(NamedPolicy("incumbent", f"the current publication ({run_id})", "incumbent", matrix))
        else:  # more money buys more: a fair competitor spends no more than the candidate
            note = f"spends {spend:,.2f} against the candidate's {candidate_spend:,.2f}: shown, not a competitor"
            policies.append(NamedPolicy("incumbent", f"the current publication ({run_id})", "reference", matrix, note))
    on_rows = [NamedPolicy(p.name, p.label, p.role, p.matrix[log.customer_row], p.note) for p in policies]
    gate = config.gate.model_copy(update={"unit": economics.unit})
    evaluations = evaluate_policies(
        on_rows, logged, value, gate, cost=cost, expected_cost=expected_cost[log.customer_row], control=economics.control
    )
    decision = decide_publication(evaluations, gate.model_copy(update={"fallback": "best_baseline"}))
    refused = not decision.candidate_published and config.gate.fallback == "nothing"
    return EvaluationResult(policies, evaluations, decision, refused, arm_values)


def refusal(result: EvaluationResult) -> GateRefusedError:
    """The error of a gate that found no policy worth publishing (fallback: nothing)."""
    reason = result.decision.reason.split("; published")[0]
    return GateRefusedError(f"publish gate: {reason}; nothing was published (evaluate.gate.fallback: nothing)")


def draw_assignment(policy: np.ndarray, expected_cost: np.ndarray, control: int, spend_cap: float, seed: int) -> np.ndarray:
    """One offer per customer from a (possibly stochastic) policy, deterministically, within the spend cap.

    Each non-control offer goes to floor(its expected count) customers, those with the highest probability
    for it first (ties by a seeded shuffle), never two offers to one customer; then, while the expected
    cost exceeds the cap, the dearest treated customer returns to the control offer.
    """
    n, n_arms = policy.shape
    order_key = np.random.default_rng(seed).permutation(n)
    offer = np.full(n, control, dtype=np.int64)
    taken = np.zeros(n, dtype=bool)
    for arm in range(n_arms):
        if arm == control:
            continue
        count = int(np.floor(policy[:, arm].sum() + 1e-9))
        ranked = np.lexsort((order_key, -policy[:, arm]))
        chosen = ranked[~taken[ranked] & (policy[ranked, arm] > 0)][:count]
        offer[chosen] = arm
        taken[chosen] = True
    rows = np.arange(n)
    spent = expected_cost[rows, offer]
    total = spent.sum()
    if total > spend_cap:
        for i in np.lexsort((order_key, -spent)):
            if total <= spend_cap or offer[i] == control:
                break
            total -= spent[i] - expected_cost[i, control]
            offer[i] = control
    return offer
