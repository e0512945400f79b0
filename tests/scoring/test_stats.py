"""scoring.stats against scipy, numpy's eigen-decomposition and hand-worked examples."""

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from scoring.stats.alignment import alignment, counts_of, item_distances, noise_ceiling
from scoring.stats.distances import (
    distributions,
    js_distance,
    total_variation,
    wasserstein_ordinal,
)
from scoring.stats.likelihood import cohens_d, participant_nll, pseudo_r2, random_log_likelihood
from scoring.stats.pinocchio import item_pi, pinocchio
from scoring.stats.prediction import (
    individual_gain,
    item_mean_correlation,
    js_similarity,
    opinionqa_score,
)

RNG = np.random.default_rng(2024)
P = RNG.dirichlet(np.ones(5), size=40)
Q = RNG.dirichlet(np.ones(5) * 0.5, size=40)


# --- distances -----------------------------------------------------------------------------


def test_js_distance_equals_scipy():
    ours = js_distance(P, Q)
    theirs = [jensenshannon(p, q, base=2) for p, q in zip(P, Q, strict=True)]
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_wasserstein_equals_scipy_divided_by_the_range():
    points = np.array([1.0, 2.0, 4.0, 7.0, 11.0])  # unevenly spaced scale
    ours = wasserstein_ordinal(P, Q, points)
    theirs = [
        stats.wasserstein_distance(points, points, p, q) / 10.0 for p, q in zip(P, Q, strict=True)
    ]
    assert ours == pytest.approx(theirs, abs=1e-12)
    default = wasserstein_ordinal(P, Q)
    expected = [
        stats.wasserstein_distance(range(5), range(5), p, q) / 4 for p, q in zip(P, Q, strict=True)
    ]
    assert default == pytest.approx(expected, abs=1e-12)


