"""Population reference, bias-corrected distances and effective sample sizes, checked against
exact binomial sums and by simulation (a known true distance is covered at the nominal rate)."""

import numpy as np
import pytest
from scipy import stats

from scoring.stats.alignment import alignment, multinomial, split_half_distance
from scoring.stats.distances import js_distance, total_variation
from scoring.stats.reference import corrected_alignment, population_reference


def expected_tv_of_binomial(n: int, b: float) -> float:
    """E|X/n − b| for X ~ Binomial(n, b): TV of two options, summed exactly."""
    x = np.arange(n + 1)
    return float((stats.binom(n, b).pmf(x) * np.abs(x / n - b)).sum())


def test_multinomial_chain_has_the_multinomial_moments():
    rng = np.random.default_rng(0)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    draws = multinomial(rng, 50, p, size=(40_000,))
    assert (draws.sum(axis=1) == 50).all()
    assert draws.mean(axis=0) == pytest.approx(50 * p, rel=0.01)
    cov = np.cov(draws.T)
    assert cov == pytest.approx(50 * (np.diag(p) - np.outer(p, p)), abs=0.15)


def test_population_reference_equals_the_exact_binomial_expectation():
    # Two options, 30 of 80 chose the first: a perfect model says (30/80, 50/80).
    counts = [[30, 50], [10, 70]]
    ref = population_reference(counts, metric="tv", replicates=40_000, seed=1)
    exact = [expected_tv_of_binomial(80, 30 / 80), expected_tv_of_binomial(80, 10 / 80)]
    assert ref.per_item == pytest.approx(exact, abs=0.002)
    assert ref.value == pytest.approx(np.mean(exact), abs=0.002)
    assert ref.low < ref.value < ref.high


def test_split_half_is_about_twice_the_population_reference():
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(5) * 2, size=20)
    answers = np.stack([rng.choice(5, size=400, p=p) for p in probs], axis=1)
    ref = population_reference(answers, n_options=5, replicates=400, seed=3).value
    split = split_half_distance(answers, n_options=5, splits=400, seed=4)
    assert split / ref == pytest.approx(2.0, rel=0.1)


def test_effective_n_resamples_each_item_with_its_own_size():
    # choices13k style: a B-rate with an effective n that is not a whole count of people.
    rates = np.array([[0.6, 0.4], [0.25, 0.75]])
    item_n = [12.4, 60.0]
    ref = population_reference(rates, metric="tv", item_n=item_n, replicates=40_000, seed=5)
    exact = [expected_tv_of_binomial(12, 0.6), expected_tv_of_binomial(60, 0.25)]
    assert ref.per_item == pytest.approx(exact, abs=0.002)
    model = [[0.5, 0.5], [0.5, 0.5]]
    people = {"resample_items": False}
    small = alignment(rates, model, metric="tv", item_n=[10, 10], resamples=3000, seed=6, **people)
    large = alignment(
        rates, model, metric="tv", item_n=[1000, 1000], resamples=3000, seed=6, **people
    )
    assert small.value == large.value == pytest.approx((0.1 + 0.25) / 2)
    # Interval width shrinks like 1/sqrt(n): 10× the width for 100× fewer people.
    ratio = (small.high - small.low) / (large.high - large.low)
    assert ratio == pytest.approx(10, rel=0.25)
    with pytest.raises(ValueError, match="whole, non-negative"):
        alignment(rates, model, metric="tv")
    with pytest.raises(ValueError, match=r"items \[1\] have item_n <= 0"):
        alignment(rates, model, item_n=[3, 0])
    with pytest.raises(ValueError, match="one size per item"):
        population_reference(rates, item_n=[3])


