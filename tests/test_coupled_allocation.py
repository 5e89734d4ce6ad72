"""Customer-level allocation with coupled constraints, checked against HiGHS on the whole problem.

Random instances (2-5 offers, 1-4 coupled constraints among budget, capacity, group cap, min share,
max share, with and without exclusions): the LP bound equals HiGHS's LP optimum, every constraint
holds exactly for the integer plan, and HiGHS's MIP optimum lies between the plan and its bound.
Half of the instances go through the working-set method (small direct_max), half are solved directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import highspy
import numpy as np
import pytest

from reference.highs_models import share_count, solve_constrained_with_highs
from offerflow.errors import InfeasiblePlanError
from offerflow.optimize.coupled_allocation import CustomerConstraints, OfferGroup, allocate_with_constraints
from offerflow.optimize.customer_allocation import CustomerBudgetInfeasible

OPTIMAL = highspy.HighsModelStatus.kOptimal


@dataclass
class Case:
    value: np.ndarray
    cost: np.ndarray
    budget: float | None
    control: int
    capacity: dict
    min_share: dict
    max_share: dict
    groups: list
    excluded: np.ndarray | None

    def constraints(self) -> CustomerConstraints:
        k = self.value.shape[1]
        return CustomerConstraints(
            control=self.control,
            capacity=tuple(self.capacity.get(d, math.inf) for d in range(k)),
            min_share=tuple(self.min_share.get(d, 0.0) for d in range(k)),
            max_share=tuple(self.max_share.get(d, 1.0) for d in range(k)),
            groups=tuple(OfferGroup(f"g{j}", offers, cap) for j, (offers, cap) in enumerate(self.groups)),
            excluded=self.excluded,
        )

    def highs(self, integer: bool = False, minimize_cost: bool = False, budget: float | None = None):
        return solve_constrained_with_highs(
            self.value, self.cost, self.budget if budget is None else budget, control=self.control,
            capacity=self.capacity, min_share=self.min_share, max_share=self.max_share, groups=self.groups,
            excluded=self.excluded, integer=integer, minimize_cost=minimize_cost,
        )


def random_case(seed: int, low: int, high: int) -> Case:
    """Incremental-conversion values, coupon x probability costs with a contact cost on the treatments,
    and 1-4 coupled constraints drawn at random (groups laminar: one per instance)."""
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(low, high)), int(rng.integers(2, 6))
    p = np.sort(rng.uniform(0.02, 0.6, size=(n, k)), axis=1)
    coupon = np.concatenate([[0.0], np.sort(rng.uniform(1.0, 20.0, k - 1))])
    contact = float(rng.choice([0.0, 0.4]))
    cost = p * coupon + contact * (np.arange(k) > 0)
    value = p - p[:, [0]] + rng.normal(0.0, 0.02, size=(n, k)) * (np.arange(k) > 0)
    kinds = list(rng.choice(["budget", "capacity", "group", "min_share", "max_share"], size=int(rng.integers(1, 5)),
                            replace=False))
    if k == 2 and "group" in kinds:
        kinds.remove("group")
    treatments = np.arange(1, k)
    case = Case(value, cost, None, 0, {}, {}, {}, [], None)
    if rng.random() < 0.4:
        case.excluded = rng.random(n) < rng.uniform(0.05, 0.3)
    if "capacity" in kinds:
        case.capacity[int(rng.choice(treatments))] = int(n * rng.uniform(0.05, 0.5))
    if "min_share" in kinds:
        case.min_share[int(rng.choice(treatments))] = float(rng.uniform(0.02, 0.4 / k))
    if "max_share" in kinds:
        case.max_share[int(rng.integers(0, k))] = float(rng.uniform(0.2, 0.7))
    if "group" in kinds:
        members = tuple(sorted(rng.choice(treatments, size=int(rng.integers(2, k)) if k > 2 else 1, replace=False)))
        case.groups.append(([int(d) for d in members], int(n * rng.uniform(0.1, 0.6))))
    if "budget" in kinds or not (case.capacity or case.min_share or case.max_share or case.groups):
        cheapest = case.highs(minimize_cost=True)
        low_budget = cheapest.getInfo().objective_function_value if cheapest.getModelStatus() == OPTIMAL else 0.0
        high_budget = float(cost.max(axis=1).sum())
        case.budget = low_budget + rng.uniform(-0.05, 0.7) * (high_budget - low_budget)
    return case


def assert_meets_every_constraint(case: Case, offer: np.ndarray, expected_cost: float) -> None:
    n, k = case.value.shape
    rows = np.arange(n)
    counts = np.bincount(offer, minlength=k)
    assert offer.dtype.kind == "i" and offer.min() >= 0 and offer.max() < k
    if case.budget is not None:
        assert math.fsum(case.cost[rows, offer]) <= case.budget * (1 + 1e-15)
        assert expected_cost <= case.budget
    assert expected_cost == pytest.approx(math.fsum(case.cost[rows, offer]), rel=1e-12, abs=1e-12)
    for d, cap in case.capacity.items():
        assert counts[d] <= cap
    for d, share in case.min_share.items():
        assert counts[d] >= share_count(share, n, up=True)
    for d, share in case.max_share.items():
        assert counts[d] <= share_count(share, n, up=False)
    for offers, cap in case.groups:
        assert counts[offers].sum() <= cap
    if case.excluded is not None:
        assert (offer[case.excluded] == case.control).all()


def check_against_highs(case: Case, direct_max: int, with_mip: bool) -> None:
    lp = case.highs()
    if lp.getModelStatus() != OPTIMAL:
        assert lp.getModelStatus() == highspy.HighsModelStatus.kInfeasible
        with pytest.raises(InfeasiblePlanError):
            allocate_with_constraints(case.value, case.cost, case.budget, case.constraints(), partition_rows=97,
                                      direct_max=direct_max)
        return
    allocation = allocate_with_constraints(case.value, case.cost, case.budget, case.constraints(), partition_rows=97,
                                           direct_max=direct_max)
    optimum = lp.getInfo().objective_function_value
    scale = max(1.0, abs(optimum))
    assert allocation.dual_bound == pytest.approx(optimum, rel=1e-7, abs=1e-9)
    assert_meets_every_constraint(case, allocation.offer, allocation.expected_cost)
    rows = np.arange(len(case.value))
    assert allocation.objective == pytest.approx(case.value[rows, allocation.offer].sum(), rel=1e-12, abs=1e-12)
    assert allocation.objective <= allocation.dual_bound + 1e-9 * scale
    if with_mip:
        mip = case.highs(integer=True)
        assert mip.getModelStatus() == OPTIMAL
        best = mip.getInfo().objective_function_value
        assert allocation.objective <= best + 1e-7 * scale  # no integer plan beats HiGHS's optimum
        assert best <= allocation.dual_bound + 1e-7 * scale
        assert best - allocation.objective <= allocation.gap + 1e-7 * scale


@pytest.mark.parametrize("block", range(8))
def test_random_instances_match_the_highs_lp_and_mip(block):
    for seed in range(block * 10, block * 10 + 10):
        check_against_highs(random_case(seed, 50, 700), direct_max=120 if seed % 2 else 5_000, with_mip=True)


@pytest.mark.parametrize("seed", range(1000, 1006))
def test_random_instances_up_to_2000_customers_match_the_highs_mip(seed):
    check_against_highs(random_case(seed, 1_500, 2_000), direct_max=300 if seed % 2 else 5_000, with_mip=True)


@pytest.mark.parametrize("block", range(4))
def test_random_instances_up_to_10000_customers_match_the_highs_lp(block):
    for seed in range(2000 + block * 5, 2000 + block * 5 + 5):
        check_against_highs(random_case(seed, 3_000, 10_000), direct_max=400 if seed % 2 else 5_000, with_mip=False)


# ---- infeasible constraint sets are explained ----


def simple_case(n: int = 1_000, k: int = 3, seed: int = 5):
    rng = np.random.default_rng(seed)
    p = np.sort(rng.uniform(0.02, 0.6, size=(n, k)), axis=1)
    return p - p[:, [0]], p * np.linspace(0.0, 20.0, k) + 0.5 * (np.arange(k) > 0)


def test_capacity_below_a_minimum_share_names_both():
    value, cost = simple_case()
    spec = CustomerConstraints(capacity=(math.inf, 100, math.inf), min_share=(0, 0.3, 0), offer_names=("dm1", "dm2", "dm3"))
    with pytest.raises(InfeasiblePlanError, match=r"offer dm2: at least 300 \(min_share 0.3 of 1,000 customers\) > "
                                                  r"at most 100 \(capacity 100\)"):
        allocate_with_constraints(value, cost, None, spec)


def test_exclusions_that_make_a_minimum_share_impossible_are_named():
    value, cost = simple_case()
    excluded = np.arange(1_000) < 400
    spec = CustomerConstraints(min_share=(0, 0.5, 0.2), excluded=excluded, offer_names=("dm1", "dm2", "dm3"))
    with pytest.raises(InfeasiblePlanError, match=r"minimum shares need 700 customers .* only 600 of 1,000 customers "
                                                  r"are free \(400 excluded customers must get dm1\)"):
        allocate_with_constraints(value, cost, None, spec)


def test_exclusions_beyond_the_control_cap_are_named():
    value, cost = simple_case()
    spec = CustomerConstraints(max_share=(0.3, 1, 1), excluded=np.arange(1_000) < 350, offer_names=("dm1", "dm2", "dm3"))
    with pytest.raises(InfeasiblePlanError, match=r"exclusions: 350 excluded customers must get dm1, but offer dm1 "
                                                  r"allows at most 300 \(max_share 0.3 of 1,000 customers\)"):
        allocate_with_constraints(value, cost, None, spec)


def test_group_cap_below_its_offers_minimum_shares_is_named():
    value, cost = simple_case()
    spec = CustomerConstraints(min_share=(0, 0.2, 0.2), groups=(OfferGroup("email", (1, 2), 300),),
                               offer_names=("dm1", "dm2", "dm3"))
    with pytest.raises(InfeasiblePlanError, match=r"group email \(dm2, dm3\): cap 300 < the minimum shares of its "
                                                  r"offers \(dm2 200, dm3 200\)"):
        allocate_with_constraints(value, cost, None, spec)


@pytest.mark.parametrize("direct_max", [5_000, 150])
def test_budget_below_the_cheapest_plan_reports_the_smallest_feasible_budget(direct_max):
    # control costs nothing, every treatment has a 0.5 USD contact cost: 10% must get dm2, so no budget below
    # the cheapest 10% of dm2's costs is feasible
    value, cost = simple_case(2_000)
    case = Case(value, cost, None, 0, {}, {1: 0.1}, {}, [], np.arange(2_000) % 7 == 0)
    cheapest = case.highs(minimize_cost=True).getInfo().objective_function_value
    with pytest.raises(CustomerBudgetInfeasible, match="smallest feasible budget") as raised:
        allocate_with_constraints(value, cost, 0.9 * cheapest, case.constraints(), partition_rows=300,
                                  direct_max=direct_max)
    assert raised.value.smallest_feasible_budget == pytest.approx(cheapest, rel=1e-9)
    assert raised.value.exit_code == 4
    at_the_edge = allocate_with_constraints(value, cost, cheapest * (1 + 1e-9), case.constraints(), partition_rows=300,
                                            direct_max=direct_max)
    case.budget = cheapest * (1 + 1e-9)
    assert_meets_every_constraint(case, at_the_edge.offer, at_the_edge.expected_cost)


# ---- budget prices, report, determinism, the single-budget route ----


@pytest.mark.parametrize("seed", range(6))
def test_coupled_budget_prices_match_highs_resolves(seed):
    value, cost = simple_case(400, 3, seed)
    case = Case(value, cost, None, 0, {2: 60}, {1: 0.1}, {}, [([1, 2], 180)], None)
    case.budget = float((0.15 + 0.1 * seed) * cost.max(axis=1).sum())
    allocation = allocate_with_constraints(value, cost, case.budget, case.constraints(), direct_max=100 + 1000 * (seed % 2))
    step = 1e-3
    here = case.highs().getInfo().objective_function_value
    below = case.highs(budget=case.budget - step).getInfo().objective_function_value
    above = case.highs(budget=case.budget + step).getInfo().objective_function_value
    assert allocation.budget_price_left == pytest.approx((here - below) / step, abs=2e-5)
    assert allocation.budget_price_right == pytest.approx((above - here) / step, abs=2e-5)


def test_constraint_report_gives_bounds_usage_and_multipliers():
    value, cost = simple_case(3_000)
    spec = CustomerConstraints(capacity=(math.inf, math.inf, 200), min_share=(0, 0.25, 0),
                               groups=(OfferGroup("coupons", (1, 2), 900),), offer_names=("dm1", "dm2", "dm3"))
    budget = 0.2 * cost.max(axis=1).sum()
    allocation = allocate_with_constraints(value, cost, budget, spec, direct_max=500)
    report = {c.name: c for c in allocation.constraints}
    counts = np.bincount(allocation.offer, minlength=3)
    assert report["budget"].bound == budget and report["budget"].used == allocation.expected_cost
    assert report["budget"].multiplier == allocation.threshold
    assert report["offer dm3 at most (capacity 200)"].used == counts[2] <= 200
    assert report["offer dm2 at least (min_share 0.25 of 3,000 customers)"].used == counts[1] >= 750
    assert report["group coupons (dm2, dm3) at most (cap 900)"].used == counts[1] + counts[2] <= 900
    assert all(c.multiplier >= 0 for c in allocation.constraints)
    # complementary slackness at the LP: a constraint with room left has no multiplier
    for use in allocation.constraints:
        if abs(use.used - use.bound) > 3:  # the integer plan is within a few customers of the LP's usage
            assert use.multiplier == pytest.approx(0.0, abs=1e-9)


def test_same_inputs_give_byte_identical_plans_on_one_or_two_threads():
    value, cost = simple_case(30_000, 4, 9)
    value[:5_000] = value[0]  # identical customers: ties everywhere
    cost[:5_000] = cost[0]
    spec = CustomerConstraints(capacity=(math.inf, 4_000, math.inf, 3_000), min_share=(0, 0, 0.05, 0),
                               excluded=np.arange(30_000) % 11 == 0)
    budget = 0.3 * cost.max(axis=1).sum()
    runs = [allocate_with_constraints(value, cost, budget, spec, partition_rows=4_000, threads=t, direct_max=2_000)
            for t in (1, 2, 2)]
    for other in runs[1:]:
        assert other.offer.tobytes() == runs[0].offer.tobytes()
        assert (other.objective, other.dual_bound, other.expected_cost) == (runs[0].objective, runs[0].dual_bound,
                                                                            runs[0].expected_cost)


def test_budget_and_exclusions_only_take_the_single_budget_route_and_match_highs():
    value, cost = simple_case(2_500)
    case = Case(value, cost, 0.25 * cost.max(axis=1).sum(), 0, {}, {}, {}, [], np.arange(2_500) % 3 == 0)
    allocation = allocate_with_constraints(value, cost, case.budget, case.constraints())
    assert allocation.iterations <= 3  # bracket passes of the threshold search, not working-set rounds
    assert allocation.dual_bound == pytest.approx(case.highs().getInfo().objective_function_value, rel=1e-9)
    assert_meets_every_constraint(case, allocation.offer, allocation.expected_cost)


def test_no_budget_and_no_constraints_gives_every_customer_its_best_offer():
    value, cost = simple_case(500)
    allocation = allocate_with_constraints(value, cost, None)
    assert (allocation.offer == value.argmax(axis=1)).all()
    assert allocation.gap == 0


def test_partitions_on_dask_workers_give_the_same_plan():
    from distributed import Client, LocalCluster

    from offerflow.distributed import DaskExecutor

    value, cost = simple_case(12_000, 3, 17)
    spec = CustomerConstraints(capacity=(math.inf, 2_500, math.inf), groups=(OfferGroup("g", (1, 2), 5_000),),
                               excluded=np.arange(12_000) % 5 == 0)
    budget = 0.3 * cost.max(axis=1).sum()
    local = allocate_with_constraints(value, cost, budget, spec, partition_rows=3_000, direct_max=1_000)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        remote = allocate_with_constraints(value, cost, budget, spec, partition_rows=3_000,
                                           executor=DaskExecutor(client), direct_max=1_000)
    assert remote.offer.tobytes() == local.offer.tobytes()
    assert (remote.objective, remote.dual_bound) == (local.objective, local.dual_bound)


@pytest.mark.parametrize("block", range(3))
def test_a_tiny_first_working_set_grows_until_the_lp_is_exact(block, monkeypatch):
    # a first working set of 5 customers cannot hold the optimum: customers whose fixed offer stops being
    # best join it round after round (iterations > 1), and the bound still equals HiGHS's LP optimum
    from offerflow.optimize.coupled_allocation import relaxation

    monkeypatch.setattr(relaxation, "working_target", lambda free, coupled: 5)
    rounds = []
    for seed in range(3000 + block * 8, 3000 + block * 8 + 8):
        case = random_case(seed, 400, 1_500)
        lp = case.highs()
        if lp.getModelStatus() != OPTIMAL:
            continue
        allocation = allocate_with_constraints(case.value, case.cost, case.budget, case.constraints(),
                                               partition_rows=113, direct_max=60)
        assert allocation.dual_bound == pytest.approx(lp.getInfo().objective_function_value, rel=1e-7, abs=1e-9)
        assert_meets_every_constraint(case, allocation.offer, allocation.expected_cost)
        rounds.append(allocation.iterations)
    assert max(rounds) > 1


def test_params_build_the_constraints_by_arm_name(project):
    from conftest import set_params
    from offerflow.config import ConfigError, load_params
    from offerflow.stages.allocate import customer_constraints

    set_params(project, optimize__capacity={"dm3": 120}, optimize__min_share={"dm2": 0.1}, optimize__max_share=0.8,
               optimize__groups={"coupons": {"offers": ["dm2", "dm3"], "max": 300}}, publish__source="customer_plan")
    params = load_params(project / "params.yaml")
    value, cost = simple_case(1_000)
    spec = customer_constraints(params, excluded=np.arange(1_000) < 50)
    allocation = allocate_with_constraints(value, cost, 0.3 * cost.max(axis=1).sum(), spec)
    counts = np.bincount(allocation.offer, minlength=3)
    assert counts[2] <= 120 and counts[1] >= 100 and counts.max() <= 800 and counts[1] + counts[2] <= 300
    assert (allocation.offer[:50] == 0).all()
    names = [c.name for c in allocation.constraints]
    assert "group coupons (dm2, dm3) at most (cap 300)" in names
    set_params(project, optimize__groups={"coupons": {"offers": ["dm2", "dm9"], "max": 300}})
    with pytest.raises(ConfigError, match=r"optimize.groups.coupons.offers: \['dm9'\]"):
        load_params(project / "params.yaml")


def test_everyone_excluded_gets_the_control_and_a_budget_below_their_cost_is_refused():
    value, cost = simple_case(200, 2, 3)
    spec = CustomerConstraints(max_share=(1.0, 0.5), excluded=np.ones(200, bool))
    allocation = allocate_with_constraints(value, cost, 1e6, spec)
    assert (allocation.offer == 0).all() and allocation.gap == 0
    assert allocation.objective == pytest.approx(value[:, 0].sum())
    with pytest.raises(CustomerBudgetInfeasible) as raised:
        allocate_with_constraints(value, cost + 1.0, 10.0, spec)
    assert raised.value.smallest_feasible_budget == pytest.approx(200.0)
