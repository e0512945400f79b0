"""scoring.stats against scipy, numpy's eigen-decomposition and hand-worked examples."""

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from scoring.stats.alignment import alignment, counts_of, item_distances, split_half_distance
from scoring.stats.distances import (
    distributions,
    js_distance,
    total_variation,
    wasserstein_ordinal,
)
from scoring.stats.inference import (
    cogbench_normalise,
    cohens_d_interval,
    correlation,
    paired_difference,
    trend,
)
from scoring.stats.likelihood import cohens_d, participant_nll, pseudo_r2, random_log_likelihood
from scoring.stats.pinocchio import item_pi, pinocchio
from scoring.stats.prediction import (
    cluster_mean_interval,
    gain_bits,
    individual_gain,
    item_mean_correlation,
    js_similarity,
    leave_one_out,
    opinionqa_score,
)
from scoring.stats.scales import position, scale_scores
from tests.shared_data import shared_file

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


def test_distances_broadcast_over_resamples_and_mark_empty_distributions():
    stack = np.stack([P[:4], Q[:4], P[4:8]])  # (3 resamples, 4 items, 5 options)
    for fn in (js_distance, total_variation, wasserstein_ordinal):
        out = fn(stack, Q[:4][None])
        assert out.shape == (3, 4)
        assert out[1] == pytest.approx(np.zeros(4), abs=1e-7)
        assert out[2] == pytest.approx(fn(P[4:8], Q[:4]))
        empty = fn([[0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], Q[:2], checked=False)
        assert np.isnan(empty[0]) and not np.isnan(empty[1])


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
    ours = alignment(answers, model, n_options=5, resample_items=False, resamples=2000, seed=1)
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
    assert (
        alignment(answers, model, n_options=5, resample_items=False, resamples=2000, seed=1) == ours
    )


def naive_two_level_bootstrap(answers, model, resamples, seed):
    """The obvious loop: resample participants, then items, recount, measure, average."""
    rng = np.random.default_rng(seed)
    n, items = answers.shape
    draws = []
    for _ in range(resamples):
        people_idx = rng.integers(0, n, n)
        item_idx = rng.integers(0, items, items)
        sample = answers[people_idx]
        d = [
            jensenshannon(np.bincount(sample[:, i], minlength=5), model[i], base=2)
            for i in item_idx
        ]
        draws.append(np.mean(d))
    return np.percentile(draws, [2.5, 97.5])


def test_resampling_people_and_items_agrees_with_the_obvious_loop():
    answers, truth = people(n=150, items=8)
    model = np.roll(truth, 1, axis=1)
    ours = alignment(answers, model, n_options=5, resamples=1500, seed=12)
    low, high = naive_two_level_bootstrap(answers, model, 1500, seed=13)
    width = high - low
    assert abs(ours.low - low) < 0.15 * width and abs(ours.high - high) < 0.15 * width
    people_only = alignment(answers, model, n_options=5, resample_items=False, resamples=1500)
    assert people_only.high - people_only.low < 0.8 * (ours.high - ours.low)


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
    with pytest.raises(ValueError, match=r"items \[1\] have no human answers"):
        alignment(np.array([[0, -1], [1, -1]]), [[1, 0], [1, 0]], n_options=2)
    with pytest.raises(ValueError, match=r"model \(1, 2\) and human \(2, 2\) differ"):
        alignment([[3, 1], [2, 2]], [[1, 0]])
    with pytest.raises(ValueError, match="whole, non-negative"):
        alignment([[0.5, 1]], [[1, 0]])
    with pytest.raises(ValueError, match="unknown metric 'kl'"):
        item_distances([[1, 0]], [[1, 0]], "kl")


def test_split_half_distance_matches_the_exact_hypergeometric_expectation():
    # Two options, k of n people chose the first. Half the people (n/2, without
    # replacement) hold X ~ Hypergeom(n, k, n/2) of them; TV between the halves is
    # |X − (k − X)| / (n/2). Its expectation, summed exactly:
    n, k = 40, 14
    support = np.arange(0, k + 1)
    pmf = stats.hypergeom(n, k, n // 2).pmf(support)
    exact = float((pmf * np.abs(2 * support - k) / (n / 2)).sum())
    ours = split_half_distance([[k, n - k]], metric="tv", splits=6000, seed=8)
    assert ours == pytest.approx(exact, abs=0.01)


def test_split_half_distance_by_people_and_by_counts_agree():
    answers, _ = people(n=120, items=8)
    by_person = split_half_distance(answers, n_options=5, splits=400, seed=9)
    by_item = split_half_distance(counts_of(answers, 5), splits=400, seed=10)
    assert by_item == pytest.approx(by_person, rel=0.1)
    assert split_half_distance(np.zeros((10, 2), dtype=int), n_options=3) == 0.0
    with pytest.raises(ValueError, match="two people per item"):
        split_half_distance([[1, 0]])


# --- prediction ----------------------------------------------------------------------------


def test_third_person_scores():
    assert opinionqa_score([[1, 0, 0]], [[0, 0, 1]]).tolist() == [0.0]
    assert opinionqa_score(P, P) == pytest.approx(np.ones(len(P)))
    assert js_similarity(P, Q) == pytest.approx(
        [1 - jensenshannon(p, q, base=2) for p, q in zip(P, Q, strict=True)], abs=1e-12
    )
    means_p, means_q = P @ np.arange(1, 6), Q @ np.arange(1, 6)
    assert item_mean_correlation(P, Q) == pytest.approx(np.corrcoef(means_p, means_q)[0, 1])
    assert item_mean_correlation(P, Q, method="spearman") == pytest.approx(
        stats.spearmanr(means_p, means_q).statistic
    )
    with pytest.raises(ValueError, match="at least three items"):
        item_mean_correlation(P[:2], Q[:2])


def test_individual_gain_by_hand():
    # mean(log2(.5/.25), log2(.9/.5)) = mean(1, 0.847997) = 0.923998 bits per answer
    gain = individual_gain([[0.5, 0.5], [0.9, 0.1]], [[0.25, 0.75], [0.5, 0.5]], [0, 0])
    assert gain == pytest.approx(0.923998, abs=1e-6)
    assert individual_gain([[0, 1]], [[0.5, 0.5]], [0]) == -math.inf


def test_leave_one_out_population_and_gain_in_bits_by_hand():
    # Item 0 was answered (4, 1, 0) by five people, item 1 (2, 2) by four (a 2-option item
    # padded to 3 columns). Without the person, one added to each real option:
    #   person answering option 0 of item 0: (3+1, 1+1, 0+1) / 7 = (4/7, 2/7, 1/7)
    #   person answering option 1 of item 1: (2+1, 1+1) / 5 = (3/5, 2/5)
    counts = [[4, 1, 0], [2, 2, 0]]
    q = leave_one_out(counts, items=[0, 1], answers=[0, 1], widths=[3, 2])
    assert q == pytest.approx(np.array([[4 / 7, 2 / 7, 1 / 7], [3 / 5, 2 / 5, 0]]))
    with pytest.raises(ValueError, match="not counted"):
        leave_one_out(counts, items=[0], answers=[2])
    # Predictions (0.8, 0.1, 0.1) and (0.5, 0.5, 0): log2(0.8 / (4/7)) = log2(1.4) = 0.485427
    # and log2(0.5 / 0.4) = log2(1.25) = 0.321928 bits.
    gains = gain_bits([[0.8, 0.1, 0.1], [0.5, 0.5, 0]], q, [0, 1])
    assert gains == pytest.approx([0.485427, 0.321928], abs=1e-6)


def test_cluster_interval_resamples_whole_people_by_hand():
    # Person A: gains 1 and 3 (mean 2); person B: one gain of 8. Overall mean (1+3+8)/3 = 4.
    # A draw of two people is AA (mean 2), BB (8) or AB/BA ((1+3+8)/3 = 4), with chances
    # 1/4, 1/4 and 1/2: the 95% percentile interval is [2, 8] for any large number of draws.
    value, low, high = cluster_mean_interval([1, 3, 8], ["A", "A", "B"], resamples=4000, seed=5)
    assert (value, low, high) == (4.0, 2.0, 8.0)
    # A 40% interval (30th and 70th percentiles) falls inside the half of the draws at 4.
    _, low, high = cluster_mean_interval([1, 3, 8], ["A", "A", "B"], 4000, confidence=0.4)
    assert (low, high) == (4.0, 4.0)
    with pytest.raises(ValueError, match="one cluster per value"):
        cluster_mean_interval([1, 2], ["A"])


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
    # A scale keyed against Π (emotional stability for neuroticism) loads negatively.
    against = pinocchio(scores, orient=2, orient_sign=-1)
    assert against.loadings[2] < 0 and against.scores == pytest.approx(result.scores)
    with pytest.raises(ValueError, match="orient_sign"):
        pinocchio(scores, orient=2, orient_sign=0)


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


def test_pinocchio_against_human_norms_is_the_top_eigenvector_of_their_covariance():
    rng = np.random.default_rng(21)
    scores = rng.normal(size=(9, 3)) * [1.0, 2.0, 0.5] + [3.0, 3.5, 2.5]
    means, sds = np.array([3.0, 3.2, 2.9]), np.array([0.7, 0.8, 0.6])
    result = pinocchio(scores, norms=(means, sds))
    z = (scores - means) / sds
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(z, rowvar=False))
    top = eigenvectors[:, -1] * np.sign(eigenvectors[:, -1].sum())
    assert result.loadings == pytest.approx(top, abs=1e-10)
    assert result.explained == pytest.approx(eigenvalues[-1] / eigenvalues.sum())
    assert result.scores == pytest.approx(z @ top)  # 0 = the human mean
    with pytest.raises(ValueError, match="positive SD for every scale"):
        pinocchio(scores, norms=(means, [1, 0, 1]))


# --- scales and intervals ------------------------------------------------------------------


def test_scale_scores_reverse_keys_and_missing_answers_by_hand():
    answers = [[5, 1, 4, np.nan], [2, np.nan, np.nan, np.nan]]
    keys = {"E": [(0, 1), (1, -1)], "N": [(2, 1), (3, -1)]}
    out = scale_scores(answers, keys, low=1, high=5)
    # Respondent 1: E = (5 + (6 − 1)) / 2 = 5; N = 4 from one of two items (enough).
    # Respondent 2: E = 2 from one item; N has no answer: nan.
    assert out["E"].tolist() == [5.0, 2.0]
    assert out["N"][0] == 4.0 and np.isnan(out["N"][1])
    strict = scale_scores(answers, keys, low=1, high=5, min_answered=1.0)
    assert np.isnan(strict["N"][0]) and strict["E"][0] == 5.0
    with pytest.raises(ValueError, match="between 1 and 5"):
        scale_scores([[0, 1]], keys={"E": [(0, 1)]}, low=1, high=5)
    with pytest.raises(ValueError, match="must be \\+1 or -1"):
        scale_scores([[1, 1]], keys={"E": [(0, 2)]}, low=1, high=5)


def test_position_by_hand():
    # Among 1, 2, 3, 4 a score of 3: below 2 of 4, at or below 3 of 4: (50 + 75) / 2.
    where = position(3, [1, 2, 3, 4, np.nan])
    assert where.percentile == 62.5
    assert where.z == pytest.approx((3 - 2.5) / np.std([1, 2, 3, 4], ddof=1))


def test_trend_and_paired_difference_by_hand():
    # slope 5.5 / 5 = 1.1; SSE 2.7, s² 1.35, SE sqrt(1.35 / 5) = 0.519615; t(.975, 2) = 4.302653
    fit = trend([0, 1, 2, 3], [1, 3, 2, 5])
    assert fit.value == pytest.approx(1.1)
    assert (fit.low, fit.high) == pytest.approx((1.1 - 2.235726, 1.1 + 2.235726), abs=1e-5)
    # differences 2, 3, 4: mean 3, SD 1, SE 1/√3; half width 4.302653 / √3 = 2.484138
    pair = paired_difference([3, 5, 7], [1, 2, 3])
    assert (pair.value, pair.n) == (3.0, 3)
    assert (pair.low, pair.high) == pytest.approx((3 - 2.484138, 3 + 2.484138), abs=1e-5)


def test_correlation_interval_equals_scipy_fisher_interval():
    x, y = P[:12, 0], Q[:12, 0] + P[:12, 0]
    ours = correlation(x, y)
    theirs = stats.pearsonr(x, y)
    ci = theirs.confidence_interval(0.95)
    assert (ours.value, ours.low, ours.high) == pytest.approx(
        (theirs.statistic, ci.low, ci.high), abs=1e-10
    )
    assert ours.n == 12
    rank = correlation(x, y, method="spearman")
    assert rank.value == pytest.approx(stats.spearmanr(x, y).statistic)
    assert rank.low < rank.value < rank.high
    with pytest.raises(ValueError, match="at least four models"):
        correlation([1, 2, 3], [1, 2, 3])


def test_cohens_d_interval_by_hand():
    # d = 2 / √2.5 = 1.264911; SE = sqrt(6/9 + 1.6/12) = sqrt(0.8) = 0.894427
    d = cohens_d_interval([2, 4, 6], [1, 2, 3])
    assert d.value == pytest.approx(1.264911, abs=1e-6)
    half = 1.959964 * 0.894427
    assert (d.low, d.high) == pytest.approx((1.264911 - half, 1.264911 + half), abs=1e-5)


@pytest.mark.shared_data
def test_cogbench_normalisation_reproduces_the_published_centaur_table():
    """Cells the Centaur paper took over from CogBench unchanged, to 1e-6.

    CogBench raw scores normalised against its own human and random agents; the other
    cells of the Centaur table come from re-runs and differ.
    """
    raw = pd.read_csv(shared_file("cogbench", "performance.csv"), index_col=0).set_index("Agent")
    published = pd.read_csv(
        shared_file("centaur_results", "cogbench_performance_human_normalised.csv"), index_col=0
    ).set_index("Agent")
    published_cells = [
        ("gpt-4", "GPT-4", "Horizon Task"),
        ("text-davinci-003", "GPT-3.5", "Horizon Task"),
        ("claude-2", "Claude 2", "Horizon Task"),
        ("gpt-4", "GPT-4", "BART"),
        ("text-davinci-003", "GPT-3.5", "BART"),
        ("claude-1", "Claude 1", "BART"),
        ("claude-2", "Claude 2", "BART"),
    ]
    for ours, theirs, metric in published_cells:
        value = cogbench_normalise(
            raw.loc[ours, metric], raw.loc["human", metric], raw.loc["random", metric]
        )
        assert value == pytest.approx(published.loc[theirs, metric], abs=1e-6)
    assert cogbench_normalise(raw.loc["human"].iloc[:3], raw.loc["human"].iloc[:3], 0) == (
        pytest.approx([1, 1, 1])
    )
    with pytest.raises(ValueError, match="nothing to normalise by"):
        cogbench_normalise(1.0, 2.0, 2.0)
