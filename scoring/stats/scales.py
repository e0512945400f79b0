"""Questionnaire scale scores, and where a score falls among people's or against norms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def scale_scores(answers, keys: dict, *, low: float, high: float, min_answered: float = 0.5):
    """Mean keyed answer per scale for each respondent.

    Args:
        answers: ``(respondents, items)`` scale values (e.g. 1–5), nan where missing.
        keys: scale name → list of (item column, +1 or −1); −1 reverses the item
            (``low + high − answer``).
        low: the lowest scale point.
        high: the highest scale point.
        min_answered: share of a scale's items a respondent must have answered, else nan.

    Returns:
        ``{scale: (respondents,) array}`` of mean item scores on the ``low…high`` range.

    Raises:
        ValueError: a key sign other than ±1, or an answer outside ``low…high``.
    """
    x = np.atleast_2d(np.asarray(answers, dtype=float))
    present = ~np.isnan(x)
    if ((x[present] < low) | (x[present] > high)).any():
        raise ValueError(f"answers must lie between {low} and {high} (nan = missing)")
    out = {}
    for scale, keyed in keys.items():
        columns = [c for c, _ in keyed]
        signs = np.array([s for _, s in keyed], dtype=float)
        if not np.isin(signs, (-1, 1)).all():
            raise ValueError(f"scale {scale!r}: key signs must be +1 or -1")
        items = x[:, columns]
        items = np.where(signs > 0, items, low + high - items)
        answered = (~np.isnan(items)).sum(axis=1)
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(np.where(answered[:, None] > 0, items, 0), axis=1)
        out[scale] = np.where(answered >= min_answered * len(columns), mean, np.nan)
    return out


@dataclass(frozen=True)
class Position:
    """A score among people's: percentile (0–100, ties count half) and z."""

    percentile: float
    z: float


def position(score: float, human_scores) -> Position:
    """Where ``score`` falls in the human distribution (missing human scores ignored)."""
    humans = np.asarray(human_scores, dtype=float)
    humans = humans[~np.isnan(humans)]
    if len(humans) < 2:
        raise ValueError("need at least two human scores")
    return Position(
        percentile=float(stats.percentileofscore(humans, score, kind="mean")),
        z=float((score - humans.mean()) / humans.std(ddof=1)),
    )


def norm_position(score: float, mean: float, sd: float) -> Position:
    """Where ``score`` falls against published norms (mean and SD of people).

    The percentile assumes people's scores are normal: 100 · Φ(z). Raw-data datasets
    keep the exact empirical percentile (`position`).

    Raises:
        ValueError: an SD that is not positive.
    """
    if not sd > 0:
        raise ValueError(f"a norm's SD must be positive, got {sd}")
    z = (score - mean) / sd
    return Position(percentile=float(100 * stats.norm.cdf(z)), z=float(z))


def pooled_norm(means, sds, ns) -> tuple[float, float, int]:
    """One mean, SD (n − 1 denominator) and n from the norms of disjoint groups.

    The same numbers the pooled raw scores would give: the grand mean weighted by n, and
    the within-group plus between-group sums of squares over N − 1.

    Raises:
        ValueError: arrays of different lengths, an n below 2 or an SD below 0.
    """
    m, s, n = (np.asarray(v, dtype=float) for v in (means, sds, ns))
    if not (m.shape == s.shape == n.shape) or m.ndim != 1 or len(m) == 0:
        raise ValueError("give one mean, SD and n per group")
    if (n < 2).any() or (s < 0).any():
        raise ValueError("every group needs n ≥ 2 and SD ≥ 0")
    total = n.sum()
    grand = float((n * m).sum() / total)
    ss = ((n - 1) * s**2).sum() + (n * (m - grand) ** 2).sum()
    return grand, float(np.sqrt(ss / (total - 1))), int(total)


def expected_scale_score(
    probabilities, values, reverse, *, low: float, high: float, statistic: str = "mean"
) -> float:
    """A scale score from answer distributions: the expected keyed answer per item, averaged.

    Args:
        probabilities: ``(items, options)`` probability of each option (rows sum to 1).
        values: ``(options,)`` the scale value of each option.
        reverse: ``(items,)`` True where the item is reverse keyed (``low + high − x``).
        low: the lowest scale point.
        high: the highest scale point.
        statistic: ``mean`` of the keyed items, or their ``sum`` (as the norms are given).

    Raises:
        ValueError: shapes that do not match, rows that do not sum to 1, or an unknown
            statistic.
    """
    p = np.atleast_2d(np.asarray(probabilities, dtype=float))
    v = np.asarray(values, dtype=float)
    r = np.asarray(reverse, dtype=bool)
    if p.shape != (len(r), len(v)):
        raise ValueError(f"probabilities must be (items, options) = ({len(r)}, {len(v)})")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("each item's probabilities must sum to 1")
    expected = p @ v
    keyed = np.where(r, low + high - expected, expected)
    if statistic == "mean":
        return float(keyed.mean())
    if statistic == "sum":
        return float(keyed.sum())
    raise ValueError(f"statistic must be 'mean' or 'sum', got {statistic!r}")
