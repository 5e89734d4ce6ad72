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


def ranking_order(score: np.ndarray, tie_key: np.ndarray) -> np.ndarray:
    """Rows by descending score; ties in the order of a seeded random key (a permutation of the rows), so
    no ranking gets an order for free."""
    by_key = np.empty(len(tie_key), dtype=np.int64)  # rows in key order: tie_key is a permutation, no sort needed
    by_key[tie_key] = np.arange(len(tie_key))
    return by_key[np.argsort(-np.asarray(score, dtype=float)[by_key], kind="stable")]


def _fill_leading(values: np.ndarray, counts: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """Undefined leading points (no treated or no control row yet) on the line from (0, 0) to the first
    defined point, as causalml's curves interpolate them; `counts` is the population at each point."""
    if defined.all():
        return values
    if not defined.any():
        return np.zeros_like(values)
    first = int(np.argmax(defined))
    result = values.copy()  # once both groups have a row they keep one: only a leading stretch is undefined
    result[:first] = values[first] * counts[:first] / counts[first]
    return result


def ranking_curves(order: np.ndarray, y: np.ndarray, treated: np.ndarray) -> dict[str, np.ndarray]:
    """Cumulative lift, gain and Qini of the first k rows of `order`, k = 0..n (causalml's definitions:
    lift = treated rate - control rate among the top k; gain = lift * k; Qini = treated conversions minus
    control conversions scaled to the treated count)."""
    w = treated[order].astype(float)
    yy = y[order].astype(float)
    k = np.arange(1, len(order) + 1, dtype=float)
    n_t = np.cumsum(w)
    n_c = k - n_t
    y_t, y_c = np.cumsum(yy * w), np.cumsum(yy * (1 - w))
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = y_t / n_t - y_c / n_c
        qini = y_t - y_c * n_t / n_c
    lift = _fill_leading(lift, k, (n_t > 0) & (n_c > 0))
    qini = _fill_leading(qini, k, n_c > 0)
    zero = np.zeros(1)
    return {"lift": np.concatenate([zero, lift]), "gain": np.concatenate([zero, lift * k]), "qini": np.concatenate([zero, qini])}


def normalized_area(curve: np.ndarray) -> float:
    """Mean over k = 0..n of curve(k) / |curve(n)| (causalml's normalized AUUC of a gain curve)."""
    end = abs(float(curve[-1]))
    return float(curve.mean() / end) if end > 0 else float("nan")


def qini_from_curve(curve: np.ndarray) -> float:
    """Normalized Qini score: normalized area of the Qini curve minus that of the random line (causalml's)."""
    end = float(curve[-1])
    return float(normalized_area(curve) - (np.sign(end) / 2 if end != 0 else float("nan")))


def _grid(curve: np.ndarray) -> np.ndarray:
    """A curve over k = 0..n sampled at CURVE_POINTS population shares."""
    n = len(curve) - 1
    return curve[np.rint(np.linspace(0, n, CURVE_POINTS)).astype(int)]


def _top_share_lift(lifts: dict[str, np.ndarray], shares: tuple[float, ...]) -> dict:
    report = {}
    for share in shares:
        row = {name: lift[max(int(np.ceil(share * (len(lift) - 1))), 1)] for name, lift in lifts.items()}
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
    curves of different arms and history sizes share one scale. numpy, one sort per ranking: the
    numbers are causalml's (auuc_score, qini_score, get_cumlift; tested against them) at a fraction
    of the time of its per-ranking pandas sorts.
    """
    y, treated = np.asarray(y), np.asarray(treated, dtype=bool)
    n = len(y)
    tie_key = np.random.default_rng(seed).permutation(n)
    curves = {name: ranking_curves(ranking_order(score, tie_key), y, treated) for name, score in rankings.items()}
    metrics = {
        "rows": int(n),
        "treated_rows": int(treated.sum()),
        "auuc": {name: round(float(normalized_area(c["gain"])), 6) for name, c in curves.items()},
        "qini": {name: round(float(qini_from_curve(c["qini"])), 6) for name, c in curves.items()},
        "uplift_at": _top_share_lift({name: c["lift"] for name, c in curves.items()}, top_shares),
    }
    gain = pd.DataFrame({name: _grid(c["gain"]) / n for name, c in curves.items()})
    qini = pd.DataFrame({name: _grid(c["qini"]) / n for name, c in curves.items()})
    if true_effect is not None:
        true_gain = {}
        for name, score in rankings.items():
            cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(true_effect, dtype=float)[ranking_order(score, tie_key)])])
            true_gain[name] = cumulative
        metrics["auuc_true_effect"] = {name: round(normalized_area(g), 6) for name, g in true_gain.items()}
        k = np.arange(n + 1, dtype=float)
        k[0] = 1.0
        metrics["uplift_at_true_effect"] = _top_share_lift({name: g / k for name, g in true_gain.items()}, top_shares)
    return metrics, gain, qini


def arm_rows(arm_index: np.ndarray, treatment: int, control: int) -> np.ndarray:
    """Indexes of the rows that received the treatment or the control: one arm's evaluation population."""
    return np.flatnonzero((arm_index == treatment) | (arm_index == control))


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
        rows = arm_rows(arm_index, t, c)
        rankings = {"model": probabilities[rows, t] - probabilities[rows, c], "random": rng.random(len(rows))}
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


