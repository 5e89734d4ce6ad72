"""Off-policy evaluation at scale: what the intervals and bounds cost on top of the bare point estimates.

The gate evaluates a candidate and ~5 baselines (values, differences against the candidate and gains over
"nobody treated") with DR, a cluster-robust SE, Bernstein bounds and a cluster bootstrap. The baseline
measured in the same run is the bare DR point estimate of every policy and difference (numpy, no
uncertainty); the ratio column is full seconds / point-estimate seconds.

    python benchmarks/bench_off_policy.py [--rows 100000 1000000] [--bootstrap 1000] [--campaigns 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from offerflow.evaluation.off_policy import BoundSettings, CampaignLog, Reward, estimate_contrasts

POLICIES = 6


def instance(rows: int, campaigns: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    customers = rows // campaigns
    clusters = np.tile(np.arange(customers), campaigns)
    predicted = np.sort(rng.uniform(0.02, 0.4, (customers, 3)), axis=1)[clusters]
    arms = rng.integers(0, 3, len(clusters))
    converted = (rng.random(len(clusters)) < predicted[np.arange(len(clusters)), arms]).astype(float)
    policies = {}
    for k in range(POLICIES):
        shares = rng.dirichlet(np.ones(3), customers)
        policies[f"policy_{k}"] = shares[clusters]
    log = CampaignLog(arms, np.full(len(clusters), 1 / 3), 3, clusters=clusters)
    return log, Reward(converted, (0.0, 1.0), predicted), policies


def point_estimates(log: CampaignLog, reward: Reward, policies: dict[str, np.ndarray]) -> dict[str, float]:
    rows = np.arange(log.n_rows)
    terms = {}
    for name, policy in policies.items():
        w = policy[rows, log.arm_index] / log.propensity
        mu = reward.predicted
        terms[name] = (policy * mu).sum(axis=1) + w * (reward.observed - mu[rows, log.arm_index])
    names = list(policies)
    result = {name: float(t.mean()) for name, t in terms.items()}
    result.update({f"versus:{n}": float((terms[names[0]] - terms[n]).mean()) for n in names[1:]})
    result.update({f"over:{n}": float((terms[n] - terms[names[-1]]).mean()) for n in names[:-1]})
    return result


def full_estimates(log: CampaignLog, reward: Reward, policies: dict[str, np.ndarray], samples: int):
    names = list(policies)
    differences = {f"versus:{n}": (policies[names[0]], policies[n]) for n in names[1:]}
    differences.update({f"over:{n}": (policies[n], policies[names[-1]]) for n in names[:-1]})
    return estimate_contrasts(log, reward, BoundSettings(bootstrap_samples=samples, seed=1), policies, differences, ("dr",))["dr"]


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--campaigns", type=int, default=2)
    args = parser.parse_args()
    print(f"{'rows':>10} {'customers':>10} {'point s':>9} {'full s':>8} {'ratio':>7}  (DR, {POLICIES} policies, {2 * POLICIES - 2} differences, bootstrap {args.bootstrap})")
    for rows in args.rows:
        log, reward, policies = instance(rows, args.campaigns)
        point_seconds, points = timed(point_estimates, log, reward, policies)
        full_seconds, full = timed(full_estimates, log, reward, policies, args.bootstrap)
        worst = max(abs(points[name] - full[name].value) for name in points)
        assert worst < 1e-9, f"point estimates disagree by {worst}"
        print(f"{rows:>10,} {rows // args.campaigns:>10,} {point_seconds:>9.3f} {full_seconds:>8.2f} {full_seconds / point_seconds:>7.1f}")


if __name__ == "__main__":
    main()
