"""Distances between response distributions over the same options, one row per item.

Every function takes arrays of shape ``(options,)`` or ``(items, options)``: counts or
probabilities (each row is normalised), and returns one value per row. All three lie in
[0, 1]: 0 for identical distributions, 1 for the farthest apart.
"""

from __future__ import annotations

import numpy as np


def distributions(values) -> np.ndarray:
    """Rows of non-negative counts or weights as probability rows (2-D, float).

    Raises:
        ValueError: a negative or non-finite entry, or a row that sums to zero.
    """
    array = np.atleast_2d(np.asarray(values, dtype=float))
    if array.ndim != 2:
        raise ValueError(f"expected (items, options), got shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError("distributions must be finite and non-negative")
    totals = array.sum(axis=1, keepdims=True)
    if (totals == 0).any():
        rows = np.flatnonzero(totals[:, 0] == 0).tolist()
        raise ValueError(f"rows {rows} have no mass")
    return array / totals


def _pair(p, q) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both inputs as probability rows; whether the caller passed single distributions."""
    single = np.ndim(p) == 1 and np.ndim(q) == 1
    p, q = distributions(p), distributions(q)
    if p.shape != q.shape:
        raise ValueError(f"shapes differ: {p.shape} and {q.shape}")
    return p, q, single


def _out(values: np.ndarray, single: bool):
    return float(values[0]) if single else values


def total_variation(p, q):
    """Total variation distance: half the L1 distance, the largest gap over any event."""
    p, q, single = _pair(p, q)
    return _out(0.5 * np.abs(p - q).sum(axis=1), single)


def js_distance(p, q):
    """Jensen–Shannon distance (square root of the divergence, base 2, so at most 1)."""
    p, q, single = _pair(p, q)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=1)
    divergence = np.clip(0.5 * (kl_p + kl_q), 0.0, 1.0)  # rounding can step outside
    return _out(np.sqrt(divergence), single)


def wasserstein_ordinal(p, q, values=None):
    """Wasserstein-1 (earth mover's) distance on an ordered scale, divided by its range.

    Args:
        p: first distribution(s).
        q: second distribution(s), same shape.
        values: the scale point of each option, increasing (default 1, 2, …, k).

    Returns:
        W1 / (max(values) − min(values)): 1 when all mass moves from one end to the other.
    """
    p, q, single = _pair(p, q)
    k = p.shape[1]
    points = np.arange(1, k + 1, dtype=float) if values is None else np.asarray(values, float)
    if points.shape != (k,) or (np.diff(points) <= 0).any():
        raise ValueError(f"values must be {k} increasing scale points")
    gaps = np.diff(points)
    cdf_gap = np.abs(np.cumsum(p - q, axis=1)[:, :-1])
    return _out((cdf_gap * gaps).sum(axis=1) / (points[-1] - points[0]), single)


DISTANCES = {
    "js": js_distance,
    "tv": total_variation,
    "w1": wasserstein_ordinal,
}
