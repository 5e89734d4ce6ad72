"""Journey scenario at scale, and its acceptance numbers on the default testbed.

Scale (default): fitted Q iteration on 1,000,000 logged decision transitions (250,000 customers x 4
campaign waves = 5,000,000 logged steps) of the default testbed. Prints the time of every backward
iteration (one wave, value and cost heads), the whole fit, the Monte Carlo evaluation of the learned
policy, and their ratio to a baseline measured in the same run: one plain regressor (the same LightGBM
settings) fitted once on the same 1,000,000 rows.

Acceptance (--acceptance): the whole study (log, training at one budget, truth, off-policy estimates) on
the default testbed for several seeds; prints, per seed, fitted Q's margin over the best one-step policy
with its 95% interval and spends, then how often each estimator's interval covered the truth and how
often its high-confidence lower bound stayed below it.

    python benchmarks/bench_journey.py [--transitions 1000000] [--tune]
    python benchmarks/bench_journey.py --acceptance [--seeds 20]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd


def scale(transitions: int, tune: bool) -> None:
    from offerflow.journey.config import JourneyConfig
    from offerflow.journey.fqi import fit_fitted_q
    from offerflow.journey.journey_log import behaviour_policy, decision_data
    from offerflow.journey.learning import train_fitted_q, spend_meter
    from offerflow.journey.models import fit_regressor, with_action
    from offerflow.journey.simulator import simulate_journeys

    config = JourneyConfig()
    customers = transitions // config.waves
    started = time.perf_counter()
    journeys = simulate_journeys(config, behaviour_policy(config), customers, config.seed)
    data = decision_data(journeys, config)
    simulate_seconds = time.perf_counter() - started
    rows = data.customers * data.waves
    print(f"log: {data.customers:,} customers x {config.horizon} steps = {data.customers * config.horizon:,} logged steps; "
          f"{rows:,} decision transitions ({data.waves} waves); simulated in {simulate_seconds:.1f} s")

    started = time.perf_counter()
    x = with_action(data.features.reshape(rows, -1), data.actions.reshape(rows))
    fit_regressor(config.learn.q_model, 0, x, data.value.reshape(rows))
    baseline = time.perf_counter() - started
    print(f"baseline: one plain regressor fit on the same {rows:,} rows: {baseline:.1f} s")

    started = time.perf_counter()
    policy = fit_fitted_q(data, len(config.actions), 0.0, config.learn.q_model, config.seed)
    fqi_seconds = time.perf_counter() - started
    for wave, seconds in enumerate(policy.models.seconds_per_wave):
        print(f"  fitted Q iteration, wave {wave} ({data.customers:,} rows, value + cost heads): {seconds:6.1f} s "
              f"= {seconds / baseline:4.2f} x baseline")
    print(f"fitted Q iteration, all {data.waves} iterations: {fqi_seconds:.1f} s = {fqi_seconds / baseline:.2f} x baseline "
          f"(target: <= 300 s on 2 cores)")

    mc = config.evaluation.monte_carlo_customers
    started = time.perf_counter()
    run = simulate_journeys(config, policy, mc, config.seed + 1)
    mc_seconds = time.perf_counter() - started
    print(f"Monte Carlo evaluation of the learned policy ({mc:,} customers x {config.horizon} steps): {mc_seconds:.1f} s "
          f"= {mc_seconds / baseline:.2f} x baseline; value {run.reward.sum(axis=1).mean():.2f} USD per customer")
    if tune:
        started = time.perf_counter()
        tuned = train_fitted_q(config, data, spend_meter(config, data), config.seed)
        seconds = time.perf_counter() - started
        print(f"budget tuning ({len(tuned.evaluations)} refits, spend simulated on {config.budget.simulation_customers:,} "
              f"customers): {seconds:.1f} s = {seconds / baseline:.2f} x baseline; lambda {tuned.parameter:.2f}, spend "
              f"{tuned.spend:.2f} USD (budget {config.budget.per_customer:.2f})")


def acceptance(seeds: int, first_seed: int) -> None:
    from offerflow.journey.config import JourneyConfig
    from offerflow.journey.study import run_journey_study

    tables, margins = [], []
    print(f"{'seed':>10} {'fitted Q':>9} {'rival':>15} {'rival val':>9} {'margin':>7} {'95% interval':>17} "
          f"{'spend FQ':>8} {'spend rival':>11} {'seconds':>8}", flush=True)
    for seed in range(first_seed, first_seed + seeds):
        started = time.perf_counter()
        config = JourneyConfig(seed=seed)
        _, _, evaluation = run_journey_study(config)
        truth = evaluation.policies.set_index("policy")
        c = evaluation.comparison
        margins.append(c)
        tables.append(evaluation.table.assign(seed=seed))
        print(f"{seed:>10} {truth.loc['fitted_q', 'true_value']:>9.2f} {c['rival']:>15} "
              f"{truth.loc[c['rival'], 'true_value']:>9.2f} {c['difference']:>7.2f} [{c['low']:>6.2f}, {c['high']:>6.2f}] "
              f"{truth.loc['fitted_q', 'true_spend']:>8.2f} {truth.loc[c['rival'], 'true_spend']:>11.2f} "
              f"{time.perf_counter() - started:>8.0f}", flush=True)
    table = pd.concat(tables, ignore_index=True)
    print(f"\nfitted Q beat the best one-step policy with a 95% interval above zero in "
          f"{sum(m['low'] > 0 for m in margins)}/{len(margins)} seeds")
    summary = table.groupby("estimator").agg(interval_covers=("interval_covers_truth", "mean"),
                                             lower_bound_holds=("lower_bound_holds", "mean"), checks=("seed", "size"))
    fq = table[table["policy"] == "fitted_q"].groupby("estimator").agg(
        fq_interval_covers=("interval_covers_truth", "mean"), fq_lower_bound_holds=("lower_bound_holds", "mean"))
    print(f"\nover {seeds} seeds x {table['policy'].nunique()} policies (and fitted Q alone):")
    print(summary.join(fq).round(3).to_string())
    bias = table.assign(error=table["estimate"] - table["true_value"]).groupby("estimator")["error"].agg(["mean", "std"])
    print("\nestimate - truth (USD per customer), all policies:")
    print(bias.round(2).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=1_000_000, help="logged decision transitions")
    parser.add_argument("--tune", action="store_true", help="also time the budget tuning on the same log")
    parser.add_argument("--acceptance", action="store_true", help="the acceptance study over seeds instead")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    args = parser.parse_args()
    if args.acceptance:
        acceptance(args.seeds, args.first_seed)
    else:
        scale(args.transitions, args.tune)


if __name__ == "__main__":
    main()