def test_distances_by_hand():
    # p = (½, ½), q = (1, 0): M = (¾, ¼); KL(p‖M) = ½log2(⅔) + ½log2(2) = 0.207519,
    # KL(q‖M) = log2(4/3) = 0.415037; JS = 0.311278; distance = 0.557923.
    assert js_distance([0.5, 0.5], [1, 0]) == pytest.approx(0.557923, abs=1e-6)
    assert total_variation([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert wasserstein_ordinal([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    ends = ([1, 0, 0, 0, 0], [0, 0, 0, 0, 1])
    assert (js_distance(*ends), total_variation(*ends), wasserstein_ordinal(*ends)) == (1, 1, 1)
    same = ([3, 1, 0], [6, 2, 0])  # counts are normalised
    assert (js_distance(*same), total_variation(*same), wasserstein_ordinal(*same)) == (0, 0, 0)
    # Moving ½ of the mass one point on a 1…5 scale is ½ · 1 / 4 of the range.
    assert wasserstein_ordinal([0, 1, 0, 0, 0], [0, 0.5, 0.5, 0, 0]) == pytest.approx(0.125)


def test_bad_distributions_are_refused():
    with pytest.raises(ValueError, match="finite and non-negative"):
        distributions([[0.5, -0.1, 0.6]])
    with pytest.raises(ValueError, match=r"rows \[1\] have no mass"):
        distributions([[1, 0], [0, 0]])
    with pytest.raises(ValueError, match="shapes differ"):
        js_distance([[1, 0]], [[1, 0, 0]])
    with pytest.raises(ValueError, match="3 increasing scale points"):
        wasserstein_ordinal([1, 0, 0], [0, 0, 1], values=[1, 3, 2])


# --- alignment -----------------------------------------------------------------------------


def test_counts_of_answers():
    answers = np.array([[0, 2], [1, 2], [0, -1]])
    assert counts_of(answers, 3).tolist() == [[2, 1, 0], [0, 0, 2]]
    with pytest.raises(ValueError, match="option indexes 0…2 or -1"):
        counts_of(np.array([[3]]), 3)


def people(n=200, items=5, seed=7):
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.ones(5) * 2, size=items)
    answers = np.stack([rng.choice(5, size=n, p=row) for row in truth], axis=1)
    return answers, truth


def test_alignment_value_and_interval_agree_with_scipy_bootstrap():
    answers, truth = people()
    model = np.roll(truth, 1, axis=1)
    ours = alignment(answers, model, n_options=5, resamples=2000, seed=1)
    direct = js_distance(counts_of(answers, 5), model).mean()
    assert ours.value == pytest.approx(direct, abs=1e-12)

    def statistic(index):
        return js_distance(counts_of(answers[index.astype(int)], 5), model).mean()

    theirs = stats.bootstrap(
        (np.arange(len(answers)),),
        statistic,
        n_resamples=2000,
        method="percentile",
        vectorized=False,
        random_state=np.random.default_rng(2),
    ).confidence_interval
    width = theirs.high - theirs.low
    assert width > 0
    assert abs(ours.low - theirs.low) < 0.15 * width
    assert abs(ours.high - theirs.high) < 0.15 * width
    assert ours.low < ours.value < ours.high
    # The same seed gives the same interval.
    assert alignment(answers, model, n_options=5, resamples=2000, seed=1) == ours


def test_counts_resample_like_independent_people():
    answers, truth = people(n=300, items=6)
    model = truth[:, ::-1]
    by_person = alignment(answers, model, metric="tv", n_options=5, resamples=1500, seed=3)
    by_item = alignment(counts_of(answers, 5), model, metric="tv", resamples=1500, seed=4)
    assert by_item.value == pytest.approx(by_person.value, abs=1e-12)
    width = by_person.high - by_person.low
    assert abs(by_item.low - by_person.low) < 0.25 * width
    assert abs(by_item.high - by_person.high) < 0.25 * width


def test_sampled_models_widen_the_interval_and_identical_people_collapse_it():
    answers, truth = people()
    exact = alignment(answers, truth, metric="w1", n_options=5, resamples=800, seed=5)
    sampled = alignment(
        answers, truth, metric="w1", n_options=5, model_samples=10, resamples=800, seed=5
    )
    assert sampled.high - sampled.low > exact.high - exact.low
    same = np.zeros((50, 3), dtype=int)
    point = alignment(same, np.tile([1.0, 0, 0], (3, 1)), n_options=3, resamples=200)
    assert (point.value, point.low, point.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="unknown metric 'kl'"):
        item_distances([[1, 0]], [[1, 0]], "kl")


def test_noise_ceiling_matches_the_exact_hypergeometric_expectation():
    # Two options, k of n people chose the first. Half the people (n/2, without
    # replacement) hold X ~ Hypergeom(n, k, n/2) of them; TV between the halves is
    # |X − (k − X)| / (n/2). Its expectation, summed exactly:
    n, k = 40, 14
    support = np.arange(0, k + 1)
    pmf = stats.hypergeom(n, k, n // 2).pmf(support)
    exact = float((pmf * np.abs(2 * support - k) / (n / 2)).sum())
    ours = noise_ceiling([[k, n - k]], metric="tv", splits=6000, seed=8)
    assert ours == pytest.approx(exact, abs=0.01)


def test_noise_ceiling_by_people_and_by_counts_agree():
    answers, _ = people(n=120, items=8)
    by_person = noise_ceiling(answers, n_options=5, splits=400, seed=9)
    by_item = noise_ceiling(counts_of(answers, 5), splits=400, seed=10)
    assert by_item == pytest.approx(by_person, rel=0.1)
    assert noise_ceiling(np.zeros((10, 2), dtype=int), n_options=3) == 0.0
    with pytest.raises(ValueError, match="two people per item"):
        noise_ceiling([[1, 0]])


# --- prediction ----------------------------------------------------------------------------


def test_third_person_scores():
    assert opinionqa_score([[1, 0, 0]], [[0, 0, 1]]).tolist() == [0.0]
    assert opinionqa_score(P, P) == pytest.approx(np.ones(len(P)))
    assert js_similarity(P, Q) == pytest.approx(
        [1 - jensenshannon(p, q, base=2) for p, q in zip(P, Q, strict=True)], abs=1e-12
    )
    means_p, means_q = P @ np.arange(1, 6), Q @ np.arange(1, 6)
    assert item_mean_correlation(P, Q) == pytest.approx(np.corrcoef(means_p, means_q)[0, 1])
    with pytest.raises(ValueError, match="at least three items"):
        item_mean_correlation(P[:2], Q[:2])


def test_individual_gain_by_hand():
    # mean(ln(.5/.25), ln(.9/.5)) = mean(0.693147, 0.587787) = 0.640467
    gain = individual_gain([[0.5, 0.5], [0.9, 0.1]], [[0.25, 0.75], [0.5, 0.5]], [0, 0])
    assert gain == pytest.approx(0.640467, abs=1e-6)
    assert individual_gain([[0, 1]], [[0.5, 0.5]], [0]) == -math.inf


# --- likelihood ----------------------------------------------------------------------------


def test_likelihood_measures_by_hand():
    assert participant_nll([-0.5, -1.25]) == 1.75
    # Two binary choices and one out of four: ln 2 + ln 2 + ln 4 = 2.772589.
    assert random_log_likelihood([2, 2, 4]) == pytest.approx(-2.772589, abs=1e-6)
    assert pseudo_r2(-1.386294, -2.772589) == pytest.approx(0.5, abs=1e-6)
    assert pseudo_r2(-2.772589, -2.772589) == 0.0
    # post (2, 4, 6): mean 4, var 4; base (1, 2, 3): mean 2, var 1; d = 2 / sqrt(2.5).
    assert cohens_d([2, 4, 6], [1, 2, 3]) == pytest.approx(2 / math.sqrt(2.5))
    with pytest.raises(ValueError, match="must be negative"):
        pseudo_r2(-1.0, 0.0)
    with pytest.raises(ValueError, match="at least two values"):
        cohens_d([1], [1, 2])


# --- Π ------------------------------------------------------------------------------------


def test_pinocchio_equals_the_top_eigenvector_of_the_correlation_matrix():
    rng = np.random.default_rng(11)
    latent = rng.normal(size=12)
    scores = np.outer(latent, [1.0, 0.8, -0.6, 0.5]) + rng.normal(scale=0.4, size=(12, 4))
    result = pinocchio(scores)
    eigenvalues, eigenvectors = np.linalg.eigh(np.corrcoef(scores, rowvar=False))
    top = eigenvectors[:, -1] * np.sign(eigenvectors[:, -1].sum())
    assert result.loadings == pytest.approx(top, abs=1e-10)
    assert result.explained == pytest.approx(eigenvalues[-1] / eigenvalues.sum())
    z = (scores - scores.mean(axis=0)) / scores.std(axis=0, ddof=1)
    assert result.scores == pytest.approx(z @ top)
    flipped = pinocchio(scores, orient=2)
    assert flipped.loadings[2] > 0 and flipped.scores == pytest.approx(-result.scores)


def test_pinocchio_by_hand_and_refusals():
    # Two perfectly correlated scales: all the variance is on Π, loadings (1, 1)/√2.
    result = pinocchio([[1, 10], [2, 20], [3, 30]])
    assert result.explained == pytest.approx(1.0)
    assert result.loadings == pytest.approx([1 / math.sqrt(2)] * 2)
    assert result.scores == pytest.approx([-math.sqrt(2), 0, math.sqrt(2)])
    with pytest.raises(ValueError, match=r"scales \[1\] do not vary"):
        pinocchio([[1, 5], [2, 5]])
    with pytest.raises(ValueError, match="at least two models"):
        pinocchio([[1, 2]])


def test_item_pi_by_hand():
    # Neutral columns (1, 3) and (2, 2): variances 2 and 0; simulated (1, 2) and (1, 3): 0.5, 2.
    pi = item_pi([[1, 2], [3, 2]], [[1, 1], [2, 3]])
    assert pi.tolist() == [4.0, 0.0]
    assert np.isnan(item_pi([[1], [2]], [[3], [3]])[0])


def test_the_statistics_never_import_django():
    code = (
        "import sys, scoring.stats.alignment, scoring.stats.prediction, "
        "scoring.stats.pinocchio, scoring.stats.likelihood; "
        "assert 'django' not in sys.modules, 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
