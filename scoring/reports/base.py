"""What a report section hands to the bundle: numbers, tables and plots."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Section:
    """One section of a report.

    ``summary`` goes to summary.json (plain JSON values), ``tables`` to CSV files and the
    HTML, ``plots`` are PNG bytes (also embedded in the HTML), ``notes`` are sentences
    the reader needs (what was left out and why).
    """

    name: str
    title: str
    summary: dict = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    plots: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def rounded(value, digits: int = 6):
    """A float rounded for JSON and CSV (None for nan), so files are stable and readable."""
    if value is None:
        return None
    value = float(value)
    if value != value:  # nan
        return None
    return round(value, digits)


def interval(estimate) -> dict:
    """An `Estimate`/`Interval`-like object as ``{value, low, high}``."""
    return {
        "value": rounded(estimate.value),
        "low": rounded(estimate.low),
        "high": rounded(estimate.high),
    }