def coverage(metric, probs, model, n, *, replicates, resamples, grid, seed, item_n=None):
    """Share of simulated studies whose calibrated interval holds the true distance."""
    truth = float(np.mean({"js": js_distance, "tv": total_variation}[metric](probs, model)))
    rng = np.random.default_rng(seed)
    hits, estimates, raw = 0, [], []
    for r in range(replicates):
        counts = np.stack([rng.multinomial(n, p) for p in probs])
        human = counts / n if item_n is not None else counts
        result = corrected_alignment(
            human, model, metric=metric, item_n=item_n, resamples=resamples, grid=grid, seed=r
        )
        hits += result.low <= truth <= result.high
        estimates.append(result.corrected)
        raw.append(result.value)
    return truth, hits / replicates, np.mean(estimates), np.mean(raw)


def tolerance(replicates: int, rate: float = 0.95) -> float:
    """Three binomial standard errors of a coverage rate."""
    return 3 * np.sqrt(rate * (1 - rate) / replicates)


def test_calibrated_interval_covers_a_distance_below_the_noise_at_the_nominal_rate():
    # Ten two-option items, 60 people each (given as rates with an effective n): the
    # true TV (about 0.03) is well below the population reference (about 0.05).
    rng = np.random.default_rng(11)
    b = rng.uniform(0.2, 0.8, size=10)
    probs = np.stack([1 - b, b], axis=1)
    shifted = np.clip(b + rng.choice([-0.03, 0.03], size=10), 0, 1)
    model = np.stack([1 - shifted, shifted], axis=1)
    ref = population_reference(probs, item_n=[60] * 10, metric="tv", replicates=2000, seed=1).value
    truth, rate, corrected, raw = coverage(
        "tv", probs, model, 60, replicates=200, resamples=100, grid=10, seed=3, item_n=[60] * 10
    )
    assert truth < ref
    assert abs(rate - 0.95) <= tolerance(200)
    # The raw mean distance is biased upward by about the reference; the corrected is not.
    assert raw - truth > 0.3 * ref
    assert abs(corrected - truth) < 0.25 * (raw - truth)


def test_calibrated_interval_covers_js_on_four_options():
    rng = np.random.default_rng(12)
    probs = rng.dirichlet(np.ones(4) * 3, size=6)
    model = probs * np.exp(rng.normal(0, 0.3, size=probs.shape))
    model /= model.sum(axis=1, keepdims=True)
    truth, rate, corrected, raw = coverage(
        "js", probs, model, 100, replicates=150, resamples=80, grid=10, seed=4
    )
    assert abs(rate - 0.95) <= tolerance(150)
    assert abs(corrected - truth) < 0.25 * (raw - truth)


def test_calibrated_interval_holds_a_perfect_model_at_the_floor():
    probs = np.array([[0.3, 0.7], [0.5, 0.5], [0.8, 0.2], [0.6, 0.4]])
    truth, rate, corrected, raw = coverage(
        "tv", probs, probs, 50, replicates=200, resamples=80, grid=10, seed=5
    )
    assert truth == 0.0
    assert rate >= 0.95 - tolerance(200)
    assert corrected < 0.6 * raw


def test_corrected_alignment_is_seeded_and_checks_its_input():
    counts = [[30, 50, 20], [10, 70, 20]]
    model = [[0.2, 0.5, 0.3], [0.3, 0.3, 0.4]]
    one = corrected_alignment(counts, model, resamples=100, grid=11, seed=3)
    assert one == corrected_alignment(counts, model, resamples=100, grid=11, seed=3)
    assert one.value == pytest.approx(float(np.mean(js_distance(counts, model))))
    assert 0 <= one.low <= one.corrected <= one.high
    assert one.corrected < one.value
    with pytest.raises(ValueError, match=r"model \(1, 3\) and human \(2, 3\) differ"):
        corrected_alignment(counts, [[1, 0, 0]])


def test_several_metrics_share_resamples_and_equal_single_calls():
    rng = np.random.default_rng(9)
    answers = rng.integers(0, 4, size=(60, 5))
    model = rng.dirichlet(np.ones(4), size=5)
    kw = {"n_options": 4, "resamples": 300, "seed": 2, "values": [1, 2, 3, 4]}
    both = alignment(answers, model, metric=["js", "w1"], **kw)
    assert both["js"] == alignment(answers, model, metric="js", **kw)
    assert both["w1"] == alignment(answers, model, metric="w1", **kw)
