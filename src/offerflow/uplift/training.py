"""The train stage's function: compare learners out of fold, keep the best, report honestly.

Every learner listed in params.yaml (train.learner plus train.candidates) is cross-fitted on the same
customer-grouped folds and scored on the same rows; the one with the best `selection_criterion` is
refitted on all of the history (policy_value: the value of the plan each learner leads to, see
selection.py). All candidates' scores are kept in the metrics so the choice can be audited. The
out-of-fold predictions of the chosen learner also feed the doubly robust average effects (next to the
naive difference in rates), the per-segment intervals of the probability table, and the verdict on
its rankings: bootstrap intervals of Qini/AUUC per arm against a random ranking's range and against the
heuristic (ranking_intervals.py); a model that does not beat the heuristic outside the interval is
flagged (`model_beats_heuristic: false`) and logged as a warning by the `offerflow.train` logger.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from offerflow.config import HeuristicConfig, TrainConfig
from offerflow.schema import true_prob_column
from offerflow.simulation import ordered_score
from offerflow.uplift.model import UpliftModel, design_matrix, fit_model, learner_name
from offerflow.uplift.crossfit import cross_fit_learners, cross_fit_propensities, customer_folds
from offerflow.uplift.debias import average_effects, received_propensity, segment_evidence
from offerflow.uplift.selection import SelectionEconomics, policy_values
from offerflow.uplift.evaluation import arm_rows, probability_scores, ranking_summary, truth_errors, uplift_evaluation

logger = logging.getLogger("offerflow.train")

LOWER_IS_BETTER = {"brier": True, "log_loss": True, "qini": False, "auuc": False, "policy_value": False}


@dataclass
class TrainingResult:
    model: UpliftModel
    metrics: dict
    curves: dict[str, pd.DataFrame]  # wide curve tables of the chosen learner ("cumulative_gain", "qini")


def logged_propensity(history: pd.DataFrame, config: TrainConfig) -> np.ndarray | None:
    """The history's logged probability of the arm received, when params say to use it."""
    if config.propensity.source != "logged":
        return None
    column = config.propensity.column
    if column not in history.columns:
        raise ValueError(
            f"train.propensity.source is 'logged' but the history has no column {column!r} (train.propensity.column)"
        )
    values = pd.to_numeric(history[column], errors="coerce").to_numpy(dtype=float)
    bad = ~((values > 0) & (values <= 1))
    if bad.any():
        sample = history.loc[bad, column].head(5).tolist()
        raise ValueError(f"history column {column!r}: propensities must be in (0, 1]; {int(bad.sum())} rows are not, e.g. {sample}")
    return values


def heuristic_score(history: pd.DataFrame, heuristic: HeuristicConfig | None) -> np.ndarray | None:
    """The named heuristic as a ranking score (higher = targeted first)."""
    if heuristic is None:
        return None
    if heuristic.column not in history.columns:
        raise ValueError(
            f"train.evaluation.heuristic.column {heuristic.column!r} is neither in the history nor in the customers file"
        )
    score = ordered_score(history[heuristic.column], heuristic.order)
    return score if heuristic.descending else -score


def truth_matrix(history: pd.DataFrame, arms: list[str]) -> np.ndarray | None:
    """n x arms true probabilities when the history carries them (simulated history), else None."""
    columns = [true_prob_column(arm) for arm in arms]
    if not all(c in history.columns for c in columns):
        return None
    return history[columns].to_numpy(dtype=float)


def select_learner(scores: dict[str, dict], criterion: str) -> str:
    """Name of the best learner by `criterion`; ties go to the one listed first (the default learner)."""
    sign = 1.0 if LOWER_IS_BETTER[criterion] else -1.0
    return min(scores, key=lambda name: (sign * scores[name][criterion], list(scores).index(name)))


def ranking_verdict(
    probabilities: np.ndarray,
    design,
    arms: list[str],
    control: str,
    heuristic: np.ndarray | None,
    uplift: dict,
    config: TrainConfig,
) -> dict:
    """Bootstrap intervals of the chosen learner's rankings per arm, and whether it beats random and the heuristic.

    An arm's ranking beats random when its Qini is above the central range of random rankings' Qini,
    and beats the heuristic when the interval of (model - heuristic) Qini lies above zero.
    """
    from offerflow.uplift.ranking_intervals import ranking_intervals

    samples = config.evaluation.bootstrap_samples
    c = arms.index(control)
    inputs, rows_of = {}, {}
    for t, arm in enumerate(arms):
        if arm == control:
            continue
        rows = rows_of[arm] = arm_rows(design.arm_index, t, c)
        rankings = {"model": probabilities[rows, t] - probabilities[rows, c]}
        if heuristic is not None:
            rankings["heuristic"] = heuristic[rows]
        inputs[arm] = (design.y[rows], design.arm_index[rows] == t, rankings)
    intervals = ranking_intervals(inputs, design.clusters, rows_of, samples, config.seed)
    for arm, entry in intervals.items():
        qini = entry["qini"]
        entry["beats_random"] = bool(uplift[arm]["qini"]["model"] > qini["random_ranking"][1])
        entry["beats_heuristic"] = None if heuristic is None else bool(qini["model_minus_heuristic"][0] > 0)
    verdict = {
        "model_beats_random": all(entry["beats_random"] for entry in intervals.values()),
        "model_beats_heuristic": None if heuristic is None else all(entry["beats_heuristic"] for entry in intervals.values()),
    }
    return {"arms": intervals, **verdict}


