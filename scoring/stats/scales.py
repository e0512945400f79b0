"""Questionnaire scale scores, and where a score falls among people's."""

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
