"""The population reference, and a bias-corrected distance with a calibrated interval.

A distance between a sample of people and a model is biased upward: even a model that
*is* the human population is some way from a finite sample of it. Two quantities follow.

- `population_reference`: the expected mean distance of a model whose distribution per
  item is the human one (the observed proportions), measured against samples of the
  humans' size drawn from it (a parametric bootstrap). This is the score a perfect model
  gets at this sample size, and the floor a reader should compare a model with. (The
  split-half distance, `scoring.stats.alignment.split_half_distance`, is about twice as
  large, because each half holds half the people.)
- `corrected_alignment`: the observed mean distance, a bias-corrected estimate of the
  population distance and an interval that covers it at the nominal rate near the
  floor. They come from inverting a parametric bootstrap along the path
  p(λ) = (1 − λ)·q + λ·p̂ between the model q and the observed human proportions p̂: for
  each λ, samples of the humans' size are drawn from p(λ) and their mean distance to q
  computed; the estimate is the population distance D(p(λ), q) at the λ whose median
  simulated distance equals the observed one, and the interval's ends are the λ where
  the observed distance is the upper and the lower quantile. Near the floor, sampling
  noise alone explains the observed distance, and the estimate and lower end are 0.

Items are simulated independently, each with its own number of people (or effective n),
so for individual answers the calibration ignores correlations between items; the
person-level percentile interval of `scoring.stats.alignment.alignment` is still given
next to it in reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.stats.alignment import _People, draw_sizes, item_distances, multinomial
from scoring.stats.distances import distributions


@dataclass(frozen=True)
class Reference:
    """Expected mean distance of a model equal to the population, and its spread."""

    value: float
    low: float
    high: float
    per_item: np.ndarray
    replicates: int
    confidence: float


@dataclass(frozen=True)
class Corrected:
    """Observed mean distance, its bias-corrected estimate and calibrated interval."""

    value: float
    corrected: float
    low: float
    high: float
    confidence: float
    resamples: int


def _model_array(model, shape) -> np.ndarray:
    model = distributions(np.atleast_2d(np.asarray(model, dtype=float)))
    if model.shape != shape:
        raise ValueError(f"model {model.shape} and human {shape} differ in shape")
    return model


def population_reference(
    human,
    *,
    metric: str = "js",
    values=None,
    n_options: int | None = None,
    item_n=None,
    model_samples: int | None = None,
    replicates: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> Reference:
    """Expected distance of a model that is the human population, at this sample size.

    Args:
        human: answers ``(participants, items)`` (give ``n_options``) or counts
            ``(items, options)`` (with ``item_n`` for proportions with an effective n).
        metric: ``js``, ``tv`` or ``w1``.
        values: scale points for ``w1``.
        n_options: options per item, when ``human`` is answers.
        item_n: effective sample size per item for item-level data.
        model_samples: when the model's distributions are proportions of this many
            samples, the perfect model's are too (its own sampling noise adds distance).
        replicates: simulated samples.
        confidence: coverage of the band ``low…high`` of the simulated mean distance.
        seed: seeds the simulation.

    Returns:
        The mean over replicates of the mean distance over items, the band of that
        distance over replicates, and the expected distance per item.

    Raises:
        ValueError: bad human data (see `scoring.stats.alignment.alignment`).
    """
    rng = np.random.default_rng(seed)
    people = _People(human, n_options, item_n)
    p = distributions(people.counts)
    sizes = draw_sizes(people.sizes)
    means, per_item = [], np.zeros(len(p))
    step = max(1, min(replicates, 20_000_000 // p.size))
    for start in range(0, replicates, step):
        b = min(step, replicates - start)
        sample = multinomial(rng, sizes, p, size=(b, len(p)))
        model = multinomial(rng, model_samples, p, size=(b, len(p))) if model_samples else p[None]
        d = item_distances(sample, model, metric, values, checked=False)
        means.append(d.mean(axis=1))
        per_item += d.sum(axis=0)
    means = np.concatenate(means)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Reference(
        value=float(means.mean()),
        low=float(low),
        high=float(high),
        per_item=per_item / replicates,
        replicates=replicates,
        confidence=confidence,
    )


def _path(p_hat: np.ndarray, q: np.ndarray, lam) -> np.ndarray:
    """p(λ) = (1 − λ)·q + λ·p̂, clipped at 0 and renormalised when λ > 1."""
    mix = np.clip((1 - lam) * q + lam * p_hat, 0.0, None)
    return mix / mix.sum(axis=-1, keepdims=True)


def corrected_alignment(
    human,
    model,
    *,
    metric: str = "js",
    values=None,
    n_options: int | None = None,
    item_n=None,
    model_samples: int | None = None,
    resample_items: bool = False,
    resamples: int = 400,
    grid: int = 41,
    confidence: float = 0.95,
    seed: int = 0,
) -> Corrected:
    """Bias-corrected mean distance with an interval calibrated by simulation.

    Args:
        human: answers ``(participants, items)`` (give ``n_options``) or counts
            ``(items, options)`` (with ``item_n`` for proportions with an effective n).
        model: the model's distribution per item ``(items, options)``.
        metric: ``js``, ``tv`` or ``w1``.
        values: scale points for ``w1``.
        n_options: options per item, when ``human`` is answers.
        item_n: effective sample size per item for item-level data.
        model_samples: the model's distributions are proportions of this many samples;
            they are simulated too.
        resample_items: also resample the items for the interval (it then covers the
            choice of items as well); the estimate corrects for the people's sampling only.
        resamples: simulated samples per point of the path.
        grid: points of the path between λ = 0 and λ = 1.5 (more are added beyond when
            the observed distance is larger than the simulated ones).
        confidence: interval coverage.
        seed: seeds the simulation (the same seed gives the same numbers).

    Returns:
        The observed mean distance, the corrected estimate and the interval.

    Raises:
        ValueError: bad human data or shapes that do not match.
    """
    people = _People(human, n_options, item_n)
    p_hat = distributions(people.counts)
    q = _model_array(model, p_hat.shape)
    sizes = draw_sizes(people.sizes)
    observed = float(item_distances(p_hat, q, metric, values).mean())
    tail = (1 - confidence) / 2 * 100
    picks = np.random.default_rng(seed + 1).integers(0, len(q), size=(resamples, len(q)))

    def simulate(lambdas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Population distance and simulated quantiles at each λ, a chunk of λ per draw."""
        step = max(1, 8_000_000 // (resamples * q.size))
        parts = [chunk(lambdas[i : i + step]) for i in range(0, len(lambdas), step)]
        return np.concatenate([t for t, _ in parts]), np.concatenate([x for _, x in parts])

    def chunk(lambdas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = _path(p_hat[None], q[None], lambdas[:, None, None])  # (λ, items, options)
        truth = item_distances(p, q[None], metric, values, checked=False).mean(axis=1)
        rng = np.random.default_rng([seed, *np.round(lambdas * 1000).astype(int)])
        sample = multinomial(rng, sizes, p[:, None], size=(len(lambdas), resamples, len(q)))
        q_b = q
        if model_samples:
            q_b = multinomial(rng, model_samples, q, size=(len(lambdas), resamples, len(q)))
        d = item_distances(sample, q_b, metric, values, checked=False)
        means = np.nanmean(d, axis=2)  # (λ, resamples)
        spread = means
        if resample_items:
            # The estimate corrects for the people's sampling only; the interval's ends
            # also cover the choice of items.
            spread = np.nanmean(
                np.take_along_axis(d, np.broadcast_to(picks, d.shape), axis=2), axis=2
            )
        return truth, np.stack(
            [
                np.percentile(spread, tail, axis=1),
                np.percentile(means, 50, axis=1),
                np.percentile(spread, 100 - tail, axis=1),
            ],
            axis=1,
        )

    lambdas = np.linspace(0.0, 1.5, grid)
    truth, quantiles = simulate(lambdas)
    # Extend the path until the observed distance falls below its lower quantile.
    while quantiles[-1, 0] < observed and lambdas[-1] < 12:
        more = lambdas[-1] * np.array([1.5, 2.0])
        extra_truth, extra_q = simulate(more)
        lambdas = np.concatenate([lambdas, more])
        truth = np.concatenate([truth, extra_truth])
        quantiles = np.concatenate([quantiles, extra_q])
    truth = np.maximum.accumulate(truth)
    quantiles = np.maximum.accumulate(quantiles, axis=0)
    lower_q, median, upper_q = quantiles.T

    def invert(curve: np.ndarray) -> float:
        return float(np.interp(observed, curve, truth)) if observed > curve[0] else 0.0

    return Corrected(
        value=observed,
        corrected=invert(median),
        low=invert(upper_q),
        high=invert(lower_q),
        confidence=confidence,
        resamples=resamples,
    )
