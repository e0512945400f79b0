"""First-person alignment: how far a model's answers are from people's, with uncertainty.

Human data come in two shapes, and every function takes either:

- answers: an ``(participants, items)`` integer array of option indexes, ``-1`` for
  missing (individual data, e.g. a questionnaire's respondents);
- counts: an ``(items, options)`` array of how many people chose each option (item-level
  data, e.g. choices13k).

Uncertainty comes from resampling people: whole participants (with replacement) for
answers, each item's counts (multinomially) for counts. The noise ceiling is the same
distance between two random halves of the people: a model cannot be expected to be closer
to the humans than they are to each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.stats.distances import DISTANCES


def counts_of(answers, n_options: int) -> np.ndarray:
    """Per-item option counts ``(items, options)`` of an answers array (``-1`` = missing).

    Raises:
        ValueError: an answer outside ``-1 … n_options - 1``.
    """
    answers = np.asarray(answers)
    if answers.ndim != 2:
        raise ValueError(f"answers must be (participants, items), got shape {answers.shape}")
    if ((answers < -1) | (answers >= n_options)).any():
        raise ValueError(f"answers must be option indexes 0…{n_options - 1} or -1 (missing)")
    counts = np.zeros((answers.shape[1], n_options))
    for option in range(n_options):
        counts[:, option] = (answers == option).sum(axis=0)
    return counts


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap percentile interval."""

    value: float
    low: float
    high: float
    confidence: float
    resamples: int


def item_distances(human_counts, model, metric: str = "js", values=None) -> np.ndarray:
    """Distance per item between human counts and model distributions (same shape)."""
    if metric not in DISTANCES:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(DISTANCES)}")
    fn = DISTANCES[metric]
    args = (values,) if metric == "w1" else ()
    return fn(np.atleast_2d(human_counts), np.atleast_2d(model), *args)


def _human_resampler(human, n_options: int | None, rng):
    """A function that returns one bootstrap resample of the human counts."""
    human = np.asarray(human)
    if n_options is not None:  # answers: resample whole participants
        return lambda: counts_of(human[rng.integers(0, len(human), len(human))], n_options)
    counts = np.asarray(human, dtype=float)
    if (counts != np.round(counts)).any():
        raise ValueError("human counts must be whole numbers to be resampled")
    totals = counts.sum(axis=1).astype(int)
    probs = counts / counts.sum(axis=1, keepdims=True)
    return lambda: np.stack(
        [rng.multinomial(n, p) for n, p in zip(totals, probs, strict=True)]
    ).astype(float)


def alignment(
    human,
    model,
    *,
    metric: str = "js",
    values=None,
    n_options: int | None = None,
    model_samples: int | None = None,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean distance over items between people and a model, with a bootstrap interval.

    Args:
        human: answers ``(participants, items)`` (give ``n_options``) or counts
            ``(items, options)``.
        model: the model's distribution per item ``(items, options)``.
        metric: ``js`` (Jensen–Shannon distance), ``tv`` (total variation) or ``w1``
            (Wasserstein-1 over the scale range, for ordinal items).
        values: scale points for ``w1``.
        n_options: options per item, when ``human`` is answers.
        model_samples: when the model's distributions are proportions of this many
            samples per item, they are resampled too; None for exact distributions.
        resamples: bootstrap resamples.
        confidence: interval coverage.
        seed: seeds the resampling (the same seed gives the same interval).

    Returns:
        The mean distance and its percentile interval.
    """
    rng = np.random.default_rng(seed)
    model = np.atleast_2d(np.asarray(model, dtype=float))
    counts = counts_of(human, n_options) if n_options is not None else np.asarray(human, float)
    value = float(item_distances(counts, model, metric, values).mean())
    draw_human = _human_resampler(human, n_options, rng)
    draws = np.empty(resamples)
    for b in range(resamples):
        resampled_model = model
        if model_samples:
            probs = model / model.sum(axis=1, keepdims=True)
            resampled_model = np.stack([rng.multinomial(model_samples, p) for p in probs])
        draws[b] = item_distances(draw_human(), resampled_model, metric, values).mean()
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Estimate(value, float(low), float(high), confidence, resamples)


def noise_ceiling(
    human,
    *,
    metric: str = "js",
    values=None,
    n_options: int | None = None,
    splits: int = 200,
    seed: int = 0,
) -> float:
    """Mean distance over items between two random halves of the people (split-half).

    Answers are split by participant; counts are split per item without replacement
    (multivariate hypergeometric), which is the same when people answer independently.
    """
    rng = np.random.default_rng(seed)
    results = np.empty(splits)
    if n_options is not None:
        answers = np.asarray(human)
        n = len(answers)
        if n < 2:
            raise ValueError("a split half needs at least two participants")
        for s in range(splits):
            order = rng.permutation(n)
            first, second = answers[order[: n // 2]], answers[order[n // 2 :]]
            a, b = counts_of(first, n_options), counts_of(second, n_options)
            keep = (a.sum(axis=1) > 0) & (b.sum(axis=1) > 0)
            results[s] = item_distances(a[keep], b[keep], metric, values).mean()
        return float(results.mean())
    counts = np.asarray(human).astype(np.int64)
    if (counts.sum(axis=1) < 2).any():
        raise ValueError("a split half needs at least two people per item")
    for s in range(splits):
        halves = np.stack(
            [rng.multivariate_hypergeometric(row, row.sum() // 2) for row in counts]
        ).astype(float)
        results[s] = item_distances(halves, counts - halves, metric, values).mean()
    return float(results.mean())
