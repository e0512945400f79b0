"""Distances between response distributions over the same options.

Every function compares along the last axis: ``(options,)`` gives one number, ``(items,
options)`` one per item, ``(resamples, items, options)`` one per resample and item. Inputs
are counts or probabilities (each distribution is normalised). All three distances lie in
[0, 1]: 0 for identical distributions, 1 for the farthest apart. A distribution with no
mass is refused by `distributions`; the bootstrap, where an item can be left without
answers, uses ``checked=False`` and gets nan for it.
"""

from __future__ import annotations

import numpy as np


def distributions(values, *, checked: bool = True) -> np.ndarray:
    """Non-negative counts or weights as probabilities along the last axis (float).

    Raises:
        ValueError: (when ``checked``) a negative or non-finite entry, or a distribution
            that sums to zero.
    """
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        raise ValueError("expected at least one option")
    totals = array.sum(axis=-1, keepdims=True)
    if checked:
        if not np.isfinite(array).all() or (array < 0).any():
            raise ValueError("distributions must be finite and non-negative")
        if (totals == 0).any():
            rows = np.flatnonzero(totals.reshape(-1) == 0).tolist()
            raise ValueError(f"rows {rows} have no mass")
    with np.errstate(divide="ignore", invalid="ignore"):
        return array / totals


def _pair(p, q, checked: bool) -> tuple[np.ndarray, np.ndarray]:
    p, q = distributions(p, checked=checked), distributions(q, checked=checked)
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(f"shapes differ: {p.shape} and {q.shape}")
    try:
        np.broadcast_shapes(p.shape, q.shape)
    except ValueError:
        raise ValueError(f"shapes differ: {p.shape} and {q.shape}") from None
    return p, q


def _out(values: np.ndarray):
    return float(values) if values.ndim == 0 else values


def total_variation(p, q, *, checked: bool = True):
    """Total variation distance: half the L1 distance, the largest gap over any event."""
    p, q = _pair(p, q, checked)
    return _out(0.5 * np.abs(p - q).sum(axis=-1))


def js_distance(p, q, *, checked: bool = True):
    """Jensen–Shannon distance (square root of the divergence, base 2, so at most 1)."""
    p, q = _pair(p, q, checked)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=-1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=-1)
    divergence = np.clip(0.5 * (kl_p + kl_q), 0.0, 1.0)  # rounding can step outside
    empty = np.isnan(p).any(axis=-1) | np.isnan(q).any(axis=-1)
    return _out(np.where(empty, np.nan, np.sqrt(divergence)))


def wasserstein_ordinal(p, q, values=None, *, checked: bool = True):
    """Wasserstein-1 (earth mover's) distance on an ordered scale, divided by its range.

    Args:
        p: first distribution(s).
        q: second distribution(s), same number of options.
        values: the scale point of each option, increasing (default 1, 2, …, k).
        checked: refuse distributions without mass (else they give nan).

    Returns:
        W1 / (max(values) − min(values)): 1 when all mass moves from one end to the other.
    """
    p, q = _pair(p, q, checked)
    k = p.shape[-1]
    points = np.arange(1, k + 1, dtype=float) if values is None else np.asarray(values, float)
    if points.shape != (k,) or (np.diff(points) <= 0).any():
        raise ValueError(f"values must be {k} increasing scale points")
    cdf_gap = np.abs(np.cumsum(p - q, axis=-1)[..., :-1])
    return _out((cdf_gap * np.diff(points)).sum(axis=-1) / (points[-1] - points[0]))


DISTANCES = {
    "js": js_distance,
    "tv": total_variation,
    "w1": wasserstein_ordinal,
}
