"""Out-of-fold evaluation: do the predicted probabilities convert, and does the uplift ranking pay?

Per treatment arm versus control, on the rows that received either, the model's predicted uplift
(p_arm - p_control) is compared with random targeting and a named heuristic (e.g. highest purchase
frequency first) by causalml's AUUC, Qini coefficient and cumulative gain, plus the observed uplift
among the top 10/20/30% by each ranking. Ties (segment-level features give few distinct scores) are
broken by a seeded shuffle, so results are deterministic and no ranking gets an order for free.
Where the simulator's true probabilities are known, the same rankings are also scored on the true
uplift, and the predicted probabilities' error against the truth is reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CURVE_POINTS = 101  # population shares 0, 0.01, ..., 1 in the plot CSVs


def probability_scores(probabilities: np.ndarray, arm_index: np.ndarray, y: np.ndarray) -> dict:
    """Brier score and log loss of the predicted probability of the arm each row received."""
    p = probabilities[np.arange(len(y)), arm_index]
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    return {
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
    }


def truth_errors(probabilities: np.ndarray, truth: np.ndarray, arms: list[str]) -> dict:
    """Per arm mean absolute and root mean squared error of predicted vs true probabilities."""
    report = {}
    for j, arm in enumerate(arms):
        error = probabilities[:, j] - truth[:, j]
        report[arm] = {"mae": round(float(np.abs(error).mean()), 6), "rmse": round(float(np.sqrt((error**2).mean())), 6)}
    all_errors = probabilities - truth
    report["all_arms"] = {
        "mae": round(float(np.abs(all_errors).mean()), 6),
        "rmse": round(float(np.sqrt((all_errors**2).mean())), 6),
    }
    return report


def _grid(curve: pd.DataFrame) -> pd.DataFrame:
    """A causalml curve (index 0..n) sampled at CURVE_POINTS population shares."""
    n = curve.index.max()
    positions = np.rint(np.linspace(0, n, CURVE_POINTS)).astype(int)
    return curve.loc[positions].reset_index(drop=True)


def _top_share_lift(lift: pd.DataFrame, shares: tuple[float, ...]) -> dict:
    n = lift.index.max()
    report = {}
    for share in shares:
        row = lift.loc[max(int(np.ceil(share * n)), 1)]
        report[f"top_{round(share * 100):g}pct"] = {name: round(float(value), 6) for name, value in row.items()}
    return report


def arm_uplift_evaluation(
    y: np.ndarray,
    treated: np.ndarray,
    rankings: dict[str, np.ndarray],
    seed: int,
    top_shares: tuple[float, ...],
    true_effect: np.ndarray | None = None,
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Metrics, cumulative gain and Qini curves of several rankings of the same treated/control rows.

    Gains are per row of the evaluated population (incremental conversions per customer), so the
    curves of different arms and history sizes share one scale.
    """
    from causalml.metrics import auuc_score, get_cumgain, get_cumlift, get_qini, qini_score

    order = np.random.default_rng(seed).permutation(len(y))
    frame = pd.DataFrame({"y": y[order], "w": treated[order].astype(int)})
    for name, score in rankings.items():
        frame[name] = score[order]
    n = len(frame)
    metrics = {
        "rows": int(n),
        "treated_rows": int(frame["w"].sum()),
        "auuc": _rounded_series(auuc_score(frame, outcome_col="y", treatment_col="w", normalize=True)),
        "qini": _rounded_series(qini_score(frame, outcome_col="y", treatment_col="w", normalize=True)),
        "uplift_at": _top_share_lift(get_cumlift(frame, outcome_col="y", treatment_col="w"), top_shares),
    }
    gain = _grid(get_cumgain(frame, outcome_col="y", treatment_col="w") / n)
    qini = _grid(get_qini(frame, outcome_col="y", treatment_col="w") / n)
    if true_effect is not None:
        truth = frame.drop(columns=["y", "w"]).assign(tau=true_effect[order])
        metrics["auuc_true_effect"] = _rounded_series(auuc_score(truth, treatment_effect_col="tau", normalize=True))
        metrics["uplift_at_true_effect"] = _top_share_lift(get_cumlift(truth, treatment_effect_col="tau"), top_shares)
    return metrics, gain, qini


def uplift_evaluation(
    probabilities: np.ndarray,
    arm_index: np.ndarray,
    y: np.ndarray,
    arms: list[str],
    control: str,
    heuristic: np.ndarray | None,
    seed: int,
    top_shares: tuple[float, ...] = (0.1, 0.2, 0.3),
    truth: np.ndarray | None = None,
) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Per treatment arm metrics, plus wide curve tables {"cumulative_gain", "qini"} for plotting."""
    c = arms.index(control)
    share = np.linspace(0.0, 1.0, CURVE_POINTS)
    metrics, gains, qinis = {}, {"population_share": share}, {"population_share": share}
    rng = np.random.default_rng(seed)
    for t, arm in enumerate(arms):
        if arm == control:
            continue
        rows = (arm_index == t) | (arm_index == c)
        rankings = {"model": probabilities[rows, t] - probabilities[rows, c], "random": rng.random(int(rows.sum()))}
        if heuristic is not None:
            rankings["heuristic"] = heuristic[rows]
        true_effect = None if truth is None else truth[rows, t] - truth[rows, c]
        metrics[arm], gain, qini = arm_uplift_evaluation(
            y[rows], arm_index[rows] == t, rankings, seed, top_shares, true_effect
        )
        for name in rankings:
            gains[f"{arm}_{name}"] = gain[name].to_numpy()
            qinis[f"{arm}_{name}"] = qini[name].to_numpy()
    curves = {"cumulative_gain": pd.DataFrame(gains).round(8), "qini": pd.DataFrame(qinis).round(8)}
    return metrics, curves


def ranking_summary(metrics: dict) -> dict:
    """Mean over treatment arms of the model's AUUC and Qini (the selection criteria)."""
    arms = list(metrics)
    return {
        "auuc": float(np.mean([metrics[a]["auuc"]["model"] for a in arms])),
        "qini": float(np.mean([metrics[a]["qini"]["model"] for a in arms])),
    }


def _rounded_series(series: pd.Series) -> dict:
    return {str(name): round(float(value), 6) for name, value in series.items()}
