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


def individual_gain(predicted, population, answers) -> float:
    """Mean log-likelihood gain (bits per answer) of individual predictions over the population.

    Args:
        predicted: ``(answers, options)``: the model's distribution for each person's item,
            given that person's profile.
        population: ``(answers, options)``: the population distribution of the same item
            (e.g. the human item distribution without that person).
        answers: the option each person actually chose, one per row.

    Returns:
        mean(log2 p_predicted(answer) − log2 p_population(answer)): above 0 when the
        profile helps. An answer given zero probability counts as −inf, as it should.
    """
    p, q = distributions(predicted), distributions(population)
    rows = np.arange(len(p))
    chosen = np.asarray(answers, dtype=int)
    if chosen.shape != (len(p),) or p.shape != q.shape:
        raise ValueError("predicted, population and answers must describe the same answers")
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log2(p[rows, chosen]) - np.log2(q[rows, chosen])))
