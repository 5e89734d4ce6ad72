"""How sure is an uplift ranking's score? Bootstrap intervals, and what a random ranking scores by chance.

A Qini or AUUC number alone cannot say whether the model beats a heuristic: on a real campaign a random
ranking's score moves as much as typical model-versus-rule gaps. So, per treatment arm:

- bootstrap: customers are resampled with replacement (all rows of a customer together: one customer
  appears in several campaigns), the out-of-fold predictions stay fixed, and every ranking is scored on
  the same resample, so the model-minus-heuristic difference is paired (the noise both share cancels);
- random spread: the central range of the scores of rankings drawn at random (a permutation null): a
  model whose score is inside it ranks no better than chance.

Speed (1M rows in seconds): each ranking's order is computed once and cut into `bins` consecutive
groups; a resample then only needs, per bin, how many treated/control converted/not rows it holds
(one sparse product per ranking for a whole chunk of resamples), and the curves are integrated over
bin ends (trapezoid; with 1000 bins the areas differ from the exact ones in the 4th decimal). Random
rankings' bin contents are drawn directly: a random order puts a hypergeometric share of each kind of
row into each bin, drawn bin after bin from what is left.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from offerflow.evaluation.bounds import cluster_codes
from offerflow.uplift.evaluation import ranking_order

BINS = 1000
POISSON_LEVELS = 1 << 16  # Poisson(1) counts drawn as 16-bit uniforms through its quantile table
CHUNK_CELLS = 4_000_000  # resampled cluster counts held at once (chunk x clusters)


def _bin_edges(n: int, bins: int) -> np.ndarray:
    return np.rint(np.linspace(0, n, min(bins, n) + 1)).astype(np.int64)


def cell_matrix(order: np.ndarray, y: np.ndarray, treated: np.ndarray, codes: np.ndarray, n_clusters: int, bins: int) -> sparse.csr_matrix:
    """clusters x (bins * 4): how many rows of each cluster fall in each (bin along `order`, kind) cell;
    kind = 2 * treated + y. A resample's cell counts are its cluster counts times this matrix."""
    n = len(order)
    edges = _bin_edges(n, bins)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    bin_of = np.searchsorted(edges, position, side="right") - 1
    cell = bin_of * 4 + 2 * treated.astype(np.int64) + y.astype(np.int64)
    return sparse.csr_matrix((np.ones(n), (codes, cell)), shape=(n_clusters, (len(edges) - 1) * 4))


