"""Scale scores against published norms: z, normal percentile, pooled groups, expected
scale scores of answer distributions. Checked by hand and against numpy/scipy."""

import math

import numpy as np
import pytest
from scipy import stats

from scoring.stats.scales import expected_scale_score, norm_position, pooled_norm


def test_norm_position_by_hand():
    # BFI neuroticism norm in PsychoBench: 3.32 ± 0.82. A score of 4.96 is 1.64 / 0.82 = 2 SD.
    where = norm_position(4.96, 3.32, 0.82)
    assert where.z == pytest.approx(2.0, abs=1e-12)
    # Φ(2) = 0.977249868 (standard normal table)
    assert where.percentile == pytest.approx(97.7249868, abs=1e-6)
    below = norm_position(2.5, 3.32, 0.82)
    assert below.z == pytest.approx(-1.0, abs=1e-12)
    assert below.percentile == pytest.approx(100 * 0.5 * (1 + math.erf(-1 / math.sqrt(2))))


def test_norm_position_refuses_a_non_positive_sd():
    with pytest.raises(ValueError, match="SD must be positive"):
        norm_position(3.0, 3.0, 0.0)


def test_pooled_norm_equals_the_statistics_of_the_pooled_scores():
    rng = np.random.default_rng(7)
    groups = [rng.normal(10, 5, 693), rng.normal(12, 4, 878), rng.normal(8, 6, 31)]
    means = [g.mean() for g in groups]
    sds = [g.std(ddof=1) for g in groups]
    mean, sd, n = pooled_norm(means, sds, [len(g) for g in groups])
    everyone = np.concatenate(groups)
    assert n == len(everyone) == 1602
    assert mean == pytest.approx(everyone.mean(), rel=1e-12)
    assert sd == pytest.approx(everyone.std(ddof=1), rel=1e-12)


def test_pooled_norm_by_hand():
    # {1, 3} and {5, 7}: means 2 and 6, SD √2 each; pooled {1, 3, 5, 7}: mean 4, SD √(20/3).
    mean, sd, n = pooled_norm([2, 6], [math.sqrt(2), math.sqrt(2)], [2, 2])
    assert (mean, n) == (4.0, 4)
    assert sd == pytest.approx(math.sqrt(20 / 3), rel=1e-12)
    with pytest.raises(ValueError, match="n ≥ 2"):
        pooled_norm([1, 2], [1, 1], [1, 5])


def test_expected_scale_score_by_hand():
    probs = [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]
    # E1 = 0.2 + 0.6 + 1.5 = 2.3; E2 = 0.1 + 0.2 + 2.4 = 2.7, reversed 1 + 3 − 2.7 = 1.3
    mean = expected_scale_score(probs, [1, 2, 3], [False, True], low=1, high=3)
    total = expected_scale_score(probs, [1, 2, 3], [False, True], low=1, high=3, statistic="sum")
    assert mean == pytest.approx(1.8, abs=1e-12)
    assert total == pytest.approx(3.6, abs=1e-12)


def test_expected_scale_score_of_one_hot_answers_is_the_classic_scale_score():
    # Each person's answers as certain distributions give their ordinary keyed mean.
    from scoring.stats.scales import scale_scores

    answers = np.array([[1, 5, 4, 2], [3, 3, 5, 1]])
    reverse = [False, True, False, True]
    keys = {"S": [(c, -1 if r else 1) for c, r in enumerate(reverse)]}
    classic = scale_scores(answers, keys, low=1, high=5)["S"]
    for row, expected in zip(answers, classic, strict=True):
        one_hot = np.eye(5)[row - 1]
        got = expected_scale_score(one_hot, [1, 2, 3, 4, 5], reverse, low=1, high=5)
        assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([[0.5, 0.5]], [1, 2, 3], [False]), r"\(items, options\)"),
        (([[0.5, 0.4, 0.0]], [1, 2, 3], [False]), "sum to 1"),
    ],
)
def test_expected_scale_score_refuses_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        expected_scale_score(*args, low=1, high=3)
    with pytest.raises(ValueError, match="statistic"):
        expected_scale_score([[1.0, 0, 0]], [1, 2, 3], [False], low=1, high=3, statistic="median")


def test_normal_percentile_matches_scipy_over_a_range():
    for z in np.linspace(-3, 3, 13):
        assert norm_position(3 + 0.5 * z, 3, 0.5).percentile == pytest.approx(
            100 * stats.norm.cdf(z), abs=1e-9
        )