def warn_on_verdict(verdict: dict, learner: str, heuristic_name: str | None) -> list[str]:
    """Log (and return) a warning per arm whose ranking does not beat the heuristic or chance."""
    warnings = []
    for arm, entry in verdict["arms"].items():
        qini = entry["qini"]
        if entry["beats_heuristic"] is False:
            warnings.append(
                f"{learner} does not beat the heuristic '{heuristic_name}' for {arm} outside its interval: "
                f"Qini(model) - Qini(heuristic) {qini['model_minus_heuristic']} includes 0 or lies below it"
            )
        if not entry["beats_random"]:
            warnings.append(
                f"{learner}'s ranking for {arm} is within what a random ranking scores by chance "
                f"(random Qini range {qini['random_ranking']})"
            )
    for message in warnings:
        logger.warning(message)
    return warnings


def train_and_evaluate(
    history: pd.DataFrame,
    features: list[str],
    arms: list[str],
    control: str,
    config: TrainConfig,
    segment_columns: list[str] | tuple[str, ...] = (),
    level: float = 0.95,
    economics: SelectionEconomics | None = None,
) -> TrainingResult:
    """`level` is the confidence level of the average-effect intervals in the metrics; `economics` (budget
    and costs) is needed by the policy_value criterion."""
    if config.selection_criterion == "policy_value" and economics is None:
        raise ValueError("train.selection_criterion policy_value needs the budget and the arms' costs (economics)")
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the logistic fits are small matrix products, and BLAS threads spinning against a
    # busy second core made them 2-12x slower; the candidates' fits are what the cores are for
    with threadpool_limits(limits=1, user_api="blas"):
        return _train_and_evaluate(history, features, arms, control, config, segment_columns, level, economics)


def _train_and_evaluate(
    history: pd.DataFrame,
    features: list[str],
    arms: list[str],
    control: str,
    config: TrainConfig,
    segment_columns: list[str] | tuple[str, ...],
    level: float,
    economics: SelectionEconomics | None,
) -> TrainingResult:
    history = history.reset_index(drop=True)
    design = design_matrix(history, list(features), list(arms))
    folds = customer_folds(design.clusters, config.evaluation.folds, config.seed)
    logged = logged_propensity(history, config)
    propensities = cross_fit_propensities(design.X, design.arm_index, folds, config.propensity, arms, config.seed, logged)
    e_received = received_propensity(propensities.out_of_fold, design.arm_index, logged, config.propensity.clip)
    heuristic = heuristic_score(history, config.evaluation.heuristic)
    truth = truth_matrix(history, arms)
    runs: dict[str, dict] = {}
    specs = config.learners
    oofs = cross_fit_learners(design.X, design.arm_labels, design.y, folds, propensities, specs, arms, control, config.seed)
    for spec, oof in zip(specs, oofs):
        uplift, curves = uplift_evaluation(
            oof, design.arm_index, design.y, arms, control, heuristic, config.seed, config.evaluation.top_shares, truth
        )
        scores = {**probability_scores(oof, design.arm_index, design.y), **ranking_summary(uplift)}
        if truth is not None:
            scores["mae_vs_truth"] = truth_errors(oof, truth, arms)["all_arms"]["mae"]
        runs[learner_name(spec)] = {"spec": spec, "oof": oof, "uplift": uplift, "curves": curves, "scores": scores}
    if config.selection_criterion == "policy_value":
        oofs = {name: run["oof"] for name, run in runs.items()}
        for name, value in policy_values(oofs, design.arm_index, design.y, e_received, list(arms).index(control), economics).items():
            runs[name]["scores"].update(value)
    scores = {name: {k: round(v, 6) for k, v in run["scores"].items()} for name, run in runs.items()}
    chosen = select_learner(scores, config.selection_criterion)
    best = runs[chosen]
    model = fit_model(design, best["spec"], features, arms, control, config, logged, propensities.full)
    if segment_columns:
        model.segment_evidence = segment_evidence(
            best["oof"], design.arm_index, design.y, e_received, history[list(segment_columns)], arms, design.clusters
        )
    metrics = {
        "selection": {"criterion": config.selection_criterion, "chosen": chosen, "scores": scores},
        "evaluation": {
            "folds": config.evaluation.folds,
            "heuristic": None if config.evaluation.heuristic is None else config.evaluation.heuristic.name,
            "arms": best["uplift"],
        },
        "effects": average_effects(
            best["oof"], design.arm_index, design.y, e_received, arms, control, design.clusters, level, truth
        ),
        "propensity": {
            "source": config.propensity.source,
            "received_min": round(float(e_received.min()), 6),
            "received_max": round(float(e_received.max()), 6),
        },
    }
    if truth is not None:
        metrics["evaluation"]["error_vs_truth"] = truth_errors(best["oof"], truth, arms)
    metrics["model_beats_random"] = metrics["model_beats_heuristic"] = None
    if config.evaluation.bootstrap_samples:
        verdict = ranking_verdict(best["oof"], design, list(arms), control, heuristic, best["uplift"], config)
        metrics["evaluation"]["intervals"] = verdict["arms"]
        metrics["model_beats_random"] = verdict["model_beats_random"]
        metrics["model_beats_heuristic"] = verdict["model_beats_heuristic"]
        heuristic_name = None if config.evaluation.heuristic is None else config.evaluation.heuristic.name
        metrics["warnings"] = warn_on_verdict(verdict, chosen, heuristic_name)
    return TrainingResult(model=model, metrics=metrics, curves=best["curves"])
