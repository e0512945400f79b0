"""A model run's questionnaire scale scores, placed among people's.

Against a ``norms`` dataset each scale score is z-scored with the published mean and SD
of each group, and its percentile is the normal one (100 · Φ(z)); against a dataset of
people's answers it gets the exact empirical percentile and the z among their scale
scores. The arithmetic is in `scoring.stats.scales`; this module reads the database.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.models import DatasetKind, HumanDataset, ModelRun, RunMode
from scoring.stats.scales import expected_scale_score, norm_position, position, scale_scores


class ScaleScoreError(ValueError):
    """A run or dataset that cannot be scored on scales; the message says why."""


@dataclass(frozen=True)
class ScalePosition:
    """One scale score of a model next to one group of people."""

    scale: str
    name: str
    construct: str | None
    orients_pi: bool
    statistic: str  # mean or sum of the keyed items
    score: float
    group: str
    mean: float  # people's
    sd: float
    n: int | None  # None: norms published without their sample size
    z: float
    percentile: float  # normal (norms) or empirical (people's answers)
    basis: str  # "norms" or "people"
    source: str


def _item_distributions(run: ModelRun) -> dict[str, dict[str, float]]:
    """Each item's answer distribution: exact ones as given, samples as frequencies."""
    if run.mode != RunMode.PARTICIPANT:
        raise ScaleScoreError(f"run {run.pk} is a {run.mode} run: scale scores need participant")
    by_item: dict[str, list[dict[str, float]]] = {}
    for key, dist, answer in run.responses.values_list("item_key", "distribution", "answer"):
        if dist:
            by_item.setdefault(key, []).append(dist)
        elif answer:
            by_item.setdefault(key, []).append({answer: 1.0})
    out = {}
    for key, dists in by_item.items():
        options = set().union(*dists)
        out[key] = {o: float(np.mean([d.get(o, 0.0) for d in dists])) for o in options}
    return out


def run_scale_scores(*, run: ModelRun, statistic: str = "mean") -> dict[str, float]:
    """The run's score on every scale of its questionnaire: the expected keyed answer.

    Args:
        run: a participant run on a questionnaire task.
        statistic: ``mean`` or ``sum`` of the keyed items.

    Raises:
        ScaleScoreError: not a questionnaire, or an item of a scale has no answer.
    """
    spec = run.task_version.spec
    if spec.get("kind") != "questionnaire":
        raise ScaleScoreError(f"{run.task_version} is not a questionnaire")
    low, high = spec["response_scale"]["min"], spec["response_scale"]["max"]
    dists = _item_distributions(run)
    out = {}
    for scale in spec["scales"]:
        items = list(run.task_version.items.filter(scale=scale).order_by("position"))
        if not items:
            continue
        if missing := [i.key for i in items if i.key not in dists]:
            raise ScaleScoreError(f"run {run.pk}: no answers yet for {missing} of scale {scale!r}")
        values = [float(o["value"]) for o in items[0].options]
        keys = [o["key"] for o in items[0].options]
        probs = [[dists[i.key].get(k, 0.0) for k in keys] for i in items]
        out[scale] = expected_scale_score(
            probs, values, [i.reverse for i in items], low=low, high=high, statistic=statistic
        )
    return out


def scale_positions(*, run: ModelRun, dataset: HumanDataset) -> list[ScalePosition]:
    """A run's scale scores against a human dataset of the same task.

    A ``norms`` dataset gives one row per scale and group (z and the normal percentile);
    a dataset of people's answers gives one row per scale, group ``all`` (the exact
    empirical percentile, and z against their mean and SD).

    Raises:
        ScaleScoreError: the dataset belongs to another task, or has neither norms nor
            answers.
    """
    if dataset.task_id != run.task_version.task_id:
        raise ScaleScoreError(f"dataset {dataset.slug} is not about {run.task_version.task}")
    scales = run.task_version.spec["scales"]

    def info(key):
        s = scales[key]
        return s["name"], s.get("construct"), bool(s.get("orients_pi"))

    rows = []
    if dataset.kind == DatasetKind.NORMS:
        scores = {
            stat: run_scale_scores(run=run, statistic=stat)
            for stat in set(dataset.norms.values_list("statistic", flat=True))
        }
        for norm in dataset.norms.order_by("scale", "group"):
            score = scores[norm.statistic][norm.scale]
            where = norm_position(score, norm.mean, norm.sd)
            rows.append(
                ScalePosition(
                    norm.scale,
                    *info(norm.scale),
                    norm.statistic,
                    score,
                    norm.group,
                    norm.mean,
                    norm.sd,
                    norm.n,
                    where.z,
                    where.percentile,
                    "norms",
                    norm.source,
                )
            )
        return rows
    people = people_scale_scores(dataset=dataset, version=run.task_version)
    if not people:
        raise ScaleScoreError(f"dataset {dataset.slug} has neither norms nor item answers")
    scores = run_scale_scores(run=run)
    for scale, humans in people.items():
        humans = humans[~np.isnan(humans)]
        where = position(scores[scale], humans)
        rows.append(
            ScalePosition(
                scale,
                *info(scale),
                "mean",
                scores[scale],
                "all",
                float(humans.mean()),
                float(humans.std(ddof=1)),
                len(humans),
                where.z,
                where.percentile,
                "people",
                f"{dataset.name} ({dataset.slug})",
            )
        )
    return rows


def people_scale_scores(*, dataset: HumanDataset, version) -> dict[str, np.ndarray]:
    """Mean keyed answer per scale for every person of an item-level dataset."""
    spec = version.spec
    items = list(version.items.order_by("position").values_list("key", "scale", "reverse"))
    answers = [
        [np.nan if a.get(key) is None else float(a[key]) for key, _, _ in items]
        for a in dataset.transcripts.exclude(answers={}).values_list("answers", flat=True)
    ]
    if not answers:
        return {}
    keys: dict[str, list] = {}
    for column, (_, scale, reverse) in enumerate(items):
        keys.setdefault(scale, []).append((column, -1 if reverse else 1))
    return scale_scores(
        np.array(answers),
        keys,
        low=spec["response_scale"]["min"],
        high=spec["response_scale"]["max"],
    )


def people_item_distributions(*, dataset: HumanDataset, version) -> dict[str, dict[str, float]]:
    """Share of people giving each answer to each item, from an item-level dataset.

    What a third-person (``predict_population``) run on the same items is compared with;
    missing answers are left out of an item's shares.
    """
    counts: dict[str, dict[str, int]] = {}
    options = {
        key: [o["key"] for o in opts] for key, opts in version.items.values_list("key", "options")
    }
    for answers in dataset.transcripts.exclude(answers={}).values_list("answers", flat=True):
        for key in options:
            if answers.get(key) is not None:
                item = counts.setdefault(key, {})
                item[str(answers[key])] = item.get(str(answers[key]), 0) + 1
    out = {}
    for key, opts in options.items():
        total = sum(counts.get(key, {}).values())
        if total:
            out[key] = {o: counts[key].get(o, 0) / total for o in opts}
    return out
