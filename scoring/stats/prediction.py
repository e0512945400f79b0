"""Third-person human modelling: how well a model predicts what people answer.

Population predictions are distributions per item compared with the human ones;
individual predictions are scored by how much better than the population baseline
they predict each person's actual answer.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from scoring.stats.distances import distributions, js_distance, wasserstein_ordinal


def opinionqa_score(predicted, human, values=None) -> np.ndarray:
    """1 − W1 / scale range per item (Santurkar et al. 2023, OpinionQA): 1 is a perfect match."""
    return 1.0 - np.atleast_1d(wasserstein_ordinal(predicted, human, values))


def js_similarity(predicted, human) -> np.ndarray:
    """1 − Jensen–Shannon distance per item."""
    return 1.0 - np.atleast_1d(js_distance(predicted, human))


def item_means(dists, values=None) -> np.ndarray:
    """Expected scale value of each item's distribution (scale points default 1…k)."""
    p = distributions(dists)
    points = np.arange(1, p.shape[1] + 1) if values is None else np.asarray(values, float)
    return p @ points


def item_mean_correlation(predicted, human, values=None, method: str = "pearson") -> float:
    """Pearson or Spearman correlation, across items, of predicted and human item means.

    Raises:
        ValueError: fewer than three items (no meaningful correlation), or another method.
    """
    a, b = item_means(predicted, values), item_means(human, values)
    if len(a) < 3:
        raise ValueError("a correlation of item means needs at least three items")
    if method == "pearson":
        return float(stats.pearsonr(a, b).statistic)
    if method == "spearman":
        return float(stats.spearmanr(a, b).statistic)
    raise ValueError(f"method must be pearson or spearman, not {method!r}")


def gain_bits(predicted, population, answers) -> np.ndarray:
    """Per answer: log2 p_predicted(answer) − log2 p_population(answer), in bits.

    Args:
        predicted: ``(answers, options)``: the model's distribution for each person's item,
            given that person's profile.
        population: ``(answers, options)``: the population distribution of the same item
            (e.g. the human item distribution without that person).
        answers: the option each person actually chose, one per row.

    Returns:
        Above 0 where the prediction gave the actual answer more probability than the
        population did. An answer the prediction gave zero probability counts as −inf.

    Raises:
        ValueError: the three do not describe the same answers.
    """
    p, q = distributions(predicted), distributions(population)
    chosen = np.asarray(answers, dtype=int)
    if chosen.shape != (len(p),) or p.shape != q.shape:
        raise ValueError("predicted, population and answers must describe the same answers")
    rows = np.arange(len(p))
    with np.errstate(divide="ignore"):
        return np.log2(p[rows, chosen]) - np.log2(q[rows, chosen])


def individual_gain(predicted, population, answers) -> float:
    """Mean log-likelihood gain (bits per answer) of individual predictions over the population.

    The mean of `gain_bits`: above 0 when the profile helps.
    """
    return float(np.mean(gain_bits(predicted, population, answers)))


def leave_one_out(counts, items, answers, pseudocount: float = 1.0, widths=None) -> np.ndarray:
    """The population distribution of each answer's item without that answer.

    Args:
        counts: ``(items, options)`` answer counts of everyone, the person included.
        items: for each answer, the row of its item in ``counts``.
        answers: for each answer, the option chosen (counted in ``counts``).
        pseudocount: added to every option's count, so that an answer nobody else gave
            keeps a finite probability.
        widths: for each row of ``counts``, how many options its item has (the rest of
            the row is padding and gets no pseudocount); None: every column.

    Returns:
        ``(answers, options)``: (counts − the person's answer + pseudocount), normalised.

    Raises:
        ValueError: an answer is not among the counts.
    """
    counts = np.asarray(counts, dtype=float)
    rows = np.asarray(items, dtype=int)
    chosen = np.asarray(answers, dtype=int)
    out = counts[rows].copy()
    picked = np.arange(len(rows))
    if (out[picked, chosen] < 1).any():
        raise ValueError("an answer is not counted in the population counts")
    out[picked, chosen] -= 1
    columns = np.arange(counts.shape[1])
    width = counts.shape[1] if widths is None else np.asarray(widths, dtype=int)[rows][:, None]
    out += np.where(columns < width, pseudocount, 0.0)
    return out / out.sum(axis=1, keepdims=True)


def cluster_mean_interval(
    values, clusters, resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``values`` and a percentile bootstrap interval resampling whole clusters.

    The answers of one person are not independent, so people are drawn with replacement
    and each draw's mean is over all the answers of the people drawn.

    Returns:
        (mean, low, high).

    Raises:
        ValueError: no values, or values and clusters of different lengths.
    """
    values = np.asarray(values, dtype=float)
    clusters = np.asarray(clusters)
    if values.ndim != 1 or len(values) == 0 or clusters.shape != values.shape:
        raise ValueError("need one cluster per value, and at least one value")
    _, index = np.unique(clusters, return_inverse=True)
    sums = np.bincount(index, weights=values)
    sizes = np.bincount(index).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sums), size=(resamples, len(sums)))
    means = sums[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)
