"""Readers for the bundled data files in ``benchmark/data/``.

Two kinds of reader: item generators (a data file → the items of a task spec, e.g.
choices13k gamble problems) and human-data readers (a data file → participants or
per-item counts). They return plain Python objects; `benchmark.services.tasks`
writes them to the database.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"


def data_path(name: str) -> Path:
    """A bundled data file by its name relative to ``benchmark/data``.

    Raises:
        ValueError: the name leaves the data folder or the file does not exist.
    """
    path = (DATA_DIR / name).resolve()
    if DATA_DIR.resolve() not in path.parents:
        raise ValueError(f"data file {name!r} is outside {DATA_DIR}")
    if not path.is_file():
        raise ValueError(f"data file {name!r} not found in {DATA_DIR}")
    return path


def read_bytes(path: Path) -> bytes:
    """File content, gunzipped when the name ends with .gz."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def read_text(path: Path) -> str:
    """UTF-8 text of a (possibly gzipped) file."""
    return read_bytes(path).decode("utf-8")


# --- choices13k ----------------------------------------------------------------


def _percent(p: float) -> str:
    text = f"{100 * p:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _points(x: float) -> str:
    return f"{x:g}"


def describe_gamble(outcomes: list[list[float]], ambiguous: bool = False) -> str:
    """Words for a gamble given as ``[[probability, payoff], …]``.

    Zero-probability branches are dropped. Ambiguous gambles list their payoffs
    without probabilities, as participants saw them.
    """
    branches = [(p, x) for p, x in outcomes if p > 0]
    if len(branches) == 1:
        return f"{_points(branches[0][1])} points for sure"
    if ambiguous:
        payoffs = ", ".join(_points(x) for _, x in branches)
        return f"one of {payoffs} points, with unknown probabilities"
    return ", ".join(f"{_points(x)} points with probability {_percent(p)}" for p, x in branches)


def _selections(text: str) -> list[dict]:
    """No-feedback rows of c13k_selections.csv: what people chose before seeing outcomes."""
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["Feedback"] == "False"]
    if not rows:
        raise ValueError("c13k_selections.csv has no no-feedback rows")
    return rows


def stratified_subset(rows: list[dict], size: int, seed: int) -> list[dict]:
    """Pick about ``size`` rows, proportionally from strata of problem type and B-rate.

    Strata: ambiguity × lottery shape of B × quintile of the human B-rate, so the
    subset covers easy and hard problems of every kind. Seeded; stable order.
    """
    rates = np.array([float(r["bRate"]) for r in rows])
    edges = np.quantile(rates, [0.2, 0.4, 0.6, 0.8])
    strata: dict[tuple, list[int]] = {}
    for index, row in enumerate(rows):
        key = (row["Amb"], row["LotShapeB"], int(np.searchsorted(edges, rates[index])))
        strata.setdefault(key, []).append(index)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for key in sorted(strata):
        members = strata[key]
        take = max(1, round(size * len(members) / len(rows)))
        chosen += rng.choice(members, size=min(take, len(members)), replace=False).tolist()
    return [rows[i] for i in sorted(chosen, key=lambda i: int(rows[i]["Problem"]))]


def choices13k_items(problems_file: str, subset: int | None, seed: int) -> list[dict]:
    """Choice items for choices13k problems that have no-feedback human data.

    Args:
        problems_file: bundled c13k_problems.json(.gz); the selections file sits beside it.
        subset: stratified subset size, or None for all problems.
        seed: seed of the subset.

    Returns:
        Item dicts (key ``p<Problem>``, text, data) in problem order.
    """
    path = data_path(problems_file)
    problems = json.loads(read_text(path))
    rows = _selections(read_text(path.with_name("c13k_selections.csv.gz")))
    if subset is not None and subset < len(rows):
        rows = stratified_subset(rows, subset, seed)
    items = []
    for row in rows:
        problem = problems[str(int(row["Problem"]) - 1)]  # selections count from 1, JSON from 0
        ambiguous = row["Amb"] == "True"
        text = (
            f"Gamble A: {describe_gamble(problem['A'])}.\n"
            f"Gamble B: {describe_gamble(problem['B'], ambiguous)}."
        )
        items.append(
            {
                "key": f"p{int(row['Problem'])}",
                "text": text,
                "data": {
                    "problem": int(row["Problem"]),
                    "A": problem["A"],
                    "B": problem["B"],
                    "ambiguous": ambiguous,
                    "lot_shape_b": int(row["LotShapeB"]),
                    "correlation": int(row["Corr"]),
                },
            }
        )
    return items


@dataclass
class ItemCounts:
    """Aggregate answers to one item."""

    item_key: str
    n: int
    proportions: dict[str, float]
    data: dict = field(default_factory=dict)


def choices13k_distributions(path: Path, item_keys: set[str]) -> list[ItemCounts]:
    """Human proportion choosing A/B for each problem among ``item_keys``."""
    out = []
    for row in _selections(read_text(path)):
        key = f"p{int(row['Problem'])}"
        if key not in item_keys:
            continue
        b_rate = float(row["bRate"])
        out.append(
            ItemCounts(
                item_key=key,
                n=int(row["n"]),
                proportions={"A": 1.0 - b_rate, "B": b_rate},
                data={"b_rate_sd": float(row["bRate_std"]), "block": int(row["Block"])},
            )
        )
    return out


# --- IPIP-50 -------------------------------------------------------------------


@dataclass
class Respondent:
    """One questionnaire respondent: answers by item key (None = missing) and profile."""

    line: int
    participant: str
    answers: dict[str, int | None]
    profile: dict
    extra: dict


def ipip_respondents(
    path: Path, item_keys: list[str], missing: int, profile_columns: list[str]
) -> list[Respondent]:
    """Rows of the tab-separated openpsychometrics IPIP file.

    Args:
        path: the (gzipped) data.csv.
        item_keys: the items to read (columns E1…O10).
        missing: the code for a missed item (0), stored as None.
        profile_columns: demographic columns kept with each respondent.

    Raises:
        ValueError: a required column is absent or a cell is not an integer.
    """
    reader = csv.DictReader(io.StringIO(read_text(path)), delimiter="\t")
    absent = [c for c in [*item_keys, *profile_columns] if c not in (reader.fieldnames or [])]
    if absent:
        raise ValueError(f"{path.name}: columns missing: {absent}")
    out = []
    for number, row in enumerate(reader, start=1):
        try:
            answers = {k: (None if int(row[k]) == missing else int(row[k])) for k in item_keys}
        except ValueError as exc:
            raise ValueError(f"{path.name}, data row {number}: {exc}") from None
        profile = {}
        if row.get("age", "").isdigit():
            profile["age"] = int(row["age"])
        if row.get("gender") in {"1", "2", "3"}:
            profile["gender"] = {"1": "Male", "2": "Female", "3": "Other"}[row["gender"]]
        # `country` is where the request came from, not a nationality: kept as extra.
        extra = {c: row[c] for c in profile_columns if c not in {"age", "gender"}}
        out.append(
            Respondent(
                line=number, participant=str(number), answers=answers, profile=profile, extra=extra
            )
        )
    return out
