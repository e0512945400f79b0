"""Likelihood of human behaviour (Binz et al., Psych-201): NLL, pseudo-R², effect sizes."""

from __future__ import annotations

import math

import numpy as np


def participant_nll(span_logprobs) -> float:
    """Negative log-likelihood of one participant: minus the sum of their spans' log-probs."""
    return -float(np.sum(span_logprobs))


def random_log_likelihood(options_per_response) -> float:
    """Log-likelihood of a chooser who picks uniformly among each response's options."""
    counts = np.asarray(options_per_response, dtype=float)
    if (counts < 1).any():
        raise ValueError("every response needs at least one option")
    return float(-np.log(counts).sum())


def pseudo_r2(model_ll: float, random_ll: float) -> float:
    """1 − LL_model / LL_random (McFadden): 0 is chance, 1 is perfect, below 0 is worse."""
    if random_ll >= 0:
        raise ValueError("the random model's log-likelihood must be negative")
    return 1.0 - model_ll / random_ll


def cohens_d(post, base) -> float:
    """(mean_post − mean_base) / sqrt((sd_post² + sd_base²) / 2), sample SDs (ddof 1)."""
    post, base = np.asarray(post, dtype=float), np.asarray(base, dtype=float)
    if len(post) < 2 or len(base) < 2:
        raise ValueError("each group needs at least two values")
    pooled = math.sqrt((post.var(ddof=1) + base.var(ddof=1)) / 2)
    if pooled == 0:
        raise ValueError("both groups have zero variance")
    return float((post.mean() - base.mean()) / pooled)
