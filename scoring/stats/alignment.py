"""First-person alignment: how far a model's answers are from people's, with uncertainty.

Human data come in two shapes, and every function takes either:

- answers: an ``(participants, items)`` integer array of option indexes, ``-1`` for
  missing (individual data, e.g. a questionnaire's respondents);
- counts: an ``(items, options)`` array of how many people chose each option (item-level
  data, e.g. choices13k).

Item-level data may carry an effective sample size per item (``item_n``): then the
counts are read as proportions and each item is resampled with its own size. choices13k
rows are means over people who each chose several times, so the unit that was sampled
is a person, and the number of independent choices with the same variance as the
between-person variance of the rate is the effective n.

Uncertainty comes from resampling people: whole participants (with replacement) for
answers, each item's counts (multinomially) for counts; the items are resampled too, so
the interval covers the choice of items. Resamples are matrix products (a resample of
participants is a weight vector times a one-hot answer matrix), a chunk at a time.

The percentile interval of `alignment` is biased upward near the floor (a distance
cannot be negative, and sampling noise always adds to it): `scoring.stats.reference`
gives the population reference and a bias-corrected estimate with a calibrated
interval. `split_half_distance` is the distance between two random halves of the
people; it is about twice the population reference (each half has half the people),
so it is not a bound on what a model can reach.
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


def multinomial(rng, n, p, size=None) -> np.ndarray:
    """Multinomial draws as a chain of vectorised binomials (faster than a row loop).

    Args:
        rng: a numpy Generator.
        n: draws per distribution, broadcast against ``p``'s leading axes.
        p: probabilities along the last axis (each row sums to 1).
        size: leading shape of the result without the options axis (default: ``p``'s).

    Returns:
        float counts of shape ``size + (options,)``.
    """
    p = np.asarray(p, dtype=float)
    shape = p.shape[:-1] if size is None else tuple(np.atleast_1d(size))
    left = np.broadcast_to(np.asarray(n, dtype=np.int64), shape).copy()
    rest = np.ones(shape)
    out = np.zeros((*shape, p.shape[-1]))
    for k in range(p.shape[-1] - 1):
        pk = np.broadcast_to(p[..., k], shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.clip(np.where(rest > 0, pk / rest, 0.0), 0.0, 1.0)
        out[..., k] = rng.binomial(left, share)
        left -= out[..., k].astype(np.int64)
        rest = rest - pk
    out[..., -1] = left
    return out


def draw_sizes(item_n) -> np.ndarray:
    """Whole numbers of draws for (possibly fractional) effective sample sizes, at least 1."""
    return np.maximum(np.rint(np.asarray(item_n, dtype=float)), 1).astype(np.int64)


class _People:
    """Human data of either shape, and how to resample or split it."""

    def __init__(self, human, n_options: int | None, item_n=None):
        self.item_n = None
        if n_options is not None:
            if item_n is not None:
                raise ValueError("item_n is for item-level data, not individual answers")
            self.onehot = one_hot(human, n_options)
            self.n, self.k = len(self.onehot), n_options
            self.counts = self.onehot.sum(axis=0).reshape(-1, n_options).astype(float)
        else:
            counts = np.atleast_2d(np.asarray(human, dtype=float))
            if not np.isfinite(counts).all() or (counts < 0).any():
                raise ValueError("human counts must be finite, non-negative numbers")
            if item_n is None and (counts != np.round(counts)).any():
                raise ValueError(
                    "human counts must be whole, non-negative numbers "
                    "(give item_n for proportions with an effective sample size)"
                )
            self.onehot, self.counts = None, counts
            if item_n is not None:
                sizes = np.asarray(item_n, dtype=float).reshape(-1)
                if sizes.shape != (len(counts),) or not np.isfinite(sizes).all():
                    raise ValueError(f"item_n must give one size per item ({len(counts)})")
                if (sizes <= 0).any():
                    raise ValueError(
                        f"items {np.flatnonzero(sizes <= 0).tolist()} have item_n <= 0"
                    )
                self.item_n = sizes
        empty = np.flatnonzero(self.counts.sum(axis=1) == 0).tolist()
        if empty:
            raise ValueError(f"items {empty} have no human answers")
        if self.item_n is not None:
            # Proportions scaled to the effective size: counts in the unit that was sampled.
            self.counts = (
                self.counts / self.counts.sum(axis=1, keepdims=True) * self.item_n[:, None]
            )

    @property
    def sizes(self) -> np.ndarray:
        """People (or effective n) per item."""
        return self.counts.sum(axis=1)

    def chunk(self, size: int) -> int:
        """Resamples per chunk, so that one chunk holds about 20 million numbers."""
        width = self.n if self.onehot is not None else self.counts.size
        return max(1, min(size, 20_000_000 // max(width, self.counts.size)))

    def resample(self, b: int, rng) -> np.ndarray:
        """``b`` bootstrap resamples of the counts: ``(b, items, options)``."""
        if self.onehot is not None:
            weights = rng.multinomial(self.n, np.full(self.n, 1 / self.n), size=b)
            return (weights.astype(np.float32) @ self.onehot).reshape(b, -1, self.k)
        totals = draw_sizes(self.sizes)
        probs = self.counts / self.counts.sum(axis=1, keepdims=True)
        return multinomial(rng, totals, probs, size=(b, len(totals)))

    def halves(self, s: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """``s`` random splits into two halves: two ``(s, items, options)`` count arrays."""
        if self.onehot is not None:
            if self.n < 2:
                raise ValueError("a split half needs at least two participants")
            first = np.argsort(rng.random((s, self.n)), axis=1) < self.n // 2
            a = (first.astype(np.float32) @ self.onehot).reshape(s, -1, self.k)
            return a, self.counts[None] - a
        # With an effective n, the halves are drawn from the rounded counts in that unit.
        counts = np.rint(self.counts).astype(np.int64)
        if (counts.sum(axis=1) < 2).any():
            raise ValueError("a split half needs at least two people per item")
        a = np.stack(
            [rng.multivariate_hypergeometric(row, row.sum() // 2, size=s) for row in counts],
            axis=1,
        ).astype(float)
        return a, counts[None] - a


def alignment(
    human,
    model,
    *,
    metric: str = "js",
    values=None,
    n_options: int | None = None,
    item_n=None,
    model_samples: int | None = None,
    resample_items: bool = True,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate | dict[str, Estimate]:
    """Mean distance over items between people and a model, with a bootstrap interval.

    Args:
        human: answers ``(participants, items)`` (give ``n_options``) or counts
            ``(items, options)``.
        model: the model's distribution per item ``(items, options)``.
        metric: ``js`` (Jensen–Shannon distance), ``tv`` (total variation) or ``w1``
            (Wasserstein-1 over the scale range, for ordinal items); or a list of them,
            measured on the same resamples (each as the single-metric call would give).
        values: scale points for ``w1``.
        n_options: options per item, when ``human`` is answers.
        item_n: effective sample size per item, when ``human`` is item-level counts or
            proportions that were not sampled as independent choices; each item is
            then resampled with its own size.
        model_samples: when the model's distributions are proportions of this many
            samples per item, they are resampled too; None for exact distributions.
        resample_items: resample the items as well as the people.
        resamples: bootstrap resamples.
        confidence: interval coverage.
        seed: seeds the resampling (the same seed gives the same interval).

    Returns:
        The mean distance and its percentile interval; a dict metric → that, for a list.

    Raises:
        ValueError: shapes that do not match, an item without human answers, bad values.
    """
    rng = np.random.default_rng(seed)
    people = _People(human, n_options, item_n)
    model = distributions(np.atleast_2d(np.asarray(model, dtype=float)))
    if model.shape != people.counts.shape:
        raise ValueError(f"model {model.shape} and human {people.counts.shape} differ in shape")
    metrics = [metric] if isinstance(metric, str) else list(metric)
    values_of = {m: float(item_distances(people.counts, model, m, values).mean()) for m in metrics}
    draws: dict[str, list] = {m: [] for m in metrics}
    step = people.chunk(resamples)
    for start in range(0, resamples, step):
        b = min(step, resamples - start)
        model_b = model[None]
        if model_samples:
            model_b = multinomial(rng, model_samples, model, size=(b, len(model)))
        counts = people.resample(b, rng)
        picks = None
        for m in metrics:
            d = item_distances(counts, model_b, m, values, checked=False)
            if resample_items:
                if picks is None:
                    picks = rng.integers(0, d.shape[1], size=d.shape)
                d = np.take_along_axis(d, picks, axis=1)
            draws[m].append(np.nanmean(d, axis=1))
    tail = (1 - confidence) / 2 * 100
    out = {}
    for m in metrics:
        low, high = np.percentile(np.concatenate(draws[m]), [tail, 100 - tail])
        out[m] = Estimate(values_of[m], float(low), float(high), confidence, resamples)
    return out[metric] if isinstance(metric, str) else out


def split_half_distance(
    human,
    *,
    metric: str = "js",
    values=None,
    n_options: int | None = None,
    item_n=None,
    splits: int = 200,
    seed: int = 0,
) -> float:
    """Mean distance over items between two random halves of the people (split-half).

    This is not the distance a perfect model would get: each half holds half the
    people, so it is about twice `scoring.stats.reference.population_reference`.
    Answers are split by participant; counts are split per item without replacement
    (multivariate hypergeometric), which is the same when people answer independently.
    An item left without answers in a half is skipped in that split.
    """
    rng = np.random.default_rng(seed)
    people = _People(human, n_options, item_n)
    results = []
    step = people.chunk(splits)
    for start in range(0, splits, step):
        a, b = people.halves(min(step, splits - start), rng)
        results.append(np.nanmean(item_distances(a, b, metric, values, checked=False), axis=1))
    return float(np.mean(np.concatenate(results)))
