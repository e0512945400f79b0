"""Π, the Pinocchio dimension (Plisiecki et al.): the main axis of models' scale scores.

Scale scores of a battery of questionnaires (one row per model, one column per scale)
are standardised across models and decomposed (PCA); the first component is Π and each
model's Π score is its coordinate on it. Item-level π_i compares how much models vary
on an item when asked neutrally with how much they vary when asked to answer as a human.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pinocchio:
    """The first principal component of standardised scale scores."""

    scores: np.ndarray  # one Π score per model
    loadings: np.ndarray  # one weight per scale (unit length)
    explained: float  # share of the standardised variance on Π


def pinocchio(scale_scores, orient=None, norms=None, orient_sign: int = 1) -> Pinocchio:
    """Π from a ``(models, scales)`` array of scale scores.

    Args:
        scale_scores: models in rows, scales in columns (at least two models).
        orient: index of a scale whose loading is given the sign ``orient_sign`` (PCA
            fixes the axis, not its sign); default: the loadings sum to a positive number.
        norms: ``(means, sds)`` of people per scale. Given, scores are z-scored against
            them, the axis is the first principal component of those z-scores across
            models, and a model's Π score is its z-vector on that axis (0 = the human
            mean). Without, scales are standardised across the models themselves.
        orient_sign: +1 (the orienting scale loads positively) or −1 (it loads
            negatively, e.g. emotional stability when Π should rise with neuroticism).

    Raises:
        ValueError: fewer than two models, or a scale that does not vary.
    """
    x = np.asarray(scale_scores, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError("need a (models, scales) array with at least two models")
    if norms is None:
        sd = x.std(axis=0, ddof=1)
        if (sd == 0).any():
            raise ValueError(f"scales {np.flatnonzero(sd == 0).tolist()} do not vary across models")
        z = (x - x.mean(axis=0)) / sd
    else:
        means, sds = (np.asarray(v, dtype=float) for v in norms)
        if means.shape != (x.shape[1],) or sds.shape != (x.shape[1],) or (sds <= 0).any():
            raise ValueError("norms must give a mean and a positive SD for every scale")
        z = (x - means) / sds
    centred = z - z.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    loadings = vt[0]
    if orient_sign not in (1, -1):
        raise ValueError("orient_sign must be +1 or -1")
    sign = np.sign(loadings[orient] * orient_sign if orient is not None else loadings.sum()) or 1.0
    loadings = loadings * sign
    return Pinocchio(
        scores=z @ loadings,
        loadings=loadings,
        explained=float(singular[0] ** 2 / (singular**2).sum()),
    )


def item_pi(neutral, simulated) -> np.ndarray:
    """π_i = Var over models (neutral prompt) / Var over models (human-simulation prompt).

    Both arrays are ``(models, items)`` of item responses (e.g. mean Likert answers).
    Returns nan for an item on which the models do not vary under the simulation prompt.
    """
    a, b = np.asarray(neutral, dtype=float), np.asarray(simulated, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] < 2:
        raise ValueError("need two (models, items) arrays of the same shape, two models or more")
    var_b = b.var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var_b > 0, a.var(axis=0, ddof=1) / var_b, np.nan)
