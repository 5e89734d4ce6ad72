"""The evaluate stage: the plan against simple rules at the same spend on held-out history, and the gate.

Checked against the simulator's truth: without real differences between customers the gate falls back
to a simple rule; with them it publishes the model's plan; on targeted (non-randomized) history with
logged propensities the intervals still cover the true value of a policy; and a user's own three-arm
log with messy labels runs end to end by params only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, SEED, set_params
from offerflow.config import EvaluateConfig, HoldoutConfig
from offerflow.evaluation.holdout import holdout_mask, split_history
from offerflow.evaluation.policies import Economics, HeldOutLog, draw_assignment, evaluate_candidate
from offerflow.schema import true_prob_column
from offerflow.simulation import simulate_history

OFFERFLOW = str(Path(sys.executable).parent / "offerflow")
ARMS = ["dm1", "dm2", "dm3"]
COUPON = np.array([0.0, 10.0, 20.0])


def test_holdout_depends_on_the_id_only():
    ids = np.arange(1, 20_001)
    config = HoldoutConfig(fraction=0.3, seed=5)
    mask = holdout_mask(ids, config)
    assert abs(mask.mean() - 0.3) < 0.01
    assert holdout_mask(ids[::-1], config)[::-1].tolist() == mask.tolist()  # not the row order
    assert holdout_mask(ids, HoldoutConfig(fraction=0.3, seed=6)).tolist() != mask.tolist()
    history = pd.DataFrame({"customer_id": np.repeat(ids[:500], 3), "arm": "dm1"})
    train, held_out = split_history(history, "customer_id", config)
    assert not set(train["customer_id"]) & set(held_out["customer_id"])  # every campaign of a customer on one side
    assert len(train) + len(held_out) == len(history)


def test_draw_assignment_is_exact_deterministic_and_within_the_cap():
    rng = np.random.default_rng(SEED)
    n = 1000
    cost = rng.uniform(0, 5, size=(n, 3)) * np.array([0.0, 1.0, 2.0])
    policy = np.zeros((n, 3))
    policy[:, 0], policy[:, 2] = 0.7, 0.3  # a random 30% get arm 2
    cap = float((policy * cost).sum())
    offers = draw_assignment(policy, cost, 0, cap, seed=3)
    assert (offers == draw_assignment(policy, cost, 0, cap, seed=3)).all()
    assert cost[np.arange(n), offers].sum() <= cap + 1e-9
    assert 290 <= (offers == 2).sum() <= 300


def targeted_example(seed: int):
    customers = pd.read_csv(ROOT / "data/external/customers.csv")
    truth = pd.read_csv(ROOT / "data/external/visit_probability.csv")
    history = simulate_history(customers, truth, ARMS, ["age_cat", "freq_cat"], campaigns=4, seed=seed,
                               assignment="targeted", targeting_column="freq_cat", targeting_strength=1.5)
    return customers, history


def test_intervals_cover_the_true_value_on_targeted_history_with_logged_propensities():
    """40 simulated targeted histories: the DR interval of a fixed plan covers its true value, from held-out rows."""
    customers, _ = targeted_example(SEED)
    position = {c: i for i, c in enumerate(customers["customer_id"])}
    plan = np.zeros((len(customers), 3))
    frequent = customers["freq_cat"].isin(["freq4", "freq5~"]).to_numpy()
    plan[frequent, 2], plan[~frequent, 1] = 1.0, 1.0  # dm3 to frequent customers, dm2 to the others
    config = EvaluateConfig.model_validate({"gate": {"bootstrap_samples": 0}, "baselines": {"heuristics": []}})
    covered, lower_below = 0, 0
    seeds = range(40)
    for seed in seeds:
        _, history = targeted_example(SEED + seed)
        _, held = split_history(history, "customer_id", config.holdout)
        rows = held["customer_id"].map(position).to_numpy()
        true = held[[true_prob_column(a) for a in ARMS]].to_numpy()
        wrong_model = np.clip(pd.DataFrame(true).groupby(rows).mean().reindex(range(len(customers))).fillna(0.3).to_numpy() * 0.8, 0, 1)
        log = HeldOutLog(rows, held["arm"].map({a: j for j, a in enumerate(ARMS)}).to_numpy(), held["converted"].to_numpy(),
                         held["propensity"].to_numpy(), held["customer_id"].to_numpy())
        result = evaluate_candidate(plan, wrong_model, log, Economics(0, COUPON), config, [], ARMS)
        estimate = next(e for e in result.evaluations if e.role == "candidate").value
        truth_value = float((plan[rows] * true).sum(axis=1).mean())
        covered += estimate.ci_low <= truth_value <= estimate.ci_high
        lower_below += estimate.lower_bound("normal") <= truth_value
    assert covered / len(seeds) >= 0.9, covered
    assert lower_below / len(seeds) >= 0.95, lower_below


def run_project(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([OFFERFLOW, "run", "--no-progress", *args], cwd=project, capture_output=True, text=True)


@pytest.mark.slow
def test_without_differences_between_customers_the_gate_falls_back(project):
    table = pd.read_csv(project / "data/external/visit_probability.csv")
    table[["prob_dm1", "prob_dm2", "prob_dm3"]] = [0.2, 0.26, 0.36]  # every segment responds alike: targeting is noise
    table.to_csv(project / "data/external/visit_probability.csv", index=False)
    set_params(project, train__candidates=[])
    result = run_project(project)
    assert result.returncode == 0, result.stderr
    verdict = json.loads((project / "reports/policy_evaluation.json").read_text())
    assert verdict["candidate_published"] is False and verdict["lower_bound"] <= 0
    published = json.loads((project / "reports/publish_metrics.json").read_text())
    assert published["source"] == "baseline" and published["gate"] == verdict["published"]
    assert "publish gate: candidate is not better than" in result.stdout

    set_params(project, evaluate__gate__fallback="nothing")
    refused = run_project(project, "--from-stage", "evaluate")
    assert refused.returncode == 5 and "nothing was published" in refused.stderr
    assert json.loads((project / "reports/publish_metrics.json").read_text()) == published  # untouched


@pytest.mark.slow
def test_a_users_three_arm_log_with_messy_labels_runs_by_params_only(project):
    """Own history (no simulator, no true table), categorical labels with spaces, dollar signs and brackets."""
    rng = np.random.default_rng(SEED)
    n = 8000
    spend = np.array(["1) under $100", "2) $100 - $200", "3) $200+ [VIP]"])
    region = np.array(["North East", "South (coast)", "West/Mountain"])
    customers = pd.DataFrame({"client": np.arange(10_001, 10_001 + n), "spend band": rng.choice(spend, n),
                              "region": rng.choice(region, n), "recency": rng.exponential(30, n).round(1)})
    uplift = {"1) under $100": 0.0, "2) $100 - $200": 0.05, "3) $200+ [VIP]": 0.25}
    rows = []
    for campaign in range(10):
        arm = rng.choice(["none", "mail A", "mail B"], n)
        base = 0.1 + 0.02 * (customers["region"] == "South (coast)")
        lift = customers["spend band"].map(uplift).to_numpy()
        p = base + np.where(arm == "mail A", lift / 2, 0) + np.where(arm == "mail B", lift, 0)
        rows.append(pd.DataFrame({"client": customers["client"], "offer": arm, "bought": (rng.random(n) < p).astype(int)}))
    customers.to_csv(project / "data/external/clients.csv", index=False)
    pd.concat(rows).to_csv(project / "data/external/emails.csv", index=False)
    set_params(
        project,
        data__customers="data/external/clients.csv", data__history="data/external/emails.csv",
        data__true_probabilities=None, data__customer_id="client", data__arm_column="offer", data__outcome_column="bought",
        data__campaign_column=None, data__segment_columns=["spend band", "region"], simulate__enabled=False,
        arms__control="none", arms__coupon_cost={"none": 0.0, "mail A": 1.0, "mail B": 2.0},
        train__features=["spend band", "region", "recency"], train__candidates=[],
        train__evaluation__heuristic={"name": "most recent first", "column": "recency", "descending": False},
        probabilities__monotone_arms=[], optimize__budget=800.0, optimize__min_share=0.0,
        evaluate__baselines__heuristics=[{"name": "most recent first", "column": "recency", "descending": False}],
    )
    assert subprocess.run([OFFERFLOW, "dvc-yaml"], cwd=project, capture_output=True).returncode == 0
    result = run_project(project)
    assert result.returncode == 0, result.stderr
    details = json.loads((project / "reports/policy_evaluation_details.json").read_text())
    names = {row["policy"] for row in details["policies"]}
    assert {"candidate", "nobody_treated", "random_offers", "best_offer_random_subset", "heuristic_most_recent_first"} <= names
    verdict = json.loads((project / "reports/policy_evaluation.json").read_text())
    assert verdict["held_out"]["customers"] > 2000 and verdict["candidate_published"] is True, verdict["reason"]
    assigned = pd.read_csv(project / "data/published/assignments.csv")
    assert len(assigned) == n and set(assigned["offer"]) <= {"none", "mail A", "mail B"}
    vip = assigned.merge(customers, left_on="customer_id", right_on="client")
    assert (vip.loc[vip["spend band"] == "3) $200+ [VIP]", "offer"] != "none").mean() > 0.5  # the real uplift is found


def test_an_incumbent_that_spends_more_is_shown_but_never_competes():
    customers, history = targeted_example(SEED)
    position = {c: i for i, c in enumerate(customers["customer_id"])}
    config = EvaluateConfig.model_validate({"gate": {"bootstrap_samples": 0}, "baselines": {"heuristics": []}})
    _, held = split_history(history, "customer_id", config.holdout)
    log = HeldOutLog(held["customer_id"].map(position).to_numpy(), held["arm"].map({a: j for j, a in enumerate(ARMS)}).to_numpy(),
                     held["converted"].to_numpy(), held["propensity"].to_numpy(), held["customer_id"].to_numpy())
    predicted = np.tile([0.2, 0.25, 0.4], (len(customers), 1))
    candidate = np.tile([0.8, 0.0, 0.2], (len(customers), 1))  # a fifth get dm3
    richer = np.tile([0.0, 0.0, 1.0], (len(customers), 1))  # everyone gets dm3: five times the spend
    result = evaluate_candidate(candidate, predicted, log, Economics(0, COUPON), config, [], ARMS, ("run1", richer))
    incumbent = next(e for e in result.evaluations if e.name == "incumbent")
    assert incumbent.role == "reference" and "not a competitor" in incumbent.note
    assert result.decision.best_competitor != "incumbent"
    same = evaluate_candidate(candidate, predicted, log, Economics(0, COUPON), config, [], ARMS, ("run1", candidate.copy()))
    assert next(e for e in same.evaluations if e.name == "incumbent").role == "incumbent"


@pytest.mark.slow
def test_a_new_batch_is_planned_with_the_rule_valued_on_held_out_history_customers(project):
    """History of past customers (carrying their features) plus a batch of new customers to score: the plan rule is
    re-applied to the held-out customers, valued there against the simulator's truth, and the batch is published."""
    from offerflow.catalog import Catalog
    from offerflow.config import load_params
    from offerflow.stages.evaluate import candidate_policy, evaluation_population
    from offerflow.stages.inputs import customers_with_segments, read_history

    past = pd.read_csv(project / "data/external/customers.csv")
    truth = pd.read_csv(project / "data/external/visit_probability.csv")
    history = simulate_history(past, truth, ARMS, ["age_cat", "freq_cat"], campaigns=12, seed=SEED)
    history.merge(past, on="customer_id")[["campaign", "customer_id", "arm", "converted", "age_cat", "freq_cat"]].to_csv(
        project / "data/external/past_campaigns.csv", index=False)
    batch = past.sample(n=3000, random_state=1).reset_index(drop=True)
    batch["customer_id"] = np.arange(900_001, 903_001)
    batch.to_csv(project / "data/external/new_batch.csv", index=False)
    set_params(project, simulate__enabled=False, data__history="data/external/past_campaigns.csv",
               data__customers="data/external/new_batch.csv", optimize__budget=6000.0)
    assert subprocess.run([OFFERFLOW, "dvc-yaml"], cwd=project, capture_output=True).returncode == 0
    result = run_project(project)
    assert result.returncode == 0, result.stderr
    verdict = json.loads((project / "reports/policy_evaluation.json").read_text())
    held = verdict["held_out"]
    assert held["population"] == "held_out_customers" and held["customers_not_in_customers_file"] == held["customers"]
    assert 1300 < held["customers"] < 1700  # ~30% of the 5,000 past customers
    published = pd.read_csv(project / "data/published/assignments.csv")
    assert sorted(published["customer_id"]) == batch["customer_id"].tolist()  # the batch, not the history's customers

    # the rule on the held-out customers, valued with the simulator's truth: the estimate must be near it
    params = load_params(project / "params.yaml")
    catalog = Catalog(params)
    customers, _ = customers_with_segments(catalog)
    _, held_out = split_history(read_history(catalog), "customer_id", params.evaluate.holdout)
    population = evaluation_population(params, catalog, customers, np.zeros((len(customers), 3)),
                                       candidate_policy(params, catalog, customers), held_out)
    assert population.choice.kind == "held_out_customers"
    true_probs = population.customers.merge(truth, on=["age_cat", "freq_cat"])[[f"prob_{a}" for a in ARMS]].to_numpy()
    true_value = float((population.candidate * true_probs).sum(axis=1).mean())
    spend_share = (population.candidate * population.predicted * COUPON).sum() / len(population.customers)
    assert spend_share <= 6000.0 / 3000 + 1e-9  # the rule keeps the batch's budget per customer
    details = json.loads((project / "reports/policy_evaluation_details.json").read_text())
    row = next(r for r in details["policies"] if r["policy"] == "candidate")
    assert abs(row["value"] - true_value) < 4 * row["value_se"], (row, true_value)