def binned_scores(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Qini, AUUC) of each replicate from its r x bins x 4 cell counts (normalized as causalml's)."""
    n_c = np.cumsum(cells[..., 0] + cells[..., 1], axis=-1)
    n_t = np.cumsum(cells[..., 2] + cells[..., 3], axis=-1)
    y_c, y_t = np.cumsum(cells[..., 1], axis=-1), np.cumsum(cells[..., 3], axis=-1)
    k = n_c + n_t
    with np.errstate(invalid="ignore", divide="ignore"):
        qini = y_t - y_c * n_t / n_c
        gain = (y_t / n_t - y_c / n_c) * k
    qini = _from_origin(qini, k, n_c > 0)
    gain = _from_origin(gain, k, (n_c > 0) & (n_t > 0))
    return _normalized_area(qini, k) - np.sign(qini[:, -1]) / 2, _normalized_area(gain, k)


def _from_origin(values: np.ndarray, k: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """Undefined leading points on the line from the origin to each row's first defined point."""
    first = np.argmax(defined, axis=1)
    rows = np.arange(len(values))
    slope = values[rows, first] / np.where(k[rows, first] > 0, k[rows, first], 1.0)
    return np.where(np.arange(values.shape[1])[None, :] < first[:, None], slope[:, None] * k, values)


def _normalized_area(curve: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Trapezoid area under curve(k) from (0, 0) over the bin ends, divided by k_end and |curve(k_end)|."""
    padded_curve = np.concatenate([np.zeros((len(curve), 1)), curve], axis=1)
    padded_k = np.concatenate([np.zeros((len(k), 1)), k], axis=1)
    area = ((padded_curve[:, 1:] + padded_curve[:, :-1]) / 2 * np.diff(padded_k, axis=1)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return area / k[:, -1] / np.abs(curve[:, -1])


def bootstrap_scores(
    matrices: dict[str, sparse.csr_matrix], n_clusters: int, samples: int, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per cell matrix (one per arm and ranking, all over the same clusters): (Qini, AUUC) over `samples`
    resamples of the clusters, the same resamples for every matrix (paired differences).

    Poisson bootstrap: each cluster's count in a resample is Poisson(1) (the large-sample form of the
    multinomial draw), drawn once for every arm and ranking, by looking 16-bit uniforms up in its
    quantile table (about ten times faster than numpy's Poisson sampler; probabilities exact to 2^-16).
    """
    from scipy.stats import poisson

    table = poisson.ppf((np.arange(POISSON_LEVELS) + 0.5) / POISSON_LEVELS, 1.0)
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_CELLS // max(n_clusters, 1))
    scores: dict[str, list] = {name: [] for name in matrices}
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, samples, chunk):
            rows = min(chunk, samples - start)
            weights = table[rng.integers(0, POISSON_LEVELS, size=(rows, n_clusters), dtype=np.uint16)]
            for name, matrix in matrices.items():
                cells = np.asarray(weights @ matrix).reshape(rows, -1, 4)
                scores[name].append(binned_scores(cells))
    return {name: tuple(np.concatenate([part[j] for part in parts]) for j in range(2)) for name, parts in scores.items()}


def random_ranking_scores(y: np.ndarray, treated: np.ndarray, samples: int, seed: int, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """(Qini, AUUC) of `samples` random orders of the rows: each bin's contents drawn without replacement."""
    kinds = np.bincount(2 * treated.astype(np.int64) + y.astype(np.int64), minlength=4)
    edges = _bin_edges(len(y), bins)
    rng = np.random.default_rng(seed)
    left = np.tile(kinds, (samples, 1))
    cells = np.zeros((samples, len(edges) - 1, 4))
    for b, size in enumerate(np.diff(edges)):
        wanted = np.full(samples, size)
        for kind in range(3):
            others = left[:, kind + 1 :].sum(axis=1)
            taken = rng.hypergeometric(left[:, kind], others, wanted) if size else np.zeros(samples, dtype=np.int64)
            cells[:, b, kind] = taken
            left[:, kind] -= taken
            wanted = wanted - taken
        cells[:, b, 3] = wanted
        left[:, 3] -= wanted
    return binned_scores(cells)


def _interval(values: np.ndarray, level: float) -> list[float]:
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return [round(float(low), 6), round(float(high), 6)]


def ranking_intervals(
    arms: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]],
    clusters: np.ndarray,
    rows_of: dict[str, np.ndarray],
    samples: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, dict]:
    """Per treatment arm: bootstrap intervals of each ranking's Qini and AUUC, of model minus heuristic,
    and the central `level` range of a random ranking's scores.

    `arms` maps an arm to (y, treated, rankings) of its rows (`rows_of[arm]`, indexes into `clusters`);
    rankings hold "model" and optionally "heuristic" scores (ties broken as in `arm_uplift_evaluation`).
    """
    codes, n_clusters = cluster_codes(clusters, len(clusters))
    matrices, nulls = {}, {}
    for a, (arm, (y, treated, rankings)) in enumerate(arms.items()):
        y, treated = np.asarray(y), np.asarray(treated, dtype=bool)
        tie_key = np.random.default_rng(seed).permutation(len(y))
        for name, score in rankings.items():
            matrices[(arm, name)] = cell_matrix(ranking_order(score, tie_key), y, treated, codes[rows_of[arm]], n_clusters, BINS)
        nulls[arm] = random_ranking_scores(y, treated, samples, seed + 1 + a)
    boot = bootstrap_scores(matrices, n_clusters, samples, seed)
    report = {}
    for arm, (_, _, rankings) in arms.items():
        entry: dict = {"level": level, "bootstrap_samples": samples}
        for j, metric in enumerate(("qini", "auuc")):
            intervals = {name: _interval(boot[(arm, name)][j], level) for name in rankings}
            if "heuristic" in rankings:
                intervals["model_minus_heuristic"] = _interval(boot[(arm, "model")][j] - boot[(arm, "heuristic")][j], level)
            intervals["random_ranking"] = _interval(nulls[arm][j], level)
            entry[metric] = intervals
        report[arm] = entry
    return report
