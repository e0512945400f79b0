"""First-person alignment: how far a model's answers are from people's, with uncertainty.

Human data come in two shapes, and every function takes either:

- answers: an ``(participants, items)`` integer array of option indexes, ``-1`` for
  missing (individual data, e.g. a questionnaire's respondents);
- counts: an ``(items, options)`` array of how many people chose each option (item-level
  data, e.g. choices13k).

Uncertainty comes from resampling people: whole participants (with replacement) for
answers, each item's counts (multinomially) for counts; the items are resampled too, so
the interval covers the choice of items. Resamples are matrix products (a resample of
participants is a weight vector times a one-hot answer matrix), a chunk at a time. The
noise ceiling is the same distance between two random halves of the people: a model
cannot be expected to be closer to the humans than they are to each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.stats.distances import DISTANCES, distributions


def one_hot(answers, n_options: int) -> np.ndarray:
    """``(participants, items × options)`` float32 indicators of an answers array.

    Raises:
        ValueError: not 2-D, or an answer outside ``-1 … n_options - 1``.
    """
    answers = np.asarray(answers)
    if answers.ndim != 2:
        raise ValueError(f"answers must be (participants, items), got shape {answers.shape}")
    if ((answers < -1) | (answers >= n_options)).any():
        raise ValueError(f"answers must be option indexes 0…{n_options - 1} or -1 (missing)")
    indicators = answers[:, :, None] == np.arange(n_options)  # -1 matches no option
    return indicators.reshape(len(answers), -1).astype(np.float32)


def counts_of(answers, n_options: int) -> np.ndarray:
    """Per-item option counts ``(items, options)`` of an answers array (``-1`` = missing)."""
    answers = np.asarray(answers)
    return one_hot(answers, n_options).sum(axis=0).reshape(-1, n_options).astype(float)


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap percentile interval."""

    value: float
    low: float
    high: float
    confidence: float
    resamples: int


def item_distances(human_counts, model, metric: str = "js", values=None, *, checked=True):
    """Distance per item (and resample) between human counts and model distributions."""
    if metric not in DISTANCES:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(DISTANCES)}")
    fn = DISTANCES[metric]
    args = (values,) if metric == "w1" else ()
    return np.asarray(fn(human_counts, model, *args, checked=checked))


class _People:
    """Human data of either shape, and how to resample or split it."""

    def __init__(self, human, n_options: int | None):
        if n_options is not None:
            self.onehot = one_hot(human, n_options)
            self.n, self.k = len(self.onehot), n_options
            self.counts = self.onehot.sum(axis=0).reshape(-1, n_options).astype(float)
        else:
            counts = np.atleast_2d(np.asarray(human, dtype=float))
            if (counts != np.round(counts)).any() or (counts < 0).any():
                raise ValueError("human counts must be whole, non-negative numbers")
            self.onehot, self.counts = None, counts
        empty = np.flatnonzero(self.counts.sum(axis=1) == 0).tolist()
        if empty:
            raise ValueError(f"items {empty} have no human answers")

    def chunk(self, size: int) -> int:
        """Resamples per chunk, so that one chunk holds about 20 million numbers."""
        width = self.n if self.onehot is not None else self.counts.size
        return max(1, min(size, 20_000_000 // max(width, self.counts.size)))

    def resample(self, b: int, rng) -> np.ndarray:
        """``b`` bootstrap resamples of the counts: ``(b, items, options)``."""
        if self.onehot is not None:
            weights = rng.multinomial(self.n, np.full(self.n, 1 / self.n), size=b)
            return (weights.astype(np.float32) @ self.onehot).reshape(b, -1, self.k)
        totals = self.counts.sum(axis=1).astype(np.int64)
        probs = self.counts / totals[:, None]
        return rng.multinomial(totals, probs, size=(b, len(totals))).astype(float)

    def halves(self, s: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """``s`` random splits into two halves: two ``(s, items, options)`` count arrays."""
        if self.onehot is not None:
            if self.n < 2:
                raise ValueError("a split half needs at least two participants")
            first = np.argsort(rng.random((s, self.n)), axis=1) < self.n // 2
            a = (first.astype(np.float32) @ self.onehot).reshape(s, -1, self.k)
        else:
            counts = self.counts.astype(np.int64)
            if (counts.sum(axis=1) < 2).any():
                raise ValueError("a split half needs at least two people per item")
            a = np.stack(
                [rng.multivariate_hypergeometric(row, row.sum() // 2, size=s) for row in counts],
                axis=1,
            ).astype(float)
        return a, self.counts[None] - a


def alignment(
    human,
    model,
    *,
    metric: str = "js",
    values=None,
    n_options: int | None = None,
    model_samples: int | None = None,
    resample_items: bool = True,
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
        resample_items: resample the items as well as the people.
        resamples: bootstrap resamples.
        confidence: interval coverage.
        seed: seeds the resampling (the same seed gives the same interval).

    Returns:
        The mean distance and its percentile interval.

    Raises:
        ValueError: shapes that do not match, an item without human answers, bad values.
    """
    rng = np.random.default_rng(seed)
    people = _People(human, n_options)
    model = distributions(np.atleast_2d(np.asarray(model, dtype=float)))
    if model.shape != people.counts.shape:
        raise ValueError(f"model {model.shape} and human {people.counts.shape} differ in shape")
    value = float(item_distances(people.counts, model, metric, values).mean())
    draws = []
    step = people.chunk(resamples)
    for start in range(0, resamples, step):
        b = min(step, resamples - start)
        model_b = model[None]
        if model_samples:
            model_b = rng.multinomial(model_samples, model, size=(b, len(model)))
        d = item_distances(people.resample(b, rng), model_b, metric, values, checked=False)
        if resample_items:
            d = np.take_along_axis(d, rng.integers(0, d.shape[1], size=d.shape), axis=1)
        draws.append(np.nanmean(d, axis=1))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(np.concatenate(draws), [tail, 100 - tail])
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
    An item left without answers in a half is skipped in that split.
    """
    rng = np.random.default_rng(seed)
    people = _People(human, n_options)
    results = []
    step = people.chunk(splits)
    for start in range(0, splits, step):
        a, b = people.halves(min(step, splits - start), rng)
        results.append(np.nanmean(item_distances(a, b, metric, values, checked=False), axis=1))
    return float(np.mean(np.concatenate(results)))
