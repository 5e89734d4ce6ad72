"""Uplift learners at scale: fit and scoring seconds and peak memory, per learner and history size.

Histories of N rows x 3 arms x 10 features (3 categorical, 7 numeric) are drawn from a known
logistic model. Each (learner, N) case runs in its own process so its peak resident memory is its
own; the table ends with each case's time relative to the default learner at the same size.

    python benchmarks/bench_train.py                       # 100k rows: every learner; 1M: the default
    python benchmarks/bench_train.py --rows 100000 --learners t_learner/logistic x_learner/lightgbm

Target (issue 3): the default learner (params.yaml train.learner/base_model) fits 1M rows in < 2 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ARMS = ["dm1", "dm2", "dm3"]
FEATURES = ["age_cat", "freq_cat", "channel", *[f"x{k}" for k in range(7)]]
LEARNERS = [f"{kind}/{base}" for kind in ("t_learner", "s_learner", "x_learner", "dr_learner") for base in ("logistic", "lightgbm")]
LEARNERS.append("uplift_forest")
LIGHTGBM = {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 8, "min_child_samples": 20}


def default_learner() -> str:
    from offerflow.config import load_params

    train = load_params(Path(__file__).resolve().parents[1] / "params.yaml", check_files=False).train
    return train.learner if train.learner == "uplift_forest" else f"{train.learner}/{train.base_model}"


def synthetic_history(rows: int, seed: int = 7) -> pd.DataFrame:
    """rows x (customer_id, arm, converted, 10 features); uplift varies with x0 and freq_cat."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(rows) // 4,
            "age_cat": rng.choice(np.array(["a1", "a2", "a3", "a4"], dtype=object), rows),
            "freq_cat": rng.choice(np.array(["f0", "f1", "f2", "f3"], dtype=object), rows),
            "channel": rng.choice(np.array(["app", "store", "web"], dtype=object), rows),
            **{f"x{k}": rng.normal(size=rows) for k in range(7)},
        }
    )
    arm = rng.integers(0, 3, rows)
    freq = frame["freq_cat"].str[1].astype(int).to_numpy()
    logit = -1.2 + 0.3 * freq + 0.4 * frame["x1"].to_numpy() + arm * (0.3 + 0.25 * frame["x0"].to_numpy() + 0.1 * freq)
    frame["arm"] = np.asarray(ARMS, dtype=object)[arm]
    frame["converted"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    return frame


def run_case(learner: str, rows: int) -> dict:
    """Fit one learner on `rows` history rows, score the same rows; report seconds and peak RSS."""
    import causalml.inference.meta  # noqa: F401  (imports are not what is measured)
    import causalml.inference.tree  # noqa: F401

    from offerflow.config import TrainConfig
    from offerflow.uplift.model import train_uplift

    kind, _, base = learner.partition("/")
    history = synthetic_history(rows)
    params = LIGHTGBM if base == "lightgbm" else {}
    config = TrainConfig(learner=kind, base_model=base or "lightgbm", features=tuple(FEATURES), model_params=params)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    model = train_uplift(history, FEATURES, ARMS, "dm1", config)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    probabilities = model.predict_matrix(history)
    score_seconds = time.perf_counter() - start
    assert probabilities.shape == (rows, len(ARMS))
    return {
        "learner": learner,
        "rows": rows,
        "fit_s": round(fit_seconds, 2),
        "score_s": round(score_seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_before_fit_mb": round(baseline_mb),
    }


def run_isolated(learner: str, rows: int, timeout: float) -> dict:
    command = [sys.executable, __file__, "--case", learner, str(rows)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"learner": learner, "rows": rows, "fit_s": None, "note": f"timeout after {timeout:.0f}s"}
    except subprocess.CalledProcessError as exc:
        return {"learner": learner, "rows": rows, "fit_s": None, "note": exc.stderr.strip().splitlines()[-1][:80]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(results: list[dict], default: str) -> None:
    reference = {r["rows"]: r["fit_s"] for r in results if r["learner"] == default and r.get("fit_s")}
    print(f"\n{'learner':<22}{'rows':>10}{'fit s':>9}{'score s':>9}{'peak MB':>9}{'fit / default':>15}")
    for r in results:
        if r.get("fit_s") is None:
            print(f"{r['learner']:<22}{r['rows']:>10,}  {r['note']}")
            continue
        ratio = f"{r['fit_s'] / reference[r['rows']]:.2f}x" if reference.get(r["rows"]) else "-"
        print(f"{r['learner']:<22}{r['rows']:>10,}{r['fit_s']:>9.2f}{r['score_s']:>9.2f}{r['peak_rss_mb']:>9,}{ratio:>15}")
    for rows, seconds in sorted(reference.items()):
        if rows >= 1_000_000:
            verdict = "meets" if seconds < 120 else "MISSES"
            print(f"\ndefault learner {default} at {rows:,} rows: {seconds:.1f} s ({verdict} the < 120 s target)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs=2, metavar=("LEARNER", "ROWS"), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--learners", nargs="+", default=None, help=f"default: all at 100k, the default at 1M; from {LEARNERS}")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per case")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case[0], int(args.case[1]))))
        return
    default = default_learner()
    results = []
    for rows in args.rows:
        learners = args.learners or (LEARNERS if rows <= 100_000 else [default])
        for learner in [default, *[name for name in learners if name != default]] if default in learners else learners:
            results.append(run_isolated(learner, rows, args.timeout))
            r = results[-1]
            print(f"{learner} @ {rows:,}: fit {r.get('fit_s')} s, score {r.get('score_s')} s", flush=True)
    print_table(results, default)


if __name__ == "__main__":
    main()
