"""Published norms of questionnaire scales: reading and checking them, before any write.

A norm is people's mean, SD and n on one scale of a task, for one group, with the
source that published it. Bundled norms are CSV files with the header
``scale,group,statistic,mean,sd,n,source``; `read_norms_csv` checks every row
against the task's scales and names the file, line and column of any problem.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("scale", "group", "statistic", "mean", "sd", "n", "source")
STATISTICS = ("mean", "sum")


class NormsError(ValueError):
    """Norms that cannot be used; the message says where and what."""


@dataclass(frozen=True)
class NormRow:
    """One published norm: a scale's mean, SD and n in one group."""

    scale: str
    group: str
    statistic: str
    mean: float
    sd: float
    n: int | None  # None: the source gives the norms without their sample size
    source: str


def check_rows(rows: list[NormRow], scales: set[str], where: str) -> list[NormRow]:
    """Check norms against a task's scales; every problem is reported at once.

    Args:
        rows: the norms, in order (``where`` names them in messages).
        scales: the scale keys of the task.
        where: a prefix for messages, e.g. the file name.

    Raises:
        NormsError: an unknown scale, a statistic other than mean/sum, a non-finite mean,
            an SD that is not positive, n below 2 (None, not published, is allowed), an
            empty source, or a scale and group given twice.
    """
    problems, seen = [], {}
    for index, row in enumerate(rows):
        at = f"{where} row {index + 1}"
        if row.scale not in scales:
            problems.append(f"{at}, scale: {row.scale!r} is not one of {sorted(scales)}")
        if row.statistic not in STATISTICS:
            problems.append(f"{at}, statistic: must be one of {list(STATISTICS)}")
        if not math.isfinite(row.mean):
            problems.append(f"{at}, mean: must be a number")
        if not (math.isfinite(row.sd) and row.sd > 0):
            problems.append(f"{at}, sd: must be positive, got {row.sd}")
        if row.n is not None and row.n < 2:
            problems.append(f"{at}, n: must be 2 or more (or empty if unpublished), got {row.n}")
        if not row.group.strip():
            problems.append(f"{at}, group: is empty")
        if not row.source.strip():
            problems.append(f"{at}, source: is empty (give the citation and table or page)")
        if (row.scale, row.group) in seen:
            problems.append(
                f"{at}: scale {row.scale!r}, group {row.group!r} already given in row "
                f"{seen[(row.scale, row.group)]}"
            )
        seen.setdefault((row.scale, row.group), index + 1)
    if problems:
        raise NormsError("\n".join(problems))
    return rows


def read_norms_csv(path: Path, scales: set[str]) -> list[NormRow]:
    """Read and check a norms CSV file (header ``scale,group,statistic,mean,sd,n,source``).

    An empty ``n`` means the source published the mean and SD without the sample size;
    such rows cannot be pooled across groups.

    Raises:
        NormsError: a missing column, a value that is not a number (naming file, line and
            column), or a row that `check_rows` refuses.
    """
    text = path.read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise NormsError(f"{path}: missing column(s) {missing}; need {list(COLUMNS)}")
    rows, problems = [], []
    for record in reader:
        line = reader.line_num
        try:
            rows.append(
                NormRow(
                    scale=record["scale"].strip(),
                    group=record["group"].strip(),
                    statistic=record["statistic"].strip(),
                    mean=_number(record, "mean", float),
                    sd=_number(record, "sd", float),
                    n=_number(record, "n", int) if (record.get("n") or "").strip() else None,
                    source=record["source"].strip(),
                )
            )
        except ValueError as exc:
            problems.append(f"{path}, line {line}, {exc}")
    if problems:
        raise NormsError("\n".join(problems))
    if not rows:
        raise NormsError(f"{path}: no norms in the file")
    return check_rows(rows, scales, str(path))


def _number(record: dict, column: str, kind):
    value = (record.get(column) or "").strip()
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"column {column}: {value!r} is not a number") from None
