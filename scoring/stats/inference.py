"""Intervals for the comparisons across models: trends, pairs, correlations, effect sizes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """An estimate, its interval and how many observations it rests on."""

    value: float
    low: float
    high: float
    n: int
    confidence: float = 0.95


def _t(confidence: float, df: int) -> float:
    return float(stats.t.ppf(0.5 + confidence / 2, df))


def trend(x, y, confidence: float = 0.95) -> Interval:
    """Least-squares slope of ``y`` on ``x`` (e.g. Π on release year) with a t interval."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        raise ValueError("a trend needs at least three points")
    fit = stats.linregress(x, y)
    half = _t(confidence, len(x) - 2) * fit.stderr
    return Interval(fit.slope, fit.slope - half, fit.slope + half, len(x), confidence)


def paired_difference(after, before, confidence: float = 0.95) -> Interval:
    """Mean of ``after − before`` over pairs (e.g. post-trained minus base) with a t interval."""
    d = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
    if len(d) < 2:
        raise ValueError("need at least two pairs")
    half = _t(confidence, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return Interval(float(d.mean()), float(d.mean() - half), float(d.mean() + half), len(d))


def correlation(x, y, confidence: float = 0.95, method: str = "pearson") -> Interval:
    """Pearson or Spearman correlation across models, Fisher-z interval.

    For Spearman the interval uses the Bonett–Wright standard error sqrt((1 + r²/2)/(n − 3)).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n < 4:
        raise ValueError("a correlation interval needs at least four models")
    if method == "pearson":
        r, se = float(stats.pearsonr(x, y).statistic), 1 / math.sqrt(n - 3)
    elif method == "spearman":
        r = float(stats.spearmanr(x, y).statistic)
        se = math.sqrt((1 + r * r / 2) / (n - 3))
    else:
        raise ValueError(f"method must be pearson or spearman, not {method!r}")
    z, q = math.atanh(max(min(r, 1 - 1e-15), -1 + 1e-15)), stats.norm.ppf(0.5 + confidence / 2)
    return Interval(r, math.tanh(z - q * se), math.tanh(z + q * se), n, confidence)


def cohens_d_interval(post, base, confidence: float = 0.95) -> Interval:
    """Cohen's d (averaged-variance denominator) with the large-sample normal interval.

    SE(d) = sqrt((n₁ + n₂)/(n₁ n₂) + d² / (2 (n₁ + n₂))) (Hedges & Olkin 1985).
    """
    from scoring.stats.likelihood import cohens_d

    d = cohens_d(post, base)
    n1, n2 = len(post), len(base)
    se = math.sqrt((n1 + n2) / (n1 * n2) + d * d / (2 * (n1 + n2)))
    q = float(stats.norm.ppf(0.5 + confidence / 2))
    return Interval(d, d - q * se, d + q * se, n1 + n2, confidence)


def cogbench_normalise(value, human, random):
    """CogBench's scale: |x − x_random| / |x_human − x_random| (random = 0, human = 1)."""
    value, human, random = (np.asarray(v, dtype=float) for v in (value, human, random))
    if (human == random).any():
        raise ValueError("human and random scores are equal: nothing to normalise by")
    return np.abs(value - random) / np.abs(human - random)
