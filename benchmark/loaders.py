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

    Zero-probability branches are dropped and equal payoffs merged. Ambiguous gambles
    list their payoffs without probabilities, as participants saw them.
    """
    merged: dict[float, float] = {}
    for p, x in outcomes:  # a payoff listed twice (Ha = La) is one branch to a reader
        if p > 0:
            merged[x] = merged.get(x, 0.0) + p
    branches = [(p, x) for x, p in merged.items()]
    if len(branches) == 1:
        return f"{_points(branches[0][1])} points for sure"
    if ambiguous:
        payoffs = ", ".join(_points(x) for _, x in branches)
        return f"one of {payoffs} points, with unknown probabilities"
    return ", ".join(f"{_points(x)} points with probability {_percent(p)}" for p, x in branches)


def _all_rows(text: str) -> list[dict]:
    """Every row of c13k_selections.csv, in file order (problem × feedback condition)."""
    return list(csv.DictReader(io.StringIO(text)))


def _selections(rows: list[dict]) -> list[dict]:
    """No-feedback rows of c13k_selections.csv: what people chose before seeing outcomes.

    Each row gets ``_row``, its 0-based position in the file: c13k_problems.json is keyed
    by that position (one entry per row), not by the problem number.
    """
    rows = [{**r, "_row": index} for index, r in enumerate(rows) if r["Feedback"] == "False"]
    if not rows:
        raise ValueError("c13k_selections.csv has no no-feedback rows")
    return rows


def _expected(outcomes: list[list[float]]) -> float:
    return sum(p * x for p, x in outcomes)


def check_gambles(row: dict, problem: dict) -> list[str]:
    """Where a c13k_problems.json entry disagrees with the gamble columns of its row.

    A is ``Ha`` with ``pHa``, else ``La``. B is ``Lb`` with ``1 − pHb``, else ``Hb``, or,
    when ``LotNumB`` > 1, a lottery of ``LotNumB`` outcomes whose expected value is ``Hb``.
    Checked: probabilities sum to 1, A's payoffs are ``Ha``/``La``, both expected
    values, B's low branch and its number of high outcomes.

    Returns:
        One message per disagreement (empty when the entry belongs to the row).
    """
    tol = 1e-6
    ha, pha, la = float(row["Ha"]), float(row["pHa"]), float(row["La"])
    hb, phb, lb = float(row["Hb"]), float(row["pHb"]), float(row["Lb"])
    lot_num = int(row["LotNumB"])
    a, b = problem["A"], problem["B"]
    problems = []
    for name, gamble in (("A", a), ("B", b)):
        if abs(sum(p for p, _ in gamble) - 1) > tol:
            problems.append(f"{name}: probabilities sum to {sum(p for p, _ in gamble):g}")
    if any(p > tol and x not in (ha, la) for p, x in a):
        problems.append(f"A pays {[x for _, x in a]}, the row has Ha {ha:g}, La {la:g}")
    ev_a = pha * ha + (1 - pha) * la
    if abs(_expected(a) - ev_a) > tol * max(1, abs(ev_a)) * 10:
        problems.append(f"A's expected value {_expected(a):g} ≠ {ev_a:g} from the row")
    ev_b = phb * hb + (1 - phb) * lb
    if abs(_expected(b) - ev_b) > 1e-5 * max(1, abs(ev_b)):
        problems.append(f"B's expected value {_expected(b):g} ≠ {ev_b:g} from the row")
    if phb < 1 - tol:
        low = sum(p for p, x in b if x == lb)
        if low < 1 - phb - tol:
            problems.append(f"B pays Lb {lb:g} with {low:g}, the row says {1 - phb:g}")
    high = [x for p, x in b if p > tol and x != lb]
    if phb > tol and len(high) > max(1, lot_num):
        problems.append(f"B has {len(high)} high outcomes, the row says LotNumB {lot_num}")
    return problems


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
    all_rows = _all_rows(read_text(path.with_name("c13k_selections.csv.gz")))
    if len(problems) != len(all_rows):
        raise ValueError(
            f"{path.name} has {len(problems):,} entries, c13k_selections.csv "
            f"{len(all_rows):,} rows: they must pair one to one"
        )
    rows = _selections(all_rows)
    wrong = {
        row["Problem"]: issues
        for row in rows
        if (issues := check_gambles(row, problems[str(row["_row"])]))
    }
    if wrong:
        first, issues = next(iter(wrong.items()))
        raise ValueError(
            f"{path.name}: {len(wrong):,} problems disagree with c13k_selections.csv, "
            f"e.g. problem {first}: {'; '.join(issues)}"
        )
    if subset is not None and subset < len(rows):
        rows = stratified_subset(rows, subset, seed)
    items = []
    for row in rows:
        problem = problems[str(row["_row"])]  # keyed by row position, not by problem
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
                    "selections_row": row["_row"],
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


# Peterson et al. (2021) played each problem in 5 blocks of 5 trials; block 1 gave no
# feedback. A no-feedback row's bRate is the mean over its n people of each person's share
# of B in those 5 choices, and bRate_std the SD of those shares across people.
CHOICES_PER_PERSON = 5


def effective_choices(n: int, b_rate: float, sd: float) -> float:
    """Independent choices whose binomial variance equals the B-rate's sampling variance.

    The B-rate is a mean over ``n`` people, so its variance is ``sd² / n``; a binomial
    proportion of ``N`` independent choices has ``b(1 − b) / N``. Equating them gives
    ``N = n·b(1 − b) / sd²``, kept between ``n`` (each person always chose the same) and
    ``5n`` (every choice independent). Resampling ``N`` choices then reproduces the
    between-person uncertainty of the B-rate, which resampling ``5n`` choices would
    understate.
    """
    lo, hi = float(n), float(n * CHOICES_PER_PERSON)
    if sd <= 0:
        return hi if 0 < b_rate < 1 else lo
    return min(hi, max(lo, n * b_rate * (1 - b_rate) / sd**2))


def choices13k_distributions(path: Path, item_keys: set[str]) -> list[ItemCounts]:
    """Human proportion choosing A/B for each problem among ``item_keys``.

    ``n`` is the number of people; ``data`` says what was sampled: ``people``,
    ``choices_per_person``, ``choices`` (people × 5), the B-rate's SD across people and
    ``effective_n`` (see `effective_choices`), the size the statistics resample.
    """
    out = []
    for row in _selections(_all_rows(read_text(path))):
        key = f"p{int(row['Problem'])}"
        if key not in item_keys:
            continue
        b_rate, people, sd = float(row["bRate"]), int(row["n"]), float(row["bRate_std"])
        out.append(
            ItemCounts(
                item_key=key,
                n=people,
                proportions={"A": 1.0 - b_rate, "B": b_rate},
                data={
                    "unit": "people",
                    "people": people,
                    "choices_per_person": CHOICES_PER_PERSON,
                    "choices": people * CHOICES_PER_PERSON,
                    "b_rate_sd": sd,
                    "effective_n": round(effective_choices(people, b_rate, sd), 3),
                    "block": int(row["Block"]),
                    "selections_row": row["_row"],
                },
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
